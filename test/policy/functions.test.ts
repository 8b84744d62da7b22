// Tollgate's CEL functions: glob and cidrContains.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, globMatch } from '../../service/policy/index.ts';
import { compile, input } from './helpers.ts';

describe('globMatch', () => {
  const cases: [string, string, boolean][] = [
    ['gpt-4o', 'gpt-4*', true],
    ['gpt-4', 'gpt-4*', true],
    ['gpt-3.5-turbo', 'gpt-4*', false],
    ['claude-3-opus-20240229', 'claude-3-opus*', true],
    ['llama-3.1-8b', 'llama-3.?-*', true],
    ['llama-30-8b', 'llama-3.?-*', false],
    ['a*b', 'a\\*b', true],
    ['axb', 'a\\*b', false],
    ['', '*', true],
    ['', '', true],
    ['x', '', false],
    ['abcabd', '*ab?', true],
    ['mississippi', 'm*iss*ppi', true],
    ['mississippi', 'm*iss*ppx', false],
  ];
  for (const [s, p, want] of cases) it(`${JSON.stringify(s)} ~ ${JSON.stringify(p)} → ${want}`, () => assert.equal(globMatch(s, p), want));

  it('many stars against a long non-matching string stay cheap (no exponential backtracking)', () => {
    assert.equal(globMatch('a'.repeat(20_000), '*a*a*a*a*a*a*a*a*b'), false);
  });
});

describe('cidrContains', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['192.168.1.0/24', '192.168.1.77', true],
    ['192.168.1.5', '192.168.1.5', true],
    ['0.0.0.0/0', '8.8.8.8', true],
    ['2001:db8::/32', '2001:db8:1::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::1/128', '::1', true],
    ['10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['10.0.0.0/8', '2001:db8::1', false],
    ['fe80::/10', 'fe80::1%eth0', true],
  ];
  for (const [c, ip, want] of cases) it(`${ip} in ${c} → ${want}`, () => assert.equal(cidrContains(c, ip), want));

  for (const [c, ip] of [
    ['10.0.0.0/33', '10.0.0.1'],
    ['10.0.0/8', '10.0.0.1'],
    ['10.0.0.0/8', '10.0.0.256'],
    ['10.0.0.0/8', 'example.com'],
    ['2001:db8::/32', '2001:db8:::1'],
  ] as const) {
    it(`rejects ${c} / ${ip}`, () => assert.throws(() => cidrContains(c, ip)));
  }
});

describe('functions inside policies', () => {
  it('glob as a function, a method and with a list of patterns', () => {
    const b = compile(`  rules:
    - name: r
      deny: {expression: "glob(request.model, 'gpt-4*') && request.model.glob('*o') && request.model.glob(['x*', 'gpt*'])"}
`);
    assert.equal(b.evaluate(input({ body: { model: 'gpt-4o', messages: [] } })).denied?.rule, 'p/r');
    assert.equal(b.evaluate(input({ body: { model: 'gpt-4', messages: [] } })).denied, undefined);
  });

  it('time helpers use the injected clock and a time zone', () => {
    const b = compile(`  rules:
    - name: weekend
      deny: {expression: "now.getDayOfWeek('America/Los_Angeles') in [0, 6]", message: closed on weekends}
`);
    // Saturday 03:00 UTC is still Friday in Los Angeles.
    assert.equal(b.evaluate(input({ now: new Date('2025-01-18T03:00:00Z') })).denied, undefined);
    assert.equal(b.evaluate(input({ now: new Date('2025-01-18T20:00:00Z') })).denied?.message, 'closed on weekends');
  });
});
