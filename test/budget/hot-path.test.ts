// The budget request path's precomputation (price tables per deployment, counter key strings per scope and
// window, the allocation-free spec check, the settled-id queue) must give exactly what the plain computation
// gives, and follow a changed configuration at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costOfUsage, reservationCost, type BilledUsage, type DeploymentPrices } from '../../service/budget/cost.ts';
import { BudgetManager } from '../../service/budget/manager.ts';
import { MemoryStore } from '../../service/budget/memory.ts';
import { buildPlan, validateBudgetSpec, validateRateLimitSpec, type Plan } from '../../service/budget/plan.ts';
import { SettledIds } from '../../service/budget/settled-ids.ts';
import type { BudgetSpec, RateLimitSpec } from '../../service/budget/types.ts';
import { GatewayError } from '../../service/errors.ts';
import { Clock, budget, rate, usd } from './helpers.ts';

// ---- prices -------------------------------------------------------------------------------------

/** The pricing rules written out plainly (README "Pricing"), recomputed on every call. */
function referenceRates(d: DeploymentPrices, inputTokens: number) {
  const p = d.prices ?? {};
  const base = {
    input: d.inputPricePerM,
    output: d.outputPricePerM,
    cacheRead: p.cacheReadPerM ?? d.inputPricePerM,
    cacheWrite5m: p.cacheWrite5mPerM ?? d.inputPricePerM,
    cacheWrite1h: p.cacheWrite1hPerM ?? p.cacheWrite5mPerM ?? d.inputPricePerM,
    reasoning: p.reasoningPerM ?? d.outputPricePerM,
  };
  const lc = p.longContext;
  if (!lc || inputTokens <= lc.aboveInputTokens) return { r: base, long: false };
  const inR = base.input > 0 ? lc.inputPerM / base.input : 1;
  const outR = base.output > 0 ? lc.outputPerM / base.output : 1;
  return {
    r: {
      input: lc.inputPerM,
      output: lc.outputPerM,
      cacheRead: lc.cacheReadPerM ?? base.cacheRead * inR,
      cacheWrite5m: lc.cacheWrite5mPerM ?? base.cacheWrite5m * inR,
      cacheWrite1h: lc.cacheWrite1hPerM ?? base.cacheWrite1h * inR,
      reasoning: lc.reasoningPerM ?? base.reasoning * outR,
    },
    long: true,
  };
}

function referenceCost(u: BilledUsage, d: DeploymentPrices): number {
  const input = Math.max(0, u.inputTokens);
  const output = Math.max(0, u.outputTokens);
  const read = Math.min(Math.max(0, u.cachedInputTokens ?? 0), input);
  const write = Math.min(Math.max(0, u.cacheCreationInputTokens ?? 0), input - read);
  const w1h = Math.min(Math.max(0, u.cacheCreation1hInputTokens ?? 0), write);
  const reasoning = Math.min(Math.max(0, u.reasoningTokens ?? 0), output);
  const { r } = referenceRates(d, input);
  return (
    ((input - read - write) * r.input) / 1e6 +
    (read * r.cacheRead) / 1e6 +
    ((write - w1h) * r.cacheWrite5m) / 1e6 +
    (w1h * r.cacheWrite1h) / 1e6 +
    ((output - reasoning) * r.output) / 1e6 +
    (reasoning * r.reasoning) / 1e6
  );
}

function referenceReservation(i: number, o: number, d: DeploymentPrices): number {
  const { r } = referenceRates(d, i);
  const perIn = Math.max(r.input, d.prices?.cacheWrite5mPerM !== undefined ? r.cacheWrite5m : 0, d.prices?.cacheWrite1hPerM !== undefined ? r.cacheWrite1h : 0);
  return (i * perIn + o * Math.max(r.output, r.reasoning)) / 1e6;
}

const DEPLOYMENTS: DeploymentPrices[] = [
  { inputPricePerM: 0.165, outputPricePerM: 0.66 },
  { inputPricePerM: 3, outputPricePerM: 15, prices: { cacheReadPerM: 0.3, cacheWrite5mPerM: 3.75, cacheWrite1hPerM: 6 } },
  { inputPricePerM: 1.25, outputPricePerM: 10, prices: { reasoningPerM: 12, longContext: { aboveInputTokens: 200_000, inputPerM: 2.5, outputPerM: 15 } } },
  { inputPricePerM: 0, outputPricePerM: 0, prices: { longContext: { aboveInputTokens: 10, inputPerM: 1, outputPerM: 2, cacheReadPerM: 0.1 } } },
];
const USAGES: BilledUsage[] = [
  { inputTokens: 300, outputTokens: 5 },
  { inputTokens: 1000, outputTokens: 100, cachedInputTokens: 400, cacheCreationInputTokens: 100, reasoningTokens: 50 },
  { inputTokens: 250_000, outputTokens: 7, cacheCreationInputTokens: 9000, cacheCreation1hInputTokens: 4000 },
  { inputTokens: 11, outputTokens: 0, cachedInputTokens: 99 },
  { inputTokens: -5, outputTokens: Number.NaN },
];

test('price tables: every cost and reservation equals the plain formula, bit for bit, call after call', () => {
  for (const d of DEPLOYMENTS) {
    for (let round = 0; round < 3; round++) {
      for (const u of USAGES) {
        const c = costOfUsage(u, d);
        const want = referenceCost(u, d);
        assert.ok(Object.is(c.totalUsd, want), `cost ${JSON.stringify(u)} @ ${JSON.stringify(d)}: ${c.totalUsd} vs ${want}`);
        assert.equal(c.longContext, referenceRates(d, Math.max(0, u.inputTokens)).long);
        assert.ok(Object.is(c.inputUsd + c.cacheReadUsd + c.cacheWrite5mUsd + c.cacheWrite1hUsd + c.outputUsd + c.reasoningUsd, c.totalUsd));
        const rc = reservationCost(u.inputTokens, u.outputTokens, d);
        const rwant = referenceReservation(u.inputTokens, u.outputTokens, d);
        assert.ok(Object.is(rc, rwant), `reservation ${u.inputTokens}/${u.outputTokens}: ${rc} vs ${rwant}`);
      }
    }
  }
});

test('price tables follow a reload (new deployment objects) and a deployment changed in place', () => {
  const u = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
  const before: DeploymentPrices = { inputPricePerM: 1, outputPricePerM: 2 };
  assert.equal(costOfUsage(u, before).totalUsd, 3);
  assert.equal(reservationCost(1_000_000, 1_000_000, before), 3);
  // A config reload builds new deployment objects with the new catalog.
  const reloaded: DeploymentPrices = { inputPricePerM: 4, outputPricePerM: 8 };
  assert.equal(costOfUsage(u, reloaded).totalUsd, 12);
  assert.equal(costOfUsage(u, before).totalUsd, 3);
  // The same object edited in place (tests, tools): the new prices count at once.
  before.inputPricePerM = 10;
  assert.equal(costOfUsage(u, before).totalUsd, 12);
  assert.equal(reservationCost(1_000_000, 1_000_000, before), 12);
  before.prices = { reasoningPerM: 20 };
  assert.equal(reservationCost(0, 1_000_000, before), 20);
});

// ---- plans --------------------------------------------------------------------------------------

const NOW = Date.parse('2024-06-15T12:00:00Z');

function plan(budgets: BudgetSpec[], rates: RateLimitSpec[] = [], now = NOW, ttlMs?: number): Plan {
  return buildPlan({ requestId: 'r', budgets, rateLimits: rates, estimate: usd(0.1), tenant: 'acme', ttlMs, now });
}

test('counter keys: the same fresh specs give the same counters; a changed scope, window, zone or day gives new ones', () => {
  const p1 = plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day' })], [rate('r', 'key:k1', { rpm: 5 })]);
  const p2 = plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day' })], [rate('r', 'key:k1', { rpm: 5 })]);
  assert.deepEqual(p1.counters.map((c) => c.key), ['b|key:k1|day|2024-06-15', 'r|key:k1|rate']);
  assert.deepEqual(p2.counters, p1.counters);
  assert.equal(plan([budget('k', 'key:k2', { usd: 1 }, { kind: 'day' })]).counters[0].key, 'b|key:k2|day|2024-06-15');
  assert.equal(plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'month' })]).counters[0].key, 'b|key:k1|month|2024-06');
  const paris = plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day', timeZone: 'Pacific/Kiritimati' })]).counters[0];
  assert.equal(paris.key, 'b|key:k1|day@Pacific/Kiritimati|2024-06-16');
  assert.equal(plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'rolling', seconds: 3600 })]).counters[0].key, 'b|key:k1|rolling3600s');
  // The next day (and back: an injected clock may go back) and another reservation TTL.
  const next = plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day' })], [], NOW + 86_400_000).counters[0];
  assert.deepEqual([next.key, next.start, next.resetAt], ['b|key:k1|day|2024-06-16', Date.parse('2024-06-16T00:00:00Z'), Date.parse('2024-06-17T00:00:00Z')]);
  assert.equal(plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day' })]).counters[0].key, 'b|key:k1|day|2024-06-15');
  const ttl = plan([budget('k', 'key:k1', { usd: 1 }, { kind: 'day' })], [], NOW, 1000).counters[0];
  assert.equal(ttl.expireAt, Date.parse('2024-06-16T00:00:00Z') + 86_400_000 + 1000);
  // Sliding counters are charged to the bucket of their own admission time.
  const r1 = plan([], [rate('r', 'key:k1', { rpm: 5 })], NOW).counters[0];
  const r2 = plan([], [rate('r', 'key:k1', { rpm: 5 })], NOW + 2500).counters[0];
  assert.deepEqual([r2.bucket - r1.bucket, r2.expireAt - r1.expireAt], [2, 2500]);
});

test('a reloaded limit or window decides the next request at once (memory store, same scope)', async () => {
  const clock = new Clock(NOW);
  const m = new BudgetManager(new MemoryStore({ now: clock.now }));
  const v1 = [budget('acme/daily', 'tenant:acme', { usd: 1 }, { kind: 'day' })];
  assert.ok(!((await m.admit('a', v1, [], usd(0.8), { tenant: 'acme' })) instanceof GatewayError));
  const refused = await m.admit('b', v1, [], usd(0.8), { tenant: 'acme' });
  assert.ok(refused instanceof GatewayError && refused.code === 'budget_exceeded');
  // Reload: a higher limit on the same counter admits; a monthly window is a new counter.
  const v2 = [budget('acme/daily', 'tenant:acme', { usd: 2 }, { kind: 'day' })];
  assert.ok(!((await m.admit('c', v2, [], usd(0.8), { tenant: 'acme' })) instanceof GatewayError));
  const v3 = [budget('acme/daily', 'tenant:acme', { usd: 1 }, { kind: 'month' })];
  const a = await m.admit('d', v3, [], usd(0.8), { tenant: 'acme' });
  assert.ok(!(a instanceof GatewayError));
  assert.equal(a.headers['x-tollgate-budget-remaining-usd'], '0.20');
});

test('the per-request spec check accepts and refuses exactly what the validators do', () => {
  const good = budget('b', 'key:k', { usd: 1 });
  const budgets: Array<[string, BudgetSpec]> = [
    ['ok', good],
    ['ok integers', { ...good, limit: { inputTokens: 1e3, outputTokens: 0, totalTokens: 5, requests: 2 } }],
    ['ok zone', { ...good, window: { kind: 'day', timeZone: 'Etc/UTC' } }],
    ['ok rolling max', { ...good, window: { kind: 'rolling', seconds: 366 * 86400 } }],
    ['no name', { ...good, name: '' }],
    ['no scope', { ...good, scopeKey: '' }],
    ['no limit set', { ...good, limit: {} }],
    ['limit missing', { ...good, limit: undefined as unknown as BudgetSpec['limit'] }],
    ['usd NaN', { ...good, limit: { usd: Number.NaN } }],
    ['usd negative', { ...good, limit: { usd: -1 } }],
    ['usd string', { ...good, limit: { usd: '1' as unknown as number } }],
    ['tokens fraction', { ...good, limit: { inputTokens: 1.5 } }],
    ['requests infinite', { ...good, limit: { requests: Number.POSITIVE_INFINITY } }],
    ['window missing', { ...good, window: undefined as unknown as BudgetSpec['window'] }],
    ['bad zone', { ...good, window: { kind: 'day', timeZone: 'Mars/Olympus' } }],
    ['rolling 0', { ...good, window: { kind: 'rolling', seconds: 0 } }],
    ['rolling too long', { ...good, window: { kind: 'rolling', seconds: 366 * 86400 + 1 } }],
    ['bad kind', { ...good, window: { kind: 'week' } as unknown as BudgetSpec['window'] }],
    ['bad enforcement', { ...good, enforcement: 'maybe' as 'hard' }],
    ['bad mode', { ...good, onStoreError: 'retry' as 'failOpen' }],
  ];
  for (const [what, spec] of budgets) {
    const errs = validateBudgetSpec(spec);
    const run = () => plan([spec]);
    if (errs.length) assert.throws(run, (e: unknown) => e instanceof GatewayError && e.code === 'budget_config_invalid' && e.message.includes(errs.join('; ')), what);
    else assert.doesNotThrow(run, what);
  }
  const okRate = rate('r', 'key:k', { rpm: 1 });
  const rates: Array<[string, RateLimitSpec]> = [
    ['ok', okRate],
    ['ok parallel only', { name: 'r', scopeKey: 'k', maxParallel: 0, onStoreError: 'local' }],
    ['nothing set', { name: 'r', scopeKey: 'k', onStoreError: 'local' }],
    ['rpm fraction', { ...okRate, rpm: 0.5 }],
    ['tpm negative', { ...okRate, tpm: -1 }],
    ['no name', { ...okRate, name: '' }],
    ['bad mode', { ...okRate, onStoreError: 'x' as 'local' }],
  ];
  for (const [what, spec] of rates) {
    const errs = validateRateLimitSpec(spec);
    const run = () => plan([], [spec]);
    if (errs.length) assert.throws(run, (e: unknown) => e instanceof GatewayError && e.code === 'budget_config_invalid' && e.message.includes(errs.join('; ')), what);
    else assert.doesNotThrow(run, what);
  }
});

// ---- settled ids --------------------------------------------------------------------------------

test('settled ids: forgotten after their time or beyond the cap (oldest first); a re-mark keeps the newest', () => {
  const s = new SettledIds(3);
  s.mark('a', 100, null);
  s.mark('b', 200, null);
  s.mark('c', 300, null);
  s.mark('d', 400, null); // over the cap: `a` goes
  assert.deepEqual(['a', 'b', 'c', 'd'].map((id) => s.has(id)), [false, true, true, true]);
  // Re-marking `b` moves it to the newest end; its older entry no longer forgets it.
  const p = { requestId: 'b' } as Plan;
  s.mark('b', 500, p);
  assert.equal(s.isDone('b'), false);
  assert.equal(s.expiredPlan('b'), p);
  s.forget(300); // `c`'s time is up; `b`'s old entry (200) is stale
  assert.deepEqual(['b', 'c', 'd'].map((id) => s.has(id)), [true, false, true]);
  s.mark('b', 600, null);
  assert.equal(s.isDone('b'), true);
  assert.equal(s.expiredPlan('b'), undefined);
  s.forget(599);
  assert.deepEqual([s.has('b'), s.has('d'), s.size], [true, false, 1]);
  s.forget(600);
  assert.equal(s.size, 0);
});

test('settled ids: thousands of ids under the cap stay exact across queue compactions', () => {
  const s = new SettledIds(1500);
  for (let i = 0; i < 10_000; i++) s.mark(`r${i}`, i, i % 7 === 0 ? ({ requestId: `r${i}` } as Plan) : null);
  assert.equal(s.size, 1500);
  assert.equal(s.has('r8499'), false);
  assert.equal(s.has('r8500'), true);
  assert.equal(s.isDone('r8501'), true);
  assert.equal(s.expiredPlan('r8505')?.requestId, 'r8505');
  s.forget(9000);
  assert.deepEqual([s.has('r9000'), s.has('r9001'), s.size], [false, true, 999]);
});

test('memory store: a settled id stays refused and duplicate for settledMemoryMs, then is forgotten; the cap bounds it', async () => {
  const clock = new Clock(NOW);
  const store = new MemoryStore({ now: clock.now, settledMemoryMs: 60_000, maxSettled: 2 });
  const m = new BudgetManager(store);
  const specs = [budget('t', 'tenant:acme', { usd: 100 })];
  for (const id of ['a', 'b']) {
    const a = await m.admit(id, specs, [], usd(1));
    assert.ok(!(a instanceof GatewayError));
    assert.equal((await m.settle(a.reservation, usd(0.5))).status, 'settled');
  }
  assert.equal((await store.commit('a', usd(0.5))).status, 'duplicate');
  const again = await m.admit('a', specs, [], usd(1));
  assert.ok(again instanceof GatewayError && again.code === 'budget_duplicate_request');
  // A third settled id pushes the oldest out of the cap.
  const c = await m.admit('c', specs, [], usd(1));
  assert.ok(!(c instanceof GatewayError));
  await m.settle(c.reservation, usd(0.5));
  assert.equal((await store.commit('a', usd(0.5))).status, 'unknown');
  assert.equal((await store.commit('b', usd(0.5))).status, 'duplicate');
  clock.advance(60_001);
  assert.equal((await store.commit('b', usd(0.5))).status, 'unknown');
  const rows = await store.spend({ scopeKey: 'tenant:acme' });
  assert.equal(rows.length, 1);
  assert.equal(rows[0].usd, 1.5);
  assert.equal(store.inFlight, 0);
});

test('settled ids: random marks (fresh and repeated), forgets and the cap behave like a plain insertion-ordered map', () => {
  let seed = 99;
  const r = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const max = 40;
  const s = new SettledIds(max);
  // The model: id → [forgetAt, plan], oldest first; a mark moves the id to the newest end.
  const model = new Map<string, [number, Plan | null]>();
  let now = 0;
  let marks = 0;
  let repeats = 0;
  for (let i = 0; i < 20_000; i++) {
    const op = r();
    if (op < 0.7) {
      const id = `r${Math.floor(r() * 120)}`;
      const plan = r() < 0.3 ? ({ requestId: id } as Plan) : null;
      const known = model.has(id);
      // `fresh` only where the store may say so: the id is not remembered.
      s.mark(id, now + 500, plan, !known && r() < 0.8);
      marks++;
      if (known) repeats++;
      model.delete(id);
      model.set(id, [now + 500, plan]);
      while (model.size > max) model.delete(model.keys().next().value!);
    } else if (op < 0.85) {
      now += Math.floor(r() * 60);
      s.forget(now);
      for (const [id, [until]] of model) {
        if (until > now) break;
        model.delete(id);
      }
    }
    const probe = `r${Math.floor(r() * 120)}`;
    const m = model.get(probe);
    assert.equal(s.has(probe), m !== undefined, `has ${probe} at ${i}`);
    assert.equal(s.isDone(probe), m !== undefined && m[1] === null, `isDone ${probe} at ${i}`);
    assert.equal(s.expiredPlan(probe), m?.[1] ?? undefined, `expiredPlan ${probe} at ${i}`);
    assert.equal(s.size, model.size, `size at ${i}`);
  }
  assert.ok(marks > 10_000 && repeats > 3000, `${marks} marks, ${repeats} repeated`);
});
