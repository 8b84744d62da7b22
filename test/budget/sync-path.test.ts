// The manager's synchronous store path (store.reserveNow/commitNow/releaseNow, offered by the in-process store)
// must decide exactly what the promise path decides. Differential: one manager over a MemoryStore (sync path),
// one over another MemoryStore reachable only through its async methods (the path every other store takes),
// the same clock and the same random traffic — admissions, denials, headers, errors and settlements must match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BudgetManager, LimitExceededError } from '../../service/budget/manager.ts';
import { MemoryStore } from '../../service/budget/memory.ts';
import type { BudgetStore } from '../../service/budget/store.ts';
import type { BudgetSpec, RateLimitSpec } from '../../service/budget/types.ts';
import { GatewayError } from '../../service/errors.ts';
import { seeded } from '../support/seeded.ts';

/** Only the promise-returning operations: the manager's general path. */
function asyncOnly(s: MemoryStore): BudgetStore {
  return {
    reserve: (id, specs, est) => s.reserve(id, specs, est),
    commit: (id, actual) => s.commit(id, actual),
    release: (id) => s.release(id),
    spend: (q) => s.spend(q),
    health: () => s.health(),
    close: () => s.close(),
  };
}

/** An admission or error as comparable data (errors: class, message and every field the client or lineage sees). */
function plain(x: unknown): unknown {
  if (x instanceof GatewayError) {
    return {
      class: x.constructor.name,
      message: x.message,
      kind: x.kind,
      code: x.code,
      status: x.status,
      headers: x.headers,
      denied: x instanceof LimitExceededError ? [x.limitKind, x.denied] : undefined,
    };
  }
  return x;
}

test('manager: the synchronous in-process store path equals the promise path over random traffic', async () => {
  const r = seeded(23);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  let t = Date.parse('2024-06-15T23:59:00Z');
  const now = (): number => t;
  const syncStore = new MemoryStore({ now });
  const asStore: BudgetStore = syncStore;
  assert.equal(typeof asStore.reserveNow, 'function', 'the in-process store offers the sync path');
  const a = new BudgetManager(syncStore);
  const b = new BudgetManager(asyncOnly(new MemoryStore({ now })));
  const scopes = ['key:k1', 'key:k2', 'team:t'];
  const specs = (): { budgets: BudgetSpec[]; rates: RateLimitSpec[] } => ({
    budgets: Array.from({ length: Math.floor(r() * 3) }, () => ({
      name: pick(['p/day', 'p/month', 'p/roll']),
      scope: 'key',
      scopeKey: pick(scopes),
      // Tight limits: denials (budget_exceeded, request_exceeds_limit) and soft warnings happen often.
      limit: r() < 0.5 ? { usd: pick([0.01, 0.05, 1]) } : { usd: pick([0.02, 1]), requests: pick([2, 5, 100]) },
      window: pick([{ kind: 'day' as const }, { kind: 'month' as const }, { kind: 'rolling' as const, seconds: 60 }]),
      enforcement: pick(['hard', 'hard', 'soft'] as const),
      onStoreError: 'local' as const,
      // now and then a spec the validator refuses
      ...(r() < 0.03 ? { limit: { usd: -1 } } : {}),
    })),
    rates: r() < 0.5 ? [{ name: 'p/rate', scopeKey: pick(scopes), rpm: pick([3, 50]), tpm: pick([300, 5000]), maxParallel: pick([1, 2, 10]), onStoreError: 'local' as const }] : [],
  });
  const held: string[] = [];
  let outcomes = 0;
  let denials = 0;
  for (let i = 0; i < 2500; i++) {
    if (r() < 0.55 || held.length === 0) {
      // Sometimes an id again (live hold: idempotent; settled: refused).
      const id = r() < 0.05 && i > 0 ? `q${Math.floor(r() * i)}` : `q${i}`;
      const s = specs();
      const est = { usd: pick([0.001, 0.004, 0.03, 2]), inputTokens: pick([10, 100]), outputTokens: pick([10, 200]) };
      const ctx = { tenant: pick(['acme', 'globex']) };
      const ra = await a.admit(id, s.budgets, s.rates, est, ctx);
      const rb = await b.admit(id, s.budgets, s.rates, est, ctx);
      assert.deepStrictEqual(plain(ra), plain(rb), `admit ${i}`);
      outcomes++;
      if (ra instanceof GatewayError) denials++;
      else if (!ra.reservation.empty) held.push(id);
    } else {
      const id = held.splice(Math.floor(r() * held.length), 1)[0]!;
      const actual = r() < 0.8 ? { usd: pick([0.0005, 0.02]), inputTokens: 20, outputTokens: pick([1, 50]) } : null;
      const again = r() < 0.1; // settling twice: duplicate
      for (let k = 0; k < (again ? 2 : 1); k++) {
        assert.deepStrictEqual(await a.settle({ requestId: id, empty: false }, actual), await b.settle({ requestId: id, empty: false }, actual), `settle ${i}`);
      }
    }
    if (r() < 0.08) t += pick([1000, 20_000, 600_000]);
  }
  assert.ok(denials > 100 && outcomes - denials > 300, `traffic too one-sided: ${denials} denials of ${outcomes}`);
});
