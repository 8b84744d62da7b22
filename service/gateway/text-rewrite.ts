// Applies text filters (pseudonym restoration, output redaction) to model output in the CLIENT's
// API shape, after translation — so it works the same whatever provider answered.
import type { ClientApi } from '../errors.ts';
import type { TextStream } from './ports.ts';

/** Rewrites the assistant text of a non-streamed client response. Unparseable bodies pass unchanged. */
export function rewriteClientJson(api: ClientApi, body: Buffer, fn: (text: string) => string): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
  if (!json || typeof json !== 'object') return body;
  const o = json as Record<string, unknown>;
  if (api === 'openai' && Array.isArray(o.choices)) {
    for (const c of o.choices) {
      const msg = (c as { message?: Record<string, unknown> }).message;
      if (msg && typeof msg.content === 'string') msg.content = fn(msg.content);
    }
  } else if (api === 'anthropic' && Array.isArray(o.content)) {
    for (const block of o.content) {
      const b = block as Record<string, unknown>;
      if (b.type === 'text' && typeof b.text === 'string') b.text = fn(b.text);
    }
  }
  return Buffer.from(JSON.stringify(json));
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
 * Streaming version over SSE bytes: keeps one filter chain per choice (OpenAI) or content block
 * (Anthropic), holds partial events across chunks, and flushes held text before the choice/block ends.
 */
export class SseTextRewriter {
  private pending = '';
  private readonly chains = new Map<number, Chain>();
  private lastChunk: Record<string, unknown> | undefined;

  constructor(
    private readonly api: ClientApi,
    private readonly newFilters: () => TextStream[],
  ) {}

  private chain(i: number): Chain {
    let c = this.chains.get(i);
    if (!c) {
      c = new Chain(this.newFilters());
      this.chains.set(i, c);
    }
    return c;
  }

  push(bytes: Buffer, last: boolean): Buffer {
    this.pending += bytes.toString('utf8');
    let out = '';
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.pending);
      if (!m) break;
      const event = this.pending.slice(0, m.index);
      this.pending = this.pending.slice(m.index + m[0].length);
      out += this.rewriteEvent(event);
    }
    if (last) {
      if (this.pending.trim()) out += this.rewriteEvent(this.pending);
      this.pending = '';
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
      if (typeof delta.content === 'string') delta.content = this.chain(idx).push(delta.content);
      if (c.finish_reason !== null && c.finish_reason !== undefined) {
        const rest = this.chains.get(idx)?.end() ?? '';
        this.chains.delete(idx);
        if (rest) {
          delta.content = (typeof delta.content === 'string' ? delta.content : '') + rest;
          c.delta = delta;
        }
      }
    }
    return emit(json);
  }

  private anthropicEvent(json: Record<string, unknown>, emit: (j: unknown) => string): string {
    const idx = typeof json.index === 'number' ? json.index : 0;
    if (json.type === 'content_block_delta') {
      const delta = json.delta as Record<string, unknown> | undefined;
      if (delta?.type === 'text_delta' && typeof delta.text === 'string') delta.text = this.chain(idx).push(delta.text);
      return emit(json);
    }
    if (json.type === 'content_block_stop') {
      const rest = this.chains.get(idx)?.end() ?? '';
      this.chains.delete(idx);
      const flush = rest
        ? `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: idx, delta: { type: 'text_delta', text: rest } })}\n\n`
        : '';
      return flush + emit(json);
    }
    return emit(json);
  }

  /** Anything still held when the stream ends goes out as one more delta. */
  private flushAll(): string {
    let out = '';
    for (const [idx, chain] of this.chains) {
      const rest = chain.end();
      if (!rest) continue;
      if (this.api === 'anthropic') {
        out += `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: idx, delta: { type: 'text_delta', text: rest } })}\n\n`;
      } else {
        const base = this.lastChunk ?? {};
        out += `data: ${JSON.stringify({ id: base.id, object: 'chat.completion.chunk', created: base.created, model: base.model, choices: [{ index: idx, delta: { content: rest }, finish_reason: null }] })}\n\n`;
      }
    }
    this.chains.clear();
    return out;
  }
}
