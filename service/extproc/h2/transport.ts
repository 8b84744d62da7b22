// The gRPC server transport: sessions, request validation (POST, gRPC content type, no message compression),
// routing by :path to a handler, peer authentication per stream, and shutdown. Two implementations of the
// HTTP/2 layer serve the same handlers: connection.ts, our own (the default: a fraction of node:http2's CPU per
// stream), and node:http2 (TOLLGATE_GRPC_TRANSPORT=node). Framing is framing.ts, a call's response side call.ts.
import * as http2 from 'node:http2';
import net from 'node:net';
import tlsModule from 'node:tls';
import type { Socket } from 'node:net';
import type { GrpcAuth } from '../../security/grpc-auth.ts';
import { GrpcCall } from './call.ts';
import { H2Connection } from './connection.ts';
import { Status } from './status.ts';
import type { GrpcStream, OutgoingHeaders, PeerSession, RequestHeaders } from './stream.ts';

/** Serves one authenticated stream whose path the router matched. */
export type StreamHandler = (stream: GrpcStream, headers: RequestHeaders) => void;

/** Which HTTP/2 implementation serves the port: ours (connection.ts) or node:http2. */
export type TransportKind = 'h2' | 'node';

export interface TransportOptions {
  auth?: Pick<GrpcAuth, 'tls' | 'check'>;
  /** :path → handler; others end UNIMPLEMENTED. */
  route: (path: string) => StreamHandler | undefined;
  /** Default 'h2'. */
  kind?: TransportKind;
}

export interface Transport {
  server: net.Server;
  port: number;
  /** Stops accepting connections and new streams (GOAWAY on every session); resolves once every session is gone. */
  shutdown(): Promise<void>;
  /** Destroys every session now (their streams are reset). */
  destroyAll(): void;
}

const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 16 << 20;
/** Request header list size (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE) above which a stream is refused. */
const MAX_HEADER_LIST = 64 * 1024;

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
  const admit = admission(opts);
  const t = (opts.kind ?? 'h2') === 'h2' ? ownTransport(opts, admit) : nodeTransport(opts, admit);
  const port = await new Promise<number>((resolve, reject) => {
    const { host, port: p } = parseAddr(addr);
    t.server.once('error', reject);
    t.server.listen(p, host, () => {
      t.server.off('error', reject);
      const a = t.server.address();
      resolve(typeof a === 'object' && a ? a.port : p);
    });
  });
  return { ...t, port };
}

type Admit = (stream: GrpcStream, headers: RequestHeaders, session: PeerSession) => void;

/** Validates a new stream's request headers and peer, then hands it to its route's handler (or refuses it). */
function admission(opts: TransportOptions): Admit {
  const check = opts.auth?.check;
  return (stream, headers, session) => {
    if (headers[':method'] !== 'POST') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    const ct = headers['content-type'];
    if (typeof ct !== 'string' || !CONTENT_TYPE.test(ct)) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = typeof headers[':path'] === 'string' ? headers[':path'] : '';
    const handler = opts.route(path);
    if (!handler) return refuse(stream, Status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    // We advertise no message encoding: a compressed stream cannot be read (gRPC spec: UNIMPLEMENTED + grpc-accept-encoding).
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity')
      return refuse(stream, Status.UNIMPLEMENTED, `Compression algorithm ${String(enc)} is not supported`, { 'grpc-accept-encoding': 'identity' });
    if (check) {
      const refusal = check(path, headers, session);
      if (refusal) return refuse(stream, refusal.code, refusal.detail);
    }
    handler(stream, headers);
  };
}

/** Our HTTP/2 layer (connection.ts) on a net or TLS server. */
function ownTransport(opts: TransportOptions, admit: Admit): Omit<Transport, 'port'> {
  const tls = opts.auth?.tls;
  const connections = new Set<H2Connection>();
  const onSocket = (socket: Socket): void => {
    const conn = new H2Connection(socket, {
      streamWindow: STREAM_WINDOW,
      connectionWindow: SESSION_WINDOW,
      maxHeaderListSize: MAX_HEADER_LIST,
      onStream: (stream, headers) => admit(stream, headers, conn),
    });
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
  };
  let server: net.Server;
  if (tls) {
    const secure = tlsModule.createServer({ ...tls.options, ALPNProtocols: ['h2'] }, onSocket);
    tls.onReload((ctx) => secure.setSecureContext(ctx));
    server = secure;
  } else server = net.createServer(onSocket);
  return lifecycle(server, connections);
}

/** node:http2's server. */
function nodeTransport(opts: TransportOptions, admit: Admit): Omit<Transport, 'port'> {
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
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    admit(stream, headers, stream.session!);
  });
  return lifecycle(server, sessions);
}

/** Shutdown (stop accepting, close every session gracefully, resolve once all are gone) and destroyAll. */
function lifecycle(server: net.Server, sessions: Set<{ close(): void; destroy(): void }>): Omit<Transport, 'port'> {
  return {
    server,
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      }),
    destroyAll: () => {
      for (const s of [...sessions]) s.destroy();
    },
  };
}

/** Trailers-only refusal; the request body, if any, is read and dropped. */
function refuse(stream: GrpcStream, code: (typeof Status)[keyof typeof Status], detail: string, extra?: OutgoingHeaders): void {
  new GrpcCall(stream).end(code, detail, extra);
  stream.resume();
}

/** `host:port`, `[v6]:port`. */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid gRPC listen address ${addr} (expected host:port)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
