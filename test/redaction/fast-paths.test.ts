// The redaction hot path's shortcuts against their reference: the JWT gate's 'eyJ' search, objects copied only
// from their first change, and the example bundle's rules on a clean and a dirty chat body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { includesEyJ } from '../../service/redaction/detectors.ts';
import { compileRedactor } from '../../service/redaction/index.ts';
import { RedactorCache } from '../../service/redaction/redactor.ts';
import { redactionPort } from '../../service/gateway/adapters.ts';

test("includesEyJ agrees with includes('eyJ')", () => {
  const fixed = ['', 'e', 'ey', 'eyJ', 'J', 'yJ', 'eJ', 'xeyJ', 'eyJhbGciOi', 'JJeyJ', 'eyj', 'EYJ', 'e yJ', 'eyJ'.repeat(3), 'ééyJ', '\u{1F600}eyJ'];
  for (const s of fixed) assert.equal(includesEyJ(s), s.includes('eyJ'), JSON.stringify(s));
  let seed = 7;
  const alphabet = 'eyJjY. é';
  for (let i = 0; i < 5000; i++) {
    let s = '';
    const n = i % 12;
    for (let k = 0; k < n; k++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      s += alphabet[seed % alphabet.length];
    }
    assert.equal(includesEyJ(s), s.includes('eyJ'), JSON.stringify(s));
  }
});

test('a JWT in prose is still found (the gate opens on it)', () => {
  const r = compileRedactor([{ source: 't/jwt', detectors: ['jwt'], action: 'mask', responses: false }]);
  const token = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
  const body = { messages: [{ role: 'user', content: `every evening the token ${token} expired.` }] };
  r.redactRequest(body);
  assert.equal((body.messages[0] as { content: string }).content, 'every evening the token [JWT_1] expired.');
});

test('objects are copied from their first change only: keys keep their order and unchanged values', () => {
  const r = compileRedactor([{ source: 't/pii', detectors: ['email'], action: 'mask', responses: false }]);
  const inner = { a: 'clean', b: 'mail jane@example.com', 'bob@example.org': 'key', d: 4, e: ['x'] };
  const body = { model: 'm', meta: inner, tail: 'plain' };
  const res = r.redactRequest(body);
  const out = body.meta as Record<string, unknown>;
  assert.notEqual(out, inner, 'changed objects are copies');
  assert.deepEqual(Object.keys(out), ['a', 'b', '[EMAIL_2]', 'd', 'e']);
  assert.deepEqual(out, { a: 'clean', b: 'mail [EMAIL_1]', '[EMAIL_2]': 'key', d: 4, e: ['x'] });
  assert.equal(out.e, inner.e, 'unchanged values are shared');
  assert.equal(inner.b, 'mail jane@example.com', 'the original is not modified');
  assert.equal(res.report.total, 2);
});

test("the example bundle's rules through the port: clean body untouched, dirty body masked, output filter works", () => {
  const port = redactionPort(new RedactorCache({ secret: 'test-secret-0123456789abcdef' }));
  const rules = [
    { source: 'dp/mask-pii', detectors: ['pii'], action: 'mask' as const, responses: false },
    { source: 'dp/mask-secrets', detectors: ['secrets'], action: 'mask' as const, responses: true },
    { source: 'dp/acme-codenames', detectors: ['acme_codenames'], action: 'mask' as const, responses: true },
  ];
  const custom = [{ name: 'acme_codenames', keywords: ['bluebird', 'nightjar'], caseInsensitive: true }];
  const clean = { model: 'm', messages: [{ role: 'system', content: 'Be precise.' }, { role: 'user', content: 'Summarise the notes. '.repeat(20) }] };
  const cleanCopy = structuredClone(clean);
  const a = port.redactRequest(clean, rules, custom, 'acme');
  assert.deepEqual(clean, cleanCopy);
  assert.deepEqual(a.report, []);
  assert.ok(a.output, 'secrets and keywords also apply to responses');
  assert.equal(a.output.text('Project Bluebird uses key AKIAIOSFODNN7EXAMPLE'), 'Project [ACME_CODENAMES_1] uses key [AWS_ACCESS_KEY_1]');
  assert.deepEqual(
    a.output.report().map((r) => [r.detector, r.count, r.locations]),
    [
      ['acme_codenames', 1, ['response']],
      ['aws_access_key', 1, ['response']],
    ],
  );

  const dirty = { model: 'm', messages: [{ role: 'user', content: 'Mail jane@example.com about Nightjar.' }] };
  const b = port.redactRequest(dirty, rules, custom, 'acme');
  assert.equal(dirty.messages[0]!.content, 'Mail [EMAIL_1] about [ACME_CODENAMES_1].');
  assert.deepEqual(
    b.report.map((r) => [r.detector, r.action, r.count, r.locations]),
    [
      ['email', 'mask', 1, ['messages[0].content']],
      ['acme_codenames', 'mask', 1, ['messages[0].content']],
    ],
  );
});
