// Policy-defined detectors. A policy regex runs ONLY on re2js (a pure-JS port of RE2: automata, no backtracking,
// linear time; look-arounds and back-references are syntax errors), never on V8's backtracking RegExp.
// Keyword lists are escaped into literal alternations: literals cannot backtrack catastrophically.

import { RE2JS } from 're2js';
import type { CustomDetectorSpec } from './types.ts';
import type { Detector, Span } from './detectors.ts';
import { BUILTIN_BY_NAME, DETECTOR_GROUPS } from './detectors.ts';

export const CUSTOM_LIMITS = {
  regexLength: 4096,
  /** re2js program size (instructions): bounds per-character work and memory. */
  programSize: 20_000,
  keywords: 10_000,
  keywordLength: 256,
  /** Streaming hold-back for a custom regex (its matches have no known bound). */
  streamWindow: 256,
} as const;

const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

/** Problems with one custom detector spec, as human messages ([] when fine). */
export function customDetectorProblems(spec: CustomDetectorSpec): string[] {
  const problems: string[] = [];
  const where = `custom detector "${spec.name}"`;
  if (!NAME_RE.test(spec.name)) {
    problems.push(`${where}: name must match ${NAME_RE.source} (lower-case letters, digits, underscores)`);
  }
  if (BUILTIN_BY_NAME.has(spec.name) || spec.name in DETECTOR_GROUPS) {
    problems.push(`${where}: name collides with a built-in detector or group`);
  }
  if (spec.regex === undefined && (spec.keywords === undefined || spec.keywords.length === 0)) {
    problems.push(`${where}: needs a regex or a non-empty keywords list`);
  }
  if (spec.regex !== undefined) {
    if (spec.regex.length === 0) problems.push(`${where}: regex is empty`);
    else if (spec.regex.length > CUSTOM_LIMITS.regexLength) {
      problems.push(`${where}: regex is longer than ${CUSTOM_LIMITS.regexLength} characters`);
    } else {
      try {
        const re = RE2JS.compile(spec.regex, spec.caseInsensitive === true ? RE2JS.CASE_INSENSITIVE : 0);
        if (re.programSize() > CUSTOM_LIMITS.programSize) {
          problems.push(`${where}: regex is too complex (RE2 program size ${re.programSize()} > ${CUSTOM_LIMITS.programSize})`);
        }
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        problems.push(`${where}: invalid RE2 regex: ${msg}`);
      }
    }
  }
  if (spec.keywords !== undefined) {
    if (spec.keywords.length > CUSTOM_LIMITS.keywords) {
      problems.push(`${where}: more than ${CUSTOM_LIMITS.keywords} keywords`);
    }
    spec.keywords.forEach((k, i) => {
      if (typeof k !== 'string' || k.trim().length === 0) problems.push(`${where}: keywords[${i}] is empty`);
      else if (k.length > CUSTOM_LIMITS.keywordLength) {
        problems.push(`${where}: keywords[${i}] is longer than ${CUSTOM_LIMITS.keywordLength} characters`);
      }
    });
  }
  return problems;
}

// Syntax characters and `/` only: with the `u` flag any other escape (`\-` too) is a SyntaxError, and `-` is a
// literal outside a character class.
const escapeLiteral = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

// A keyword regex is a per-character pass over every string (~0.7 ns a character); a short keyword list is gated by
// one native character search (memchr) per keyword instead: the keyword's rarest character, in both ASCII cases when
// case-insensitive. Exact: a match contains that character, and case-insensitive (Unicode simple case folding)
// matching of an ASCII keyword in ASCII text only pairs a letter with its other ASCII case; non-ASCII text or a
// non-ASCII case-insensitive keyword is never gated.
const KEYWORD_GATE_CHARS = 16;
// English letters from the commonest to the rarest; other characters but the space count as rare.
const LETTER_FREQUENCY = 'etaoinshrdlcumwfgypbvkjxqz';
const ASCII_ONLY = /^[\x00-\x7f]*$/;

function rarity(ch: string): number {
  if (ch === ' ') return -1;
  const i = LETTER_FREQUENCY.indexOf(ch.toLowerCase());
  return i < 0 ? LETTER_FREQUENCY.length : i;
}

/** mayMatch for a keyword list: false only when no keyword can match in `text`; undefined when not worth it. */
function keywordGate(keywords: readonly string[], ci: boolean): ((text: string) => boolean) | undefined {
  const chars = new Set<string>();
  for (const raw of keywords) {
    const k = raw.trim();
    if (ci && !ASCII_ONLY.test(k)) return undefined;
    let best = '';
    for (const ch of k) if (best === '' || rarity(ch) > rarity(best)) best = ch;
    if (ci) {
      chars.add(best.toLowerCase());
      chars.add(best.toUpperCase());
    } else {
      chars.add(best);
    }
    if (chars.size > KEYWORD_GATE_CHARS) return undefined;
  }
  // Commonest first, lower case before upper: text that holds one is told so after the fewest searches.
  const list = [...chars].sort((a, b) => rarity(a) - rarity(b) || (a < b ? 1 : a > b ? -1 : 0));
  return (text) => {
    for (let i = 0; i < list.length; i++) if (text.indexOf(list[i]) >= 0) return true;
    return ci && Buffer.byteLength(text, 'utf8') !== text.length;
  };
}

const WORDY = /[\p{L}\p{N}_]/u;

/** Compiles a spec that has passed customDetectorProblems(). */
export function compileCustomDetector(spec: CustomDetectorSpec): Detector {
  const ci = spec.caseInsensitive === true;
  const label = spec.name.toUpperCase();
  const re2 = spec.regex !== undefined ? RE2JS.compile(spec.regex, ci ? RE2JS.CASE_INSENSITIVE : 0) : undefined;

  let kwRe: RegExp | undefined;
  let kwMax = 0;
  if (spec.keywords !== undefined && spec.keywords.length > 0) {
    // Longest first so "acme corp" wins over "acme"; whole words where the keyword edge is a word character.
    const kws = [...new Set(spec.keywords.map((k) => k.trim()))].sort((a, b) => b.length - a.length);
    kwMax = kws[0].length;
    const alts = kws.map((k) => {
      const pre = WORDY.test(k[0]) ? '(?<![\\p{L}\\p{N}_])' : '';
      const post = WORDY.test(k[k.length - 1]) ? '(?![\\p{L}\\p{N}_])' : '';
      return pre + escapeLiteral(k) + post;
    });
    kwRe = new RegExp(alts.join('|'), ci ? 'giu' : 'gu');
  }

  const maxLen = re2 !== undefined ? CUSTOM_LIMITS.streamWindow : kwMax + 1;
  const gate = re2 === undefined && spec.keywords !== undefined ? keywordGate(spec.keywords, ci) : undefined;
  return {
    name: spec.name,
    label,
    priority: 50,
    maxLen,
    mayMatch: gate,
    find(text: string, out: Span[]) {
      if (re2 !== undefined && re2.test(text)) {
        // test() runs the DFA; the capturing matcher only runs on text that matches somewhere.
        const m = re2.matcher(text);
        let from = 0;
        while (from <= text.length && m.find(from)) {
          const s = m.start();
          const e = m.end();
          if (e > s) out.push({ start: s, end: e });
          from = e > s ? e : e + 1;
        }
      }
      if (kwRe !== undefined) {
        kwRe.lastIndex = 0;
        let k: RegExpExecArray | null;
        while ((k = kwRe.exec(text)) !== null) {
          out.push({ start: k.index, end: k.index + k[0].length });
          if (k[0].length === 0) kwRe.lastIndex++;
        }
      }
    },
    normalize: ci ? (s) => s.toLowerCase() : (s) => s,
    holdFrom: (text) => Math.max(0, text.length - maxLen),
  };
}
