// Hostile input cannot hang, crash or sneak past the engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '../../service/policy/index.ts';
import { compile, input } from './helpers.ts';

describe('regular expressions use RE2 semantics', () => {
  it('a catastrophic-backtracking pattern on a long prompt finishes (linear time) with the right answer', () => {
    // With a backtracking engine this pattern on 30k characters would not finish in our lifetime;
    // the test runner's timeout would fail the test.
    const b = compile(`  rules:
    - name: evil
      deny: {expression: "request.messages.exists(m, m.text.matches('^(a+)+$'))"}
`);
    const text = `${'a'.repeat(30_000)}!`;
    const d = b.evaluate(input({ body: { model: 'm', messages: [{ role: 'user', content: text }] } }));
    assert.equal(d.denied, undefined);
    const d2 = b.evaluate(input({ body: { model: 'm', messages: [{ role: 'user', content: 'a'.repeat(30_000) }] } }));
    assert.equal(d2.denied?.rule, 'p/evil');
  });
});

describe('comprehension work is bounded', () => {
  const spec = (onError: string) => `  rules:
    - name: quadratic
      onError: ${onError}
      deny:
        expression: "request.messages.exists(a, request.messages.exists(b, a.text == b.text && a.role != b.role))"
`;
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'user' : 'assistant', content: `m${i}` }));

  it('small inputs evaluate normally', () => {
    const d = compile(spec('deny')).evaluate(input({ body: { model: 'm', messages: many(20) } }));
    assert.equal(d.denied, undefined);
    assert.equal(d.rules[0]?.outcome, 'allow');
  });

  it(`past ${LIMITS.maxIterations} iterations the evaluation stops with an error and fails closed`, () => {
    const d = compile(spec('deny')).evaluate(input({ body: { model: 'm', messages: many(400) } }));
    assert.equal(d.denied?.reason, 'policy_error');
    assert.match(d.rules[0]?.message ?? '', /iteration limit of \d+ exceeded/);
  });

  it('with onError: skip the over-budget rule is skipped', () => {
    const d = compile(spec('skip')).evaluate(input({ body: { model: 'm', messages: many(400) } }));
    assert.equal(d.denied, undefined);
    assert.equal(d.rules[0]?.outcome, 'error');
  });

  it('the budget is per evaluation, not cumulative', () => {
    const b = compile(spec('deny'));
    for (let i = 0; i < 5; i++) assert.equal(b.evaluate(input({ body: { model: 'm', messages: many(150) } })).denied, undefined);
  });
});

describe('prototype keys and odd values', () => {
  const b = compile(`  rules:
    - name: proto
      onError: skip
      deny: {expression: "has(request.params.constructor) || has(request.params.__proto__) || has(request.params.toString)"}
`);
  it('inherited object properties are not visible as fields', () => {
    assert.equal(b.evaluate(input()).denied, undefined);
  });
  it('a real "constructor" key in the body is visible', () => {
    assert.equal(b.evaluate(input({ body: JSON.parse('{"model":"m","messages":[],"constructor":1}') })).denied?.rule, 'p/proto');
  });
  // Regression: @bufbuild/cel reads plain objects through `value.constructor.name`, so a client
  // key named "constructor" used to make params/headers/body unreadable, and every rule touching
  // them errored (a bypass for onError: skip rules).
  it('a client-sent "constructor" key or header cannot make rules error', () => {
    const b2 = compile(`  onError: skip
  rules:
    - name: header
      deny: {expression: "request.headers['x-team'] == 'blocked'"}
    - name: param
      deny: {expression: "request.params.temperature > 1.5"}
    - name: body
      deny: {expression: "request.body.temperature > 1.5"}
`);
    const hostile = input({
      headers: { 'x-team': 'blocked', constructor: 'x' },
      body: JSON.parse('{"model":"m","messages":[],"temperature":2,"constructor":{"name":"Object"},"__proto__":{"x":1}}'),
    });
    const d = b2.evaluate(hostile);
    assert.equal(d.denied?.rule, 'p/header');
    const noHeader = b2.evaluate(input({ headers: { 'x-team': 'ok', constructor: 'x' }, body: JSON.parse('{"model":"m","messages":[],"temperature":2,"constructor":1}') }));
    assert.equal(noHeader.denied?.rule, 'p/param');
    assert.ok(noHeader.rules.every((r) => r.outcome !== 'error'), JSON.stringify(noHeader.rules));
  });

  it('null, nested and non-string parameter values do not crash evaluation', () => {
    const b2 = compile(`  rules:
    - name: odd
      deny: {expression: "request.params.a == null && request.params.b.c[0] == 1.0 && request.params.d == 'x'"}
`);
    const d = b2.evaluate(input({ body: { model: 'm', messages: [], a: null, b: { c: [1] }, d: 'x' } }));
    assert.equal(d.denied?.rule, 'p/odd');
    const d2 = b2.evaluate(input({ body: { model: 'm', messages: [], a: null, b: 'not an object', d: 'x' } }));
    assert.equal(d2.denied?.reason, 'policy_error');
  });
  it('a malformed IP at run time fails closed', () => {
    const b3 = compile(`  rules:
    - name: office
      require: {expression: "cidrContains(['10.0.0.0/8'], request.headers['x-forwarded-for'])"}
`);
    assert.equal(b3.evaluate(input({ headers: { 'x-forwarded-for': '10.2.3.4' } })).denied, undefined);
    assert.equal(b3.evaluate(input({ headers: { 'x-forwarded-for': '8.8.8.8' } })).denied?.reason, 'policy_denied');
    assert.equal(b3.evaluate(input({ headers: { 'x-forwarded-for': 'not-an-ip' } })).denied?.reason, 'policy_error');
    assert.equal(b3.evaluate(input({ headers: {} })).denied?.reason, 'policy_error');
  });
});

describe('credentials are not visible to policies', () => {
  it('authorization, api keys, cookies and x-tollgate-* headers are stripped', () => {
    const b = compile(`  rules:
    - name: leak
      deny:
        expression: "['authorization', 'x-api-key', 'api-key', 'cookie', 'proxy-authorization', 'x-tollgate-cluster'].exists(h, h in request.headers)"
`);
    const d = b.evaluate(
      input({
        headers: { Authorization: 'Bearer sk-secret', 'X-Api-Key': 'k', 'api-key': 'k', cookie: 'c', 'proxy-authorization': 'p', 'x-tollgate-cluster': 'x', 'user-agent': 'ua' },
      }),
    );
    assert.equal(d.denied, undefined);
  });
});
