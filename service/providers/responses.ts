// OpenAI Responses API clients (`POST /v1/responses`), one translator per provider API:
//   openai / azure                → passthrough (body kept, model replaced, credential injected; usage read back)
//   anthropic / gemini / bedrock  → Responses → Chat Completions pivot (responses-request.ts) → the provider core
//                                   (Messages / generateContent / Converse) → back to a `response` object or to
//                                   Responses events (responses-stream.ts). reasoning.effort → thinking budgets.
import { GatewayError } from '../errors.ts';
import type { ProviderApi } from '../config/types.ts';
import { OpenAIChatBody, validate } from './schemas.ts';
import { ResponsesBody } from './responses-schema.ts';
import { SseDecoder } from './sse.ts';
import {
  basePathOf,
  decodeBody,
  defaultOptions,
  isObject,
  JSON_CT,
  jsonResponse,
  parseJson,
  SSE_CT,
  upstreamError,
  type Json,
} from './common.ts';
import { errorResponse, usageFromOpenAI, type ChatCore, type CoreContext } from './chat.ts';
import { openAIEndpoint } from './openai.ts';
import { signBedrock } from './bedrock.ts';
import { clientError, responsesToChat, type PivotRequest } from './responses-request.ts';
import { applyReasoning } from './responses-reasoning.ts';
import { completionToResponse, finishFromResponse, usageFromResponses } from './responses-output.ts';
import { ResponsesClientStream, responsesStreamError } from './responses-stream.ts';
import type {
  ClientRequest,
  StreamTranslator,
  TranslatedResponse,
  Translator,
  TranslatorOptions,
  UpstreamRequest,
  UpstreamTarget,
  Usage,
} from './types.ts';

const validated = new WeakMap<object, ResponsesBody>();

/** Validated Responses body (request() re-validates: policies/redaction may have changed the body since parsing). */
export function responsesBody(req: ClientRequest, fresh = false): ResponsesBody {
  if (!fresh) {
    const hit = validated.get(req.body);
    if (hit) return hit;
  }
  const b = validate(ResponsesBody, req.body);
  validated.set(req.body, b);
  return b;
}

// ---------------------------------------------------------------- OpenAI / Azure: passthrough

/** Responses endpoint path and auth: OpenAI `<base>/responses`; Azure's v1 API `<base>/v1/responses` (model = deployment name). */
function responsesEndpoint(kind: 'openai' | 'azure', target: UpstreamTarget): { path: string; headers: Record<string, string> } {
  if (kind === 'openai') {
    const { headers } = openAIEndpoint(kind, target, 'chat/completions');
    return { path: `${basePathOf(target.provider)}/responses`, headers };
  }
  const headers: Record<string, string> = { 'content-type': JSON_CT, 'accept-encoding': 'identity' };
  if (target.credential) headers['api-key'] = target.credential;
  return { path: `${basePathOf(target.provider)}/v1/responses`, headers };
}

/**
 * Forwards the upstream's Responses events one whole event at a time (data verbatim, so a cut stream never leaves
 * half an event before its error event), reading usage and the terminal event on the way.
 */
class ResponsesPassthroughStream implements StreamTranslator {
  private readonly sse = new SseDecoder();
  private lastUsage: Usage | undefined;
  private finish: string | undefined;
  private terminal = false;
  private failure: GatewayError | undefined;
  private lastSeq = -1;

  constructor(private readonly provider: ProviderApi) {}

  push(chunk: Buffer): Buffer {
    if (this.done()) return EMPTY;
    return this.forward(() => this.sse.push(chunk));
  }

  end(): Buffer {
    if (this.done()) return EMPTY;
    let out = this.forward(() => this.sse.end()).toString('utf8');
    if (!this.done()) {
      this.failure = new GatewayError('upstream', 'upstream stream ended before the response was complete', { code: 'upstream_incomplete' });
      out += responsesStreamError(this.failure, this.lastSeq + 1);
    }
    this.closed = true;
    return Buffer.from(out);
  }

  private closed = false;

  private done(): boolean {
    return this.closed || this.terminal || this.failure !== undefined;
  }

  private forward(events: () => Array<{ event: string | undefined; data: string }>): Buffer {
    let out = '';
    try {
      for (const ev of events()) {
        if (this.done()) break;
        this.observe(ev.data, ev.event);
        out += `${ev.event ? `event: ${ev.event}\n` : ''}data: ${ev.data}\n\n`;
      }
    } catch (err) {
      this.failure = err instanceof GatewayError ? err : new GatewayError('upstream', 'upstream stream could not be read', { code: 'upstream_protocol' });
      out += responsesStreamError(this.failure, this.lastSeq + 1);
    }
    return out === '' ? EMPTY : Buffer.from(out);
  }

  usage(): Usage | undefined {
    return this.lastUsage;
  }

  finishReason(): string | undefined {
    return this.finish;
  }

  error(): GatewayError | undefined {
    return this.failure;
  }

  private observe(data: string, eventName: string | undefined): void {
    const ev = parseJson(data, 'upstream stream event');
    if (!isObject(ev)) return;
    if (typeof ev.sequence_number === 'number') this.lastSeq = ev.sequence_number;
    const type = typeof ev.type === 'string' ? ev.type : eventName;
    if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      this.terminal = true;
      const r = isObject(ev.response) ? ev.response : {};
      this.lastUsage = usageFromResponses(r.usage) ?? this.lastUsage;
      this.finish = finishFromResponse(r);
      if (type === 'response.failed') {
        const e = isObject(r.error) ? r.error : {};
        this.failure = upstreamError(this.provider, 500, {}, Buffer.from(JSON.stringify({ error: e })));
      }
    } else if (type === 'error') {
      this.terminal = true;
      this.failure = upstreamError(this.provider, 500, {}, Buffer.from(JSON.stringify({ error: ev })));
    }
  }
}

export class ResponsesPassthroughTranslator implements Translator {
  readonly client = 'openai' as const;
  readonly op = 'responses' as const;
  readonly streamContentType = SSE_CT;

  constructor(readonly provider: 'openai' | 'azure') {}

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    responsesBody(req, true);
    const out: Json = { ...req.body, model: target.deployment.upstreamModel };
    const { path, headers } = responsesEndpoint(this.provider, target);
    if (req.stream) headers.accept = 'text/event-stream';
    return { path, headers, body: Buffer.from(JSON.stringify(out)) };
  }

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    if (status < 200 || status >= 300) return errorResponse(upstreamError(this.provider, status, headers, body), 'openai');
    try {
      const raw = decodeBody(headers, body);
      const json = parseJson(raw);
      if (!isObject(json) || json.object !== 'response') {
        throw new GatewayError('upstream', 'upstream response is not a Responses API response', { code: 'upstream_protocol' });
      }
      const usage = usageFromResponses(json.usage);
      const finish = finishFromResponse(json);
      // The provider's bytes as they are (unknown fields included).
      return { status, headers: { 'content-type': JSON_CT }, body: raw, ...(usage ? { usage } : {}), ...(finish ? { finishReason: finish } : {}) };
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }

  stream(): StreamTranslator {
    return new ResponsesPassthroughStream(this.provider);
  }
}

// ---------------------------------------------------------------- Anthropic / Gemini / Bedrock: translated

const pivots = new WeakMap<object, { pivot: PivotRequest; chat: OpenAIChatBody }>();

export class ResponsesTranslator implements Translator {
  readonly client = 'openai' as const;
  readonly op = 'responses' as const;
  readonly streamContentType = SSE_CT;
  readonly provider: ProviderApi;
  private readonly opts: Required<TranslatorOptions>;

  constructor(
    private readonly core: ChatCore,
    opts?: TranslatorOptions,
  ) {
    this.provider = core.provider;
    this.opts = defaultOptions(opts);
  }

  private pivot(req: ClientRequest, fresh = false): { pivot: PivotRequest; chat: OpenAIChatBody } {
    if (!fresh) {
      const hit = pivots.get(req.body);
      if (hit) return hit;
    }
    const pivot = responsesToChat(responsesBody(req, fresh), this.provider, req.stream);
    let chat: OpenAIChatBody;
    try {
      chat = validate(OpenAIChatBody, pivot.chat);
    } catch (err) {
      throw clientError(err, pivot);
    }
    const p = { pivot, chat };
    pivots.set(req.body, p);
    return p;
  }

  private ctx(req: ClientRequest): CoreContext {
    return { model: req.model, stream: req.stream };
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const { pivot, chat } = this.pivot(req, true);
    let up: UpstreamRequest;
    try {
      up = await this.core.request(chat, this.ctx(req), target);
    } catch (err) {
      throw clientError(err, pivot);
    }
    if (!pivot.effort) return up;
    const body = parseJson(up.body, 'translated request') as Json;
    applyReasoning(this.provider, body, pivot.effort, chat.max_completion_tokens != null, target.deployment.upstreamModel);
    const payload = Buffer.from(JSON.stringify(body));
    if (this.provider !== 'bedrock') return { ...up, body: payload };
    // The body changed: Bedrock's SigV4 signature covers it, so sign again.
    const signed = await signBedrock(target, up.path, payload, new Date(this.opts.now() * 1000));
    return { path: up.path, headers: { ...signed, accept: up.headers.accept ?? JSON_CT, 'accept-encoding': 'identity' }, body: payload };
  }

  response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse {
    if (status < 200 || status >= 300) return errorResponse(upstreamError(this.provider, status, headers, body), 'openai');
    try {
      const { chat } = this.pivot(req);
      const completion = this.core.parse(parseJson(decodeBody(headers, body)), this.ctx(req), chat);
      const usage = usageFromOpenAI(completion.usage);
      const finish = completion.choices[0]?.finish_reason;
      return jsonResponse(status, completionToResponse(completion, responsesBody(req), usage), {
        ...(usage ? { usage } : {}),
        ...(finish ? { finishReason: finish } : {}),
      });
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }

  stream(req: ClientRequest): StreamTranslator {
    const { chat } = this.pivot(req);
    return new ResponsesClientStream(this.core.stream(this.ctx(req), chat), responsesBody(req), req.model);
  }
}

const EMPTY = Buffer.alloc(0);
