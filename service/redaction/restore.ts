// Restores pseudonymization surrogates to the originals in model output, whole or streamed.

import type { Span } from './detectors.ts';

export interface TextStream {
  /** Feed the next piece of text; returns what can be released now (possibly ''). */
  push(text: string): string;
  /** No more input: returns everything still held. */
  end(): string;
}

const escapeLiteral = (s: string): string => s.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');

/** Per-request map surrogate → original. Surrogates are ASCII `LABEL_XXXXXXXX` tokens minted by the redactor. */
export class Restorer {
  private readonly map = new Map<string, string>();
  private readonly originals = new Set<string>();
  private re: RegExp | undefined;
  private prefixes: Set<string> | undefined;
  private maxLen = 0;

  /** @internal used by the redactor while it mints surrogates. */
  add(surrogate: string, original: string): void {
    this.map.set(surrogate, original);
    this.originals.add(original);
    this.re = undefined;
    this.prefixes = undefined;
    if (surrogate.length > this.maxLen) this.maxLen = surrogate.length;
  }

  get size(): number {
    return this.map.size;
  }

  has(surrogate: string): boolean {
    return this.map.has(surrogate);
  }

  /** True when `value` is an original this restorer puts back (the client's own pseudonymized data). */
  isOriginal(value: string): boolean {
    return this.originals.has(value);
  }

  private regex(): RegExp | undefined {
    if (this.map.size === 0) return undefined;
    if (this.re === undefined) {
      // Literal alternation, longest first: no quantifiers, so no backtracking blow-up.
      const keys = [...this.map.keys()].sort((a, b) => b.length - a.length).map(escapeLiteral);
      this.re = new RegExp(keys.join('|'), 'g');
    }
    return this.re;
  }

  /** Where surrogates occur in text (the response redactor leaves these alone). */
  spans(text: string): Span[] {
    const re = this.regex();
    if (re === undefined) return [];
    const out: Span[] = [];
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) out.push({ start: m.index, end: m.index + m[0].length });
    return out;
  }

  /** Alias of restoreText(). */
  text(text: string): string {
    return this.restoreText(text);
  }

  /**
   * Replaces every surrogate in text with its original. `json`: the text is JSON source (tool-call arguments,
   * possibly a fragment of them) — originals are inserted JSON-string-escaped, so quotes, backslashes and newlines
   * in an original (a custom detector's match, a private key) keep the JSON valid.
   */
  restoreText(text: string, json = false): string {
    const re = this.regex();
    if (re === undefined || text.length === 0) return text;
    re.lastIndex = 0;
    return text.replace(re, (s) => {
      const o = this.map.get(s);
      if (o === undefined) return s;
      return json ? JSON.stringify(o).slice(1, -1) : o;
    });
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some surrogate. */
  private pendingPrefix(text: string): number {
    if (this.prefixes === undefined) {
      const p = new Set<string>();
      for (const s of this.map.keys()) for (let k = 1; k < s.length; k++) p.add(s.slice(0, k));
      this.prefixes = p;
    }
    for (let k = Math.min(this.maxLen - 1, text.length); k > 0; k--) {
      if (this.prefixes.has(text.slice(text.length - k))) return k;
    }
    return 0;
  }

  /**
   * A streaming restorer for one text channel. Holds back only the shortest tail that could still grow into a
   * surrogate, so a surrogate split across SSE chunks (even one byte per chunk) is restored whole.
   */
  stream(opts: { json?: boolean } = {}): TextStream {
    const json = opts.json === true;
    let buf = '';
    const release = (final: boolean): string => {
      if (buf.length === 0) return '';
      if (this.map.size === 0 || final) {
        const out = this.restoreText(buf, json);
        buf = '';
        return out;
      }
      // Complete surrogates are released; the tail after the last one may hold a partial.
      const spans = this.spans(buf);
      const after = spans.length > 0 ? spans[spans.length - 1].end : 0;
      const cut = buf.length - this.pendingPrefix(buf.slice(after));
      const out = this.restoreText(buf.slice(0, cut), json);
      buf = buf.slice(cut);
      return out;
    };
    return {
      push: (text: string): string => {
        if (text.length === 0) return '';
        buf += text;
        return release(false);
      },
      end: (): string => release(true),
    };
  }
}
