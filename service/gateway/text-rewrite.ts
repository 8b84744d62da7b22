// Applies text filters (pseudonym restoration, output redaction) to model output in the CLIENT's
// API shape, after translation — so it works the same whatever provider answered.
import type { ClientApi } from '../errors.ts';
import type { TextStream } from './ports.ts';
import { SseEventSplitter } from '../providers/sse.ts';

/**
 * A text filter: `json` is false for prose (message content, text blocks) and true for JSON source (tool-call
 * arguments, whole or streamed in fragments), where restored values must be inserted JSON-escaped.
 */
export type TextFilter = (text: string, json: boolean) => string;

/** Applies `fn` to every string leaf of a JSON value; returns the same value when nothing changed. */
function mapStrings(v: unknown, fn: (s: string) => string): unknown {
  if (typeof v === 'string') return fn(v);
  if (Array.isArray(v)) {
    let changed = false;
    const out = v.map((x) => {
      const y = mapStrings(x, fn);
      if (y !== x) changed = true;
      return y;
    });
    return changed ? out : v;
  }
  if (v && typeof v === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const y = mapStrings(x, fn);
      if (y !== x) changed = true;
      out[k] = y;
    }
    return changed ? out : v;
  }
  return v;
}

/** Tool-call arguments as JSON text: filter each string value; text that is not JSON is filtered as JSON source. */
export function rewriteArguments(args: string, fn: TextFilter): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    return fn(args, true);
  }
  const out = mapStrings(parsed, (s) => fn(s, false));
  return out === parsed ? args : JSON.stringify(out);
}

/**
 * Rewrites the assistant output of a non-streamed client response: message text and tool-call arguments
 * (OpenAI `tool_calls[].function.arguments`, Anthropic `tool_use.input`). Unparseable bodies pass unchanged.
 * `json`, when given, is the value `body` was serialized from (TranslatedResponse.json): it is edited in place
 * instead of parsing `body` again, and `body` itself is returned when no text changed (its bytes are what
 * re-serializing would give). Without it, the body is parsed and always re-serialized.
 */
export function rewriteClientJson(api: ClientApi, body: Buffer, fn: TextFilter, json?: unknown): Buffer {
  if (json !== undefined && json !== null && typeof json === 'object') {
    const changed = rewriteValue(api, json as Record<string, unknown>, fn, true);
    if (changed !== undefined) return changed ? Buffer.from(JSON.stringify(json)) : body;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
  if (!parsed || typeof parsed !== 'object') return body;
  rewriteValue(api, parsed as Record<string, unknown>, fn, false);
  return Buffer.from(JSON.stringify(parsed));
}

/**
 * Applies `fn` to the output text of `o` in place; true when some text changed. `distinct`: first check that no
 * message/block object is reached twice (a shared object would be filtered twice, unlike its parsed copies) and
 * answer undefined, touching nothing, if one is.
 */
function rewriteValue(api: ClientApi, o: Record<string, unknown>, fn: TextFilter, distinct: boolean): boolean | undefined {
  let changed = false;
  if (api === 'openai' && Array.isArray(o.choices)) {
    if (distinct && !distinctTargets(o.choices)) return undefined;
    for (const c of o.choices) {
      const msg = (c as { message?: Record<string, unknown> }).message;
      if (!msg) continue;
      if (typeof msg.content === 'string') {
        const t = fn(msg.content, false);
        if (t !== msg.content) changed = true;
        msg.content = t;
      }
      if (Array.isArray(msg.tool_calls)) {
        for (const t of msg.tool_calls) {
          const f = (t as { function?: Record<string, unknown> } | null)?.function;
          if (f && typeof f.arguments === 'string') {
            const a = rewriteArguments(f.arguments, fn);
            if (a !== f.arguments) changed = true;
            f.arguments = a;
          }
        }
      }
    }
  } else if (api === 'anthropic' && Array.isArray(o.content)) {
    if (distinct && !allDistinct(o.content)) return undefined;
    for (const block of o.content) {
      const b = block as Record<string, unknown>;
      if (b.type === 'text' && typeof b.text === 'string') {
        const t = fn(b.text, false);
        if (t !== b.text) changed = true;
        b.text = t;
      } else if (b.type === 'tool_use' && b.input !== undefined) {
        const input = mapStrings(b.input, (s) => fn(s, false));
        if (input !== b.input) changed = true;
        b.input = input;
      }
    }
  }
  return changed;
}

/** True when no object appears twice in `items` (the common single-item case costs nothing). */
function allDistinct(items: readonly unknown[]): boolean {
  if (items.length < 2) return true;
  const seen = new Set<unknown>();
  for (const v of items) {
    if (v === null || typeof v !== 'object') continue;
    if (seen.has(v)) return false;
    seen.add(v);
  }
  return true;
}

/** The OpenAI objects edited in place (each choice's message, each tool call's function) are all distinct. */
function distinctTargets(choices: readonly unknown[]): boolean {
  // One choice without tool calls (the usual answer) edits one object: nothing to collect.
  if (choices.length === 1) {
    const msg = (choices[0] as { message?: Record<string, unknown> } | null)?.message;
    if (!msg || !Array.isArray(msg.tool_calls) || msg.tool_calls.length === 0) return true;
  }
  const targets: unknown[] = [];
  for (const c of choices) {
    const msg = (c as { message?: Record<string, unknown> } | null)?.message;
    if (!msg) continue;
    targets.push(msg);
    if (Array.isArray(msg.tool_calls)) for (const t of msg.tool_calls) targets.push((t as { function?: unknown } | null)?.function);
  }
  return allDistinct(targets);
}

class Chain {
  constructor(private readonly filters: TextStream[]) {}
  push(t: string): string {
    return this.filters.reduce((acc, f) => f.push(acc), t);
  }
  end(): string {
    let carry = '';
    for (const f of this.filters) carry = f.push(carry) + f.end();
    return carry;
  }
}

/**
 * Streaming version over SSE bytes: keeps one filter chain per text channel — each choice's content and each of
 * its tool calls' arguments (OpenAI), each content block's text or input JSON (Anthropic) — holds partial events
 * across chunks, and flushes held text before the choice/block ends.
 */
export class SseTextRewriter {
  private readonly events = new SseEventSplitter();
  /** Keys: `<choice>` / `<choice>:<tool index>` (OpenAI), `<block>` (Anthropic). */
  private readonly chains = new Map<string, { chain: Chain; json: boolean }>();
  private lastChunk: Record<string, unknown> | undefined;

  constructor(
    private readonly api: ClientApi,
    /** Filters for one channel; `json` is true for tool-call arguments (JSON source). */
    private readonly newFilters: (json: boolean) => TextStream[],
  ) {}

  private chain(key: string, json: boolean): Chain {
    let c = this.chains.get(key);
    if (!c) {
      c = { chain: new Chain(this.newFilters(json)), json };
      this.chains.set(key, c);
    }
    return c.chain;
  }

  /** Ends a channel: what it still held. */
  private endChain(key: string): string {
    const c = this.chains.get(key);
    this.chains.delete(key);
    return c?.chain.end() ?? '';
  }

  push(bytes: Buffer, last: boolean): Buffer {
    let out = '';
    for (const event of this.events.push(bytes)) out += this.rewriteEvent(event);
    if (last) {
      for (const event of this.events.end()) out += this.rewriteEvent(event);
      out += this.flushAll();
    }
    return Buffer.from(out, 'utf8');
  }

  private rewriteEvent(event: string): string {
    const lines = event.split(/\r?\n/);
    const dataIdx = lines.findIndex((l) => l.startsWith('data:'));
    if (dataIdx < 0) return `${event}\n\n`;
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data === '[DONE]') return this.flushAll() + `${event}\n\n`;
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return `${event}\n\n`;
    }
    const prefix = lines.filter((l) => !l.startsWith('data:'));
    const emit = (j: unknown): string => [...prefix, `data: ${JSON.stringify(j)}`].join('\n') + '\n\n';
    return this.api === 'anthropic' ? this.anthropicEvent(json, emit) : this.openaiEvent(json, emit);
  }

  private openaiEvent(json: Record<string, unknown>, emit: (j: unknown) => string): string {
    if (!Array.isArray(json.choices)) return emit(json);
    this.lastChunk = json;
    for (const c of json.choices as Record<string, unknown>[]) {
      const idx = typeof c.index === 'number' ? c.index : 0;
      const delta = (c.delta ?? {}) as Record<string, unknown>;
      if (typeof delta.content === 'string') delta.content = this.chain(String(idx), false).push(delta.content);
      if (Array.isArray(delta.tool_calls)) {
        for (const t of delta.tool_calls as Record<string, unknown>[]) {
          const f = t.function as Record<string, unknown> | undefined;
          const ti = typeof t.index === 'number' ? t.index : 0;
          if (f && typeof f.arguments === 'string') f.arguments = this.chain(`${idx}:${ti}`, true).push(f.arguments);
        }
      }
      if (c.finish_reason !== null && c.finish_reason !== undefined) {
        const rest = this.endChain(String(idx));
        if (rest) delta.content = (typeof delta.content === 'string' ? delta.content : '') + rest;
        for (const key of [...this.chains.keys()].filter((k) => k.startsWith(`${idx}:`))) {
          const args = this.endChain(key);
          if (!args) continue;
          const ti = Number(key.slice(key.indexOf(':') + 1));
          const calls = (Array.isArray(delta.tool_calls) ? delta.tool_calls : (delta.tool_calls = [])) as Record<string, unknown>[];
          const same = calls.find((t) => t.index === ti);
          const f = same?.function as Record<string, unknown> | undefined;
          if (f) f.arguments = (typeof f.arguments === 'string' ? f.arguments : '') + args;
          else calls.push({ index: ti, function: { arguments: args } });
        }
        c.delta = delta;
      }
    }
    return emit(json);
  }

  private anthropicDelta(idx: number, json: boolean, rest: string): string {
    const delta = json ? { type: 'input_json_delta', partial_json: rest } : { type: 'text_delta', text: rest };
    return `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: idx, delta })}\n\n`;
  }

  private anthropicEvent(json: Record<string, unknown>, emit: (j: unknown) => string): string {
    const idx = typeof json.index === 'number' ? json.index : 0;
    if (json.type === 'content_block_delta') {
      const delta = json.delta as Record<string, unknown> | undefined;
      if (delta?.type === 'text_delta' && typeof delta.text === 'string') delta.text = this.chain(String(idx), false).push(delta.text);
      else if (delta?.type === 'input_json_delta' && typeof delta.partial_json === 'string')
        delta.partial_json = this.chain(String(idx), true).push(delta.partial_json);
      return emit(json);
    }
    if (json.type === 'content_block_stop') {
      const json_ = this.chains.get(String(idx))?.json ?? false;
      const rest = this.endChain(String(idx));
      return (rest ? this.anthropicDelta(idx, json_, rest) : '') + emit(json);
    }
    return emit(json);
  }

  /** Anything still held when the stream ends goes out as one more delta. */
  private flushAll(): string {
    let out = '';
    for (const [key, { chain, json }] of this.chains) {
      const rest = chain.end();
      if (!rest) continue;
      if (this.api === 'anthropic') {
        out += this.anthropicDelta(Number(key), json, rest);
      } else {
        const base = this.lastChunk ?? {};
        const [choice, tool] = key.split(':');
        const delta = tool === undefined ? { content: rest } : { tool_calls: [{ index: Number(tool), function: { arguments: rest } }] };
        out += `data: ${JSON.stringify({ id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model, choices: [{ index: Number(choice), delta, finish_reason: null }] })}\n\n`;
      }
    }
    this.chains.clear();
    return out;
  }
}
