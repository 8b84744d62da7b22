// Differential tests of the evaluation fast paths (service/policy/evaluate.ts, fast.ts, context.ts,
// gateway/policy-input.ts): each must give exactly what the general path gives, over varied inputs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDocuments, type CompiledPolicies } from '../../service/policy/compile.ts';
import { createBundle } from '../../service/policy/evaluate.ts';
import { readConfigDir } from '../../service/config/documents.ts';
import { join } from 'node:path';
import { compiledTimeGetter, TIME_METHOD_NAMES, timeGetter, utcParts } from '../../service/policy/fast.ts';
import type { Decision, DeploymentInfo, PolicyBundle } from '../../service/policy/types.ts';
import { deployment, input, policyDocs } from './helpers.ts';
import { findTeam, TEAM_MEMO_MAX } from '../../service/gateway/policy-input.ts';
import { buildRequestInput, endpointOf, matchEndpoint, policyHeaders } from '../../service/policy/context.ts';
import type { TeamConfig } from '../../service/config/types.ts';

/** What a decision tells the gateway and lineage, durations excepted. */
function view(d: Decision): unknown {
  return { denied: d.denied, rules: d.rules.map(({ durationUs: _d, ...r }) => r), dryRunDenials: d.dryRunDenials, budgets: d.budgets, redactions: d.redactions, labels: d.labels };
}

/** Wraps every route rule's compiled expression to count its evaluations, by rule name. */
function countRouteRuns(c: CompiledPolicies): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of c.policies)
    for (const r of p.rules) {
      if (r.kind !== 'route') continue;
      const run = r.expr.compiled.run.bind(r.expr.compiled);
      counts.set(r.name, 0);
      r.expr.compiled.run = (act) => {
        counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
        return run(act);
      };
    }
  return counts;
}

describe('route rules reading only deployment fields: outcome remembered per deployment', () => {
  // Deployment-only rules (enforced, dry run, one that fails to evaluate on some deployments, one with a
  // comprehension), and rules that must never be remembered: they read the request, a variable or the clock.
  const spec = `  variables:
    - {name: eu, expression: "request.model.startsWith('gpt')"}
  rules:
    - name: region
      route: {expression: "deployment.region.startsWith('eu-') || deployment.selfHosted", message: stay in the EU}
    - name: retention
      mode: dryRun
      route: {expression: "!deployment.dataRetention", message: no retention}
    - name: cheap
      route: {expression: "deployment.inputPricePerM < 5.0 || ['self', 'p9'].exists(x, deployment.provider == x)", message: too expensive}
    - name: numeric-id
      onError: skip
      route: {expression: "int(deployment.id) >= 0", message: numeric ids only}
    - name: by-model
      route: {expression: "request.model != 'gpt-4o' || deployment.contextWindow >= 100000", message: small window}
    - name: by-variable
      mode: dryRun
      route: {expression: "!variables.eu || deployment.provider != 'p2'", message: not p2 for gpt}
    - name: by-clock
      mode: dryRun
      route: {expression: "now.getHours() < 12 || deployment.region != 'us-west-2'", message: mornings only}
`;
  const regions = ['eu-west-1', 'us-east-1', 'us-west-2', 'eu-central-1', 'self-hosted'];
  const deps: DeploymentInfo[] = Array.from({ length: 12 }, (_, i) =>
    deployment({
      id: i % 3 === 0 ? String(i) : `d${i}`,
      region: regions[i % regions.length] as string,
      selfHosted: i % 4 === 3,
      dataRetention: i % 2 === 0,
      inputPricePerM: (i * 1.7) % 9,
      provider: ['p1', 'p2', 'self', 'p9'][i % 4] as string,
      contextWindow: i % 5 === 1 ? 32000 : 128000,
    }),
  );
  const models = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'llama-3.1-8b'];
  const request = (i: number) => input({ body: { model: models[i % models.length], messages: [{ role: 'user', content: `q${i}` }] }, now: new Date(Date.UTC(2025, 0, 15, (i * 5) % 24)) });
  const bundles = (): { fast: PolicyBundle; plain: PolicyBundle; counts: Map<string, number> } => {
    const c = compileDocuments(policyDocs(spec));
    const counts = countRouteRuns(c);
    return { fast: createBundle(c), plain: createBundle(compileDocuments(policyDocs(spec)), { routeCache: false }), counts };
  };

  it('gives the same route verdicts, rule outcomes and dry-run denials as evaluating every time', () => {
    const { fast, plain } = bundles();
    for (let i = 0; i < 60; i++) {
      const a = fast.evaluate(request(i), { candidates: true });
      const b = plain.evaluate(request(i), { candidates: true });
      // Varied order, each deployment checked more than once per decision (the router may ask again).
      for (let k = 0; k < deps.length * 2; k++) {
        const d = deps[(k * 5 + i) % deps.length] as DeploymentInfo;
        assert.deepEqual(a.routeCheck(d), b.routeCheck(d), `request ${i}, deployment ${d.id}`);
      }
      const other = models[(i + 1) % models.length] as string;
      const va = a.forModel(other);
      const vb = b.forModel(other);
      for (const d of deps) assert.deepEqual(va.routeCheck(d), vb.routeCheck(d), `request ${i}, candidate ${other}, deployment ${d.id}`);
      assert.deepEqual(view(a), view(b), `request ${i}`);
    }
  });

  it('evaluates a deployment-only rule once per deployment, and the others on every check', () => {
    const { fast, counts } = bundles();
    for (let i = 0; i < 5; i++) {
      const d = fast.evaluate(request(i));
      for (const dep of deps) d.routeCheck(dep);
    }
    // Enforced rules run for a deployment only while every earlier enforced rule passed it.
    assert.equal(counts.get('region'), deps.length);
    assert.ok((counts.get('cheap') ?? 0) <= deps.length);
    // Errors are never remembered: the numeric-id rule fails on the `d…` ids on every request.
    const failing = deps.filter((d) => d.id.startsWith('d') && (d.region.startsWith('eu-') || d.selfHosted) && (d.inputPricePerM < 5 || ['self', 'p9'].includes(d.provider))).length;
    assert.ok(failing > 0);
    assert.ok((counts.get('numeric-id') ?? 0) >= failing * 5, `numeric-id ran ${counts.get('numeric-id')} times`);
    assert.ok((counts.get('by-model') ?? 0) > deps.length, 'request-reading rules run on every request');
    assert.ok((counts.get('by-clock') ?? 0) > deps.length, 'clock-reading rules run on every request');
  });

  it('keeps one memo per bundle: a reload with other rules is judged afresh', () => {
    const dep = deployment({ id: 'x', region: 'us-east-1' });
    const eu = createBundle(compileDocuments(policyDocs(`  rules:\n    - name: r\n      route: {expression: "deployment.region.startsWith('eu-')", message: eu only}\n`)));
    const us = createBundle(compileDocuments(policyDocs(`  rules:\n    - name: r\n      route: {expression: "deployment.region.startsWith('us-')", message: us only}\n`)));
    assert.deepEqual(eu.evaluate(input()).routeCheck(dep), { ok: false, rule: 'p/r', message: 'eu only' });
    assert.deepEqual(us.evaluate(input()).routeCheck(dep), { ok: true });
    assert.deepEqual(eu.evaluate(input()).routeCheck(dep), { ok: false, rule: 'p/r', message: 'eu only' });
  });
});

describe('time getters: the per-minute cache of UTC fields and getters compiled per zone', () => {
  /** The general path: a Date and its seven getters. */
  const dateFields = (t: number) => {
    const d = new Date(t);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() };
  };

  it('utcParts equals Date\'s fields: second by second across minutes, jumps, negative instants, range edges', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const starts = [0, -1, -60_000, -59_999, Date.UTC(2025, 0, 15, 10, 59, 58), Date.UTC(1969, 11, 31, 23, 58, 30), Date.UTC(2024, 1, 29, 23, 59, 0), 8.64e15 - 90_000, -8.64e15];
    const ts: number[] = [];
    for (const s of starts) for (let i = 0; i < 200; i++) ts.push(s + i * 1000 + (i % 7) * 113);
    // Backwards too (the cached minute is left and re-entered), random instants, and values Date truncates or rejects.
    for (const s of starts) for (let i = 0; i < 100; i++) ts.push(s + 100_000 - i * 997);
    for (let i = 0; i < 2000; i++) ts.push(Math.floor((rnd() - 0.5) * 2e13));
    ts.push(-0.5, -1500.25, 59_999.9, 8.64e15, 8.64e15 + 1, -8.64e15 - 1, Number.NaN, Number.POSITIVE_INFINITY);
    for (const t of ts) assert.deepEqual(utcParts(t), dateFields(t), `t=${t}`);
  });

  it('compiled getters equal timeGetter for every method, UTC, fixed offsets and IANA zones', () => {
    const zones = [undefined, 'UTC', '+05:45', '-03:30', '00:00', 'Europe/Berlin', 'America/New_York', 'Asia/Kathmandu', 'Pacific/Chatham'];
    const base = Date.UTC(2025, 2, 30, 0, 59, 0);
    for (const name of TIME_METHOD_NAMES)
      for (const tz of zones) {
        const get = compiledTimeGetter(name, tz);
        for (let i = 0; i < 400; i++) {
          const ms = base + i * 17_003 - (i % 3) * 86_400_000;
          assert.equal(get(ms), timeGetter(name, ms, tz), `${name}(${tz ?? ''}) at ${new Date(ms).toISOString()}`);
        }
      }
    assert.throws(() => compiledTimeGetter('getHours', 'Not/AZone')(0), RangeError);
  });
});

describe('policy input: the team memo and the method', () => {
  it('findTeam answers as teams.get(`${tenant}/${team}`) for any names, misses, many pairs and a changed map', () => {
    const team = (tenant: string, name: string): TeamConfig => ({ name, tenant, attributes: { of: `${tenant}|${name}` } });
    const teams = new Map<string, TeamConfig>();
    // "a/b" + "c" and "a" + "b/c" join to the same key: the memo must give the flat lookup's answer for both.
    for (const [t, n] of [['acme', 'research'], ['acme', 'support'], ['globex', 'default'], ['a/b', 'c'], ['x', '']] as const) teams.set(`${t}/${n}`, team(t, n));
    const asks: [string, string][] = [['acme', 'default'], ['acme', 'research'], ['acme', 'nope'], ['a', 'b/c'], ['a/b', 'c'], ['globex', 'default'], ['x', ''], ['', 'x'], ['acme', 'support']];
    for (let round = 0; round < 3; round++) for (const [t, n] of asks) assert.equal(findTeam(teams, t, n), teams.get(`${t}/${n}`), `${t} + ${n} (round ${round})`);
    // More distinct pairs than the memo keeps: still the flat answer before and after it starts over.
    for (let i = 0; i < TEAM_MEMO_MAX + 50; i++) assert.equal(findTeam(teams, `t${i % 97}`, `n${i}`), undefined);
    for (const [t, n] of asks) assert.equal(findTeam(teams, t, n), teams.get(`${t}/${n}`));
    // A map that gained a team (config maps are not mutated, but the answer must not go stale if one is).
    teams.set('acme/nope', team('acme', 'nope'));
    assert.equal(findTeam(teams, 'acme', 'nope'), teams.get('acme/nope'));
    assert.equal(findTeam(new Map(), 'acme', 'research'), undefined);
  });

  it('policyHeaders of the gateway\'s header Map equals the same headers as a record, key order included', () => {
    const names = [':method', ':path', 'content-type', 'Content-Length', 'authorization', 'Cookie', 'x-api-key', 'X-Tollgate-Cluster', 'x-tollgate-host', 'x-request-id', 'User-Agent', 'anthropic-version', 'x-forwarded-for', 'api-key', 'X-Custom'];
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 300; i++) {
      const m = new Map<string, string>();
      for (const n of names) if (rnd() < 0.6) m.set(n, `v${i}-${n}`);
      const fromMap = policyHeaders(m);
      assert.equal(JSON.stringify(fromMap), JSON.stringify(policyHeaders(Object.fromEntries(m))), `headers ${[...m.keys()].join(',')}`);
      for (const [k, v] of m) if (!k.startsWith(':') && !/^(authorization|cookie|x-api-key|api-key|x-tollgate-)/i.test(k)) assert.equal(fromMap[k.toLowerCase()], v);
    }
  });

  it('endpointOf (last path remembered) equals the regex match for repeated, alternating and new paths', () => {
    const paths = ['/v1/chat/completions', '/v1/messages', '/v1/embeddings', '/v1/responses', '/v1/models', '/v1/models/gpt-4o', '/v1/completions', '/v1/chat/completions?x=1', '', '/other', '/v1/messages/count_tokens', '/openai/v1/chat/completions'];
    for (let i = 0; i < 500; i++) {
      // Runs of the same path (as new strings), then jumps.
      const p = `${paths[Math.floor(i / 3) % paths.length] as string}`.slice(0);
      assert.equal(endpointOf(p), matchEndpoint(p), p);
      const q = paths[(i * 7) % paths.length] as string;
      assert.equal(endpointOf(q), matchEndpoint(q), q);
    }
    assert.equal(endpointOf('/v1/chat/completions'), 'chat');
    assert.equal(endpointOf('/v1/models/x'), 'models');
  });

  it('buildRequestInput upper-cases every method as before', () => {
    for (const method of ['POST', 'post', 'Post', 'GET', 'get', 'pOsT', 'HEAD', 'put', 'DELETE', 'POST ']) {
      const r = buildRequestInput({ method, path: '/v1/chat/completions', api: 'openai', headers: {}, body: { model: 'm' } });
      assert.equal(r.method, method.toUpperCase());
    }
  });
});

describe('outcome parts shared by every decision (redaction rules, budget limits and windows)', () => {
  it('equal, key for key and in order, the objects built from the rule per request before; frozen', () => {
    const c = compileDocuments(readConfigDir(join(import.meta.dirname, '../../policies/policies')));
    const rules = new Map(c.policies.flatMap((p) => p.rules.map((r) => [r.id, r] as const)));
    const bundle = createBundle(c);
    const callers = [
      { principal: { tenant: 'acme', team: 'research', keyId: 'k1' }, tenant: { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu' } }, team: { name: 'research', attributes: { costCenter: 'r-and-d' } } },
      { principal: { tenant: 'acme', team: 'support', keyId: 'k2' }, tenant: { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu' } }, team: { name: 'support', attributes: { costCenter: 'cx', piiHandling: 'pseudonymize' } } },
      { principal: { tenant: 'globex', team: 'default', keyId: 'k3' }, tenant: { name: 'globex', attributes: { tier: 'free', residency: 'any' } }, team: { name: 'default', attributes: {} } },
    ];
    let budgets = 0;
    let redactions = 0;
    for (const who of callers)
      for (const model of ['gpt-4o-mini', 'llama-3.1-8b']) {
        const a = bundle.evaluate(input({ ...who, body: { model, messages: [{ role: 'user', content: 'hi' }] } }));
        const b = bundle.evaluate(input({ ...who, body: { model, messages: [{ role: 'user', content: 'hi' }] } }));
        for (const x of a.budgets) {
          const r = rules.get(x.name);
          assert.ok(r?.kind === 'budget');
          const general = { name: r.id, scope: r.scope, scopeKey: x.scopeKey, limit: { ...r.limit }, window: { ...r.window }, enforcement: x.enforcement, onStoreError: r.onStoreError };
          assert.equal(JSON.stringify(x), JSON.stringify(general));
          assert.ok(Object.isFrozen(x.limit) && Object.isFrozen(x.window));
          budgets++;
        }
        for (const x of a.redactions) {
          const r = rules.get(x.source);
          assert.ok(r?.kind === 'redact');
          assert.equal(JSON.stringify(x), JSON.stringify({ source: r.id, detectors: r.detectors, action: r.action, responses: r.responses }));
          assert.ok(Object.isFrozen(x));
          redactions++;
        }
        assert.equal(JSON.stringify(view(a)), JSON.stringify(view(b)));
      }
    assert.ok(budgets >= 12 && redactions >= 10, `${budgets} budgets, ${redactions} redactions checked`);
  });
});

describe('policy variables: their Map allocated on first write', () => {
  it('a policy sees only its own computed variables; the shared empty map is never written', () => {
    const docs = [
      ...policyDocs(`  variables:\n    - {name: a, expression: "request.model"}\n    - {name: unused, expression: "principal.user"}\n  rules:\n    - name: r1\n      deny: {expression: "variables.a == 'blocked'"}\n    - name: r2\n      deny: {expression: "size(variables) != 1", message: one variable computed}\n`, 'a.yaml', 'a'),
      ...policyDocs(`  variables:\n    - {name: x, expression: "principal.team"}\n  rules:\n    - name: none-yet\n      deny: {expression: "size(variables) > 0", message: no variable computed yet}\n    - name: uses-x\n      deny: {expression: "variables.x == 'nope'"}\n    - name: now-one\n      deny: {expression: "size(variables) != 1", message: x computed}\n`, 'b.yaml', 'b'),
      ...policyDocs(`  rules:\n    - name: empty\n      deny: {expression: "size(variables) > 0", message: a policy without variables sees none}\n`, 'c.yaml', 'c'),
    ];
    for (const opts of [{}, { callerCache: false }]) {
      const bundle = createBundle(compileDocuments(docs), opts);
      for (let i = 0; i < 4; i++) {
        const model = i === 3 ? 'blocked' : `m${i}`;
        const d = bundle.evaluate(input({ body: { model, messages: [] } }), { candidates: true });
        const outcomes = d.rules.map((r) => `${r.policy}/${r.rule}:${r.outcome}`);
        if (i === 3) assert.deepEqual(outcomes, ['a/r1:deny']);
        else assert.deepEqual(outcomes, ['a/r1:allow', 'a/r2:allow', 'b/none-yet:allow', 'b/uses-x:allow', 'b/now-one:allow', 'c/empty:allow']);
        if (i !== 3) assert.equal(d.forModel('blocked').denied?.rule, 'a/r1');
        if (i !== 3) assert.equal(d.forModel('other').denied, undefined);
      }
    }
  });
});
