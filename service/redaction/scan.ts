// Runs a set of detectors over one string: look-alike folding (fold.ts), then three passes whose spans are merged:
// 1. every detector over the (folded) text;
// 2. hard-wrapped values: detectors marked `wrappable` (keys, tokens, JWTs) over the text with line breaks between
//    two long runs of token characters removed — only matches that cross a removed break are kept;
// 3. base64 inside the text (skip search, ~1 probe per 24 characters): runs of ≥ 24 base64 characters that decode to readable UTF-8 text (encoded.ts) are
//    decoded and scanned by every detector (one level: decoded text is not decoded again); a run whose text holds
//    a finding is redacted whole.
// Cost: pass 2 only runs when a line break sits between token runs ≥ WRAP_MIN_JOIN characters together, and then
// only the wrappable detectors (literal-gated, cheap); pass 3 costs one native regex pass, plus a decode of the
// first ≤ 3 KiB of each candidate run, plus one scan of decoded text (at most ¾ of the run's size).

import type { Detector } from './detectors.ts';
import { droppedAt, fold } from './fold.ts';
import { base64Text } from './encoded.ts';

export { fold, foldString } from './fold.ts';

export interface Finding {
  start: number;
  end: number;
  /** Detector whose label names the span (highest priority, then longest match). */
  detector: Detector;
  /** Every detector that matched inside the merged span (the strongest action among them applies). */
  members: Detector[];
}

const DIGIT_CHARS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * /\d/.test(t) as ten native character searches: V8's single-character indexOf is a memchr, 2× faster than the
 * regex on a short prose string and 4–5× on a long one, and most prose has no digit (then every search runs).
 */
export function hasDigit(t: string): boolean {
  for (let i = 0; i < 10; i++) if (t.indexOf(DIGIT_CHARS[i]) >= 0) return true;
  return false;
}

interface Raw {
  start: number;
  end: number;
  d: Detector;
}

// ---------------------------------------------------------------------------------------------------------------
// Hard-wrapped values

const isTokenChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45 || c === 43 || c === 47 || c === 61 || c === 46;
const isHSpace = (c: number): boolean => c === 32 || c === 9 || c === 13;
/** A break is joined when the token runs on both sides are this long together (prose words rarely are). */
const WRAP_MIN_JOIN = 20;
/** Streaming: how far back a chain of wrapped lines is held. */
const WRAP_MAX_HOLD = 2048;

interface Joined {
  text: string;
  map: Int32Array;
}

/**
 * The text with each line break (and the blanks around it) between two token runs removed, or undefined if none.
 * Hard wrapping cuts a value into lines of the wrap width and a last line no longer than them. So a break is joined
 * only if the line before it is at least as long as the line after it, and, continuing a chain of joined breaks, at
 * least as long as the line before the previous break: "Bearer\n<token line>" and "<last fragment>\nthanks" stay
 * apart. Line lengths are measured without their leading and trailing blanks.
 */
function joinWrapped(t: string): Joined | undefined {
  let nl = t.indexOf('\n');
  if (nl < 0) return undefined;
  const cuts: [number, number][] = [];
  let lineStart = t.lastIndexOf('\n', nl - 1) + 1;
  while (lineStart < nl && isHSpace(t.charCodeAt(lineStart))) lineStart++;
  let prevLen = -1; // length of the line before the last joined break; -1: the last break was not joined
  while (nl >= 0) {
    let a = nl;
    while (a > 0 && isHSpace(t.charCodeAt(a - 1))) a--;
    let b = nl + 1;
    while (b < t.length && isHSpace(t.charCodeAt(b))) b++;
    const lineLen = a - lineStart;
    let joined = false;
    if (a > 0 && b < t.length && isTokenChar(t.charCodeAt(a - 1)) && isTokenChar(t.charCodeAt(b)) && lineLen >= prevLen) {
      let l = a;
      while (l > 0 && a - l < WRAP_MIN_JOIN && isTokenChar(t.charCodeAt(l - 1))) l--;
      let r = b;
      while (r < t.length && r - b < WRAP_MIN_JOIN && isTokenChar(t.charCodeAt(r))) r++;
      if (a - l + (r - b) >= WRAP_MIN_JOIN) {
        let next = t.indexOf('\n', b);
        if (next < 0) next = t.length;
        while (next > b && isHSpace(t.charCodeAt(next - 1))) next--;
        joined = lineLen >= next - b;
      }
    }
    if (joined) cuts.push([a, b]);
    prevLen = joined ? lineLen : -1;
    lineStart = b;
    nl = t.indexOf('\n', b);
  }
  if (cuts.length === 0) return undefined;
  const map = new Int32Array(t.length + 1);
  const parts: string[] = [];
  let n = 0;
  let last = 0;
  for (const [a, b] of cuts) {
    parts.push(t.slice(last, a));
    for (let i = last; i < a; i++) map[n++] = i;
    last = b;
  }
  parts.push(t.slice(last));
  for (let i = last; i < t.length; i++) map[n++] = i;
  map[n] = t.length;
  return { text: parts.join(''), map: map.subarray(0, n + 1) };
}

/** Streaming: start of a chain of token runs joined by line breaks at the end of `t` (t.length when none). */
function wrapHoldFrom(t: string): number {
  const min = Math.max(0, t.length - WRAP_MAX_HOLD);
  let i = t.length;
  while (i > min && isTokenChar(t.charCodeAt(i - 1))) i--;
  let hold = t.length;
  for (;;) {
    let j = i;
    while (j > min && isHSpace(t.charCodeAt(j - 1))) j--;
    if (j <= min || t.charCodeAt(j - 1) !== 10) break;
    j--;
    while (j > min && isHSpace(t.charCodeAt(j - 1))) j--;
    let k = j;
    while (k > min && isTokenChar(t.charCodeAt(k - 1))) k--;
    if (k === j) break;
    hold = k;
    i = k;
  }
  return hold;
}

// ---------------------------------------------------------------------------------------------------------------
// Base64 inside text

const B64_MIN_RUN = 24;
// 1: base64 character (standard or URL-safe alphabet); 2: padding '='.
const B64_TABLE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 95 || c === 45) B64_TABLE[c] = 1;
}
B64_TABLE[61] = 2;
const isB64Char = (c: number): boolean => c < 128 && B64_TABLE[c] !== 0;

/** Streaming: a base64 run still being written is held up to this many characters. */
const B64_MAX_HOLD = 1024;

/**
 * True when `t` holds a run of B64_MIN_RUN or more base64 characters, the only text the encoded pass decodes. Such a
 * run covers exactly one probe position p ≡ B64_MIN_RUN - 1 (mod B64_MIN_RUN), and the scan around a probe stops
 * after B64_MIN_RUN characters: prose costs about a word's length per 24 characters, half of what the pass itself
 * spends finding no candidate (it walks each probed word to its ends).
 */
export function hasB64Run(t: string): boolean {
  const table = B64_TABLE;
  const len = t.length;
  let c = 0;
  for (let p = B64_MIN_RUN - 1; p < len; p += B64_MIN_RUN) {
    c = t.charCodeAt(p);
    if (c >= 128 || table[c] !== 1) continue;
    let a = p - 1;
    while (a >= 0 && p - a < B64_MIN_RUN && (c = t.charCodeAt(a)) < 128 && table[c] === 1) a--;
    let b = p + 1;
    while (b < len && b - a <= B64_MIN_RUN && (c = t.charCodeAt(b)) < 128 && table[c] === 1) b++;
    if (b - a - 1 >= B64_MIN_RUN) return true;
  }
  return false;
}

export interface ScannerOptions {
  /**
   * Skip passes and detectors that provably cannot match (default true). false is the reference path the tests
   * compare the shortcuts against.
   */
  prefilter?: boolean;
}

/**
 * A list of detectors in their order (it decides ties between identical spans), with what the prefilter reads of
 * each kept in arrays of their own: the detectors are objects of many shapes, and reading `needsDigit` or
 * `mayMatch` off each one for every string is a megamorphic property load per detector.
 */
class DetectorSet {
  readonly all: readonly Detector[];
  readonly allGates: readonly (((text: string) => boolean) | undefined)[];
  /** The detectors without `needsDigit`, same order: all a digit-free string needs. */
  readonly noDigit: readonly Detector[];
  readonly noDigitGates: readonly (((text: string) => boolean) | undefined)[];

  constructor(detectors: readonly Detector[]) {
    this.all = detectors;
    this.allGates = detectors.map((d) => d.mayMatch);
    this.noDigit = detectors.filter((d) => d.needsDigit !== true);
    this.noDigitGates = this.noDigit.map((d) => d.mayMatch);
  }
}

export class Scanner {
  readonly detectors: readonly Detector[];
  private readonly wrappable: readonly Detector[];
  private readonly all: DetectorSet;
  private readonly wrap: DetectorSet;
  private readonly spans: { start: number; end: number }[] = [];
  private readonly prefilter: boolean;

  constructor(detectors: readonly Detector[], opts: ScannerOptions = {}) {
    this.detectors = detectors;
    this.wrappable = detectors.filter((d) => d.wrappable === true);
    this.all = new DetectorSet(detectors);
    this.wrap = new DetectorSet(this.wrappable);
    this.prefilter = opts.prefilter !== false;
  }

  /** Non-overlapping findings, sorted by start, in original-string offsets. */
  scan(text: string): Finding[] {
    if (text.length === 0 || this.detectors.length === 0) return [];
    const folded = fold(text);
    const t = folded === undefined ? text : folded.text;
    const raws: Raw[] = [];
    this.run(this.all, t, raws);
    if (this.wrappable.length > 0) this.wrapped(t, raws);
    if (t.length >= B64_MIN_RUN && (!this.prefilter || hasB64Run(t))) this.encoded(t, raws);
    if (raws.length === 0) return [];
    if (folded !== undefined) {
      const map = folded.map;
      for (const r of raws) {
        // The end is where the next folded character starts, less the invisible characters just before it.
        const last = map[r.end - 1];
        let e = map[r.end];
        while (e - 1 > last && droppedAt(text, e - 1)) e--;
        r.start = map[r.start];
        r.end = e;
      }
    }
    return merge(raws);
  }

  /**
   * Streaming: the smallest index from which the end of `text` may be an unfinished match (text.length: none).
   * Judged on the folded text, so a look-alike character inside a value does not release the value's start.
   */
  holdFrom(text: string): number {
    const folded = fold(text);
    const t = folded === undefined ? text : folded.text;
    let h = t.length;
    for (const d of this.detectors) {
      const x = d.holdFrom(t);
      if (x < h) h = x;
    }
    if (this.wrappable.length > 0) h = Math.min(h, wrapHoldFrom(t));
    let b = t.length;
    while (b > 0 && t.length - b < B64_MAX_HOLD && isB64Char(t.charCodeAt(b - 1))) b--;
    if (b < h) h = b;
    if (h < 0) h = 0;
    return folded === undefined ? h : folded.map[h];
  }

  private run(set: DetectorSet, t: string, raws: Raw[]): void {
    const spans = this.spans;
    let list = set.all;
    let gates = set.allGates;
    if (this.prefilter && set.noDigit.length !== list.length && !hasDigit(t)) {
      list = set.noDigit;
      gates = set.noDigitGates;
    }
    for (let i = 0; i < list.length; i++) {
      const gate = gates[i];
      if (gate !== undefined && this.prefilter && !gate(t)) continue;
      const d = list[i];
      // Guarded: assigning `length` is a slow runtime call even on an empty array, and most finds find nothing.
      if (spans.length !== 0) spans.length = 0;
      d.find(t, spans);
      for (const s of spans) raws.push({ start: s.start, end: s.end, d });
    }
    if (spans.length !== 0) spans.length = 0;
  }

  private wrapped(t: string, raws: Raw[]): void {
    const j = joinWrapped(t);
    if (j === undefined) return;
    const found: Raw[] = [];
    this.run(this.wrap, j.text, found);
    for (const r of found) {
      const start = j.map[r.start];
      const end = j.map[r.end - 1] + 1;
      // Matches that do not cross a removed break were found by the plain pass.
      if (end - start !== r.end - r.start) raws.push({ start, end, d: r.d });
    }
  }

  private encoded(t: string, raws: Raw[]): void {
    // Skip search: any run of B64_MIN_RUN characters covers exactly one position ≡ B64_MIN_RUN - 1 (mod
    // B64_MIN_RUN), so only those positions are probed; prose costs about one table look-up per 24 characters.
    const len = t.length;
    const table = B64_TABLE;
    let p = B64_MIN_RUN - 1;
    while (p < len) {
      let c = t.charCodeAt(p);
      if (c >= 128 || table[c] !== 1) {
        p += B64_MIN_RUN;
        continue;
      }
      let i = p + 1;
      while (i < len && (c = t.charCodeAt(i)) < 128 && table[c] === 1) i++;
      let start = p;
      while (start > 0 && (c = t.charCodeAt(start - 1)) < 128 && table[c] === 1) start--;
      let end = i;
      while (end < len && end - i < 2 && t.charCodeAt(end) === 61) end++;
      p = end + B64_MIN_RUN;
      if (i - start < B64_MIN_RUN || (end < len && isB64Char(t.charCodeAt(end)))) continue;
      const decoded = base64Text(t.slice(start, end));
      if (decoded === undefined) continue;
      const inner: Raw[] = [];
      this.run(this.all, fold(decoded)?.text ?? decoded, inner);
      for (const r of inner) raws.push({ start, end, d: r.d });
    }
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
