// route() with a per-model policy check: a `models` fallback (or an alias / wildcard match) is
// judged as if the request had named it, whatever knocked the primary out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { Router } from '../../service/routing/router.ts';
import type { ModelCheck, ModelCheckResult, PolicyDrop, RouteInput } from '../../service/routing/types.ts';
import { allowAll, dep, euOnly, model, PROVIDERS } from './fixtures.ts';

const MODELS = [
  model('llama', [dep('llama/vllm', 'vllm', { contextWindow: 1000 })]),
  model('gpt-4o', [dep('gpt-4o/openai', 'openai'), dep('gpt-4o/azure-eu', 'azure-eu', { region: 'eu-west-1', priority: 1 })], { aliases: ['smart'] }),
  model('claude', [dep('claude/anthropic', 'anthropic')]),
  model('premium/*', [dep('premium/openai', 'openai', { upstreamModel: '*' })]),
];

const router = () => new Router({ catalog: new Catalog(MODELS, PROVIDERS) });

/** Free tier: gpt-4* and premium/* are denied, like a `models` rule. */
function freeTier(calls: string[] = []): ModelCheck {
  return (requested, canonical, param) => {
    calls.push(`${requested}|${canonical}|${param}`);
    if (/^(gpt-4|premium\/)/.test(canonical)) {
      return { ok: false, rule: 'free/premium', message: `the free tier cannot use ${requested}`, status: 403, code: 'model_not_allowed' };
    }
    return { ok: true, check: allowAll };
  };
}

function input(over: Partial<RouteInput>): RouteInput {
  return { model: 'llama', tokenEstimate: 10, maxOutputTokens: 10, check: allowAll, kind: 'chat', ...over };
}

function rejects(fn: () => unknown, want: { status: number; code: string; param?: string; message?: RegExp }): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.status, want.status, e.message);
    assert.equal(e.code, want.code, e.message);
    if (want.param !== undefined) assert.equal(e.param, want.param);
    if (want.message) assert.match(e.message, want.message);
    return true;
  });
}

const ids = (r: { candidates: { deployment: { id: string } }[] }) => r.candidates.map((c) => c.deployment.id);

describe('route(): per-model policy check', () => {
  it('a denied fallback is no candidate, and the drop names the rule', () => {
    const r = router().route(input({ models: ['gpt-4o', 'claude'], checkModel: freeTier() }));
    assert.deepEqual(ids(r), ['llama/vllm', 'claude/anthropic']);
    assert.deepEqual(r.dropped, [{ model: 'gpt-4o', param: 'models[0]', rule: 'free/premium', message: 'the free tier cannot use gpt-4o' }]);
  });

  const knockouts: { name: string; over: Partial<RouteInput>; want: { status: number; code: string; param?: string } }[] = [
    // Nothing of the primary reached the policy stage: the fallback's denial is the answer.
    { name: 'provider.ignore', over: { provider: { ignore: ['vllm'] } }, want: { status: 403, code: 'model_not_allowed', param: 'models[0]' } },
    { name: 'provider.only', over: { provider: { only: ['openai'] } }, want: { status: 403, code: 'model_not_allowed', param: 'models[0]' } },
    // The primary got further (its context window is too small): that is what the caller can fix.
    { name: 'context window', over: { tokenEstimate: 5000 }, want: { status: 400, code: 'context_length_exceeded' } },
  ];
  for (const k of knockouts) {
    it(`primary knocked out by ${k.name}, only a denied fallback left → refused`, () => {
      const dropped: PolicyDrop[] = [];
      rejects(() => router().route(input({ models: ['gpt-4o'], checkModel: freeTier(), dropped, ...k.over })), k.want);
      assert.deepEqual(dropped.map((d) => [d.model, d.rule]), [['gpt-4o', 'free/premium']], 'the drop is reported even though route() threw');
    });
    // provider.only: ['openai'] leaves claude (on anthropic) out too.
    if (k.name !== 'provider.only') {
      it(`primary knocked out by ${k.name}, an allowed fallback after the denied one serves`, () => {
        const r = router().route(input({ models: ['gpt-4o', 'claude'], checkModel: freeTier(), ...k.over }));
        assert.deepEqual(ids(r), ['claude/anthropic']);
      });
    }
  }

  it('provider.order cannot promote a denied model', () => {
    const r = router().route(input({ models: ['gpt-4o'], provider: { order: ['openai', 'azure-eu'] }, checkModel: freeTier() }));
    assert.deepEqual(ids(r), ['llama/vllm']);
  });

  it('an alias in models is judged under its canonical name; a wildcard match under its concrete name', () => {
    const calls: string[] = [];
    rejects(() => router().route(input({ models: ['smart'], provider: { ignore: ['vllm'] }, checkModel: freeTier(calls) })), { status: 403, code: 'model_not_allowed', param: 'models[0]' });
    assert.deepEqual(calls, ['smart|gpt-4o|models[0]']);
    rejects(() => router().route(input({ models: ['premium/x1'], provider: { ignore: ['vllm'] }, checkModel: freeTier() })), { status: 403, code: 'model_not_allowed' });
  });

  it('judges each model once, lazily: not when the provider preferences removed all its deployments', () => {
    const calls: string[] = [];
    router().route(input({ models: ['claude', 'smart', 'gpt-4o'], provider: { ignore: ['openai', 'azure-eu'] }, checkModel: freeTier(calls) }));
    assert.deepEqual(calls, ['llama|llama|model', 'claude|claude|models[0]']);
  });

  it('the route check a model verdict returns applies to that model\'s deployments only', () => {
    const check: ModelCheck = (_r, canonical): ModelCheckResult => ({ ok: true, check: canonical === 'gpt-4o' ? euOnly : allowAll });
    const r = router().route(input({ models: ['gpt-4o'], checkModel: check }));
    assert.deepEqual(ids(r), ['llama/vllm', 'gpt-4o/azure-eu']);
    assert.deepEqual(r.dropped, [{ model: 'gpt-4o', param: 'models[0]', deployment: 'gpt-4o/openai', rule: 'residency/eu-only', message: 'tenant acme requires EU data residency' }]);
  });

  it('a malformed verdict denies (fail closed)', () => {
    const bad = (() => ({ ok: 'yes' })) as unknown as ModelCheck;
    rejects(() => router().route(input({ checkModel: bad })), { status: 403, code: 'policy_error' });
  });
});
