// Incremental Server-Sent Events codec (WHATWG "event stream" parsing rules). Upstream chunk boundaries are
// arbitrary: an event, a line, a CRLF pair or a multi-byte UTF-8 character may be split across chunks.
import { StringDecoder } from 'node:string_decoder';
import { GatewayError } from '../errors.ts';

export interface SseEvent {
  /** `event:` field; undefined means the default type ("message"). */
  event: string | undefined;
  /** `data:` lines joined with "\n". */
  data: string;
}

/** Longest line we buffer before declaring the upstream broken (bounds memory on a stream without newlines). */
const MAX_LINE = 16 * 1024 * 1024;

export class SseDecoder {
  private readonly text = new StringDecoder('utf8');
  private buf = '';
  /** The previous chunk ended in "\r": a "\n" starting the next chunk belongs to the same line break. */
  private skipLeadingLF = false;
  private event: string | undefined;
  private data: string[] = [];
  private hasData = false;

  push(chunk: Buffer): SseEvent[] {
    return this.feed(this.text.write(chunk));
  }

  /** End of stream: a trailing event without the final blank line is still delivered (lenient, like browsers are not). */
  end(): SseEvent[] {
    const out = this.feed(this.text.end());
    if (this.buf.length > 0) {
      this.line(this.buf);
      this.buf = '';
    }
    this.dispatch(out);
    return out;
  }

  private feed(s: string): SseEvent[] {
    const out: SseEvent[] = [];
    if (s.length === 0) return out;
    if (this.skipLeadingLF) {
      this.skipLeadingLF = false;
      if (s.charCodeAt(0) === 10) s = s.slice(1);
    }
    let buf = this.buf + s;
    let start = 0;
    // The carried-over tail holds no line break, so scanning resumes where it ended.
    for (let i = this.buf.length; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = buf.slice(start, i);
      if (c === 13) {
        if (i + 1 < buf.length) {
          if (buf.charCodeAt(i + 1) === 10) i++;
        } else {
          this.skipLeadingLF = true;
        }
      }
      start = i + 1;
      if (line.length === 0) this.dispatch(out);
      else this.line(line);
    }
    buf = buf.slice(start);
    if (buf.length > MAX_LINE) {
      throw new GatewayError('upstream', 'upstream event stream line exceeds 16 MiB', { code: 'upstream_protocol' });
    }
    this.buf = buf;
    return out;
  }

  private line(line: string): void {
    if (line.charCodeAt(0) === 58) return; // ":" comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.hasData = true;
    } else if (field === 'event') {
      this.event = value;
    }
    // `id` and `retry` carry nothing a translator needs.
  }

  private dispatch(out: SseEvent[]): void {
    if (this.hasData) out.push({ event: this.event, data: this.data.join('\n') });
    this.event = undefined;
    this.data = [];
    this.hasData = false;
  }
}

/** One SSE event. `data` must not contain raw newlines (JSON.stringify output never does). */
export function sseEvent(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}

/**
 * Splits an SSE byte stream into raw event texts (without their blank line) for rewriters that keep each
 * event's own bytes: chunk boundaries may fall inside an event, a CRLF pair or a multi-byte UTF-8 character.
 */
export class SseEventSplitter {
  private readonly text = new StringDecoder('utf8');
  private pending = '';

  /** The events this chunk completes. */
  push(chunk: Buffer): string[] {
    this.pending += this.text.write(chunk);
    return this.take();
  }

  /** End of stream: the complete events, then a trailing one without its blank line (if not empty). */
  end(): string[] {
    this.pending += this.text.end();
    const out = this.take();
    if (this.pending.trim()) out.push(this.pending);
    this.pending = '';
    return out;
  }

  private take(): string[] {
    const out: string[] = [];
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.pending);
      if (!m) return out;
      out.push(this.pending.slice(0, m.index));
      this.pending = this.pending.slice(m.index + m[0].length);
    }
  }
}
