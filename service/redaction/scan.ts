// Runs a set of detectors over one string: Unicode folding against look-alike bypasses, then overlap merging.

import type { Detector } from './detectors.ts';

export interface Finding {
  start: number;
  end: number;
  /** Detector whose label names the span (highest priority, then longest match). */
  detector: Detector;
  /** Every detector that matched inside the merged span (the strongest action among them applies). */
  members: Detector[];
}

// Characters people (or attackers) put inside PII to dodge ASCII patterns: invisible joiners and soft hyphens are
// dropped; non-breaking/figure/ideographic spaces become a space; Unicode dashes become '-'; full-width ASCII
// becomes ASCII. Offsets are mapped back so the original characters are what gets replaced.
const FOLD_TEST = /[\u00A0\u00AD\u2007\u2010-\u2015\u2212\u200B-\u200D\u2060\u202F\uFEFF\u3000\uFF01-\uFF5E]/;

interface Folded {
  text: string;
  /** map[i] = index in the original of folded char i; map[text.length] = original length. */
  map: Int32Array;
}

export function fold(text: string): Folded | undefined {
  // Pure ASCII (the common case) has nothing to fold; byteLength is a fast native scan.
  if (Buffer.byteLength(text, 'utf8') === text.length || !FOLD_TEST.test(text)) return undefined;
  const map = new Int32Array(text.length + 1);
  let out = '';
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let r: string | undefined;
    if (c === 0x00ad || (c >= 0x200b && c <= 0x200d) || c === 0x2060 || c === 0xfeff) continue;
    if (c === 0x00a0 || c === 0x2007 || c === 0x202f || c === 0x3000) r = ' ';
    else if ((c >= 0x2010 && c <= 0x2015) || c === 0x2212) r = '-';
    else if (c >= 0xff01 && c <= 0xff5e) r = String.fromCharCode(c - 0xfee0);
    else r = text[i];
    out += r;
    map[n++] = i;
  }
  map[n] = text.length;
  return { text: out, map: map.subarray(0, n + 1) };
}

const HAS_DIGIT = /\d/;

interface Raw {
  start: number;
  end: number;
  d: Detector;
}

export class Scanner {
  readonly detectors: readonly Detector[];
  private readonly spans: { start: number; end: number }[] = [];

  constructor(detectors: readonly Detector[]) {
    this.detectors = detectors;
  }

  /** Non-overlapping findings, sorted by start, in original-string offsets. */
  scan(text: string): Finding[] {
    if (text.length === 0 || this.detectors.length === 0) return [];
    const folded = fold(text);
    const t = folded === undefined ? text : folded.text;
    const raws: Raw[] = [];
    const spans = this.spans;
    let digits: boolean | undefined;
    for (const d of this.detectors) {
      if (d.needsDigit === true) {
        digits ??= HAS_DIGIT.test(t);
        if (!digits) continue;
      }
      spans.length = 0;
      d.find(t, spans);
      for (const s of spans) raws.push({ start: s.start, end: s.end, d });
    }
    spans.length = 0;
    if (raws.length === 0) return [];
    if (folded !== undefined) {
      for (const r of raws) {
        r.start = folded.map[r.start];
        r.end = folded.map[r.end - 1] + 1;
      }
    }
    return merge(raws);
  }
}

function better(a: Raw, b: Raw): boolean {
  if (a.d.priority !== b.d.priority) return a.d.priority > b.d.priority;
  return a.end - a.start > b.end - b.start;
}

/** Overlapping spans become one span (their union), so no part of any match survives next to a placeholder. */
function merge(raws: Raw[]): Finding[] {
  raws.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let cur: Finding | undefined;
  let win: Raw | undefined;
  for (const r of raws) {
    if (cur !== undefined && win !== undefined && r.start < cur.end) {
      if (r.end > cur.end) cur.end = r.end;
      if (!cur.members.includes(r.d)) cur.members.push(r.d);
      if (better(r, win)) {
        win = r;
        cur.detector = r.d;
      }
      continue;
    }
    cur = { start: r.start, end: r.end, detector: r.d, members: [r.d] };
    win = r;
    out.push(cur);
  }
  return out;
}
