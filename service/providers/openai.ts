// OpenAI client → OpenAI / OpenAI-compatible (vLLM, Ollama, Groq, …) and Azure OpenAI: a near passthrough.
// Only `model` is replaced (and `stream_options.include_usage` forced on, so every stream can be charged);
// unknown fields pass through untouched because the upstream speaks the same API and will judge them itself.
import { GatewayError } from '../errors.ts';
import type { ProviderApi } from '../config/types.ts';
import type { OpenAIChatBody } from './schemas.ts';
import { OpenAIEmbeddingsBody, validate } from './schemas.ts';
import {
  basePathOf,
  decodeBody,
  DEFAULT_AZURE_API_VERSION,
  isObject,
  JSON_CT,
  jsonResponse,
  parseJson,
  SSE_CT,
  upstreamError,
  type Json,
} from './common.ts';
import {
  errorResponse,
  openAIBody,
  OpenAIChatTranslator,
  SseCoreStream,
  usageFromOpenAI,
  type ChatChunk,
  type ChatCompletion,
  type ChatCore,
  type CoreContext,
  type CoreEvent,
} from './chat.ts';
import { bytesAreJsonOf } from './json-match.ts';
import type {
  ClientRequest,
  StreamTranslator,
  TranslatedResponse,
  Translator,
  UpstreamRequest,
  UpstreamTarget,
  Usage,
} from './types.ts';

/**
 * encodeURIComponent(s), without its native call and copy for the common deployment names and API versions, which
 * hold only characters it leaves as they are (letters, digits, `-`, `_`, `.`).
 */
function uriComponent(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e)) return encodeURIComponent(s);
  }
  return s;
}

/** Path and auth headers for an OpenAI-shaped endpoint (`chat/completions`, `embeddings`). */
export function openAIEndpoint(
  kind: 'openai' | 'azure',
  target: UpstreamTarget,
  endpoint: 'chat/completions' | 'embeddings',
): { path: string; headers: Record<string, string> } {
  const { provider, credential } = target;
  const upstreamModel = target.deployment.upstreamModel;
  const base = basePathOf(provider);
  const headers: Record<string, string> = { 'content-type': JSON_CT, 'accept-encoding': 'identity' };
  if (kind === 'azure') {
    const version = provider.apiVersion ?? DEFAULT_AZURE_API_VERSION;
    if (credential) headers['api-key'] = credential;
    return {
      path: `${base}/deployments/${uriComponent(upstreamModel)}/${endpoint}?api-version=${uriComponent(version)}`,
      headers,
    };
  }
  if (credential) headers.authorization = `Bearer ${credential}`;
  return { path: `${base}/${endpoint}`, headers };
}

/**
 * The upstream body of an OpenAI-shaped chat request: the client's body with `model` replaced (and, for a stream,
 * `stream_options.include_usage` forced on), serialized.
 */
export function openAIChatUpstreamBody(body: OpenAIChatBody, ctx: CoreContext, upstreamModel: string): Buffer {
  return forwardedChatBody(body, ctx, upstreamModel) ?? serializedChatBody(body, ctx, upstreamModel);
}

/** The general path: a copy with the edits, serialized. */
export function serializedChatBody(body: OpenAIChatBody, ctx: CoreContext, upstreamModel: string): Buffer {
  const out: Json = { ...body, model: upstreamModel };
  if (ctx.stream) {
    const so = isObject(body.stream_options) ? body.stream_options : {};
    out.stream = true;
    out.stream_options = { ...so, include_usage: true };
  }
  return Buffer.from(JSON.stringify(out));
}

const MODEL_HEAD = '{"model":';
const INCLUDE_USAGE = ',"stream_options":{"include_usage":true}}';

/**
 * `matches`: bytesAreJsonOf(ctx.raw, ctx.rawText, body) when the caller already knows it.
 * Fast path, same bytes as serializedChatBody: when the body still serializes to exactly the text the client sent
 * (compact JSON, as the OpenAI SDKs write it, unchanged by policies and redaction) with `model` first, the client's
 * bytes are forwarded with only the model value swapped, instead of escaping every message again (~3 ns/char with
 * JSON.stringify). A stream is covered when `stream_options` is absent (the edit then appends it, as the spread
 * copy would) or already `{"include_usage":true}`. Undefined: take the general path.
 */
export function forwardedChatBody(body: OpenAIChatBody, ctx: CoreContext, upstreamModel: string, matches?: boolean): Buffer | undefined {
  const raw = ctx.raw;
  const text = ctx.rawText;
  if (raw === undefined || text === undefined || !text.startsWith(MODEL_HEAD)) return undefined;
  let append = '';
  if (ctx.stream) {
    if (body.stream !== true || !Object.hasOwn(body, 'stream')) return undefined;
    if (!Object.hasOwn(body, 'stream_options')) append = INCLUDE_USAGE;
    else if (!onlyIncludeUsage(body.stream_options)) return undefined;
  }
  if (typeof body.model !== 'string' || !(matches ?? bytesAreJsonOf(raw, text, body))) return undefined;
  // The text starts with {"model":<the model's JSON>: keep the bytes after it.
  const tailStart = MODEL_HEAD.length + utf8Length(JSON.stringify(body.model));
  const head = MODEL_HEAD + JSON.stringify(upstreamModel);
  const headBytes = utf8Length(head);
  // Without an append the tail keeps the closing brace; with one, the append replaces it.
  const tailEnd = append === '' ? raw.length : raw.length - 1;
  const out = Buffer.allocUnsafe(headBytes + (tailEnd - tailStart) + append.length);
  out.write(head, 0, 'utf8');
  raw.copy(out, headBytes, tailStart, tailEnd);
  if (append !== '') out.write(append, headBytes + (tailEnd - tailStart), 'latin1');
  return out;
}

/**
 * Buffer.byteLength(s) for a string JSON.stringify wrote (no lone surrogates: it escapes them), in JS: a model name
 * is a few characters, for which the native call costs more than the count.
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A surrogate pair (2 units) is 4 bytes: +1 per unit. Other units: 1, 2 or 3 bytes.
    if (c >= 0x80) n += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdfff ? 1 : 2;
  }
  return n;
}

/** `{"include_usage":true}` and nothing else: what the stream edit would rebuild it as. */
function onlyIncludeUsage(so: unknown): boolean {
  if (!isObject(so) || so.include_usage !== true) return false;
  for (const k in so) if (k !== 'include_usage') return false;
  return true;
}

class OpenAIPassthroughStream extends SseCoreStream {
  private readonly provider: ProviderApi;
  private lastUsage: Usage | undefined;
  private finish: string | undefined;

  constructor(provider: ProviderApi) {
    super();
    this.provider = provider;
  }

  protected onEvent(data: string, _event: string | undefined, out: CoreEvent[]): void {
    if (data === '[DONE]') {
      this.completed = true;
      out.push({ type: 'done' });
      return;
    }
    const chunk = parseJson(data, 'upstream stream event');
    if (!isObject(chunk)) throw new GatewayError('upstream', 'upstream stream event is not a JSON object', { code: 'upstream_protocol' });
    if (chunk.error !== undefined) {
      const body = Buffer.from(JSON.stringify(chunk));
      out.push({ type: 'error', error: upstreamError(this.provider, 500, {}, body) });
      return;
    }
    const usage = usageFromOpenAI(chunk.usage);
    if (usage) this.lastUsage = usage;
    if (Array.isArray(chunk.choices)) {
      for (const c of chunk.choices) {
        if (isObject(c) && typeof c.finish_reason === 'string' && (c.index === 0 || c.index === undefined)) {
          this.finish = c.finish_reason;
          this.completed = true;
        }
      }
    }
    out.push({ type: 'chunk', chunk: chunk as unknown as ChatChunk, raw: data });
  }

  usage(): Usage | undefined {
    return this.lastUsage;
  }

  finishReason(): string | undefined {
    return this.finish;
  }
}

/** An OpenAI-shaped upstream answer, checked to be a chat completion. */
function chatCompletionOf(body: unknown): ChatCompletion {
  if (!isObject(body) || !Array.isArray(body.choices)) {
    throw new GatewayError('upstream', 'upstream response is not a chat completion', { code: 'upstream_protocol' });
  }
  return body as unknown as ChatCompletion;
}

export class OpenAICore implements ChatCore {
  readonly provider: 'openai' | 'azure';

  constructor(provider: 'openai' | 'azure') {
    this.provider = provider;
  }

  async request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest> {
    const { path, headers } = openAIEndpoint(this.provider, target, 'chat/completions');
    if (ctx.stream) headers.accept = 'text/event-stream';
    return { path, headers, body: openAIChatUpstreamBody(body, ctx, target.deployment.upstreamModel) };
  }

  parse(body: unknown): ChatCompletion {
    return chatCompletionOf(body);
  }

  stream(): OpenAIPassthroughStream {
    return new OpenAIPassthroughStream(this.provider);
  }
}

/**
 * OpenAI Chat Completions client → OpenAI / Azure: the general translator (OpenAIChatTranslator over OpenAICore) with
 * the work a same-format hop does not need taken out of the per-request path. Same requests, answers and errors:
 * - request: a body proven valid at parse that still serializes to the client's bytes is the same JSON data, so
 *   still proven; the proof is not run again, and the bytes check is done once for both questions.
 * - response: OpenAICore.parse ignores the request body, so it is not re-validated; and when the upstream's bytes
 *   are exactly what JSON.stringify would write for the parsed completion, they are the client's body as they are.
 * test/providers/openai-passthrough.test.ts compares both with the general translator.
 */
export class OpenAIChatPassthroughTranslator extends OpenAIChatTranslator {
  private readonly kind: 'openai' | 'azure';

  constructor(provider: 'openai' | 'azure') {
    super(new OpenAICore(provider));
    this.kind = provider;
  }

  override async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const { raw, rawText } = req;
    // Asked only where the answer saves work: a body proven at parse whose text starts with the model (forwardable).
    const asked = req.proven === true && raw !== undefined && rawText !== undefined && rawText.startsWith(MODEL_HEAD);
    const unchanged = asked && bytesAreJsonOf(raw, rawText, req.body);
    const body = unchanged ? (req.body as OpenAIChatBody) : openAIBody(req, true);
    const ctx: CoreContext = { model: req.model, stream: req.stream, raw, rawText };
    const { path, headers } = openAIEndpoint(this.kind, target, 'chat/completions');
    if (ctx.stream) headers.accept = 'text/event-stream';
    const upstreamModel = target.deployment.upstreamModel;
    const matches = asked && body === req.body ? unchanged : undefined;
    const bytes = forwardedChatBody(body, ctx, upstreamModel, matches) ?? serializedChatBody(body, ctx, upstreamModel);
    return { path, headers, body: bytes };
  }

  override response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse {
    if (status < 200 || status >= 300) return super.response(status, headers, body, req);
    try {
      const bytes = decodeBody(headers, body);
      const text = bytes.toString('utf8');
      const completion = chatCompletionOf(parseJson(text));
      const usage = usageFromOpenAI(completion.usage);
      const finish = completion.choices[0]?.finish_reason;
      const out: TranslatedResponse = bytesAreJsonOf(bytes, text, completion)
        ? { status, headers: { 'content-type': JSON_CT }, body: bytes, json: completion }
        : jsonResponse(status, completion);
      if (usage) out.usage = usage;
      if (finish) out.finishReason = finish;
      return out;
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }
}

// ---------------------------------------------------------------- embeddings

export function embeddingsBody(req: ClientRequest): OpenAIEmbeddingsBody {
  return validate(OpenAIEmbeddingsBody, req.body);
}

function noStream(): StreamTranslator {
  throw new GatewayError('invalid_request', 'embeddings cannot be streamed', { param: 'stream' });
}

/** OpenAI embeddings → OpenAI-compatible / Azure: passthrough with model replaced. */
export class OpenAIEmbeddingsTranslator implements Translator {
  readonly client = 'openai' as const;
  readonly op = 'embeddings' as const;
  readonly streamContentType = SSE_CT;
  readonly provider: 'openai' | 'azure';

  constructor(provider: 'openai' | 'azure') {
    this.provider = provider;
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const body = embeddingsBody(req);
    const out = { ...body, model: target.deployment.upstreamModel };
    const { path, headers } = openAIEndpoint(this.provider, target, 'embeddings');
    return { path, headers, body: Buffer.from(JSON.stringify(out)) };
  }

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    if (status < 200 || status >= 300) return errorResponse(upstreamError(this.provider, status, headers, body), 'openai');
    try {
      const json = parseJson(decodeBody(headers, body));
      if (!isObject(json) || !Array.isArray(json.data)) {
        throw new GatewayError('upstream', 'upstream response is not an embeddings list', { code: 'upstream_protocol' });
      }
      const u = json.usage;
      const input = isObject(u) && typeof u.prompt_tokens === 'number' ? u.prompt_tokens : undefined;
      return jsonResponse(status, json, input === undefined ? {} : { usage: { inputTokens: input, outputTokens: 0 } });
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }

  stream(): StreamTranslator {
    return noStream();
  }
}

export { errorResponse, noStream };
