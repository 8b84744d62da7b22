// The Envoy stand-in: an HTTP front that drives Tollgate over real gRPC exactly as Envoy's ext_proc
// filter does (see shared/envoy-extproc-protocol.md). It is deliberately strict: whatever Envoy
// rejects, it rejects the same way, so bugs show up here instead of in production.
// Behind the router-level filter it plays Envoy's router too: the route's retry policy, priority
// "chain" clusters and a cluster's upstream ext_proc filter, run once per attempt
// (docs/design/provider-fallback.md §1.2 E2–E11, §2.6).
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type {
  BodySendMode,
  CommonResponse,
  HeaderMutation,
  HeaderSendMode,
  PbStruct,
  ProcessingRequest,
  ProcessingResponse,
} from '../../service/extproc/messages.ts';
import { extProcClientCtor } from '../../service/extproc/proto.ts';
import { envoyRoot } from './envoy-schema.ts';
import { toPbStruct } from '../../service/extproc/mutations.ts';

export interface StandinCluster {
  host: string;
  port: number;
}

/** One endpoint of a chain cluster (one lb_endpoint in a LocalityLbEndpoints of that priority). */
export interface StandinChainEndpoint {
  host: string;
  port: number;
  /** Endpoint metadata.filter_metadata: namespace → key → value. */
  metadata?: Record<string, Record<string, unknown>>;
}

/** The cluster's upstream ext_proc filter (HttpProtocolOptions.http_filters), run once per attempt. */
export interface StandinUpstreamExtProc {
  /** Defaults SEND / BUFFERED / SEND / NONE (trailers SKIP). Only NONE/BUFFERED request bodies and a NONE response body are emulated. */
  processingMode?: {
    request_header_mode?: HeaderSendMode;
    request_body_mode?: BodySendMode;
    response_header_mode?: HeaderSendMode;
    response_body_mode?: BodySendMode;
  };
  /** ext_proc request_attributes (CEL): `xds.upstream_host_metadata.filter_metadata['ns']['key']` and `xds.cluster_name` resolve; others are omitted. */
  requestAttributes?: string[];
  /** metadata_options.forwarding_namespaces.untyped: copied from the downstream stream's dynamic metadata. */
  forwardingNamespaces?: string[];
  mutationRules?: { allowAllRouting?: boolean; allowEnvoy?: boolean; disallowIsError?: boolean };
  /** message_timeout, ms (default 200). */
  messageTimeoutMs?: number;
  /** grpc_service.initial_metadata: gRPC call metadata on every Process stream of this filter. */
  initialMetadata?: Record<string, string>;
  /**
   * Tollgate replicas behind this filter's gRPC cluster, picked round-robin per stream (a
   * STRICT_DNS cluster of several hosts); default: the router-level filter's `extProcAddr`.
   */
  extProcAddrs?: string[];
  /**
   * What Envoy does with this filter's immediate_response or processing error (fail-closed):
   * - 'stall' (default; Envoy releases without envoyproxy/envoy#41231, e.g. the v1.34 image in
   *   docker-compose.yml): no local reply can leave an upstream filter, so the attempt just stops
   *   until the per-try (or route) timeout ends it — then the router may retry (AI Gateway #621, #840);
   * - 'downstream' (with #41231): a local reply straight to the client, no retry (E9).
   * Either way the upstream is never contacted.
   */
  localReplies?: 'stall' | 'downstream';
}

/** A "chain" cluster: one endpoint per priority (index = priority), optionally with an upstream ext_proc filter. */
export interface StandinChainCluster {
  priorities: StandinChainEndpoint[];
  upstreamExtProc?: StandinUpstreamExtProc;
}

/** retry_on values the stand-in understands ('refused-stream' is accepted; its HTTP/1 upstreams never refuse a stream). */
export type StandinRetryOn = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'retriable-status-codes' | 'refused-stream';

/** The route's retry_policy (plus the virtual host's include_request_attempt_count). */
export interface StandinRetryPolicy {
  retryOn: StandinRetryOn[];
  retriableStatusCodes?: number[];
  numRetries: number;
  /** per_try_timeout, ms: from sending the request until the upstream's response headers. */
  perTryTimeoutMs?: number;
  /** retry_priority envoy.retry_priorities.previous_priorities with update_frequency: 1. */
  previousPriorities?: boolean;
  /** VirtualHost.include_request_attempt_count: `x-envoy-attempt-count` on every attempt. */
  includeAttemptCount?: boolean;
  /** Wait between attempts, ms (default 25, Envoy's base_interval; Envoy jitters it, the stand-in does not). */
  backoffMs?: number;
  /**
   * Only clusters whose name starts with this get the policy, like envoy.yaml's chain route (it
   * matches `x-tollgate-cluster` prefix `tgc.`; the provider-cluster route has no retries).
   */
  clusterPrefix?: string;
}

export interface StandinAttempt {
  attempt: number;
  /** Chain clusters only: the priority this attempt went to. */
  priority?: number;
  host: string;
  port: number;
  /** The status the router saw (after the upstream filter); 0 = reset / connect failure / per-try timeout. */
  status: number;
  /** The status the upstream itself answered (0 if it did not answer or was never contacted). */
  upstreamStatus: number;
  upstreamPath?: string;
  /** As sent to (and received by) the upstream. */
  upstreamHeaders: Record<string, string>;
  upstreamBody: string;
  /** Messages sent on this attempt's upstream ext_proc stream. */
  sentToProcessor: string[];
  localReplyDetails?: string;
}

export interface StandinOptions {
  /** Tollgate's gRPC address, e.g. 127.0.0.1:50051. */
  extProcAddr: string;
  clusters: Record<string, StandinCluster>;
  processingMode?: {
    request_header_mode?: HeaderSendMode;
    request_body_mode?: BodySendMode;
    response_header_mode?: HeaderSendMode;
    response_body_mode?: BodySendMode;
  };
  allowModeOverride?: boolean;
  /** Per-message timeout, ms (Envoy default 200 ms). */
  messageTimeoutMs?: number;
  /** max_message_timeout, ms: enables override_message_timeout (unset → overrides are ignored). */
  maxMessageTimeoutMs?: number;
  failureModeAllow?: boolean;
  /** Listener per_connection_buffer_limit_bytes (Envoy default 1 MiB). */
  bufferLimitBytes?: number;
  clusterHeader?: string;
  hostRewriteHeader?: string;
  mutationRules?: { allowAllRouting?: boolean; allowEnvoy?: boolean; disallowIsError?: boolean };
  /** receiving_namespaces.untyped; metadata in other namespaces is dropped. */
  receivingNamespaces?: string[];
  /** Emulates jwt_authn: verifies HS256 bearer tokens and forwards the payload in metadata_context. */
  jwt?: { secret: string; payloadKey: string; forward?: boolean };
  /** HCM route timeout for the upstream, ms. */
  upstreamTimeoutMs?: number;
  /** Chain clusters by name, alongside the plain `clusters` (a name may not be in both). */
  chains?: Record<string, StandinChainCluster>;
  /** The route's retry_policy; applies to plain clusters too (every attempt goes to their one host). */
  retry?: StandinRetryPolicy;
  /** grpc_service.initial_metadata of the router-level filter. */
  extProcMetadata?: Record<string, string>;
}

export interface StandinEvent {
  kind:
    | 'spurious'
    | 'rejected_mutation'
    | 'local_reply'
    | 'clear_route_cache_ignored'
    | 'timeout'
    | 'grpc_error'
    | 'timeout_override'
    | 'timeout_override_ignored'
    /** clear_route_cache from an upstream filter: a no-op (E2). */
    | 'clear_route_cache_upstream_ignored'
    /** An attempt is retried; the detail says why and where the next one goes. */
    | 'retry'
    /** The last attempt was retriable but no retries were left (Envoy's URX flag). */
    | 'retry_limit_exceeded'
    /** The retry policy was dropped for this request (body over the buffer limit, E11). */
    | 'retry_disabled'
    /** The content-length header of the shared header list does not match the attempt's body (stale after a retry, E4). */
    | 'upstream_content_length_mismatch'
    /** An upstream filter refused an attempt, and this Envoy cannot send that reply (localReplies: 'stall'). */
    | 'upstream_local_reply_stalled';
  detail: string;
}

export interface ExchangeRecord {
  path: string;
  cluster?: string;
  upstreamPath?: string;
  status: number;
  localReplyDetails?: string;
  dynamicMetadata: Record<string, unknown>;
  sentToProcessor: string[];
  /** Every upstream attempt, in order (set once the router starts the first one). */
  attempts?: StandinAttempt[];
}

export interface Standin {
  port: number;
  url: string;
  events: StandinEvent[];
  exchanges: ExchangeRecord[];
  close(): Promise<void>;
}

type Headers = [string, string][];
type MutationRules = NonNullable<StandinOptions['mutationRules']>;

class LocalReply extends Error {
  constructor(
    readonly status: number,
    readonly details: string,
    readonly body = '',
    readonly headers: Headers = [],
  ) {
    super(details);
  }
}

const PSEUDO = new Set([':method', ':path', ':authority', ':scheme', ':status']);

function get(h: Headers, name: string): string | undefined {
  return h.find(([k]) => k === name)?.[1];
}
function del(h: Headers, name: string): Headers {
  return h.filter(([k]) => k !== name);
}
/** Overwrites a header where it stands (or appends it), as Envoy's setCopy/setReferenceKey do. */
function put(h: Headers, name: string, value: string): Headers {
  const i = h.findIndex(([k]) => k === name);
  if (i < 0) return [...h, [name, value]];
  return [...h.slice(0, i), [name, value] as [string, string], ...del(h.slice(i + 1), name)];
}

function b64urlJson(s: string): unknown {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

/** Signs an HS256 JWT for tests (the stand-in verifies it like jwt_authn would). */
export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** One gRPC Process stream with a FIFO of outstanding messages, like Envoy's ChunkQueue. */
class ProcessorStream {
  private readonly call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  private waiters: { resolve: (r: ProcessingResponse) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; what: string; overridden: boolean }[] = [];
  private failed: Error | undefined;
  readonly sent: string[] = [];

  constructor(
    client: grpc.Client,
    private readonly timeoutMs: number,
    private readonly maxTimeoutMs: number | undefined,
    private readonly note: (kind: StandinEvent['kind'], detail: string) => void,
    initialMetadata?: Record<string, string>,
  ) {
    const c = client as unknown as {
      Process(md?: grpc.Metadata): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
    };
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(initialMetadata ?? {})) md.set(k, v);
    this.call = c.Process(md);
    this.call.on('data', (r: ProcessingResponse) => {
      if (r.override_message_timeout && !r.response) {
        this.override(r.override_message_timeout);
        return;
      }
      const w = this.waiters.shift();
      if (!w) {
        this.fail(new Error('spurious: reply with nothing outstanding'));
        return;
      }
      clearTimeout(w.timer);
      w.resolve(r);
    });
    this.call.on('error', (e: Error) => this.fail(e));
    this.call.on('end', () => this.fail(new Error('processor closed the stream')));
  }

  /** Filter::onNewTimeout: needs max_message_timeout, 1 ms ≤ value ≤ max, once per state; re-arms the timer. */
  private override(d: { seconds?: number | string; nanos?: number }): void {
    const w = this.waiters[0];
    const ms = Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
    if (!w || this.maxTimeoutMs === undefined || ms < 1 || ms > this.maxTimeoutMs || w.overridden) {
      this.note('timeout_override_ignored', `${ms} ms`);
      return;
    }
    w.overridden = true;
    clearTimeout(w.timer);
    w.timer = this.arm(w, ms);
    this.note('timeout_override', `${w.what}: ${ms} ms`);
  }

  private arm(w: { reject: (e: Error) => void; what: string }, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const idx = this.waiters.findIndex((x) => x.timer === timer);
      if (idx >= 0) this.waiters.splice(idx, 1);
      w.reject(new TimeoutError(`${w.what}: no reply within ${ms} ms`));
    }, ms);
    return timer;
  }

  private fail(e: Error): void {
    if (!this.failed) this.failed = e;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  /** Sends a message and returns the promise of its reply (replies match messages in FIFO order). */
  send(msg: ProcessingRequest, what: string): Promise<ProcessingResponse> {
    if (this.failed) return Promise.reject(this.failed);
    this.sent.push(what);
    return new Promise((resolve, reject) => {
      // Envoy re-arms one timer per message sent.
      const w = { resolve, reject, what, overridden: false, timer: undefined as unknown as NodeJS.Timeout };
      w.timer = this.arm(w, this.timeoutMs);
      this.waiters.push(w);
      this.call.write(msg);
    });
  }

  end(): void {
    this.call.end();
  }
  cancel(): void {
    this.call.cancel();
  }
}

class TimeoutError extends Error {}

export async function startStandin(opts: StandinOptions): Promise<Standin> {
  const Ctor = extProcClientCtor();
  const client = new Ctor(opts.extProcAddr, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 128 * 1024 * 1024,
    'grpc.max_send_message_length': 128 * 1024 * 1024,
  });
  const mode = {
    request_header_mode: 'SEND' as HeaderSendMode,
    request_body_mode: 'BUFFERED' as BodySendMode,
    response_header_mode: 'SEND' as HeaderSendMode,
    response_body_mode: 'BUFFERED' as BodySendMode,
    ...opts.processingMode,
  };
  const cfg = {
    timeout: opts.messageTimeoutMs ?? 200,
    bufferLimit: opts.bufferLimitBytes ?? 1024 * 1024,
    clusterHeader: opts.clusterHeader ?? 'x-tollgate-cluster',
    hostHeader: opts.hostRewriteHeader ?? 'x-tollgate-host',
    receiving: new Set(opts.receivingNamespaces ?? ['tollgate']),
  };
  validateChains(opts);
  const events: StandinEvent[] = [];
  const exchanges: ExchangeRecord[] = [];
  const note = (kind: StandinEvent['kind'], detail: string): void => {
    events.push({ kind, detail });
  };

  /** Applies a HeaderMutation with a filter's mutation rules (mutation_rules.cc, mutation_utils.cc); the router-level filter's by default. */
  function applyMutation(h: Headers, m: HeaderMutation | undefined, stripContentLength: boolean, rules: MutationRules = opts.mutationRules ?? {}): Headers {
    if (!m) return h;
    let out = [...h];
    const refuse = (what: string): void => {
      note('rejected_mutation', what);
      if (rules.disallowIsError) throw new LocalReply(500, `ext_proc_mutation_rejected ${what}`);
    };
    for (const name of m.remove_headers ?? []) {
      const k = name.toLowerCase();
      if (k.startsWith(':') || k === 'host') {
        refuse(`remove ${k}`);
        continue;
      }
      out = del(out, k);
    }
    for (const opt of m.set_headers ?? []) {
      const hv = opt.header;
      const k = hv.key.toLowerCase();
      const hasRaw = hv.raw_value !== undefined && hv.raw_value !== null && Buffer.from(hv.raw_value).length > 0;
      if (hasRaw && hv.value) throw new LocalReply(500, 'ext_proc_header_mutation_both_value_and_raw_value');
      // Envoy reads only raw_value: a value-only mutation writes an empty header.
      const v = hasRaw ? Buffer.from(hv.raw_value as Buffer).toString('latin1') : '';
      if (/[\r\n\0]/.test(v) || !/^[!#$%&'*+\-.^_`|~0-9a-z:]+$/.test(k))
        throw new LocalReply(500, `ext_proc_invalid_header ${k}`);
      const append = opt.append?.value === true;
      if (['host', ':authority', ':method', ':scheme'].includes(k) && !rules.allowAllRouting) {
        refuse(`set ${k}`);
        continue;
      }
      if (k.startsWith('x-envoy-') && !rules.allowEnvoy) {
        refuse(`set ${k}`);
        continue;
      }
      if (k.startsWith(':') && append) {
        refuse(`append ${k}`);
        continue;
      }
      if (k === ':status') {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 200 || n > 999) {
          refuse(`set :status ${v}`);
          continue;
        }
      }
      if (k === 'content-length' && stripContentLength) continue; // Envoy strips content-length in these modes
      if (append) out.push([k, v]);
      else out = [...del(out, k), [k, v]];
    }
    return out;
  }

  function checkContentLength(h: Headers, body: Buffer, what: string): void {
    const cl = get(h, 'content-length');
    if (cl !== undefined && Number(cl) !== body.length)
      throw new LocalReply(500, `${what}: mismatch between content length (${cl}) and the length of the mutated body (${body.length})`);
  }

  function mergeMetadata(target: Record<string, unknown>, r: ProcessingResponse): void {
    const fields = r.dynamic_metadata?.fields ?? {};
    for (const [ns, v] of Object.entries(fields)) {
      if (!cfg.receiving.has(ns)) continue;
      const sv = v as { structValue?: { fields?: Record<string, unknown> } };
      if (!sv.structValue) continue;
      const plain = decodeStruct(sv.structValue);
      target[ns] = { ...(target[ns] as Record<string, unknown> | undefined), ...plain };
    }
  }

  /** Checks the reply's oneof matches what Envoy waits for (else: spurious message). */
  function expectReply(r: ProcessingResponse, expected: string): CommonResponse | 'immediate' {
    const which = r.response;
    if (which === 'immediate_response') return 'immediate';
    if (which !== expected) {
      note('spurious', `expected ${expected}, got ${which ?? 'nothing'}`);
      throw new LocalReply(500, 'spurious_message');
    }
    if (expected === 'request_trailers' || expected === 'response_trailers') return {};
    const inner = (r as Record<string, { response?: CommonResponse } | undefined>)[expected];
    const common = inner?.response ?? {};
    if (common.status === 'CONTINUE_AND_REPLACE' && !expected.endsWith('headers')) {
      note('spurious', `CONTINUE_AND_REPLACE on ${expected}`);
      throw new LocalReply(500, 'spurious_message');
    }
    return common;
  }

  function immediateToLocal(r: ProcessingResponse, rules?: MutationRules): LocalReply {
    const ir = r.immediate_response!;
    let status = statusNumber(ir.status?.code);
    if (status < 200) status = 200;
    let headers: Headers = [];
    try {
      headers = applyMutation([], ir.headers, false, rules);
    } catch {
      /* Envoy only logs mutation failures on immediate responses */
    }
    return new LocalReply(status, ir.details ?? 'ext_proc_immediate_response', Buffer.from(ir.body ?? Buffer.alloc(0)).toString('utf8'), headers);
  }

  function headerList(h: Headers): { headers: { key: string; raw_value: Buffer }[] } {
    return { headers: h.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
  }

  // ---- The router's attempt loop: retries, chain clusters and the upstream ext_proc filter ----

  const replicaClients = new Map<string, grpc.Client>();
  const roundRobin = new Map<StandinUpstreamExtProc, number>();
  /** The gRPC client for the next stream of an upstream filter (round-robin over its replicas). */
  function upstreamClient(f: StandinUpstreamExtProc): grpc.Client {
    const addrs = f.extProcAddrs;
    if (!addrs?.length) return client;
    const i = roundRobin.get(f) ?? 0;
    roundRobin.set(f, i + 1);
    const addr = addrs[i % addrs.length]!;
    let c = replicaClients.get(addr);
    if (!c) {
      c = new Ctor(addr, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': 128 * 1024 * 1024,
        'grpc.max_send_message_length': 128 * 1024 * 1024,
      });
      replicaClients.set(addr, c);
    }
    return c;
  }

  /** The retry policy of the route this cluster was reached by. */
  function routeRetry(cluster: string): StandinRetryPolicy | undefined {
    const r = opts.retry;
    return r && (!r.clusterPrefix || cluster.startsWith(r.clusterPrefix)) ? r : undefined;
  }

  /** The router's retry loop (router.cc doRetry / retry_state_impl.cc); returns the final attempt's response. */
  async function runAttempts(ctx: AttemptContext): Promise<AttemptResponse> {
    const policy = routeRetry(ctx.cluster);
    let maxAttempts = policy ? policy.numRetries + 1 : 1;
    // E11: a request body the router cannot buffer silently disables retries.
    if (policy && maxAttempts > 1 && ctx.body.length > cfg.bufferLimit) {
      note('retry_disabled', `request body ${ctx.body.length} bytes over the buffer limit ${cfg.bufferLimit}`);
      maxAttempts = 1;
    }
    const tried = new Set<number>(); // previous_priorities: priorities attempted since the last reset
    for (let n = 1; ; n++) {
      // include_request_attempt_count: written into the shared header list before every attempt (E4).
      if (policy?.includeAttemptCount) ctx.headers = put(ctx.headers, 'x-envoy-attempt-count', String(n));
      const pick = pickEndpoint(ctx, n, tried);
      const result = await attempt(ctx, n, pick);
      const why = retryReason(result, policy);
      if (!why || n >= maxAttempts || ctx.closed()) {
        if (why && n >= maxAttempts && policy) note('retry_limit_exceeded', `attempt ${n}: ${why}`);
        ctx.record.upstreamPath = ctx.record.attempts?.at(-1)?.upstreamPath;
        if (result.kind === 'no_response') throw result.reply(n > 1);
        return result;
      }
      if (result.kind === 'response') {
        result.upstream.destroy(); // the discarded response is never read
        result.filterStream?.end(); // ... and its attempt (with its upstream filter) is destroyed
      }
      note('retry', `attempt ${n}${pick.priority !== undefined ? ` (priority ${pick.priority})` : ''}: ${why}`);
      await new Promise((r) => setTimeout(r, policy!.backoffMs ?? 25));
      if (ctx.closed()) throw new LocalReply(0, 'downstream_remote_disconnect');
    }
  }

  /** Host choice: a plain cluster's one host; a chain's priority 0, or with previous_priorities (update_frequency 1) the lowest priority not yet attempted. */
  function pickEndpoint(ctx: AttemptContext, n: number, tried: Set<number>): { endpoint: StandinCluster | StandinChainEndpoint; priority?: number } {
    if (!ctx.chain) return { endpoint: ctx.plain! };
    const ps = ctx.chain.priorities;
    let p = 0;
    // The retry priority only applies on retries; once every priority was attempted, the excluded set resets.
    if (opts.retry?.previousPriorities && n > 1) {
      if (tried.size >= ps.length) tried.clear();
      p = ps.findIndex((_, i) => !tried.has(i));
    }
    tried.add(p);
    return { endpoint: ps[p]!, priority: p };
  }

  /** One attempt: a fresh upstream filter (E3) on the shared headers and a copy of the body (E4), then the upstream request. */
  async function attempt(ctx: AttemptContext, n: number, pick: { endpoint: StandinCluster | StandinChainEndpoint; priority?: number }): Promise<AttemptResult> {
    const { endpoint, priority } = pick;
    const rec: StandinAttempt = {
      attempt: n,
      ...(priority !== undefined ? { priority } : {}),
      host: endpoint.host,
      port: endpoint.port,
      status: 0,
      upstreamStatus: 0,
      upstreamHeaders: {},
      upstreamBody: '',
      sentToProcessor: [],
    };
    (ctx.record.attempts ??= []).push(rec);
    const filter = ctx.chain?.upstreamExtProc;
    const us = filter ? new ProcessorStream(upstreamClient(filter), filter.messageTimeoutMs ?? 200, undefined, note, filter.initialMetadata) : undefined;
    if (us) rec.sentToProcessor = us.sent;
    let ureq: http.ClientRequest | undefined;
    let upstream: http.IncomingMessage | undefined;
    ctx.abort = () => {
      us?.cancel();
      ureq?.destroy();
    };
    let outcome: 'kept' | 'done' | 'failed' = 'failed';
    try {
      let body: Buffer = Buffer.from(ctx.body); // E4: a fresh copy of what the router-level filter left
      if (us) body = await upstreamRequestPath(us, filter!, ctx, endpoint, body);
      const sent = await sendUpstream(ctx, endpoint, body, rec, (r) => (ureq = r));
      if (sent.kind === 'no_response') {
        // No response headers, so nothing more goes to the upstream filter.
        rec.localReplyDetails = sent.reply(false).details;
        outcome = 'done';
        return sent;
      }
      upstream = sent.upstream;
      rec.upstreamStatus = upstream.statusCode ?? 0;
      let rh = responseHeaders(upstream);
      // The upstream filter sees the response headers before the router does, so the retry decision sees its mutation.
      if (us && upstreamMode(filter!).response_header_mode !== 'SKIP') rh = await upstreamResponseHeaders(us, filter!, ctx, rh, upstream);
      rec.status = Number(get(rh, ':status'));
      outcome = 'kept';
      return { kind: 'response', upstream, rh, status: rec.status, ...(us ? { filterStream: us } : {}) };
    } catch (err) {
      const lr = err instanceof LocalReply ? err : processorFailure(err);
      rec.status = lr.status;
      rec.localReplyDetails = lr.details;
      upstream?.destroy();
      if (filter && !upstream && (filter.localReplies ?? 'stall') === 'stall' && !ctx.closed()) {
        // The refusal cannot reach the client: the attempt hangs until the router's timer fires.
        note('upstream_local_reply_stalled', `attempt ${n}: ${lr.status} ${lr.details}`);
        const perTry = routeRetry(ctx.cluster)?.perTryTimeoutMs;
        await new Promise((r) => setTimeout(r, perTry ?? opts.upstreamTimeoutMs ?? 30000));
        rec.status = 0;
        outcome = 'done';
        return noResponse(perTry !== undefined ? 'per-try-timeout' : 'timeout');
      }
      // With envoyproxy/envoy#41231 the upstream filter's local reply goes straight downstream, never retried (E9).
      throw lr;
    } finally {
      ctx.abort = undefined;
      // Envoy closes the stream when it destroys the attempt: half-close, nothing outstanding.
      // A kept response's stream is closed by whoever is done with it (retry loop or handle()).
      if (outcome === 'done') us?.end();
      else if (outcome === 'failed') us?.cancel();
    }
  }

  /** A Process-stream failure of the upstream filter → the local reply Envoy sends (fail-closed). */
  function processorFailure(err: unknown): LocalReply {
    if (err instanceof TimeoutError) {
      note('timeout', `upstream filter: ${err.message}`);
      return new LocalReply(504, 'ext_proc_error_per-message_timeout_exceeded', 'ext_proc message timeout');
    }
    const e = err as { code?: number; details?: string; message?: string };
    note('grpc_error', `upstream filter: ${e.code ?? ''} ${e.details ?? e.message ?? String(err)}`);
    return new LocalReply(500, `ext_proc_error_gRPC_error_${e.code ?? 2}{${e.details ?? e.message ?? ''}}`, 'ext_proc error');
  }

  /** The upstream filter's request direction; mutates the shared header list, returns this attempt's body. */
  async function upstreamRequestPath(us: ProcessorStream, filter: StandinUpstreamExtProc, ctx: AttemptContext, endpoint: StandinChainEndpoint, body: Buffer): Promise<Buffer> {
    const pm = upstreamMode(filter);
    const rules = filter.mutationRules ?? {};
    const hasBody = body.length > 0;
    // Attributes go on the first message of the direction; forwarded metadata on every message.
    let attributes: ProcessingRequest['attributes'] | undefined = upstreamAttributes(filter, ctx.cluster, endpoint);
    const decorate = (msg: ProcessingRequest): ProcessingRequest => {
      const out: ProcessingRequest = { ...msg, metadata_context: forwardedMetadata(filter, ctx) };
      if (attributes) out.attributes = attributes;
      attributes = undefined;
      return out;
    };
    const clearRouteCache = (c: CommonResponse, what: string): void => {
      if (c.clear_route_cache) note('clear_route_cache_upstream_ignored', `${what} reply`); // E2: never re-routes
    };
    let replaced = false;
    if (pm.request_header_mode !== 'SKIP') {
      const r = await us.send(decorate({ request_headers: { headers: headerList(ctx.headers), end_of_stream: !hasBody } }), 'request_headers');
      const c = expectReply(r, 'request_headers');
      if (c === 'immediate') throw immediateToLocal(r, rules);
      ctx.headers = applyMutation(ctx.headers, c.header_mutation, false, rules);
      clearRouteCache(c, 'request_headers');
      if (c.status === 'CONTINUE_AND_REPLACE' && c.body_mutation?.body) {
        // Replaces the body, drops content-length and sends no body message (protocol §5).
        body = Buffer.from(c.body_mutation.body);
        ctx.headers = del(ctx.headers, 'content-length');
        replaced = true;
      }
    }
    if (hasBody && !replaced && pm.request_body_mode === 'BUFFERED') {
      const r = await us.send(decorate({ request_body: { body, end_of_stream: true } }), 'request_body');
      const c = expectReply(r, 'request_body');
      if (c === 'immediate') throw immediateToLocal(r, rules);
      ctx.headers = applyMutation(ctx.headers, c.header_mutation, false, rules); // headers still held (BUFFERED)
      if (c.body_mutation?.clear_body) body = Buffer.alloc(0);
      else if (c.body_mutation?.body !== undefined && c.body_mutation.body !== null) body = Buffer.from(c.body_mutation.body);
      if (c.body_mutation) checkContentLength(ctx.headers, body, 'request');
      clearRouteCache(c, 'request_body');
    }
    return body;
  }

  /** The upstream filter's response_headers message; returns the headers as the router will see them. */
  async function upstreamResponseHeaders(us: ProcessorStream, filter: StandinUpstreamExtProc, ctx: AttemptContext, rh: Headers, upstream: http.IncomingMessage): Promise<Headers> {
    const rules = filter.mutationRules ?? {};
    const r = await us.send(
      { response_headers: { headers: headerList(rh), end_of_stream: upstream.complete && upstream.readableEnded }, metadata_context: forwardedMetadata(filter, ctx) },
      'response_headers',
    );
    const c = expectReply(r, 'response_headers');
    if (c === 'immediate') throw immediateToLocal(r, rules);
    return applyMutation(rh, c.header_mutation, false, rules); // body mode NONE keeps content-length
  }

  /** ext_proc request_attributes for this attempt: `attributes["envoy.filters.http.ext_proc"]`, keyed by expression. */
  function upstreamAttributes(filter: StandinUpstreamExtProc, cluster: string, endpoint: StandinChainEndpoint): ProcessingRequest['attributes'] | undefined {
    if (!filter.requestAttributes?.length) return undefined;
    const values: Record<string, unknown> = {};
    for (const expr of filter.requestAttributes) {
      const v = evalAttribute(expr, cluster, endpoint);
      if (v !== undefined) values[expr] = v; // an expression that does not resolve is left out
    }
    return { 'envoy.filters.http.ext_proc': toPbStruct(values) };
  }

  /** metadata_context: each forwarding namespace present in the downstream stream's dynamic metadata. */
  function forwardedMetadata(filter: StandinUpstreamExtProc, ctx: AttemptContext): NonNullable<ProcessingRequest['metadata_context']> {
    const md = ctx.downstreamMetadata();
    const filter_metadata: Record<string, PbStruct> = {};
    for (const ns of filter.forwardingNamespaces ?? []) {
      const v = md[ns];
      if (v && typeof v === 'object') filter_metadata[ns] = toPbStruct(v as Record<string, unknown>);
    }
    return { filter_metadata };
  }

  /** The upstream HTTP request of one attempt, from the shared headers (method, :path, Host = :authority). */
  function sendUpstream(
    ctx: AttemptContext,
    endpoint: StandinCluster,
    body: Buffer,
    rec: StandinAttempt,
    track: (r: http.ClientRequest) => void,
  ): Promise<{ kind: 'response'; upstream: http.IncomingMessage } | NoResponse> {
    const h = ctx.headers;
    const upstreamHeaders: Record<string, string> = {};
    for (const [k, v] of h) if (!PSEUDO.has(k)) upstreamHeaders[k] = upstreamHeaders[k] ? `${upstreamHeaders[k]}, ${v}` : v;
    upstreamHeaders.host = get(h, ':authority') || 'localhost';
    const cl = get(h, 'content-length');
    if (cl !== undefined && Number(cl) !== body.length)
      note('upstream_content_length_mismatch', `attempt ${rec.attempt}: content-length ${cl}, body ${body.length} bytes`);
    if (body.length || cl !== undefined) upstreamHeaders['content-length'] = String(body.length);
    rec.upstreamPath = get(h, ':path');
    rec.upstreamHeaders = upstreamHeaders;
    rec.upstreamBody = body.toString('utf8');
    const perTry = routeRetry(ctx.cluster)?.perTryTimeoutMs;
    return new Promise((resolve) => {
      let settled = false;
      let perTryTimer: NodeJS.Timeout | undefined;
      const settle = (r: { kind: 'response'; upstream: http.IncomingMessage } | NoResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(perTryTimer);
        resolve(r);
      };
      const ureq = http.request(
        {
          host: endpoint.host,
          port: endpoint.port,
          method: get(h, ':method'),
          path: get(h, ':path'),
          headers: upstreamHeaders,
          timeout: opts.upstreamTimeoutMs ?? 30000,
        },
        (upstream) => settle({ kind: 'response', upstream }),
      );
      track(ureq);
      // per_try_timeout ends at the response headers.
      if (perTry) perTryTimer = setTimeout(() => {
        settle(noResponse('per-try-timeout'));
        ureq.destroy();
      }, perTry);
      ureq.on('timeout', () => {
        ureq.destroy();
        settle(noResponse('timeout'));
      });
      ureq.on('error', (e: NodeJS.ErrnoException) => settle(noResponse(CONNECT_ERRORS.has(e.code ?? '') ? 'connect-failure' : 'reset')));
      ureq.end(body);
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const m = { ...mode }; // per exchange: mode_override must not leak into other requests
    const record: ExchangeRecord = { path: req.url ?? '/', status: 0, dynamicMetadata: {}, sentToProcessor: [] };
    exchanges.push(record);
    let stream: ProcessorStream | undefined;
    let headersSent = false;
    let downstreamClosed = false;
    let abortAttempt: (() => void) | undefined;
    // The final attempt's upstream filter lives until the exchange is over (Envoy destroys it with its UpstreamRequest).
    let filterStream: ProcessorStream | undefined;
    res.on('close', () => {
      if (!res.writableFinished) {
        downstreamClosed = true;
        stream?.cancel(); // Envoy resets the ext_proc stream when the downstream goes away
        abortAttempt?.(); // ... and the upstream request in flight, with its upstream filter's stream
        filterStream?.cancel();
      }
    });

    const sendLocal = (lr: LocalReply): void => {
      record.status = lr.status;
      record.localReplyDetails = lr.details;
      note('local_reply', `${lr.status} ${lr.details}`);
      if (headersSent) {
        res.destroy(); // headers already downstream: Envoy resets the stream
        return;
      }
      const hs: Record<string, string> = {};
      for (const [k, v] of lr.headers) if (!k.startsWith(':')) hs[k] = v;
      if (!hs['content-type']) hs['content-type'] = 'text/plain';
      res.writeHead(lr.status, hs);
      res.end(lr.body);
    };

    try {
      // Downstream headers, as Envoy's codec presents them.
      let headers: Headers = [
        [':method', req.method ?? 'GET'],
        [':path', req.url ?? '/'],
        [':authority', req.headers.host ?? 'localhost'],
        [':scheme', 'http'],
      ];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i]!.toLowerCase();
        if (k === 'host' || k === 'connection' || k === 'transfer-encoding' || k === 'keep-alive') continue;
        headers.push([k, req.rawHeaders[i + 1]!]);
      }
      const metadata: ProcessingRequest['metadata_context'] = { filter_metadata: {} };
      // The stream's dynamic metadata written by filters before ext_proc (jwt_authn), as plain values.
      const earlierMetadata: Record<string, Record<string, unknown>> = {};
      if (opts.jwt) {
        const auth = get(headers, 'authorization');
        const m = auth ? /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(auth) : null;
        if (m) {
          const expected = createHmac('sha256', opts.jwt.secret).update(`${m[1]}.${m[2]}`).digest('base64url');
          if (expected !== m[3]) throw new LocalReply(401, 'jwt_authn_access_denied{Jwt_verification_fails}', 'Jwt verification fails');
          const payload = b64urlJson(m[2]!) as Record<string, unknown>;
          earlierMetadata['envoy.filters.http.jwt_authn'] = { [opts.jwt.payloadKey]: payload };
          metadata.filter_metadata!['envoy.filters.http.jwt_authn'] = toPbStruct({ [opts.jwt.payloadKey]: payload });
          if (!opts.jwt.forward) headers = del(headers, 'authorization');
        }
      }

      // Read the whole body up front (the filter manager buffers it for BUFFERED mode).
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > cfg.bufferLimit && m.request_body_mode === 'BUFFERED')
          throw new LocalReply(413, 'request_payload_too_large', 'Payload Too Large');
        chunks.push(c as Buffer);
      }
      let body = Buffer.concat(chunks);
      const hasBody = body.length > 0;

      // Route resolved (and cached) before ext_proc runs.
      let cluster = get(headers, cfg.clusterHeader);

      stream = new ProcessorStream(client, cfg.timeout, opts.maxMessageTimeoutMs, note, opts.extProcMetadata);
      const st = stream;
      // failure_mode_allow: a timeout or gRPC error lets the request continue without the processor.
      let processorGone = false;
      const ask = async (msg: ProcessingRequest, what: string): Promise<ProcessingResponse | null> => {
        if (processorGone) return null;
        try {
          return await st.send(msg, what);
        } catch (e) {
          if (!opts.failureModeAllow || e instanceof LocalReply) throw e;
          note(e instanceof TimeoutError ? 'timeout' : 'grpc_error', `${what}: ${(e as Error).message}; continuing without the processor (failure_mode_allow)`);
          processorGone = true;
          st.cancel();
          return null;
        }
      };
      const first: { metadata_context?: typeof metadata } = { metadata_context: metadata };

      if (m.request_header_mode !== 'SKIP') {
        const r = await ask({ request_headers: { headers: headerList(headers), end_of_stream: !hasBody }, ...first }, 'request_headers');
        if (r) {
        mergeMetadata(record.dynamicMetadata, r);
        const c = expectReply(r, 'request_headers');
        if (c === 'immediate') throw immediateToLocal(r);
        headers = applyMutation(headers, c.header_mutation, false);
        if (c.clear_route_cache) {
          if (c.header_mutation) cluster = get(headers, cfg.clusterHeader);
          else note('clear_route_cache_ignored', 'request_headers reply without header_mutation');
        }
        if (r.mode_override && opts.allowModeOverride) applyOverride(r.mode_override);
        if (c.status === 'CONTINUE_AND_REPLACE' && c.body_mutation?.body) {
          body = Buffer.from(c.body_mutation.body);
          headers = del(headers, 'content-length');
        }
        }
      }

      if (hasBody && m.request_body_mode === 'BUFFERED') {
        const r = await ask({ request_body: { body, end_of_stream: true } }, 'request_body');
        if (r) {
        mergeMetadata(record.dynamicMetadata, r);
        const c = expectReply(r, 'request_body');
        if (c === 'immediate') throw immediateToLocal(r);
        // Headers are still held in BUFFERED mode, so the header mutation applies.
        headers = applyMutation(headers, c.header_mutation, false);
        if (c.body_mutation?.clear_body) body = Buffer.alloc(0);
        else if (c.body_mutation?.body !== undefined && c.body_mutation.body !== null) body = Buffer.from(c.body_mutation.body);
        checkContentLength(headers, body, 'request');
        if (c.clear_route_cache) {
          if (c.header_mutation) cluster = get(headers, cfg.clusterHeader);
          else note('clear_route_cache_ignored', 'request_body reply without header_mutation');
        }
        }
      }

      record.cluster = cluster;
      const chain = cluster ? opts.chains?.[cluster] : undefined;
      const plain = cluster && !chain ? opts.clusters[cluster] : undefined;
      if (!cluster || (!chain && !plain)) throw new LocalReply(503, 'cluster_not_found', 'no healthy upstream');

      // The router's finalizeRequestHeaders runs once, before the first attempt: host_rewrite_header
      // rewrites :authority in the one header list all attempts share (E4).
      const hostRewrite = get(headers, cfg.hostHeader);
      if (hostRewrite) headers = put(headers, ':authority', hostRewrite);
      const ctx: AttemptContext = {
        cluster,
        ...(chain ? { chain } : { plain: plain! }),
        headers,
        body,
        record,
        // What the router-level filter wrote through receiving_namespaces, on top of earlier filters'.
        downstreamMetadata: () => ({ ...earlierMetadata, ...record.dynamicMetadata }),
        closed: () => downstreamClosed,
      };
      abortAttempt = () => ctx.abort?.();
      const final = await runAttempts(ctx);
      abortAttempt = undefined;
      filterStream = final.filterStream;
      const upstream = final.upstream;
      let rh = final.rh;
      const upstreamBody = upstream; // a readable of the body
      let respMode: BodySendMode = m.response_body_mode;
      const upstreamEnded = upstream.complete && upstream.readableEnded;
      if (m.response_header_mode !== 'SKIP') {
        const r = await ask({ response_headers: { headers: headerList(rh), end_of_stream: upstreamEnded } }, 'response_headers');
        if (r) {
        mergeMetadata(record.dynamicMetadata, r);
        const c = expectReply(r, 'response_headers');
        if (c === 'immediate') throw immediateToLocal(r);
        if (r.mode_override && opts.allowModeOverride) {
          // Body modes are copied verbatim: an unset body mode becomes NONE.
          respMode = r.mode_override.response_body_mode ?? 'NONE';
        }
        rh = applyMutation(rh, c.header_mutation, respMode !== 'BUFFERED');
        }
      }
      if (respMode !== 'BUFFERED') rh = del(rh, 'content-length');

      const writeHead = (h: Headers): void => {
        const status = Number(get(h, ':status'));
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of h) {
          if (k.startsWith(':')) continue;
          const prev = out[k];
          out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        record.status = status;
        res.writeHead(status, out);
        headersSent = true;
      };

      if (respMode === 'BUFFERED') {
        const parts: Buffer[] = [];
        let n = 0;
        for await (const c of upstreamBody) {
          n += (c as Buffer).length;
          if (n > cfg.bufferLimit) throw new LocalReply(500, 'response_payload_too_large', 'Internal Server Error');
          parts.push(c as Buffer);
        }
        let rbody = Buffer.concat(parts);
        if (rbody.length > 0 || get(rh, 'content-length') !== undefined) {
          const r = await ask({ response_body: { body: rbody, end_of_stream: true } }, 'response_body');
          if (r) {
          mergeMetadata(record.dynamicMetadata, r);
          const c = expectReply(r, 'response_body');
          if (c === 'immediate') throw immediateToLocal(r);
          rh = applyMutation(rh, c.header_mutation, false);
          if (c.body_mutation?.clear_body) rbody = Buffer.alloc(0);
          else if (c.body_mutation?.body !== undefined && c.body_mutation.body !== null) rbody = Buffer.from(c.body_mutation.body);
          checkContentLength(rh, rbody, 'response');
          }
        }
        writeHead(rh);
        res.end(rbody);
      } else if (respMode === 'STREAMED') {
        writeHead(rh);
        // Pipelined: every chunk goes out without waiting; replies apply to the oldest chunk.
        const pending: Promise<void>[] = [];
        let chain: Promise<void> = Promise.resolve();
        const sendChunk = (chunk: Buffer, eos: boolean): void => {
          const reply = ask({ response_body: { body: chunk, end_of_stream: eos } }, 'response_body');
          // Awaited below unless an earlier chunk already failed the chain: never an unhandled rejection.
          reply.catch(() => undefined);
          const done = chain.then(async () => {
            const r = await reply;
            if (!r) {
              if (chunk.length && !downstreamClosed) res.write(chunk); // processor gone: pass through
              return;
            }
            mergeMetadata(record.dynamicMetadata, r);
            const c = expectReply(r, 'response_body');
            if (c === 'immediate') throw new LocalReply(500, 'immediate_response_after_headers');
            let out = chunk;
            if (c.body_mutation?.clear_body) out = Buffer.alloc(0);
            else if (c.body_mutation?.body !== undefined && c.body_mutation.body !== null) out = Buffer.from(c.body_mutation.body);
            if (out.length && !downstreamClosed) res.write(out);
          });
          chain = done;
          done.catch(() => undefined);
          pending.push(done);
        };
        for await (const c of upstreamBody) {
          if (downstreamClosed) break;
          sendChunk(c as Buffer, false);
        }
        if (downstreamClosed) return;
        sendChunk(Buffer.alloc(0), true);
        await Promise.all(pending);
        res.end();
      } else {
        writeHead(rh);
        upstreamBody.pipe(res);
        await new Promise((r) => res.on('finish', r));
      }
      stream.end();
      filterStream?.end();
      record.sentToProcessor = stream.sent;
    } catch (err) {
      record.sentToProcessor = stream?.sent ?? [];
      filterStream?.end();
      if (downstreamClosed) return;
      if (err instanceof LocalReply) {
        stream?.end();
        sendLocal(err);
      } else if (err instanceof TimeoutError) {
        note('timeout', err.message);
        stream?.cancel();
        // failure_mode_allow would continue without the processor; we only model fail-closed here.
        sendLocal(new LocalReply(504, 'ext_proc_error_per-message_timeout_exceeded', 'ext_proc message timeout'));
      } else {
        const e = err as { code?: number; details?: string; message?: string };
        note('grpc_error', `${e.code ?? ''} ${e.details ?? e.message ?? String(err)}`);
        stream?.cancel();
        sendLocal(new LocalReply(500, `ext_proc_error_gRPC_error_${e.code ?? 2}{${e.details ?? e.message ?? ''}}`, 'ext_proc error'));
      }
    }

    function applyOverride(o: NonNullable<ProcessingResponse['mode_override']>): void {
      m.response_body_mode = o.response_body_mode ?? 'NONE';
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) {
        res.writeHead(500);
        res.end(String(e));
      } else res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    events,
    exchanges,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      client.close();
      for (const c of replicaClients.values()) c.close();
    },
  };
}

// ---- The attempt loop's types and pure helpers ----

interface AttemptContext {
  cluster: string;
  chain?: StandinChainCluster;
  plain?: StandinCluster;
  /** The one request header list all attempts share (E4). */
  headers: Headers;
  /** The body as the router-level filter left it; each attempt gets a copy (E4). */
  body: Buffer;
  record: ExchangeRecord;
  downstreamMetadata(): Record<string, unknown>;
  closed(): boolean;
  /** Cancels the attempt in flight (the downstream went away). */
  abort?: () => void;
}

type NoResponseReason = 'reset' | 'connect-failure' | 'per-try-timeout' | 'timeout';
interface NoResponse {
  kind: 'no_response';
  reason: NoResponseReason;
  /** The router's local reply if this is the final attempt (`retried`: the body says so, like Envoy's). */
  reply(retried: boolean): LocalReply;
}
interface AttemptResponse {
  kind: 'response';
  upstream: http.IncomingMessage;
  /** Response headers as the router sees them (after the upstream filter). */
  rh: Headers;
  status: number;
  /** The attempt's upstream filter stream, still open (no body messages in NONE mode). */
  filterStream?: ProcessorStream;
}
type AttemptResult = AttemptResponse | NoResponse;

/** Socket errors that mean the connection was never made (Envoy: remote connection failure). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNABORTED']);

/** Envoy's router local replies for an attempt without a response (router.cc onUpstreamReset / onUpstreamTimeoutAbort). */
function noResponse(reason: NoResponseReason): NoResponse {
  const reset = (envoyReason: string) => (retried: boolean) =>
    new LocalReply(
      503,
      `upstream_reset_before_response_started{${envoyReason.replaceAll(' ', '_')}}`,
      `upstream connect error or disconnect/reset before headers. ${retried ? 'retried and the latest ' : ''}reset reason: ${envoyReason}`,
    );
  const reply =
    reason === 'reset'
      ? reset('connection termination')
      : reason === 'connect-failure'
        ? reset('remote connection failure')
        : reason === 'per-try-timeout'
          ? () => new LocalReply(504, 'upstream_per_try_timeout', 'upstream request timeout')
          : () => new LocalReply(504, 'upstream_response_timeout', 'upstream request timeout');
  return { kind: 'no_response', reason, reply };
}

/** Why this attempt is retriable under the policy (retry_state_impl.cc wouldRetryFromHeaders / wouldRetryFromReset), or undefined. */
function retryReason(r: AttemptResult, p: StandinRetryPolicy | undefined): string | undefined {
  if (!p) return undefined;
  const on = new Set<string>(p.retryOn);
  if (r.kind === 'no_response') {
    if (r.reason === 'timeout') return undefined; // the route (global) timeout is never retried
    // A per-try timeout is a local reset: 5xx, gateway-error and reset retry every reset.
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return r.reason;
    if (on.has('connect-failure') && r.reason === 'connect-failure') return r.reason;
    return undefined;
  }
  const s = r.status;
  if (on.has('5xx') && s >= 500 && s < 600) return `status ${s} (5xx)`;
  if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return `status ${s} (gateway-error)`;
  if (on.has('retriable-status-codes') && p.retriableStatusCodes?.includes(s)) return `status ${s} (retriable-status-codes)`;
  return undefined;
}

function upstreamMode(f: StandinUpstreamExtProc): Required<NonNullable<StandinUpstreamExtProc['processingMode']>> {
  const m = { request_header_mode: 'SEND', request_body_mode: 'BUFFERED', response_header_mode: 'SEND', response_body_mode: 'NONE', ...f.processingMode } as const;
  return {
    ...m,
    // DEFAULT means SEND for headers.
    request_header_mode: m.request_header_mode === 'DEFAULT' ? 'SEND' : m.request_header_mode,
    response_header_mode: m.response_header_mode === 'DEFAULT' ? 'SEND' : m.response_header_mode,
  };
}

/** Envoy would reject or the stand-in cannot emulate these: fail at start, not halfway through a test. */
function validateChains(opts: StandinOptions): void {
  for (const [name, ch] of Object.entries(opts.chains ?? {})) {
    if (opts.clusters[name]) throw new Error(`stand-in: cluster ${name} is defined twice (clusters and chains)`);
    if (!ch.priorities.length) throw new Error(`stand-in: chain ${name} has no priorities`);
    if (!ch.upstreamExtProc) continue;
    const pm = upstreamMode(ch.upstreamExtProc);
    if (pm.request_body_mode !== 'NONE' && pm.request_body_mode !== 'BUFFERED')
      throw new Error(`stand-in: chain ${name}: upstream request_body_mode ${pm.request_body_mode} is not emulated`);
    if (pm.response_body_mode !== 'NONE') throw new Error(`stand-in: chain ${name}: upstream response_body_mode ${pm.response_body_mode} is not emulated`);
  }
  const known = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes', 'refused-stream']);
  for (const r of opts.retry?.retryOn ?? []) if (!known.has(r)) throw new Error(`stand-in: retry_on ${r} is not emulated`);
  if (opts.retry && (!Number.isInteger(opts.retry.numRetries) || opts.retry.numRetries < 0)) throw new Error('stand-in: numRetries must be a non-negative integer');
}

/** Response headers as Envoy's codec presents them (hop-by-hop headers dropped). */
function responseHeaders(upstream: http.IncomingMessage): Headers {
  const rh: Headers = [[':status', String(upstream.statusCode ?? 502)]];
  for (let i = 0; i < upstream.rawHeaders.length; i += 2) {
    const k = upstream.rawHeaders[i]!.toLowerCase();
    if (k === 'connection' || k === 'transfer-encoding' || k === 'keep-alive') continue;
    rh.push([k, upstream.rawHeaders[i + 1]!]);
  }
  return rh;
}

/**
 * The few CEL attributes an upstream filter needs (filters/common/expr/context.cc, E6):
 * `xds.cluster_name` and `xds.upstream_host_metadata.filter_metadata` followed by ['key'] / .key
 * selectors. Anything else does not resolve (undefined).
 */
function evalAttribute(expr: string, cluster: string, endpoint: StandinChainEndpoint): unknown {
  if (expr === 'xds.cluster_name') return cluster;
  const prefix = 'xds.upstream_host_metadata.filter_metadata';
  if (!expr.startsWith(prefix)) return undefined;
  let rest = expr.slice(prefix.length);
  let v: unknown = endpoint.metadata ?? {};
  const selector = /^(?:\['([^']*)'\]|\["([^"]*)"\]|\.([A-Za-z_][A-Za-z0-9_]*))/;
  while (rest) {
    const m = selector.exec(rest);
    if (!m) return undefined;
    const key = m[1] ?? m[2] ?? m[3]!;
    if (!v || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
    rest = rest.slice(m[0].length);
  }
  return v;
}

let statusEnum: Record<string, number> | undefined;
/** HttpStatus.code decodes as the enum name (proto-loader enums: String); Envoy uses the number. */
function statusNumber(code: unknown): number {
  if (typeof code === 'number') return code;
  if (typeof code !== 'string') return 200;
  statusEnum ??= envoyRoot().lookupEnum('envoy.type.v3.StatusCode').values;
  return statusEnum[code] ?? 200;
}

function decodeStruct(s: { fields?: Record<string, unknown> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = decodeValue(v);
  return out;
}
function decodeValue(v: unknown): unknown {
  const x = v as Record<string, unknown>;
  if ('stringValue' in x) return x.stringValue;
  if ('numberValue' in x) return x.numberValue;
  if ('boolValue' in x) return x.boolValue;
  if ('structValue' in x) return decodeStruct(x.structValue as { fields?: Record<string, unknown> });
  if ('listValue' in x) return ((x.listValue as { values?: unknown[] }).values ?? []).map(decodeValue);
  return null;
}
