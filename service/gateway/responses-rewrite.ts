// Output filters (pseudonym restoration, output redaction) over Responses API answers, after translation:
// the `output` items of a `response` object, and the Responses event stream (text and function-call argument
// deltas, and every `.done` / `response.completed` event that repeats the whole text, kept equal to the deltas).
import type { TextStream } from './ports.ts';
import { rewriteArguments, type TextFilter } from './text-rewrite.ts';
import { SseEventSplitter } from '../providers/sse.ts';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Message text and function-call arguments of `output` items, in place. */
function rewriteItems(output: unknown, fn: (item: Json, index: number) => void): void {
  if (!Array.isArray(output)) return;
  output.forEach((item, i) => {
    if (isObj(item)) fn(item, i);
  });
}

function filterItem(item: Json, fn: TextFilter): void {
  if (item.type === 'message' && Array.isArray(item.content)) {
    for (const p of item.content) if (isObj(p) && typeof p.text === 'string') p.text = fn(p.text, false);
  } else if (item.type === 'function_call' && typeof item.arguments === 'string') {
    item.arguments = rewriteArguments(item.arguments, fn);
  }
}

/** A non-streamed `response` object; bodies that are not one pass unchanged. */
export function rewriteResponsesJson(body: Buffer, fn: TextFilter): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
  if (!isObj(json) || !Array.isArray(json.output)) return body;
  rewriteItems(json.output, (item) => filterItem(item, fn));
  return Buffer.from(JSON.stringify(json));
}

class Channel {
  text = '';
  constructor(
    readonly filters: TextStream[],
    readonly json: boolean,
  ) {}
  push(t: string): string {
    const out = this.filters.reduce((acc, f) => f.push(acc), t);
    this.text += out;
    return out;
  }
  end(): string {
    let carry = '';
    for (const f of this.filters) carry = f.push(carry) + f.end();
    this.text += carry;
    return carry;
  }
}

/**
 * Streaming: one filter chain per channel (`t:<output_index>:<content_index>` text, `a:<output_index>` arguments).
 * Held text is flushed as one more delta before the channel's `.done`; the `.done`, `content_part.done`,
 * `output_item.done` and final `response` carry the filtered text. Events are renumbered (`sequence_number`) since
 * a flush can add one.
 */
export class ResponsesSseRewriter {
  private readonly events = new SseEventSplitter();
  private seq = 0;
  private readonly channels = new Map<string, Channel>();
  /** Channels already ended: their filtered whole text. */
  private readonly done = new Map<string, string>();

  constructor(private readonly newFilters: (json: boolean) => TextStream[]) {}

  push(bytes: Buffer, last: boolean): Buffer {
    let out = '';
    for (const event of this.events.push(bytes)) out += this.rewrite(event);
    if (last) {
      for (const event of this.events.end()) out += this.rewrite(event);
    }
    return Buffer.from(out, 'utf8');
  }

  private channel(key: string, json: boolean): Channel {
    let c = this.channels.get(key);
    if (!c) {
      c = new Channel(this.newFilters(json), json);
      this.channels.set(key, c);
    }
    return c;
  }

  /** Ends a channel; returns what it still held. */
  private close(key: string): string {
    const c = this.channels.get(key);
    if (!c) return '';
    const rest = c.end();
    this.channels.delete(key);
    this.done.set(key, c.text);
    return rest;
  }

  private whole(key: string, original: string, json: boolean, fn: TextFilter): string {
    const known = this.done.get(key) ?? this.channels.get(key)?.text;
    if (known !== undefined) return known;
    return json ? rewriteArguments(original, fn) : fn(original, false);
  }

  private emit(type: string, data: Json): string {
    if (typeof data.sequence_number === 'number') data.sequence_number = this.seq++;
    return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  private rewrite(raw: string): string {
    const lines = raw.split(/\r?\n/);
    const dataText = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    let data: Json;
    try {
      const parsed: unknown = JSON.parse(dataText);
      if (!isObj(parsed)) return `${raw}\n\n`;
      data = parsed;
    } catch {
      return `${raw}\n\n`;
    }
    const eventLine = lines.find((l) => l.startsWith('event:'));
    const type = typeof data.type === 'string' ? data.type : (eventLine?.slice(6).trim() ?? '');
    const oi = typeof data.output_index === 'number' ? data.output_index : 0;
    const ci = typeof data.content_index === 'number' ? data.content_index : 0;
    const tKey = `t:${oi}:${ci}`;
    const aKey = `a:${oi}`;
    // Whole-text filter for fields whose channel was never streamed.
    const whole: TextFilter = (t, json) => {
      const c = new Channel(this.newFilters(json), json);
      return c.push(t) + c.end();
    };
    switch (type) {
      case 'response.output_text.delta':
        if (typeof data.delta === 'string') data.delta = this.channel(tKey, false).push(data.delta);
        return this.emit(type, data);
      case 'response.function_call_arguments.delta':
        if (typeof data.delta === 'string') data.delta = this.channel(aKey, true).push(data.delta);
        return this.emit(type, data);
      case 'response.output_text.done': {
        const rest = this.close(tKey);
        const extra = rest ? this.emit('response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 0, item_id: data.item_id, output_index: oi, content_index: ci, delta: rest, logprobs: [] }) : '';
        if (typeof data.text === 'string') data.text = this.whole(tKey, data.text, false, whole);
        return extra + this.emit(type, data);
      }
      case 'response.function_call_arguments.done': {
        const rest = this.close(aKey);
        const extra = rest ? this.emit('response.function_call_arguments.delta', { type: 'response.function_call_arguments.delta', sequence_number: 0, item_id: data.item_id, output_index: oi, delta: rest }) : '';
        if (typeof data.arguments === 'string') data.arguments = this.whole(aKey, data.arguments, true, whole);
        return extra + this.emit(type, data);
      }
      case 'response.content_part.done': {
        const part = data.part;
        if (isObj(part) && typeof part.text === 'string') part.text = this.whole(tKey, part.text, false, whole);
        return this.emit(type, data);
      }
      case 'response.output_item.done':
        if (isObj(data.item)) this.filterItem(data.item, oi, whole);
        return this.emit(type, data);
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isObj(data.response)) rewriteItems(data.response.output, (item, i) => this.filterItem(item, i, whole));
        return this.flushAll() + this.emit(type, data);
      default:
        return this.emit(type, data);
    }
  }

  private filterItem(item: Json, oi: number, whole: TextFilter): void {
    if (item.type === 'message' && Array.isArray(item.content)) {
      item.content.forEach((p, ci) => {
        if (isObj(p) && typeof p.text === 'string') p.text = this.whole(`t:${oi}:${ci}`, p.text, false, whole);
      });
    } else if (item.type === 'function_call' && typeof item.arguments === 'string') {
      item.arguments = this.whole(`a:${oi}`, item.arguments, true, whole);
    }
  }

  /** Channels still open when the answer ends: their held text goes out as one more delta each. */
  private flushAll(): string {
    let out = '';
    for (const key of [...this.channels.keys()]) {
      const rest = this.close(key);
      if (!rest) continue;
      const [kind, oi, ci] = key.split(':');
      out += kind === 't'
        ? this.emit('response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 0, output_index: Number(oi), content_index: Number(ci), delta: rest, logprobs: [] })
        : this.emit('response.function_call_arguments.delta', { type: 'response.function_call_arguments.delta', sequence_number: 0, output_index: Number(oi), delta: rest });
    }
    return out;
  }
}
