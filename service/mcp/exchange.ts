// One HTTP request to an MCP server through Envoy (Streamable HTTP): authenticate as for LLM traffic,
// judge every JSON-RPC message with the mcp* policy rules, redact tool arguments, admit call-count
// limits, route to the server's cluster with its own credential; then filter tools/list answers,
// redact results (JSON or SSE, event by event) and record one lineage record per JSON-RPC message.
// No gRPC here: the Processor (extproc/processor.ts) owns the protocol.
import { newRequestId } from '../security/random-ids.ts';
import { GatewayError, type ErrorApi } from '../errors.ts';
import type { McpServerConfig } from '../config/types.ts';
import { MutationBuilder } from '../extproc/mutations.ts';
import type { BodyOutput, EndReason, Exchange, RequestDecision, RequestHeadersInput, ResponseHeadersDecision } from '../extproc/processor.ts';
import type { Services, Snapshot } from '../gateway/context.ts';
import { pathOnly } from '../gateway/endpoints.ts';
import { authenticate, extractToken, JWT_AUTHN_NAMESPACE, type Principal } from '../identity/principal.ts';
import { SseRewriter, type SseEvent } from './sse.ts';
import { errorResponse, parseBody, RPC, type JsonRpcMessage } from './jsonrpc.ts';
import { MCP_METHODS, PARENT_HEADER, serverFor, SESSION_HEADER, upstreamMutation, validRequestId, validSessionId } from './route.ts';
import { filterTools, redactResult } from './results.ts';
import { McpCall, type CallContext } from './call.ts';

type Stage = 'new' | 'authenticated' | 'routed' | 'responding' | 'done';

export class McpExchange implements Exchange {
  private readonly svc: Services;
  private readonly snap: Snapshot;
  private stage: Stage = 'new';
  private requestId = '';
  private clientRequestId: string | undefined;
  private httpMethod = '';
  private path = '';
  private headers = new Map<string, string>();
  private server: McpServerConfig | undefined;
  private principal: Principal | undefined;
  private sessionId: string | undefined;
  private parentRequestId: string | undefined;
  private readonly calls: McpCall[] = [];
  private readonly pending = new Map<string, McpCall>();
  private sse: SseRewriter | undefined;
  private upstreamStatus = 0;
  private responseBytes = 0;
  private requestBytes = 0;

  constructor(svc: Services) {
    this.svc = svc;
    this.snap = svc.snapshot();
  }

  clientApi(): ErrorApi {
    return 'mcp';
  }

  private context(): CallContext {
    return {
      svc: this.svc,
      snap: this.snap,
      // Only a configured name: the path of a refused request is client text.
      server: this.server?.name ?? 'unknown',
      principal: this.principal,
      headers: this.headers,
      httpMethod: this.httpMethod,
      endpoint: pathOnly(this.path) || '/',
      httpRequestId: this.requestId,
      clientRequestId: this.clientRequestId,
      sessionId: () => this.sessionId,
      parentRequestId: this.parentRequestId,
    };
  }

  // ── request headers ────────────────────────────────────────────────────────
  async requestHeaders(input: RequestHeadersInput): Promise<RequestDecision> {
    this.headers = input.headers;
    this.httpMethod = input.headers.get(':method') ?? '';
    this.path = input.headers.get(':path') ?? '';
    this.requestId = newRequestId();
    this.clientRequestId = validRequestId(input.headers.get('x-request-id'));
    this.sessionId = validSessionId(input.headers.get(SESSION_HEADER));
    this.parentRequestId = validRequestId(input.headers.get(PARENT_HEADER));
    try {
      this.server = serverFor(this.snap, this.path);
      if (!(MCP_METHODS as readonly string[]).includes(this.httpMethod))
        throw new GatewayError('invalid_request', `Method ${this.httpMethod} is not allowed on an MCP endpoint; use POST, GET or DELETE.`, {
          code: 'method_not_allowed',
          status: 405,
          headers: { allow: MCP_METHODS.join(', ') },
        });
      this.principal = await authenticate({ token: extractToken(input.headers), jwtNamespace: input.metadata[JWT_AUTHN_NAMESPACE] }, this.snap.core, this.snap.keys, this.svc.now());
    } catch (err) {
      // Refused before any JSON-RPC message was read: one record for the HTTP request.
      this.recordRefusal(err, this.httpMethod === 'GET' ? 'stream/open' : this.httpMethod === 'DELETE' ? 'session/delete' : '');
      throw err;
    }
    this.stage = 'authenticated';

    if (this.httpMethod === 'POST') {
      const max = this.snap.core.settings.maxRequestBytes;
      const cl = Number(input.headers.get('content-length') ?? '0');
      const enc = input.headers.get('content-encoding');
      let err: GatewayError | undefined;
      if (input.endOfStream) err = new GatewayError('invalid_request', 'An MCP POST needs a JSON-RPC body.', { code: 'missing_body' });
      else if (cl > max) err = new GatewayError('too_large', `Request body is ${cl} bytes; the limit is ${max} bytes.`, { code: 'request_too_large' });
      else if (enc && enc.toLowerCase() !== 'identity')
        err = new GatewayError('invalid_request', `Compressed request bodies (content-encoding: ${enc}) are not supported; send plain JSON.`, { code: 'unsupported_content_encoding', status: 415 });
      if (err) {
        this.recordRefusal(err, '');
        throw err;
      }
      return { kind: 'continue', mutation: new MutationBuilder() };
    }

    // GET (the server's SSE stream) and DELETE (end the session): judged as `stream/open` / `session/delete`.
    const call = this.newCall({ kind: 'notification', method: this.httpMethod === 'GET' ? 'stream/open' : 'session/delete', params: undefined, raw: {} });
    await call.judge();
    if (call.refusal) {
      const e = call.refusal;
      call.finish(undefined);
      throw new GatewayError(e.code === RPC.RATE_LIMITED ? 'rate_limit' : 'permission', e.message, { code: String(e.data?.reason ?? 'policy_denied') });
    }
    return this.route(undefined);
  }

  // ── request body ───────────────────────────────────────────────────────────
  async requestBody(body: Buffer): Promise<RequestDecision> {
    if (this.stage !== 'authenticated' || !this.server) throw new GatewayError('internal', 'MCP body before an authenticated request');
    this.requestBytes = body.length;
    const max = this.snap.core.settings.maxRequestBytes;
    if (body.length > max) {
      const err = new GatewayError('too_large', `Request body is ${body.length} bytes; the limit is ${max} bytes.`, { code: 'request_too_large' });
      this.recordRefusal(err, '');
      throw err;
    }
    const parsed = parseBody(body);
    if (!parsed.ok) {
      // Spec: a body that is not JSON-RPC gets an HTTP 400 with a JSON-RPC error without id.
      const call = this.newCall(undefined);
      call.refuse({ code: parsed.code, message: parsed.message }, 'client_error', 400);
      call.finish(undefined);
      return this.reply(400, errorResponse(null, { code: parsed.code, message: parsed.message }));
    }
    const batchSize = parsed.batch ? parsed.messages.length : undefined;
    const replies: Record<string, unknown>[] = [];
    let refused = false;
    let changed = false;
    for (const m of parsed.messages) {
      if (m.kind === 'response') continue; // the client answering the server's request: forwarded as is
      if (m.kind === 'invalid') {
        refused = true;
        const call = this.newCall(undefined, batchSize);
        call.refuse({ code: RPC.INVALID_REQUEST, message: `Invalid Request: ${m.why}` }, 'client_error', 200);
        continue;
      }
      const call = this.newCall(m, batchSize);
      await call.judge();
      if (call.refusal) refused = true;
      if (call.argumentsChanged) changed = true;
    }
    if (refused) {
      // Fail closed for the whole HTTP request: a batch is forwarded whole or not at all.
      const first = this.calls.find((c) => c.refusal);
      for (const c of this.calls) {
        if (!c.refusal)
          c.refuse(
            { code: RPC.POLICY_DENIED, message: `Batch refused: another message in it was refused (${first?.refusal?.message ?? 'invalid'})`, data: { reason: 'batch_refused' } },
            'denied',
            200,
          );
        if (c.jsonrpcId !== undefined || c.invalid) replies.push(errorResponse(c.rawId ?? null, c.refusal!));
      }
      for (const c of this.calls) c.finish(undefined);
      if (replies.length === 0) return this.reply(202, undefined);
      return this.reply(200, parsed.batch ? replies : replies[0]!);
    }
    // Unchanged bodies go on as Envoy holds them; a redacted one replaces it.
    return this.route(changed ? Buffer.from(JSON.stringify(parsed.batch ? parsed.messages.map((m) => m.raw) : parsed.messages[0]!.raw)) : undefined);
  }

  private route(body: Buffer | undefined): RequestDecision {
    const m = upstreamMutation(this.snap, this.server!, this.headers, this.requestId);
    if (body) m.setHeader('content-length', String(body.length)).setHeader('content-type', 'application/json');
    this.stage = 'routed';
    for (const c of this.calls) c.sent();
    return { kind: 'continue', mutation: m, clearRouteCache: true, ...(body ? { replaceBody: body } : {}), metadata: this.metadata() };
  }

  private reply(status: number, payload: unknown): RequestDecision {
    const body = payload === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload));
    this.responseBytes = body.length;
    const headers: Record<string, string> = { 'x-request-id': this.requestId };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (this.sessionId) headers[SESSION_HEADER] = this.sessionId;
    return { kind: 'respond', status, headers, body, details: status === 202 ? 'tollgate_mcp_accepted' : 'tollgate_mcp_refused', metadata: this.metadata() };
  }

  // ── response ───────────────────────────────────────────────────────────────
  async responseHeaders(status: number, headers: Map<string, string>, endOfStream: boolean): Promise<ResponseHeadersDecision> {
    const m = new MutationBuilder();
    this.upstreamStatus = status;
    if (this.stage !== 'routed') return { mutation: m, stream: false };
    this.stage = 'responding';
    const sid = validSessionId(headers.get(SESSION_HEADER));
    if (sid && !this.sessionId) this.sessionId = sid;
    m.setHeader('x-request-id', this.requestId).removeHeader('set-cookie');
    for (const c of this.calls) c.upstreamAnswered(status);
    const ct = (headers.get('content-type') ?? '').toLowerCase();
    const ok = status >= 200 && status < 300;
    if (ok && ct.startsWith('text/event-stream') && !endOfStream) {
      this.sse = new SseRewriter((e) => this.onEvent(e));
      m.removeHeader('content-length');
      return { mutation: m, stream: true, metadata: this.metadata() };
    }
    if (endOfStream) for (const c of this.calls) c.finish(undefined);
    return { mutation: m, stream: false, metadata: this.metadata() };
  }

  async responseBody(body: Buffer): Promise<BodyOutput> {
    if (this.stage !== 'responding') return {};
    this.responseBytes = body.length;
    if (this.upstreamStatus < 200 || this.upstreamStatus >= 300 || body.length === 0) return {};
    let v: unknown;
    try {
      v = JSON.parse(body.toString('utf8'));
    } catch {
      return {}; // not JSON-RPC: passed on as the server sent it; the calls end as provider errors
    }
    const out = Array.isArray(v) ? v.map((x) => this.fromServer(x)) : this.fromServer(v);
    const b = Buffer.from(JSON.stringify(out));
    this.responseBytes = b.length;
    const m = new MutationBuilder().setHeader('content-length', String(b.length));
    return { body: b, mutation: m, metadata: this.metadata() };
  }

  async responseChunk(chunk: Buffer, last: boolean): Promise<BodyOutput> {
    if (!this.sse) return {};
    const out = this.sse.push(chunk, last);
    this.responseBytes += out.length;
    return { body: out };
  }

  private onEvent(e: SseEvent): SseEvent {
    if (e.data === undefined || e.data === '') return e;
    let v: unknown;
    try {
      v = JSON.parse(e.data);
    } catch {
      return e;
    }
    const out = Array.isArray(v) ? v.map((x) => this.fromServer(x)) : this.fromServer(v);
    return { ...e, data: JSON.stringify(out) };
  }

  /** One message from the server: the answer to a call is filtered / redacted and ends its record. */
  private fromServer(v: unknown): unknown {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const msg = v as Record<string, unknown>;
    if (!('result' in msg || 'error' in msg) || (typeof msg.id !== 'string' && typeof msg.id !== 'number')) return v;
    const call = this.pending.get(String(msg.id));
    if (!call) return v;
    this.pending.delete(String(msg.id));
    if ('error' in msg) {
      const err = msg.error as { code?: unknown } | undefined;
      call.finish({ rpcErrorCode: typeof err?.code === 'number' ? err.code : RPC.GATEWAY_ERROR });
      return v;
    }
    let result = msg.result;
    let hidden: number | undefined;
    if (call.method === 'tools/list') {
      const f = filterTools(result, (name) => call.toolVisible(name));
      result = f.result;
      hidden = f.hidden || undefined;
    }
    const output = call.output;
    if (output) result = redactResult(result, (s) => output.text(s));
    call.finish({ hiddenTools: hidden });
    return { ...msg, result };
  }

  // ── end ────────────────────────────────────────────────────────────────────
  end(reason: EndReason, detail?: string): void {
    if (this.stage === 'done') return;
    this.stage = 'done';
    for (const c of this.calls) c.end(reason, this.responseBytes, detail);
  }

  errorContext(): { headers: Record<string, string>; metadata: Record<string, unknown> } {
    return { headers: this.requestId ? { 'x-request-id': this.requestId } : {}, metadata: this.requestId ? this.metadata() : {} };
  }

  requestBodyTimeoutMs(size: number): number | undefined {
    const s = this.snap.core.settings;
    return s.largeBodyBytes > 0 && size >= s.largeBodyBytes ? s.largeBodyTimeoutMs : undefined;
  }

  /** What was decided so far (for `tollgate explain`; never includes credentials or values). */
  inspect(): { requestId: string; server?: string; principal?: Principal; sessionId?: string; calls: Record<string, unknown>[] } {
    return { requestId: this.requestId, server: this.server?.name, principal: this.principal, sessionId: this.sessionId, calls: this.calls.map((c) => c.inspect()) };
  }

  // ── helpers ────────────────────────────────────────────────────────────────
  private newCall(m: Extract<JsonRpcMessage, { kind: 'request' | 'notification' }> | undefined, batchSize?: number): McpCall {
    const call = new McpCall(this.context(), m, batchSize, this.requestBytes);
    this.calls.push(call);
    if (call.jsonrpcId !== undefined) this.pending.set(call.jsonrpcId, call);
    return call;
  }

  /** A request refused before its messages were read (authentication, unknown server, bad method, size). */
  private recordRefusal(err: unknown, method: string): void {
    const call = new McpCall(this.context(), method ? { kind: 'notification', method, params: undefined, raw: {} } : undefined, undefined, this.requestBytes);
    const e = err instanceof GatewayError ? err : new GatewayError('internal', 'internal error');
    call.refuseWith(e);
    call.finish(undefined);
  }

  private metadata(): Record<string, unknown> {
    const md: Record<string, unknown> = {
      request_id: this.requestId,
      tenant: this.principal?.tenant ?? '',
      team: this.principal?.team ?? '',
      key_id: this.principal?.keyId ?? '',
      mcp_server: this.server?.name ?? '',
    };
    const tools = this.calls.map((c) => c.tool).filter((t) => t);
    if (tools.length) md.mcp_tool = tools.join(',');
    return md;
  }
}
