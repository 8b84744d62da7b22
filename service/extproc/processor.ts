// The per-stream state machine: one Processor per ext_proc `Process` stream (= one HTTP request).
// It owns Envoy's protocol — which message may come when, which reply each needs, how bodies and
// headers are mutated — and delegates every decision to an Exchange (plain values, no gRPC).
import { GatewayError, renderError, renderLocalReply, type ErrorApi } from '../errors.ts';
import type {
  BodySendMode,
  CommonResponse,
  HeaderMap,
  ProcessingRequest,
  ProcessingResponse,
} from './messages.ts';
import { fromPbStruct, headerMap, JsonStruct, MutationBuilder } from './mutations.ts';

/** A protocol violation by the peer: fails the stream with a gRPC error, never the process. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface RequestHeadersInput {
  headers: Map<string, string>;
  endOfStream: boolean;
  /** `metadata_context.filter_metadata` as plain JSON, per namespace. */
  metadata: Record<string, Record<string, unknown>>;
  /** `attributes["envoy.filters.http.ext_proc"]` as plain JSON, when Envoy sends attributes. */
  attributes: Record<string, unknown>;
}

/** What the exchange decided for the request path. */
export type RequestDecision =
  | { kind: 'continue'; mutation: MutationBuilder; clearRouteCache?: boolean; replaceBody?: Buffer; metadata?: Record<string, unknown> }
  | { kind: 'respond'; status: number; headers: Record<string, string>; body: Buffer; details: string; metadata?: Record<string, unknown> };

export interface ResponseHeadersDecision {
  mutation: MutationBuilder;
  /** Switch the response body to STREAMED (SSE) via mode_override. */
  stream: boolean;
  metadata?: Record<string, unknown>;
  /** The exchange ends here: the filter is configured with response body mode NONE (upstream stage). */
  final?: boolean;
  /**
   * A body for a response that arrived without one (end_of_stream on its headers, e.g. Envoy's own
   * cluster-not-found reply): sent with CONTINUE_AND_REPLACE, the only way to add a body there.
   */
  addBody?: Buffer;
}

export interface BodyOutput {
  /** Replacement bytes; undefined = pass the original chunk through unchanged. */
  body?: Buffer;
  /** Only for buffered bodies: headers are still held, so these apply. */
  mutation?: MutationBuilder;
  metadata?: Record<string, unknown>;
}

export type EndReason = 'completed' | 'rejected' | 'aborted' | 'protocol_error';

/**
 * A phase's result: a value when the phase did no I/O (answered in the same turn, no promise and no
 * microtask hops per message), else a promise. Errors: thrown, or the promise rejects.
 */
export type PhaseResult<T> = T | Promise<T>;

/** Business logic for one request, one method per phase. Errors thrown as GatewayError become client responses. */
export interface Exchange {
  /** The client API the error shape should follow (known after the request headers). */
  clientApi(): ErrorApi;
  requestHeaders(input: RequestHeadersInput): PhaseResult<RequestDecision>;
  requestBody(body: Buffer): PhaseResult<RequestDecision>;
  responseHeaders(status: number, headers: Map<string, string>, endOfStream: boolean): PhaseResult<ResponseHeadersDecision>;
  /** Buffered response: the whole body at once. */
  responseBody(body: Buffer): PhaseResult<BodyOutput>;
  /** Streamed response: one chunk (arbitrary boundaries); `last` on end_of_stream. */
  responseChunk(chunk: Buffer, last: boolean): PhaseResult<BodyOutput>;
  /** Called exactly once when the stream ends, however it ends. */
  end(reason: EndReason, detail?: string): void;
  /** More time Envoy should allow for this request body (ms), e.g. for very large bodies; undefined = default. */
  requestBodyTimeoutMs?(size: number): number | undefined;
  /** Headers and dynamic metadata to attach to an error response (request id, decision id). */
  errorContext?(): { headers: Record<string, string>; metadata: Record<string, unknown> };
}

type Phase =
  | 'request_headers'
  /** Envoy's own local reply reached us before any request message (see dispatch). */
  | 'passthrough'
  | 'request_body'
  | 'request_trailers'
  | 'response_headers'
  | 'response_body'
  | 'response_trailers'
  | 'done';

/** Largest body accepted per direction (bytes); read per message, so a config reload applies at once. */
export type BodyCaps = () => { request: number; response: number };

/** Without caps: the config schema's largest maxRequestBytes. */
const NO_CAPS: BodyCaps = () => ({ request: 64 * 1024 * 1024, response: 64 * 1024 * 1024 });

export class Processor {
  private phase: Phase = 'request_headers';
  private responseMode: 'buffered' | 'streamed' = 'buffered';
  private requestChunks: Buffer[] = [];
  private responseChunks: Buffer[] = [];
  private requestBodyHandled = false;
  /** :status of an Envoy local reply that reached us before any request message. */
  private localReplyStatus = 0;
  private ended = false;
  /** The error that ended the exchange, if any (for the stream handler's log line). */
  lastError: unknown;
  private readonly exchange: Exchange;
  private readonly caps: BodyCaps;

  constructor(exchange: Exchange, caps: BodyCaps = NO_CAPS) {
    this.exchange = exchange;
    this.caps = caps;
  }

  get finished(): boolean {
    return this.ended;
  }

  /**
   * A reply to send *before* handling `msg`, asking Envoy for more time (override_message_timeout):
   * Envoy accepts one per state and still waits for the real reply.
   */
  preflight(msg: ProcessingRequest): ProcessingResponse | undefined {
    if (msg.request !== 'request_body' || this.phase !== 'request_body' || msg.observability_mode) return undefined;
    const ms = this.exchange.requestBodyTimeoutMs?.(msg.request_body?.body?.length ?? 0);
    if (!ms) return undefined;
    return { override_message_timeout: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } };
  }

  /**
   * Handles one message from Envoy. Returns the reply to send, or undefined when none is due
   * (observability mode). Rejects with ProtocolError on a message Envoy would never send in this state.
   */
  async handle(msg: ProcessingRequest): Promise<ProcessingResponse | undefined> {
    return this.handleNow(msg);
  }

  /**
   * handle() without a promise when the phase answered at once (see PhaseResult): the stream handler
   * sends such a reply in the same turn. Throws ProtocolError (or returns a promise rejecting with it).
   */
  handleNow(msg: ProcessingRequest): PhaseResult<ProcessingResponse | undefined> {
    const kind = msg.request;
    if (!kind) throw new ProtocolError('ProcessingRequest with no message set');
    if (this.phase === 'done') throw new ProtocolError(`${kind} after the exchange finished`);
    const quiet = msg.observability_mode === true;
    let r: PhaseResult<ProcessingResponse>;
    try {
      r = this.dispatch(kind, msg);
    } catch (err) {
      return quiet ? void this.failed(err) : this.failed(err);
    }
    if (r instanceof Promise)
      return r.then(
        (reply) => (quiet ? undefined : reply),
        (err: unknown) => (quiet ? void this.failed(err) : this.failed(err)),
      );
    return quiet ? undefined : r;
  }

  /** The reply for a phase that threw: a ProtocolError fails the stream, anything else ends the exchange. */
  private failed(err: unknown): ProcessingResponse {
    if (err instanceof ProtocolError) throw err;
    // Any decision error ends the exchange with the client API's error shape. On the request
    // path the upstream is never contacted; on the response path Envoy replaces the response
    // (or resets the stream if headers already went downstream).
    this.lastError = err;
    return this.immediate(this.rejection(err));
  }

  private expect(kind: string, allowed: readonly Phase[]): void {
    if (!allowed.includes(this.phase)) throw new ProtocolError(`unexpected ${kind} while waiting for ${this.phase}`);
  }

  /** Not `async`: a reply, or a phase's promise when the exchange went async; a throw here lands in handleNow()'s catch. */
  private dispatch(kind: NonNullable<ProcessingRequest['request']>, msg: ProcessingRequest): PhaseResult<ProcessingResponse> {
    if (this.phase === 'passthrough' || (this.phase === 'request_headers' && kind === 'response_headers')) return this.passThrough(kind, msg);
    switch (kind) {
      case 'request_headers':
        this.expect(kind, ['request_headers']);
        return this.onRequestHeaders(msg);
      case 'request_body':
        this.expect(kind, ['request_body']);
        return this.onRequestBody(msg.request_body?.body, msg.request_body?.end_of_stream === true);
      case 'request_trailers':
        this.expect(kind, ['request_body', 'request_trailers']);
        return this.onRequestTrailers();
      case 'response_headers':
        // Envoy may send response headers before the request body finished (e.g. a local reply
        // from a later filter); the request side is then abandoned.
        this.expect(kind, ['request_body', 'request_trailers', 'response_headers']);
        return this.onResponseHeaders(msg.response_headers?.headers, msg.response_headers?.end_of_stream === true);
      case 'response_body':
        this.expect(kind, ['response_body']);
        return this.onResponseBody(msg.response_body?.body, msg.response_body?.end_of_stream === true);
      case 'response_trailers':
        this.expect(kind, ['response_body', 'response_trailers']);
        return this.onResponseTrailers();
    }
  }

  /**
   * A stream that starts with response messages: a filter before ext_proc (jwt_authn rejecting a
   * token, rbac, …) answered the request itself, and Envoy runs that local reply through our
   * encode path (seen on Envoy 1.36–1.40). Tollgate never saw the request: it leaves Envoy's answer
   * exactly as it is and records nothing (the exchange never started; Envoy's access log has it).
   */
  private passThrough(kind: NonNullable<ProcessingRequest['request']>, msg: ProcessingRequest): ProcessingResponse {
    if (kind.startsWith('request_')) throw new ProtocolError(`unexpected ${kind} after a local reply`);
    const eos =
      kind === 'response_trailers' ||
      (kind === 'response_headers' && msg.response_headers?.end_of_stream === true) ||
      (kind === 'response_body' && msg.response_body?.end_of_stream === true);
    if (kind === 'response_headers') this.localReplyStatus = Number(headerMap(msg.response_headers?.headers).get(':status') ?? '0');
    this.phase = eos ? 'done' : 'passthrough';
    if (eos) this.ended = true;
    if (kind === 'response_headers') return { response_headers: { response: {} } };
    if (kind === 'response_trailers') return { response_trailers: {} };
    // Buffered body: the headers are still held, so the error can become JSON in the SDKs' shape.
    const status = this.localReplyStatus;
    if (status < 400 || this.responseMode === 'streamed') return { response_body: { response: {} } };
    const r = renderLocalReply(status, (msg.response_body?.body ?? Buffer.alloc(0)).toString('utf8'));
    const m = new MutationBuilder();
    for (const [k, v] of Object.entries(r.headers)) m.setHeader(k, v);
    m.setHeader('content-length', String(r.body.length));
    return { response_body: { response: { header_mutation: m.view(), body_mutation: { body: r.body } } } };
  }

  // The phase methods below are not `async`: each hands the exchange's result to a `then` only when the
  // exchange returned a promise (see PhaseResult), else continues at once.
  private onRequestHeaders(msg: ProcessingRequest): PhaseResult<ProcessingResponse> {
    const h = msg.request_headers;
    const metadata: Record<string, Record<string, unknown>> = {};
    for (const [ns, s] of Object.entries(msg.metadata_context?.filter_metadata ?? {})) metadata[ns] = fromPbStruct(s);
    const attrs = msg.attributes?.['envoy.filters.http.ext_proc'];
    const eos = h?.end_of_stream === true;
    const d = this.exchange.requestHeaders({
        headers: headerMap(h?.headers),
        endOfStream: eos,
        metadata,
        attributes: attrs ? fromPbStruct(attrs) : {},
      });
    return d instanceof Promise ? d.then((v) => this.afterRequestHeaders(v, eos)) : this.afterRequestHeaders(d, eos);
  }

  private afterRequestHeaders(decision: RequestDecision, eos: boolean): ProcessingResponse {
    if (decision.kind === 'respond') return this.immediate(decision);
    this.phase = eos ? 'response_headers' : 'request_body';
    if (eos) this.requestBodyHandled = true;
    return this.withMetadata({ request_headers: { response: this.common(decision) } }, decision.metadata);
  }

  private onRequestBody(chunk: Buffer | undefined, eos: boolean): PhaseResult<ProcessingResponse> {
    // Checked before keeping anything: a body over the limit is refused, never buffered.
    const max = this.caps().request;
    const size = this.requestChunks.reduce((n, c) => n + c.length, 0) + (chunk?.length ?? 0);
    if (size > max) {
      this.requestChunks = [];
      return this.immediate(this.rejection(new GatewayError('too_large', `Request body is ${size} bytes; the limit is ${max} bytes.`, { code: 'request_too_large' })));
    }
    if (chunk?.length) this.requestChunks.push(chunk);
    // In BUFFERED mode Envoy sends the whole body in one message; end_of_stream is false only
    // when trailers follow, so the body is complete either way. One copy, never a view of the
    // transport's message buffer.
    const body = Buffer.concat(this.requestChunks);
    this.requestChunks = [];
    this.requestBodyHandled = true;
    const d = this.exchange.requestBody(body);
    return d instanceof Promise ? d.then((v) => this.afterRequestBody(v, eos)) : this.afterRequestBody(d, eos);
  }

  private afterRequestBody(decision: RequestDecision, eos: boolean): ProcessingResponse {
    if (decision.kind === 'respond') return this.immediate(decision);
    this.phase = eos ? 'response_headers' : 'request_trailers';
    return this.withMetadata({ request_body: { response: this.common(decision) } }, decision.metadata);
  }

  private onRequestTrailers(): PhaseResult<ProcessingResponse> {
    if (!this.requestBodyHandled) {
      // Headers said a body follows but only trailers came: an empty body.
      const d = this.exchange.requestBody(Buffer.alloc(0));
      return d instanceof Promise ? d.then((v) => this.afterTrailerBody(v)) : this.afterTrailerBody(d);
    }
    this.phase = 'response_headers';
    return { request_trailers: {} };
  }

  private afterTrailerBody(decision: RequestDecision): ProcessingResponse {
    if (decision.kind === 'respond') return this.immediate(decision);
    this.requestBodyHandled = true;
    this.phase = 'response_headers';
    return { request_trailers: {} };
  }

  private onResponseHeaders(headers: HeaderMap | undefined, eos: boolean): PhaseResult<ProcessingResponse> {
    const map = headerMap(headers);
    const status = Number(map.get(':status') ?? '0');
    if (!Number.isInteger(status) || status < 100 || status > 599)
      throw new ProtocolError(`response headers without a valid :status (${map.get(':status') ?? 'none'})`);
    const r = this.exchange.responseHeaders(status, map, eos);
    return r instanceof Promise ? r.then((v) => this.afterResponseHeaders(v, eos)) : this.afterResponseHeaders(r, eos);
  }

  private afterResponseHeaders(d: ResponseHeadersDecision, eos: boolean): ProcessingResponse {
    if (eos || d.final) {
      this.finish('completed');
      const common = this.common({ mutation: d.mutation });
      if (eos && d.addBody) {
        common.status = 'CONTINUE_AND_REPLACE';
        common.body_mutation = { body: d.addBody };
      }
      return this.withMetadata({ response_headers: { response: common } }, d.metadata);
    }
    this.phase = 'response_body';
    const reply: ProcessingResponse = { response_headers: { response: this.common({ mutation: d.mutation }) } };
    if (d.stream) {
      this.responseMode = 'streamed';
      // Body modes are copied verbatim by Envoy's effectiveModeOverride: name the response body mode.
      const mode: BodySendMode = 'STREAMED';
      reply.mode_override = { response_body_mode: mode };
    }
    return this.withMetadata(reply, d.metadata);
  }

  private onResponseBody(chunk: Buffer | undefined, eos: boolean): PhaseResult<ProcessingResponse> {
    const max = this.caps().response;
    const size = this.responseChunks.reduce((n, c) => n + c.length, 0) + (chunk?.length ?? 0);
    if (size > max) {
      this.responseChunks = [];
      throw new GatewayError('upstream', `The upstream response body is over ${max} bytes (Gateway spec.maxResponseBytes).`, { code: 'response_too_large' });
    }
    if (this.responseMode === 'streamed') {
      const data = chunk ? Buffer.from(chunk) : Buffer.alloc(0);
      const r = this.exchange.responseChunk(data, eos);
      return r instanceof Promise ? r.then((v) => this.afterResponseChunk(v, eos)) : this.afterResponseChunk(r, eos);
    }
    // Buffered: one copy (concat), never a view of the transport's message buffer.
    if (chunk) this.responseChunks.push(chunk);
    const body = Buffer.concat(this.responseChunks);
    this.responseChunks = [];
    const r = this.exchange.responseBody(body);
    return r instanceof Promise ? r.then((v) => this.afterResponseBody(v, eos)) : this.afterResponseBody(r, eos);
  }

  private afterResponseChunk(out: BodyOutput, eos: boolean): ProcessingResponse {
    if (eos) this.finish('completed');
    return this.withMetadata({ response_body: { response: this.bodyCommon(out, false) } }, out.metadata);
  }

  private afterResponseBody(out: BodyOutput, eos: boolean): ProcessingResponse {
    this.phase = eos ? 'done' : 'response_trailers';
    if (eos) this.finish('completed');
    return this.withMetadata({ response_body: { response: this.bodyCommon(out, true) } }, out.metadata);
  }

  private onResponseTrailers(): PhaseResult<ProcessingResponse> {
    if (this.phase === 'response_body' && this.responseMode === 'streamed') {
      // Trailers end a streamed body whose last chunk had end_of_stream=false.
      const r = this.exchange.responseChunk(Buffer.alloc(0), true);
      if (r instanceof Promise) return r.then(() => this.afterResponseTrailers());
    }
    return this.afterResponseTrailers();
  }

  private afterResponseTrailers(): ProcessingResponse {
    this.finish('completed');
    return { response_trailers: {} };
  }

  /** Called by the stream handler when the stream ends without finishing (cancel, error, timeout). */
  abort(reason: EndReason, detail?: string): void {
    if (this.ended) return;
    this.phase = 'done';
    this.ended = true;
    this.exchange.end(reason, detail);
  }

  private finish(reason: EndReason): void {
    this.phase = 'done';
    if (this.ended) return;
    this.ended = true;
    this.exchange.end(reason);
  }

  rejection(err: unknown): Extract<RequestDecision, { kind: 'respond' }> {
    const r = renderError(err, this.exchange.clientApi());
    const code = err instanceof GatewayError ? err.code : 'internal_error';
    // A denied client can quote the request id, and Envoy's access log gets the decision id.
    const ctx = this.exchange.errorContext?.();
    return { kind: 'respond', status: r.status, headers: { ...ctx?.headers, ...r.headers }, body: r.body, details: `tollgate_${code}`, metadata: ctx?.metadata };
  }

  private immediate(d: Extract<RequestDecision, { kind: 'respond' }>): ProcessingResponse {
    const mutation = new MutationBuilder();
    for (const [k, v] of Object.entries(d.headers)) mutation.setHeader(k, v);
    this.phase = 'done';
    if (!this.ended) {
      this.ended = true;
      this.exchange.end('rejected', d.details);
    }
    return this.withMetadata(
      {
        immediate_response: {
          status: { code: d.status },
          headers: mutation.view(),
          body: d.body,
          details: d.details,
        },
      },
      d.metadata,
    );
  }

  private common(d: { mutation: MutationBuilder; clearRouteCache?: boolean; replaceBody?: Buffer }): CommonResponse {
    const out: CommonResponse = {};
    const hm = d.mutation.view();
    if (hm) out.header_mutation = hm;
    if (d.replaceBody) out.body_mutation = { body: d.replaceBody };
    // Envoy ignores clear_route_cache on a reply without a header mutation; callers always
    // pair it with the cluster header, so only send it when there is one.
    if (d.clearRouteCache && hm) out.clear_route_cache = true;
    return out;
  }

  private bodyCommon(out: BodyOutput, buffered: boolean): CommonResponse {
    const res: CommonResponse = {};
    if (out.body !== undefined) res.body_mutation = out.body.length ? { body: out.body } : { clear_body: true };
    // Header mutations on streamed body replies are ignored by Envoy; only send them when they apply.
    if (buffered && out.mutation) {
      const hm = out.mutation.view();
      if (hm) res.header_mutation = hm;
    }
    return res;
  }

  private withMetadata(reply: ProcessingResponse, md: Record<string, unknown> | undefined): ProcessingResponse {
    // Written straight from the record by the codec (no Struct tree per reply).
    if (md && hasKeys(md)) reply.dynamic_metadata = new JsonStruct({ tollgate: md });
    return reply;
  }
}

function hasKeys(o: Record<string, unknown>): boolean {
  for (const _ in o) return true;
  return false;
}
