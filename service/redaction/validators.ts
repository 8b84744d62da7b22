// Checksums and structural validators behind the built-in detectors. Pure functions, no regexes that
// could backtrack: each runs in time linear in its (already length-bounded) input.

/** Luhn (mod 10) over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function prefixIn(digits: string, len: number, lo: number, hi: number): boolean {
  const p = Number(digits.slice(0, len));
  return p >= lo && p <= hi;
}

/**
 * Card brand by IIN prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir).
 * Returns undefined when no major brand issues that prefix/length pair.
 */
export function cardBrand(digits: string): string | undefined {
  const n = digits.length;
  const c0 = digits[0];
  if (c0 === '4' && (n === 13 || n === 16 || n === 19)) return 'visa';
  if (n === 16 && (prefixIn(digits, 2, 51, 55) || prefixIn(digits, 4, 2221, 2720))) return 'mastercard';
  if (n === 15 && (digits.startsWith('34') || digits.startsWith('37'))) return 'amex';
  if (n >= 16 && n <= 19) {
    if (digits.startsWith('6011') || digits.startsWith('65') || prefixIn(digits, 3, 644, 649)) return 'discover';
    if (prefixIn(digits, 6, 622126, 622925)) return 'discover';
    if (prefixIn(digits, 4, 3528, 3589)) return 'jcb';
    if (digits.startsWith('62') || digits.startsWith('81')) return 'unionpay';
    if (prefixIn(digits, 4, 2200, 2204)) return 'mir';
  }
  if (n >= 14 && n <= 19) {
    if (prefixIn(digits, 3, 300, 305) || digits.startsWith('3095') || digits.startsWith('36')) return 'diners';
    if (digits.startsWith('38') || digits.startsWith('39')) return 'diners';
  }
  if (n >= 12 && n <= 19) {
    for (const p of MAESTRO) if (digits.startsWith(p)) return 'maestro';
  }
  return undefined;
}
const MAESTRO = ['5018', '5020', '5038', '5893', '6304', '6759', '6761', '6762', '6763'];

/** A payment card number: digits only, known brand prefix/length, Luhn-valid. */
export function cardValid(digits: string): boolean {
  return cardBrand(digits) !== undefined && luhnValid(digits);
}

/** US SSN area/group/serial rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (group === '00') return false;
  if (serial === '0000') return false;
  return true;
}

/** IBAN length by country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18,
  FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24,
  ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29,
  PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25,
  SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 13616 mod-97 check over a compact, upper-case IBAN. */
export function ibanValid(iban: string): boolean {
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected === undefined || iban.length !== expected) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      rem = (rem * 10 + (c - 48)) % 97;
    } else if (c >= 65 && c <= 90) {
      rem = (rem * 100 + (c - 55)) % 97;
    } else {
      return false;
    }
  }
  return rem === 1;
}

/** A JWT's first segment must be base64url JSON with a string `alg` (RFC 7515 §4.1.1). */
export function jwtHeaderValid(segment: string): boolean {
  if (segment.length > 4096) return false;
  let json: string;
  try {
    json = Buffer.from(segment, 'base64url').toString('utf8');
  } catch {
    return false;
  }
  if (!json.startsWith('{')) return false;
  try {
    const header: unknown = JSON.parse(json);
    return (
      typeof header === 'object' &&
      header !== null &&
      !Array.isArray(header) &&
      typeof (header as Record<string, unknown>).alg === 'string'
    );
  } catch {
    return false;
  }
}

/** Counts of character classes, for "looks like random key material" checks. */
export function charMix(s: string): { upper: number; lower: number; digit: number } {
  let upper = 0;
  let lower = 0;
  let digit = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) upper++;
    else if (c >= 97 && c <= 122) lower++;
    else if (c >= 48 && c <= 57) digit++;
  }
  return { upper, lower, digit };
}

/** Random-looking: at least one upper, one lower and one digit (real keys are base62/base64 random). */
export function looksRandom(s: string): boolean {
  const m = charMix(s);
  return m.upper > 0 && m.lower > 0 && m.digit > 0;
}
