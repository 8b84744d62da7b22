// Decision.forModel: every model a request can end up on (a `models` fallback, what an alias
// resolves to) gets the outcome a request naming it would get — model rules, deny/require rules,
// matchConditions, route rules, model-scoped budgets and rate limits — re-evaluating only the rules
// whose outcome can depend on the model.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { readConfigDir } from '../../service/config/documents.ts';
import { compileDocuments } from '../../service/policy/compile.ts';
import { compilePolicies } from '../../service/policy/index.ts';
import { modelDependence } from '../../service/policy/candidates.ts';
import { compile, deployment, input, policyDocs } from './helpers.ts';

const FALLBACK = { candidates: true } as const;
const chat = (model: string, extra: Record<string, unknown> = {}) => ({ body: { model, messages: [{ role: 'user', content: 'hello' }], ...extra } });

describe('Decision.forModel: access rules per candidate model', () => {
  const b = compile(`  rules:
    - name: premium
      models:
        deny: ['gpt-4*']
        messageExpression: "'no ' + request.model + ' for you'"
        reason: model_not_allowed
    - name: no-opus-by-cel
      deny:
        expression: request.canonicalModel.startsWith('claude-3-opus')
        reason: opus_denied
        status: 451
    - name: body-model
      deny:
        expression: "'model' in request.body && string(request.body.model) == 'body-denied'"
    - name: content
      deny:
        expression: request.tokenEstimate > 100000
`);

  it('the primary verdict is the decision itself', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    assert.equal(d.denied, undefined);
    const v = d.forModel('llama');
    assert.equal(v.denied, undefined);
    assert.equal(v.budgets, d.budgets);
  });

  it('a models-rule denies a fallback, with the message a request naming it gets', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    const v = d.forModel('gpt-4o');
    assert.deepEqual(v.denied, { status: 403, reason: 'model_not_allowed', message: 'no gpt-4o for you', rule: 'p/premium' });
    // The same as evaluating a request that names it.
    assert.deepEqual(b.evaluate(input(chat('gpt-4o'))).denied, v.denied);
  });

  it('an alias is judged with the canonical name too', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    assert.equal(d.forModel('smart', 'gpt-4o').denied?.rule, 'p/premium');
    assert.equal(d.forModel('opus-alias', 'claude-3-opus-2024').denied?.rule, 'p/no-opus-by-cel');
    assert.equal(d.forModel('opus-alias', 'claude-3-opus-2024').denied?.status, 451);
    assert.equal(d.forModel('claude-sonnet').denied, undefined);
  });

  it('a rule reading request.body sees the candidate in body.model', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    assert.equal(d.forModel('body-denied').denied?.rule, 'p/body-model');
  });

  it('without { candidates: true } any other model is refused (fail closed)', () => {
    const d = b.evaluate(input(chat('llama')));
    const v = d.forModel('claude-sonnet');
    assert.equal(v.denied?.reason, 'policy_error');
    assert.equal(v.routeCheck(deployment({ id: 'x' })).ok, false);
  });

  it('only rules whose outcome can depend on the model are evaluated again', () => {
    const deps = modelDependence(compileDocuments(policyDocs(`  rules:
    - name: premium
      models: {deny: ['gpt-4*']}
    - name: no-opus-by-cel
      deny: {expression: "request.model.startsWith('claude-3-opus')"}
    - name: body
      deny: {expression: "size(request.body) > 100"}
    - name: content
      deny: {expression: request.tokenEstimate > 100000}
    - name: tenant-only
      require: {expression: "principal.tenant != ''"}
    - name: via-variable
      deny: {expression: variables.isBig}
    - name: per-model-budget
      budget: {scope: model, limit: {usd: 1}, window: day}
    - name: per-key-budget
      budget: {scope: key, limit: {usd: 1}, window: day}
    - name: model-guarded-route
      when: request.model == 'x'
      route: {expression: deployment.selfHosted, message: local only}
    - name: plain-route
      route: {expression: deployment.selfHosted, message: local only}
    - name: labels
      label: {m: request.model}
  variables:
    - name: isBig
      expression: request.canonicalModel.endsWith('-xl')
`)).policies);
    assert.deepEqual([...deps.ruleIds].sort(), ['p/body', 'p/model-guarded-route', 'p/no-opus-by-cel', 'p/per-model-budget', 'p/premium', 'p/via-variable']);
  });
});

describe('Decision.forModel: matchConditions, budgets, rate limits, routes', () => {
  const b = compile(`  rules:
    - name: per-model
      budget: {scope: model, limit: {usd: 5}, window: day}
    - name: per-key
      budget: {scope: key, limit: {usd: 50}, window: day}
    - name: model-rpm
      rateLimit: {scope: model, rpm: 10}
    - name: key-rpm
      rateLimit: {scope: key, rpm: 100}
    - name: premium-cap
      when: request.model.startsWith('gpt-4')
      budget: {scope: key, limit: {usd: 0.5}, window: day}
    - name: premium-eu
      when: request.model.startsWith('gpt-4')
      route: {expression: "deployment.region.startsWith('eu-')", message: premium models stay in the EU}
`);

  it('model-scoped budgets and rate limits use the candidate; the others are the request\'s', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    assert.deepEqual(d.budgets.map((x) => [x.name, x.scopeKey]), [['p/per-model', 'model:llama'], ['p/per-key', 'key:k1']]);
    const v = d.forModel('gpt-4o');
    assert.deepEqual(v.budgets.map((x) => [x.name, x.scopeKey]).sort(), [['p/per-key', 'key:k1'], ['p/per-model', 'model:gpt-4o'], ['p/premium-cap', 'key:k1']]);
    assert.deepEqual(v.rateLimits.map((x) => [x.name, x.scopeKey]).sort(), [['p/key-rpm', 'key:k1'], ['p/model-rpm', 'model:gpt-4o']]);
    // An alias shares its model's bucket.
    assert.equal(d.forModel('smart', 'gpt-4o').budgets.find((x) => x.name === 'p/per-model')?.scopeKey, 'model:gpt-4o');
  });

  it('a route rule guarded by the model applies to that candidate\'s deployments only', () => {
    const d = b.evaluate(input(chat('llama')), FALLBACK);
    const us = deployment({ id: 'gpt-4o/us', region: 'us-east-1' });
    assert.deepEqual(d.routeCheck(us), { ok: true });
    assert.deepEqual(d.forModel('gpt-4o').routeCheck(us), { ok: false, rule: 'p/premium-eu', message: 'premium models stay in the EU' });
    assert.deepEqual(d.forModel('gpt-4o').routeCheck(deployment({ id: 'gpt-4o/eu', region: 'eu-west-1' })), { ok: true });
    assert.deepEqual(d.forModel('claude').routeCheck(us), { ok: true });
  });

  it('a policy whose matchCondition reads the model applies per candidate', () => {
    const m = compile(`  matchConditions:
    - {name: premium, expression: "request.model.startsWith('gpt-4')"}
  rules:
    - name: premium-for-enterprise
      require:
        expression: "tenant.attributes.tier == 'enterprise'"
        message: premium models need an enterprise plan
    - name: premium-budget
      budget: {scope: key, limit: {usd: 1}, window: day}
`);
    const free = { name: 'globex', attributes: { tier: 'free' } };
    const d = m.evaluate({ ...input(chat('llama')), tenant: free }, FALLBACK);
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.budgets, []);
    assert.equal(d.forModel('gpt-4o').denied?.message, 'premium models need an enterprise plan');
    const e = m.evaluate(input(chat('llama')), FALLBACK);
    assert.deepEqual(e.forModel('gpt-4o').budgets.map((x) => x.name), ['p/premium-budget']);
  });

  it('a redact or transform rule the candidate needs but the request did not get refuses the candidate', () => {
    const m = compile(`  rules:
    - name: pii-off-site
      when: "!request.model.startsWith('local/')"
      redact: {detectors: [email], action: mask}
    - name: short-premium
      when: request.model.startsWith('gpt-4')
      transform: {maxTokens: 100}
`);
    const d = m.evaluate(input(chat('local/llama')), FALLBACK);
    assert.deepEqual(d.redactions, []);
    const v = d.forModel('claude');
    assert.equal(v.denied?.reason, 'fallback_not_allowed');
    assert.equal(v.denied?.rule, 'p/pii-off-site');
    // The primary got the redaction: a candidate needing it is fine; gpt-4o needs a transform too.
    const r = m.evaluate(input(chat('claude')), FALLBACK);
    assert.equal(r.forModel('claude-opus').denied, undefined);
    assert.equal(r.forModel('gpt-4o').denied?.rule, 'p/short-premium');
    // The candidate pass never transforms the request body.
    const i = input(chat('claude'));
    m.evaluate(i, FALLBACK).forModel('gpt-4o');
    assert.equal(i.request.body.max_tokens, undefined);
  });

  it('an evaluation error for a candidate denies it (onError: deny) and is recorded naming the model', () => {
    const m = compile(`  rules:
    - name: by-param
      deny: {expression: "request.model == 'gpt-4o' && request.params.missing.x == 1"}
`);
    const d = m.evaluate(input(chat('llama')), FALLBACK);
    assert.equal(d.forModel('gpt-4o').denied?.reason, 'policy_error');
    assert.ok(d.rules.some((r) => r.outcome === 'error' && r.message?.startsWith("model 'gpt-4o': ")), JSON.stringify(d.rules));
  });

  it('variables reading the model (directly or through another variable) are computed per candidate; the others are reused', () => {
    const m = compile(`  variables:
    - name: family
      expression: request.model.split('-')[0]
    - name: premium
      expression: variables.family == 'gpt'
    - name: hour
      expression: now.getHours('Europe/Berlin')
  rules:
    - name: premium-daytime
      deny:
        expression: variables.premium && variables.hour < 20
        message: premium models only after 20:00
`);
    const d = m.evaluate(input(chat('llama-3')), FALLBACK);
    assert.equal(d.denied, undefined);
    assert.equal(d.forModel('gpt-4o').denied?.message, 'premium models only after 20:00');
    assert.equal(d.forModel('claude-3').denied, undefined);
    const late = m.evaluate({ ...input(chat('llama-3')), now: new Date('2025-01-15T21:00:00Z') }, FALLBACK);
    assert.equal(late.forModel('gpt-4o').denied, undefined);
  });

  it('dry-run would-denies of a candidate are recorded, naming the model, and do not deny it', () => {
    const m = compile(`  rules:
    - name: opus-trial
      mode: dryRun
      models: {deny: ['claude-3-opus*']}
`);
    const d = m.evaluate(input(chat('llama')), FALLBACK);
    assert.equal(d.forModel('claude-3-opus').denied, undefined);
    assert.equal(d.dryRunDenials.length, 1);
    assert.match(d.dryRunDenials[0]!.message, /\(model 'claude-3-opus'\)$/);
  });
});

describe('the example policies (policies/policies): the free tier cannot reach premium models as a fallback', () => {
  const bundle = compilePolicies(readConfigDir(join(import.meta.dirname, '../../policies/policies')));
  const free = {
    ...input(chat('llama-3.1-8b', { models: ['gpt-4o', 'claude-3-opus', 'claude-sonnet'] })),
    principal: { keyId: 'demo-globex', tenant: 'globex', team: 'default', user: 'carol', groups: [], claims: {}, authMethod: 'key' as const },
    tenant: { name: 'globex', attributes: { tier: 'free', residency: 'any' } },
    team: { name: 'default', attributes: {} },
  };

  it('gpt-4o and claude-3-opus are denied by free-tier/premium-models; claude-sonnet is allowed with the same budgets', () => {
    const d = bundle.evaluate(free, FALLBACK);
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.forModel('gpt-4o').denied, { status: 403, reason: 'model_not_allowed', rule: 'free-tier/premium-models', message: 'the free tier cannot use gpt-4o; use llama-3.1-8b or claude-sonnet, or upgrade' });
    assert.equal(d.forModel('claude-3-opus').denied?.rule, 'free-tier/premium-models');
    const sonnet = d.forModel('claude-sonnet');
    assert.equal(sonnet.denied, undefined);
    assert.deepEqual(sonnet.budgets.map((b) => b.scopeKey), d.budgets.map((b) => b.scopeKey));
  });
});
