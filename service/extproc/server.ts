// The ext_proc gRPC server: one Processor per `Process` stream, messages handled strictly in order
// (Envoy pipelines STREAMED chunks and applies each reply to the oldest outstanding one), plus
// grpc.health.v1.Health. Transport: our own HTTP/2 layer or node:http2 (h2/), not grpc-js.
import { constants as h2 } from 'node:http2';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import type { ProcessingRequest, ProcessingResponse } from './messages.ts';
import { Processor, ProtocolError, type BodyCaps, type Exchange, type PhaseResult } from './processor.ts';
import { decodeRequest, encodeResponse } from './codec.ts';
import { STAGE_METADATA_KEY, UPSTREAM_STAGE } from '../fallback/contract.ts';
import type { GrpcAuth } from '../security/index.ts';
import { GrpcCall } from './h2/call.ts';
import { MessageFramer } from './h2/framing.ts';
import { HEALTH_SERVICE_PREFIX, HealthService } from './h2/health.ts';
import { Status, type StatusCode } from './h2/status.ts';
import { listenGrpc, type Transport, type TransportKind } from './h2/transport.ts';
import type { GrpcStream, RequestHeaders } from './h2/stream.ts';

export const EXTPROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';
const PROCESS_PATH = `/${EXTPROC_SERVICE_NAME}/Process`;

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
  /** Peer authentication (security/grpc-auth.ts): TLS material and the per-stream check. Unset: plaintext, none. */
  auth?: Pick<GrpcAuth, 'tls' | 'check'>;
  /** The HTTP/2 implementation (TOLLGATE_GRPC_TRANSPORT): 'h2', ours (default), or 'node', node:http2. */
  transport?: TransportKind;
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
  server: Transport['server'];
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

const SCHEMA_MAX_BODY = 64 * 1024 * 1024;
/** A reply larger than this is a bug, not something to send (grpc-js' send limit before). */
const MAX_SEND_BYTES = 128 * 1024 * 1024;

/** What every Process stream of one server shares. */
interface StreamContext {
  opts: ExtProcServerOptions;
  streams: Map<GrpcStream, ProcessStream>;
}

/**
 * One `Process` stream: its Processor, the messages waiting for it (handled strictly in order, one
 * at a time) and the gRPC call's end. A class rather than closures per stream, and an array queue
 * drained by one loop rather than a promise chained per message: fewer allocations per message.
 */
class ProcessStream {
  /** performance.now() of the last message received or reply sent. */
  lastActivity = performance.now();
  /** Messages received and not answered yet: the stream waits on us, not idle. */
  pending = 0;
  private closed = false;
  private readonly queue: ProcessingRequest[] = [];
  /** The drain loop is running (a message is being handled or awaited). */
  private running = false;
  /** Run once the queue is empty (what `queue.then(...)` did with a promise chain). */
  private afterQueue: (() => void)[] | undefined;
  private readonly framer: MessageFramer;

  constructor(
    private readonly ctx: StreamContext,
    private readonly stream: GrpcStream,
    private readonly call: GrpcCall,
    private readonly processor: Processor,
    maxMessageBytes: number,
  ) {
    this.framer = new MessageFramer(maxMessageBytes, (buf) => this.onFrame(buf));
    // Data keeps being read after a failure (and dropped), so the connection's flow-control window moves on.
    stream.on('data', (chunk: Buffer) => {
      const err = this.framer.push(chunk);
      if (err && !call.ended) this.cut(err.code, err.detail);
    });
    stream.on('end', () => {
      if (this.framer.partial && !call.ended) this.cut(Status.INTERNAL, 'stream ended inside a message');
      // Envoy half-closes when the HTTP exchange is over; finish our side after pending replies.
      this.whenIdle(() => {
        if (!processor.finished) this.close('aborted', 'stream ended by Envoy before the exchange finished');
        else {
          this.closed = true;
          ctx.streams.delete(stream);
        }
        call.end(Status.OK);
      });
    });
    stream.on('error', (err: Error) => this.close('aborted', `stream error: ${err.message}`));
    stream.on('close', () => {
      // Reset by the peer (Envoy cancels a stream whose exchange got its response) or the connection went.
      if (!call.ended || stream.rstCode !== h2.NGHTTP2_NO_ERROR) this.close('aborted', 'stream cancelled');
      else
        this.whenIdle(() => {
          if (!processor.finished) this.close('aborted', 'stream closed');
        });
    });
  }

  /** Ends the stream's exchange (idempotent). */
  close(reason: 'aborted' | 'protocol_error', detail: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.streams.delete(this.stream);
    this.processor.abort(reason, detail);
  }

  /** Ends the exchange and the gRPC call with a status. */
  cut(code: StatusCode, detail: string): void {
    this.close('aborted', detail);
    this.call.end(code, detail);
  }

  private onFrame(buf: Buffer): void {
    if (this.closed) return;
    let msg: ProcessingRequest;
    try {
      msg = decodeRequest(buf);
    } catch (err) {
      this.cut(Status.INTERNAL, `Error deserializing request: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.lastActivity = performance.now();
    this.pending++;
    this.queue.push(msg);
    if (!this.running) {
      this.running = true;
      this.drainQueue();
    }
  }

  /** `fn` once every message received so far is handled (asynchronously, as a promise callback would be). */
  private whenIdle(fn: () => void): void {
    if (this.running) (this.afterQueue ??= []).push(fn);
    else queueMicrotask(fn);
  }

  /**
   * Handles the queued messages in order, each after the previous one's reply went out (Envoy applies
   * replies in order). Not `async`: a phase that answers at once (see PhaseResult) is replied to in this
   * turn, with no promise per message; only a phase that went async suspends the loop until its reply.
   */
  private drainQueue(): void {
    const { processor } = this;
    for (let msg = this.queue.shift(); msg !== undefined; msg = this.queue.shift()) {
      if (this.closed) {
        this.pending--;
        continue;
      }
      let r: PhaseResult<ProcessingResponse | undefined>;
      try {
        const early = processor.preflight(msg);
        if (early && !this.closed) send(this.call, early);
        r = processor.handleNow(msg);
      } catch (err) {
        this.fail(err);
        this.handled();
        continue;
      }
      if (r instanceof Promise) {
        void r.then(this.onReply, this.onFailure);
        return;
      }
      this.reply(r);
    }
    this.running = false;
    const after = this.afterQueue;
    if (after) {
      this.afterQueue = undefined;
      for (const fn of after) fn();
    }
  }

  /** An async phase's reply: send it, then go on with the queue (one pair of functions per stream, not per message). */
  private readonly onReply = (reply: ProcessingResponse | undefined): void => {
    this.reply(reply);
    this.drainQueue();
  };

  private readonly onFailure = (err: unknown): void => {
    this.fail(err);
    this.handled();
    this.drainQueue();
  };

  private reply(reply: ProcessingResponse | undefined): void {
    const { processor } = this;
    try {
      if (reply && !this.closed) send(this.call, reply);
      // Typed errors are the client's answer; anything else is our bug and must be visible.
      if (processor.lastError !== undefined && !(processor.lastError instanceof GatewayError)) {
        this.ctx.opts.log.error({ err: processor.lastError }, 'request failed with an internal error');
        processor.lastError = undefined;
      }
    } catch (err) {
      this.fail(err);
    }
    this.handled();
  }

  /** A message's handling failed (protocol violation, or our bug): the stream ends with a gRPC error. */
  private fail(err: unknown): void {
    const { ctx } = this;
    const detail = err instanceof Error ? err.message : String(err);
    if (err instanceof ProtocolError) {
      ctx.opts.log.warn({ detail }, 'ext_proc protocol violation; failing the stream');
      ctx.opts.onProtocolError?.(err);
    } else ctx.opts.log.error({ err }, 'ext_proc stream failed');
    this.close('protocol_error', detail);
    this.call.end(err instanceof ProtocolError ? Status.FAILED_PRECONDITION : Status.INTERNAL, detail);
  }

  /** One message answered (or failed). */
  private handled(): void {
    this.pending--;
    this.lastActivity = performance.now();
  }
}

function send(call: GrpcCall, reply: ProcessingResponse): void {
  const framed = encodeResponse(reply, true);
  if (framed.length - 5 > MAX_SEND_BYTES) throw new Error(`reply of ${framed.length - 5} bytes exceeds the ${MAX_SEND_BYTES}-byte send limit`);
  call.write(framed);
}

export async function startExtProcServer(addr: string, opts: ExtProcServerOptions): Promise<ExtProcServer> {
  const maxStreams = opts.maxStreams ?? STREAM_DEFAULTS.maxStreams;
  const idleTimeoutMs = opts.idleTimeoutMs ?? STREAM_DEFAULTS.idleTimeoutMs;
  const limits = opts.limits ?? (() => ({ maxRequestBytes: SCHEMA_MAX_BODY, maxResponseBytes: SCHEMA_MAX_BODY }));
  // Read when a stream opens: setMaxMessageBytes() (a config reload) applies to the streams opened after it.
  let maxMessageBytes = messageCapFor(limits());
  const health = new HealthService({ '': 'SERVING', [EXTPROC_SERVICE_NAME]: 'SERVING' });
  const streams = new Map<GrpcStream, ProcessStream>();
  const ctx: StreamContext = { opts, streams };
  // Body caps per stage, read per message (a reload applies at once); one function per stage, not per stream.
  const routerCaps: BodyCaps = () => {
    const l = limits();
    return { request: l.maxRequestBytes, response: l.maxResponseBytes };
  };
  const upstreamCaps: BodyCaps = () => {
    const l = limits();
    return { request: l.maxRequestBytes * UPSTREAM_BODY_FACTOR, response: l.maxResponseBytes };
  };

  const processStream = (stream: GrpcStream, headers: RequestHeaders): void => {
    const call = new GrpcCall(stream);
    if (streams.size >= maxStreams) {
      opts.onStreamCut?.('max_streams');
      call.end(Status.RESOURCE_EXHAUSTED, `too many concurrent ext_proc streams (limit ${maxStreams}, TOLLGATE_MAX_STREAMS)`);
      stream.resume();
      return;
    }
    const stage: Stage = headers[STAGE_METADATA_KEY] === UPSTREAM_STAGE ? 'upstream' : 'router';
    const processor = new Processor(opts.newExchange(stage), stage === 'upstream' ? upstreamCaps : routerCaps);
    streams.set(stream, new ProcessStream(ctx, stream, call, processor, maxMessageBytes));
  };

  // One sweep for every stream (not a timer per message): cuts the streams idle past the limit.
  let sweeper: NodeJS.Timeout | undefined;
  if (idleTimeoutMs > 0) {
    sweeper = setInterval(() => {
      const now = performance.now();
      for (const s of [...streams.values()])
        if (s.pending === 0 && now - s.lastActivity > idleTimeoutMs) {
          opts.onStreamCut?.('idle_timeout');
          s.cut(Status.DEADLINE_EXCEEDED, `${IDLE_DETAIL} (${idleTimeoutMs} ms, TOLLGATE_STREAM_IDLE_TIMEOUT_MS)`);
        }
    }, Math.max(10, Math.min(1000, Math.floor(idleTimeoutMs / 4))));
    sweeper.unref();
  }

  const serveHealth = (stream: GrpcStream, headers: RequestHeaders): void => health.serve(typeof headers[':path'] === 'string' ? headers[':path'] : '', stream);
  const transport = await listenGrpc(addr, {
    ...(opts.auth ? { auth: opts.auth } : {}),
    ...(opts.transport ? { kind: opts.transport } : {}),
    route: (path) => (path === PROCESS_PATH ? processStream : path.startsWith(HEALTH_SERVICE_PREFIX) ? serveHealth : undefined),
  }).catch((err: unknown) => {
    if (sweeper) clearInterval(sweeper);
    throw err;
  });

  return {
    server: transport.server,
    port: transport.port,
    active: () => streams.size,
    setMaxMessageBytes: (bytes: number) => {
      maxMessageBytes = bytes;
    },
    drain: async (graceMs: number) => {
      if (sweeper) clearInterval(sweeper);
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(EXTPROC_SERVICE_NAME, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // End what is left ourselves, now: each exchange records itself as aborted before the server goes.
          for (const s of [...streams.values()]) s.close('aborted', DRAIN_DEADLINE_DETAIL);
          transport.destroyAll();
          resolve();
        }, graceMs);
        timer.unref();
        void transport.shutdown().then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
