// One scenario list, run against every BudgetStore implementation (memory and Redis).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../service/errors.ts';
import type { BudgetStore, SpendRow } from '../../service/budget/store.ts';
import { Clock, budget, memoryFactory, rate, redisFactory, usd, type StoreFactory } from './helpers.ts';

interface Scenario {
  name: string;
  start?: string;
  run(s: BudgetStore, clock: Clock): Promise<void>;
}

const T = { tenant: 'acme' };
let seq = 0;
const rid = (): string => `req-${++seq}`;

async function row(s: BudgetStore, scopeKey: string, tenant = 'acme'): Promise<SpendRow> {
  const rows = await s.spend({ tenant, scopeKey });
  assert.equal(rows.length, 1, `one spend row for ${scopeKey}, got ${rows.length}`);
  return rows[0];
}

const scenarios: Scenario[] = [
  {
    name: 'admits while under the limit, denies the request that would exceed it, reserves nothing on denial',
    async run(s) {
      const b = [budget('t/monthly', 'tenant:acme', { usd: 1 })];
      for (let i = 0; i < 3; i++) assert.equal((await s.reserve(rid(), { budgets: b, ...T }, usd(0.3))).ok, true);
      const r = await s.reserve(rid(), { budgets: b, ...T }, usd(0.3));
      assert.equal(r.ok, false);
      assert.equal(r.denied.length, 1);
      assert.equal(r.denied[0].name, 't/monthly');
      assert.ok(Math.abs(r.denied[0].remaining - 0.1) < 1e-9, `remaining ${r.denied[0].remaining}`);
      assert.equal(r.denied[0].limit, 1);
      const sp = await row(s, 'tenant:acme');
      assert.ok(Math.abs(sp.reservedUsd - 0.9) < 1e-9);
      assert.equal(sp.inFlight, 3);
    },
  },
  {
    name: 'a request must fit every budget (key ⊂ team ⊂ tenant): one full budget blocks all, and none is charged',
    async run(s) {
      const key = budget('k', 'key:k1', { usd: 10 });
      const team = budget('team', 'team:red', { usd: 1 });
      const tenant = budget('tenant', 'tenant:acme', { usd: 100 });
      const all = { budgets: [key, team, tenant], ...T };
      assert.equal((await s.reserve('a', all, usd(0.8))).ok, true);
      const r = await s.reserve('b', all, usd(0.5));
      assert.equal(r.ok, false);
      assert.deepEqual(r.denied.map((d) => d.name), ['team']);
      assert.ok(Math.abs((await row(s, 'key:k1')).reservedUsd - 0.8) < 1e-9);
      assert.ok(Math.abs((await row(s, 'tenant:acme')).reservedUsd - 0.8) < 1e-9);
      // Another key of the same team is blocked by the team too.
      const other = await s.reserve('c', { budgets: [budget('k', 'key:k2', { usd: 10 }), team, tenant], ...T }, usd(0.5));
      assert.equal(other.ok, false);
    },
  },
  {
    name: 'commit charges the actual cost and releases the rest of the hold',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 1 })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(0.9))).ok, true);
      assert.equal((await s.reserve('b', { budgets: b, ...T }, usd(0.2))).ok, false);
      assert.deepEqual(await s.commit('a', { usd: 0.25, inputTokens: 100, outputTokens: 50 }), { status: 'settled' });
      const sp = await row(s, 'tenant:acme');
      assert.ok(Math.abs(sp.usd - 0.25) < 1e-9);
      assert.equal(sp.reservedUsd, 0);
      assert.equal(sp.inputTokens, 100);
      assert.equal(sp.outputTokens, 50);
      assert.equal(sp.requests, 1);
      assert.equal((await s.reserve('b', { budgets: b, ...T }, usd(0.75))).ok, true);
      assert.equal((await s.reserve('c', { budgets: b, ...T }, usd(0.01))).ok, false);
    },
  },
  {
    name: 'release drops the hold and charges nothing',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 1, requests: 5 })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(1))).ok, true);
      assert.deepEqual(await s.release('a'), { status: 'settled' });
      const sp = await row(s, 'tenant:acme');
      assert.equal(sp.usd, 0);
      assert.equal(sp.requests, 0);
      assert.equal(sp.inFlight, 0);
      assert.equal((await s.reserve('b', { budgets: b, ...T }, usd(1))).ok, true);
    },
  },
  {
    name: 'settling twice changes nothing the second time; an unknown id is reported',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 10 })];
      await s.reserve('a', { budgets: b, ...T }, usd(1));
      assert.equal((await s.commit('a', usd(0.5))).status, 'settled');
      assert.equal((await s.commit('a', usd(0.5))).status, 'duplicate');
      assert.equal((await s.release('a')).status, 'duplicate');
      assert.ok(Math.abs((await row(s, 'tenant:acme')).usd - 0.5) < 1e-9);
      assert.equal((await s.commit('never-reserved', usd(0.5))).status, 'unknown');
    },
  },
  {
    name: 'reserving the same id twice holds once; reusing a settled id is refused',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 10 })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(1))).ok, true);
      const again = await s.reserve('a', { budgets: b, ...T }, usd(1));
      assert.equal(again.ok, true);
      assert.equal(again.duplicate, 'held');
      assert.equal((await row(s, 'tenant:acme')).inFlight, 1);
      await s.commit('a', usd(1));
      const reused = await s.reserve('a', { budgets: b, ...T }, usd(1));
      assert.equal(reused.ok, false);
      assert.equal(reused.duplicate, 'settled');
    },
  },
  {
    name: 'soft budgets admit past the limit and flag a warning; hard ones beside them still apply',
    async run(s) {
      const soft = budget('soft', 'team:red', { usd: 0.5 }, { kind: 'day' }, { enforcement: 'soft' });
      const hard = budget('hard', 'tenant:acme', { usd: 1 });
      const r1 = await s.reserve('a', { budgets: [soft, hard], ...T }, usd(0.6));
      assert.equal(r1.ok, true);
      assert.deepEqual(r1.warnings.map((w) => w.name), ['soft']);
      assert.equal(r1.denied.length, 0);
      const r2 = await s.reserve('b', { budgets: [soft, hard], ...T }, usd(0.6));
      assert.equal(r2.ok, false);
      assert.deepEqual(r2.denied.map((d) => d.name), ['hard']);
    },
  },
  {
    name: 'cents add up exactly: ten $0.10 requests fit a $1 budget, the eleventh does not',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 1 })];
      for (let i = 0; i < 10; i++) {
        const id = `c${i}`;
        assert.equal((await s.reserve(id, { budgets: b, ...T }, usd(0.1))).ok, true, `request ${i}`);
        await s.commit(id, usd(0.1));
      }
      assert.equal((await s.reserve('c10', { budgets: b, ...T }, usd(0.000001))).ok, false);
      assert.equal((await row(s, 'tenant:acme')).usd, 1);
    },
  },
  {
    name: 'token and request limits: input, output, total tokens and request count',
    async run(s) {
      const b = [budget('tok', 'key:k', { inputTokens: 1000, outputTokens: 500, totalTokens: 1200, requests: 3 }, { kind: 'day' })];
      const est = (i: number, o: number) => ({ usd: 0, inputTokens: i, outputTokens: o });
      assert.equal((await s.reserve('a', { budgets: b, ...T }, est(600, 100))).ok, true);
      const r = await s.reserve('b', { budgets: b, ...T }, est(500, 0));
      assert.equal(r.ok, false);
      assert.deepEqual(r.denied.map((d) => d.metric), ['inputTokens']);
      const r2 = await s.reserve('c', { budgets: b, ...T }, est(300, 450));
      assert.deepEqual(r2.denied.map((d) => d.metric).sort(), ['outputTokens', 'totalTokens']);
      assert.equal((await s.reserve('d', { budgets: b, ...T }, est(100, 100))).ok, true);
      assert.equal((await s.reserve('e', { budgets: b, ...T }, est(10, 10))).ok, true);
      const r3 = await s.reserve('f', { budgets: b, ...T }, est(1, 1));
      assert.deepEqual(r3.denied.map((d) => d.metric), ['requests']);
    },
  },
  {
    name: 'a request larger than the limit can never fit (retryAfterMs = -1)',
    async run(s) {
      const r = await s.reserve('a', { budgets: [budget('t', 'tenant:acme', { usd: 1 })], ...T }, usd(2));
      assert.equal(r.ok, false);
      assert.equal(r.denied[0].retryAfterMs, -1);
    },
  },
  {
    name: 'calendar month (UTC): spend resets on the 1st, and retry-after points at the window end',
    start: '2024-01-31T23:59:00Z',
    async run(s, clock) {
      const b = [budget('t', 'tenant:acme', { usd: 1 }, { kind: 'month' })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(1))).ok, true);
      await s.commit('a', usd(1));
      const r = await s.reserve('b', { budgets: b, ...T }, usd(0.5));
      assert.equal(r.ok, false);
      assert.equal(r.denied[0].resetAt, Date.parse('2024-02-01T00:00:00Z'));
      assert.equal(r.denied[0].retryAfterMs, 60_000);
      clock.set('2024-02-01T00:00:00Z');
      assert.equal((await s.reserve('c', { budgets: b, ...T }, usd(0.5))).ok, true);
      const rows = await s.spend({ tenant: 'acme', scopeKey: 'tenant:acme' });
      assert.deepEqual(rows.map((x) => [x.windowId, x.usd, x.reservedUsd]), [
        ['2024-01', 1, 0],
        ['2024-02', 0, 0.5],
      ]);
    },
  },
  {
    name: 'calendar month in the tenant zone (America/New_York): 03:00Z on Mar 1 is still February there',
    start: '2024-03-01T03:00:00Z',
    async run(s, clock) {
      const b = [budget('t', 'tenant:acme', { usd: 1 }, { kind: 'month', timeZone: 'America/New_York' })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(1))).ok, true);
      await s.commit('a', usd(1));
      const r = await s.reserve('b', { budgets: b, ...T }, usd(0.1));
      assert.equal(r.ok, false);
      assert.equal(new Date(r.denied[0].resetAt).toISOString(), '2024-03-01T05:00:00.000Z');
      clock.set('2024-03-01T04:59:59Z');
      assert.equal((await s.reserve('c', { budgets: b, ...T }, usd(0.1))).ok, false);
      clock.set('2024-03-01T05:00:00Z');
      assert.equal((await s.reserve('d', { budgets: b, ...T }, usd(0.1))).ok, true);
      const ids = (await s.spend({ tenant: 'acme' })).map((x) => `${x.window}/${x.windowId}`);
      assert.deepEqual(ids, ['month@America/New_York/2024-02', 'month@America/New_York/2024-03']);
    },
  },
  {
    name: 'day window across a DST change (Europe/Berlin, 23-hour day)',
    start: '2024-03-31T12:00:00Z',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { requests: 1 }, { kind: 'day', timeZone: 'Europe/Berlin' })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(0))).ok, true);
      const r = await s.reserve('b', { budgets: b, ...T }, usd(0));
      assert.equal(new Date(r.denied[0].resetAt).toISOString(), '2024-03-31T22:00:00.000Z');
      const [sp] = await s.spend({ tenant: 'acme' });
      assert.equal(new Date(sp.start).toISOString(), '2024-03-30T23:00:00.000Z');
    },
  },
  {
    name: 'rolling window: usage leaves after N seconds, retry-after = when the oldest usage leaves',
    start: '2024-05-01T10:00:00Z',
    async run(s, clock) {
      const b = [budget('roll', 'key:k', { usd: 1 }, { kind: 'rolling', seconds: 3600 })];
      assert.equal((await s.reserve('a', { budgets: b, ...T }, usd(0.6))).ok, true);
      await s.commit('a', usd(0.6));
      clock.advance(600_000);
      assert.equal((await s.reserve('b', { budgets: b, ...T }, usd(0.4))).ok, true);
      await s.commit('b', usd(0.4));
      clock.advance(600_000);
      const r = await s.reserve('c', { budgets: b, ...T }, usd(0.5));
      assert.equal(r.ok, false);
      // 'a' was charged at 10:00 into a 60 s bucket; it counts for one window plus one bucket.
      const expected = Date.parse('2024-05-01T11:01:00Z') - clock.t;
      assert.equal(r.denied[0].retryAfterMs, expected);
      clock.advance(expected - 1);
      assert.equal((await s.reserve('d', { budgets: b, ...T }, usd(0.5))).ok, false);
      clock.advance(1);
      assert.equal((await s.reserve('e', { budgets: b, ...T }, usd(0.5))).ok, true);
    },
  },
  {
    name: 'rpm on a sliding minute: the 4th request of 3 rpm waits until the first leaves the window',
    start: '2024-05-01T10:00:00.500Z',
    async run(s, clock) {
      const rl = [rate('rpm', 'key:k', { rpm: 3 })];
      for (const id of ['a', 'b', 'c']) {
        assert.equal((await s.reserve(id, { budgets: [], rateLimits: rl, ...T }, usd(0))).ok, true);
        await s.commit(id, usd(0));
        clock.advance(10_000);
      }
      const r = await s.reserve('d', { budgets: [], rateLimits: rl, ...T }, usd(0));
      assert.equal(r.ok, false);
      assert.equal(r.denied[0].metric, 'requests');
      // 'a' at 10:00:00.5 sits in the 10:00:00 bucket, which leaves the window at 10:01:01.
      assert.equal(r.denied[0].retryAfterMs, Date.parse('2024-05-01T10:01:01Z') - clock.t);
      clock.set('2024-05-01T10:01:00.999Z');
      assert.equal((await s.reserve('e', { budgets: [], rateLimits: rl, ...T }, usd(0))).ok, false);
      clock.set('2024-05-01T10:01:01Z');
      assert.equal((await s.reserve('f', { budgets: [], rateLimits: rl, ...T }, usd(0))).ok, true);
    },
  },
  {
    name: 'tpm counts in-flight holds at their maximum and commits at actual size',
    start: '2024-05-01T10:00:00Z',
    async run(s) {
      const rl = [rate('tpm', 'key:k', { tpm: 1000 })];
      const est = (i: number, o: number) => ({ usd: 0, inputTokens: i, outputTokens: o });
      assert.equal((await s.reserve('a', { budgets: [], rateLimits: rl, ...T }, est(200, 600))).ok, true);
      assert.equal((await s.reserve('b', { budgets: [], rateLimits: rl, ...T }, est(100, 200))).ok, false);
      await s.commit('a', est(200, 50));
      assert.equal((await s.reserve('c', { budgets: [], rateLimits: rl, ...T }, est(100, 600))).ok, true);
      const r = await s.reserve('d', { budgets: [], rateLimits: rl, ...T }, est(30, 30));
      assert.equal(r.denied[0].metric, 'totalTokens');
      assert.equal(r.denied[0].used, 950);
    },
  },
  {
    name: 'maxParallel: the third concurrent request of 2 is refused until one settles',
    async run(s) {
      const rl = [rate('par', 'key:k', { maxParallel: 2 })];
      const spec = { budgets: [], rateLimits: rl, ...T };
      assert.equal((await s.reserve('a', spec, usd(0))).ok, true);
      assert.equal((await s.reserve('b', spec, usd(0))).ok, true);
      const r = await s.reserve('c', spec, usd(0));
      assert.equal(r.ok, false);
      assert.equal(r.denied[0].metric, 'parallel');
      assert.equal(r.denied[0].retryAfterMs, 1000);
      await s.commit('a', usd(0));
      assert.equal((await s.reserve('d', spec, usd(0))).ok, true);
      await s.release('b');
      assert.equal((await s.reserve('e', spec, usd(0))).ok, true);
    },
  },
  {
    name: 'holds expire after their TTL; a late commit of an expired hold still charges once',
    async run(s, clock) {
      const b = [budget('t', 'tenant:acme', { usd: 1 }, { kind: 'day' })];
      const par = [rate('par', 'key:k', { maxParallel: 1 })];
      assert.equal((await s.reserve('a', { budgets: b, rateLimits: par, ...T, ttlMs: 5000 }, usd(0.8))).ok, true);
      assert.equal((await s.reserve('b', { budgets: b, rateLimits: par, ...T, ttlMs: 5000 }, usd(0.8))).ok, false);
      clock.advance(4999);
      assert.equal((await s.reserve('c', { budgets: b, rateLimits: par, ...T, ttlMs: 5000 }, usd(0.8))).ok, false);
      clock.advance(1);
      assert.equal((await s.reserve('d', { budgets: b, rateLimits: par, ...T, ttlMs: 5000 }, usd(0.1))).ok, true);
      assert.equal((await s.commit('a', usd(0.3))).status, 'expired');
      assert.equal((await s.commit('a', usd(0.3))).status, 'duplicate');
      const sp = await row(s, 'tenant:acme');
      assert.ok(Math.abs(sp.usd - 0.3) < 1e-9);
      assert.ok(Math.abs(sp.reservedUsd - 0.1) < 1e-9);
      assert.equal(sp.inFlight, 1);
    },
  },
  {
    name: 'tenants are separate namespaces: the same scopeKey in two tenants never shares spend',
    async run(s) {
      const b = [budget('t', 'model:gpt-4o', { usd: 1 })];
      assert.equal((await s.reserve('a', { budgets: b, tenant: 'acme' }, usd(1))).ok, true);
      assert.equal((await s.reserve('b', { budgets: b, tenant: 'globex' }, usd(1))).ok, true);
      assert.equal((await s.reserve('c', { budgets: b, tenant: 'acme' }, usd(0.1))).ok, false);
      assert.equal((await s.spend({ tenant: 'globex' })).length, 1);
    },
  },
  {
    name: 'two specs naming the same bucket count a request once',
    async run(s) {
      const a = budget('policyA', 'tenant:acme', { usd: 1 });
      const b = budget('policyB', 'tenant:acme', { usd: 5 }, { kind: 'month' }, { enforcement: 'soft' });
      assert.equal((await s.reserve('x', { budgets: [a, b], ...T }, usd(0.6))).ok, true);
      const sp = await row(s, 'tenant:acme');
      assert.ok(Math.abs(sp.reservedUsd - 0.6) < 1e-9);
      assert.deepEqual(sp.limits, { 'policyA:usd': 1, 'policyB:usd': 5 });
    },
  },
  {
    name: 'spend filters by tenant and scope prefix and reports limits',
    async run(s) {
      await s.reserve('a', { budgets: [budget('tm', 'team:red', { usd: 5 }), budget('k', 'key:k1', { usd: 2, requests: 10 }, { kind: 'day' })], ...T }, usd(1));
      await s.commit('a', usd(0.5));
      await s.reserve('b', { budgets: [budget('tm', 'team:blue', { usd: 5 })], tenant: 'other' }, usd(1));
      const teams = await s.spend({ scopeKey: 'team:*' });
      assert.deepEqual(teams.map((r) => [r.tenant, r.scopeKey]), [['acme', 'team:red'], ['other', 'team:blue']]);
      const k = await row(s, 'key:k1');
      assert.deepEqual(k.limits, { 'k:usd': 2, 'k:requests': 10 });
      assert.equal(k.window, 'day');
      assert.equal(k.usd, 0.5);
    },
  },
  {
    name: 'a broken usage report (Infinity from 1e400, NaN, negative) charges the hold, counts the request and never poisons the counter',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 1, inputTokens: 1000, outputTokens: 1000, requests: 10 })];
      const hold = { usd: 0.1, inputTokens: 20, outputTokens: 30 };
      const reports: Array<Record<string, number>> = [
        { usd: JSON.parse('1e400') as number, inputTokens: JSON.parse('1e400') as number, outputTokens: 5 },
        { usd: Number.NaN, inputTokens: -7, outputTokens: Number.NEGATIVE_INFINITY },
        { usd: -0.5, inputTokens: 10, outputTokens: -1 },
      ];
      for (const [i, r] of reports.entries()) {
        assert.equal((await s.reserve(`bad-${i}`, { budgets: b, ...T }, hold)).ok, true);
        assert.equal((await s.commit(`bad-${i}`, r as { usd: number; inputTokens: number; outputTokens: number })).status, 'settled');
      }
      const sp = await row(s, 'tenant:acme');
      // usd: hold, hold, hold; input: hold, hold, 10; output: 5, hold, hold.
      assert.ok(Math.abs(sp.usd - 0.3) < 1e-9, `usd ${sp.usd}`);
      assert.equal(sp.inputTokens, 20 + 20 + 10);
      assert.equal(sp.outputTokens, 5 + 30 + 30);
      assert.equal(sp.requests, 3);
      assert.equal(sp.reservedUsd, 0);
      assert.equal(sp.inFlight, 0);
      // The counter still admits what fits.
      assert.equal((await s.reserve('after', { budgets: b, ...T }, usd(0.5))).ok, true);
    },
  },
  {
    name: 'a huge usage report is charged as a bounded exact integer (no overflow, later requests still evaluated)',
    async run(s) {
      const b = [budget('t', 'tenant:acme', { usd: 1e6, outputTokens: 1e15 })];
      assert.equal((await s.reserve('big', { budgets: b, ...T }, usd(0.1))).ok, true);
      await s.commit('big', { usd: 7.5e8, inputTokens: 1e15, outputTokens: 1e15 });
      const sp = await row(s, 'tenant:acme');
      // Capped per commit at MAX_CHARGE (2^43 units): $8,796.09 and 8.8e12 tokens, exact integers.
      assert.equal(sp.usd, 2 ** 43 / 1e9);
      assert.equal(sp.inputTokens, 2 ** 43);
      assert.equal(sp.outputTokens, 2 ** 43);
      assert.equal(sp.requests, 1);
      assert.equal((await s.reserve('next', { budgets: b, ...T }, usd(1))).ok, true);
    },
  },
  {
    name: 'malformed specs and estimates are typed errors, not crashes',
    async run(s) {
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['negative limit', () => s.reserve('a', { budgets: [budget('t', 'x', { usd: -1 })] }, usd(1))],
        ['no limit', () => s.reserve('a', { budgets: [budget('t', 'x', {})] }, usd(1))],
        ['bad zone', () => s.reserve('a', { budgets: [budget('t', 'x', { usd: 1 }, { kind: 'month', timeZone: 'Mars/Olympus' })] }, usd(1))],
        ['bad rolling', () => s.reserve('a', { budgets: [budget('t', 'x', { usd: 1 }, { kind: 'rolling', seconds: 0 })] }, usd(1))],
        ['NaN estimate', () => s.reserve('a', { budgets: [budget('t', 'x', { usd: 1 })] }, { usd: Number.NaN, inputTokens: 1, outputTokens: 1 })],
        ['empty id', () => s.reserve('', { budgets: [budget('t', 'x', { usd: 1 })] }, usd(1))],
      ];
      for (const [what, f] of bad) {
        await assert.rejects(f, (e: unknown) => e instanceof GatewayError && e.status === 500 && /budget/.test(e.code), what);
      }
    },
  },
];

const factories: StoreFactory[] = [memoryFactory(), redisFactory()];

for (const f of factories) {
  describe(`BudgetStore conformance: ${f.name}`, () => {
    after(() => f.cleanup());
    for (const sc of scenarios) {
      test(sc.name, async () => {
        const clock = new Clock(sc.start ?? '2024-06-15T12:00:00Z');
        const store = await f.make(clock);
        await sc.run(store, clock);
      });
    }
  });
}
