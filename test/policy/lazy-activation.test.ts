// The lazily built activation (service/policy/activation.ts) must hold exactly what the eager build
// did: every variable's Map, every single field the fast path reads, candidate models, and the
// snapshot taken when evaluation starts (transforms and the gateway mutate the body afterwards).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyActivation } from '../../service/policy/activation.ts';
import { candidateActivation } from '../../service/policy/candidates.ts';
import { baseActivation, policyHeaders, sampleInputs } from '../../service/policy/context.ts';
import type { PolicyInput } from '../../service/policy/types.ts';
import { compile, input } from './helpers.ts';
import { eagerActivation } from './eager-activation.ts';

const ROOTS = ['request', 'principal', 'tenant', 'team', 'mcp'] as const;

function inputs(): PolicyInput[] {
  return [
    ...sampleInputs(new Date('2025-03-30T00:30:00Z')),
    input({ body: JSON.parse('{"model":"m","messages":[],"constructor":{"x":1},"n":null,"t":[1,{"a":null}]}') }),
    input({ principal: { groups: ['a', 3 as unknown as string], claims: { sub: 'u', nested: { k: [1, 2] } }, authMethod: 'jwt' } }),
  ];
}

describe('lazy activation = eager activation', () => {
  for (const withBody of [true, false]) {
    it(`every variable's Map and every field (withBody ${withBody})`, () => {
      for (const inp of inputs()) {
        const eager = eagerActivation(inp, withBody);
        // Fields first on a fresh activation (the fast path's order), then the whole Maps.
        const lazy = baseActivation(inp, withBody);
        for (const root of ROOTS) {
          const m = eager[root] as Map<string, unknown>;
          for (const [k, v] of m) assert.deepStrictEqual(lazy.field(root, k), v, `${root}.${k}`);
          if (!withBody) assert.equal(lazy.field('request', 'body'), undefined);
        }
        for (const root of ROOTS) assert.deepStrictEqual(lazy[root], eager[root], root);
        assert.deepStrictEqual(lazy.now, eager.now);
        assert.equal(lazy['@nowMs'], eager['@nowMs']);
        // A field read after the whole Map is the very value the Map holds.
        assert.equal(lazy.field('request', 'headers'), (lazy.request as Map<string, unknown>).get('headers'));
      }
    });
  }

  it('a candidate model: the same request Map as the eager copy, model fields replaced', () => {
    for (const inp of inputs()) {
      const eager = candidateActivation(eagerActivation(inp), 'claude-x', 'claude-canonical');
      const lazy = candidateActivation(baseActivation(inp), 'claude-x', 'claude-canonical');
      assert.ok(lazy instanceof LazyActivation);
      assert.deepStrictEqual(lazy.request, eager.request);
      assert.equal(lazy.field('request', 'model'), 'claude-x');
      assert.equal(lazy.field('request', 'canonicalModel'), 'claude-canonical');
      for (const root of ['principal', 'tenant', 'team'] as const) assert.deepStrictEqual(lazy[root], eager[root]);
    }
  });

  it('params and body are read as they were when evaluation started, not after a later mutation', () => {
    const inp = input({ body: { model: 'gpt-4o-mini', messages: [], temperature: 0.9, metadata: { p: 'a' } } });
    const lazy = baseActivation(inp);
    (inp.request.params.metadata as Record<string, unknown>).p = 'changed';
    inp.request.params.temperature = 0.1;
    inp.request.body.temperature = 0.1;
    const params = lazy.field('request', 'params') as Map<string, unknown>;
    assert.equal(params.get('temperature'), 0.9);
    assert.equal((params.get('metadata') as Map<string, unknown>).get('p'), 'a');
    assert.equal(((lazy.request as Map<string, unknown>).get('body') as Map<string, unknown>).get('temperature'), 0.9);
  });

  it('a transform does not change what a later rule reads (decision as before the lazy activation)', () => {
    const b = compile(`  rules:
    - name: cool
      transform: {set: {temperature: 0.1}}
    - name: was-hot
      when: request.params.temperature == 0.9
      transform: {set: {top_p: 0.5}}
    - name: hot-label
      label: {t: string(request.params.temperature)}
`);
    const inp = input({ body: { model: 'gpt-4o-mini', messages: [], temperature: 0.9 } });
    const d = b.evaluate(inp);
    assert.deepEqual(d.transforms, ['p/cool', 'p/was-hot']);
    assert.deepEqual(d.labels, { t: '0.9' });
    assert.equal(inp.request.body.temperature, 0.1);
  });
});

describe('policyHeaders', () => {
  it('a header Map gives what the equivalent object gives', () => {
    const pairs: [string, string][] = [[':path', '/x'], ['User-Agent', 'ua'], ['authorization', 'Bearer s'], ['X-Tollgate-Tenant', 'evil'], ['x-request-id', 'r'], ['Cookie', 'c'], ['x-api-key', 'k']];
    assert.deepEqual(policyHeaders(new Map(pairs)), policyHeaders(Object.fromEntries(pairs)));
    assert.deepEqual(policyHeaders(new Map(pairs)), { 'user-agent': 'ua', 'x-request-id': 'r' });
  });
});
