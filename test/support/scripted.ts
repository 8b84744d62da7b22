// Scripted peers for Envoy contract tests (test/e2e/envoy-contract*.test.ts): an ext_proc processor
// that answers each message as a script says (well or badly), and loopback HTTP upstreams that
// answer, reset or hang as told. They stand where Tollgate and the providers would, so a test can
// drive a real Envoy with traffic Tollgate would never send and watch Envoy's reaction.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { STAGE_METADATA_KEY, UPSTREAM_STAGE } from '../../service/fallback/contract.ts';

/** One Process stream as the processor saw it. */
export interface StreamLog {
  /** 'upstream' when the stream carries the upstream filter's initial metadata (x-tollgate-stage). */
  stage: 'router' | 'upstream';
  /** 0-based, per stage: the n-th upstream stream belongs to attempt n+1. */
  index: number;
  /** gRPC initial metadata of the stream. */
  metadata: Record<string, string>;
  messages: ProcessingRequest[];
  /** Sequence numbers (shared by all streams) of the opening, and of Envoy's half-close or cancel. */
  openedAt: number;
  endedAt?: number;
  /** How the stream ended from Envoy's side. */
  end?: 'half-close' | 'cancel';
}

/**
 * Answers one message: the reply to write now, or null for none. `later` writes a reply whenever
 * the script wants (after a delay, or a second one).
 */
export type Script = (m: ProcessingRequest, s: StreamLog, later: (r: ProcessingResponse) => void) => ProcessingResponse | null;

export interface ScriptedProcessor {
  addr: string;
  streams: StreamLog[];
  close(): void;
}

/** A gRPC ext_proc server; `upstream` answers streams of the upstream filter (default: `router`). */
export async function startScriptedProcessor(router: Script, upstream: Script = router): Promise<ScriptedProcessor> {
  const streams: StreamLog[] = [];
  let seq = 0;
  const server = new grpc.Server();
  server.addService(extProcService(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
      const stage = metadata[STAGE_METADATA_KEY] === UPSTREAM_STAGE ? 'upstream' : 'router';
      const log: StreamLog = { stage, index: streams.filter((s) => s.stage === stage).length, metadata, messages: [], openedAt: seq++ };
      streams.push(log);
      const write = (r: ProcessingResponse): void => {
        if (!call.writable || call.cancelled) return;
        call.write(r);
      };
      call.on('data', (m: ProcessingRequest) => {
        log.messages.push(m);
        const r = (stage === 'upstream' ? upstream : router)(m, log, write);
        if (r) write(r);
      });
      call.on('end', () => {
        if (log.endedAt === undefined) Object.assign(log, { endedAt: seq++, end: 'half-close' });
        call.end();
      });
      call.on('cancelled', () => {
        if (log.endedAt === undefined) Object.assign(log, { endedAt: seq++, end: 'cancel' });
      });
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { addr: `127.0.0.1:${port}`, streams, close: () => server.forceShutdown() };
}

/** What an upstream does with one request: answer with this status, reset the socket, or never answer. */
export type Action = number | 'reset' | 'hang';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ScriptedUpstream {
  name: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** Answers requests with `script` in order, then `then` (default 200); the JSON body names the upstream and the count. */
export async function startScriptedUpstream(name: string, script: Action[] = [], then: Action = 200): Promise<ScriptedUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const action = script[seen.length - 1] ?? then;
      if (action === 'reset') return req.socket.destroy();
      if (action === 'hang') return;
      const out = JSON.stringify({ from: name, n: seen.length });
      res.writeHead(action, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A loopback port nothing listens on (connect failure). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Header value of a request/response headers message (raw_value, latin1). */
export function headerValue(m: ProcessingRequest, key: string): string | undefined {
  const h = (m.request_headers ?? m.response_headers)?.headers?.headers?.find((x) => x.key === key);
  if (!h) return undefined;
  return h.raw_value && h.raw_value.length ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
}

/** Waits (bounded) for a condition Envoy reaches after the client already has its response. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
