// Anthropic Messages client → any non-Anthropic provider. The request is converted to an OpenAI Chat Completions
// body and handed to that provider's core; its OpenAI-shaped answers (completion or chunks) are converted back into
// an Anthropic message or Anthropic SSE events.
import { GatewayError } from '../errors.ts';
import type { ProviderApi } from '../config/types.ts';
import { AnthropicMessagesBody, OpenAIChatBody, validate, type AnthropicContentBlock } from './schemas.ts';
import { sseEvent } from './sse.ts';
import { decodeBody, isObject, jsonResponse, notSupported, parseJson, rejectUnknown, SSE_CT, upstreamError, type Json } from './common.ts';
import {
  anthropicStreamError,
  errorResponse,
  readCore,
  streamEnded,
  reportedUsage,
  type ChatChunk,
  type ChatCompletion,
  type ChatCore,
  type CoreContext,
  type CoreEvent,
  type CoreStream,
} from './chat.ts';
import type { ClientRequest, StreamTranslator, TranslatedResponse, Translator, UpstreamRequest, UpstreamTarget, Usage } from './types.ts';

/**
 * Anthropic request fields this translator understands. `cache_control` on blocks, `service_tier` and a disabled
 * `thinking` are dropped (caching/scheduling hints with no effect on the answer). Unknown fields → 422.
 */
const KNOWN = new Set([
  'model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k', 'metadata',
  'tools', 'tool_choice', 'thinking', 'service_tier',
]);

function dataUrl(mediaType: string, data: string): string {
  return `data:${mediaType};base64,${data}`;
}

function imagePart(block: Extract<AnthropicContentBlock, { type: 'image' }>): Json {
  const url = block.source.type === 'base64' ? dataUrl(block.source.media_type, block.source.data) : block.source.url;
  return { type: 'image_url', image_url: { url } };
}

/** Anthropic Messages body → OpenAI Chat Completions body (model kept as the client sent it). */
export function anthropicToOpenAIBody(b: AnthropicMessagesBody, provider: ProviderApi): Json {
  rejectUnknown(b as Json, KNOWN, provider);
  if (b.thinking && b.thinking.type === 'enabled') throw notSupported('thinking', provider);
  const messages: Json[] = [];
  if (typeof b.system === 'string') {
    if (b.system !== '') messages.push({ role: 'system', content: b.system });
  } else if (Array.isArray(b.system) && b.system.length > 0) {
    messages.push({ role: 'system', content: b.system.map((t) => ({ type: 'text', text: t.text })) });
  }
  b.messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (m.role === 'assistant') {
      let text = '';
      const toolCalls: Json[] = [];
      m.content.forEach((block, j) => {
        if (block.type === 'text') text += block.text;
        else if (block.type === 'tool_use') {
          toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
        } else if (block.type !== 'thinking' && block.type !== 'redacted_thinking') {
          throw notSupported(`${at}.content[${j}].type`, provider, `'${block.type}' blocks in assistant turns`);
        }
        // Earlier thinking blocks are history only; no Chat Completions field carries them.
      });
      const msg: Json = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
      if (toolCalls.length > 0) msg.tool_calls = toolCalls;
      messages.push(msg);
      return;
    }
    // User turn: tool results become `tool` messages (which must directly follow the assistant's tool calls).
    const parts: Json[] = [];
    m.content.forEach((block, j) => {
      const bp = `${at}.content[${j}]`;
      switch (block.type) {
        case 'text':
          parts.push({ type: 'text', text: block.text });
          break;
        case 'image':
          parts.push(imagePart(block as Extract<AnthropicContentBlock, { type: 'image' }>));
          break;
        case 'document': {
          const src = block.source as Json;
          if (src.type !== 'base64' || src.media_type !== 'application/pdf' || typeof src.data !== 'string') {
            throw notSupported(`${bp}.source`, provider, 'only base64 PDF documents are supported');
          }
          parts.push({ type: 'file', file: { file_data: dataUrl('application/pdf', src.data), filename: 'document.pdf' } });
          break;
        }
        case 'tool_result': {
          let content = '';
          if (typeof block.content === 'string') content = block.content;
          else if (Array.isArray(block.content)) {
            block.content.forEach((c, k) => {
              if (c.type !== 'text') throw notSupported(`${bp}.content[${k}]`, provider, 'images inside tool results');
              content += c.text;
            });
          }
          messages.push({ role: 'tool', tool_call_id: block.tool_use_id, content });
          break;
        }
        default:
          throw notSupported(`${bp}.type`, provider, `'${block.type}' blocks in user turns`);
      }
    });
    if (parts.length > 0) {
      const onlyText = parts.every((p) => p.type === 'text');
      messages.push({ role: 'user', content: onlyText ? parts.map((p) => p.text).join('') : parts });
    }
  });

  const out: Json = { model: b.model, messages, max_tokens: b.max_tokens };
  if (b.stop_sequences && b.stop_sequences.length > 0) out.stop = b.stop_sequences;
  if (b.temperature !== undefined) out.temperature = b.temperature;
  if (b.top_p !== undefined) out.top_p = b.top_p;
  if (b.top_k !== undefined) out.top_k = b.top_k;
  if (b.metadata?.user_id) out.user = b.metadata.user_id;
  if (b.tools && b.tools.length > 0) {
    out.tools = b.tools.map((t, i) => {
      if (t.type !== undefined && t.type !== 'custom') throw notSupported(`tools[${i}].type`, provider, `server tool '${t.type}'`);
      return {
        type: 'function',
        function: {
          name: t.name,
          ...(t.description ? { description: t.description } : {}),
          parameters: t.input_schema ?? { type: 'object', properties: {} },
        },
      };
    });
  }
  const tc = b.tool_choice;
  if (tc) {
    if (tc.type === 'auto') out.tool_choice = 'auto';
    else if (tc.type === 'any') out.tool_choice = 'required';
    else if (tc.type === 'none') out.tool_choice = 'none';
    else out.tool_choice = { type: 'function', function: { name: tc.name } };
    if (tc.type !== 'none' && tc.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  if (b.stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

export function stopReasonFromOpenAI(finish: string | null | undefined): string {
  switch (finish) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

function anthropicUsage(u: Usage | undefined): Json {
  const cached = u?.cachedInputTokens ?? 0;
  const written = u?.cacheCreationInputTokens ?? 0;
  return {
    input_tokens: Math.max(0, (u?.inputTokens ?? 0) - cached - written),
    cache_creation_input_tokens: written,
    cache_read_input_tokens: cached,
    output_tokens: u?.outputTokens ?? 0,
  };
}

function parseArgs(args: string): unknown {
  if (args.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(args);
    if (isObject(v)) return v;
  } catch {
    // fall through
  }
  throw new GatewayError('upstream', 'upstream returned tool call arguments that are not a JSON object', { code: 'upstream_protocol' });
}

/** OpenAI completion → Anthropic message. */
export function completionToAnthropic(c: ChatCompletion, model: string): Json {
  const choice = c.choices[0];
  const content: Json[] = [];
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  for (const tc of choice?.message.tool_calls ?? []) {
    content.push({ type: 'tool_use', id: tc.id, name: tc.function.name, input: parseArgs(tc.function.arguments) });
  }
  return {
    id: c.id,
    type: 'message',
    role: 'assistant',
    model: c.model || model,
    content,
    stop_reason: stopReasonFromOpenAI(choice?.finish_reason),
    stop_sequence: null,
    usage: anthropicUsage(reportedUsage(c)),
  };
}

/** OpenAI chunks → Anthropic SSE events (message_start, content_block_*, message_delta, message_stop). */
class AnthropicClientStream implements StreamTranslator {
  private readonly inner: CoreStream;
  private readonly model: string;
  private started = false;
  private stopped = false;
  private failed = false;
  private failure: GatewayError | undefined;
  private nextBlock = 0;
  private open: { kind: 'text'; block: number } | { kind: 'tool'; block: number; oaIndex: number } | undefined;
  /** OpenAI tool_call index → Anthropic block index, for argument deltas that arrive out of order. */
  private readonly toolBlocks = new Map<number, number>();
  private finish: string | undefined;
  private lastUsage: Usage | undefined;

  constructor(inner: CoreStream, model: string) {
    this.inner = inner;
    this.model = model;
  }

  push(chunk: Buffer): Buffer {
    if (this.failed || this.stopped) return Buffer.alloc(0);
    return Buffer.from(this.render(readCore(() => this.inner.push(chunk))));
  }

  end(): Buffer {
    if (this.failed || this.stopped) return Buffer.alloc(0);
    let out = this.render(readCore(() => this.inner.end()));
    if (!this.failed && !this.stopped) out += this.stop();
    return Buffer.from(out);
  }

  usage(): Usage | undefined {
    return this.lastUsage ?? this.inner.usage();
  }

  finishReason(): string | undefined {
    return this.finish;
  }

  error(): GatewayError | undefined {
    return this.failure;
  }

  private render(events: CoreEvent[]): string {
    let out = '';
    for (const ev of events) {
      if (this.failed || this.stopped) break;
      if (ev.type === 'error') {
        out += anthropicStreamError(ev.error);
        this.failed = true;
        this.failure = ev.error;
      } else if (ev.type === 'done') {
        out += this.stop();
      } else {
        out += this.chunk(ev.chunk);
      }
    }
    return out;
  }

  private start(chunk: ChatChunk): string {
    this.started = true;
    const message = {
      id: chunk.id,
      type: 'message',
      role: 'assistant',
      model: chunk.model || this.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return sseEvent(JSON.stringify({ type: 'message_start', message }), 'message_start');
  }

  private closeBlock(): string {
    if (!this.open) return '';
    const out = sseEvent(JSON.stringify({ type: 'content_block_stop', index: this.open.block }), 'content_block_stop');
    this.open = undefined;
    return out;
  }

  private chunk(chunk: ChatChunk): string {
    let out = this.started ? '' : this.start(chunk);
    const u = reportedUsage(chunk);
    if (u) this.lastUsage = u;
    for (const choice of chunk.choices ?? []) {
      if (choice.index !== 0) continue; // Anthropic has no `n`; only the first choice exists
      const d = choice.delta ?? {};
      if (typeof d.content === 'string' && d.content !== '') {
        if (this.open?.kind !== 'text') {
          out += this.closeBlock();
          const block = this.nextBlock++;
          this.open = { kind: 'text', block };
          out += sseEvent(JSON.stringify({ type: 'content_block_start', index: block, content_block: { type: 'text', text: '' } }), 'content_block_start');
        }
        out += sseEvent(JSON.stringify({ type: 'content_block_delta', index: this.open.block, delta: { type: 'text_delta', text: d.content } }), 'content_block_delta');
      }
      for (const tc of d.tool_calls ?? []) {
        let block = this.toolBlocks.get(tc.index);
        if (block === undefined) {
          out += this.closeBlock();
          block = this.nextBlock++;
          this.toolBlocks.set(tc.index, block);
          this.open = { kind: 'tool', block, oaIndex: tc.index };
          const content_block = { type: 'tool_use', id: tc.id ?? `toolu_${block}`, name: tc.function?.name ?? '', input: {} };
          out += sseEvent(JSON.stringify({ type: 'content_block_start', index: block, content_block }), 'content_block_start');
        }
        const args = tc.function?.arguments;
        if (args) {
          out += sseEvent(JSON.stringify({ type: 'content_block_delta', index: block, delta: { type: 'input_json_delta', partial_json: args } }), 'content_block_delta');
        }
      }
      if (choice.finish_reason) this.finish = stopReasonFromOpenAI(choice.finish_reason);
    }
    return out;
  }

  private stop(): string {
    if (this.stopped) return '';
    if (!this.started) {
      this.failed = true;
      const err = streamEnded('without any content');
      this.failure = err;
      return anthropicStreamError(err);
    }
    this.stopped = true;
    let out = this.closeBlock();
    const usage = this.usage();
    const stopReason = this.finish ?? 'end_turn';
    this.finish = stopReason;
    const au = anthropicUsage(usage);
    out += sseEvent(
      JSON.stringify({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: au }),
      'message_delta',
    );
    out += sseEvent(JSON.stringify({ type: 'message_stop' }), 'message_stop');
    return out;
  }
}

/** Anthropic Messages client → a non-Anthropic provider core. */
export class AnthropicClientTranslator implements Translator {
  readonly client = 'anthropic' as const;
  readonly op = 'chat' as const;
  readonly streamContentType = SSE_CT;
  readonly provider: ProviderApi;
  private readonly core: ChatCore;

  constructor(core: ChatCore) {
    this.core = core;
    this.provider = core.provider;
  }

  /** Cached per body object: request() converts afresh, response()/stream() reuse it (see openAIBody). */
  private readonly converted = new WeakMap<object, OpenAIChatBody>();

  private convert(req: ClientRequest, fresh = false): { body: OpenAIChatBody; ctx: CoreContext } {
    const ctx = { model: req.model, stream: req.stream };
    const hit = fresh ? undefined : this.converted.get(req.body);
    if (hit) return { body: hit, ctx };
    const a = validate(AnthropicMessagesBody, req.body);
    const body = validate(OpenAIChatBody, anthropicToOpenAIBody(a, this.provider));
    this.converted.set(req.body, body);
    return { body, ctx };
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const { body, ctx } = this.convert(req, true);
    return this.core.request(body, ctx, target);
  }

  response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse {
    try {
      if (status < 200 || status >= 300) throw upstreamError(this.provider, status, headers, body);
      const { body: oaBody, ctx } = this.convert(req);
      const completion = this.core.parse(parseJson(decodeBody(headers, body)), ctx, oaBody);
      const msg = completionToAnthropic(completion, req.model);
      const usage = reportedUsage(completion);
      return jsonResponse(status, msg, { ...(usage ? { usage } : {}), finishReason: String(msg.stop_reason) });
    } catch (err) {
      return errorResponse(err, 'anthropic');
    }
  }

  stream(req: ClientRequest): StreamTranslator {
    const { body, ctx } = this.convert(req);
    return new AnthropicClientStream(this.core.stream(ctx, body), req.model);
  }
}

