// Server-Sent Events as MCP's Streamable HTTP uses them: each event's `data` is one JSON-RPC message.
// An incremental parser (chunks arrive with arbitrary boundaries) that hands each complete event to
// a rewriter and re-serializes it; bytes of an event never leave before the event is complete.

export interface SseEvent {
  /** Field lines other than data, as received (id:, event:, retry:, comments), in order. */
  fields: string[];
  /** The data lines joined with "\n" (undefined when the event has none). */
  data: string | undefined;
}

/** Largest event held while waiting for its end (bytes); a longer one is an error. */
export const MAX_SSE_EVENT_BYTES = 8 * 1024 * 1024;

export class SseEventError extends Error {
  override readonly name = 'SseEventError';
}

export function serializeEvent(e: SseEvent): string {
  let out = e.fields.map((f) => `${f}\n`).join('');
  if (e.data !== undefined) for (const line of e.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}

function parseEvent(block: string): SseEvent {
  const fields: string[] = [];
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
    else if (line !== '') fields.push(line);
  }
  return { fields, data: data.length ? data.join('\n') : undefined };
}

/** Splits a stream into events; `rewrite` returns the event to send (or null to drop it). */
export class SseRewriter {
  private buf = '';
  private readonly decoder = new TextDecoder();

  constructor(private readonly rewrite: (e: SseEvent) => SseEvent | null) {}

  push(chunk: Buffer, last: boolean): Buffer {
    this.buf += this.decoder.decode(chunk, { stream: !last });
    // CRLF / CR line ends become LF; a CR at the very end may be half of a CRLF split across chunks.
    const held = !last && this.buf.endsWith('\r') ? '\r' : '';
    if (held) this.buf = this.buf.slice(0, -1);
    this.buf = this.buf.replace(/\r\n?/g, '\n');
    let out = '';
    for (;;) {
      const end = this.buf.indexOf('\n\n');
      if (end < 0) break;
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      const e = this.rewrite(parseEvent(block));
      if (e) out += serializeEvent(e);
    }
    if (this.buf.length > MAX_SSE_EVENT_BYTES) throw new SseEventError(`an SSE event is over ${MAX_SSE_EVENT_BYTES} bytes`);
    this.buf += held;
    if (last && this.buf.trim() !== '') {
      // A final event without its blank line: complete it.
      const e = this.rewrite(parseEvent(this.buf));
      this.buf = '';
      if (e) out += serializeEvent(e);
    }
    return Buffer.from(out, 'utf8');
  }
}
