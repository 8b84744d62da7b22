// Streaming: surrogates and PII split across SSE chunks (down to one character per chunk) are handled whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRedactor, Restorer, type TextStream } from '../../service/redaction/index.ts';

function feed(stream: TextStream, chunks: string[]): { out: string; pieces: string[] } {
  const pieces = chunks.map((c) => stream.push(c));
  pieces.push(stream.end());
  return { out: pieces.join(''), pieces };
}
const bytes = (s: string): string[] => [...s];
function randomChunks(s: string, seed: number): string[] {
  let x = seed;
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (x % 13);
    out.push(s.slice(i, i + n));
    i += n;
  }
  return out;
}

test('restorer: a surrogate split across chunks fed one character at a time is restored', () => {
  const r = new Restorer();
  r.add('EMAIL_7F3KQ9PX', 'jane@corp.com');
  r.add('PHONE_AB12CD34', '+1 415 555 2671');
  const text = 'Hi EMAIL_7F3KQ9PX, call PHONE_AB12CD34. EMAIL_ not a surrogate, EMAIL_7F3KQ9P neither; EMAIL_7F3KQ9PX';
  const expected = 'Hi jane@corp.com, call +1 415 555 2671. EMAIL_ not a surrogate, EMAIL_7F3KQ9P neither; jane@corp.com';
  assert.equal(r.restoreText(text), expected);
  assert.equal(feed(r.stream(), bytes(text)).out, expected);
  for (let seed = 1; seed < 30; seed++) assert.equal(feed(r.stream(), randomChunks(text, seed)).out, expected);
});

test('restorer: holds back only what could still become a surrogate', () => {
  const r = new Restorer();
  r.add('EMAIL_7F3KQ9PX', 'jane@corp.com');
  const s = r.stream();
  assert.equal(s.push('Hello there '), 'Hello there ');
  assert.equal(s.push('EMA'), '');
  assert.equal(s.push('IL_7F3'), '');
  assert.equal(s.push('KQ9PX!'), 'jane@corp.com!');
  assert.equal(s.push('EMAX'), 'EMAX');
  assert.equal(s.end(), '');
});

test('pseudonymize end to end: request surrogates restored in a byte-by-byte streamed response', () => {
  const red = compileRedactor([{ source: 'p', detectors: ['email', 'credit_card'], action: 'pseudonymize', responses: false }]);
  const res = red.redactRequest({ model: 'm', messages: [{ role: 'user', content: 'Email jane@corp.com, card 4111 1111 1111 1111' }] });
  const sent = (res.body.messages as { content: string }[])[0].content;
  const [email, card] = sent.match(/[A-Z_]+_[0-9A-Z]{8}/g) ?? [];
  const reply = `Done: ${email} charged on ${card}.`;
  assert.equal(feed(res.output!.stream(), bytes(reply)).out, 'Done: jane@corp.com charged on 4111 1111 1111 1111.');
  assert.equal(feed(res.restorer!.stream(), bytes(reply)).out, 'Done: jane@corp.com charged on 4111 1111 1111 1111.');
});

const OUTPUT = [
  'Sure! Contact john.smith@example.com or call (415) 555-2671 / +44 20 7946 0958.',
  'Card 4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00 were on file; SSN 123-45-6789.',
  'Server 10.20.30.40 and 2001:db8::8a2e:370:7334 answered. Version 1.2.3.4 is fine.',
  'Key sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456 and AKIAIOSFODNN7EXAMPLE with aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.',
  'Token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U done.',
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyz\nabcDEF123\n-----END RSA PRIVATE KEY-----\nbye EMP-123456 on Project Falcon.',
].join('\n');

test('output redaction: streamed output equals whole-text output for every chunking', () => {
  const red = compileRedactor(
    [{ source: 'out', detectors: ['*', 'employee_id', 'codename'], action: 'mask', responses: true }],
    [
      { name: 'employee_id', regex: 'EMP-[0-9]{6}' },
      { name: 'codename', keywords: ['Project Falcon'] },
    ],
  );
  const whole = red.outputTransform()!.text(OUTPUT);
  for (const leaked of ['john.smith', '555-2671', '7946', '4111', '0532', '6789', '10.20.30.40', '2001:db8', 'sk-proj', 'AKIA', 'wJalr', 'eyJ', 'MIIE', 'EMP-', 'Falcon']) {
    assert.ok(!whole.includes(leaked), `${leaked} in ${whole}`);
  }
  assert.ok(whole.includes('Version 1.2.3.4 is fine.'));
  const transform = red.outputTransform()!;
  assert.equal(feed(transform.stream('choices[0].delta.content'), bytes(OUTPUT)).out, whole);
  for (let seed = 1; seed <= 40; seed++) {
    assert.equal(feed(red.outputTransform()!.stream(), randomChunks(OUTPUT, seed)).out, whole, `seed ${seed}`);
  }
  // Findings carry the channel and offsets into the model's output, never values.
  const f = transform.report().findings[0];
  assert.deepEqual([f.path, f.detector, OUTPUT.slice(f.start, f.end)], ['choices[0].delta.content', 'email', 'john.smith@example.com']);
});

test('output redaction: ordinary prose is released promptly, only the unfinished tail is held', () => {
  const s = compileRedactor([{ source: 'o', detectors: ['*'], action: 'mask', responses: true }]).outputTransform()!.stream();
  assert.equal(s.push('The weather is nice today. '), 'The weather is nice today. ');
  const a = s.push('Write to jane@exam');
  assert.ok(a.length > 0 && !a.includes('jane'));
  // "now." could still become "now.x@…", so only it waits.
  assert.equal(s.push('ple.com now.'), '[EMAIL_1] ');
  assert.equal(s.push(' Bye'), 'now. ');
  assert.equal(s.end(), 'Bye');
});

test('output redaction: an unterminated private key longer than the hold-back bound is suppressed, not leaked', () => {
  const s = compileRedactor([{ source: 'o', detectors: ['private_key'], action: 'mask', responses: true }]).outputTransform()!.stream();
  let out = s.push('here: -----BEGIN PRIVATE KEY-----\n');
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=\n';
  for (let i = 0; i < 1000; i++) out += s.push(line);
  out += s.push('-----END PRIVATE KEY-----\nafter');
  out += s.end();
  assert.ok(!out.includes('QUJD'), 'no key material released');
  assert.ok(out.startsWith('here: [PRIVATE_KEY_1]'));
  assert.ok(out.endsWith('\nafter'));
});
