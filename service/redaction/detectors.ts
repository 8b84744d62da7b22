// Built-in detectors. Each finds candidates cheaply — by an anchor character (`@` for email, `:` for IPv6, an AWS
// word for AWS secrets), a literal prefix gate (sk-, ghp_, AIza…), or a V8 regex written to run in linear time
// (bounded quantifiers, no nested quantifiers over the same characters, no trailing look-ahead that could force
// backtracking) — then checks boundaries and validity in code (Luhn, mod-97, SSN ranges, JWT header, net.isIPv6,
// key-material shape). Policy-supplied patterns never reach V8's backtracking engine: see custom.ts.
//
// Decisions worth knowing (see DETECTORS.md for the full list):
// - phone: `+` international (8–15 digits), NANP 3-3-4 with separators, trunk-prefix national numbers
//   (0…, 9–12 digits, one separator kind), and named national formats (DE slash, compact UK/FR, IN 5-5, BR, ES).
//   Bare digit runs count only after a phone word (a dozen languages), so order numbers, timestamps and ids are not
//   phones; the weaker national rules also yield to an identifier word ("order", "ISBN", "serial") before them.
// - ssn: 3-2-4 with `-`, space or `.`; bare 9 digits only after an SSN word.
// - ipv4: dotted quads with valid octets, except when written as a version (`v1.2.3.4`, `version 1.2.3.4`,
//   `Chrome/1.2.3.4`), a section number (`section 1.2.3.4`) or followed by a pre-release tag (`1.2.3.4-beta`).
// - aws_secret_key: 40 base64 characters with upper, lower and digit, within 200 characters after an AWS word
//   (aws, amazon, secret access key, secret key, an AKIA/ASIA id); every AWS word opens its own window.

import { isIPv6 } from 'node:net';
import {
  IBAN_LENGTHS,
  cardValid,
  ibanValid,
  jwtHeaderValid,
  looksRandom,
  ssnValid,
} from './validators.ts';

export interface Span {
  start: number;
  end: number;
}

export interface Detector {
  /** Detector name as used in RedactionRule.detectors, e.g. `credit_card`. */
  readonly name: string;
  /** Placeholder type, e.g. `CREDIT_CARD` → `[CREDIT_CARD_1]`. */
  readonly label: string;
  /** Overlap resolution: the higher wins the label of a merged span. */
  readonly priority: number;
  /** Longest match it can produce in UTF-16 units (bounds streaming hold-back). */
  readonly maxLen: number;
  /** True when every match contains an ASCII digit (the scanner then skips it for digit-free text). */
  readonly needsDigit?: boolean;
  /** Keys and tokens: also searched across hard line wraps (the scanner joins wrapped lines for these). */
  readonly wrappable?: boolean;
  /** A cheap test the scanner runs before `find` (unless its prefilter is off): false only when `find` finds nothing. */
  readonly mayMatch?: (text: string) => boolean;
  /** Appends every match in `text` to `out`. */
  find(text: string, out: Span[]): void;
  /** Canonical form, so one value written two ways gets one placeholder. */
  normalize(value: string): string;
  /** Streaming: the smallest index from which the end of `text` may be an unfinished match (text.length: none). */
  holdFrom(text: string): number;
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);
const isWord = (c: number): boolean => isAlnum(c) || c === 95;
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const digitsOf = (s: string): string => s.replace(/\D+/g, '');
const identity = (s: string): string => s;

/** Index of the start of the trailing run of `inRun` characters (at most maxLen long), moved to a possible start. */
function trailingRun(
  text: string,
  inRun: (c: number) => boolean,
  maxLen: number,
  canStart: (c: number) => boolean = inRun,
): number {
  const len = text.length;
  const min = Math.max(0, len - maxLen);
  let i = len;
  while (i > min && inRun(text.charCodeAt(i - 1))) i--;
  while (i < len && !canStart(text.charCodeAt(i))) i++;
  return i;
}

/** Runs a global regex over text, calling onMatch for each match (lastIndex is reset first). */
function each(re: RegExp, text: string, onMatch: (m: RegExpExecArray) => void): void {
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    onMatch(m);
    if (m[0].length === 0) re.lastIndex++;
  }
}

function regexDetector(opts: {
  name: string;
  label: string;
  priority: number;
  maxLen: number;
  re: RegExp;
  quick?: (text: string) => boolean;
  /** Extra check on the match (boundaries after it, validators). */
  accept?: (text: string, start: number, end: number) => boolean;
  normalize?: (s: string) => string;
  runChar: (c: number) => boolean;
  startChar?: (c: number) => boolean;
  needsDigit?: boolean;
  wrappable?: boolean;
}): Detector {
  const { re, quick, accept } = opts;
  return {
    name: opts.name,
    label: opts.label,
    priority: opts.priority,
    maxLen: opts.maxLen,
    needsDigit: opts.needsDigit === true,
    wrappable: opts.wrappable === true,
    find(text, out) {
      if (quick !== undefined && !quick(text)) return;
      // each() inlined: a callback capturing `text` and `out` would allocate its context on every call, and
      // most calls (every string of every request) end at the quick check above.
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        const start = m.index;
        const end = start + m[0].length;
        if (accept === undefined || accept(text, start, end)) out.push({ start, end });
        if (m[0].length === 0) re.lastIndex++;
      }
    },
    normalize: opts.normalize ?? identity,
    holdFrom: (text) => trailingRun(text, opts.runChar, opts.maxLen, opts.startChar),
  };
}

/** The token after `end` must not continue the match: no word char (and optionally no `-`). */
function endsClean(text: string, end: number, alsoDash = false): boolean {
  if (end >= text.length) return true;
  const c = text.charCodeAt(end);
  return !(isWord(c) || (alsoDash && c === 45));
}

// ---------------------------------------------------------------------------------------------------------------
// email

// Driven by '@' (rare in prose): scan the local part backwards, match the domain with a sticky regex.
// Internationalized addresses (RFC 6531: `иван@пример.рф`, `jane@münchen.de`) are read too: a local part whose
// last character is non-ASCII may hold any letters, and a domain may be Unicode labels with a Unicode or ASCII
// TLD. A local part ending in ASCII stays ASCII, so CJK prose right before an address is not swallowed.
const EMAIL_DOMAIN_RE = /(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}/y;
const IDN_DOMAIN_RE = /[\p{L}\p{N}\p{M}\-]{1,63}(?:\.[\p{L}\p{N}\p{M}\-]{1,63}){1,8}/uy;
// A TLD is ASCII letters, punycode, or letters with no ASCII at all (`рф`, `广告`) — not a mix (`com请回复`).
const IDN_TLD = /^(?:[A-Za-z]{2,24}|xn--[a-z0-9\-]{1,59}|(?![A-Za-z])\p{L}(?:(?![A-Za-z])[\p{L}\p{M}]){1,23})$/iu;
const UNI_LETTER = /[\p{L}\p{N}\p{M}]/u;
// File extensions that follow `@` in asset names (`icon@2x.png`), never top-level domains people mail to.
const NOT_TLD = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'bmp', 'tif', 'tiff', 'pdf', 'js', 'ts', 'css', 'html', 'htm', 'json', 'mjs', 'cjs', 'map', 'txt', 'md', 'py', 'go', 'rs', 'java', 'rb', 'php', 'yaml', 'yml', 'toml', 'lock', 'tsx', 'jsx']);
const isLocalChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isEmailChar = (c: number): boolean => isLocalChar(c) || c === 64;
// Scripts written without spaces between words: a trailing run of them is held only once an '@' follows it.
const isUnspaced = (c: number): boolean => (c >= 0x2e80 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff);
const isUniLocal = (text: string, i: number): boolean => {
  const c = text.charCodeAt(i);
  return c < 0x80 ? isLocalChar(c) : UNI_LETTER.test(text[i]) || (c >= 0xd800 && c <= 0xdfff);
};

/** End of the domain after `at` (exclusive), or -1. */
function emailDomainEnd(text: string, at: number): number {
  // Unicode domain first (only when one of its first characters is non-ASCII): its last label must be a TLD.
  let uni = false;
  for (let i = at + 1; i < text.length && i < at + 256; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      uni = UNI_LETTER.test(text[i]) || (c >= 0xd800 && c <= 0xdfff);
      break;
    }
    if (!(isAlnum(c) || c === 45 || c === 46)) break;
  }
  if (uni) {
    IDN_DOMAIN_RE.lastIndex = at + 1;
    const m = IDN_DOMAIN_RE.exec(text);
    if (m !== null) {
      const labels = m[0].split('.');
      const tld = labels[labels.length - 1];
      const end = at + 1 + m[0].length;
      const ok = labels.every((l) => !l.startsWith('-') && !l.endsWith('-')) && IDN_TLD.test(tld) && !NOT_TLD.has(tld.toLowerCase());
      if (ok && !(text.charCodeAt(end) === 46 && end + 1 < text.length && isUniLocal(text, end + 1))) return end;
    }
  }
  EMAIL_DOMAIN_RE.lastIndex = at + 1;
  const m = EMAIL_DOMAIN_RE.exec(text);
  if (m === null) return -1;
  const end = at + 1 + m[0].length;
  const c = text.charCodeAt(end);
  if (end < text.length && (isAlnum(c) || c === 45 || c === 95)) return -1;
  if (c === 46 && end + 1 < text.length && isAlnum(text.charCodeAt(end + 1))) return -1;
  const tld = m[0].slice(m[0].lastIndexOf('.') + 1).toLowerCase();
  if (NOT_TLD.has(tld)) return -1;
  return end;
}

/** [start, end) of the address whose '@' is at `at`, or undefined. */
function emailAt(text: string, at: number): Span | undefined {
  let s = at;
  if (at > 0 && text.charCodeAt(at - 1) >= 0x80) {
    while (s > 0 && at - s < 64 && isUniLocal(text, s - 1)) s--;
  } else {
    // ASCII right before '@': letters of spaced scripts continue the local part (`jörg.müller@`), CJK does not.
    for (;;) {
      if (s === 0) break;
      const c = text.charCodeAt(s - 1);
      if (c < 0x80 ? !isLocalChar(c) : isUnspaced(c) || !isUniLocal(text, s - 1)) break;
      s--;
    }
    if (at - s > 64) return undefined;
  }
  if (s === at) return undefined;
  const local = text.slice(s, at);
  if (local.startsWith('.') || local.endsWith('.') || !/[A-Za-z0-9]|[^\x00-\x7f]/.test(local)) return undefined;
  const end = emailDomainEnd(text, at);
  if (end < 0) return undefined;
  // scp-style git remotes (git@github.com:org/repo) name a host, not a person.
  if (local === 'git' && text.charCodeAt(end) === 58) return undefined;
  return { start: s, end };
}

export const email: Detector = {
  name: 'email',
  label: 'EMAIL',
  priority: 45,
  maxLen: 330,
  find(text, out) {
    let at = text.indexOf('@');
    while (at >= 0) {
      const span = emailAt(text, at);
      if (span !== undefined) {
        out.push(span);
        at = text.indexOf('@', span.end);
      } else {
        at = text.indexOf('@', at + 1);
      }
    }
  },
  normalize: (v) => v.toLowerCase(),
  holdFrom(text) {
    const len = text.length;
    const min = Math.max(0, len - 330);
    // An '@' with only address characters after it: hold from its local part (Unicode included).
    const at = text.lastIndexOf('@');
    if (at >= min) {
      let ok = true;
      for (let i = at + 1; i < len && ok; i++) ok = isUniLocal(text, i);
      if (ok) {
        let s = at;
        while (s > 0 && at - s < 64 && isUniLocal(text, s - 1)) s--;
        return s;
      }
    }
    // Otherwise the trailing word, which may become a local part (not a run of unspaced CJK prose).
    let i = len;
    while (i > min) {
      const c = text.charCodeAt(i - 1);
      if (c < 0x80 ? !isEmailChar(c) : isUnspaced(c) || !isUniLocal(text, i - 1)) break;
      i--;
    }
    return i;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// phone

// Greedy candidate run, no trailing look-ahead (so no backtracking); structure is checked in code.
// Numbers with ≥7 digits and at most two separator characters between digits, found once per text and shared by
// phone and credit_card (each checks its own left boundary and structure in code).
const NUMBER_RE = /(?<!\d)[+(]{0,2}\d(?:[ \-.()\/]{0,3}\d){6,18}/g;
let numText: string | undefined;
let numSpans: Span[] = [];
function numberCandidates(text: string): Span[] {
  if (text !== numText) {
    const spans: Span[] = [];
    each(NUMBER_RE, text, (m) => spans.push({ start: m.index, end: m.index + m[0].length }));
    numText = text;
    numSpans = spans;
  }
  return numSpans;
}
// A phone word (English, German, French, Spanish, Portuguese, Italian, Dutch, Polish, Russian, Greek, Arabic,
// Hindi; CJK words need no boundary), then only filler ("tel:", "call me at", "Telefon ist", "llámame al") before
// the number. Tested on the 40 characters before a number only.
const PHONE_WORDS =
  'phone|telephone|tel|mobile|cell|cellphone|fax|whatsapp|sms|call|text|reach|ring|mob|ph|' +
  'telefon|telefonnummer|handy|handynummer|mobil|mobilnummer|rufnummer|festnetz|anrufen|' +
  't[ée]l[ée]phone|t[ée]l|portable|appelez|appeler|joindre|' +
  'tel[ée]fono|tfno|tlf|m[óo]vil|celular|ll[áa]mame|llamar|llame|telefone|ligue|contato|telem[óo]vel|' +
  'cellulare|chiamami|chiamare|telefoon|telefoonnummer|mobiel|bel|kom[óo]rka|' +
  'телефон|тел|моб|мобильный|звоните|позвоните|τηλέφωνο|τηλ|هاتف|جوال|फ़ोन|फोन|मोबाइल';
const PHONE_WORDS_CJK = '电话号码|电话|手机号码|手机号|手机|電話番号|電話|手機|携帯番号|携帯|전화번호|전화|휴대폰|연락처';
const PHONE_FILLERS =
  'me|us|him|her|them|at|on|number|num|no|is|nr|my|our|his|their|' +
  'ist|unter|mein|meine|mich|uns|an|nummer|privat|est|au|mon|ma|moi|nous|le|la|es|al|mi|n[úu]mero|é|meu|minha|è|mio|op|mijn|de|di|do|da|del';
// Slices without non-ASCII characters (the usual case) use the same pattern without the Unicode flag (≈3× faster).
const PHONE_CONTEXT_ASCII = new RegExp(
  `(?:(?<![A-Za-z0-9])(?:${PHONE_WORDS})(?![A-Za-z0-9]))` +
    `(?:[\\s:#.\\-=(°º]|(?<![A-Za-z])(?:${PHONE_FILLERS})(?![A-Za-z])){0,12}$`,
  'i',
);
const PHONE_CONTEXT = new RegExp(
  `(?:(?<![\\p{L}\\p{N}])(?:${PHONE_WORDS})(?![\\p{L}\\p{N}])|${PHONE_WORDS_CJK})` +
    `(?:[\\s:#.\\-=(°º]|(?<![\\p{L}])(?:${PHONE_FILLERS})(?![\\p{L}])){0,12}$`,
  'iu',
);
// Currency right before or after a grouped number makes it an amount ("912 345 678 €").
const CURRENCY_BEFORE = /[$€£¥₹₽]\s?$|\b(?:EUR|USD|GBP|INR|BRL|CHF)\s?$/;
const CURRENCY_AFTER = /^\s?(?:[$€£¥₹₽]|EUR|USD|GBP|INR|BRL|CHF|euros?|dollars?)/i;

const IBAN_HEAD = /^[A-Z]{2}\d{2} $/;
// Characters that, right before a number, make it part of something else (word, version, path, range).
const isPhoneLeft = (c: number): boolean => isWord(c) || c === 43 || c === 45 || c === 46 || c === 47 || c === 40;

interface Group {
  start: number; // index into text
  end: number;
  digits: string;
}

/** Splits a candidate into digit groups with the separator text before each. */
function groupsOf(text: string, start: number, end: number): { groups: Group[]; seps: string[] } {
  const groups: Group[] = [];
  const seps: string[] = [];
  let i = start;
  let sep = '';
  while (i < end) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      let j = i;
      while (j < end && isDigit(text.charCodeAt(j))) j++;
      groups.push({ start: i, end: j, digits: text.slice(i, j) });
      seps.push(sep);
      sep = '';
      i = j;
    } else {
      sep += text[i];
      i++;
    }
  }
  return { groups, seps };
}

/**
 * Greedy left-to-right: the longest valid window of groups starting at each group; accepted windows don't overlap.
 * `valid(i, j)` judges groups[i..j). Bounded: candidates are at most ~30 characters.
 */
function windows(n: number, valid: (i: number, j: number) => boolean, onWindow: (i: number, j: number) => void): void {
  let i = 0;
  while (i < n) {
    let took = false;
    for (let j = n; j > i; j--) {
      if (valid(i, j)) {
        onWindow(i, j);
        i = j;
        took = true;
        break;
      }
    }
    if (!took) i++;
  }
}

function phoneWindowValid(text: string, cStart: number, groups: Group[], seps: string[], i: number, j: number): boolean {
  const first = groups[i];
  const last = groups[j - 1];
  // What follows the window must end the number.
  const after = last.end;
  if (after < text.length) {
    const c = text.charCodeAt(after);
    if (isWord(c)) return false;
    if ((c === 46 || c === 45 || c === 47) && after + 1 < text.length && isDigit(text.charCodeAt(after + 1))) {
      if (j === groups.length) return false;
    }
  }
  // A phone starts its candidate: a window further in would be the tail of some longer number (IBAN groups…).
  if (i > 0) return false;
  let lead = text.slice(cStart, first.start);
  // A '(' that does not close after the first group opens a parenthetical, not an area code: "(030/1234567)".
  if (lead.endsWith('(') && !(seps[i + 1] ?? '').startsWith(')')) lead = lead.slice(0, -1);
  // Cheap structural rejection before building the digit string (keeps long digit runs linear, see below).
  if (j < groups.length && j - 1 > i && seps[j] === seps[j - 1] && !lead.includes('+')) return false;
  const lens: number[] = [];
  let digits = '';
  for (let k = i; k < j; k++) {
    lens.push(groups[k].digits.length);
    digits += groups[k].digits;
  }
  const inner = seps.slice(i + 1, j);
  const n = digits.length;
  const plus = lead.includes('+');
  // A window cut short of its candidate must end where the grouping style changes ("415-555-2671 12 units"),
  // not in the middle of a run of same-style groups ("DE89 0255 5582 9217 00").
  if (!plus && j < groups.length && inner.length > 0 && seps[j] === inner[inner.length - 1]) return false;

  if (plus) {
    if (n < 8 || n > 15 || digits[0] === '0') return false;
    return inner.every((s) => /^(?:[ .\-]|\) ?| ?\(|\)-| ?\/ ?)$/.test(s));
  }
  // 00 international access prefix
  if (first.digits.startsWith('00') && j - i >= 2 && n >= 10 && n <= 17 && digits[2] !== '0') {
    return inner.every((s) => s === ' ' || s === '-');
  }
  // NANP: [1] NXX NXX XXXX
  const nanp = lens.length === 4 && lens[0] === 1 && digits[0] === '1' ? lens.slice(1) : lens;
  const off = nanp.length === lens.length ? 0 : 1;
  if (nanp.length === 3 && nanp[0] === 3 && nanp[1] === 3 && nanp[2] === 4) {
    const area = groups[i + off].digits;
    const exch = groups[i + off + 1].digits;
    if (area[0] >= '2' && exch[0] >= '2') {
      const s = inner.slice(off);
      const paren = (i + off === 0 ? lead : inner[off - 1] ?? '').endsWith('(');
      const okFirst = paren ? /^\) ?$|^\)-$/.test(s[0]) : /^[ .\-]$/.test(s[0]);
      const okSecond = /^[ .\-]$/.test(s[1]);
      const dots = s[0] === '.' || s[1] === '.';
      if (okFirst && okSecond && (!dots || (s[0] === '.' && s[1] === '.'))) {
        if (off === 0 || /^[ .\-]$/.test(inner[0] ?? '')) return true;
      }
    }
  }
  // The weaker national rules below yield to an identifier word right before the number ("serial 0881-3094-7762",
  // "ISBN 0306406152", "order 98765 43210"); that context is only looked at once a rule accepts.
  const trunk = trunkFormat(lead, digits, lens, inner);
  if (trunk !== undefined) return trunk && !idContext(text, cStart);
  if (nationalFormat(text, lead, groups[i].start, last.end, digits, lens, inner)) return !idContext(text, cStart);
  // Anything 7–15 digits right after a phone word.
  if (n >= 7 && n <= 15 && inner.every((s) => /^(?:[ .\-]|\) ?| ?\(| ?\/ ?)$/.test(s))) return hasPhoneContext(text, cStart);
  return false;
}

/**
 * National number with trunk prefix 0 (UK, EU, AU…): one separator kind, groups of ≥ 2 digits. undefined when the
 * number does not have that shape (other rules may still accept it), else whether it is a phone.
 */
function trunkFormat(lead: string, digits: string, lens: number[], inner: string[]): boolean | undefined {
  const n = digits.length;
  if (!(digits[0] === '0' && digits[1] !== '0' && lens.length >= 2 && n >= 10 && n <= 12 && lens.every((l) => l >= 2))) return undefined;
  const paren = lead.endsWith('(');
  const s = paren ? inner.slice(1) : inner;
  if (paren && !/^\) ?$/.test(inner[0] ?? '')) return false;
  const kind = s[0] ?? ' ';
  const pairs = lens.every((l) => l === 2); // French style 01 23 45 67 89
  if (s.every((x) => x === kind) && (kind === ' ' || kind === '-' || (kind === '.' && lens.length >= 3))) {
    return lens[0] <= 5 && (pairs || lens[lens.length - 1] >= 3);
  }
  return undefined;
}

/**
 * National formats without a trunk-prefix grouping the rule above accepts (digits, group lengths, separators):
 * German area/number with a slash (`030/12345678`, `0171 / 1234567`), compact trunk numbers (`02079460958`,
 * `0612345678`), Indian mobile 5-5 (`98765 43210`), Brazilian `(11) 91234-5678` / `11 3456-7890`, Spanish
 * 9-digit numbers grouped 3-3-3, 3-2-2-2 or 2-3-2-2 (`612 345 678`, `91 234 56 78`).
 */
function nationalFormat(text: string, lead: string, start: number, end: number, digits: string, lens: number[], inner: string[]): boolean {
  const n = digits.length;
  const d0 = digits[0];
  const trunk = d0 === '0' && digits[1] !== '0';
  // German: 0AAA/NNNNNNN, the subscriber part optionally grouped by one kind of separator.
  if (trunk && lens.length >= 2 && /^ ?\/ ?$/.test(inner[0]) && lens[0] >= 3 && lens[0] <= 5 && n >= 9 && n <= 12) {
    const rest = inner.slice(1);
    return rest.every((x) => x === rest[0] && (x === ' ' || x === '-')) && lens.slice(1).every((l) => l >= 2);
  }
  // Compact trunk number: UK 0XXXXXXXXXX (11), France/Australia 0XXXXXXXXX (10).
  if (trunk && lens.length === 1 && (n === 10 || n === 11) && lead === '') return true;
  const sep = inner[0];
  const oneKind = inner.every((x) => x === sep);
  // India: mobile 5-5 starting with 6–9.
  if (lens.length === 2 && lens[0] === 5 && lens[1] === 5 && d0 >= '6' && (sep === ' ' || sep === '-')) return notAmount(text, start, end);
  // Brazil: (AA) [9]NNNN-NNNN, or AA [9]NNNN-NNNN.
  if (lens.length === 3 && lens[0] === 2 && lens[2] === 4 && d0 !== '0' && digits[1] !== '0' && inner[1] === '-') {
    const sub = digits.slice(2, 2 + lens[1]);
    const subOk = (lens[1] === 5 && sub[0] === '9') || (lens[1] === 4 && sub[0] >= '2' && sub[0] <= '5');
    const paren = lead.endsWith('(') && /^\) ?$/.test(sep);
    if (subOk && (paren || sep === ' ')) return true;
  }
  // Spain: 9 digits starting 6–9, one separator kind.
  if (n === 9 && d0 >= '6' && oneKind && sep === ' ') {
    const shape = lens.join('-');
    if (shape === '3-3-3' || shape === '3-2-2-2' || shape === '2-3-2-2') return notAmount(text, start, end);
  }
  return false;
}

function notAmount(text: string, start: number, end: number): boolean {
  return !CURRENCY_BEFORE.test(text.slice(Math.max(0, start - 5), start)) && !CURRENCY_AFTER.test(text.slice(end, end + 9));
}

const ID_CONTEXT =
  /\b(?:order|invoice|serial|sku|isbn|issn|ref|reference|part|account|acct|tracking|id|ticket|case|po|zip|postcode|iban|bic|imei|item|build|batch|lot|model|version|bestellung|bestellnummer|rechnung|pedido|commande|facture|n[°º])\b\.?[\s:#=\-]*(?:no\.?|nr\.?|number|num|#)?[\s:#=\-]*$/i;
let idText = '';
let idAt = -1;
let idResult = false;
function idContext(text: string, at: number): boolean {
  if (at !== idAt || text !== idText) {
    idText = text;
    idAt = at;
    idResult = ID_CONTEXT.test(text.slice(Math.max(0, at - 30), at));
  }
  return idResult;
}

let ctxText = '';
let ctxAt = -1;
let ctxResult = false;
function hasPhoneContext(text: string, at: number): boolean {
  if (at !== ctxAt || text !== ctxText) {
    ctxText = text;
    ctxAt = at;
    const slice = text.slice(Math.max(0, at - 40), at);
    ctxResult = (Buffer.byteLength(slice, 'utf8') === slice.length ? PHONE_CONTEXT_ASCII : PHONE_CONTEXT).test(slice);
  }
  return ctxResult;
}

const isPhoneChar = (c: number): boolean =>
  isDigit(c) || c === 32 || c === 45 || c === 46 || c === 40 || c === 41 || c === 43 || c === 47;

export const phone: Detector = {
  name: 'phone',
  needsDigit: true,
  label: 'PHONE',
  priority: 30,
  maxLen: 32,
  find(text, out) {
    for (const c of numberCandidates(text)) {
      const cStart = c.start;
      if (cStart > 0 && isPhoneLeft(text.charCodeAt(cStart - 1))) continue;
      // Digits grouped after an IBAN head ("CH93 0076 2011 …") belong to the IBAN.
      if (cStart >= 5 && IBAN_HEAD.test(text.slice(cStart - 5, cStart))) continue;
      const { groups, seps } = groupsOf(text, cStart, c.end);
      // Only a window starting the candidate can be a phone (phoneWindowValid rejects i > 0), so this is
      // windows() restricted to i = 0: the longest valid prefix of groups. O(groups²) instead of O(groups³) —
      // "1 1 1 1 …" (19 one-digit groups per candidate) otherwise costs ~0.5 s per MB.
      for (let j = groups.length; j > 0; j--) {
        if (phoneWindowValid(text, cStart, groups, seps, 0, j)) {
          // A leading `+` belongs to the number; a leading `(` only when it encloses the area code ("(415) 555…"),
          // not when it opens a parenthetical ("(+44 20 …)").
          const lead = text.slice(cStart, groups[0].start);
          const paren = lead.lastIndexOf('(');
          const start = paren < 0 ? cStart : cStart + paren + ((seps[1] ?? '').startsWith(')') ? 0 : 1);
          out.push({ start, end: groups[j - 1].end });
          break;
        }
      }
    }
  },
  normalize: (s) => (s.trim().startsWith('+') ? '+' : '') + digitsOf(s),
  holdFrom: (text) => trailingRun(text, isPhoneChar, 32, (c) => isDigit(c) || c === 43 || c === 40),
};

// ---------------------------------------------------------------------------------------------------------------
// credit_card


function cardWindowValid(text: string, groups: Group[], seps: string[], i: number, j: number): boolean {
  const last = groups[j - 1];
  if (last.end < text.length) {
    const c = text.charCodeAt(last.end);
    if (isWord(c)) return false;
    if ((c === 45 || c === 46) && last.end + 1 < text.length && isDigit(text.charCodeAt(last.end + 1)) && j === groups.length) return false;
  }
  if (i > 0 && seps[i] !== ' ') return false;
  let digits = '';
  const lens: number[] = [];
  for (let k = i; k < j; k++) {
    digits += groups[k].digits;
    lens.push(groups[k].digits.length);
  }
  if (digits.length < 12 || digits.length > 19) return false;
  if (lens.length > 1) {
    const inner = seps.slice(i + 1, j);
    const sep = inner[0];
    if ((sep !== ' ' && sep !== '-' && sep !== '.') || !inner.every((s) => s === sep)) return false;
    const fours = lens.slice(0, -1).every((l) => l === 4) && lens[lens.length - 1] <= 4;
    const amex = lens.length === 3 && lens[0] === 4 && lens[1] === 6 && (lens[2] === 5 || lens[2] === 4);
    if (!fours && !amex) return false;
  }
  return cardValid(digits);
}

export const creditCard: Detector = {
  name: 'credit_card',
  needsDigit: true,
  label: 'CREDIT_CARD',
  priority: 60,
  maxLen: 32,
  find(text, out) {
    for (const c of numberCandidates(text)) {
      if (c.end - c.start < 12) continue;
      const { groups, seps } = groupsOf(text, c.start, c.end);
      const first = groups[0].start;
      if (first > 0) {
        const p = text.charCodeAt(first - 1);
        if (isWord(p) || p === 45 || p === 46) continue;
      }
      // Necessary conditions in O(1) before the full check: 12–19 digits, and a multi-group window starts with a
      // 4-digit group (4-4-4-4(-x) and Amex 4-6-5 both do). Without them "1 1 1 1 …" costs ~1.5 s per MB.
      const pre = new Int32Array(groups.length + 1);
      for (let k = 0; k < groups.length; k++) pre[k + 1] = pre[k] + groups[k].digits.length;
      windows(
        groups.length,
        (i, j) => {
          const n = pre[j] - pre[i];
          if (n < 12 || n > 19) return false;
          if (j - i > 1 && groups[i].digits.length !== 4) return false;
          return cardWindowValid(text, groups, seps, i, j);
        },
        (i, j) => out.push({ start: groups[i].start, end: groups[j - 1].end }),
      );
    }
  },
  normalize: digitsOf,
  holdFrom: (text) => trailingRun(text, (c) => isDigit(c) || c === 32 || c === 45 || c === 46, 32, isDigit),
};

// ---------------------------------------------------------------------------------------------------------------
// ssn

const SSN_RE = /(?<![\w\-.])(\d{3})([\- .])(\d{2})\2(\d{4})/g;
const SSN_BARE_RE = /(?<![\w\-.])\d{9}/g;
const SSN_WORD = /ssn|social|soc\.? ?sec|ss#|ss no/i;
const SSN_CONTEXT = /(?:\bssn|\bsocial security|\bsoc\.? ?sec|\bss#|\bss no)[^\n\d]{0,20}$/i;

function ssnEndClean(text: string, end: number): boolean {
  if (end >= text.length) return true;
  const c = text.charCodeAt(end);
  if (isWord(c)) return false;
  if ((c === 45 || c === 46) && end + 1 < text.length && isAlnum(text.charCodeAt(end + 1))) return false;
  return true;
}

export const ssn: Detector = {
  name: 'ssn',
  needsDigit: true,
  label: 'SSN',
  priority: 50,
  maxLen: 11,
  find(text, out) {
    each(SSN_RE, text, (m) => {
      const end = m.index + m[0].length;
      if (ssnEndClean(text, end) && ssnValid(m[1], m[3], m[4])) out.push({ start: m.index, end });
    });
    if (!SSN_WORD.test(text)) return;
    each(SSN_BARE_RE, text, (m) => {
      const end = m.index + 9;
      const d = m[0];
      if (!ssnEndClean(text, end) || !ssnValid(d.slice(0, 3), d.slice(3, 5), d.slice(5))) return;
      if (SSN_CONTEXT.test(text.slice(Math.max(0, m.index - 40), m.index))) out.push({ start: m.index, end });
    });
  },
  normalize: digitsOf,
  holdFrom: (text) => trailingRun(text, (c) => isDigit(c) || c === 32 || c === 45 || c === 46, 11, isDigit),
};

// ---------------------------------------------------------------------------------------------------------------
// iban

const IBAN_START_RE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}/g;

/**
 * Length of the separator at `pos` inside an IBAN being read (0: none). Groups of four may be separated by one
 * space or one `-`; a hard line wrap (blanks around one line break) may fall anywhere. mod-97 judges the result.
 */
function ibanSep(text: string, pos: number, groupEnd: boolean): number {
  const c = text.charCodeAt(pos);
  if ((c === 32 || c === 45) && groupEnd && pos + 1 < text.length && isAlnum(text.charCodeAt(pos + 1))) return 1;
  let i = pos;
  while (i < text.length && i - pos < 8 && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  if (text.charCodeAt(i) === 13) i++;
  if (text.charCodeAt(i) !== 10) return 0;
  i++;
  while (i < text.length && i - pos < 16 && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  return i < text.length && isAlnum(text.charCodeAt(i)) ? i - pos : 0;
}

export const iban: Detector = {
  name: 'iban',
  needsDigit: true,
  label: 'IBAN',
  priority: 55,
  maxLen: 60,
  find(text, out) {
    each(IBAN_START_RE, text, (m) => {
      const cc = m[0].slice(0, 2).toUpperCase();
      const len = IBAN_LENGTHS[cc];
      if (len === undefined) return;
      let compact = m[0].toUpperCase();
      let pos = m.index + 4;
      let sep = -1; // the group separator in use (one kind per IBAN)
      while (compact.length < len && pos < text.length) {
        const c = text.charCodeAt(pos);
        if (isAlnum(c)) {
          compact += text[pos].toUpperCase();
          pos++;
          continue;
        }
        const n = ibanSep(text, pos, compact.length % 4 === 0);
        if (n === 0) break;
        if (n === 1 && (c === 32 || c === 45)) {
          if (sep >= 0 && sep !== c) break;
          sep = c;
        }
        pos += n;
      }
      if (compact.length !== len) return;
      if (pos < text.length && isAlnum(text.charCodeAt(pos))) return;
      if (ibanValid(compact)) out.push({ start: m.index, end: pos });
    });
  },
  normalize: (s) => s.replace(/[\s\-]+/g, '').toUpperCase(),
  holdFrom(text) {
    // An IBAN in progress starts with two letters and two digits at a word start, followed only by IBAN characters
    // (alnum, blanks, '-', one line break) to the end; or its start is being written ("D", "DE", "DE8").
    const len = text.length;
    let i = len;
    while (i > 0 && len - i < 60 && isIbanRunChar(text.charCodeAt(i - 1))) i--;
    for (let k = i; k + 4 <= len; k++) {
      if (k > 0 && isAlnum(text.charCodeAt(k - 1))) continue;
      if (isAlpha(text.charCodeAt(k)) && isAlpha(text.charCodeAt(k + 1)) && isDigit(text.charCodeAt(k + 2)) && isDigit(text.charCodeAt(k + 3))) return k;
    }
    let j = len;
    if (j > 0 && isDigit(text.charCodeAt(j - 1))) j--;
    let l = j;
    while (l > 0 && j - l < 2 && isAlpha(text.charCodeAt(l - 1))) l--;
    if (l < j && (l === 0 || !isAlnum(text.charCodeAt(l - 1)))) return l;
    return len;
  },
};

const isIbanRunChar = (c: number): boolean => isAlnum(c) || c === 32 || c === 45 || c === 9 || c === 13 || c === 10;

// ---------------------------------------------------------------------------------------------------------------
// ipv4 / ipv6

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`(?<![\\w.\\-])(?:${OCTET}\\.){3}${OCTET}`, 'g');
const VERSION_CONTEXT =
  /(?:\bv|\bversion|\bver|\brelease|\bbuild|\brev|\bfirmware|\bfw|\bsdk|\bapi|\bsection|\bsec|\bchapter|\bch|\bclause|\bfigure|\bfig|\btable|\bstep|\bitem|\brule|\bparagraph|\bpara|\bart|\barticle|§)\.?\s*[:=#]?\s*$/i;

export const ipv4: Detector = regexDetector({
  name: 'ipv4',
  needsDigit: true,
  label: 'IPV4',
  priority: 35,
  maxLen: 15,
  re: IPV4_RE,
  quick: (t) => t.includes('.'),
  accept(text, start, end) {
    if (end < text.length) {
      const c = text.charCodeAt(end);
      if (isWord(c)) return false;
      const n = end + 1 < text.length ? text.charCodeAt(end + 1) : 0;
      if (c === 46 && isDigit(n)) return false;
      if ((c === 45 || c === 43) && isAlpha(n)) return false; // 1.2.3.4-beta
    }
    if (start > 0) {
      const p = text.charCodeAt(start - 1);
      if (p === 47 && start > 1 && isAlnum(text.charCodeAt(start - 2))) return false; // Product/1.2.3.4
    }
    return !VERSION_CONTEXT.test(text.slice(Math.max(0, start - 16), start));
  },
  runChar: (c) => isDigit(c) || c === 46,
  startChar: isDigit,
});

const isV6Char = (c: number): boolean => isHex(c) || c === 58 || c === 46;

// Driven by ':' (an address has at least two): take the run of hex/colon/dot characters around it, validate it.
export const ipv6: Detector = {
  name: 'ipv6',
  needsDigit: true,
  label: 'IPV6',
  priority: 40,
  maxLen: 45,
  find(text, out) {
    let p = text.indexOf(':');
    while (p >= 0) {
      let s = p;
      while (s > 0 && isV6Char(text.charCodeAt(s - 1))) s--;
      let e = p;
      while (e < text.length && isV6Char(text.charCodeAt(e))) e++;
      while (e > s && text.charCodeAt(e - 1) === 46) e--; // sentence-final dot
      // Cheap shape check before the parser: "::" or all eight groups.
      let colons = 0;
      let double = false;
      for (let i = s; i < e; i++) {
        if (text.charCodeAt(i) === 58) {
          colons++;
          if (i + 1 < e && text.charCodeAt(i + 1) === 58) double = true;
        }
      }
      if (colons < 7 && !double) {
        p = text.indexOf(':', Math.max(e, p + 1));
        continue;
      }
      const before = s > 0 ? text.charCodeAt(s - 1) : 32;
      if (e - s >= 3 && e - s <= 45 && !isWord(before) && before !== 37 && ipv6Ok(text, s, e)) out.push({ start: s, end: e });
      p = text.indexOf(':', Math.max(e, p + 1));
    }
  },
  normalize: (v) => v.toLowerCase(),
  holdFrom: (text) => trailingRun(text, isV6Char, 45),
};

function ipv6Ok(text: string, start: number, end: number): boolean {
  if (end < text.length && (isWord(text.charCodeAt(end)) || text.charCodeAt(end) === 58)) return false;
  const v = text.slice(start, end);
  // Cheap shape check before the full parser: "::" or all eight groups.
  if (!v.includes('::') && v.split(':').length < 7) return false;
  if (!isIPv6(v)) return false;
  return /\d/.test(v); // "dead::beef", "cafe::face" are words; "::1" (loopback) is an address like any other
}

// ---------------------------------------------------------------------------------------------------------------
// keys and tokens

const TOKEN_CHAR = (c: number): boolean => isAlnum(c) || c === 95 || c === 45;

/**
 * t.includes('AKIA') || … 'ASIA' || … 'ABIA' || … 'ACCA', in one pass over the text's 'A's instead of four
 * searches (exported for the test that compares the two).
 */
export function includesAwsKeyPrefix(t: string): boolean {
  let i = t.indexOf('A');
  while (i >= 0 && i + 3 < t.length) {
    const b = t.charCodeAt(i + 1);
    const c = t.charCodeAt(i + 2);
    const d = t.charCodeAt(i + 3);
    // AKIA, ASIA, ABIA: [KSB] I A; ACCA: C C A.
    if (d === 65 && ((c === 73 && (b === 75 || b === 83 || b === 66)) || (c === 67 && b === 67))) return true;
    i = t.indexOf('A', i + 1);
  }
  return false;
}

export const awsAccessKey: Detector = regexDetector({
  name: 'aws_access_key',
  label: 'AWS_ACCESS_KEY',
  priority: 80,
  maxLen: 20,
  re: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}/g,
  quick: includesAwsKeyPrefix,
  accept: (text, _s, end) => end >= text.length || !isAlnum(text.charCodeAt(end)),
  runChar: isAlnum,
  startChar: (c) => c === 65,
  wrappable: true,
});

// Only text after an AWS word is examined: every AWS word opens a window of 200 characters after it, and each
// character is examined once (`scanned` only grows): a secret after a second AWS word that lies inside the first
// word's window (`aws iam create-access-key` output: aws … AKIA… … "SecretAccessKey": "…") is still in a window.
const AWS_CONTEXT = /aws|amazon|secret[_ \-]?access|secret[_ \-]?key|AKIA|ASIA/gi;
const AWS_WINDOW = 200;
const isB64 = (c: number): boolean => isAlnum(c) || c === 47 || c === 43;

/** Judges the base64 runs starting in [from, limit]: exactly 40 characters, not followed by '=', random-looking. */
function awsSecretsIn(text: string, from: number, limit: number, out: Span[]): number {
  let i = from;
  // A run already under way at `from` started before it: judged by an earlier window, or part of the AWS word.
  while (i < text.length && i > 0 && isB64(text.charCodeAt(i - 1)) && isB64(text.charCodeAt(i))) i++;
  const stop = Math.min(limit, text.length);
  while (i <= stop && i < text.length) {
    if (!isB64(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let e = i;
    while (e < text.length && e - i <= 40 && isB64(text.charCodeAt(e))) e++;
    if (e - i === 40 && (e >= text.length || text.charCodeAt(e) !== 61) && looksRandom(text.slice(i, e))) {
      out.push({ start: i, end: e });
    }
    while (e < text.length && isB64(text.charCodeAt(e))) e++;
    i = e;
  }
  return i;
}

export const awsSecretKey: Detector = {
  name: 'aws_secret_key',
  // looksRandom() wants a digit in the key: digit-free text skips the case-insensitive AWS-word search.
  needsDigit: true,
  label: 'AWS_SECRET_KEY',
  priority: 70,
  maxLen: 40,
  wrappable: true,
  find(text, out) {
    AWS_CONTEXT.lastIndex = 0;
    let scanned = 0;
    let c: RegExpExecArray | null;
    while ((c = AWS_CONTEXT.exec(text)) !== null) {
      const after = c.index + c[0].length;
      const limit = after + AWS_WINDOW;
      if (limit >= scanned) scanned = awsSecretsIn(text, Math.max(scanned, after), limit, out);
    }
  },
  normalize: identity,
  holdFrom: (text) => trailingRun(text, isB64, 40),
};

/** literals.some((l) => text.includes(l)) without a closure per call (it runs on every string). */
function includesAny(text: string, literals: readonly string[]): boolean {
  for (let i = 0; i < literals.length; i++) if (text.includes(literals[i])) return true;
  return false;
}

function tokenDetector(name: string, label: string, re: RegExp, maxLen: number, startChars: string, literals: readonly string[], opts: { random?: boolean; check?: (v: string) => boolean; priority?: number; gate?: string; needsDigit?: boolean } = {}): Detector {
  // `gate`: a single character every match contains; absent characters are found by a fast memchr-like scan.
  const gate = opts.gate;
  const starts = new Set([...startChars].map((c) => c.charCodeAt(0)));
  return regexDetector({
    name,
    label,
    priority: opts.priority ?? 80,
    maxLen,
    re,
    quick: (text) => (gate === undefined || text.includes(gate)) && includesAny(text, literals),
    accept(text, start, end) {
      if (!endsClean(text, end, true)) return false;
      const v = text.slice(start, end);
      if (opts.random !== false && !looksRandom(v)) return false;
      return opts.check === undefined || opts.check(v);
    },
    runChar: TOKEN_CHAR,
    startChar: (c) => starts.has(c),
    // A key the validators only accept with a digit in it (looksRandom, or a `\d` check) is skipped on digit-free
    // text without its literal searches: most prose has no digit (test/redaction/prefilter.test.ts holds them to it).
    needsDigit: opts.needsDigit === true,
    wrappable: true,
  });
}

export const openaiKey = tokenDetector(
  'openai_key',
  'OPENAI_KEY',
  /(?<![A-Za-z0-9_\-])sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,300}/g,
  320,
  's',
  ['sk-'],
  { gate: '-', needsDigit: true },
);
export const anthropicKey = tokenDetector(
  'anthropic_key',
  'ANTHROPIC_KEY',
  /(?<![A-Za-z0-9_\-])sk-ant-[a-z]{2,10}\d{2}-[A-Za-z0-9_\-]{20,300}/g,
  330,
  's',
  ['sk-'],
  { priority: 85, gate: '-', needsDigit: true },
);
export const githubToken = tokenDetector(
  'github_token',
  'GITHUB_TOKEN',
  /(?<![A-Za-z0-9_\-])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})/g,
  262,
  'g',
  ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  { gate: '_', random: false, check: (v) => /\d/.test(v), needsDigit: true },
);
export const slackToken = tokenDetector(
  'slack_token',
  'SLACK_TOKEN',
  /(?<![A-Za-z0-9_\-])(?:xox[abposer]|xapp)-[A-Za-z0-9\-]{10,250}/g,
  260,
  'x',
  ['xox', 'xapp-'],
  { gate: '-', random: false, check: (v) => /\d/.test(v) && (v.match(/-/g)?.length ?? 0) >= 2, needsDigit: true },
);
export const stripeKey = tokenDetector(
  'stripe_key',
  'STRIPE_KEY',
  /(?<![A-Za-z0-9_\-])(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9]{24,247})/g,
  260,
  'srpw',
  ['_live_', '_test_', 'whsec_'],
  { gate: '_', random: false, check: (v) => /\d/.test(v), needsDigit: true },
);
export const googleApiKey = tokenDetector(
  'google_api_key',
  'GOOGLE_API_KEY',
  /(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}/g,
  39,
  'A',
  ['AIza'],
  { random: false },
);

/**
 * t.includes('eyJ'), found from the rare 'J' instead: includes() starts at every 'e', the commonest letter of
 * English prose, and cost ~1 µs per KB of it (exported for the test that compares the two).
 */
export function includesEyJ(t: string): boolean {
  let i = t.indexOf('J', 2);
  while (i >= 0) {
    if (t.charCodeAt(i - 1) === 121 && t.charCodeAt(i - 2) === 101) return true;
    i = t.indexOf('J', i + 1);
  }
  return false;
}

export const jwt: Detector = regexDetector({
  name: 'jwt',
  label: 'JWT',
  priority: 90,
  maxLen: 24_600,
  re: /(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{6,4096}\.eyJ[A-Za-z0-9_\-]{2,16384}\.[A-Za-z0-9_\-]{0,4096}/g,
  quick: (t) => t.includes('.') && includesEyJ(t),
  accept(text, start, end) {
    if (!endsClean(text, end, true)) return false;
    return jwtHeaderValid(text.slice(start, text.indexOf('.', start)));
  },
  runChar: (c) => TOKEN_CHAR(c) || c === 46,
  startChar: (c) => c === 101,
  wrappable: true,
});

// ---------------------------------------------------------------------------------------------------------------
// private_key (PEM). An unterminated block is redacted to the end of the string: a truncated key is still a key.

const PEM_BEGIN_RE = /-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_END_RE = /-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_MAX_HOLD = 16_384;

export const privateKey: Detector = {
  name: 'private_key',
  label: 'PRIVATE_KEY',
  priority: 100,
  maxLen: PEM_MAX_HOLD,
  find(text, out) {
    if (!text.includes('-----') || !text.includes('PRIVATE KEY')) return;
    PEM_BEGIN_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = PEM_BEGIN_RE.exec(text)) !== null) {
      PEM_END_RE.lastIndex = m.index + m[0].length;
      const e = PEM_END_RE.exec(text);
      const end = e === null ? text.length : e.index + e[0].length;
      out.push({ start: m.index, end });
      PEM_BEGIN_RE.lastIndex = end;
    }
  },
  normalize: (s) => s.replace(/\s+/g, ''),
  holdFrom(text) {
    // Hold an open block (bounded), or a marker being written at the end.
    const b = text.lastIndexOf('-----BEGIN ');
    if (b >= 0 && text.length - b <= PEM_MAX_HOLD) {
      PEM_END_RE.lastIndex = b;
      if (PEM_END_RE.exec(text) === null) return b;
    }
    const w = Math.max(0, text.length - 60);
    const m = /-{1,5}$|-----(?:B(?:E(?:G(?:I(?:N(?: [A-Z0-9 ]*(?:-{1,5})?)?)?)?)?)?)?$/.exec(text.slice(w));
    return m === null ? text.length : w + m.index;
  },
};

// ---------------------------------------------------------------------------------------------------------------

export const BUILTIN_DETECTORS: readonly Detector[] = [
  email,
  phone,
  creditCard,
  ssn,
  iban,
  ipv4,
  ipv6,
  awsAccessKey,
  awsSecretKey,
  openaiKey,
  anthropicKey,
  githubToken,
  slackToken,
  stripeKey,
  googleApiKey,
  jwt,
  privateKey,
];

export const BUILTIN_BY_NAME: ReadonlyMap<string, Detector> = new Map(BUILTIN_DETECTORS.map((d) => [d.name, d]));

/** Names a rule may use for a group of built-ins; `*` is every built-in. */
export const DETECTOR_GROUPS: Readonly<Record<string, readonly string[]>> = {
  '*': BUILTIN_DETECTORS.map((d) => d.name),
  pii: ['email', 'phone', 'credit_card', 'ssn', 'iban', 'ipv4', 'ipv6'],
  ip_address: ['ipv4', 'ipv6'],
  api_key: ['openai_key', 'anthropic_key', 'github_token', 'slack_token', 'stripe_key', 'google_api_key', 'aws_access_key'],
  secrets: [
    'aws_access_key',
    'aws_secret_key',
    'openai_key',
    'anthropic_key',
    'github_token',
    'slack_token',
    'stripe_key',
    'google_api_key',
    'jwt',
    'private_key',
  ],
};
