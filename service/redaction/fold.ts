// Look-alike folding: the characters people (or attackers) put inside PII to dodge ASCII patterns.
// - dropped: invisible characters (Unicode Default_Ignorable code points: zero-width joiners, soft hyphen, word
//   joiner, invisible operators U+2061–2064, bidi marks and isolates, Mongolian vowel separator U+180E,
//   combining grapheme joiner U+034F, variation selectors, Hangul fillers, tag characters);
// - a space: NBSP and the other Unicode spaces; line/paragraph separators become '\n';
// - ASCII: Unicode dashes → '-', small/full-width forms (`﹫` `＠` → '@', `。` `․` `﹒` → '.'), full-width ASCII;
// - digits of every script (`٤١١١`, `४१११`, mathematical bold `𝟒𝟏𝟏𝟏` …: Unicode Nd) → ASCII digits;
// - URL-encoding: `%40` → '@' (every `%XX` of a printable ASCII character, and `%XX` runs that are UTF-8).
// Offsets map back, so the original characters are what gets replaced.

export interface Folded {
  text: string;
  /** map[i] = index in the original of folded char i; map[text.length] = original length. */
  map: Int32Array;
}

const FOLD_TEST =
  /[\u00A0\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u2000-\u2015\u2024\u2028-\u202F\u205F-\u2064\u2066-\u206F\u2212\u3000\u3002\u3164\uFE00-\uFE0F\uFE52\uFE58\uFE63\uFE6B\uFEFF\uFF01-\uFF5E\uFF61\uFFA0]|[\u{E0000}-\u{E0FFF}]|(?![0-9])\p{Nd}/u;

// First code point ("zero") of each block of ten decimal digits outside ASCII (Unicode 17 \p{Nd}).
const DIGIT_ZEROS = [
  0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0, 0xf20,
  0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0,
  0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x10d40, 0x11066, 0x110f0, 0x11136, 0x111d0,
  0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x116d0, 0x116da, 0x11730, 0x118e0, 0x11950, 0x11bf0, 0x11c50,
  0x11d50, 0x11da0, 0x11de0, 0x11f50, 0x16130, 0x16a60, 0x16ac0, 0x16b50, 0x16d70, 0x1ccf0, 0x1d7ce, 0x1d7d8,
  0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e4f0, 0x1e5f1, 0x1e950, 0x1fbf0,
];

/** ASCII digit for a non-ASCII decimal digit code point, else undefined (binary search in DIGIT_ZEROS). */
function digitValue(cp: number): string | undefined {
  if (cp < 0x660) return undefined;
  let lo = 0;
  let hi = DIGIT_ZEROS.length - 1;
  let zero = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (DIGIT_ZEROS[mid] <= cp) {
      zero = DIGIT_ZEROS[mid];
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  const v = cp - zero;
  return zero >= 0 && v <= 9 ? DIGITS[v] : undefined;
}
const DIGITS = '0123456789';

/** True when the UTF-16 unit at `i` of `text` is dropped by folding (an invisible character, or half of a tag). */
export function droppedAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c >= 0xdc00 && c <= 0xdfff) return i > 0 && text.charCodeAt(i - 1) === 0xdb40;
  if (c === 0xdb40) return true;
  return ignorable(c);
}

function ignorable(c: number): boolean {
  return (
    c === 0x00ad ||
    c === 0x034f ||
    c === 0x061c ||
    c === 0x115f ||
    c === 0x1160 ||
    c === 0x17b4 ||
    c === 0x17b5 ||
    (c >= 0x180b && c <= 0x180f) ||
    (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2060 && c <= 0x2064) ||
    (c >= 0x2066 && c <= 0x206f) ||
    c === 0x3164 ||
    (c >= 0xfe00 && c <= 0xfe0f) ||
    c === 0xfeff ||
    c === 0xffa0
  );
}

/** The folded form of one BMP character, '' to drop it, undefined to keep it. */
function foldChar(c: number): string | undefined {
  if (c < 0x80) return undefined;
  if (ignorable(c)) return '';
  if (c === 0x00a0 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000) return ' ';
  if (c === 0x2028 || c === 0x2029) return '\n';
  if ((c >= 0x2010 && c <= 0x2015) || c === 0x2212 || c === 0xfe58 || c === 0xfe63) return '-';
  if (c === 0x2024 || c === 0x3002 || c === 0xfe52 || c === 0xff61) return '.';
  if (c === 0xfe6b) return '@';
  if (c >= 0xff01 && c <= 0xff5e) return String.fromCharCode(c - 0xfee0);
  return undefined;
}

const hexVal = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;

/** True when `text` holds a `%XX` escape (native indexOf between candidates: "12% off" costs nothing). */
function hasPercentEscape(text: string): boolean {
  let i = text.indexOf('%');
  while (i >= 0 && i + 2 < text.length) {
    if (hexVal(text.charCodeAt(i + 1)) >= 0 && hexVal(text.charCodeAt(i + 2)) >= 0) return true;
    i = text.indexOf('%', i + 1);
  }
  return false;
}

/** Decodes the run of `%XX` triplets at i; returns [decoded chars with their original offsets], consumed length. */
function percentRun(text: string, i: number): { chars: string[]; offs: number[]; len: number } {
  const bytes: number[] = [];
  let j = i;
  while (j + 2 < text.length && text.charCodeAt(j) === 37) {
    const h = hexVal(text.charCodeAt(j + 1));
    const l = hexVal(text.charCodeAt(j + 2));
    if (h < 0 || l < 0) break;
    bytes.push(h * 16 + l);
    j += 3;
  }
  const chars: string[] = [];
  const offs: number[] = [];
  // Decode byte by byte: a printable ASCII byte is itself; a valid UTF-8 sequence is its character; anything
  // else stays as written (its three characters).
  let k = 0;
  while (k < bytes.length) {
    const b = bytes[k];
    let n = 0;
    if (b >= 0x20 && b < 0x7f) n = 1;
    else if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) n = 3;
    else if (b >= 0xf0 && b <= 0xf4) n = 4;
    let ok = n > 0 && k + n <= bytes.length;
    for (let m = 1; ok && m < n; m++) if ((bytes[k + m] & 0xc0) !== 0x80) ok = false;
    let s: string | undefined;
    if (ok) {
      try {
        s = n === 1 ? String.fromCharCode(b) : new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes.slice(k, k + n)));
      } catch {
        s = undefined;
      }
    }
    if (s === undefined) {
      const at = i + 3 * k;
      for (let m = 0; m < 3; m++) {
        chars.push(text[at + m]);
        offs.push(at + m);
      }
      k++;
    } else {
      // One entry per UTF-16 unit (a 4-byte character is two), so offsets stay aligned with the folded text.
      for (let u = 0; u < s.length; u++) {
        const folded = foldChar(s.charCodeAt(u));
        if (folded === '') continue;
        chars.push(folded ?? s[u]);
        offs.push(i + 3 * k);
      }
      k += n;
    }
  }
  return { chars, offs, len: j - i };
}

/** Folds `text`, or returns undefined when nothing in it folds (the common, pure-ASCII case costs two native scans). */
export function fold(text: string): Folded | undefined {
  const ascii = Buffer.byteLength(text, 'utf8') === text.length;
  const pct = hasPercentEscape(text);
  if (!pct && (ascii || !FOLD_TEST.test(text))) return undefined;
  const map = new Int32Array(text.length + 1);
  const parts: string[] = [];
  let n = 0;
  // Unchanged stretches are copied as slices (one part each), so plain text between look-alikes costs a map fill.
  let keep = 0;
  const flush = (to: number): void => {
    if (to > keep) {
      parts.push(text.slice(keep, to));
      for (let k = keep; k < to; k++) map[n++] = k;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 37) {
      if (!pct) continue;
      const run = percentRun(text, i);
      if (run.len === 0) continue;
      flush(i);
      for (let k = 0; k < run.chars.length; k++) {
        parts.push(run.chars[k]);
        map[n++] = run.offs[k];
      }
      i += run.len - 1;
      keep = i + 1;
      continue;
    }
    if (c < 0x80) continue;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const cp = text.codePointAt(i) as number;
      if (cp > 0xffff) {
        const tag = cp >= 0xe0000 && cp <= 0xe0fff;
        const d = tag ? undefined : digitValue(cp);
        if (tag || d !== undefined) {
          flush(i);
          if (d !== undefined) {
            parts.push(d);
            map[n++] = i;
          }
          keep = i + 2;
        }
        i++;
        continue;
      }
    }
    const f = foldChar(c) ?? digitValue(c);
    if (f === undefined) continue;
    flush(i);
    if (f !== '') {
      parts.push(f);
      map[n++] = i;
    }
    keep = i + 1;
  }
  flush(text.length);
  map[n] = text.length;
  return { text: parts.join(''), map: map.subarray(0, n + 1) };
}

/** The folded form of a value (for placeholder keys: one value written two ways gets one placeholder). */
export function foldString(s: string): string {
  return fold(s)?.text ?? s;
}
