// What the built-in mock provider answers (service/providers/mock.ts is the provider kind, mock-upstream.ts
// the server): OpenAI chat completions and embeddings, Anthropic Messages, as JSON or SSE, each with usage.
// Deterministic: the reply names the model and quotes the last user message as the mock received it
// (after Tollgate's redaction), so a caller can see what reached the "provider". Tokens are counted
// the simple way (a word is a token, input ≈ 4 characters a token): plausible, not a real tokenizer.

export type Json = Record<string, unknown>;

export class MockRequestError extends Error {
  override readonly name = 'MockRequestError';
  readonly param: string | undefined;
  constructor(message: string, param?: string) {
    super(message);
    this.param = param;
  }
}

const QUOTE_CHARS = 160;
/** Output limit when the request sets none (OpenAI allows that). */
const DEFAULT_MAX_OUTPUT = 256;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Text of a message content: a string, or the `text` of its text parts. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (isObj(p) && typeof p.text === 'string' ? p.text : ''))
    .filter(Boolean)
    .join(' ');
}

function messagesOf(body: Json): Json[] {
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw new MockRequestError("'messages' must be a non-empty array", 'messages');
  const out: Json[] = [];
  body.messages.forEach((m, i) => {
    if (!isObj(m) || typeof m.role !== 'string') throw new MockRequestError(`messages[${i}] must be an object with a role`, `messages[${i}]`);
    out.push(m);
  });
  return out;
}

function modelOf(body: Json): string {
  if (typeof body.model !== 'string' || body.model === '') throw new MockRequestError("'model' is required", 'model');
  return body.model;
}

/** ≈ 4 characters a token, at least 1. */
export function countInputTokens(texts: string[]): number {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  return Math.max(1, Math.ceil(chars / 4));
}

/** The reply as tokens (words with their leading space), cut at `maxTokens`. */
function replyTokens(model: string, lastUser: string, maxTokens: number): { tokens: string[]; truncated: boolean } {
  const quoted = lastUser.length > QUOTE_CHARS ? `${lastUser.slice(0, QUOTE_CHARS)}…` : lastUser;
  const text = `This is a mock response from Tollgate's built-in mock provider for ${model}: no provider credential is set for this model. You said: "${quoted.replace(/\s+/g, ' ').trim()}"`;
  const words = text.split(' ').map((w, i) => (i === 0 ? w : ` ${w}`));
  const limit = Math.max(1, maxTokens);
  return { tokens: words.slice(0, limit), truncated: words.length > limit };
}

function positiveInt(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new MockRequestError(`'${param}' must be a positive integer`, param);
  return v;
}

// ------------------------------------------------------------------ OpenAI chat

export interface OpenAIChatPlan {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  choices: { tokens: string[]; finish: 'stop' | 'length' }[];
  promptTokens: number;
  completionTokens: number;
  id: string;
  created: number;
}

export function planOpenAIChat(body: Json, id: string, created: number): OpenAIChatPlan {
  const model = modelOf(body);
  const messages = messagesOf(body);
  const max = positiveInt(body.max_completion_tokens, 'max_completion_tokens') ?? positiveInt(body.max_tokens, 'max_tokens') ?? DEFAULT_MAX_OUTPUT;
  const n = positiveInt(body.n, 'n') ?? 1;
  if (n > 8) throw new MockRequestError("'n' must be at most 8", 'n');
  const lastUser = textOf([...messages].reverse().find((m) => m.role === 'user')?.content);
  const choices = Array.from({ length: n }, () => {
    const r = replyTokens(model, lastUser, max);
    return { tokens: r.tokens, finish: r.truncated ? ('length' as const) : ('stop' as const) };
  });
  return {
    model,
    stream: body.stream === true,
    includeUsage: isObj(body.stream_options) && body.stream_options.include_usage === true,
    choices,
    promptTokens: countInputTokens(messages.map((m) => textOf(m.content))),
    completionTokens: choices.reduce((s, c) => s + c.tokens.length, 0),
    id,
    created,
  };
}

function openAIUsage(p: OpenAIChatPlan): Json {
  return { prompt_tokens: p.promptTokens, completion_tokens: p.completionTokens, total_tokens: p.promptTokens + p.completionTokens };
}

export function openAIChatCompletion(p: OpenAIChatPlan): Json {
  return {
    id: p.id,
    object: 'chat.completion',
    created: p.created,
    model: p.model,
    choices: p.choices.map((c, index) => ({
      index,
      message: { role: 'assistant', content: c.tokens.join(''), refusal: null },
      logprobs: null,
      finish_reason: c.finish,
    })),
    usage: openAIUsage(p),
  };
}

/** SSE `data:` payloads in order, ending with `[DONE]`. */
export function openAIChatChunks(p: OpenAIChatPlan): string[] {
  const base = { id: p.id, object: 'chat.completion.chunk', created: p.created, model: p.model };
  const out: string[] = [];
  const chunk = (choices: Json[], extra: Json = {}): void => {
    out.push(JSON.stringify({ ...base, choices, ...(p.includeUsage ? { usage: null } : {}), ...extra }));
  };
  p.choices.forEach((c, index) => {
    chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    for (const t of c.tokens) chunk([{ index, delta: { content: t }, logprobs: null, finish_reason: null }]);
    chunk([{ index, delta: {}, logprobs: null, finish_reason: c.finish }]);
  });
  if (p.includeUsage) chunk([], { usage: openAIUsage(p) });
  out.push('[DONE]');
  return out;
}

// ------------------------------------------------------------------ OpenAI embeddings

export function openAIEmbeddings(body: Json): Json {
  const model = modelOf(body);
  const input = body.input;
  const items: string[] =
    typeof input === 'string'
      ? [input]
      : Array.isArray(input) && input.length > 0 && input.every((s) => typeof s === 'string')
        ? (input as string[])
        : Array.isArray(input) && input.length > 0
          ? input.map((x) => JSON.stringify(x))
          : [];
  if (items.length === 0) throw new MockRequestError("'input' must be a string or a non-empty array", 'input');
  const dims = positiveInt(body.dimensions, 'dimensions') ?? 16;
  if (dims > 4096) throw new MockRequestError("'dimensions' must be at most 4096", 'dimensions');
  const tokens = countInputTokens(items);
  return {
    object: 'list',
    model,
    data: items.map((text, index) => ({ object: 'embedding', index, embedding: vectorFor(text, dims) })),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** A deterministic unit vector from the text (FNV-1a seeded LCG): same text, same vector. */
function vectorFor(text: string, dims: number): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  const v: number[] = [];
  for (let i = 0; i < dims; i++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    v.push(h / 0xffffffff - 0.5);
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Number((x / norm).toFixed(6)));
}

// ------------------------------------------------------------------ Anthropic Messages

export interface AnthropicPlan {
  model: string;
  stream: boolean;
  tokens: string[];
  stopReason: 'end_turn' | 'max_tokens';
  inputTokens: number;
  id: string;
}

export function planAnthropicMessage(body: Json, id: string): AnthropicPlan {
  const model = modelOf(body);
  const messages = messagesOf(body);
  const max = positiveInt(body.max_tokens, 'max_tokens');
  if (max === undefined) throw new MockRequestError("'max_tokens' is required", 'max_tokens');
  const lastUser = textOf([...messages].reverse().find((m) => m.role === 'user')?.content);
  const r = replyTokens(model, lastUser, max);
  const system = typeof body.system === 'string' ? body.system : textOf(body.system);
  return {
    model,
    stream: body.stream === true,
    tokens: r.tokens,
    stopReason: r.truncated ? 'max_tokens' : 'end_turn',
    inputTokens: countInputTokens([system, ...messages.map((m) => textOf(m.content))]),
    id,
  };
}

export function anthropicMessage(p: AnthropicPlan): Json {
  return {
    id: p.id,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content: [{ type: 'text', text: p.tokens.join('') }],
    stop_reason: p.stopReason,
    stop_sequence: null,
    usage: { input_tokens: p.inputTokens, output_tokens: p.tokens.length },
  };
}

/** SSE events in order: [event name, JSON data]. */
export function anthropicEvents(p: AnthropicPlan): [string, Json][] {
  const out: [string, Json][] = [];
  out.push([
    'message_start',
    {
      type: 'message_start',
      message: { ...anthropicMessage(p), content: [], stop_reason: null, usage: { input_tokens: p.inputTokens, output_tokens: 1 } },
    },
  ]);
  out.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
  for (const t of p.tokens) out.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } }]);
  out.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  out.push(['message_delta', { type: 'message_delta', delta: { stop_reason: p.stopReason, stop_sequence: null }, usage: { output_tokens: p.tokens.length } }]);
  out.push(['message_stop', { type: 'message_stop' }]);
  return out;
}
