// The scanner's shortcuts (digit gate, base64-run gate, keyword gate, single-pass literal checks) against the
// reference path that runs every detector and pass on every string: same findings, same redacted bodies, same
// reports, over the detector corpus, digit-free variants of it, and generated strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { BUILTIN_DETECTORS, Scanner, compileRedactor, type Detector, type Finding } from '../../service/redaction/index.ts';
import { compileCustomDetector } from '../../service/redaction/custom.ts';
import { includesAwsKeyPrefix } from '../../service/redaction/detectors.ts';
import { hasB64Run, hasDigit } from '../../service/redaction/scan.ts';
import { isEnumValue } from '../../service/redaction/redactor.ts';

const dir = new URL('./corpus/', import.meta.url);
const corpus: string[] = [];
for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
  for (const l of readFileSync(new URL(f, dir), 'utf8').split('\n')) {
    if (l.trim() !== '') corpus.push((JSON.parse(l) as { text: string }).text);
  }
}

// Digit-free matches for the detectors that do not need a digit (their shortcuts must not skip them).
const DIGIT_FREE = [
  'token eyJhbGciOiJhIiwidHlwIjoiSFMifQ.eyJzdWJqZWNzaW.SflKxwRJSMeKKFQTfwpMeJfPOkyJVadQssw here',
  'key AKIAABCDEFGHIJKLMNOP and ASIAQWERTYUIOPASDFGH, ABIAZZZZZZZZZZZZZZZZ ACCAXXXXXXXXXXXXXXXX',
  'google AIzaSyDaGmWKaabcdefghijklmnopqrstuvwxy_ ok',
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG\n-----END PRIVATE KEY-----',
  'write to jane.doe@example.com or jörg@bücher.de',
  'the Bluebird launch and NIGHTJAR review, plus bluebirds (not a keyword) and blue bird',
  'ﾠbluebird with a Kelvin sign: \u212Aite, \u017Fecret Acme Corp and acme.corp, ÄRGER Ärger',
  `note ${Buffer.from('contact jane.doe@example.com please').toString('base64')} end`,
  `wrapped sk-proj-ogFhLwHiGLCnBGoDV0MG_7awidCW0W7DwVWmtKqc5d43Q\nVkFGz9lriPuvyPTT-9dKW5eddkckvSj6X4NCq ok`,
  'AKIA\nABCDEFGHIJKLMNOP',
  'a BLUEBIRD flew',
  'NIGHTJAR',
];

/** The corpus, each line also with its ASCII digits turned into letters (lower and upper case). */
function inputs(): string[] {
  const out = [...DIGIT_FREE];
  for (const t of corpus) {
    out.push(t, t.replace(/\d/g, (d) => 'abcdefghij'[Number(d)]), t.replace(/\d/g, (d) => 'ABCDEFGHIJ'[Number(d)]));
  }
  return out;
}

const CUSTOM = [
  { name: 'codename', keywords: ['bluebird', 'nightjar'], caseInsensitive: true },
  { name: 'exact_words', keywords: ['Acme Corp', 'acme.corp', 'Ärger'] },
  { name: 'uni_ci', keywords: ['kite', 'straße'], caseInsensitive: true },
  { name: 'emp', regex: 'EMP-[0-9]{6}' },
];

function detectors(): Detector[] {
  return [...BUILTIN_DETECTORS, ...CUSTOM.map((c) => compileCustomDetector(c))];
}

const show = (fs: Finding[]): string =>
  JSON.stringify(fs.map((f) => [f.start, f.end, f.detector.name, f.members.map((m) => m.name).sort()]));

test('scan with shortcuts finds exactly what the reference path finds (corpus, digit-free variants, keywords)', () => {
  const ds = detectors();
  const fast = new Scanner(ds);
  const ref = new Scanner(ds, { prefilter: false });
  let found = 0;
  for (const t of inputs()) {
    const a = show(fast.scan(t));
    assert.equal(a, show(ref.scan(t)), JSON.stringify(t));
    if (a !== '[]') found++;
  }
  assert.ok(found > 1000, `the inputs exercise the detectors (${found} strings with findings)`);
  // Each detector alone too, so a merged span can't hide one detector's skip behind another's match.
  for (const d of ds) {
    const f1 = new Scanner([d]);
    const r1 = new Scanner([d], { prefilter: false });
    for (const t of inputs()) assert.equal(show(f1.scan(t)), show(r1.scan(t)), `${d.name}: ${JSON.stringify(t)}`);
  }
});

test('every match of a detector marked needsDigit holds an ASCII digit', () => {
  const spans: { start: number; end: number }[] = [];
  for (const d of BUILTIN_DETECTORS.filter((x) => x.needsDigit === true)) {
    for (const t of inputs()) {
      spans.length = 0;
      d.find(t, spans);
      for (const s of spans) assert.match(t.slice(s.start, s.end), /[0-9]/, `${d.name} matched ${JSON.stringify(t.slice(s.start, s.end))}`);
    }
  }
});

/** Deterministic pseudo-random strings over `alphabet`, lengths 0..maxLen. */
function* randomStrings(alphabet: string, count: number, maxLen: number, seed = 11): Generator<string> {
  const chars = [...alphabet];
  let x = seed;
  const next = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < count; i++) {
    let s = '';
    const n = next() % (maxLen + 1);
    for (let k = 0; k < n; k++) s += chars[next() % chars.length];
    yield s;
  }
}

test('hasDigit agrees with /\\d/', () => {
  for (const s of randomStrings('ab 09٤५𝟒x\n', 20000, 30)) assert.equal(hasDigit(s), /\d/.test(s), JSON.stringify(s));
  for (const t of inputs()) assert.equal(hasDigit(t), /\d/.test(t));
});

test('hasB64Run agrees with a regex for 24 base64 characters in a row', () => {
  const ref = /[A-Za-z0-9+/_-]{24}/;
  // Mostly base64 characters, so runs of every length around 24 occur and end on every kind of character.
  for (const s of randomStrings('aZ9+/_-aZ9+/_-aZ9+/_-aZ9+/_- .=\né', 60000, 90)) assert.equal(hasB64Run(s), ref.test(s), JSON.stringify(s));
  for (let n = 0; n < 60; n++) {
    for (let at = 0; at < 30; at++) {
      const s = `${' '.repeat(at)}${'A'.repeat(n)} x`;
      assert.equal(hasB64Run(s), ref.test(s), `run of ${n} at ${at}`);
    }
  }
  for (const t of inputs()) assert.equal(hasB64Run(t), ref.test(t));
});

test("includesAwsKeyPrefix agrees with includes('AKIA' | 'ASIA' | 'ABIA' | 'ACCA')", () => {
  const ref = (t: string): boolean => t.includes('AKIA') || t.includes('ASIA') || t.includes('ABIA') || t.includes('ACCA');
  for (const s of randomStrings('AKISBCa ', 40000, 12)) assert.equal(includesAwsKeyPrefix(s), ref(s), JSON.stringify(s));
  for (const t of inputs()) assert.equal(includesAwsKeyPrefix(t), ref(t));
});

test('isEnumValue agrees with /^[a-z_]{1,40}$/', () => {
  const ref = /^[a-z_]{1,40}$/;
  for (const s of randomStrings('az_Z0 -\n', 20000, 45)) assert.equal(isEnumValue(s), ref.test(s), JSON.stringify(s));
  for (const s of ['', 'user', 'assistant', 'tool_call', 'a'.repeat(40), 'a'.repeat(41), 'user\n', 'User']) {
    assert.equal(isEnumValue(s), ref.test(s), JSON.stringify(s));
  }
});

test('redactRequest with shortcuts gives the reference bodies and reports byte for byte', () => {
  const rules = [
    { source: 'dp/mask-pii', detectors: ['pii'], action: 'mask' as const, responses: false },
    { source: 'dp/mask-secrets', detectors: ['secrets'], action: 'mask' as const, responses: true },
    { source: 'dp/codes', detectors: ['codename', 'exact_words', 'uni_ci', 'emp'], action: 'mask' as const, responses: true },
  ];
  const fast = compileRedactor(rules, CUSTOM);
  const ref = compileRedactor(rules, CUSTOM, { prefilter: false });
  const all = inputs();
  for (let i = 0; i < all.length; i += 3) {
    const body = (): Record<string, unknown> => ({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: all[i] },
        { role: 'user', content: [{ type: 'text', text: all[i + 1] ?? 'plain' }] },
        { role: 'assistant', content: all[i + 2] ?? 'plain', tool_calls: [{ type: 'function', function: { name: 'f', arguments: JSON.stringify({ note: all[i] }) } }] },
      ],
      max_tokens: 256,
      temperature: 0.2,
    });
    const a = body();
    const b = body();
    const ra = fast.redactRequest(a);
    const rb = ref.redactRequest(b);
    assert.equal(JSON.stringify(a), JSON.stringify(b), `body ${i}`);
    assert.equal(JSON.stringify(ra.report), JSON.stringify(rb.report), `report ${i}`);
    const out = 'reply with AKIAABCDEFGHIJKLMNOP and Bluebird';
    assert.equal(ra.output?.text(out), rb.output?.text(out));
  }
});
