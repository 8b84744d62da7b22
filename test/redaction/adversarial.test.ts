// Hostile inputs finish (bounded by the test timeout, no timing assertions) and never crash or pass silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../service/errors.ts';
import { BUILTIN_DETECTORS, MAX_REPORTED_FINDINGS, Scanner, compileRedactor } from '../../service/redaction/index.ts';

const ALL = [{ source: 'adv/all', detectors: ['*', 'evil'], action: 'mask' as const, responses: true }];

test('a policy regex shaped for catastrophic backtracking runs on RE2 and finishes', { timeout: 20_000 }, () => {
  const r = compileRedactor(ALL, [{ name: 'evil', regex: '(a+)+$' }]);
  const text = 'a'.repeat(100_000) + '!';
  const { body, report } = r.redactRequest({ model: 'm', messages: [{ role: 'user', content: text }] });
  assert.equal((body.messages as { content: string }[])[0].content, text, 'no match: the text ends with "!"');
  assert.equal(report.total, 0);
  // And it does match where it should.
  const hit = r.redactRequest({ model: 'm', input: 'xx aaaa' });
  assert.equal(hit.body.input, 'xx [EVIL_1]');
  const out = r.outputTransform()!.stream();
  let s = '';
  for (let i = 0; i < 2000; i++) s += out.push('a');
  s += out.push('!') + out.end();
  assert.equal(s, 'a'.repeat(2000) + '!');
});

const adversarialTexts: [string, () => string][] = [
  ['1 MB of prose with PII', () => ('Call 415-555-2671 or mail a.b@example.com about card 4111 1111 1111 1111. ').repeat(14_000)],
  ['1 MB of digits', () => '7'.repeat(1_000_000)],
  ['1 MB of digit groups', () => '1234 '.repeat(200_000)],
  ['1 MB of @ and dots', () => 'a@b.'.repeat(250_000)],
  ['1 MB of hex and colons', () => 'ab:'.repeat(333_334)],
  ['1 MB of base64-ish token characters', () => 'eyJhbGciOiJIUzI1NiJ9.'.repeat(50_000)],
  ['1 MB of PEM headers without END', () => '-----BEGIN PRIVATE KEY-----\n'.repeat(36_000)],
  ['1 MB of one long word', () => 'a'.repeat(1_000_000)],
  ['1 MB of sk- prefixes', () => 'sk-'.repeat(333_334)],
  ['1 MB of IBAN heads', () => 'DE89 '.repeat(200_000)],
  ['1 MB of zero-width joiners and full-width digits', () => '\u200b４'.repeat(500_000)],
  // Patterns added for issue #11 item 16: each new pass or pattern gets its worst case.
  ['1 MB of AWS words (each opens a keyword window)', () => 'aws '.repeat(250_000)],
  ['1 MB of AWS words between 40-char base64 runs', () => ('aws ' + 'Ab1/'.repeat(10) + ' ').repeat(22_300)],
  ['1 MB of hard-wrapped token lines', () => ('sk-' + 'aB3'.repeat(20) + '\n').repeat(15_900)],
  ['1 MB of growing wrapped lines', () => Array.from({ length: 2800 }, (_, i) => 'x'.repeat(20 + (i % 700))).join('\n')],
  ['1 MB of base64 lines that decode to text', () => (Buffer.from('mail a.b@example.com now').toString('base64') + '\n').repeat(31_000)],
  ['1 MB of one base64 run of text', () => Buffer.from('call 415-555-2671 '.repeat(42_000)).toString('base64')],
  ['1 MB of one base64 run of binary', () => Buffer.alloc(750_000, 0xfe).toString('base64')],
  ['1 MB of percent-escapes', () => '%41%40%2e'.repeat(111_112)],
  ['1 MB of broken UTF-8 percent-escapes', () => '%C3%E2%82'.repeat(111_112)],
  ['1 MB of IDN at-signs', () => 'ü@ü.'.repeat(250_000)],
  ['1 MB of Arabic-Indic digit groups', () => '١٢٣٤ '.repeat(200_000)],
  ['1 MB of mathematical bold digits', () => '𝟒'.repeat(500_000)],
  ['1 MB of slashed digit groups', () => '030/1 '.repeat(170_000)],
  ['1 MB of IBAN heads with line breaks', () => 'DE89\n'.repeat(200_000)],
  ['1 MB of non-English phone words and digits', () => 'Telefon 1 '.repeat(100_000)],
];

for (const [name, make] of adversarialTexts) {
  test(`1 MB adversarial text finishes without an exception: ${name}`, { timeout: 60_000 }, () => {
    const text = make();
    assert.ok(text.length >= 999_000);
    const r = compileRedactor(ALL, [{ name: 'evil', regex: '(a+)+$' }]);
    const res = r.redactRequest({ model: 'm', messages: [{ role: 'user', content: text }] });
    assert.equal(typeof (res.body.messages as { content: unknown }[])[0].content, 'string');
    assert.ok(res.report.findings.length <= MAX_REPORTED_FINDINGS);
    const s = res.output!.stream();
    for (let i = 0; i < 100_000; i += 4096) s.push(text.slice(i, i + 4096));
    s.end();
  });
}

test('many findings: counts stay exact, the findings list is capped', () => {
  const r = compileRedactor(ALL, [{ name: 'evil', regex: 'zzz' }]);
  const text = Array.from({ length: 3000 }, (_, i) => `u${i}@example.com`).join(' ');
  const { report, body } = r.redactRequest({ model: 'm', input: text });
  assert.equal(report.counts.email, 3000);
  assert.equal(report.findings.length, MAX_REPORTED_FINDINGS);
  assert.equal(report.truncated, true);
  assert.ok(!String(body.input).includes('@'));
});

test('a body nested deeper than the limit is rejected, not walked into a stack overflow', () => {
  const r = compileRedactor(ALL, [{ name: 'evil', regex: 'zzz' }]);
  let deep: unknown = 'a@b.com';
  for (let i = 0; i < 5000; i++) deep = [deep];
  assert.throws(
    () => r.redactRequest({ model: 'm', metadata: deep }),
    (e: unknown) => e instanceof GatewayError && e.kind === 'invalid_request' && e.code === 'body_too_deep',
  );
  // JSON nested inside strings counts too.
  const inner = '['.repeat(5000) + '"x@y.com"' + ']'.repeat(5000);
  assert.throws(
    () => r.redactRequest({ model: 'm', messages: [{ role: 'tool', content: inner }] }),
    (e: unknown) => e instanceof GatewayError && e.code === 'body_too_deep',
  );
});

test('every built-in detector on every adversarial text stays linear enough to finish', { timeout: 60_000 }, () => {
  const scanner = new Scanner(BUILTIN_DETECTORS);
  for (const [, make] of adversarialTexts) scanner.scan(make().slice(0, 300_000));
});
