// Generates the gen-*.jsonl files of the labelled redaction corpus (seeded: the same files every run).
//   node --import tsx test/redaction/corpus/generate.ts
// Positives are valid values (Luhn, mod-97, SSN ranges, real key shapes) written the ways people write them —
// national phone formats, separators, other scripts' digits, invisible characters, hard wraps, URL-encoding,
// base64 — inside realistic templates. Negatives are look-alikes that must NOT be redacted: order numbers,
// versions, timestamps, UUIDs, prices, ISBNs, git SHAs, hashes, Luhn-failing numbers, bad checksums, etc.
// Every label is the exact span a detector must report (for encoded values: the whole encoded run).
import { writeFileSync } from 'node:fs';
import { IBAN_LENGTHS } from '../../../service/redaction/validators.ts';

type Pii = Record<string, string[]>;
interface Line {
  text: string;
  pii: Pii;
}

// ---------------------------------------------------------------------------------------------------------------
// seeded randomness

let seed = 0x5eed1234;
function rnd(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const digits = (n: number, first = '0123456789'): string => {
  let s = pick([...first]);
  for (let i = 1; i < n; i++) s += String(int(0, 9));
  return s;
};
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomKey(n: number, alphabet = ALNUM, mixed = true): string {
  for (;;) {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[int(0, alphabet.length - 1)];
    if (!mixed || (/[A-Z]/.test(s) && /[a-z]/.test(s) && /\d/.test(s))) return s;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// value makers

function luhnComplete(body: string): string {
  for (let d = 0; d <= 9; d++) {
    const s = body + d;
    let sum = 0;
    let dbl = false;
    for (let i = s.length - 1; i >= 0; i--) {
      let v = s.charCodeAt(i) - 48;
      if (dbl) {
        v *= 2;
        if (v > 9) v -= 9;
      }
      sum += v;
      dbl = !dbl;
    }
    if (sum % 10 === 0) return s;
  }
  throw new Error('unreachable');
}
const CARD_PREFIXES: [string, number][] = [
  ['4', 16], ['4', 16], ['4', 13], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15], ['37', 15],
  ['6011', 16], ['65', 16], ['3530', 16], ['3589', 16], ['36', 14], ['62', 16], ['2200', 16], ['6759', 16], ['4', 19],
];
function card(): string {
  const [p, n] = pick(CARD_PREFIXES);
  return luhnComplete(p + digits(n - p.length - 1));
}
function groupCard(d: string, sep: string): string {
  if (d.length === 15) return `${d.slice(0, 4)}${sep}${d.slice(4, 10)}${sep}${d.slice(10)}`;
  return d.match(/.{1,4}/g)!.join(sep);
}
function badLuhn(): string {
  const c = card();
  const last = Number(c[c.length - 1]);
  return c.slice(0, -1) + String((last + int(1, 9)) % 10);
}

function ssn(): [string, string, string] {
  let a: string;
  do a = digits(3);
  while (a === '000' || a === '666' || a[0] === '9');
  let g: string;
  do g = digits(2);
  while (g === '00');
  let s: string;
  do s = digits(4);
  while (s === '0000');
  return [a, g, s];
}

function mod97(s: string): number {
  let rem = 0;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    rem = c >= 65 ? (rem * 100 + (c - 55)) % 97 : (rem * 10 + (c - 48)) % 97;
  }
  return rem;
}
const IBAN_COUNTRIES = ['DE', 'FR', 'GB', 'ES', 'IT', 'NL', 'BE', 'CH', 'AT', 'PL', 'SE', 'NO', 'DK', 'FI', 'IE', 'PT', 'LU', 'CZ', 'GR', 'HU', 'RO', 'SA', 'AE', 'TR', 'BR', 'IL', 'MT', 'LT', 'LV', 'EE'];
function iban(cc = pick(IBAN_COUNTRIES)): string {
  const len = IBAN_LENGTHS[cc];
  let bban = '';
  // Letters where real banks put them (GB/NL/IE/MT bank codes), digits elsewhere.
  const letters = cc === 'GB' || cc === 'IE' || cc === 'MT' ? 4 : cc === 'NL' ? 4 : 0;
  for (let i = 0; i < len - 4; i++) bban += i < letters ? String.fromCharCode(int(65, 90)) : String(int(0, 9));
  const check = 98 - mod97(bban + cc + '00');
  return cc + String(check).padStart(2, '0') + bban;
}
const group4 = (s: string, sep: string): string => s.match(/.{1,4}/g)!.join(sep);

const FIRST = ['jane', 'john', 'maria', 'li', 'ahmed', 'olga', 'pierre', 'sofia', 'raj', 'chen', 'anna', 'lukas', 'fatima', 'diego', 'yuki', 'noah'];
const LAST = ['doe', 'smith', 'garcia', 'wang', 'khan', 'ivanova', 'martin', 'rossi', 'patel', 'li', 'schmidt', 'nakamura', 'silva', 'novak'];
const DOMAINS = ['example.com', 'example.org', 'corp.example.net', 'mail.example.co.uk', 'uni-heidelberg.de', 'example.io', 'sub.example.travel', 'example.museum', 'acme-corp.com', 'example.com.br', 'example.technology'];
function email(): string {
  const f = pick(FIRST);
  const l = pick(LAST);
  const local = pick([`${f}.${l}`, `${f}${l}`, `${f}_${l}`, `${f}.${l}+${pick(['news', 'billing', 'x1'])}`, `${f[0]}${l}${int(1, 99)}`, `${f}-${l}`, `${l}.${f}`, f.toUpperCase()]);
  return `${local}@${pick(DOMAINS)}`;
}
const IDN_EMAILS = ['jörg.müller@bücher.de', 'jane@münchen.de', 'иван.петров@пример.рф', 'олег@почта.рф', '用户@例子.广告', '张伟@公司.中国', 'θεός@παράδειγμα.ελ', 'josé@correo.españa.es', 'marie@société.fr', 'info@xn--mnchen-3ya.de', 'ravi@उदाहरण.भारत', 'yuki@例え.テスト'];
const INVISIBLE = ['\u200b', '\u200c', '\u200d', '\u2060', '\u2063', '\u2062', '\u180e', '\u034f', '\u00ad', '\ufeff', '\u200e'];
function obfuscate(v: string): string {
  const i = int(1, v.length - 1);
  return v.slice(0, i) + pick(INVISIBLE) + v.slice(i);
}

// Digits of other scripts (zero code points).
const SCRIPT_ZEROS = [0x660, 0x6f0, 0x966, 0x9e6, 0xe50, 0xff10];
function toScript(s: string, zero: number): string {
  return [...s].map((c) => (c >= '0' && c <= '9' ? String.fromCodePoint(zero + Number(c)) : c)).join('');
}
const toMathBold = (s: string): string => [...s].map((c) => (c >= '0' && c <= '9' ? String.fromCodePoint(0x1d7ce + Number(c)) : c)).join('');

// Phones: [text, family]
function phoneValue(): string {
  const nanp = (): string => `${int(2, 9)}${digits(2)}`;
  const exch = (): string => `${int(2, 9)}${digits(2)}`;
  const kind = int(0, 27);
  switch (kind) {
    case 0: return `(${nanp()}) ${exch()}-${digits(4)}`;
    case 1: return `${nanp()}-${exch()}-${digits(4)}`;
    case 2: return `${nanp()}.${exch()}.${digits(4)}`;
    case 3: return `+1 ${nanp()} ${exch()} ${digits(4)}`;
    case 4: return `+1-${nanp()}-${exch()}-${digits(4)}`;
    case 5: return `1-800-${exch()}-${digits(4)}`;
    case 6: return `+44 20 ${digits(4)} ${digits(4)}`;
    case 7: return `+44 7${digits(3)} ${digits(6)}`;
    case 8: return `020 ${digits(4)} ${digits(4)}`;
    case 9: return `07${digits(3)} ${digits(6)}`;
    case 10: return `0${int(1, 7)}${digits(9)}`.slice(0, 11); // compact UK (11)
    case 11: return `0${int(1, 9)} ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`;
    case 12: return `0${int(6, 7)}${digits(8)}`; // compact FR (10)
    case 13: return `+33 ${int(1, 9)} ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`;
    case 14: return `030/${digits(8)}`;
    case 15: return `0${int(151, 179)}/${digits(7)}`;
    case 16: return `089 / ${digits(3)} ${digits(3)} ${digits(2)}`;
    case 17: return `+49 30 ${digits(8)}`;
    case 18: return `${int(6, 9)}${digits(4)} ${digits(5)}`; // IN 5-5
    case 19: return `+91 ${int(6, 9)}${digits(4)} ${digits(5)}`;
    case 20: return `(${int(11, 99).toString().replace('0', '1')}) 9${digits(4)}-${digits(4)}`;
    case 21: return `${pick(['11', '21', '31', '41', '51', '61', '71', '81'])} ${int(2, 5)}${digits(3)}-${digits(4)}`;
    case 22: return `+55 11 9${digits(4)}-${digits(4)}`;
    case 23: return `${int(6, 9)}${digits(2)} ${digits(3)} ${digits(3)}`; // ES 3-3-3
    case 24: return `${int(6, 9)}${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`; // ES 3-2-2-2
    case 25: return `9${int(1, 8)} ${digits(3)} ${digits(2)} ${digits(2)}`; // ES 2-3-2-2
    case 26: return `+34 ${int(6, 9)}${digits(2)} ${digits(3)} ${digits(3)}`;
    default: return `0041 ${digits(2)} ${digits(3)} ${digits(2)} ${digits(2)}`;
  }
}
const PHONE_WORD_TEMPLATES = [
  'call me at {}', 'phone: {}', 'Tel. {}', 'mobile no. {}', 'my cell is {}', 'fax {}', 'reach us on {}',
  'Telefon: {}', 'Meine Handynummer ist {}', 'Rufnummer {}', 'téléphone : {}', 'appelez-moi au {}', 'portable {}',
  'teléfono {}', 'llámame al {}', 'mi móvil es {}', 'celular {}', 'meu telefone é {}', 'cellulare {}', 'telefoon {}',
  'телефон {}', 'тел. {}', '电话：{}', '手机 {}', '電話番号 {}', 'whatsapp {}',
];
const PROSE = [
  '{}', 'Contact: {}', 'Please reach the customer ({}) tomorrow.', '"{}",', '<{}>', 'value={}', 'To whom it may concern, {}.',
  '- {}', '| {} |', '{} (home)', 'see {} above', 'Notes: {}; follow up', '[{}]',
];
const fill = (t: string, v: string): string => t.replace('{}', v);

// ---------------------------------------------------------------------------------------------------------------

const files: Record<string, Line[]> = {};
function add(file: string, text: string, pii: Pii = {}): void {
  (files[file] ??= []).push({ text, pii });
}
const one = (det: string, text: string, v: string): [string, Pii] => [text, { [det]: [v] }];

// email
for (let i = 0; i < 220; i++) {
  const v = email();
  const r = int(0, 9);
  if (r <= 4) add('gen-email', ...one('email', fill(pick(PROSE), v), v));
  else if (r === 5) {
    const o = obfuscate(v);
    add('gen-email', ...one('email', `mail ${o} now`, o));
  } else if (r === 6) {
    const w = v.replace('@', pick(['\ufe6b', '\uff20']));
    add('gen-email', ...one('email', `contact ${w}`, w));
  } else if (r === 7) {
    const w = v.replace('@', '%40');
    add('gen-email', ...one('email', `https://example.net/signup?next=%2Fhome&email=${w}&ref=ad`, w));
  } else if (r === 8) add('gen-email', ...one('email', `mailto:${v}?subject=Hi`, v));
  else add('gen-email', ...one('email', `{"user": {"email": "${v}", "id": ${int(1, 9999)}}}`, v));
}
for (const v of IDN_EMAILS) {
  add('gen-email', ...one('email', `contact ${v} please`, v));
  add('gen-email', ...one('email', `"${v}"`, v));
}
const EMAIL_NEG = [
  'thanks @jane for the review', 'npm i lodash@4.17.21', 'see icon@2x.png and logo@3x.webp', 'git@github.com:acme/repo.git',
  'ssh user@localhost', '@Component({selector: "app"})', '@media (max-width: 600px)', 'foo @ bar', 'pip install requests==2.31.0',
  'email me at jane at example dot com', 'the @ sign', 'user@server', 'docker pull nginx@sha256:abc123', 'a@b', '@scope/package@1.2.3',
  'retina image hero@2x.jpg', 'price @ 5.99 each', 'meet @ 10:30', 'x@y.z', 'commit abc@{upstream}', 'vue@next', 'name@', '@@ -1,4 +1,5 @@',
];
for (let i = 0; i < 80; i++) add('gen-email', pick(EMAIL_NEG).replace('4.17.21', `${int(1, 9)}.${int(0, 30)}.${int(0, 40)}`));

// phone
for (let i = 0; i < 320; i++) {
  const v = phoneValue();
  const r = int(0, 9);
  if (r <= 5) add('gen-phone', ...one('phone', fill(pick(PROSE.slice(0, 8)), v), v));
  else if (r === 6) add('gen-phone', ...one('phone', fill(pick(PHONE_WORD_TEMPLATES), v), v));
  else if (r === 7) {
    const bare = digits(10, '23456789');
    add('gen-phone', ...one('phone', fill(pick(PHONE_WORD_TEMPLATES), bare), bare));
  } else if (r === 8) {
    const s = toScript(v, pick(SCRIPT_ZEROS));
    add('gen-phone', ...one('phone', `رقم ${s} شكرا`.replace('رقم', pick(['phone', 'هاتف', 'फ़ोन', 'tel'])), s));
  } else {
    add('gen-phone', ...one('phone', `{"name": "${pick(FIRST)}", "phone": "${v}"}`, v));
  }
}
const PHONE_NEG = (): string =>
  pick([
    () => `Order ${digits(10, '123456789')} shipped`,
    () => `order #${digits(11, '0')}`.replace('#0', '#00'),
    () => `timestamp ${int(1600000000, 1800000000)}`,
    () => `ts=${int(1600000000000, 1800000000000)}`,
    () => `on ${int(2000, 2030)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')} at 10:${int(10, 59)}`,
    () => `date ${String(int(1, 28)).padStart(2, '0')}/${String(int(1, 12)).padStart(2, '0')}/${int(2000, 2030)}`,
    () => `ISBN 978-${int(0, 9)}-${digits(2)}-${digits(6)}-${int(0, 9)}`,
    () => `ISBN 0-${digits(3)}-${digits(5)}-${int(0, 9)}`,
    () => `price $${int(1, 999)},${digits(3)}.${digits(2)}`,
    () => `total ${int(100, 999)} ${digits(3)} ${digits(3)} €`,
    () => `€${int(600, 999)} ${digits(3)} ${digits(3)}`,
    () => `version ${int(1, 20)}.${int(0, 99)}.${int(0, 999)}`,
    () => `build ${int(1, 9)}.${digits(10)}`,
    () => `uuid ${randomUuid()}`,
    () => `zip ${digits(5, '123456789')}-${digits(4)}`,
    () => `pages ${int(100, 999)}-${int(1000, 9999)}`,
    () => `coordinates ${int(10, 80)}.${digits(6)}, ${int(10, 170)}.${digits(6)}`,
    () => `${int(1, 9)},${digits(3)},${digits(3)} users`,
    () => `OTP ${digits(6)}`,
    () => `ratio ${int(1, 9)}/${digits(7)}`,
    () => `population 1 ${digits(3)} ${digits(3)}`,
    () => `invoice 2024-${digits(6)}`,
    () => `SKU ${digits(4)}-${digits(4)}-${digits(2)}`,
    () => `tracking 1Z${digits(16)}`,
    () => `duration ${int(10, 99)}:${int(10, 59)}:${int(10, 59)}.${digits(3)}`,
    () => `account 0000${digits(6)}`,
  ])();
for (let i = 0; i < 220; i++) add('gen-phone', PHONE_NEG());

function randomUuid(): string {
  const h = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
  return `${h(8)}-${h(4)}-4${h(3)}-${pick(['8', '9', 'a', 'b'])}${h(3)}-${h(12)}`;
}

// credit_card
for (let i = 0; i < 220; i++) {
  const d = card();
  const r = int(0, 9);
  let v: string;
  if (r <= 2) v = d;
  else if (r <= 4) v = groupCard(d, ' ');
  else if (r <= 6) v = groupCard(d, '-');
  else if (r === 7) v = groupCard(d, '.');
  else if (r === 8) v = toScript(groupCard(d, ' '), pick(SCRIPT_ZEROS));
  else v = groupCard(d, ' ').replace(/ /g, pick(['\u00a0', '\u2007', '\u202f']));
  add('gen-card', ...one('credit_card', fill(pick(['card {}', 'Card number: {}', 'paid with {} exp 04/27', '{"pan": "{}"}', 'cc={}&cvv=123', 'Visa {} (debit)']), v), v));
}
for (let i = 0; i < 20; i++) {
  const d = card();
  const v = toMathBold(d);
  add('gen-card', ...one('credit_card', `card ${v} ok`, v));
}
const CARD_NEG = (): string =>
  pick([
    () => `card ${groupCard(badLuhn(), ' ')}`,
    () => `order ${badLuhn()}`,
    () => `id ${luhnComplete('1' + digits(14))}`, // no brand starts with 1
    () => `IMEI 35${digits(13)}`,
    () => `tracking ${digits(18, '9')}`,
    () => `account ${digits(12, '789')}`.replace(/^account 7/, 'account 7'),
    () => `serial ${digits(4)}-${digits(4)}-${digits(4)}`,
    () => `uuid ${randomUuid()}`,
    () => `phone +1 415 555 ${digits(4)}`,
    () => `${int(1000, 9999)} ${int(1000, 9999)} words`,
    () => `bytes ${digits(16, '123456789')}`.replace(/bytes (\d)/, 'bytes 1'),
  ])();
for (let i = 0; i < 160; i++) {
  const t = CARD_NEG();
  if (t.startsWith('phone')) add('gen-card', t, { phone: [t.slice(6)] });
  else add('gen-card', t);
}

// ssn
for (let i = 0; i < 200; i++) {
  const [a, g, s] = ssn();
  const r = int(0, 9);
  let v: string;
  let t: string;
  if (r <= 3) {
    v = `${a}-${g}-${s}`;
    t = fill(pick(['SSN: {}', 'social security number {}', 'Applicant ({})', '{"ssn": "{}"}', 'ss# {}', 'SSN {}.']), v);
  } else if (r === 4) {
    v = `${a} ${g} ${s}`;
    t = `SSN ${v}`;
  } else if (r === 5) {
    v = `${a}.${g}.${s}`;
    t = `soc sec ${v}`;
  } else if (r === 6) {
    v = `${a}${g}${s}`;
    t = fill(pick(['ssn {}', 'SSN: {}', 'social security no. {}', 'her SSN is {}']), v);
  } else if (r === 7) {
    v = toScript(`${a}-${g}-${s}`, pick(SCRIPT_ZEROS));
    t = `SSN ${v}`;
  } else {
    v = `${a}-${g}-${s}`.replace(/-/g, pick(['\u2010', '\u2011', '\u2013', '\u2212']));
    t = `SSN ${v}`;
  }
  add('gen-ssn', ...one('ssn', t, v));
}
const SSN_NEG = (): string =>
  pick([
    () => `SSN 000-${digits(2)}-${digits(4)}`,
    () => `SSN 666-${digits(2)}-${digits(4)}`,
    () => `SSN 9${digits(2)}-${digits(2)}-${digits(4)}`,
    () => `SSN ${digits(3, '12345678')}-00-${digits(4)}`,
    () => `order ${digits(9, '12345678')}`,
    () => `part ${digits(3, '12345678')}-${digits(2)}-${digits(4)}-B`,
    () => `zip ${digits(5, '12345678')}-${digits(4)}`,
    () => `ref ${digits(3, '12345678')}-${digits(4)}-${digits(3)}`,
    () => `v${digits(3)}.${digits(2)}.${digits(4)}-rc1`,
    () => `case 12-${digits(2)}-${digits(4)}`,
  ])();
for (let i = 0; i < 120; i++) add('gen-ssn', SSN_NEG());

// iban
for (let i = 0; i < 220; i++) {
  const c = iban();
  const r = int(0, 9);
  let v: string;
  if (r <= 2) v = c;
  else if (r <= 5) v = group4(c, ' ');
  else if (r === 6) v = group4(c, '-');
  else if (r === 7) v = group4(c, ' ').toLowerCase();
  else if (r === 8) {
    const g = group4(c, ' ');
    const cut = g.indexOf(' ', 10);
    v = `${g.slice(0, cut)}\n${g.slice(cut + 1)}`;
  } else {
    const cut = int(8, c.length - 4);
    v = `${c.slice(0, cut)}\n    ${c.slice(cut)}`;
  }
  add('gen-iban', ...one('iban', fill(pick(['IBAN: {}', 'wire to {} today', 'Kontonummer {}', '{"iban": "{}"}', 'pay {}.', 'Beneficiary IBAN\n{}\nThanks']), v), v));
}
const IBAN_NEG = (): string =>
  pick([
    () => {
      const c = iban();
      return `IBAN ${c.slice(0, 2)}${String((Number(c.slice(2, 4)) + int(1, 50)) % 100).padStart(2, '0')}${c.slice(4)}`;
    },
    () => `IBAN ${iban().slice(0, -1)}`,
    () => `US${digits(20)}`,
    () => `BIC DEUTDEFF500`,
    () => `VAT DE${digits(9)}`,
    () => `code AB12 ${digits(4)} ${digits(4)}`,
    () => `product DE12-${digits(4)}`,
    () => `flight LH${digits(4)}`,
  ])();
for (let i = 0; i < 120; i++) {
  const t = IBAN_NEG();
  add('gen-iban', t);
}

// ip
const octet = (): number => int(1, 254);
for (let i = 0; i < 160; i++) {
  const v = `${octet()}.${int(0, 255)}.${int(0, 255)}.${octet()}`;
  add('gen-ip', ...one('ipv4', fill(pick(['server at {}', 'http://{}/admin', 'connect to {}:8080', 'client_ip={} ', '{"ip": "{}"}', 'X-Forwarded-For: {}, 10.0.0.1'.replace(', 10.0.0.1', ''), 'GET / from {} 200', 'ping {}']), v), v));
}
const V6 = (): string => {
  const h = (): string => int(0, 0xffff).toString(16);
  return pick([
    () => `2001:db8:${h()}:${h()}::${h()}`,
    () => `fe80::${h()}:${h()}:${h()}:${int(1, 0xffff).toString(16)}`,
    () => `2a00:1450:4001:${h()}::200e`,
    () => Array.from({ length: 8 }, h).join(':').replace(/^0:/, '1:'),
    () => `::ffff:${octet()}.${int(0, 255)}.${int(0, 255)}.${octet()}`,
    () => '::1',
  ])();
};
for (let i = 0; i < 140; i++) {
  const v = V6();
  if (!/\d/.test(v)) continue;
  const r = int(0, 3);
  // An IPv4-mapped address holds an IPv4 address: both detectors must find their part.
  const pii: Pii = v.startsWith('::ffff:') ? { ipv6: [v], ipv4: [v.slice(7)] } : { ipv6: [v] };
  if (r === 0) add('gen-ip', `http://[${v}]:${int(80, 9000)}/x`, pii);
  else if (r === 1) add('gen-ip', `[${v}]:${int(80, 9000)}`, pii);
  else add('gen-ip', fill(pick(['addr {}', 'inet6 {}/64 scope', 'peer={}', 'from {} port 22']), v), pii);
}
const IP_NEG = (): string =>
  pick([
    () => `version ${int(1, 9)}.${int(0, 9)}.${int(0, 9)}.${int(0, 9)}`,
    () => `v${int(1, 9)}.${int(0, 20)}.${int(0, 20)}.${int(0, 99)}`,
    () => `Chrome/${int(100, 130)}.0.${int(1000, 6999)}.${int(10, 199)}`,
    () => `release ${int(1, 9)}.${int(0, 9)}.${int(0, 9)}.${int(0, 9)}-beta`,
    () => `OID 1.3.6.1.4.1.${int(1, 99999)}`,
    () => `date ${int(2000, 2030)}.${String(int(1, 12)).padStart(2, '0')}.${String(int(1, 28)).padStart(2, '0')}`,
    () => `semver ${int(0, 9)}.${int(0, 99)}.${int(0, 99)}`,
    () => `MAC ${Array.from({ length: 6 }, () => int(16, 255).toString(16)).join(':')}`,
    () => `at ${int(10, 23)}:${int(10, 59)}:${int(10, 59)}`,
    () => `std::vector<int> and Foo::Bar`,
    () => `dead::beef and cafe::face`,
    () => `${int(256, 999)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}`,
    () => `section ${int(1, 9)}.${int(1, 9)}.${int(1, 9)}.${int(1, 9)}`,
    () => `price 1.234.567,89 EUR`,
    () => `uuid ${randomUuid()}`,
    () => `ratio 3:2 and 16:9`,
  ])();
for (let i = 0; i < 200; i++) add('gen-ip', IP_NEG());

// secrets
const key = {
  openai: (): string => `sk-${pick(['proj-', '', 'svcacct-', 'admin-'])}${randomKey(int(40, 90), ALNUM + '_-')}`,
  anthropic: (): string => `sk-ant-api03-${randomKey(int(80, 95), ALNUM + '_-')}`,
  github: (): string => pick([`ghp_${randomKey(36)}`, `gho_${randomKey(36)}`, `github_pat_${randomKey(22)}_${randomKey(59)}`]),
  slack: (): string => `xoxb-${digits(12)}-${digits(12)}-${randomKey(24)}`,
  stripe: (): string => `${pick(['sk', 'rk', 'pk'])}_${pick(['live', 'test'])}_${randomKey(int(24, 99))}`,
  google: (): string => `AIza${randomKey(35, ALNUM + '_-')}`,
  awsId: (): string => `AKIA${randomKey(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', false)}`,
  awsSecret: (): string => randomKey(40, ALNUM + '/+'),
};
function jwtToken(): string {
  const b = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' })}.${b({ sub: digits(8), name: pick(FIRST), iat: int(1600000000, 1800000000) })}.${randomKey(43, ALNUM + '_-')}`;
}
function wrap(v: string, width: number): string {
  const parts: string[] = [];
  for (let i = 0; i < v.length; i += width) parts.push(v.slice(i, i + width));
  return parts.join('\n');
}
const SECRET_TEMPLATES = ['export KEY="{}"', 'Authorization: Bearer {}', '{"api_key": "{}"}', 'my key is {}', 'token={}&x=1', 'KEY={}'];
const detFor: Record<string, string> = { openai: 'openai_key', anthropic: 'anthropic_key', github: 'github_token', slack: 'slack_token', stripe: 'stripe_key', google: 'google_api_key' };
for (let i = 0; i < 240; i++) {
  const kind = pick(Object.keys(detFor));
  const v = key[kind as keyof typeof key]();
  if (int(0, 5) === 0 && v.length > 50) {
    // Hard-wrapped at a fixed column on its own lines.
    const w = wrap(v, int(30, 48));
    add('gen-secrets', ...one(detFor[kind], `key:\n${w}\nthanks`, w));
  } else {
    add('gen-secrets', ...one(detFor[kind], fill(pick(SECRET_TEMPLATES), v), v));
  }
}
for (let i = 0; i < 60; i++) {
  const t = jwtToken();
  if (int(0, 3) === 0) {
    const w = wrap(t, 64);
    add('gen-secrets', ...one('jwt', `Authorization: Bearer\n${w}\n`, w));
  } else add('gen-secrets', ...one('jwt', fill(pick(SECRET_TEMPLATES), t), t));
}
for (let i = 0; i < 60; i++) {
  const id = key.awsId();
  const sec = key.awsSecret();
  const r = int(0, 3);
  if (r === 0) {
    const pad = ' '.repeat(int(0, 80));
    add('gen-secrets', `$ aws iam create-access-key --user-name ${pick(FIRST)}\n{\n    "AccessKey": {\n        "UserName": "x",\n        "Status": "Active",\n${pad}"CreateDate": "2015-03-09",\n        "AccessKeyId": "${id}",\n "SecretAccessKey": "${sec}"\n    }\n}`, { aws_access_key: [id], aws_secret_key: [sec] });
  } else if (r === 1) add('gen-secrets', `[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${sec}\n`, { aws_access_key: [id], aws_secret_key: [sec] });
  else if (r === 2) add('gen-secrets', `AWS_ACCESS_KEY_ID=${id} AWS_SECRET_ACCESS_KEY=${sec} aws s3 ls`, { aws_access_key: [id], aws_secret_key: [sec] });
  else add('gen-secrets', ...one('aws_access_key', `access key ${id}`, id));
}
for (let i = 0; i < 12; i++) {
  const body = wrap(Buffer.from(randomKey(200)).toString('base64'), 64);
  const kind = pick(['RSA ', 'EC ', 'OPENSSH ', 'ENCRYPTED ', '']);
  const fixed = `-----BEGIN ${kind}PRIVATE KEY-----\n${body}\n-----END ${kind}PRIVATE KEY-----`;
  add('gen-secrets', ...one('private_key', `key file:\n${fixed}\n`, fixed));
}
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const SECRET_NEG = (): string =>
  pick([
    () => `commit ${hex(40)} near aws`,
    () => `sha256 ${hex(64)}`,
    () => `uuid ${randomUuid()}`,
    () => `pip install scikit-learn # sk-learn is not a key`,
    () => `sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx placeholder`,
    () => `-----BEGIN PUBLIC KEY-----\n${wrap(Buffer.from(randomKey(120)).toString('base64'), 64)}\n-----END PUBLIC KEY-----`,
    () => `integrity sha512-${Buffer.from(hex(64), 'hex').toString('base64')}`,
    () => `the AKIA prefix marks AWS access keys`,
    () => `charge ch_${randomKey(24)} refunded`,
    () => `eyJ is how base64 JSON starts`,
    () => `xoxb- tokens are Slack bot tokens`,
    () => `image ${Buffer.from(Array.from({ length: 60 }, () => int(128, 255))).toString('base64')}`,
    () => `The configuration management\nimplementation of our aws\ndeployment pipeline works.`,
    () => `path /usr/local/lib/node_modules/typescript/lib/tsserver.js aws`,
  ])();
for (let i = 0; i < 200; i++) add('gen-secrets', SECRET_NEG());

// encoded values
for (let i = 0; i < 120; i++) {
  const r = int(0, 4);
  let det: string;
  let v: string;
  if (r === 0) [det, v] = ['email', email()];
  else if (r === 1) [det, v] = ['phone', `+1 ${int(2, 9)}${digits(2)} ${int(2, 9)}${digits(2)} ${digits(4)}`];
  else if (r === 2) [det, v] = ['credit_card', groupCard(card(), ' ')];
  else if (r === 3) [det, v] = ['ssn', ssn().join('-')];
  else [det, v] = ['iban', iban()];
  const plain = `${pick(['contact', 'my details:', 'record', 'note'])} ${v} ${pick(['thanks', 'ok', 'bye', 'regards'])}`;
  const enc = int(0, 1) === 0 ? Buffer.from(plain).toString('base64') : Buffer.from(plain).toString('base64url');
  add('gen-encoded', ...one(det, `payload ${enc} end`, enc));
}
for (let i = 0; i < 60; i++) {
  const plain = pick(['hello world from the team', 'the quarterly report is attached', 'version 2.1.0 released on 2024-05-06', 'order 100234 shipped today', 'see you at 10:30 tomorrow', 'lorem ipsum dolor sit amet consectetur']);
  add('gen-encoded', `payload ${Buffer.from(plain + ' ' + pick(FIRST)).toString('base64')} end`);
}
for (let i = 0; i < 30; i++) add('gen-encoded', `progress 100%25 and ${int(1, 99)}% off, path=%2Fhome%2Fuser%2Fdocs`);

// mixed documents
for (let i = 0; i < 80; i++) {
  const e = email();
  const p = `(${int(2, 9)}${digits(2)}) ${int(2, 9)}${digits(2)}-${digits(4)}`;
  const c = groupCard(card(), ' ');
  const ip = `${octet()}.${int(0, 255)}.${int(0, 255)}.${octet()}`;
  const order = digits(8, '123456789');
  add(
    'gen-mixed',
    `Ticket #${order} (v2.3.1) opened ${int(2020, 2026)}-0${int(1, 9)}-1${int(0, 9)} 10:${int(10, 59)}:00 UTC\nCustomer: ${pick(FIRST)} ${pick(LAST)} <${e}>\nPhone ${p}, card on file ${c}\nLogin from ${ip}; refund $${int(10, 999)}.${digits(2)} approved.`,
    { email: [e], phone: [p], credit_card: [c], ipv4: [ip] },
  );
}
for (let i = 0; i < 40; i++) {
  add('gen-mixed', `Release notes ${int(1, 9)}.${int(0, 9)}.${int(0, 9)}: fixed #${digits(5, '123456789')}, bumped lodash to 4.17.${int(10, 21)}, build ${hex(7)} on ${int(2020, 2026)}-0${int(1, 9)}-2${int(0, 8)}.`);
}

for (const [name, lines] of Object.entries(files)) {
  writeFileSync(new URL(`./${name}.jsonl`, import.meta.url), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  console.log(name, lines.length);
}
