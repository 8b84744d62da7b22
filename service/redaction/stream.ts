// Streaming output redaction, correct across chunk boundaries.
//
// Each push appends to a pending buffer and rescans it (with the last CONTEXT characters already released as left
// context, for detectors that look behind: "tel:", "aws_secret…"). Text is released up to the earliest point from
// which the tail could still be an unfinished match: every detector reports that point (holdFrom, judged on the folded text), bounded by its
// longest possible match, and a finding that reaches into the held tail is held whole. So the released text is
// exactly what whole-text redaction would produce, while only a short tail (usually a few characters: the last
// word or number) waits for the next chunk.

import type { Finding } from './scan.ts';

const CONTEXT = 200;
/** Past this much held text, release it anyway (redacting what is known): bounded memory and latency. */
const MAX_PENDING = 32 * 1024;
const PEM_END = /-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----/;

export class RedactStream {
  private pending = '';
  private ctx = '';
  private released = 0;
  /** Inside a private key block whose start was force-released: drop text until its END line. */
  private suppressing = false;

  constructor(
    /** Smallest index of `text` from which its end may be an unfinished match (Scanner.holdFrom). */
    private readonly holdFrom: (text: string) => number,
    private readonly scan: (text: string) => Finding[],
    /** Redacts `text` given findings (offsets into text); `base` is text's offset in the whole output. */
    private readonly apply: (text: string, findings: readonly Finding[], base: number) => string,
  ) {}

  push(text: string): string {
    if (text.length === 0) return '';
    this.pending += text;
    return this.flush(false);
  }

  end(): string {
    return this.flush(true);
  }

  private flush(final: boolean): string {
    if (this.suppressing) {
      const m = PEM_END.exec(this.pending);
      if (m === null) {
        // Keep a tail in case the END marker is split across chunks.
        const keep = final ? 0 : Math.min(this.pending.length, 64);
        this.released += this.pending.length - keep;
        this.pending = this.pending.slice(this.pending.length - keep);
        if (final) this.pending = '';
        return '';
      }
      const cut = m.index + m[0].length;
      this.released += cut;
      this.pending = this.pending.slice(cut);
      this.suppressing = false;
      this.ctx = '';
    }
    const buf = this.pending;
    if (buf.length === 0) return '';
    const ctxLen = this.ctx.length;
    const full = this.ctx + buf;
    let hold = buf.length;
    const force = !final && buf.length > MAX_PENDING;
    if (!final && !force) {
      const h = this.holdFrom(full) - ctxLen;
      if (h < hold) hold = Math.max(0, h);
      // Nothing can be released yet (e.g. a word or number still being written): skip the scan.
      if (hold === 0) return '';
    }
    const findings: Finding[] = [];
    for (const f of this.scan(full)) {
      if (f.end <= ctxLen) continue; // already released
      findings.push({ ...f, start: Math.max(0, f.start - ctxLen), end: f.end - ctxLen });
    }
    if (!final && !force) {
      for (let i = findings.length - 1; i >= 0; i--) {
        const f = findings[i];
        if (f.end > hold && f.start < hold) hold = f.start;
      }
    }
    const kept = findings.filter((f) => f.end <= hold);
    const out = buf.slice(0, hold);
    const redacted = this.apply(out, kept, this.released);
    // A private key released without its END line (hold-back bound reached): drop what follows until END.
    if (!final) {
      const open = kept.find((f) => f.end === hold && f.detector.name === 'private_key' && !PEM_END.test(out.slice(f.start, f.end)));
      if (open !== undefined) this.suppressing = true;
    }
    this.ctx = (this.ctx + out).slice(-CONTEXT);
    this.released += hold;
    this.pending = buf.slice(hold);
    return redacted;
  }
}
