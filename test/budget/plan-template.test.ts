// Plan templates (budget/plan.ts): buildPlan reuses the spec-derived part of a plan (validated checks and
// counter shapes) for specs equal field by field to ones it planned before. Differential: over many varied
// spec lists — near-duplicates of each other, invalid ones included — buildPlan must give exactly what the
// general path gives (the same plan, or the same error), whatever templates earlier requests left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan, buildPlanUncached, clearPlanTemplates, MAX_PLAN_TEMPLATES, planTemplateCount, type Plan, type PlanInput } from '../../service/budget/plan.ts';
import type { BudgetSpec, BudgetWindow, RateLimitSpec } from '../../service/budget/types.ts';
import { seeded } from '../support/seeded.ts';

// Small universes, so that different inputs often differ in one field only (the case a template must miss).
const NAMES = ['p/a', 'p/b'];
const SCOPES = ['key:k1', 'key:k2', 'tenant:acme'];
const USD = [undefined, undefined, undefined, 0, 0.3, 1, 1, 2.5, 2.5, 1e9, 1e9, 5, -1, Number.NaN, Infinity];
const COUNTS = [undefined, undefined, undefined, undefined, undefined, undefined, 0, 5, 5, 1000, 1000, 1.5, -2];
const WINDOWS: unknown[] = [
  { kind: 'day' },
  { kind: 'month' },
  { kind: 'month', timeZone: 'Europe/Paris' },
  { kind: 'day', timeZone: 'UTC' },
  { kind: 'hour', timeZone: 'Asia/Kolkata' },
  { kind: 'minute' },
  { kind: 'rolling', seconds: 60 },
  { kind: 'rolling', seconds: 3600 },
  { kind: 'month' },
  { kind: 'rolling', seconds: 60 },
  { kind: 'day' },
  { kind: 'rolling', seconds: 0 },
  { kind: 'week' },
  { kind: 'day', timeZone: 'Mars/Olympus' },
];
const ENFORCEMENT = ['hard', 'hard', 'hard', 'soft', 'soft', 'strict'];
const MODES = ['failClosed', 'failClosed', 'failOpen', 'failOpen', 'local', 'local', 'local', 'sometimes'];

function budgetSpec(r: () => number, pick: <T>(xs: readonly T[]) => T): BudgetSpec {
  const limit: Record<string, number | undefined> = {};
  for (const [k, xs] of [['usd', USD], ['inputTokens', COUNTS], ['outputTokens', COUNTS], ['totalTokens', COUNTS], ['requests', COUNTS]] as const) {
    const v = pick<number | undefined>(xs);
    // Unset fields are sometimes absent and sometimes present as undefined: both mean unset.
    if (v !== undefined || r() < 0.3) limit[k] = v;
  }
  return {
    name: pick(NAMES),
    scope: 'key',
    scopeKey: pick(SCOPES),
    limit: limit as BudgetSpec['limit'],
    window: { ...(pick(WINDOWS) as BudgetWindow) },
    enforcement: pick(ENFORCEMENT) as BudgetSpec['enforcement'],
    onStoreError: pick(MODES) as BudgetSpec['onStoreError'],
  };
}

function rateSpec(pick: <T>(xs: readonly T[]) => T): RateLimitSpec {
  const s: RateLimitSpec = { name: pick(NAMES), scopeKey: pick(SCOPES), onStoreError: pick(MODES) as RateLimitSpec['onStoreError'] };
  const rpm = pick(COUNTS);
  const tpm = pick(COUNTS);
  const par = pick(COUNTS);
  if (rpm !== undefined) s.rpm = rpm;
  if (tpm !== undefined) s.tpm = tpm;
  if (par !== undefined) s.maxParallel = par;
  return s;
}

/** A plan or the error it throws, as comparable data. */
function outcome(f: () => Plan): unknown {
  try {
    return { plan: f() };
  } catch (err) {
    return { error: err instanceof Error ? { name: err.name, message: err.message, code: (err as { code?: unknown }).code } : String(err) };
  }
}

interface Input extends PlanInput {
  // (the tests change these lists in place)
  budgets: BudgetSpec[];
  rateLimits: RateLimitSpec[];
}

/** Fresh objects with the same fields (policies hand over new spec objects for every request). */
function clone(input: Input): Input {
  return {
    ...input,
    budgets: input.budgets.map((b) => ({ ...b, limit: { ...b.limit }, window: { ...b.window } })),
    rateLimits: input.rateLimits.map((x) => ({ ...x })),
  };
}

const NOW = Date.parse('2024-06-15T12:00:00Z');

test('plan templates: buildPlan equals the general path over varied, near-duplicate and invalid spec lists', () => {
  const r = seeded(17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // A pool of base inputs, then variants that change exactly one field of one spec.
  const pool: Input[] = [];
  for (let i = 0; i < 60; i++) {
    const budgets = Array.from({ length: Math.floor(r() * 4) }, () => budgetSpec(r, pick));
    const rateLimits = Array.from({ length: Math.floor(r() * 3) }, () => rateSpec(pick));
    pool.push({ requestId: `r${i}`, budgets, rateLimits, estimate: { usd: 0.01, inputTokens: 100, outputTokens: 50 }, tenant: 'acme', now: NOW });
  }
  const mutations: Array<(x: Input) => void> = [
    (x) => x.budgets[0] && (x.budgets[0].name = pick(NAMES)),
    (x) => x.budgets[0] && (x.budgets[0].scopeKey = pick(SCOPES)),
    (x) => x.budgets[0] && (x.budgets[0].limit.usd = pick(USD)),
    (x) => x.budgets[0] && (x.budgets[0].limit.inputTokens = pick(COUNTS)),
    (x) => x.budgets[0] && (x.budgets[0].limit.outputTokens = pick(COUNTS)),
    (x) => x.budgets[0] && (x.budgets[0].limit.totalTokens = pick(COUNTS)),
    (x) => x.budgets.at(-1) && (x.budgets.at(-1)!.limit.requests = pick(COUNTS)),
    (x) => x.budgets.at(-1) && (x.budgets.at(-1)!.window = { ...(pick(WINDOWS) as BudgetWindow) }),
    (x) => x.budgets[0] && (x.budgets[0].enforcement = pick(ENFORCEMENT) as BudgetSpec['enforcement']),
    (x) => x.budgets[0] && (x.budgets[0].onStoreError = pick(MODES) as BudgetSpec['onStoreError']),
    (x) => x.rateLimits[0] && (x.rateLimits[0].name = pick(NAMES)),
    (x) => x.rateLimits.at(-1) && (x.rateLimits.at(-1)!.scopeKey = pick(SCOPES)),
    (x) => x.rateLimits[0] && (x.rateLimits[0].rpm = pick(COUNTS)),
    (x) => x.rateLimits[0] && (x.rateLimits[0].tpm = pick(COUNTS)),
    (x) => x.rateLimits.at(-1) && (x.rateLimits.at(-1)!.maxParallel = pick(COUNTS)),
    (x) => x.rateLimits[0] && (x.rateLimits[0].onStoreError = pick(MODES) as RateLimitSpec['onStoreError']),
    (x) => x.budgets.pop(),
    (x) => x.rateLimits.pop(),
    (x) => x.budgets.reverse(),
  ];
  clearPlanTemplates();
  let hits = 0;
  let valid = 0;
  for (let i = 0; i < 6000; i++) {
    const base = pick(pool);
    const input = clone(base);
    if (r() < 0.6) pick(mutations)(input);
    input.now = NOW + Math.floor(r() * 3) * 86_400_000 + Math.floor(r() * 120_000);
    if (r() < 0.2) input.ttlMs = pick([1000, 600_000]);
    const want = outcome(() => buildPlanUncached(clone(input)));
    const got = outcome(() => buildPlan(clone(input)));
    assert.deepStrictEqual(got, want, `input ${i}: ${JSON.stringify(input)}`);
    // The same specs again (now a template hit when valid): still the general path's plan.
    const again = outcome(() => buildPlan(clone(input)));
    assert.deepStrictEqual(again, want, `input ${i} (second time): ${JSON.stringify(input)}`);
    // Specs whose plan is valid and not empty (nothing to reuse for no specs at all).
    if ('plan' in (want as object) && input.budgets.length + input.rateLimits.length > 0) {
      valid++;
      if ((again as { plan: Plan }).plan.checks === (got as { plan: Plan }).plan.checks) hits++;
    }
  }
  // The generator must exercise both sides: many valid plans, every one reused the second time.
  assert.ok(valid > 500, `only ${valid} valid inputs`);
  assert.equal(hits, valid);
});

test('plan templates: malformed spec objects fail exactly as on the general path', () => {
  clearPlanTemplates();
  const ok: Input = {
    requestId: 'r',
    budgets: [{ name: 'p/a', scope: 'key', scopeKey: 'key:k1', limit: { usd: 1 }, window: { kind: 'day' }, enforcement: 'hard', onStoreError: 'local' }],
    rateLimits: [{ name: 'p/r', scopeKey: 'key:k1', rpm: 5, onStoreError: 'local' }],
    estimate: { usd: 0.01, inputTokens: 1, outputTokens: 1 },
    now: NOW,
  };
  buildPlan(clone(ok)); // leaves a template for key:k1
  const broken: Input[] = [
    { ...clone(ok), budgets: [null as unknown as BudgetSpec] },
    { ...clone(ok), budgets: [{ ...ok.budgets[0], limit: undefined as unknown as BudgetSpec['limit'] }] },
    { ...clone(ok), budgets: [{ ...ok.budgets[0], window: 'day' as unknown as BudgetWindow }] },
    { ...clone(ok), budgets: [{ ...ok.budgets[0], limit: { usd: '1' as unknown as number } }] },
    { ...clone(ok), rateLimits: [null as unknown as RateLimitSpec] },
    { ...clone(ok), budgets: [], rateLimits: [{ ...ok.rateLimits[0], rpm: 5.5 }] },
  ];
  for (const b of broken) assert.deepStrictEqual(outcome(() => buildPlan(b)), outcome(() => buildPlanUncached(b)));
});

test('plan templates in the memory store: admissions, settlements and spend rows (limits included) equal the general path', async () => {
  const { MemoryStore } = await import('../../service/budget/memory.ts');
  const r = seeded(8);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  let t = NOW;
  const now = (): number => t;
  // A: the request path (store.reserve → buildPlan with templates). B: every plan from the general path.
  const a = new MemoryStore({ now });
  const b = new MemoryStore({ now });
  const windows: BudgetWindow[] = [{ kind: 'day' }, { kind: 'month' }, { kind: 'rolling', seconds: 120 }, { kind: 'minute' }];
  // Limits change between requests (a reload, another model's verdict): spend rows must show the last ones.
  const specsOf = (): { budgets: BudgetSpec[]; rateLimits: RateLimitSpec[] } => ({
    budgets: Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
      name: pick(NAMES),
      scope: 'key',
      scopeKey: pick(SCOPES),
      limit: r() < 0.5 ? { usd: pick([0.05, 1, 1e9]) } : { usd: pick([0.05, 1]), requests: pick([3, 1000]), totalTokens: pick([500, 1e6]) },
      window: { ...pick(windows) },
      enforcement: pick(['hard', 'soft'] as const),
      onStoreError: 'local' as const,
    })),
    rateLimits: r() < 0.6 ? [{ name: 'p/rate', scopeKey: pick(SCOPES), rpm: pick([4, 1000]), tpm: pick([800, 1e6]), maxParallel: pick([2, 100]), onStoreError: 'local' as const }] : [],
  });
  // The limits each counter's spend row must show: every admitted plan's checks, written in order (the plain
  // rule, kept by the test). Time moves in small steps below, so no counter expires and restarts empty.
  const wantLimits = new Map<string, Record<string, number>>();
  const rowKey = (c: { scopeKey: string; window: string; windowId: string }): string => `${c.scopeKey}|${c.window}|${c.windowId}`;
  const checkLimits = async (when: string): Promise<void> => {
    const rows = await a.spend();
    assert.ok(rows.length > 0);
    for (const row of rows) assert.deepStrictEqual(row.limits, wantLimits.get(rowKey(row)) ?? {}, `${when}: limits of ${rowKey(row)}`);
  };
  const live: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const op = r();
    if (op < 0.55 || live.length === 0) {
      const id = `q${i}`;
      const specs = specsOf();
      const estimate = { usd: pick([0.001, 0.02, 0.3]), inputTokens: pick([10, 200]), outputTokens: pick([5, 100]) };
      const ra = await a.reserve(id, { ...specs, tenant: 'acme' }, estimate);
      const plan = buildPlanUncached({ requestId: id, budgets: specs.budgets.map((x) => ({ ...x, limit: { ...x.limit } })), rateLimits: specs.rateLimits.map((x) => ({ ...x })), estimate, tenant: 'acme', now: t });
      const rb = b.reservePlan(plan);
      assert.deepStrictEqual(ra, rb, `reserve ${i}`);
      if (ra.ok) {
        live.push(id);
        for (const chk of plan.checks) {
          const k = rowKey(plan.counters[chk.counter]!);
          const l = wantLimits.get(k) ?? {};
          l[`${chk.name}:${chk.metric}`] = chk.metric === 'usd' ? chk.limit / 1e9 : chk.limit;
          wantLimits.set(k, l);
        }
      }
    } else {
      const id = live.splice(Math.floor(r() * live.length), 1)[0]!;
      const actual = r() < 0.8 ? { usd: pick([0.0005, 0.01]), inputTokens: 50, outputTokens: pick([1, 40]) } : null;
      const sa = actual ? await a.commit(id, actual) : await a.release(id);
      const sb = actual ? await b.commit(id, actual) : await b.release(id);
      assert.deepStrictEqual(sa, sb, `settle ${i}`);
    }
    if (r() < 0.1) t += pick([1000, 1000, 30_000]);
    if (i % 100 === 99) {
      assert.equal(JSON.stringify(await a.spend()), JSON.stringify(await b.spend()), `spend after ${i}`);
      await checkLimits(`after ${i}`);
    }
  }
  assert.equal(JSON.stringify(await a.spend()), JSON.stringify(await b.spend()));
  await checkLimits('at the end');
});

test('plan templates are bounded: per-user scope keys and many variants of one scope never grow the cache past its cap', () => {
  clearPlanTemplates();
  const spec = (scopeKey: string, usd: number): BudgetSpec => ({ name: 'p/u', scope: 'user', scopeKey, limit: { usd }, window: { kind: 'day' }, enforcement: 'hard', onStoreError: 'local' });
  const plan = (b: BudgetSpec): Plan => buildPlan({ requestId: 'r', budgets: [b], rateLimits: [], estimate: { usd: 0, inputTokens: 0, outputTokens: 0 }, now: NOW });
  // One scope, 20 limit variants: at most 8 kept for it, and the newest still reused.
  for (let v = 0; v < 20; v++) plan(spec('user:one', v));
  assert.equal(planTemplateCount(), 8);
  assert.equal(plan(spec('user:one', 19)).checks, plan(spec('user:one', 19)).checks);
  for (let u = 0; u < MAX_PLAN_TEMPLATES + 500; u++) {
    plan(spec(`user:${u}`, 1));
    assert.ok(planTemplateCount() <= MAX_PLAN_TEMPLATES);
  }
  assert.ok(planTemplateCount() >= 500);
});
