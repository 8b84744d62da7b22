// Text hidden in encodings: base64 that decodes to readable UTF-8 text. Used for base64 runs inside a string
// (scan.ts) and for base64 documents (data URLs, `data` / `file_data` fields: redactor.ts).
//
// Cost bound: a candidate is judged on its first SNIFF_CHARS characters (≤ 3 KiB decoded) before anything else is
// decoded, so binary payloads (images, audio, PDFs, random keys) cost O(3 KiB) each; only base64 whose whole content
// is valid UTF-8 text is decoded entirely and scanned once, one level deep (text inside the decoded text is not
// decoded again). Worst case: each character is decoded once and its decoded text (¾ of its size) scanned once.

import { isUtf8 } from 'node:buffer';

const SNIFF_CHARS = 4096;

/** Readable text: no NUL or C0 controls other than tab/newline/CR/form feed, and mostly printable characters. */
function readable(s: string): boolean {
  let printable = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32) {
      if (c !== 9 && c !== 10 && c !== 13 && c !== 12) return false;
    } else if (c === 0x7f || c === 0xfffd || (c >= 0x80 && c < 0xa0)) {
      return false;
    } else {
      printable++;
    }
  }
  return printable >= s.length * 0.75;
}

/** UTF-8 text without control bytes, or undefined. Rejects random bytes on their first control byte, no throw. */
function decodeUtf8(b: Uint8Array): string | undefined {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) || c === 0x7f) return undefined;
  }
  return isUtf8(b) ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8') : undefined;
}

/**
 * The text `b64` (standard or URL-safe alphabet, padding optional) encodes, or undefined when it is binary or
 * shorter than `minBytes` decoded bytes. Cheap rejection: only a readable prefix leads to a full decode.
 */
export function base64Text(b64: string, minBytes = 12): string | undefined {
  if (b64.length > SNIFF_CHARS) {
    // The prefix may end mid-quantum (line breaks shift it) or mid-character: drop a few bytes, then back off to a
    // character start.
    const head = Buffer.from(b64.slice(0, SNIFF_CHARS), 'base64');
    let end = Math.max(0, head.length - 4);
    while (end > 0 && (head[end] & 0xc0) === 0x80) end--;
    const t = decodeUtf8(head.subarray(0, end));
    if (t === undefined || !readable(t)) return undefined;
  }
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length < minBytes) return undefined;
  const text = decodeUtf8(bytes);
  return text !== undefined && readable(text) ? text : undefined;
}

/** Base64 of `text`, in the alphabet (URL-safe or standard) and padding style of `like`. */
export function toBase64Like(text: string, like: string): string {
  const urlSafe = /[-_]/.test(like) && !/[+/]/.test(like);
  let out = Buffer.from(text, 'utf8').toString(urlSafe ? 'base64url' : 'base64');
  if (urlSafe && like.endsWith('=')) out += '='.repeat((4 - (out.length % 4)) % 4);
  if (!urlSafe && !like.replace(/[\r\n]+/g, '').endsWith('=')) out = out.replace(/=+$/, '');
  return out;
}
