// The native fast path must agree with @bufbuild/cel on every expression it handles: same value,
// or both an error. Each expression runs on both engines over varied inputs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCelError, parse, plan } from '@bufbuild/cel';
import { compileExpression, env, errorMessage } from '../../service/policy/cel.ts';
import { baseActivation, declaredVars, DEPLOYMENT_T, deploymentValue, sampleInputs } from '../../service/policy/context.ts';
import type { DeploymentInfo } from '../../service/policy/types.ts';
import { T } from '../../service/policy/checker.ts';
import type { PolicyInput } from '../../service/policy/types.ts';
import { deployment, input } from './helpers.ts';
import { eagerActivation } from './eager-activation.ts';

const EXPRESSIONS = [
  "request.model == 'gpt-4o-mini'",
  "request.model != 'x' && request.stream",
  "request.stream || request.model.startsWith('claude')",
  'request.tokenEstimate > 10',
  'request.tokenEstimate >= 10.5',
  'request.tokenEstimate + 5 < 100',
  'request.tokenEstimate * 3 - 1 <= 100',
  'request.size > 100 && request.size < 100000',
  'request.params.temperature > 0.5',
  'request.params.temperature == 0.7',
  'request.params.max_tokens == 256',
  'request.params.max_tokens == 256.0',
  'request.params.max_tokens + 1.0 > 256.5',
  'has(request.params.temperature)',
  'has(request.params.nope)',
  'request.params.nope > 3',
  'request.params.nope > 3 || true',
  'true || request.params.nope > 3',
  'request.params.nope > 3 && false',
  'false && request.params.nope > 3',
  'request.params.nope > 3 && true',
  "request.params.user == 'u-123'",
  "request.params.user > 'a'",
  "request.params.metadata.project == 'demo'",
  "request.params['metadata']['project'] == 'demo'",
  "request.params.tools[0].type == 'function'",
  'request.params.tools[5].type == 1',
  "request.headers['user-agent'].contains('openai')",
  "'x-request-id' in request.headers",
  "request.headers['x-missing'] == 'a'",
  "request.endpoint in ['chat', 'messages']",
  'request.endpoint in []',
  "principal.groups.size() > 0 && 'admins' in principal.groups",
  "principal.claims.email.endsWith('@example.com')",
  'principal.claims.exp > 1000',
  "principal.user == '' ? 'anon' : principal.user",
  "principal.authMethod == 'jwt' ? principal.claims.sub : principal.keyId",
  "tenant.attributes.tier == 'free'",
  "'tier' in tenant.attributes && tenant.attributes.tier == 'free'",
  "tenant.attributes.regions[0].startsWith('eu')",
  'tenant.attributes.maxTokens == 8192',
  "string(team.attributes.costCenter) + '/' + team.name",
  'team.attributes.budgetUsd * 2.0',
  '!request.stream',
  '!(request.tokenEstimate > 5)',
  "request.model.glob('gpt-4*') || request.model.glob(['claude-*', 'llama*'])",
  "glob(request.model, '*mini')",
  "request.model.lowerAscii() == request.model.upperAscii().lowerAscii()",
  'request.messages.size() + size(request.messages) > 1',
  "size(request.model) == request.model.size()",
  'string(request.tokenEstimate)',
  "string(request.stream) == 'false'",
  "cidrContains('10.0.0.0/8', request.headers['x-forwarded-for'])",
  "cidrContains(['192.168.0.0/16', '10.1.0.0/16'], request.headers['x-forwarded-for'])",
  "cidrContains('10.0.0.0/8', request.model)",
  'now.getHours()',
  "now.getHours('Europe/Berlin')",
  "now.getDayOfWeek('America/Los_Angeles')",
  "now.getDayOfYear('Asia/Tokyo')",
  "now.getDate('Australia/Sydney') + now.getDayOfMonth('Australia/Sydney')",
  "now.getMonth('Pacific/Auckland') + now.getFullYear('Pacific/Auckland')",
  "now.getMinutes('Asia/Kolkata') + now.getSeconds('UTC') + now.getMilliseconds()",
  "now.getHours('+05:30') + now.getHours('-08:00')",
  "request.params.temperature + 1",
  'request.tokenEstimate * 4611686018427387904 > 0',
  "[request.model, principal.user].size() == 2",
  "request.model in [1, 'gpt-4o-mini']",
  'request.params.n == null',
  'has(request.params.n)',
  "'n' in request.params",
  'request.params.top_p == 1',
  // Literal lists are built once per expression; the time parts of the last instant are reused.
  "now.getDayOfWeek('Europe/Berlin') in [0, 6] || now.getHours('Europe/Berlin') < 8",
  "request.endpoint in ['chat', 'messages'] && request.model in ['chat', 'gpt-4o-mini', 1]",
  "[1, 2.0, 'x', true, null].size() == 5",
  "has(principal.claims.email) && principal.claims.email != ''",
  "has(request.headers) && has(tenant.timeZone)",
  // Comparisons with a string literal (specialised): strings, other types, errors, either side.
  "'free' == tenant.attributes.tier",
  "request.params.max_tokens == 'x'",
  "request.params.max_tokens != 'x'",
  "request.params.nope != 'a'",
  "'a' != request.params.nope",
  "request.params.metadata == 'demo'",
  "request.params.tools != 'x'",
  "request.params.n == 'x'",
  "principal.authMethod != 'key' && principal.tenant == 'acme'",
  "'a' == 'a' && 'a' != 'b'",
];

const DEPLOYMENT_EXPRESSIONS = [
  "deployment.region.startsWith('eu-') || deployment.selfHosted",
  '!deployment.dataRetention',
  "deployment.provider in ['azure-eu', 'vllm-local']",
  'deployment.inputPricePerM < 3.0 && deployment.contextWindow >= 100000',
  'deployment.outputPricePerM * 1.0 <= 10',
];

function inputs(): PolicyInput[] {
  const base = sampleInputs(new Date('2025-03-30T00:30:00Z')); // the night Europe switches to summer time
  const extra = [
    input({ now: new Date('2024-12-31T23:59:59.999Z'), headers: { 'x-forwarded-for': '10.1.2.3' } }),
    input({ now: new Date('2025-11-02T08:30:00Z'), headers: { 'x-forwarded-for': 'not-an-ip' }, body: { model: 'gpt-4o', stream: true, messages: [], temperature: 1, n: null } }),
    input({ now: new Date('2025-06-15T12:00:00Z'), body: JSON.parse('{"model":"m","messages":[],"constructor":{"x":1}}') }),
  ];
  return [...base, ...extra];
}

function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || a === b;
  return a === b;
}

/**
 * Every input is judged four ways: the library on the eager activation (the reference), the fast
 * path on the lazy activation the evaluator uses (fresh per expression, so no memo hides a
 * conversion), the fast path on a plain eager record, and the library on the lazy activation.
 */
function compare(src: string, withDeployment: boolean, inputs: PolicyInput[], dep?: DeploymentInfo): void {
  const c = compileExpression(src, declaredVars(new Map(), withDeployment), 'any');
  assert.ok(c.ok, `${src}: ${c.ok ? '' : c.message}`);
  assert.ok(c.expr.native, `${src} should compile to the fast path`);
  const lib = plan(env, parse(src)) as unknown as (a: Record<string, unknown>) => unknown;
  for (const inp of inputs) {
    const eager = eagerActivation(inp);
    const lazy = baseActivation(inp);
    if (dep) {
      eager.deployment = deploymentValue(dep);
      lazy.deployment = deploymentValue(dep);
    }
    const slow = lib(eager);
    for (const [how, fast] of [['fast/lazy', c.expr.run(lazy)], ['fast/eager', c.expr.run(eager)], ['library/lazy', lib(lazy)]] as const) {
      const fe = errorMessage(fast);
      if (isCelError(slow)) {
        assert.ok(fe !== undefined, `${src} (${how}): library errored (${slow.message}) but got ${String(fast)}`);
      } else {
        assert.equal(fe, undefined, `${src} (${how}): errored (${fe}) but the library returned ${String(slow)}`);
        assert.ok(same(fast, slow), `${src} (${how}): ${String(fast)} (${typeof fast}) != library ${String(slow)} (${typeof slow})`);
      }
    }
  }
}

describe('native fast path agrees with @bufbuild/cel', () => {
  for (const src of EXPRESSIONS) it(src, () => compare(src, false, inputs()));

  const deps = [
    deployment({ id: 'a' }),
    deployment({ id: 'b', region: 'eu-west-1', provider: 'azure-eu', dataRetention: true, inputPricePerM: 3 }),
    deployment({ id: 'c', region: 'self-hosted', selfHosted: true, provider: 'vllm-local', outputPricePerM: 0, contextWindow: 8192 }),
  ];
  for (const src of DEPLOYMENT_EXPRESSIONS) it(src, () => { for (const d of deps) compare(src, true, [input()], d); });

  it('expressions outside the subset use the library (comprehensions, regexes, maps, division)', () => {
    for (const src of ["request.messages.exists(m, m.role == 'system')", "request.model.matches('^gpt')", "{'a': 1}.a == 1", 'request.tokenEstimate / 2 > 1', "now > timestamp('2020-01-01T00:00:00Z')"]) {
      const c = compileExpression(src, declaredVars(new Map(), false), 'any');
      assert.ok(c.ok && !c.expr.native, src);
    }
  });

  it('time getters agree across many instants and zones', () => {
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kathmandu', 'Australia/Lord_Howe', '+01:00', '-09:30'];
    const getters = ['getHours', 'getMinutes', 'getDayOfWeek', 'getDayOfYear', 'getDate', 'getDayOfMonth', 'getMonth', 'getFullYear'];
    const t0 = Date.UTC(2024, 0, 1);
    const ins = Array.from({ length: 40 }, (_, i) => input({ now: new Date(t0 + i * 9.7 * 86400_000 + i * 3_600_000) }));
    for (const z of zones) for (const g of getters) compare(`now.${g}('${z}')`, false, ins);
  });
});

describe('timestamp getters are correct (the library override)', () => {
  // @bufbuild/cel 0.6.1 itself answers Monday for this Sunday instant (midnight-hour bug).
  const cases: [string, string, bigint][] = [
    ['2025-03-30T00:30:00Z', "now.getDayOfWeek('UTC')", 0n],
    ['2024-01-01T00:00:00Z', "now.getDayOfWeek('UTC')", 1n],
    ['2025-03-30T13:30:00Z', "now.getDate('Australia/Sydney')", 31n],
    ['2025-03-30T13:30:00Z', "now.getHours('Australia/Sydney')", 0n],
    ['2024-12-31T23:30:00Z', "now.getDayOfYear('Europe/Berlin')", 0n],
    ['2024-12-31T23:30:00Z', "now.getDayOfYear('UTC')", 365n],
    ['2025-03-30T01:30:00Z', "now.getHours('Europe/Berlin')", 3n],
    ['2025-06-01T12:00:00Z', "now.getHours('-08:00')", 4n],
  ];
  for (const [iso, src, want] of cases) {
    it(`${src} at ${iso} = ${want}`, () => {
      const act = baseActivation(input({ now: new Date(iso) }));
      const lib = plan(env, parse(src)) as unknown as (a: Record<string, unknown>) => unknown;
      assert.equal(lib(act), want);
      const c = compileExpression(src, declaredVars(new Map(), false), 'any');
      assert.ok(c.ok);
      assert.equal(c.expr.run(act), want);
    });
  }
});

// Keep the declared type table and the deployment record in sync with DeploymentInfo.
it('deployment record declares every DeploymentInfo field', () => {
  const fields = Object.keys(deployment({ id: 'x' })).sort();
  assert.deepEqual(Object.keys((DEPLOYMENT_T as { fields: object }).fields).sort(), fields);
  assert.equal(T.dyn.k, 'dyn');
});
