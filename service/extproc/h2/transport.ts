// The gRPC server transport on node:http2 (instead of grpc-js, which cost ~15% of Tollgate's CPU):
// sessions, request validation (POST, gRPC content type, no message compression), routing by :path
// to a handler, peer authentication per stream, and shutdown. Framing is framing.ts, a call's
// response side call.ts.
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { GrpcAuth } from '../../security/grpc-auth.ts';
import { GrpcCall } from './call.ts';
import { Status } from './status.ts';

/** Serves one authenticated stream whose path the router matched. */
export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export interface TransportOptions {
  auth?: Pick<GrpcAuth, 'tls' | 'check'>;
  /** :path → handler; others end UNIMPLEMENTED. */
  route: (path: string) => StreamHandler | undefined;
}

export interface Transport {
  server: http2.Http2Server | http2.Http2SecureServer;
  port: number;
  /** Stops accepting connections and new streams (GOAWAY on every session); resolves once every session is gone. */
  shutdown(): Promise<void>;
  /** Destroys every session now (their streams are reset). */
  destroyAll(): void;
}

const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 16 << 20;

const SERVER_OPTIONS: http2.ServerOptions = {
  // Node refuses new streams once a session holds this many MB: effectively off, as grpc-js does
  // (one Envoy connection carries every stream, bodies up to the message cap included).
  maxSessionMemory: Number.MAX_SAFE_INTEGER,
  maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  // Concurrent streams are limited by Tollgate itself (TOLLGATE_MAX_STREAMS → RESOURCE_EXHAUSTED).
  // Flow-control windows: Envoy sends request and response bodies of several MB in one message; with
  // HTTP/2's 64 KiB default it would wait for a WINDOW_UPDATE every 64 KiB. Data is always read as it
  // arrives (and bounded by the message cap), so larger windows buffer nothing extra.
  settings: { maxConcurrentStreams: 0xffffffff, initialWindowSize: STREAM_WINDOW },
};

const CONTENT_TYPE = /^application\/grpc(?:$|[+;])/;

export async function listenGrpc(addr: string, opts: TransportOptions): Promise<Transport> {
  const tls = opts.auth?.tls;
  const server = tls ? http2.createSecureServer({ ...SERVER_OPTIONS, ...tls.options }) : http2.createServer(SERVER_OPTIONS);
  // Envoy keeps its connection open for as long as it likes: no idle timeout on sessions.
  server.setTimeout(0);
  if (tls) {
    const secure = server as http2.Http2SecureServer;
    tls.onReload((ctx) => secure.setSecureContext(ctx));
    // Errors on a TLS socket (a failed handshake, a reset) must be handled, or they are thrown.
    secure.on('secureConnection', (s: Socket) => void s.on('error', () => undefined));
  }
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.setLocalWindowSize(SESSION_WINDOW);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
  });
  const check = opts.auth?.check;
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':method'] !== 'POST') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    const ct = headers['content-type'];
    if (typeof ct !== 'string' || !CONTENT_TYPE.test(ct)) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const handler = opts.route(path);
    if (!handler) return refuse(stream, Status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    // We advertise no message encoding: a compressed stream cannot be read (gRPC spec: UNIMPLEMENTED + grpc-accept-encoding).
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity')
      return refuse(stream, Status.UNIMPLEMENTED, `Compression algorithm ${String(enc)} is not supported`, { 'grpc-accept-encoding': 'identity' });
    if (check) {
      const refusal = check(path, headers, stream.session!);
      if (refusal) return refuse(stream, refusal.code, refusal.detail);
    }
    handler(stream, headers);
  });

  const port = await new Promise<number>((resolve, reject) => {
    const { host, port: p } = parseAddr(addr);
    server.once('error', reject);
    server.listen(p, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : p);
    });
  });

  return {
    server,
    port,
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      }),
    destroyAll: () => {
      for (const s of sessions) s.destroy();
    },
  };
}

/** Trailers-only refusal; the request body, if any, is read and dropped. */
function refuse(stream: http2.ServerHttp2Stream, code: (typeof Status)[keyof typeof Status], detail: string, extra?: http2.OutgoingHttpHeaders): void {
  new GrpcCall(stream).end(code, detail, extra);
  stream.resume();
}

/** `host:port`, `[v6]:port`. */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid gRPC listen address ${addr} (expected host:port)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
