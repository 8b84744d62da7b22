// OpenAI Chat Completions ⇄ Anthropic Messages (core), and Anthropic client → Anthropic passthrough.
import { GatewayError } from '../errors.ts';
import type { OpenAIChatBody, OpenAIMessage } from './schemas.ts';
import { AnthropicMessagesBody, validate } from './schemas.ts';
import { SseDecoder, sseEvent, type SseEvent } from './sse.ts';
import {
  basePathOf,
  decodeBody,
  DEFAULT_ANTHROPIC_VERSION,
  DEFAULT_MAX_TOKENS,
  defaultOptions,
  invalid,
  isObject,
  JSON_CT,
  noConversation,
  notSupported,
  parseDataUrl,
  parseJson,
  parseToolArguments,
  rejectUnknown,
  SSE_CT,
  tokenCount,
  upstreamError,
  type Json,
} from './common.ts';
import {
  anthropicStreamError,
  assistantMessageChoice,
  chatCompletion,
  ChunkFactory,
  errorResponse,
  SseCoreStream,
  streamEnded,
  toGatewayError,
  type ChatCompletion,
  type ChatCore,
  type CoreContext,
  type CoreEvent,
  type OAChoice,
  type OAToolCall,
} from './chat.ts';
import type { ProviderApi } from '../config/types.ts';
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

const P = 'anthropic' as const;
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
/** Name of the forced tool that carries `response_format` JSON output (see jsonModeSchema). */
export const JSON_TOOL = 'json_response';
export const JSON_TOOL_DESCRIPTION = 'Respond with the final answer as JSON matching this schema.';

/** A content block of an Anthropic or Bedrock (Converse) answer, reduced to what Chat Completions can carry. */
export type AssistantPart = { text: string } | { toolUse: { id: string; name: string; input: unknown } };

/**
 * One Chat Completions choice from text and tool-use parts. In JSON mode the forced `json_response`
 * tool's input is the answer text, and a tool_calls finish without real tool calls becomes `stop`.
 */
export function assistantChoice(parts: readonly AssistantPart[], json: boolean, finish: string): OAChoice {
  let text = '';
  let hasText = false;
  const toolCalls: OAToolCall[] = [];
  for (const p of parts) {
    if ('text' in p) {
      text += p.text;
      hasText = true;
    } else if (json && p.toolUse.name === JSON_TOOL) {
      text += JSON.stringify(p.toolUse.input ?? {});
      hasText = true;
    } else {
      toolCalls.push({ id: p.toolUse.id, type: 'function', function: { name: p.toolUse.name, arguments: JSON.stringify(p.toolUse.input ?? {}) } });
    }
  }
  return assistantMessageChoice(0, hasText ? text : null, toolCalls, jsonModeFinish(json, finish, toolCalls.length));
}

/** In JSON mode the forced tool call is the answer, so a `tool_calls` finish without real tool calls is a `stop`. */
export function jsonModeFinish(json: boolean, finish: string, toolCalls: number): string {
  return json && finish === 'tool_calls' && toolCalls === 0 ? 'stop' : finish;
}

/**
 * The content blocks of a streamed Anthropic or Bedrock answer, by block index, as OpenAI deltas: a tool-use block
 * becomes a tool call, except JSON mode's forced tool, whose input streams as the answer text (the streaming side
 * of assistantChoice).
 */
export class StreamedBlocks {
  private readonly json: boolean;
  private readonly chunks: ChunkFactory;
  private readonly blocks = new Map<number, { kind: 'text' } | { kind: 'json' } | { kind: 'tool'; index: number } | { kind: 'other' }>();
  private toolCalls = 0;

  constructor(json: boolean, chunks: ChunkFactory) {
    this.json = json;
    this.chunks = chunks;
  }

  /** A block that is not tool use starts (Anthropic: text, or thinking and the like as `other`). */
  open(block: number, kind: 'text' | 'other'): void {
    this.blocks.set(block, { kind });
  }

  isText(block: number): boolean {
    return this.blocks.get(block)?.kind === 'text';
  }

  /** A tool-use block starts; `id` and `name` as the upstream sent them. */
  openToolUse(block: number, id: unknown, name: unknown, out: CoreEvent[]): void {
    if (this.json && name === JSON_TOOL) {
      this.blocks.set(block, { kind: 'json' });
      return;
    }
    const index = this.toolCalls++;
    this.blocks.set(block, { kind: 'tool', index });
    out.push({
      type: 'chunk',
      chunk: this.chunks.delta({ tool_calls: [{ index, id: String(id), type: 'function', function: { name: String(name), arguments: '' } }] }),
    });
  }

  /** A piece of a tool-use block's input JSON. */
  toolInput(block: number, partial: string, out: CoreEvent[]): void {
    const b = this.blocks.get(block);
    if (b?.kind === 'json') out.push({ type: 'chunk', chunk: this.chunks.delta({ content: partial }) });
    else if (b?.kind === 'tool') {
      out.push({ type: 'chunk', chunk: this.chunks.delta({ tool_calls: [{ index: b.index, function: { arguments: partial } }] }) });
    }
  }

  finish(reason: string): string {
    return jsonModeFinish(this.json, reason, this.toolCalls);
  }
}

/**
 * OpenAI request fields the cross-provider translators (Anthropic, Gemini, Bedrock) understand. Some are dropped
 * because they are harmless to drop: they only affect OpenAI-side bookkeeping (store, metadata, prompt_cache_key,
 * service_tier, safety_identifier), token accounting hints (image `detail`), or are best-effort anyway (seed).
 * Anything else unknown → 422.
 */
export const OPENAI_CHAT_FIELDS: ReadonlySet<string> = new Set([
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p',
  'top_k', 'n', 'stop', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'seed',
  'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'user', 'reasoning_effort', 'modalities',
  'metadata', 'store', 'service_tier', 'prompt_cache_key', 'safety_identifier',
]);

/**
 * OpenAI-only knobs that Anthropic, Bedrock and Gemini cannot honour (Gemini does support n, the penalties and
 * temperatures above 1).
 */
export function rejectOpenAIOnlyParams(b: OpenAIChatBody, provider: 'anthropic' | 'bedrock' | 'gemini' | 'vertex'): void {
  if (provider !== 'gemini' && b.n != null && b.n !== 1) throw notSupported('n', provider, 'only n=1 is supported');
  if (b.logit_bias != null && Object.keys(b.logit_bias).length > 0) throw notSupported('logit_bias', provider);
  if (b.logprobs === true) throw notSupported('logprobs', provider);
  if (b.top_logprobs != null && b.top_logprobs > 0) throw notSupported('top_logprobs', provider);
  if (b.reasoning_effort != null) throw notSupported('reasoning_effort', provider);
  const modalities = (b as Json).modalities;
  if (modalities != null && !(Array.isArray(modalities) && modalities.every((m) => m === 'text'))) {
    throw notSupported('modalities', provider, 'only text output is supported');
  }
  if (provider !== 'gemini') {
    if (b.presence_penalty != null && b.presence_penalty !== 0) throw notSupported('presence_penalty', provider);
    if (b.frequency_penalty != null && b.frequency_penalty !== 0) throw notSupported('frequency_penalty', provider);
    if (b.temperature != null && b.temperature > 1) {
      throw new GatewayError('unprocessable', `parameter 'temperature' must be between 0 and 1 for provider ${provider}`, {
        param: 'temperature',
        code: 'unsupported_parameter',
      });
    }
  }
}

/**
 * Appends a turn, merged into the previous one when the role repeats (Anthropic and Converse want alternating
 * roles). An empty turn is dropped.
 */
export function appendTurn<R extends string>(turns: Array<{ role: R; content: Json[] }>, role: R, content: Json[]): void {
  if (content.length === 0) return;
  const last = turns[turns.length - 1];
  if (last && last.role === role) last.content.push(...content);
  else turns.push({ role, content });
}

/** The content of a system, developer, assistant or tool message (only an assistant's has refusal parts). */
type TextContent = string | ReadonlyArray<{ type: 'text'; text: string } | { type: 'refusal'; refusal: string }> | null | undefined;

/** The non-empty texts of a message, in order (refusal parts count as text). */
export function messageTexts(content: TextContent): string[] {
  if (typeof content === 'string') return content === '' ? [] : [content];
  const out: string[] = [];
  if (content == null) return out;
  for (const p of content) {
    const text = p.type === 'text' ? p.text : p.refusal;
    if (text !== '') out.push(text);
  }
  return out;
}

export function maxTokensOf(b: OpenAIChatBody): number {
  return b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_MAX_TOKENS;
}

export function stopList(b: OpenAIChatBody): string[] | undefined {
  if (b.stop == null) return undefined;
  const list = typeof b.stop === 'string' ? [b.stop] : b.stop;
  return list.length > 0 ? list : undefined;
}

/** `response_format` json_object/json_schema → schema for a forced tool, or undefined for plain text. */
export function jsonModeSchema(b: OpenAIChatBody, provider: 'anthropic' | 'bedrock' | 'vertex'): Json | undefined {
  const rf = b.response_format;
  if (!rf || rf.type === 'text') return undefined;
  if (b.tools && b.tools.length > 0) {
    throw notSupported('response_format', provider, 'response_format cannot be combined with tools');
  }
  if (rf.type === 'json_object') return { type: 'object', additionalProperties: true };
  const schema = rf.json_schema.schema ?? { type: 'object', additionalProperties: true };
  if (schema.type !== 'object') {
    throw notSupported('response_format.json_schema.schema', provider, 'the schema must describe an object');
  }
  return schema;
}

export function isJsonMode(b: OpenAIChatBody): boolean {
  return b.response_format != null && b.response_format.type !== 'text';
}

function imageBlock(url: string, param: string): Json {
  const data = parseDataUrl(url);
  if (data) {
    if (!IMAGE_TYPES.has(data.mediaType)) throw notSupported(param, P, `image type ${data.mediaType}`);
    return { type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.data } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw invalid(param, `Invalid value for '${param}': expected an http(s) URL or a base64 data URL.`);
}

function textBlocks(content: TextContent): Json[] {
  return messageTexts(content).map((text) => ({ type: 'text', text }));
}

/** OpenAI messages → Anthropic `system` + alternating `messages` (consecutive same-role turns merged). */
function convertMessages(messages: OpenAIMessage[]): { system: Json[]; messages: Json[] } {
  const system: Json[] = [];
  const out: Array<{ role: 'user' | 'assistant'; content: Json[] }> = [];
  const push = (role: 'user' | 'assistant', blocks: Json[]): void => appendTurn(out, role, blocks);
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(m.content));
        break;
      case 'user': {
        if (typeof m.content === 'string') {
          push('user', [{ type: 'text', text: m.content }]);
          break;
        }
        const blocks: Json[] = [];
        m.content.forEach((p, j) => {
          const pp = `${at}.content[${j}]`;
          if (p.type === 'text') blocks.push({ type: 'text', text: p.text });
          else if (p.type === 'image_url') blocks.push(imageBlock(p.image_url.url, `${pp}.image_url.url`));
          else if (p.type === 'file') {
            const d = p.file.file_data ? parseDataUrl(p.file.file_data) : undefined;
            if (!d || d.mediaType !== 'application/pdf') {
              throw notSupported(pp, P, 'only inline PDF files (file_data as a base64 data URL) are supported');
            }
            blocks.push({ type: 'document', source: { type: 'base64', media_type: d.mediaType, data: d.data } });
          } else throw notSupported(`${pp}.type`, P, `content part type '${p.type}'`);
        });
        push('user', blocks);
        break;
      }
      case 'assistant': {
        const blocks = textBlocks(m.content);
        m.tool_calls?.forEach((tc, j) => {
          blocks.push({
            type: 'tool_use',
            id: tc.id,
            name: tc.function.name,
            input: parseToolArguments(tc.function.arguments, `${at}.tool_calls[${j}].function.arguments`),
          });
        });
        push('assistant', blocks);
        break;
      }
      case 'tool': {
        const content = typeof m.content === 'string' ? m.content : textBlocks(m.content);
        push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content }]);
        break;
      }
      case 'function':
        throw notSupported(`${at}.role`, P, "the deprecated 'function' role; use tools");
    }
  });
  return { system, messages: out };
}

function convertTools(b: OpenAIChatBody, provider: 'anthropic' | 'vertex'): { tools?: Json[]; tool_choice?: Json } {
  const jsonSchema = jsonModeSchema(b, provider);
  if (jsonSchema) {
    return {
      tools: [{ name: JSON_TOOL, description: JSON_TOOL_DESCRIPTION, input_schema: jsonSchema }],
      tool_choice: { type: 'tool', name: JSON_TOOL },
    };
  }
  const out: { tools?: Json[]; tool_choice?: Json } = {};
  if (b.tools && b.tools.length > 0) {
    out.tools = b.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
    }));
  }
  const tc = b.tool_choice;
  let choice: Json | undefined;
  if (tc === 'none') choice = { type: 'none' };
  else if (tc === 'auto') choice = { type: 'auto' };
  else if (tc === 'required') choice = { type: 'any' };
  else if (tc && typeof tc === 'object') choice = { type: 'tool', name: tc.function.name };
  if (b.parallel_tool_calls === false && out.tools) {
    choice ??= { type: 'auto' };
    if (choice.type !== 'none') choice.disable_parallel_tool_use = true;
  }
  if (choice && out.tools) out.tool_choice = choice;
  return out;
}

/** OpenAI body → Anthropic Messages body (without model). `provider` names who refuses a parameter. Exported for the benchmark. */
export function toAnthropicBody(b: OpenAIChatBody, stream: boolean, provider: 'anthropic' | 'vertex' = P): Json {
  rejectUnknown(b as Json, OPENAI_CHAT_FIELDS, provider);
  rejectOpenAIOnlyParams(b, provider);
  const { system, messages } = convertMessages(b.messages);
  if (messages.length === 0) throw noConversation(P);
  const out: Json = { max_tokens: maxTokensOf(b), messages };
  if (system.length === 1) out.system = system[0]!.text;
  else if (system.length > 1) out.system = system;
  const stop = stopList(b);
  if (stop) out.stop_sequences = stop;
  if (b.temperature != null) out.temperature = b.temperature;
  if (b.top_p != null) out.top_p = b.top_p;
  if (b.top_k != null) out.top_k = b.top_k;
  if (b.user) out.metadata = { user_id: b.user };
  Object.assign(out, convertTools(b, provider));
  if (stream) out.stream = true;
  return out;
}

export function anthropicHeaders(target: UpstreamTarget, clientHeaders?: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': JSON_CT,
    'accept-encoding': 'identity',
    'anthropic-version': clientHeaders?.['anthropic-version'] ?? target.provider.apiVersion ?? DEFAULT_ANTHROPIC_VERSION,
  };
  const beta = clientHeaders?.['anthropic-beta'];
  if (beta) headers['anthropic-beta'] = beta;
  if (target.credential) headers['x-api-key'] = target.credential;
  return headers;
}

export function anthropicPath(target: UpstreamTarget): string {
  return `${basePathOf(target.provider)}/messages`;
}

/**
 * Usage from counts that keep cache reads and writes apart from input (Anthropic, Bedrock). Input gets both added,
 * as OpenAI's prompt_tokens includes them.
 */
export function usageWithCache(input: number, output: number, read: number, write: number): Usage {
  const usage: Usage = { inputTokens: input + read + write, outputTokens: output };
  if (read > 0) usage.cachedInputTokens = read;
  if (write > 0) usage.cacheCreationInputTokens = write;
  return usage;
}

/** Anthropic usage → gateway Usage. */
export function usageFromAnthropic(u: unknown): Usage | undefined {
  if (!isObject(u)) return undefined;
  const usage = usageWithCache(
    tokenCount(u.input_tokens),
    tokenCount(u.output_tokens),
    tokenCount(u.cache_read_input_tokens),
    tokenCount(u.cache_creation_input_tokens),
  );
  // 1-hour cache writes cost more than 5-minute ones; the split is in `cache_creation` (a subset of the total).
  const oneHour = isObject(u.cache_creation) ? tokenCount(u.cache_creation.ephemeral_1h_input_tokens) : 0;
  if (oneHour > 0) usage.cacheCreation1hInputTokens = Math.min(oneHour, usage.cacheCreationInputTokens ?? 0);
  return usage;
}

/**
 * Usage of an Anthropic stream: message_start carries the first counts, each message_delta updates some of them
 * (null = unchanged).
 */
class AnthropicStreamUsage {
  private readonly raw: Json = {};

  start(u: unknown): void {
    if (isObject(u)) Object.assign(this.raw, u);
  }

  delta(u: unknown): void {
    if (isObject(u)) for (const [k, v] of Object.entries(u)) if (v != null) this.raw[k] = v;
  }

  usage(): Usage | undefined {
    return Object.keys(this.raw).length > 0 ? usageFromAnthropic(this.raw) : undefined;
  }
}

export function finishFromAnthropic(stop: unknown): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop'; // end_turn, stop_sequence, pause_turn
  }
}

export class AnthropicCore implements ChatCore {
  readonly provider = P;
  private readonly opts: Required<TranslatorOptions>;

  constructor(opts?: TranslatorOptions) {
    this.opts = defaultOptions(opts);
  }

  async request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest> {
    const out = { model: target.deployment.upstreamModel, ...toAnthropicBody(body, ctx.stream) };
    const headers = anthropicHeaders(target);
    if (ctx.stream) headers.accept = 'text/event-stream';
    return { path: anthropicPath(target), headers, body: Buffer.from(JSON.stringify(out)) };
  }

  parse(body: unknown, ctx: CoreContext, requestBody: OpenAIChatBody): ChatCompletion {
    if (!isObject(body) || !Array.isArray(body.content)) {
      throw new GatewayError('upstream', 'upstream response is not an Anthropic message', { code: 'upstream_protocol' });
    }
    const parts: AssistantPart[] = [];
    for (const block of body.content) {
      if (!isObject(block)) continue;
      if (block.type === 'text' && typeof block.text === 'string') parts.push({ text: block.text });
      else if (block.type === 'tool_use') parts.push({ toolUse: { id: String(block.id), name: String(block.name), input: block.input } });
      // thinking / redacted_thinking blocks have no Chat Completions equivalent.
    }
    const choice = assistantChoice(parts, isJsonMode(requestBody), finishFromAnthropic(body.stop_reason));
    const usage = usageFromAnthropic(body.usage);
    const id = typeof body.id === 'string' ? body.id : this.opts.newId('chatcmpl-');
    return chatCompletion(id, this.opts.now(), typeof body.model === 'string' ? body.model : ctx.model, [choice], usage);
  }

  stream(ctx: CoreContext, requestBody: OpenAIChatBody): AnthropicToOpenAIStream {
    return new AnthropicToOpenAIStream(ctx, isJsonMode(requestBody), this.opts);
  }
}

/** Anthropic SSE (message_start … message_stop) → OpenAI chat.completion.chunk events. */
export class AnthropicToOpenAIStream extends SseCoreStream {
  private readonly chunks: ChunkFactory;
  private readonly opts: Required<TranslatorOptions>;
  private readonly blocks: StreamedBlocks;
  private readonly tally = new AnthropicStreamUsage();
  private finish: string | undefined;

  constructor(ctx: CoreContext, json: boolean, opts: Required<TranslatorOptions>) {
    super();
    this.opts = opts;
    this.chunks = new ChunkFactory('', ctx.model, opts.now());
    this.blocks = new StreamedBlocks(json, this.chunks);
  }

  protected onEvent(data: string, event: string | undefined, out: CoreEvent[]): void {
    const ev = parseJson(data, 'upstream stream event');
    if (!isObject(ev)) return;
    const type = typeof ev.type === 'string' ? ev.type : event;
    switch (type) {
      case 'message_start': {
        const msg = isObject(ev.message) ? ev.message : {};
        this.chunks.id = typeof msg.id === 'string' ? msg.id : this.opts.newId('chatcmpl-');
        if (typeof msg.model === 'string') this.chunks.model = msg.model;
        this.tally.start(msg.usage);
        out.push({ type: 'chunk', chunk: this.chunks.delta({ role: 'assistant', content: '' }) });
        break;
      }
      case 'content_block_start': {
        const idx = Number(ev.index);
        const block = isObject(ev.content_block) ? ev.content_block : {};
        if (block.type === 'text') {
          this.blocks.open(idx, 'text');
          if (typeof block.text === 'string' && block.text !== '') {
            out.push({ type: 'chunk', chunk: this.chunks.delta({ content: block.text }) });
          }
        } else if (block.type === 'tool_use') {
          this.blocks.openToolUse(idx, block.id, block.name, out);
        } else {
          this.blocks.open(idx, 'other');
        }
        break;
      }
      case 'content_block_delta': {
        const idx = Number(ev.index);
        const d = isObject(ev.delta) ? ev.delta : {};
        if (d.type === 'text_delta' && typeof d.text === 'string' && this.blocks.isText(idx)) {
          out.push({ type: 'chunk', chunk: this.chunks.delta({ content: d.text }) });
        } else if (d.type === 'input_json_delta' && typeof d.partial_json === 'string' && d.partial_json !== '') {
          this.blocks.toolInput(idx, d.partial_json, out);
        }
        // thinking_delta, signature_delta, citations_delta: no Chat Completions equivalent.
        break;
      }
      case 'message_delta': {
        const d = isObject(ev.delta) ? ev.delta : {};
        this.tally.delta(ev.usage);
        if (d.stop_reason != null) {
          const finish = this.blocks.finish(finishFromAnthropic(d.stop_reason));
          this.finish = finish;
          out.push({ type: 'chunk', chunk: this.chunks.finish(finish) });
        }
        break;
      }
      case 'message_stop': {
        this.completed = true;
        const u = this.usage();
        if (u) out.push({ type: 'chunk', chunk: this.chunks.usage(u) });
        break;
      }
      case 'error': {
        out.push({ type: 'error', error: upstreamError(P, statusOfStreamError(ev.error), {}, Buffer.from(data)) });
        break;
      }
      default:
        break; // ping and future event types
    }
  }

  usage(): Usage | undefined {
    return this.tally.usage();
  }

  finishReason(): string | undefined {
    return this.finish;
  }
}

// ---------------------------------------------------------------- Anthropic client → Anthropic

/** HTTP status Anthropic uses for an error type, for an in-stream `error` event (which has no status). */
function statusOfStreamError(e: unknown): number {
  const type = isObject(e) ? e.type : undefined;
  return type === 'overloaded_error' ? 529 : type === 'rate_limit_error' ? 429 : 500;
}

/**
 * Upstream bytes → complete Anthropic stream events (`data` = the event's JSON text, as the provider sent it). An
 * event with `failure` ends the stream with that error (e.g. a Bedrock exception frame).
 */
export interface AnthropicEventSource {
  push(chunk: Buffer): Array<SseEvent & { failure?: GatewayError }>;
  end(): Array<SseEvent & { failure?: GatewayError }>;
}

/**
 * Re-emits each complete upstream event unchanged (`event:` + `data:`), reading usage and stop_reason on the way.
 * Only whole events are forwarded, so a stream cut mid-event can still be closed with a well-formed error event.
 */
export class AnthropicPassthroughStream implements StreamTranslator {
  private readonly sse: AnthropicEventSource;
  private readonly provider: ProviderApi;
  private readonly tally = new AnthropicStreamUsage();
  private stop: string | undefined;
  private finished = false;
  private failed = false;
  private failure: GatewayError | undefined;

  /** `source` turns upstream bytes into Anthropic events (default: SSE; Bedrock: eventstream `chunk` frames). */
  constructor(source: AnthropicEventSource = new SseDecoder(), provider: ProviderApi = P) {
    this.sse = source;
    this.provider = provider;
  }

  push(chunk: Buffer): Buffer {
    return this.forward(() => this.sse.push(chunk));
  }

  end(): Buffer {
    let out = this.forward(() => this.sse.end()).toString('utf8');
    if (!this.finished && !this.failed) {
      this.failed = true;
      const err = streamEnded('before the response was complete');
      this.failure = err;
      out += anthropicStreamError(err);
    }
    return Buffer.from(out);
  }

  error(): GatewayError | undefined {
    return this.failure;
  }

  usage(): Usage | undefined {
    return this.tally.usage();
  }

  finishReason(): string | undefined {
    return this.stop;
  }

  private forward(next: () => Array<SseEvent & { failure?: GatewayError }>): Buffer {
    if (this.failed || this.finished) return Buffer.alloc(0);
    let out = '';
    let events: Array<SseEvent & { failure?: GatewayError }>;
    try {
      events = next();
    } catch (err) {
      this.failed = true;
      this.failure = toGatewayError(err);
      return Buffer.from(anthropicStreamError(this.failure));
    }
    for (const ev of events) {
      if (this.failed || this.finished) break;
      if (ev.failure) {
        this.failed = true;
        this.failure = ev.failure;
        out += anthropicStreamError(ev.failure);
        break;
      }
      let j: unknown;
      try {
        j = JSON.parse(ev.data);
      } catch {
        out += sseEvent(ev.data, ev.event);
        continue; // forwarded verbatim; only accounting is lost
      }
      if (isObject(j) && j.type === 'error') {
        // Re-rendered, not forwarded: the provider's message may echo a credential (scrubbed by
        // upstreamError). Remembered for the request's outcome.
        this.failed = true;
        this.failure = upstreamError(this.provider, statusOfStreamError(j.error), {}, Buffer.from(ev.data));
        out += anthropicStreamError(this.failure);
        break;
      }
      out += sseEvent(ev.data, ev.event);
      if (!isObject(j)) continue;
      if (j.type === 'message_start') {
        if (isObject(j.message)) this.tally.start(j.message.usage);
      } else if (j.type === 'message_delta') {
        this.tally.delta(j.usage);
        if (isObject(j.delta) && typeof j.delta.stop_reason === 'string') this.stop = j.delta.stop_reason;
      } else if (j.type === 'message_stop') {
        this.finished = true;
      }
    }
    return out === '' ? Buffer.alloc(0) : Buffer.from(out);
  }
}

export class AnthropicPassthroughTranslator implements Translator {
  readonly client = 'anthropic' as const;
  readonly provider = 'anthropic' as const;
  readonly op = 'chat' as const;
  readonly streamContentType = SSE_CT;

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const body = validate(AnthropicMessagesBody, req.body);
    const out = { ...body, model: target.deployment.upstreamModel };
    const headers = anthropicHeaders(target, req.headers);
    if (req.stream) headers.accept = 'text/event-stream';
    return { path: anthropicPath(target), headers, body: Buffer.from(JSON.stringify(out)) };
  }

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    return anthropicMessageResponse(P, status, headers, body);
  }

  stream(): StreamTranslator {
    return new AnthropicPassthroughStream();
  }
}

/** An Anthropic Messages answer relayed as is (Anthropic, Claude on Bedrock InvokeModel, Claude on Vertex). */
export function anthropicMessageResponse(provider: ProviderApi, status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
  try {
    if (status < 200 || status >= 300) throw upstreamError(provider, status, headers, body);
    const plain = decodeBody(headers, body);
    const msg = parseJson(plain);
    if (!isObject(msg) || msg.type !== 'message') {
      throw new GatewayError('upstream', 'upstream response is not an Anthropic message', { code: 'upstream_protocol' });
    }
    const usage = usageFromAnthropic(msg.usage);
    return {
      status,
      headers: { 'content-type': JSON_CT },
      body: plain,
      ...(usage ? { usage } : {}),
      ...(typeof msg.stop_reason === 'string' ? { finishReason: msg.stop_reason } : {}),
    };
  } catch (err) {
    return errorResponse(err, 'anthropic');
  }
}

