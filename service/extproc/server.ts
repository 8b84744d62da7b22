// Thin gRPC layer: one Processor per `Process` stream, messages handled strictly in order
// (Envoy pipelines STREAMED chunks and applies each reply to the oldest outstanding one).
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import type { ProcessingRequest, ProcessingResponse } from './messages.ts';
import { Processor, ProtocolError, type Exchange } from './processor.ts';
import { leanExtProcService } from './codec.ts';
import { STAGE_METADATA_KEY, UPSTREAM_STAGE } from '../fallback/contract.ts';
import type { GrpcAuth } from '../security/index.ts';

export const EXTPROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';
/** End detail of a stream still open when drain() ran out of time (lineage `errorCode`). */
export const DRAIN_DEADLINE_DETAIL = 'cut at the shutdown drain deadline';
/** End detail of a stream that sent nothing for TOLLGATE_STREAM_IDLE_TIMEOUT_MS. */
export const IDLE_DETAIL = 'stream idle past the limit';

export const STREAM_DEFAULTS = {
  /** Concurrent Process streams (TOLLGATE_MAX_STREAMS). */
  maxStreams: 4096,
  /**
   * No message for this long ends a stream (TOLLGATE_STREAM_IDLE_TIMEOUT_MS). Above Envoy's route timeout
   * (600 s): a stream legitimately waits that long for the upstream's first byte.
   */
  idleTimeoutMs: 660_000,
};

/** Room for headers, metadata and attributes in one gRPC message on top of a body. */
export const MESSAGE_OVERHEAD_BYTES = 1024 * 1024;

/**
 * The upstream stage sees the body Tollgate itself rewrote (translated, redacted): it may be somewhat
 * larger than the client's, so that stage allows this multiple of maxRequestBytes.
 */
export const UPSTREAM_BODY_FACTOR = 2;

/** The current config's body limits (read per message: a reload applies to the next one). */
export interface BodyLimits {
  maxRequestBytes: number;
  maxResponseBytes: number;
}

/** Largest gRPC message the transport should accept for these limits. */
export function messageCapFor(l: BodyLimits): number {
  return Math.max(l.maxRequestBytes * UPSTREAM_BODY_FACTOR, l.maxResponseBytes) + MESSAGE_OVERHEAD_BYTES;
}

/** Why a stream was refused or cut by the server itself (metrics label). */
export type StreamCut = 'max_streams' | 'idle_timeout';

/** Which of Envoy's two ext_proc filters opened the stream (gRPC initial metadata, see fallback/contract.ts). */
export type Stage = 'router' | 'upstream';

export interface ExtProcServerOptions {
  newExchange: (stage: Stage) => Exchange;
  log: Logger;
  /** Called with each finished stream's protocol error, for metrics. */
  onProtocolError?: (err: ProtocolError) => void;
  /** Peer authentication (security/grpc-auth.ts): TLS credentials and the interceptor that refuses unauthenticated calls. Unset: plaintext, none. */
  auth?: Pick<GrpcAuth, 'credentials' | 'interceptors'>;
  /** Concurrent streams; one more is refused with RESOURCE_EXHAUSTED (default STREAM_DEFAULTS.maxStreams). */
  maxStreams?: number;
  /** A stream with no message for this long (and no reply being computed) ends as aborted; 0 = never (default STREAM_DEFAULTS.idleTimeoutMs). */
  idleTimeoutMs?: number;
  /** Body limits: a body over them is refused, not buffered. Unset: the schema's largest (64 MiB). */
  limits?: () => BodyLimits;
  /** Streams the server refused or cut itself, for metrics. */
  onStreamCut?: (reason: StreamCut) => void;
}

export interface ExtProcServer {
  server: grpc.Server;
  port: number;
  /** In-flight streams right now. */
  active(): number;
  /** Stop accepting, let in-flight streams finish within `graceMs`, then cut the rest (each ends as aborted first). */
  drain(graceMs: number): Promise<void>;
  /**
   * The largest gRPC message accepted by streams opened from now on: the transport refuses a larger
   * one from its length prefix, before buffering it (call with messageCapFor(limits) after a reload).
   */
  setMaxMessageBytes(bytes: number): void;
}

type Call = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

const SCHEMA_MAX_BODY = 64 * 1024 * 1024;

interface OpenStream {
  /** Ends the stream's exchange (idempotent). */
  close: (reason: 'aborted' | 'protocol_error', detail: string) => void;
  /** Ends the exchange and the gRPC call with a status. */
  cut: (code: grpc.status, detail: string) => void;
  /** performance.now() of the last message received or reply sent. */
  lastActivity: number;
  /** Messages received and not answered yet: the stream waits on us, not idle. */
  pending: number;
}

export async function startExtProcServer(addr: string, opts: ExtProcServerOptions): Promise<ExtProcServer> {
  const maxStreams = opts.maxStreams ?? STREAM_DEFAULTS.maxStreams;
  const idleTimeoutMs = opts.idleTimeoutMs ?? STREAM_DEFAULTS.idleTimeoutMs;
  const limits = opts.limits ?? (() => ({ maxRequestBytes: SCHEMA_MAX_BODY, maxResponseBytes: SCHEMA_MAX_BODY }));
  // grpc-js reads this object for every new call (server.ts passes it by reference), which is what
  // lets setMaxMessageBytes() follow a config reload; test/unit/stream-limits.test.ts checks it.
  const serverOptions: grpc.ServerOptions = {
    'grpc.max_receive_message_length': messageCapFor(limits()),
    'grpc.max_send_message_length': 128 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors: opts.auth?.interceptors ?? [],
  };
  const server = new grpc.Server(serverOptions);
  const health = new HealthImplementation({ '': 'SERVING', [EXTPROC_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  const streams = new Map<Call, OpenStream>();

  server.addService(leanExtProcService(), {
    Process: (call: Call) => {
      if (streams.size >= maxStreams) {
        opts.onStreamCut?.('max_streams');
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `too many concurrent ext_proc streams (limit ${maxStreams}, TOLLGATE_MAX_STREAMS)` });
        return;
      }
      const stage: Stage = call.metadata.get(STAGE_METADATA_KEY)[0] === UPSTREAM_STAGE ? 'upstream' : 'router';
      const processor = new Processor(opts.newExchange(stage), () => {
        const l = limits();
        return { request: stage === 'upstream' ? l.maxRequestBytes * UPSTREAM_BODY_FACTOR : l.maxRequestBytes, response: l.maxResponseBytes };
      });
      let queue: Promise<void> = Promise.resolve();
      let closed = false;

      const close = (reason: 'aborted' | 'protocol_error', detail: string): void => {
        if (closed) return;
        closed = true;
        streams.delete(call);
        processor.abort(reason, detail);
      };
      const state: OpenStream = {
        close,
        cut: (code, detail) => {
          close('aborted', detail);
          call.emit('error', { code, details: detail });
        },
        lastActivity: performance.now(),
        pending: 0,
      };
      streams.set(call, state);

      call.on('data', (msg: ProcessingRequest) => {
        state.lastActivity = performance.now();
        state.pending++;
        queue = queue.then(async () => {
          if (closed) return;
          try {
            const early = processor.preflight(msg);
            if (early && !closed) call.write(early);
            const reply = await processor.handle(msg);
            if (reply && !closed) call.write(reply);
            // Typed errors are the client's answer; anything else is our bug and must be visible.
            if (processor.lastError !== undefined && !(processor.lastError instanceof GatewayError)) {
              opts.log.error({ err: processor.lastError }, 'request failed with an internal error');
              processor.lastError = undefined;
            }
          } catch (err) {
            const detail = err instanceof Error ? err.message : String(err);
            if (err instanceof ProtocolError) {
              opts.log.warn({ detail }, 'ext_proc protocol violation; failing the stream');
              opts.onProtocolError?.(err);
            } else opts.log.error({ err }, 'ext_proc stream failed');
            close('protocol_error', detail);
            // grpc-js ends a server stream with a status when 'error' is emitted on the call.
            call.emit('error', {
              code: err instanceof ProtocolError ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL,
              details: detail,
            });
          } finally {
            state.pending--;
            state.lastActivity = performance.now();
          }
        });
      });
      call.on('end', () => {
        // Envoy half-closes when the HTTP exchange is over; finish our side after pending replies.
        void queue.then(() => {
          if (!processor.finished) close('aborted', 'stream ended by Envoy before the exchange finished');
          else {
            closed = true;
            streams.delete(call);
          }
          call.end();
        });
      });
      call.on('cancelled', () => close('aborted', 'stream cancelled'));
      call.on('error', (err) => close('aborted', `stream error: ${err.message}`));
      call.on('close', () => {
        void queue.then(() => {
          if (!processor.finished) close('aborted', 'stream closed');
        });
      });
    },
  });

  // One sweep for every stream (not a timer per message): cuts the streams idle past the limit.
  let sweeper: NodeJS.Timeout | undefined;
  if (idleTimeoutMs > 0) {
    sweeper = setInterval(() => {
      const now = performance.now();
      for (const s of [...streams.values()])
        if (s.pending === 0 && now - s.lastActivity > idleTimeoutMs) {
          opts.onStreamCut?.('idle_timeout');
          s.cut(grpc.status.DEADLINE_EXCEEDED, `${IDLE_DETAIL} (${idleTimeoutMs} ms, TOLLGATE_STREAM_IDLE_TIMEOUT_MS)`);
        }
    }, Math.max(10, Math.min(1000, Math.floor(idleTimeoutMs / 4))));
    sweeper.unref();
  }

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, opts.auth?.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  ).catch((err: unknown) => {
    if (sweeper) clearInterval(sweeper);
    throw err;
  });

  return {
    server,
    port,
    active: () => streams.size,
    setMaxMessageBytes: (bytes: number) => {
      serverOptions['grpc.max_receive_message_length'] = bytes;
    },
    drain: async (graceMs: number) => {
      if (sweeper) clearInterval(sweeper);
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(EXTPROC_SERVICE_NAME, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // End what is left ourselves, now: each exchange records itself as aborted before the server goes.
          for (const s of [...streams.values()]) s.close('aborted', DRAIN_DEADLINE_DETAIL);
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
