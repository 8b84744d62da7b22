// Does a JSON text already hold the exact characters JSON.stringify would write for a value? On Node 20,
// JSON.stringify escapes strings at ~3 ns per character: re-serializing a 1.2 KB chat body costs ~4 µs, more than
// parsing it. When a body was not changed since it was parsed and its sender wrote compact JSON (the OpenAI SDKs
// do), the text we already hold IS that serialization, so translators can forward its bytes instead. This module
// answers exactly "JSON.stringify(value) === text" without building the serialization: a string is compared with
// its place in the text (one native comparison when the text holds it unescaped), and anything it cannot compare
// cheaply answers "no", after which callers serialize as before.
// test/providers/json-match.test.ts checks it against JSON.stringify on varied values and texts.
import { isUtf8 } from 'node:buffer';

/** The text being compared, and where its next backslash is (strings before it hold no escapes). */
interface Cursor {
  readonly text: string;
  backslash: number;
}

// Past any string index (V8 strings hold < 2^29 units) and still a small integer: storing it into the cursor boxes
// no heap number, as MAX_SAFE_INTEGER did once per call.
const NONE = 2 ** 30 - 1;

/** Next backslash at or after `from` (NONE when there is none). */
function nextBackslash(c: Cursor, from: number): number {
  if (c.backslash < from) {
    const b = c.text.indexOf('\\', from);
    c.backslash = b === -1 ? NONE : b;
  }
  return c.backslash;
}

/** What JSON.stringify writes for the one code unit at s[j] when it escapes it, or undefined if it writes it raw. */
function escapeOf(s: string, j: number): string | undefined {
  const ch = s.charCodeAt(j);
  const short = SHORT_ESCAPE[ch];
  if (short !== undefined) return short;
  if (ch < 0x20) return JSON.stringify(s[j]).slice(1, -1);
  if (ch >= 0xd800 && ch <= 0xdbff) {
    const next = s.charCodeAt(j + 1);
    return next >= 0xdc00 && next <= 0xdfff ? undefined : JSON.stringify(s[j]).slice(1, -1);
  }
  if (ch >= 0xdc00 && ch <= 0xdfff) {
    const prev = j > 0 ? s.charCodeAt(j - 1) : 0;
    return prev >= 0xd800 && prev <= 0xdbff ? undefined : JSON.stringify(s[j]).slice(1, -1);
  }
  return undefined;
}

const SHORT_ESCAPE: Readonly<Record<number, string>> = {
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0c: '\\f',
  0x0d: '\\r',
  0x22: '\\"',
  0x5c: '\\\\',
};

/**
 * End of `JSON.stringify(s)` in the text at `pos`, or -1. The text's runs between backslashes are compared with
 * `s` natively; each escape must be the one JSON.stringify writes for that character. A run holds no quote,
 * backslash or control character (the text is JSON) and only paired surrogates (it was decoded from valid UTF-8),
 * which JSON.stringify writes as themselves.
 */
function matchString(c: Cursor, pos: number, s: string): number {
  const text = c.text;
  if (text.charCodeAt(pos) !== 0x22) return -1;
  if (s.length <= SHORT) {
    const end = matchShort(text, pos + 1, s);
    if (end !== UNSURE) return end;
  }
  let i = pos + 1;
  let j = 0;
  let quote = -1;
  for (;;) {
    if (quote < i) {
      quote = text.indexOf('"', i);
      if (quote === -1) return -1;
    }
    const b = nextBackslash(c, i);
    if (quote < b) {
      // The last run: it closes the string where `s` must end.
      if (quote - i !== s.length - j) return -1;
      return sameAt(text, i, s, j, quote - i) ? quote + 1 : -1;
    }
    const run = b - i;
    if (run > s.length - j || !sameAt(text, i, s, j, run)) return -1;
    j += run;
    if (j >= s.length) return -1;
    const esc = escapeOf(s, j);
    if (esc === undefined || !sameAt(text, b, esc, 0, esc.length)) return -1;
    i = b + esc.length;
    j++;
  }
}

/** Strings up to this length are compared char by char first (matchShort). */
const SHORT = 32;
const UNSURE = -2;

/**
 * Short strings (keys, roles, enum values, numbers' neighbours) are most of a body's strings: compared char by char
 * they cost no native indexOf calls, which dominate the general loop for them. `s` must start at `from` in the text;
 * answers the end of its JSON in the text, -1, or UNSURE when `s` holds a character JSON.stringify escapes (or a
 * surrogate) before any mismatch: the general loop then compares the escape. Exact because every character compared
 * here is one JSON.stringify writes as itself, and such a character in a JSON text is itself (never part of an
 * escape), so the text holds `s` unescaped exactly when all of it matches and a quote follows.
 */
function matchShort(text: string, from: number, s: string): number {
  const n = s.length;
  for (let k = 0; k < n; k++) {
    const ch = s.charCodeAt(k);
    if (ch < 0x20 || ch === 0x22 || ch === 0x5c || (ch >= 0xd800 && ch <= 0xdfff)) return UNSURE;
    if (text.charCodeAt(from + k) !== ch) return -1;
  }
  return text.charCodeAt(from + n) === 0x22 ? from + n + 1 : -1;
}

/** text[at, at+n) === s[from, from+n): a loop for short runs (slicing them would copy), native compare for long. */
function sameAt(text: string, at: number, s: string, from: number, n: number): boolean {
  if (n < 16) {
    for (let k = 0; k < n; k++) if (text.charCodeAt(at + k) !== s.charCodeAt(from + k)) return false;
    return true;
  }
  const run = text.slice(at, at + n);
  return from === 0 && n === s.length ? run === s : run === s.slice(from, from + n);
}

/** End of the literal `lit` in the text at `pos`, or -1. */
function matchLiteral(c: Cursor, pos: number, lit: string): number {
  return sameAt(c.text, pos, lit, 0, lit.length) ? pos + lit.length : -1;
}

function matchValue(c: Cursor, pos: number, value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return matchString(c, pos, value);
    case 'number':
      return matchLiteral(c, pos, Number.isFinite(value) ? String(value) : 'null');
    case 'boolean':
      return matchLiteral(c, pos, value ? 'true' : 'false');
    case 'object':
      break;
    default:
      return -1;
  }
  if (value === null) return matchLiteral(c, pos, 'null');
  if (depth === 0) return -1;
  const text = c.text;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype || typeof (value as { toJSON?: unknown }).toJSON === 'function') return -1;
    if (text.charCodeAt(pos) !== 0x5b) return -1;
    let p = pos + 1;
    for (let i = 0; i < value.length; i++) {
      if (i > 0) {
        if (text.charCodeAt(p) !== 0x2c) return -1;
        p++;
      }
      const item: unknown = value[i];
      // JSON.stringify writes holes and undefined items as null; JSON.parse builds neither.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') return -1;
      p = matchValue(c, p, item, depth - 1);
      if (p < 0) return -1;
    }
    return text.charCodeAt(p) === 0x5d ? p + 1 : -1;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return -1;
  const o = value as Record<string, unknown>;
  if (typeof o.toJSON === 'function') return -1;
  if (text.charCodeAt(pos) !== 0x7b) return -1;
  let p = pos + 1;
  let first = true;
  // for…in visits the keys JSON.stringify writes, in its order: own enumerable string keys, and those a plain object
  // inherits, of which there are none (isJsonOf answers "no" up front when Object.prototype has an enumerable key).
  // That check, once per call, replaces an Object.hasOwn per key, which V8 does not optimize inside for…in.
  for (const k in o) {
    const v: unknown = o[k];
    // JSON.stringify leaves such members out; rather than emulate that, answer "no".
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return -1;
    if (!first) {
      if (text.charCodeAt(p) !== 0x2c) return -1;
      p++;
    }
    first = false;
    p = matchString(c, p, k);
    if (p < 0 || text.charCodeAt(p) !== 0x3a) return -1;
    p = matchValue(c, p + 1, v, depth - 1);
    if (p < 0) return -1;
  }
  return text.charCodeAt(p) === 0x7d ? p + 1 : -1;
}

/** Object.prototype has an enumerable string key (polluted): for…in would then visit keys JSON.stringify does not. */
function inheritsEnumerable(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

/**
 * True when `text` is exactly `JSON.stringify(value)`. `value` is plain JSON data (what JSON.parse builds, possibly
 * edited since); anything else (undefined members, functions, bigint, class instances, `toJSON`, nesting deeper
 * than 64) answers false. `text` must be valid JSON decoded from valid UTF-8 (the text `value` was parsed from).
 */
export function isJsonOf(text: string, value: unknown): boolean {
  if (inheritsEnumerable()) return false;
  const c: Cursor = { text, backslash: -1 };
  return matchValue(c, 0, value, 64) === text.length;
}

/**
 * True when `bytes` are exactly `Buffer.from(JSON.stringify(value))`, given `text` = `bytes.toString('utf8')`, the
 * valid JSON `value` was parsed from (and perhaps edited since). Valid UTF-8 matters: invalid bytes decode to
 * U+FFFD, which JSON.stringify would write back as other bytes.
 */
export function bytesAreJsonOf(bytes: Buffer, text: string, value: unknown): boolean {
  return isJsonOf(text, value) && decodedExactly(bytes, text);
}

/**
 * `isUtf8(bytes)`, given `text` = `bytes.toString('utf8')`. Decoding replaces every invalid sequence with U+FFFD, so
 * a text without one came from valid UTF-8; only a text holding one needs the byte scan. Why: isUtf8 is a native
 * call costing ~4x the indexOf, which V8 answers at once for a one-byte (Latin-1) string such as an ASCII body.
 */
export function decodedExactly(bytes: Buffer, text: string): boolean {
  return text.indexOf('\uFFFD') === -1 || isUtf8(bytes);
}
