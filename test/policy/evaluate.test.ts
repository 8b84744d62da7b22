// Evaluation: every rule kind, fail-closed errors, dry-run, matchConditions, variables, ordering.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies, type PolicyErrorEvent } from '../../service/policy/index.ts';
import { compile, deployment, input, policyDocs } from './helpers.ts';

describe('deny and require', () => {
  it('denies with the configured status, reason and message', () => {
    const b = compile(`  rules:
    - name: no-streaming
      deny:
        expression: request.stream
        status: 422
        reason: streaming_disabled
        message: streaming is disabled for this key
`);
    const d = b.evaluate(input({ body: { model: 'm', stream: true, messages: [] } }));
    assert.deepEqual(d.denied, { status: 422, reason: 'streaming_disabled', message: 'streaming is disabled for this key', rule: 'p/no-streaming' });
    assert.deepEqual(d.rules.map((r) => [r.rule, r.outcome]), [['no-streaming', 'deny']]);
    const ok = b.evaluate(input({ body: { model: 'm', messages: [] } }));
    assert.equal(ok.denied, undefined);
    assert.deepEqual(ok.rules.map((r) => r.outcome), ['allow']);
  });

  it('builds the message from messageExpression, with defaults when absent', () => {
    const b = compile(`  rules:
    - name: big
      deny:
        expression: request.tokenEstimate > 5
        messageExpression: "'prompt of ' + string(request.tokenEstimate) + ' tokens is too long for ' + principal.user"
    - name: plain
      deny: {expression: "request.model == 'x'"}
`);
    const d = b.evaluate(input({ body: { model: 'm', messages: [{ role: 'user', content: 'a'.repeat(400) }] } }));
    assert.equal(d.denied?.message, 'prompt of 104 tokens is too long for alice');
    assert.equal(d.denied?.status, 403);
    assert.equal(d.denied?.reason, 'policy_denied');
    const d2 = b.evaluate(input({ body: { model: 'x', messages: [] } }));
    assert.equal(d2.denied?.message, 'request denied by policy "p" (rule "plain")');
  });

  it('require denies when the expression is false', () => {
    const b = compile(`  rules:
    - name: sso-only
      require:
        expression: principal.authMethod == 'jwt'
        message: this tenant requires SSO
`);
    assert.equal(b.evaluate(input()).denied?.message, 'this tenant requires SSO');
    assert.equal(b.evaluate(input({ principal: { authMethod: 'jwt' } })).denied, undefined);
  });

  it('stops at the first enforced denial: later rules are not evaluated', () => {
    const b = compile(`  rules:
    - name: first
      deny: {expression: "true"}
    - name: second
      deny: {expression: "true"}
    - name: spend
      budget: {scope: key, limit: {usd: 1}, window: day}
`);
    const d = b.evaluate(input());
    assert.equal(d.denied?.rule, 'p/first');
    assert.deepEqual(d.rules.map((r) => r.rule), ['first']);
    assert.deepEqual(d.budgets, []);
  });
});

describe('fail closed on evaluation errors', () => {
  const errorRule = (extra: string) =>
    compilePolicies(
      policyDocs(`  rules:
    - name: temp-check
${extra}      deny:
        expression: request.params.nope > 3
`),
      { onEvalError: (e) => events.push(e) },
    );
  let events: PolicyErrorEvent[] = [];

  it('denies when a deny expression errors (a missing field), and counts the error', () => {
    events = [];
    const d = errorRule('').evaluate(input());
    assert.deepEqual(d.denied, {
      status: 403,
      reason: 'policy_error',
      message: 'request denied: policy "p" rule "temp-check" could not be evaluated',
      rule: 'p/temp-check',
    });
    assert.equal(d.rules[0]?.outcome, 'error');
    assert.match(d.rules[0]?.message ?? '', /nope/);
    assert.equal(events.length, 1);
    assert.deepEqual({ ...events[0], message: undefined }, { policy: 'p', rule: 'temp-check', kind: 'deny', message: undefined });
  });

  it('an error is never mistaken for true by require rules', () => {
    const b = compile(`  rules:
    - name: must
      require: {expression: "request.params.nope > 3"}
`);
    assert.equal(b.evaluate(input()).denied?.reason, 'policy_error');
  });

  it('onError: skip records the error and continues', () => {
    events = [];
    const d = errorRule('      onError: skip\n').evaluate(input());
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.rules.map((r) => [r.rule, r.outcome]), [['temp-check', 'error']]);
    assert.equal(events.length, 1);
  });

  it('policy-level onError is the default for its rules', () => {
    const b = compile(`  onError: skip
  rules:
    - name: r
      deny: {expression: "request.params.nope > 3"}
`);
    assert.equal(b.evaluate(input()).denied, undefined);
  });

  it('a throwing metrics hook does not break the decision', () => {
    const b = compilePolicies(denyDocs('request.params.nope > 3'), {
      onEvalError: () => {
        throw new Error('boom');
      },
    });
    assert.equal(b.evaluate(input()).denied?.reason, 'policy_error');
  });

  it('the same expression works when the field is present', () => {
    const d = errorRule('').evaluate(input({ body: { model: 'm', messages: [], nope: 5 } }));
    assert.equal(d.denied?.rule, 'p/temp-check');
    assert.equal(d.denied?.reason, 'policy_denied');
    const d2 = errorRule('').evaluate(input({ body: { model: 'm', messages: [], nope: 1 } }));
    assert.equal(d2.denied, undefined);
  });
});

function denyDocs(expression: string) {
  return policyDocs(`  rules:\n    - name: r\n      deny:\n        expression: ${JSON.stringify(expression)}\n`);
}

describe('dry run', () => {
  it('records would-deny and does not deny (policy mode)', () => {
    const b = compile(`  mode: dryRun
  rules:
    - name: no-gpt4
      deny: {expression: "request.model.startsWith('gpt-4')", message: gpt-4 is going away}
`);
    const d = b.evaluate(input({ body: { model: 'gpt-4o', messages: [] } }));
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.dryRunDenials, [{ rule: 'p/no-gpt4', message: 'gpt-4 is going away' }]);
    assert.equal(d.rules[0]?.outcome, 'would-deny');
  });

  it('a rule mode overrides the policy mode in both directions', () => {
    const b = compile(`  mode: dryRun
  rules:
    - name: trial
      deny: {expression: "true"}
    - name: enforced
      mode: enforce
      deny: {expression: "true"}
`);
    const d = b.evaluate(input());
    assert.deepEqual(d.dryRunDenials.map((x) => x.rule), ['p/trial']);
    assert.equal(d.denied?.rule, 'p/enforced');
  });

  it('an evaluation error in dry-run mode is a would-deny, not a denial', () => {
    const b = compile(`  mode: dryRun
  rules:
    - name: r
      deny: {expression: "request.params.nope > 3"}
`);
    const d = b.evaluate(input());
    assert.equal(d.denied, undefined);
    assert.equal(d.dryRunDenials[0]?.rule, 'p/r');
  });

  it('dry-run budgets are soft; dry-run transforms, redactions and rate limits are not applied', () => {
    const b = compile(`  mode: dryRun
  rules:
    - name: budget
      budget: {scope: tenant, limit: {usd: 5}, window: day}
    - name: cap
      transform: {maxTokens: 10}
    - name: pii
      redact: {detectors: [email], action: block}
    - name: rate
      rateLimit: {scope: key, rpm: 1}
`);
    const i = input({ body: { model: 'm', max_tokens: 500, messages: [] } });
    const d = b.evaluate(i);
    assert.equal(d.budgets[0]?.enforcement, 'soft');
    assert.deepEqual([d.transforms, d.redactions, d.rateLimits], [[], [], []]);
    assert.equal(i.request.body.max_tokens, 500);
    assert.deepEqual(d.rules.map((r) => r.outcome), ['applied', 'skipped', 'skipped', 'skipped']);
  });
});

describe('matchConditions', () => {
  const spec = `  matchConditions:
    - name: free
      expression: "tenant.attributes.tier == 'free'"
    - name: chat
      expression: "request.endpoint == 'chat'"
  rules:
    - name: r
      deny: {expression: "true", message: free tier denied}
`;
  it('applies the policy only when every condition is true', () => {
    const b = compile(spec);
    const free = { name: 'globex', attributes: { tier: 'free' } };
    assert.equal(b.evaluate(input({ tenant: free })).denied?.message, 'free tier denied');
    const ent = b.evaluate(input({ tenant: { name: 'acme', attributes: { tier: 'enterprise' } } }));
    assert.equal(ent.denied, undefined);
    assert.deepEqual(ent.rules.map((r) => [r.rule, r.outcome]), [['matchConditions/free', 'not-matched']]);
    const emb = b.evaluate(input({ tenant: free, path: '/v1/embeddings', body: { model: 'e', input: 'x' } }));
    assert.equal(emb.denied, undefined);
  });

  it('an erroring matchCondition fails closed', () => {
    const b = compile(spec);
    const d = b.evaluate(input({ tenant: { name: 'initech', attributes: {} } }));
    assert.equal(d.denied?.reason, 'policy_error');
    assert.equal(d.denied?.rule, 'p/matchConditions/free');
    assert.equal(d.rules[0]?.kind, 'matchCondition');
    assert.equal(d.rules[0]?.outcome, 'error');
  });
});

describe('variables', () => {
  it('are usable in later variables and rules, and evaluated only when needed', () => {
    const b = compile(`  variables:
    - name: broken
      expression: request.params.missing > 1
    - name: premium
      expression: request.model.glob('gpt-4*') || request.model.glob('claude-3-opus*')
    - name: premiumForFree
      expression: variables.premium && tenant.attributes.tier == 'free'
  rules:
    - name: r
      deny: {expression: variables.premiumForFree}
    - name: uses-broken
      when: request.model == 'trigger'
      deny: {expression: variables.broken}
`);
    const free = { name: 'g', attributes: { tier: 'free' } };
    assert.equal(b.evaluate(input({ tenant: free, body: { model: 'gpt-4o', messages: [] } })).denied?.rule, 'p/r');
    // `broken` errors, but no evaluated rule needs it: no error, no denial.
    const ok = b.evaluate(input({ tenant: free, body: { model: 'llama', messages: [] } }));
    assert.equal(ok.denied, undefined);
    assert.ok(ok.rules.every((r) => r.outcome !== 'error'));
    // A rule that needs it fails closed, naming the variable.
    const bad = b.evaluate(input({ tenant: free, body: { model: 'trigger', messages: [] } }));
    assert.equal(bad.denied?.reason, 'policy_error');
    assert.match(bad.rules.at(-1)?.message ?? '', /variable 'broken'/);
  });
});

describe('models', () => {
  const b = compile(`  rules:
    - name: deny-list
      models: {deny: ['gpt-4*', 'claude-3-opus*']}
    - name: allow-list
      models:
        allow: ['gpt-*', 'claude-*', 'llama-3.?-*']
        status: 404
        reason: model_not_found
`);
  const cases: [string, string | undefined][] = [
    ['gpt-4o', 'p/deny-list'],
    ['gpt-4', 'p/deny-list'],
    ['claude-3-opus-20240229', 'p/deny-list'],
    ['gpt-3.5-turbo', undefined],
    ['claude-3-5-sonnet', undefined],
    ['llama-3.1-8b', undefined],
    ['llama-30-8b', 'p/allow-list'],
    ['mistral-large', 'p/allow-list'],
  ];
  for (const [model, rule] of cases) {
    it(`${model} → ${rule ?? 'allowed'}`, () => {
      const d = b.evaluate(input({ body: { model, messages: [] } }));
      assert.equal(d.denied?.rule, rule);
      if (rule === 'p/deny-list') {
        assert.deepEqual([d.denied?.status, d.denied?.reason], [403, 'model_not_allowed']);
        assert.equal(d.denied?.message, `model "${model}" is not allowed by policy "p"`);
      }
      if (rule === 'p/allow-list') assert.deepEqual([d.denied?.status, d.denied?.reason], [404, 'model_not_found']);
    });
  }
});

describe('route', () => {
  const b = compile(`  rules:
    - name: eu-only
      when: "tenant.attributes.residency == 'eu'"
      route:
        expression: deployment.region.startsWith('eu-') || deployment.selfHosted
        message: EU data stays in the EU
    - name: no-retention
      mode: dryRun
      route:
        expression: "!deployment.dataRetention"
        message: no retention
    - name: price
      onError: skip
      route:
        expression: "deployment.contextWindow >= request.params.needContext"
        message: context too small
`);
  const us = deployment({ id: 'us', region: 'us-east-1' });
  const eu = deployment({ id: 'eu', region: 'eu-west-1', dataRetention: true });
  const local = deployment({ id: 'local', region: 'self-hosted', selfHosted: true, contextWindow: 8000 });

  it('filters candidates and names the constraint', () => {
    const d = b.evaluate(input());
    assert.deepEqual(d.routeCheck(us), { ok: false, rule: 'p/eu-only', message: 'EU data stays in the EU' });
    assert.deepEqual(d.routeCheck(local), { ok: true });
    assert.deepEqual(d.routeCheck(eu), { ok: true });
  });

  it('dry-run route rules record would-deny once per deployment and pass', () => {
    const d = b.evaluate(input());
    d.routeCheck(eu);
    d.routeCheck(eu);
    assert.deepEqual(d.dryRunDenials, [{ rule: 'p/no-retention', message: 'no retention (deployment eu)' }]);
    assert.equal(d.rules.filter((r) => r.outcome === 'would-deny').length, 1);
  });

  it('is inactive when its when-guard is false', () => {
    const d = b.evaluate(input({ tenant: { name: 'globex', attributes: { residency: 'any' } } }));
    assert.deepEqual(d.routeCheck(us), { ok: true });
  });

  it('an erroring route rule fails closed by default and passes with onError: skip', () => {
    const strict = compile(`  rules:
    - name: ctx
      route: {expression: "deployment.contextWindow >= request.params.needContext", message: context too small}
`);
    const d = strict.evaluate(input());
    const r = d.routeCheck(local);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.message, /context too small \(route rule could not be evaluated\)/);
    assert.equal(d.rules.at(-1)?.outcome, 'error');
    // In `b` the same rule has onError: skip.
    assert.deepEqual(b.evaluate(input()).routeCheck(local), { ok: true });
    const withParam = b.evaluate(input({ body: { model: 'm', messages: [], needContext: 16000 } }));
    assert.deepEqual(withParam.routeCheck(local), { ok: false, rule: 'p/price', message: 'context too small' });
  });
});

describe('redact', () => {
  it('produces redaction rules and the custom detectors they use', () => {
    const b = compile(`  detectors:
    - {name: ticket_id, regex: 'T-[0-9]{6}'}
    - {name: codenames, keywords: [bluebird], caseInsensitive: true}
    - {name: unused, keywords: [x]}
  rules:
    - name: everyone
      redact: {detectors: [email, secrets], action: mask}
    - name: support
      when: principal.team == 'support'
      redact: {detectors: [ticket_id, codenames, email], action: pseudonymize, responses: true}
`);
    const d = b.evaluate(input({ principal: { team: 'support' } }));
    assert.deepEqual(d.redactions, [
      { source: 'p/everyone', detectors: ['email', 'secrets'], action: 'mask', responses: false },
      { source: 'p/support', detectors: ['ticket_id', 'codenames', 'email'], action: 'pseudonymize', responses: true },
    ]);
    assert.deepEqual(d.customDetectors, [
      { name: 'ticket_id', regex: 'T-[0-9]{6}' },
      { name: 'codenames', keywords: ['bluebird'], caseInsensitive: true },
    ]);
    const other = b.evaluate(input());
    assert.deepEqual(other.customDetectors, []);
    assert.equal(other.redactions.length, 1);
  });
});

describe('budget and rateLimit', () => {
  const spec = `  rules:
    - name: per-key
      budget: {scope: key, limit: {usd: 10, totalTokens: 100000}, window: day, timeZone: Europe/Berlin}
    - name: per-user
      budget: {scope: user, limit: {requests: 100}, window: {rollingSeconds: 3600}, enforcement: soft, onStoreError: failOpen}
    - name: per-team
      budget: {scope: team, limit: {usd: 100}, window: month}
    - name: per-tenant
      budget: {scope: tenant, limit: {usd: 1000}, window: month, onStoreError: local}
    - name: per-model
      budget: {scope: model, limit: {outputTokens: 5000}, window: hour}
    - name: per-project
      budget:
        scope: custom
        scopeExpression: "'project:' + string(request.params.metadata.project)"
        limit: {usd: 3}
        window: minute
    - name: rpm
      rateLimit: {scope: key, rpm: 60, tpm: 10000, maxParallel: 4}
`;
  it('attaches specs with concrete scope keys', () => {
    const b = compile(spec);
    const d = b.evaluate(input({ body: { model: 'gpt-4o', messages: [], metadata: { project: 'apollo' } } }));
    assert.deepEqual(
      d.budgets.map((x) => [x.name, x.scope, x.scopeKey]),
      [
        ['p/per-key', 'key', 'key:k1'],
        ['p/per-user', 'user', 'user:acme/alice'],
        ['p/per-team', 'team', 'team:acme/research'],
        ['p/per-tenant', 'tenant', 'tenant:acme'],
        ['p/per-model', 'model', 'model:gpt-4o'],
        ['p/per-project', 'custom', 'custom:project:apollo'],
      ],
    );
    assert.deepEqual(d.budgets[0], {
      name: 'p/per-key',
      scope: 'key',
      scopeKey: 'key:k1',
      limit: { usd: 10, totalTokens: 100000 },
      window: { kind: 'day', timeZone: 'Europe/Berlin' },
      enforcement: 'hard',
      onStoreError: 'failClosed',
    });
    assert.deepEqual(d.budgets[1]?.window, { kind: 'rolling', seconds: 3600 });
    assert.deepEqual([d.budgets[1]?.enforcement, d.budgets[1]?.onStoreError], ['soft', 'failOpen']);
    assert.deepEqual(d.rateLimits, [{ name: 'p/rpm', scopeKey: 'key:k1', rpm: 60, tpm: 10000, maxParallel: 4, onStoreError: 'failClosed' }]);
  });

  it('fails closed when the scope cannot be resolved (no user; custom scope errors)', () => {
    const b = compile(spec);
    const d = b.evaluate(input({ principal: { user: '' }, body: { model: 'gpt-4o', messages: [], metadata: { project: 'x' } } }));
    assert.equal(d.denied?.rule, 'p/per-user');
    assert.match(d.rules.at(-1)?.message ?? '', /principal has no user/);
    const d2 = b.evaluate(input({ body: { model: 'gpt-4o', messages: [] } }));
    assert.equal(d2.denied?.rule, 'p/per-project');
  });
});

describe('transform', () => {
  const b = compile(`  rules:
    - name: cap
      transform: {maxTokens: 1000, forceUser: true}
    - name: system
      when: principal.team == 'support'
      transform:
        prependSystem: Be careful.
        set: {temperature: 0.2, metadata: {origin: gateway}}
        remove: [logprobs]
`);
  it('caps max_tokens, forces user, prepends the system prompt and sets/removes params (OpenAI)', () => {
    const i = input({
      principal: { team: 'support' },
      body: { model: 'm', max_tokens: 4000, user: 'spoofed', logprobs: true, messages: [{ role: 'system', content: 'Hi' }, { role: 'user', content: 'q' }] },
    });
    const d = b.evaluate(i);
    assert.deepEqual(d.transforms, ['p/cap', 'p/system']);
    assert.deepEqual(i.request.body, {
      model: 'm',
      max_tokens: 1000,
      user: 'alice',
      temperature: 0.2,
      metadata: { origin: 'gateway' },
      messages: [
        { role: 'system', content: 'Be careful.' },
        { role: 'system', content: 'Hi' },
        { role: 'user', content: 'q' },
      ],
    });
  });

  const capCases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ['adds max_tokens when absent', {}, { max_tokens: 1000 }],
    ['keeps a smaller max_tokens', { max_tokens: 50 }, { max_tokens: 50 }],
    ['caps max_completion_tokens', { max_completion_tokens: 9000 }, { max_completion_tokens: 1000 }],
    ['replaces a non-numeric value', { max_tokens: 'lots' }, { max_tokens: 1000 }],
  ];
  for (const [name, given, expected] of capCases) {
    it(`maxTokens ${name}`, () => {
      const i = input({ body: { model: 'm', messages: [], ...given } });
      b.evaluate(i);
      for (const [k, v] of Object.entries(expected)) assert.equal(i.request.body[k], v);
    });
  }

  it('uses Anthropic fields: metadata.user_id and top-level system (string, blocks, absent)', () => {
    const systems: [unknown, unknown][] = [
      ['Answer briefly.', 'Be careful.\n\nAnswer briefly.'],
      [[{ type: 'text', text: 'A' }], [{ type: 'text', text: 'Be careful.' }, { type: 'text', text: 'A' }]],
      [undefined, 'Be careful.'],
    ];
    for (const [given, expected] of systems) {
      const body: Record<string, unknown> = { model: 'claude', max_tokens: 4096, messages: [{ role: 'user', content: 'q' }] };
      if (given !== undefined) body.system = given;
      const i = input({ api: 'anthropic', principal: { team: 'support' }, body });
      b.evaluate(i);
      assert.deepEqual(i.request.body.system, expected);
      assert.deepEqual(i.request.body.metadata, { origin: 'gateway' }, 'set replaces metadata after forceUser');
      assert.equal(i.request.body.max_tokens, 1000);
    }
    const plain = input({ api: 'anthropic', body: { model: 'claude', max_tokens: 10, messages: [] } });
    b.evaluate(plain);
    assert.deepEqual(plain.request.body.metadata, { user_id: 'alice' });
  });

  it('forces the key id as user when the principal has no user', () => {
    const i = input({ principal: { user: '' } });
    b.evaluate(i);
    assert.equal(i.request.body.user, 'key:k1');
  });

  it('runs after every check: checks see the body as sent, and a denied request is not transformed', () => {
    const b2 = compilePolicies([
      ...policyDocs(`  rules:\n    - name: cap\n      transform: {maxTokens: 100}\n`, 'a.yaml'),
      ...policyDocs(`  rules:\n    - name: big\n      deny: {expression: "has(request.params.max_tokens) && request.params.max_tokens > 5000"}\n`, 'q.yaml', 'q'),
    ]);
    const i = input({ body: { model: 'm', max_tokens: 8000, messages: [] } });
    const d = b2.evaluate(i);
    assert.equal(d.denied?.rule, 'q/big');
    assert.equal(i.request.body.max_tokens, 8000);
    assert.deepEqual(d.transforms, []);
  });
});

describe('label', () => {
  it('copies CEL string values; scalars are converted', () => {
    const b = compile(`  rules:
    - name: l
      label:
        tenant: principal.tenant
        tier: string(tenant.attributes.tier)
        budget: team.attributes.budget
        hour: string(now.getHours('Europe/Berlin'))
`);
    const d = b.evaluate(input({ team: { name: 't', attributes: { budget: 500 } } }));
    assert.deepEqual(d.labels, { tenant: 'acme', tier: 'enterprise', budget: '500', hour: '11' });
  });

  it('a label that fails to evaluate follows onError', () => {
    const b = compile(`  rules:
    - name: l
      onError: skip
      label: {missing: string(tenant.attributes.nope), ok: principal.user}
`);
    const d = b.evaluate(input());
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.labels, { ok: 'alice' });
    assert.equal(d.rules[0]?.outcome, 'error');
  });
});

describe('robustness', () => {
  it('an unexpected exception during evaluation denies instead of throwing', () => {
    const b = compile(`  rules:\n    - name: r\n      deny: {expression: "request.model == 'x'"}\n`);
    const broken = input();
    (broken as { request: unknown }).request = null; // not a valid PolicyInput
    const d = b.evaluate(broken);
    assert.deepEqual([d.denied?.status, d.denied?.reason], [403, 'policy_error']);
    assert.match(d.rules[0]?.message ?? '', /policy evaluation failed/);
  });

  it('a malformed input part a rule reads fails that rule closed (the activation converts parts lazily)', () => {
    const b = compile(`  rules:\n    - name: r\n      deny: {expression: "'x' in request.headers"}\n`);
    const broken = input();
    (broken.request as { headers: unknown }).headers = null; // not a valid PolicyInput
    const d = b.evaluate(broken);
    assert.deepEqual([d.denied?.status, d.denied?.reason], [403, 'policy_error']);
    assert.equal(d.rules[0]?.outcome, 'error');
  });

  it('an invalid clock value falls back to the bundle clock', () => {
    const b = compilePolicies(policyDocs(`  rules:\n    - name: r\n      deny: {expression: "now.getFullYear() == 2030"}\n`), { now: () => new Date('2030-05-05T00:00:00Z') });
    assert.equal(b.evaluate({ ...input(), now: new Date('garbage') }).denied?.rule, 'p/r');
  });
});

describe('decision record', () => {
  it('has a random 32-hex id, the bundle revision and per-rule durations', () => {
    const b = compile(`  rules:\n    - name: r\n      deny: {expression: "false"}\n`);
    const a = b.evaluate(input());
    const c = b.evaluate(input());
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.notEqual(a.id, c.id);
    assert.equal(a.revision, b.revision);
    assert.ok(a.rules.every((r) => typeof r.durationUs === 'number' && r.durationUs >= 0));
    assert.equal(JSON.parse(JSON.stringify(a)).id, a.id, 'serialisable for lineage');
  });

  it('ids stay 32 hex characters and distinct across refills of the id pool (256 ids per fill)', () => {
    const b = compile(`  rules:\n    - name: r\n      deny: {expression: "false"}\n`);
    const ids = new Set<string>();
    for (let i = 0; i < 700; i++) {
      const id = b.evaluate(input()).id;
      assert.match(id, /^[0-9a-f]{32}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 700);
  });

  it('revision is a content hash: same documents, same revision; any change, new revision', () => {
    const spec = `  rules:\n    - name: r\n      deny: {expression: "false"}\n`;
    assert.equal(compile(spec).revision, compile(spec).revision);
    assert.notEqual(compile(spec).revision, compile(spec.replace('false', 'false && true')).revision);
    assert.match(compile(spec).revision, /^[0-9a-f]{16}$/);
  });
});

describe('listing (GET /v1/models): judged without request content', () => {
  const b = compile(`  variables:
    - name: longPrompt
      expression: request.tokenEstimate > 1000
  rules:
    - name: needs-a-user-message
      require: {expression: "request.messages.exists(m, m.role == 'user')"}
    - name: capped-output
      require: {expression: "'max_tokens' in request.params && int(request.params.max_tokens) <= 4096"}
    - name: no-long-prompts
      deny: {expression: variables.longPrompt}
    - name: enterprise-only-gpt4
      deny: {expression: "request.model.startsWith('gpt-4') && tenant.attributes.tier != 'enterprise'"}
    - name: research-only
      require: {expression: "principal.team == 'research'"}
`);
  const listing = (model: string, team = 'research', tier = 'enterprise') =>
    b.evaluate(input({ body: { model, messages: [] }, principal: { team }, tenant: { name: 'acme', attributes: { tier } } }), { listing: true });

  it('content rules (directly or through a variable) are skipped, not failed', () => {
    const d = listing('gpt-4o');
    assert.equal(d.denied, undefined);
    assert.deepEqual(
      d.rules.map((r) => [r.rule, r.outcome]),
      [
        ['needs-a-user-message', 'skipped'],
        ['capped-output', 'skipped'],
        ['no-long-prompts', 'skipped'],
        ['enterprise-only-gpt4', 'allow'],
        ['research-only', 'allow'],
      ],
    );
  });
  it('rules on the model and the caller still decide', () => {
    assert.equal(listing('gpt-4o', 'research', 'free').denied?.rule, 'p/enterprise-only-gpt4');
    assert.equal(listing('claude', 'support').denied?.rule, 'p/research-only');
  });
  it('a real request with the same empty body is still held to every rule', () => {
    const d = b.evaluate(input({ body: { model: 'gpt-4o', messages: [] } }));
    assert.equal(d.denied?.rule, 'p/needs-a-user-message');
  });
});
