// What one request may be billed, before it is sent: the reservation that admission puts on every
// budget. It must cover everything the provider bills:
//   prompt  = messages (text, tool calls and results) + system + tool/function definitions +
//             response_format JSON schemas + tool_choice + images and other media + framing
//   output  = the output limit (max_tokens / max_completion_tokens, or the default) × n choices.
// One pass over the parsed body; only tool definitions, schemas and unknown parts are serialized
// (each once), never the whole body. Actual usage is what gets charged at the end (usage.ts).

import { estimateTokens } from './cost.ts';

/**
 * Tokens reserved per image or other media part (document, audio, file). Covers an OpenAI
 * high-detail image (≤ 1,445 tokens for gpt-4o) and Anthropic's resized-image maximum (~1,600).
 * Multi-page PDFs and models that count image tokens differently (gpt-4o-mini) can bill more:
 * their actual usage is charged when the answer arrives.
 */
export const MEDIA_TOKENS = 1600;
/** OpenAI's maximum `n`. */
export const MAX_CHOICES = 128;
/** Framing per message (role, separators) and for the reply primer, as OpenAI counts them. */
const PER_MESSAGE = 4;
const PRIMER = 3;

export interface BillableEstimate {
  /** Prompt tokens, tools, schemas and media included. */
  inputTokens: number;
  /** Output tokens of all choices: the output limit × `choices`. */
  outputTokens: number;
  /** Choices requested (`n`, OpenAI only), 1..MAX_CHOICES. */
  choices: number;
  /** Media parts counted at MEDIA_TOKENS. */
  media: number;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const MEDIA_TYPES: ReadonlySet<string> = new Set(['image', 'image_url', 'input_image', 'document', 'input_audio', 'audio', 'file', 'input_file']);

/** Body fields that carry prompt text outside the messages (serialized once each). */
const PROMPT_FIELDS = ['tools', 'functions', 'response_format', 'tool_choice', 'function_call'] as const;

class Counter {
  tokens = 0;
  media = 0;
  private readonly count: (s: string) => number;

  constructor(count: (s: string) => number = estimateTokens) {
    this.count = count;
  }

  text(s: string): void {
    this.tokens += this.count(s);
  }

  json(v: unknown): void {
    if (v === undefined || v === null) return;
    this.tokens += this.count(typeof v === 'string' ? v : JSON.stringify(v));
  }

  /** A message's `content` (or a tool_result's): a string, or parts / blocks. */
  content(c: unknown): void {
    if (typeof c === 'string') return this.text(c);
    if (!Array.isArray(c)) return this.json(c);
    for (const part of c) this.part(part);
  }

  private part(p: unknown): void {
    if (typeof p === 'string') return this.text(p);
    if (!isObj(p)) return;
    const type = typeof p.type === 'string' ? p.type : '';
    if (typeof p.text === 'string') return this.text(p.text);
    if (type === 'document' && isObj(p.source) && p.source.type === 'text' && typeof p.source.data === 'string') return this.text(p.source.data);
    if (MEDIA_TYPES.has(type)) {
      // Billed by size, not by the bytes of a (base64) payload: never read the data.
      this.media++;
      this.tokens += MEDIA_TOKENS;
      return;
    }
    if (type === 'tool_use' || type === 'server_tool_use') {
      if (typeof p.name === 'string') this.text(p.name);
      return this.json(p.input);
    }
    if (type === 'tool_result' || type === 'web_search_tool_result') return this.content(p.content);
    if (type === 'thinking' && typeof p.thinking === 'string') return this.text(p.thinking);
    this.json(p);
  }

  message(m: unknown): void {
    this.tokens += PER_MESSAGE;
    if (!isObj(m)) return;
    if (typeof m.name === 'string') this.text(m.name);
    this.content(m.content);
    if (Array.isArray(m.tool_calls)) {
      for (const tc of m.tool_calls) {
        const fn = isObj(tc) ? tc.function : undefined;
        if (!isObj(fn)) continue;
        if (typeof fn.name === 'string') this.text(fn.name);
        if (typeof fn.arguments === 'string') this.text(fn.arguments);
      }
    }
    if (isObj(m.function_call)) this.json(m.function_call);
    if (typeof m.refusal === 'string') this.text(m.refusal);
  }
}

/** `n` as the provider will honour it (OpenAI chat only). */
export function choicesOf(body: Json): number {
  const n = body.n;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 1) return 1;
  return Math.min(MAX_CHOICES, Math.ceil(n));
}

/** Prompt tokens of an embeddings `input`: strings, or token arrays (counted exactly). */
function embeddingInputTokens(input: unknown, c: Counter): void {
  if (typeof input === 'string') return c.text(input);
  if (!Array.isArray(input)) return c.json(input);
  if (input.length > 0 && typeof input[0] === 'number') {
    c.tokens += input.length;
    return;
  }
  for (const x of input) {
    if (typeof x === 'string') c.text(x);
    else if (Array.isArray(x)) c.tokens += x.length;
    else c.json(x);
  }
}

/**
 * The most a request may be billed: prompt tokens (everything the provider counts as input) and
 * output tokens (`maxOutputTokens` per choice × n). `maxOutputTokens` is the request's output limit
 * or the documented default when it sets none; embeddings have no output.
 */
export function estimateBillable(
  api: 'openai' | 'anthropic',
  op: 'chat' | 'embeddings',
  body: Json,
  maxOutputTokens: number,
  /** An exact tokenizer (budget/tokenizer.ts) instead of the heuristic. */
  count?: (s: string) => number,
): BillableEstimate {
  const c = new Counter(count);
  if (op === 'embeddings') {
    embeddingInputTokens(body.input, c);
    return { inputTokens: Math.ceil(c.tokens), outputTokens: 0, choices: 1, media: c.media };
  }
  c.tokens += PRIMER;
  if (api === 'anthropic' && body.system !== undefined) {
    c.tokens += PER_MESSAGE;
    c.content(body.system);
  }
  if (Array.isArray(body.messages)) for (const m of body.messages) c.message(m);
  for (const f of PROMPT_FIELDS) c.json(body[f]);
  const choices = api === 'openai' ? choicesOf(body) : 1;
  const perChoice = Math.max(0, Math.ceil(maxOutputTokens));
  return { inputTokens: Math.ceil(c.tokens), outputTokens: perChoice * choices, choices, media: c.media };
}
