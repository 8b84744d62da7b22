// Per-caller cache of caller-constant expression values (service/policy/caller-cache.ts): which
// expressions it may hold (decided at compile time), that cached decisions equal uncached ones, and
// that a changed caller, tenant/team attributes or bundle is seen by the very next request.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readConfigDir } from '../../service/config/documents.ts';
import { compileDocuments, type CExpr, type CompiledPolicies } from '../../service/policy/compile.ts';
import { createBundle } from '../../service/policy/evaluate.ts';
import type { Decision, PolicyBundle, PolicyInput } from '../../service/policy/types.ts';
import { deployment, input, policyDocs } from './helpers.ts';

const examples = join(import.meta.dirname, '../../policies/policies');

function exprsOf(c: CompiledPolicies): { policy: string; name: string; e: CExpr }[] {
  const out: { policy: string; name: string; e: CExpr }[] = [];
  for (const p of c.policies) {
    for (const v of p.variables) out.push({ policy: p.name, name: `variables.${v.name}`, e: v.expr });
    for (const m of p.matchConditions) out.push({ policy: p.name, name: `matchConditions/${m.name}`, e: m.expr });
    for (const r of p.rules) {
      for (const k of ['when', 'expr', 'messageExpr', 'scopeExpr'] as const) {
        const e = (r as Partial<Record<typeof k, CExpr>>)[k];
        if (e) out.push({ policy: p.name, name: `${r.name}.${k}`, e });
      }
      if (r.kind === 'label') for (const [k, e] of r.labels) out.push({ policy: p.name, name: `${r.name}.labels.${k}`, e });
    }
  }
  return out;
}

/** Counts evaluations of every expression (the compiled run function wrapped in place). */
function counting(c: CompiledPolicies): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { policy, name, e } of exprsOf(c)) {
    const key = `${policy}/${name}`;
    const run = e.compiled.run.bind(e.compiled);
    counts.set(key, 0);
    e.compiled.run = (act) => {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return run(act);
    };
  }
  return counts;
}

/** Everything a decision tells the gateway and lineage (durations excepted), candidates included. */
function view(d: Decision): unknown {
  const deps = [deployment({ id: 'us', region: 'us-east-1' }), deployment({ id: 'eu', region: 'eu-west-1' }), deployment({ id: 'self', region: 'us-east-1', selfHosted: true })];
  const alt = d.forModel('claude-3-opus-20240229');
  return {
    denied: d.denied,
    rules: d.rules.map(({ durationUs: _d, ...r }) => r),
    labels: d.labels,
    budgets: d.budgets,
    rateLimits: d.rateLimits,
    redactions: d.redactions,
    customDetectors: d.customDetectors.map((c) => c.name),
    transforms: d.transforms,
    dryRunDenials: d.dryRunDenials,
    routes: deps.map((x) => d.routeCheck(x)),
    alt: { denied: alt.denied, budgets: alt.budgets, rateLimits: alt.rateLimits, routes: deps.map((x) => alt.routeCheck(x)) },
  };
}

const ACME = { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu' }, timeZone: 'Europe/Berlin' };
const GLOBEX = { name: 'globex', attributes: { tier: 'free', residency: 'any' }, timeZone: 'America/New_York' };
const RESEARCH = { name: 'research', attributes: { costCenter: 'r-and-d' } };
const SUPPORT = { name: 'support', attributes: { costCenter: 'cx', handlesCustomerData: true, piiHandling: 'pseudonymize' } };
const NONE = { name: '', attributes: {} };

function caller(i: number): Pick<PolicyInput, 'principal' | 'tenant' | 'team'> {
  const table: Pick<PolicyInput, 'principal' | 'tenant' | 'team'>[] = [
    { principal: { keyId: 'k1', tenant: 'acme', team: 'research', user: 'alice', groups: ['eng'], claims: {}, authMethod: 'key' }, tenant: ACME, team: RESEARCH },
    { principal: { keyId: 'k2', tenant: 'acme', team: 'support', user: 'bob', groups: [], claims: {}, authMethod: 'key' }, tenant: ACME, team: SUPPORT },
    { principal: { keyId: 'k3', tenant: 'globex', team: '', user: '', groups: [], claims: {}, authMethod: 'key' }, tenant: GLOBEX, team: NONE },
    { principal: { keyId: '', tenant: 'acme', team: 'research', user: 'carol', groups: ['a', 'b'], claims: { sub: 'carol', tenant: 'acme' }, authMethod: 'jwt' }, tenant: ACME, team: RESEARCH },
    { principal: { keyId: 'k4', tenant: '', team: '', user: '', groups: [], claims: {}, authMethod: 'key' }, tenant: { name: '', attributes: {} }, team: NONE },
  ];
  return table[i % table.length] as Pick<PolicyInput, 'principal' | 'tenant' | 'team'>;
}

function request(i: number): PolicyInput {
  const models = ['gpt-4o-mini', 'claude-3-opus-20240229', 'llama-3.1-8b', 'claude-sonnet'];
  const times = ['2025-01-15T10:00:00Z', '2025-01-18T22:30:00Z', '2025-01-16T05:00:00Z'];
  const base = input({
    body: { model: models[i % models.length], messages: [{ role: 'user', content: `hello ${'x'.repeat(i % 3)}` }], ...(i % 5 === 0 ? { n: 6 } : {}) },
    now: new Date(times[i % times.length] as string),
  });
  return { ...base, ...caller(Math.floor(i / 2)) };
}

/** A request the example policies allow (no phase-1 denial), from caller 0. */
function plainRequest(): PolicyInput {
  return { ...input({ body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }), ...caller(0) };
}

describe('caller cache: compile-time classification', () => {
  it('marks exactly the expressions of the example bundle that read only principal/tenant/team (and such variables)', () => {
    const c = compileDocuments(readConfigDir(examples));
    const all = exprsOf(c);
    const constVars = new Set(all.filter((x) => x.name.startsWith('variables.') && x.e.callerConstant).map((x) => `${x.policy}/${x.name}`));
    for (const { policy, name, e } of all) {
      const src = e.compiled.source;
      const readsOther = /\b(request|deployment|now|mcp)\b/.test(src);
      const vars = [...src.matchAll(/variables\.(\w+)/g)].map((m) => `${policy}/variables.${m[1]}`);
      const expected = !readsOther && vars.every((v) => constVars.has(v));
      assert.equal(e.callerConstant, expected, `${policy}/${name}: ${src}`);
      assert.equal(e.callerSlot >= 0, expected, `${policy}/${name}: slot`);
    }
    // Spot checks: request/deployment/now readers never cached.
    const by = (p: string, n: string): CExpr => (all.find((x) => x.policy === p && x.name === n) as { e: CExpr }).e;
    assert.equal(by('baseline', 'prompt-size.expr').callerConstant, false);
    assert.equal(by('baseline', 'request-labels.labels.endpoint').callerConstant, false);
    assert.equal(by('eu-residency', 'eu-or-self-hosted.expr').callerConstant, false);
    assert.equal(by('premium-hours', 'variables.berlinHour').callerConstant, false);
    assert.equal(by('baseline', 'request-labels.labels.tier').callerConstant, true);
    assert.equal(by('data-protection', 'mask-pii.when').callerConstant, true);
    const slots = all.filter((x) => x.e.callerSlot >= 0).map((x) => x.e.callerSlot).sort((a, b) => a - b);
    assert.deepEqual(slots, [...Array(c.callerSlots).keys()], 'slots are 0..n-1, one per expression');
    assert.ok(c.callerSlots >= 15, `only ${c.callerSlots} caller-constant expressions`);
  });

  it('never caches an expression reading a variable that reads request.*, nor one reading the whole variables map', () => {
    const c = compileDocuments(
      policyDocs(`  variables:
    - {name: m, expression: "request.model"}
    - {name: t, expression: "principal.tenant"}
    - {name: mt, expression: "variables.t + variables.m"}
  rules:
    - name: a
      deny: {expression: "variables.mt == 'x'"}
    - name: b
      deny: {expression: "variables.t == 'x'"}
    - name: c
      deny: {expression: "size(variables) > 99"}
    - name: d
      deny: {expression: "principal.groups.exists(g, g == request.model)"}
`),
    );
    const got = Object.fromEntries(exprsOf(c).map((x) => [x.name, x.e.callerConstant]));
    assert.deepEqual(got, { 'variables.m': false, 'variables.t': true, 'variables.mt': false, 'a.expr': false, 'b.expr': true, 'c.expr': false, 'd.expr': false });
  });
});

describe('caller cache: evaluation', () => {
  it('gives the same decisions as uncached evaluation across a table of callers, models and times', () => {
    const docs = readConfigDir(examples);
    const cached = createBundle(compileDocuments(docs));
    const plain = createBundle(compileDocuments(docs), { callerCache: false });
    // Three rounds in different orders: the second and third hit the cache filled by earlier callers.
    const n = 40;
    for (const order of [(i: number) => i, (i: number) => n - 1 - i, (i: number) => (i * 7) % n]) {
      for (let k = 0; k < n; k++) {
        const i = order(k);
        const a = cached.evaluate(request(i), { candidates: true });
        const b = plain.evaluate(request(i), { candidates: true });
        assert.deepEqual(view(a), view(b), `request ${i}`);
      }
    }
  });

  it('evaluates a caller-constant expression once per caller, and request-reading ones on every request', () => {
    const c = compileDocuments(readConfigDir(examples));
    const counts = counting(c);
    const bundle = createBundle(c);
    for (let i = 0; i < 3; i++) assert.equal(bundle.evaluate(plainRequest()).denied, undefined);
    assert.equal(counts.get('baseline/tenant-bound.expr'), 1);
    assert.equal(counts.get('baseline/request-labels.labels.tier'), 1);
    assert.equal(counts.get('baseline/prompt-size.expr'), 3);
    assert.equal(counts.get('baseline/request-labels.labels.endpoint'), 3);
    // Another caller: evaluated for it too.
    bundle.evaluate({ ...plainRequest(), ...caller(1) });
    assert.equal(counts.get('baseline/tenant-bound.expr'), 2);
    // A JWT caller (claims) is never cached.
    bundle.evaluate({ ...plainRequest(), ...caller(3) });
    bundle.evaluate({ ...plainRequest(), ...caller(3) });
    assert.equal(counts.get('baseline/tenant-bound.expr'), 4);
  });

  it('sees a managed key update (team, groups, user) and new tenant/team attributes on the next request', () => {
    const bundle = createBundle(compileDocuments(readConfigDir(examples)));
    const first = caller(0);
    const d1 = bundle.evaluate({ ...plainRequest(), ...first });
    assert.equal(d1.labels.team, 'research');
    assert.equal(d1.labels.tier, 'enterprise');
    // The key moved to another team (key store update: same key id, new record).
    const moved = { ...first, principal: { ...first.principal, team: 'support' }, team: SUPPORT };
    const d2 = bundle.evaluate({ ...plainRequest(), ...moved });
    assert.equal(d2.labels.team, 'support');
    assert.ok(d2.rules.some((r) => r.policy === 'support-pseudonyms' && r.outcome === 'applied'), 'support-pseudonyms now applies');
    // Config reload: the tenant's attributes are a new object with new content.
    const reloaded = { ...first, tenant: { ...ACME, attributes: { tier: 'free', residency: 'any' } } };
    const d3 = bundle.evaluate({ ...plainRequest(), ...reloaded });
    assert.match(d3.denied?.rule ?? '', /^free-tier\//, 'the free tier now denies gpt-4o-mini');
    assert.equal(d1.denied, undefined);
    // And back: the original caller's decision is unchanged.
    assert.deepEqual(view(bundle.evaluate({ ...plainRequest(), ...first })), view(d1));
  });

  it('reuses a caller-constant variable even when the expression reading it also reads the request', () => {
    const c = compileDocuments(
      policyDocs(`  variables:\n    - {name: t, expression: "principal.tenant + '-x'"}\n  rules:\n    - name: d\n      deny: {expression: "variables.t == request.model"}\n`),
    );
    const counts = counting(c);
    const bundle = createBundle(c);
    const ask = (model: string, who: number): Decision => bundle.evaluate({ ...input({ body: { model, messages: [] } }), ...caller(who) });
    assert.equal(ask('acme-x', 0).denied?.rule, 'p/d');
    assert.equal(ask('other', 0).denied, undefined);
    assert.equal(ask('acme-x', 0).denied?.rule, 'p/d');
    assert.equal(ask('globex-x', 2).denied?.rule, 'p/d');
    assert.equal(ask('acme-x', 2).denied, undefined);
    assert.equal(counts.get('p/variables.t'), 2, 'once per caller');
    assert.equal(counts.get('p/d.expr'), 5, 'every request');
  });

  it('tells callers apart by every principal field, groups included, whatever characters they hold', () => {
    const bundle = createBundle(compileDocuments(policyDocs(`  rules:\n    - name: l\n      label: {who: "principal.team + '|' + principal.user + '|' + string('eng' in principal.groups)"}\n`)));
    const who = (team: string, user: string, groups: string[]): string | undefined =>
      bundle.evaluate(input({ principal: { team, user, groups } })).labels.who;
    assert.equal(who('a', 'b', ['eng']), 'a|b|true');
    assert.equal(who('a', 'b', []), 'a|b|false', 'the key lost its group');
    assert.equal(who('a', 'b', ['en', 'g']), 'a|b|false');
    assert.equal(who('a1', ':b', ['eng']), 'a1|:b|true');
    assert.equal(who('a', '1:b', ['eng']), 'a|1:b|true');
    assert.equal(who('a', 'b', ['eng']), 'a|b|true');
  });

  it('a reloaded bundle does not reuse values of the previous one', () => {
    const v1 = createBundle(compileDocuments(policyDocs(`  rules:\n    - name: l\n      label: {who: "principal.tenant + '-v1'"}\n`)));
    const v2 = createBundle(compileDocuments(policyDocs(`  rules:\n    - name: l\n      label: {who: "principal.tenant + '-v2'"}\n`)));
    assert.equal(v1.evaluate(input()).labels.who, 'acme-v1');
    assert.equal(v2.evaluate(input()).labels.who, 'acme-v2');
    assert.equal(v1.evaluate(input()).labels.who, 'acme-v1');
  });

  it('does not cache errors: a failing caller-constant rule fails (closed) the same way on every request', () => {
    const c = compileDocuments(policyDocs(`  rules:\n    - name: cc\n      require: {expression: "tenant.attributes.costCenter == 'x'"}\n`));
    const counts = counting(c);
    const bundle: PolicyBundle = createBundle(c);
    const a = bundle.evaluate(input());
    const b = bundle.evaluate(input());
    assert.equal(a.denied?.reason, 'policy_error');
    assert.deepEqual(view(b), view(a));
    assert.equal(a.rules[0]?.outcome, 'error');
    assert.equal(counts.get('p/cc.expr'), 2);
  });
});

describe('caller cache: scope keys and callers sharing a key id', () => {
  const spec = `  rules:
    - name: who
      label: {who: "principal.tenant + '|' + principal.team + '|' + principal.user + '|' + string(size(principal.groups)) + '|' + principal.authMethod + '|' + principal.keyId + '|' + tenant.name + '|' + tenant.timeZone + '|' + team.name + '|' + string(team.attributes.costCenter) + '|' + string(tenant.attributes.tier)"}
    - {name: by-key, budget: {scope: key, limit: {usd: 1}, window: day}}
    - {name: by-user, budget: {scope: user, limit: {usd: 1}, window: day}}
    - {name: by-team, rateLimit: {scope: team, rpm: 5}}
    - {name: by-tenant, rateLimit: {scope: tenant, rpm: 5}}
    - {name: by-model, budget: {scope: model, limit: {usd: 1}, window: day}}
    - {name: by-custom, budget: {scope: custom, scopeExpression: "principal.tenant + ':' + principal.user", limit: {usd: 1}, window: day}}
`;
  const BASE: Pick<PolicyInput, 'principal' | 'tenant' | 'team'> = {
    principal: { keyId: 'k1', tenant: 'acme', team: 'research', user: 'alice', groups: ['eng'], claims: {}, authMethod: 'key' },
    tenant: ACME,
    team: RESEARCH,
  };
  /** The base caller with exactly one field changed (a key store update, or a key id reused by another store). */
  const VARIANTS: Pick<PolicyInput, 'principal' | 'tenant' | 'team'>[] = [
    { ...BASE, principal: { ...BASE.principal, user: '' } },
    { ...BASE, principal: { ...BASE.principal, user: 'bob' } },
    { ...BASE, principal: { ...BASE.principal, team: '' } },
    { ...BASE, principal: { ...BASE.principal, team: 'support' } },
    { ...BASE, principal: { ...BASE.principal, tenant: '' } },
    { ...BASE, principal: { ...BASE.principal, tenant: 'globex' } },
    { ...BASE, principal: { ...BASE.principal, groups: ['eng', 'ops'] } },
    { ...BASE, principal: { ...BASE.principal, groups: [] } },
    { ...BASE, principal: { ...BASE.principal, authMethod: 'jwt' } },
    { ...BASE, tenant: { ...ACME, name: 'acme2' } },
    { ...BASE, tenant: { ...ACME, timeZone: 'UTC' } },
    { ...BASE, tenant: GLOBEX },
    { ...BASE, team: { ...RESEARCH, name: 'research2' } },
    { ...BASE, team: SUPPORT },
    // A reload: same names, new attribute objects.
    { ...BASE, team: { ...RESEARCH, attributes: { costCenter: 'other' } } },
    { ...BASE, tenant: { ...ACME, attributes: { tier: 'free', residency: 'eu' } } },
    { ...BASE, principal: { ...BASE.principal, keyId: 'k2' } },
    { ...BASE, principal: { ...BASE.principal, keyId: '' } },
  ];
  /** Alternates the base caller and each variant, so every field is at some point the only difference. */
  function sharing(i: number): Pick<PolicyInput, 'principal' | 'tenant' | 'team'> {
    return i % 2 === 0 ? BASE : (VARIANTS[(i >> 1) % VARIANTS.length] as Pick<PolicyInput, 'principal' | 'tenant' | 'team'>);
  }

  it('gives the same budgets, rate limits, labels and errors as uncached evaluation', () => {
    const cached = createBundle(compileDocuments(policyDocs(spec)));
    const plain = createBundle(compileDocuments(policyDocs(spec)), { callerCache: false });
    const models = ['gpt-4o-mini', 'claude-sonnet', 'alias-x'];
    for (let i = 0; i < 120; i++) {
      const body = { model: models[i % models.length], messages: [{ role: 'user', content: 'hi' }] };
      const mk = (): PolicyInput => {
        const base = input({ body });
        if (i % 4 === 0) base.request.canonicalModel = 'gpt-4o';
        return { ...base, ...sharing(i) };
      };
      const a = cached.evaluate(mk());
      const b = plain.evaluate(mk());
      assert.deepEqual(view(a), view(b), `request ${i}`);
    }
  });

  it('builds the scope keys from the request\'s own caller after a key id changes hands', () => {
    const bundle = createBundle(compileDocuments(policyDocs(spec)));
    const keys = (who: Pick<PolicyInput, 'principal' | 'tenant' | 'team'>): string[] => {
      const d = bundle.evaluate({ ...input(), ...who });
      return [...d.budgets.map((b) => b.scopeKey), ...d.rateLimits.map((l) => l.scopeKey)];
    };
    const alice = BASE;
    const moved = { ...alice, principal: { ...alice.principal, tenant: 'globex', team: 'ops', user: 'zed' }, tenant: GLOBEX };
    const first = keys(alice);
    assert.deepEqual(first, ['key:k1', 'user:acme/alice', 'model:gpt-4o-mini', 'custom:acme:alice', 'team:acme/research', 'tenant:acme']);
    assert.deepEqual(keys(moved), ['key:k1', 'user:globex/zed', 'model:gpt-4o-mini', 'custom:globex:zed', 'team:globex/ops', 'tenant:globex']);
    assert.deepEqual(keys(alice), first);
  });
});
