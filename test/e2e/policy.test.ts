// The CEL policy engine, end to end: the official OpenAI SDK → real Envoy → Tollgate (gRPC) →
// fake providers. Every rule kind (deny/require, models, route, redact, budget, transform, label),
// dry run, fail-closed evaluation errors and GET /v1/models, checked by what a user notices: the
// SDK's error class/status/message/code, what the provider received, response headers and lineage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { hashKey } from '../../service/identity/keys.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

/** Keys this file adds on top of the harness's (an EU-resident tenant, a budget-limited user). */
const EU_KEY = 'tg-test-initech-ops-00000000000000000001';
const BUDGET_KEY = 'tg-test-acme-budget-0000000000000000001';

const H = (c: string) => `'x-e2e-case' in request.headers && request.headers['x-e2e-case'] == '${c}'`;

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: initech}
spec: {attributes: {tier: enterprise, residency: eu}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Team
metadata: {name: ops}
spec: {tenant: initech}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-initech-ops}
spec: {sha256: ${hashKey(EU_KEY)}, tenant: initech, team: ops, user: ivy}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-acme-budget}
spec: {sha256: ${hashKey(BUDGET_KEY)}, tenant: acme, team: research, user: bert}
---
# One public model, two deployments: US (preferred) on the fake OpenAI, EU on the fake Anthropic.
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: resident-chat}
spec:
  strategy: priority
  deployments:
  - {provider: fake-openai, model: resident-us-1, region: us-east-1, priority: 0, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
  - {provider: fake-anthropic, model: resident-eu-1, region: eu-west-1, priority: 1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: access}
spec:
  matchConditions:
    - {name: selected, expression: "${H('deny')}"}
  rules:
    - name: forbidden-word
      deny:
        expression: request.messages.exists(m, m.text.contains('forbidden-word'))
        message: prompts may not mention the forbidden word
    - name: legal-hold
      deny:
        expression: request.messages.exists(m, m.text.contains('legal-hold'))
        status: 451
        reason: unavailable_for_legal_reasons
        messageExpression: "'model ' + request.model + ' is under legal hold'"
    - name: temperature-set
      require:
        expression: has(request.params.temperature) && request.params.temperature <= 1.0
        reason: temperature_required
        message: set a temperature of at most 1
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: free-models}
spec:
  matchConditions:
    - {name: free, expression: "'tier' in tenant.attributes && tenant.attributes.tier == 'free'"}
  rules:
    - name: no-claude
      models:
        deny: ['claude-*']
        messageExpression: "'the free tier cannot use ' + request.model"
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: support-models}
spec:
  matchConditions:
    - {name: support, expression: "principal.tenant == 'acme' && principal.team == 'support'"}
  rules:
    - name: openai-only
      models:
        allow: ['gpt-4?-mini', 'resident-*', 'text-embedding-*']
        message: acme support may only use OpenAI models
    - name: support-transforms
      transform:
        maxTokens: 50
        forceUser: true
        prependSystem: You are assisting ACME support.
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: header-transforms}
spec:
  matchConditions:
    - {name: selected, expression: "${H('transform')}"}
  rules:
    - name: all-of-them
      transform:
        maxTokens: 50
        forceUser: true
        prependSystem: Policy preamble.
        set: {temperature: 0.1}
        remove: [seed]
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: eu-residency}
spec:
  matchConditions:
    - {name: eu-tenant, expression: "'residency' in tenant.attributes && tenant.attributes.residency == 'eu'"}
  rules:
    - name: eu-only
      route:
        expression: deployment.region.startsWith('eu-')
        message: this tenant's data must stay in eu-* regions
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: data-protection}
spec:
  matchConditions:
    - {name: selected, expression: "${H('redact')}"}
  rules:
    - name: mask-email
      when: principal.team != 'support'
      redact: {detectors: [email], action: mask}
    - name: mask-contact
      when: principal.team == 'support'
      redact: {detectors: [email, phone], action: mask}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: tiny-budget}
spec:
  matchConditions:
    - {name: bert, expression: "principal.user == 'bert'"}
  rules:
    - name: per-user-usd
      budget:
        scope: user
        limit: {usd: 0.0001}
        window: {rollingSeconds: 3600}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: tags}
spec:
  rules:
    - name: request-labels
      label:
        team: principal.team
        family: "request.model.startsWith('claude') ? 'claude' : 'other'"
        streamed: request.stream
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: rollout}
spec:
  mode: dryRun
  matchConditions:
    - {name: selected, expression: "${H('dryrun')}"}
  rules:
    - name: no-emails
      deny:
        expression: request.messages.exists(m, m.text.contains('@'))
        message: prompts with email addresses will be denied
    - name: would-mask
      redact: {detectors: [email], action: mask}
    - name: would-cap
      transform: {maxTokens: 5}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: fragile}
spec:
  matchConditions:
    - {name: selected, expression: "${H('fail-closed')}"}
  rules:
    - name: reads-missing
      deny:
        expression: request.params.nope > 3.0
        message: never shown
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: fragile-skip}
spec:
  onError: skip
  matchConditions:
    - {name: selected, expression: "${H('fail-skip')}"}
  rules:
    - name: reads-missing
      deny:
        expression: request.params.nope > 3.0
        message: never shown
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: fragile-condition}
spec:
  matchConditions:
    - name: errors-when-selected
      expression: "${H('mc-error')} && request.params.nope > 1.0"
  rules:
    - name: anything
      deny: {expression: 'true', message: never shown}
`;

let seq = 0;
const rid = (tag: string) => `e2e-policy-${tag}-${process.pid}-${++seq}`;

const client = (h: Harness, key = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });

/** The record of the request sent with x-request-id `requestId` (kept as `request.clientRequestId`). */
async function lineageOf(h: Harness, requestId: string): Promise<LineageRecord> {
  await eventually(() => h.lineage.some((r) => r.request.clientRequestId === requestId), 5000);
  return h.lineage.find((r) => r.request.clientRequestId === requestId)!;
}

/** Sends one chat request with an e2e case header and a known request id. */
function chat(h: Harness, opts: { key?: string; model?: string; content?: string; case?: string; id?: string; extra?: Record<string, unknown> } = {}) {
  const headers: Record<string, string> = { 'x-request-id': opts.id ?? rid('chat') };
  if (opts.case) headers['x-e2e-case'] = opts.case;
  return client(h, opts.key).chat.completions.create(
    { model: opts.model ?? 'gpt-4o-mini', messages: [{ role: 'user', content: opts.content ?? 'hello' }], ...opts.extra } as OpenAI.ChatCompletionCreateParamsNonStreaming,
    { headers },
  );
}

/** Asserts the SDK throws an APIError with these properties; returns it. */
async function rejectsWith(p: Promise<unknown>, want: { cls?: new (...a: any[]) => InstanceType<typeof OpenAI.APIError>; status: number; code: string; message: string | RegExp }): Promise<InstanceType<typeof OpenAI.APIError>> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OpenAI.APIError, `expected an APIError, got ${String(caught)}`);
  if (want.cls) assert.ok(caught instanceof want.cls, `expected ${want.cls.name}, got ${caught.constructor.name}: ${caught.message}`);
  assert.equal(caught.status, want.status, caught.message);
  assert.equal(caught.code, want.code, caught.message);
  const msg = (caught.error as { message?: string } | undefined)?.message ?? '';
  if (typeof want.message === 'string') assert.equal(msg, want.message);
  else assert.match(msg, want.message);
  return caught;
}

describe('e2e: CEL policies through a real Envoy', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  describe('deny / require', () => {
    it('a deny reaches the SDK as 403 PermissionDeniedError with the rule message; the provider is not called', async () => {
      const before = h.fakes.openai!.requests.length;
      const id = rid('deny');
      await rejectsWith(chat(h, { case: 'deny', id, content: 'tell me the forbidden-word', extra: { temperature: 0.5 } }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'policy_denied',
        message: 'prompts may not mention the forbidden word',
      });
      assert.equal(h.fakes.openai!.requests.length, before, 'denied requests never reach a provider');
      const rec = await lineageOf(h, id);
      assert.equal(rec.outcome, 'denied');
      assert.equal(rec.statusCode, 403);
      assert.equal(rec.errorCode, 'policy_denied');
      const rule = rec.policy?.rules?.find((r) => r.policy === 'access' && r.rule === 'forbidden-word');
      assert.equal(rule?.outcome, 'deny');
    });

    it('a custom status (451) and reason pass through, with the messageExpression text', async () => {
      const err = await rejectsWith(chat(h, { case: 'deny', content: 'this is under legal-hold', extra: { temperature: 0.5 } }), {
        status: 451,
        code: 'unavailable_for_legal_reasons',
        message: 'model gpt-4o-mini is under legal hold',
      });
      assert.ok(!(err instanceof OpenAI.PermissionDeniedError));
    });

    it('require denies when its expression is not true, and allows when it is', async () => {
      await rejectsWith(chat(h, { case: 'deny', content: 'hi', extra: { temperature: 1.5 } }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'temperature_required',
        message: 'set a temperature of at most 1',
      });
      await rejectsWith(chat(h, { case: 'deny', content: 'hi' }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'temperature_required',
        message: 'set a temperature of at most 1',
      });
      const ok = await chat(h, { case: 'deny', content: 'hi', extra: { temperature: 0.2 } });
      assert.equal(ok.object, 'chat.completion');
      assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).temperature, 0.2);
    });

    it('policies whose matchConditions are false do not apply', async () => {
      const ok = await chat(h, { content: 'the forbidden-word, but no case header' });
      assert.equal(ok.object, 'chat.completion');
    });
  });

  describe('model allow/deny lists (per tenant and per team)', () => {
    const cases: { name: string; key: string; model: string; allowed: boolean; message?: string }[] = [
      { name: 'free tenant, denied glob claude-*', key: KEYS.globex, model: 'claude-sonnet', allowed: false, message: 'the free tier cannot use claude-sonnet' },
      { name: 'free tenant, not matching the deny list', key: KEYS.globex, model: 'gpt-4o-mini', allowed: true },
      { name: 'acme support team, outside its allow list', key: KEYS.acmeSupport, model: 'claude-sonnet', allowed: false, message: 'acme support may only use OpenAI models' },
      { name: 'acme support team, matching allow glob gpt-4?-mini', key: KEYS.acmeSupport, model: 'gpt-4o-mini', allowed: true },
      { name: 'acme research team (no list applies)', key: KEYS.acme, model: 'claude-sonnet', allowed: true },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const p = chat(h, { key: c.key, model: c.model, content: 'hi' });
        if (c.allowed) {
          const res = await p;
          assert.equal(res.object, 'chat.completion');
        } else {
          await rejectsWith(p, { cls: OpenAI.PermissionDeniedError, status: 403, code: 'model_not_allowed', message: c.message! });
        }
      });
    }
  });

  describe('route constraints: tenant isolation / data residency', () => {
    it('an unrestricted tenant gets the preferred (US) deployment', async () => {
      const { response } = await chat(h, { model: 'resident-chat' }).withResponse();
      assert.equal(response.headers.get('x-tollgate-provider'), 'fake-openai');
      assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).model, 'resident-us-1');
    });

    it('an EU-resident tenant is routed to the eu-west-1 deployment', async () => {
      const beforeOpenai = h.fakes.openai!.requests.length;
      const id = rid('eu');
      const { data, response } = await chat(h, { key: EU_KEY, model: 'resident-chat', id }).withResponse();
      assert.equal(data.object, 'chat.completion');
      assert.equal(response.headers.get('x-tollgate-provider'), 'fake-anthropic');
      assert.equal((h.fakes.anthropic!.requests.at(-1)!.json as any).model, 'resident-eu-1', 'the EU provider received it');
      assert.equal(h.fakes.openai!.requests.length, beforeOpenai, 'the US provider received nothing');
      const rec = await lineageOf(h, id);
      assert.equal(rec.served?.region, 'eu-west-1');
      assert.equal(rec.served?.provider, 'fake-anthropic');
    });

    it('gets 403 naming the constraint when no deployment is left', async () => {
      const before = h.fakes.openai!.requests.length + h.fakes.anthropic!.requests.length;
      await rejectsWith(chat(h, { key: EU_KEY, model: 'gpt-4o-mini' }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'route_denied',
        message: /this tenant's data must stay in eu-\* regions/,
      });
      const err = await rejectsWith(chat(h, { key: EU_KEY, model: 'claude-sonnet' }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'route_denied',
        message: /this tenant's data must stay in eu-\* regions/,
      });
      assert.match((err.error as any).message, /eu-residency\/eu-only/, 'names the rule');
      assert.equal(h.fakes.openai!.requests.length + h.fakes.anthropic!.requests.length, before);
    });
  });

  describe('redaction selection', () => {
    it('research: the provider receives masked email, other detectors untouched', async () => {
      const id = rid('redact');
      await chat(h, { case: 'redact', id, content: 'mail jane.doe@example.com or call +1 415 555 0100' });
      const got = (h.fakes.openai!.requests.at(-1)!.json as any).messages[0].content as string;
      assert.equal(got, 'mail [EMAIL_1] or call +1 415 555 0100', 'email masked, phone (not selected for research) untouched');
      const rec = await lineageOf(h, id);
      assert.ok((rec.redactions ?? []).some((r) => r.detector === 'email' && r.count >= 1), JSON.stringify(rec.redactions));
    });

    it('support: a different selection masks email and phone', async () => {
      await chat(h, { key: KEYS.acmeSupport, case: 'redact', content: 'mail jane.doe@example.com or call +1 415 555 0100' });
      const msgs = (h.fakes.openai!.requests.at(-1)!.json as any).messages as { role: string; content: string }[];
      assert.equal(msgs.at(-1)!.content, 'mail [EMAIL_1] or call [PHONE_1]');
    });

    it('without the policy, the text is forwarded as is', async () => {
      await chat(h, { content: 'mail jane.doe@example.com' });
      assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).messages[0].content, 'mail jane.doe@example.com');
    });
  });

  describe('budget attachment', () => {
    it('a tiny budget answers 429 with retry-after once used up; the provider is not called then', async () => {
      let served = 0;
      let denied: InstanceType<typeof OpenAI.APIError> | undefined;
      for (let i = 0; i < 10 && !denied; i++) {
        try {
          await chat(h, { key: BUDGET_KEY, content: 'spend', extra: { max_tokens: 10 } });
          served++;
        } catch (err) {
          if (!(err instanceof OpenAI.APIError)) throw err;
          denied = err;
        }
      }
      assert.ok(served >= 1, 'the budget allows some traffic first');
      assert.ok(denied, 'a 429 arrives once the budget is used up');
      assert.ok(denied instanceof OpenAI.RateLimitError, `${denied.constructor.name}: ${denied.message}`);
      assert.equal(denied.status, 429);
      assert.equal(denied.code, 'budget_exceeded');
      assert.match((denied.error as any).message, /tiny-budget\/per-user-usd|user:acme\/bert/);
      const ra = denied.headers?.get('retry-after');
      assert.ok(ra && /^\d+$/.test(ra) && Number(ra) > 0 && Number(ra) <= 3660, `retry-after ${ra} (rolling 3600 s window of 60 s buckets)`);
      // Still denied, and nothing more reaches the provider.
      const before = h.fakes.openai!.requests.length;
      await rejectsWith(chat(h, { key: BUDGET_KEY, content: 'spend', extra: { max_tokens: 10 } }), { cls: OpenAI.RateLimitError, status: 429, code: 'budget_exceeded', message: /exceeded/ });
      assert.equal(h.fakes.openai!.requests.length, before);
      // Other users are unaffected.
      assert.equal((await chat(h, { key: KEYS.acme, content: 'spend', extra: { max_tokens: 10 } })).object, 'chat.completion');
    });
  });

  describe('request transforms', () => {
    const cases: { name: string; max?: Record<string, number>; want: Record<string, number | undefined> }[] = [
      { name: 'caps a larger max_tokens', max: { max_tokens: 500 }, want: { max_tokens: 50 } },
      { name: 'keeps a smaller max_tokens', max: { max_tokens: 20 }, want: { max_tokens: 20 } },
      { name: 'caps max_completion_tokens without adding max_tokens', max: { max_completion_tokens: 900 }, want: { max_completion_tokens: 50, max_tokens: undefined } },
      { name: 'adds max_tokens when none was sent', want: { max_tokens: 50 } },
    ];
    for (const c of cases) {
      it(`${c.name}; forces user and prepends the system prompt`, async () => {
        const id = rid('transform');
        await chat(h, { key: KEYS.acmeSupport, id, content: 'hi', extra: { user: 'spoofed-user', ...c.max } });
        const body = h.fakes.openai!.requests.at(-1)!.json as any;
        for (const [k, v] of Object.entries(c.want)) assert.equal(body[k], v, k);
        assert.equal(body.user, 'bob', 'the principal, not the client-supplied user');
        assert.deepEqual(
          body.messages.map((m: any) => [m.role, m.content]),
          [
            ['system', 'You are assisting ACME support.'],
            ['user', 'hi'],
          ],
        );
        const rec = await lineageOf(h, id);
        assert.equal(rec.policy?.rules?.find((r) => r.rule === 'support-transforms')?.outcome, 'applied');
      });
    }

    it('does not transform requests of principals the policy does not match', async () => {
      await chat(h, { key: KEYS.acme, content: 'hi', extra: { max_tokens: 500 } });
      const body = h.fakes.openai!.requests.at(-1)!.json as any;
      assert.equal(body.max_tokens, 500);
      assert.equal(body.user, undefined);
      assert.equal(body.messages.length, 1);
    });
  });

  describe('labels', () => {
    it('label values appear in the lineage record (non-stream and stream)', async () => {
      const id = rid('labels');
      await chat(h, { key: KEYS.acmeSupport, id });
      const rec = await lineageOf(h, id);
      assert.deepEqual(rec.policy?.labels, { team: 'support', family: 'other', streamed: 'false' });

      const sid = rid('labels-stream');
      const stream = await client(h).chat.completions.create(
        { model: 'claude-sonnet', messages: [{ role: 'user', content: 'hi' }], stream: true },
        { headers: { 'x-request-id': sid } },
      );
      for await (const _ of stream) void _;
      const srec = await lineageOf(h, sid);
      assert.deepEqual(srec.policy?.labels, { team: 'research', family: 'claude', streamed: 'true' });
    });
  });

  describe('dry run', () => {
    it('a dryRun deny does not block, is recorded in lineage dryRunDenies, and dry-run redact/transform are not applied', async () => {
      const id = rid('dryrun');
      const res = await chat(h, { case: 'dryrun', id, content: 'write to jane.doe@example.com', extra: { max_tokens: 100 } });
      assert.equal(res.object, 'chat.completion');
      const body = h.fakes.openai!.requests.at(-1)!.json as any;
      assert.equal(body.messages[0].content, 'write to jane.doe@example.com', 'dry-run redaction is not applied');
      assert.equal(body.max_tokens, 100, 'dry-run transform is not applied');
      const rec = await lineageOf(h, id);
      assert.equal(rec.outcome, 'success');
      assert.deepEqual(rec.policy?.dryRunDenies, [{ policy: 'rollout', rule: 'no-emails', message: 'prompts with email addresses will be denied' }]);
      const outcomes = Object.fromEntries((rec.policy?.rules ?? []).filter((r) => r.policy === 'rollout').map((r) => [r.rule, r.outcome]));
      assert.equal(outcomes['would-mask'], 'skipped');
      assert.equal(outcomes['would-cap'], 'skipped');
      assert.deepEqual(rec.redactions, []);
    });

    it('a request the dry-run rule would allow has no dryRunDenies', async () => {
      const id = rid('dryrun-ok');
      await chat(h, { case: 'dryrun', id, content: 'nothing to see' });
      const rec = await lineageOf(h, id);
      assert.deepEqual(rec.policy?.dryRunDenies, []);
    });
  });

  describe('evaluation errors fail closed', () => {
    it('onError: deny (default): 403 policy_error naming policy and rule; the CEL detail stays out', async () => {
      const id = rid('fail-closed');
      const before = h.fakes.openai!.requests.length;
      const err = await rejectsWith(chat(h, { case: 'fail-closed', id }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'policy_error',
        message: 'request denied: policy "fragile" rule "reads-missing" could not be evaluated',
      });
      assert.ok(!/nope|no such key/i.test(JSON.stringify(err.error)), JSON.stringify(err.error));
      assert.equal(h.fakes.openai!.requests.length, before);
      const rec = await lineageOf(h, id);
      assert.equal(rec.outcome, 'denied');
      assert.equal(rec.policy?.rules?.find((r) => r.policy === 'fragile' && r.rule === 'reads-missing')?.outcome, 'error');
      // The emitter updates metrics from the lineage record off the hot path: poll for it.
      let counted = 0;
      for (let i = 0; i < 100 && counted < 1; i++) {
        const metrics = await (await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/metrics`)).text();
        counted = Number(/^tollgate_policy_evaluation_errors_total\{policy="fragile"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
        if (counted < 1) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(counted >= 1, 'the evaluation error is counted in /metrics');
    });

    it('the same rule with onError: skip is recorded as error and the request is allowed', async () => {
      const id = rid('fail-skip');
      const res = await chat(h, { case: 'fail-skip', id });
      assert.equal(res.object, 'chat.completion');
      const rec = await lineageOf(h, id);
      assert.equal(rec.policy?.rules?.find((r) => r.policy === 'fragile-skip' && r.rule === 'reads-missing')?.outcome, 'error');
    });

    it('when the field exists, the rule evaluates normally', async () => {
      const p = client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], nope: 5 } as any, { headers: { 'x-e2e-case': 'fail-closed' } });
      await rejectsWith(p, { cls: OpenAI.PermissionDeniedError, status: 403, code: 'policy_denied', message: 'never shown' });
    });

    it('an erroring matchCondition also fails closed', async () => {
      await rejectsWith(chat(h, { case: 'mc-error' }), {
        cls: OpenAI.PermissionDeniedError,
        status: 403,
        code: 'policy_error',
        message: /^request denied: policy "fragile-condition" .*could not be evaluated$/,
      });
    });
  });

  describe('transforms across client APIs (set/remove too)', () => {
    const anthropic = (key = KEYS.acme) => new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, timeout: 15000 });

    it('OpenAI client → OpenAI provider: cap, user, leading system message, set and remove', async () => {
      await client(h).chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 999, seed: 7, temperature: 1.5, user: 'spoof' },
        { headers: { 'x-e2e-case': 'transform' } },
      );
      const body = h.fakes.openai!.requests.at(-1)!.json as any;
      assert.equal(body.max_tokens, 50);
      assert.equal(body.user, 'alice');
      assert.equal(body.temperature, 0.1);
      assert.equal('seed' in body, false);
      assert.deepEqual(body.messages[0], { role: 'system', content: 'Policy preamble.' });
    });

    it('Anthropic client → Anthropic provider: cap, metadata.user_id, system prepended to the client system', async () => {
      const msg = await anthropic().messages.create(
        { model: 'claude-sonnet', max_tokens: 1000, system: 'Client system.', metadata: { user_id: 'spoof' }, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-e2e-case': 'transform' } },
      );
      assert.equal(msg.type, 'message');
      const body = h.fakes.anthropic!.requests.at(-1)!.json as any;
      assert.equal(body.max_tokens, 50);
      assert.deepEqual(body.metadata, { user_id: 'alice' });
      assert.equal(body.system, 'Policy preamble.\n\nClient system.');
      assert.equal(body.temperature, 0.1);
    });

    it('OpenAI client → Anthropic provider (translated): the preamble comes before the client system prompt', async () => {
      await client(h).chat.completions.create(
        { model: 'claude-sonnet', messages: [{ role: 'system', content: 'Client system.' }, { role: 'user', content: 'hi' }], max_tokens: 999 },
        { headers: { 'x-e2e-case': 'transform' } },
      );
      const body = h.fakes.anthropic!.requests.at(-1)!.json as any;
      assert.equal(body.max_tokens, 50);
      const system = typeof body.system === 'string' ? body.system : (body.system as { text: string }[]).map((b) => b.text).join('\n\n');
      assert.ok(system.indexOf('Policy preamble.') === 0 && system.includes('Client system.'), JSON.stringify(body.system));
      assert.deepEqual(body.messages.map((m: any) => m.role), ['user']);
    });

    it('Anthropic client: a deny is an Anthropic-shaped 403 permission_error with the rule message', async () => {
      const p = anthropic().messages.create(
        // temperature satisfies the access policy's require rule, so the deny rule is what stops it
        { model: 'claude-sonnet', max_tokens: 100, messages: [{ role: 'user', content: 'the forbidden-word' }], temperature: 0.5 } as unknown as Anthropic.MessageCreateParamsNonStreaming,
        { headers: { 'x-e2e-case': 'deny' } },
      );
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof Anthropic.PermissionDeniedError, String(e));
        assert.equal(e.status, 403);
        const err = e.error as { type: string; error: { type: string; message: string } };
        assert.equal(err.type, 'error');
        assert.equal(err.error.type, 'permission_error');
        assert.equal(err.error.message, 'prompts may not mention the forbidden word');
        return true;
      });
    });
  });

  describe('GET /v1/models', () => {
    const cases: { name: string; key: string; models: string[] }[] = [
      { name: 'acme research: everything', key: KEYS.acme, models: ['claude-sonnet', 'gpt-4o-mini', 'resident-chat', 'text-embedding-3-small'] },
      { name: 'acme support: its allow list', key: KEYS.acmeSupport, models: ['gpt-4o-mini', 'resident-chat', 'text-embedding-3-small'] },
      { name: 'globex (free): claude-* denied', key: KEYS.globex, models: ['gpt-4o-mini', 'resident-chat', 'text-embedding-3-small'] },
      { name: 'initech (EU residency): only models with an EU deployment', key: EU_KEY, models: ['resident-chat'] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const ids: string[] = [];
        for await (const m of client(h, c.key).models.list()) ids.push(m.id);
        assert.deepEqual(ids.sort(), c.models);
      });
    }
  });
});
