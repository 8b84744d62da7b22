// A provider core's chunk stream → Responses API server-sent events:
//   response.created, response.in_progress,
//   per text answer: response.output_item.added, response.content_part.added, response.output_text.delta…,
//                    response.output_text.done, response.content_part.done, response.output_item.done
//   per function call: response.output_item.added, response.function_call_arguments.delta…/.done,
//                    response.output_item.done
//   response.completed (or response.incomplete when cut by max_output_tokens / a content filter).
// Every event carries `sequence_number` (0, 1, 2, …). An upstream failure becomes an `error` event and ends the stream.
import { renderError, type GatewayError } from '../errors.ts';
import { isObject, type Json } from './common.ts';
import { readCore, type ChatChunk, type CoreEvent, type CoreStream } from './chat.ts';
import {
  functionCallItem,
  functionCallItemId,
  messageItem,
  messageItemId,
  outputTextPart,
  responseId,
  responseObject,
} from './responses-output.ts';
import type { ResponsesBody } from './responses-schema.ts';
import type { StreamTranslator, Usage } from './types.ts';

interface OpenCall {
  outputIndex: number;
  callId: string;
  name: string;
  args: string;
}

/** Serializes one Responses event. */
function event(type: string, seq: number, fields: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...fields })}\n\n`;
}

/** The Responses error event for a failed stream (OpenAI's shape: type, code, message, param). */
export function responsesStreamError(err: GatewayError, seq: number): string {
  const body = JSON.parse(renderError(err, 'openai').body.toString('utf8')) as { error: Json };
  const e = body.error;
  return event('error', seq, { code: e.code ?? null, message: e.message, param: e.param ?? null });
}

export class ResponsesClientStream implements StreamTranslator {
  private seq = 0;
  private started = false;
  private finished = false;
  private failure: GatewayError | undefined;
  private id = '';
  private msgId = '';
  private created = 0;
  private model: string;
  private nextIndex = 0;
  private text: { outputIndex: number; value: string; id: string } | undefined;
  private readonly calls = new Map<number, OpenCall>();
  private readonly output: Array<{ index: number; item: Json }> = [];
  private finish: string | undefined;

  constructor(
    private readonly inner: CoreStream,
    private readonly req: ResponsesBody,
    model: string,
  ) {
    this.model = model;
  }

  push(chunk: Buffer): Buffer {
    if (this.finished) return EMPTY;
    return this.render(readCore(() => this.inner.push(chunk)));
  }

  end(): Buffer {
    if (this.finished) return EMPTY;
    let out = this.render(readCore(() => this.inner.end())).toString('utf8');
    if (!this.finished) out += this.complete();
    return Buffer.from(out);
  }

  usage(): Usage | undefined {
    return this.inner.usage();
  }

  finishReason(): string | undefined {
    return this.inner.finishReason() ?? this.finish;
  }

  error(): GatewayError | undefined {
    return this.failure;
  }

  private emit(type: string, fields: Json): string {
    return event(type, this.seq++, fields);
  }

  private render(events: CoreEvent[]): Buffer {
    let out = '';
    for (const ev of events) {
      if (this.finished) break;
      if (ev.type === 'chunk') out += this.onChunk(ev.chunk);
      else if (ev.type === 'error') {
        out += this.start();
        out += responsesStreamError(ev.error, this.seq++);
        this.failure = ev.error;
        this.finished = true;
      } else out += this.complete();
    }
    return out.length === 0 ? EMPTY : Buffer.from(out);
  }

  private snapshot(inProgress: boolean): Json {
    const output = [...this.output].sort((a, b) => a.index - b.index).map((o) => o.item);
    return responseObject(this.id, this.created, this.model, this.req, output, this.finishReason(), inProgress ? undefined : this.inner.usage(), inProgress);
  }

  private start(): string {
    if (this.started) return '';
    this.started = true;
    if (!this.id) {
      this.id = responseId('stream');
      this.msgId = messageItemId('stream');
    }
    const r = this.snapshot(true);
    return this.emit('response.created', { response: r }) + this.emit('response.in_progress', { response: r });
  }

  private onChunk(chunk: ChatChunk): string {
    if (!this.started && typeof chunk.id === 'string' && chunk.id !== '') {
      this.id = responseId(chunk.id);
      this.msgId = messageItemId(chunk.id);
      if (typeof chunk.created === 'number') this.created = chunk.created;
      if (typeof chunk.model === 'string' && chunk.model !== '') this.model = chunk.model;
    }
    let out = this.start();
    for (const c of Array.isArray(chunk.choices) ? chunk.choices : []) {
      if (!isObject(c) || (c.index !== 0 && c.index !== undefined)) continue; // Responses has a single answer
      const d = c.delta ?? {};
      if (typeof d.content === 'string' && d.content !== '') out += this.textDelta(d.content);
      for (const tc of d.tool_calls ?? []) {
        let call = this.calls.get(tc.index);
        if (!call) {
          // Chat streams send tool calls one after another: a new one means the earlier ones are complete.
          out += this.closeAll();
          call = { outputIndex: this.nextIndex++, callId: tc.id ?? `call_${tc.index}`, name: tc.function?.name ?? '', args: '' };
          this.calls.set(tc.index, call);
          out += this.emit('response.output_item.added', { output_index: call.outputIndex, item: functionCallItem(call.callId, call.name, '', 'in_progress') });
        }
        const a = tc.function?.arguments;
        if (typeof a === 'string' && a !== '') {
          call.args += a;
          out += this.emit('response.function_call_arguments.delta', { item_id: functionCallItemId(call.callId), output_index: call.outputIndex, delta: a });
        }
      }
      if (typeof c.finish_reason === 'string') {
        this.finish = c.finish_reason;
        out += this.closeAll();
      }
    }
    return out;
  }

  private textDelta(delta: string): string {
    let out = '';
    if (!this.text || this.isClosed(this.text.outputIndex)) {
      // Text after a function call (rare) is a new message item with its own id.
      const outputIndex = this.nextIndex++;
      this.text = { outputIndex, value: '', id: this.text ? `${this.msgId}_${outputIndex}` : this.msgId };
      out += this.emit('response.output_item.added', { output_index: outputIndex, item: messageItem(this.text.id, '', 'in_progress') });
      out += this.emit('response.content_part.added', { item_id: this.text.id, output_index: outputIndex, content_index: 0, part: outputTextPart('') });
    }
    this.text.value += delta;
    return out + this.emit('response.output_text.delta', { item_id: this.text.id, output_index: this.text.outputIndex, content_index: 0, delta, logprobs: [] });
  }

  private isClosed(outputIndex: number): boolean {
    return this.output.some((o) => o.index === outputIndex);
  }

  private closeText(): string {
    const t = this.text;
    if (!t || this.isClosed(t.outputIndex)) return '';
    const at = { item_id: t.id, output_index: t.outputIndex, content_index: 0 };
    const item = messageItem(t.id, t.value, 'completed');
    this.output.push({ index: t.outputIndex, item });
    return (
      this.emit('response.output_text.done', { ...at, text: t.value, logprobs: [] }) +
      this.emit('response.content_part.done', { ...at, part: outputTextPart(t.value) }) +
      this.emit('response.output_item.done', { output_index: t.outputIndex, item })
    );
  }

  private closeAll(): string {
    let out = this.closeText();
    for (const call of this.calls.values()) {
      if (this.output.some((o) => o.index === call.outputIndex)) continue;
      const item = functionCallItem(call.callId, call.name, call.args, 'completed');
      this.output.push({ index: call.outputIndex, item });
      out += this.emit('response.function_call_arguments.done', { item_id: item.id, output_index: call.outputIndex, name: call.name, arguments: call.args });
      out += this.emit('response.output_item.done', { output_index: call.outputIndex, item });
    }
    return out;
  }

  private complete(): string {
    if (this.finished) return '';
    let out = this.start() + this.closeAll();
    const r = this.snapshot(false);
    out += this.emit(r.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: r });
    this.finished = true;
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
