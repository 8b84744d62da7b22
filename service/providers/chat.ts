// The OpenAI Chat Completions shape is the pivot: every provider "core" turns an OpenAI request into its own
// wire format and its answers back into OpenAI completions/chunks. Client-facing wrappers then either serialize
// those (OpenAI clients) or convert them to Anthropic Messages (anthropic-via-openai.ts).
import { GatewayError, renderError } from '../errors.ts';
import type { ProviderApi } from '../config/types.ts';
import { OpenAIChatBody, validate } from './schemas.ts';
import { provenOpenAIChat } from './chat-fast-check.ts';
import { SseDecoder, sseEvent } from './sse.ts';
import { decodeBody, isObject, jsonResponse, parseJson, SSE_CT, upstreamError, type Json } from './common.ts';
import type {
  ClientRequest,
  StreamTranslator,
  TranslatedResponse,
  Translator,
  UpstreamRequest,
  UpstreamTarget,
  Usage,
} from './types.ts';

export interface OAUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number };
}

export interface OAToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface OAChoice {
  index: number;
  message: { role: 'assistant'; content: string | null; refusal: string | null; tool_calls?: OAToolCall[] };
  logprobs: null;
  finish_reason: string;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: OAChoice[];
  usage?: OAUsage;
}

export interface OAToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface OAChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string | null; tool_calls?: OAToolCallDelta[]; refusal?: string | null };
  logprobs?: null;
  finish_reason: string | null;
}

export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: OAChunkChoice[];
  usage?: OAUsage | null;
}

/** What a provider core's stream decoder yields. `raw` is the upstream JSON text when it can be forwarded verbatim. */
export type CoreEvent =
  | { type: 'chunk'; chunk: ChatChunk; raw?: string }
  | { type: 'error'; error: GatewayError }
  | { type: 'done' };

export interface CoreStream {
  push(chunk: Buffer): CoreEvent[];
  /** Upstream finished. A stream cut before the provider's end marker yields an error event. */
  end(): CoreEvent[];
  usage(): Usage | undefined;
  /** OpenAI vocabulary: stop | length | tool_calls | content_filter. */
  finishReason(): string | undefined;
}

export interface CoreContext {
  /** Model the client asked for; used where the provider does not report one. */
  model: string;
  stream: boolean;
  /** The client's body as received (ClientRequest.raw/rawText), for cores that can forward its bytes. */
  raw?: Buffer;
  rawText?: string;
}

/** OpenAI Chat Completions ⇄ one provider's wire format. */
export interface ChatCore {
  readonly provider: ProviderApi;
  request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest>;
  /** 2xx JSON body → OpenAI completion. Throws GatewayError('upstream') on a body it cannot understand. */
  parse(body: unknown, ctx: CoreContext, requestBody: OpenAIChatBody): ChatCompletion;
  stream(ctx: CoreContext, requestBody: OpenAIChatBody): CoreStream;
}

export function usageFromOpenAI(u: unknown): Usage | undefined {
  if (!isObject(u)) return undefined;
  const input = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : undefined;
  const output = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
  if (input === undefined) return undefined;
  const usage: Usage = { inputTokens: input, outputTokens: output };
  const pd = u.prompt_tokens_details;
  if (isObject(pd) && typeof pd.cached_tokens === 'number' && pd.cached_tokens > 0) usage.cachedInputTokens = pd.cached_tokens;
  const cd = u.completion_tokens_details;
  if (isObject(cd) && typeof cd.reasoning_tokens === 'number' && cd.reasoning_tokens > 0) {
    usage.reasoningTokens = cd.reasoning_tokens;
  }
  return usage;
}

/** One Chat Completions choice holding an assistant message; `tool_calls` is left out when there are none. */
export function assistantMessageChoice(index: number, content: string | null, toolCalls: OAToolCall[], finish: string): OAChoice {
  return {
    index,
    message: { role: 'assistant', content, refusal: null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
    logprobs: null,
    finish_reason: finish,
  };
}

/** A translated (non-OpenAI) answer as a Chat Completion; `usage` is left out when the provider reported none. */
export function chatCompletion(id: string, created: number, model: string, choices: OAChoice[], usage: Usage | undefined): ChatCompletion {
  const completion: ChatCompletion = { id, object: 'chat.completion', created, model, choices };
  if (usage) {
    completion.usage = usageToOpenAI(usage);
    REPORTED.set(completion, usage);
  }
  return completion;
}

/**
 * The provider's usage behind a translated completion or chunk. OpenAI's usage shape has no field for cache writes
 * (Anthropic, Bedrock) or their TTL, so translated answers keep the full report aside; OpenAI's own answers are
 * read from their `usage`.
 */
const REPORTED = new WeakMap<object, Usage>();

export function reportedUsage(o: { usage?: OAUsage | null }): Usage | undefined {
  return REPORTED.get(o) ?? usageFromOpenAI(o.usage);
}

export function usageToOpenAI(u: Usage): OAUsage {
  const out: OAUsage = {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cachedInputTokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
  };
  return out;
}

const validated = new WeakMap<object, OpenAIChatBody>();

/**
 * Validated view of the client body. request() always re-validates (policies/redaction may have mutated the body
 * after parseClientRequest); response()/stream() reuse that result instead of re-parsing a large body.
 */
export function openAIBody(req: ClientRequest, fresh = false): OpenAIChatBody {
  // A proven body is its own validated view: zod's copy would equal it key for key (chat-fast-check.ts).
  if (provenOpenAIChat(req.body)) return req.body as OpenAIChatBody;
  if (!fresh) {
    const hit = validated.get(req.body);
    if (hit) return hit;
  }
  const b = validate(OpenAIChatBody, req.body);
  validated.set(req.body, b);
  return b;
}

function ctxOf(req: ClientRequest): CoreContext {
  return { model: req.model, stream: req.stream, raw: req.raw, rawText: req.rawText };
}

function wantsUsage(body: Json): boolean {
  const so = body.stream_options;
  return isObject(so) && so.include_usage === true;
}

function isUsageOnly(chunk: ChatChunk): boolean {
  return Array.isArray(chunk.choices) && chunk.choices.length === 0 && isObject(chunk.usage);
}

/** Serialize a streamed error the way OpenAI does mid-stream: a `data:` event holding `{"error":{…}}`. */
export function openAIStreamError(err: GatewayError): string {
  return sseEvent(renderError(err, 'openai').body.toString('utf8'));
}

/** Serialize a streamed error the way Anthropic does mid-stream: an `event: error` holding its error body. */
export function anthropicStreamError(err: GatewayError): string {
  return sseEvent(renderError(err, 'anthropic').body.toString('utf8'), 'error');
}

/** The upstream stream stopped short (`why`: how); the client gets it as an in-stream error. */
export function streamEnded(why: string): GatewayError {
  return new GatewayError('upstream', `upstream stream ended ${why}`, { code: 'upstream_incomplete' });
}

export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('upstream', 'upstream response could not be translated', { code: 'upstream_protocol', cause: err });
}

/** A failed translation as the response the client gets: the error in the client API's shape. */
export function errorResponse(err: unknown, api: 'openai' | 'anthropic'): TranslatedResponse {
  const r = renderError(toGatewayError(err), api);
  return { status: r.status, headers: r.headers, body: r.body };
}

/** Events from a core stream step; a throw becomes an error event, so the client still gets a well-formed end. */
export function readCore(step: () => CoreEvent[]): CoreEvent[] {
  try {
    return step();
  } catch (err) {
    return [{ type: 'error', error: toGatewayError(err) }];
  }
}

/** Turns a CoreStream into OpenAI SSE bytes: strips the forced usage chunk unless asked for, ends with [DONE]. */
class OpenAIClientStream implements StreamTranslator {
  private readonly inner: CoreStream;
  private readonly keepUsage: boolean;
  private failed = false;
  private doneSent = false;
  private failure: GatewayError | undefined;

  constructor(inner: CoreStream, keepUsage: boolean) {
    this.inner = inner;
    this.keepUsage = keepUsage;
  }

  push(chunk: Buffer): Buffer {
    if (this.failed || this.doneSent) return Buffer.alloc(0);
    return this.render(readCore(() => this.inner.push(chunk)));
  }

  end(): Buffer {
    const events = this.failed || this.doneSent ? [] : readCore(() => this.inner.end());
    let out = this.render(events).toString('utf8');
    if (!this.doneSent) {
      out += 'data: [DONE]\n\n';
      this.doneSent = true;
    }
    return Buffer.from(out);
  }

  usage(): Usage | undefined {
    return this.inner.usage();
  }

  finishReason(): string | undefined {
    return this.inner.finishReason();
  }

  error(): GatewayError | undefined {
    return this.failure;
  }

  private render(events: CoreEvent[]): Buffer {
    let out = '';
    for (const ev of events) {
      if (this.failed || this.doneSent) break;
      if (ev.type === 'chunk') {
        if (!this.keepUsage && isUsageOnly(ev.chunk)) continue;
        out += sseEvent(ev.raw ?? JSON.stringify(ev.chunk));
      } else if (ev.type === 'error') {
        out += openAIStreamError(ev.error);
        this.failed = true;
        this.failure = ev.error;
      } else {
        out += 'data: [DONE]\n\n';
        this.doneSent = true;
      }
    }
    return out.length === 0 ? EMPTY : Buffer.from(out);
  }
}

const EMPTY = Buffer.alloc(0);

/** OpenAI Chat Completions client → any provider, through that provider's core. */
export class OpenAIChatTranslator implements Translator {
  readonly client = 'openai' as const;
  readonly op = 'chat' as const;
  readonly streamContentType = SSE_CT;
  readonly provider: ProviderApi;
  private readonly core: ChatCore;

  constructor(core: ChatCore) {
    this.core = core;
    this.provider = core.provider;
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    return this.core.request(openAIBody(req, true), ctxOf(req), target);
  }

  response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse {
    if (status < 200 || status >= 300) return errorResponse(upstreamError(this.provider, status, headers, body), 'openai');
    try {
      const completion = this.core.parse(parseJson(decodeBody(headers, body)), ctxOf(req), openAIBody(req));
      const usage = reportedUsage(completion);
      const finish = completion.choices[0]?.finish_reason;
      // jsonResponse(status, completion, { usage?, finishReason? }) without two spread temporaries per answer.
      const out = jsonResponse(status, completion);
      if (usage) out.usage = usage;
      if (finish) out.finishReason = finish;
      return out;
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }

  stream(req: ClientRequest): StreamTranslator {
    const body = openAIBody(req);
    return new OpenAIClientStream(this.core.stream(ctxOf(req), body), wantsUsage(req.body));
  }
}

// ---------------------------------------------------------------- building chunks

/** Small factory so provider stream decoders emit well-formed chunks with stable id/created/model. */
export class ChunkFactory {
  id: string;
  model: string;
  created: number;

  constructor(id: string, model: string, created: number) {
    this.id = id;
    this.model = model;
    this.created = created;
  }

  delta(delta: OAChunkChoice['delta'], index = 0): ChatChunk {
    return this.chunk([{ index, delta, logprobs: null, finish_reason: null }]);
  }

  finish(reason: string, index = 0): ChatChunk {
    return this.chunk([{ index, delta: {}, logprobs: null, finish_reason: reason }]);
  }

  usage(u: Usage): ChatChunk {
    const chunk = this.chunk([]);
    chunk.usage = usageToOpenAI(u); // after `choices`, where OpenAI puts it
    REPORTED.set(chunk, u);
    return chunk;
  }

  private chunk(choices: OAChunkChoice[]): ChatChunk {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices };
  }
}

/** Decoder for SSE streams whose events are JSON: `each(data, event)` returns the CoreEvents for one event. */
export abstract class SseCoreStream implements CoreStream {
  private readonly sse = new SseDecoder();
  protected completed = false;
  protected failed = false;

  push(chunk: Buffer): CoreEvent[] {
    const out: CoreEvent[] = [];
    for (const ev of this.sse.push(chunk)) this.handle(ev.data, ev.event, out);
    return out;
  }

  end(): CoreEvent[] {
    const out: CoreEvent[] = [];
    for (const ev of this.sse.end()) this.handle(ev.data, ev.event, out);
    if (!this.failed) this.onEnd(out);
    if (!this.completed && !this.failed) {
      this.failed = true;
      out.push({ type: 'error', error: streamEnded('before the response was complete') });
    }
    return out;
  }

  private handle(data: string, event: string | undefined, out: CoreEvent[]): void {
    if (this.failed) return;
    const before = out.length;
    this.onEvent(data, event, out);
    for (let i = before; i < out.length; i++) if (out[i]!.type === 'error') this.failed = true;
  }

  /** Hook for decoders that emit a trailing chunk (e.g. usage) once the upstream is done. */
  protected onEnd(_out: CoreEvent[]): void {}

  protected abstract onEvent(data: string, event: string | undefined, out: CoreEvent[]): void;
  abstract usage(): Usage | undefined;
  abstract finishReason(): string | undefined;
}
