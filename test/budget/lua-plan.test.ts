// The reserve and settle scripts read the plan from ARGV in a packed layout (numbers ':'-joined, flatPlan in
// redis.ts); readPlan in lua.ts must see exactly the plan the replica built — every counter, check, string
// and number — whatever the names, scope keys, windows and magnitudes.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { FMT_LUA, PLAN_LUA } from '../../service/budget/lua.ts';
import { buildPlan, type Plan } from '../../service/budget/plan.ts';
import { flatPlan, holdRecord } from '../../service/budget/redis.ts';
import type { BudgetSpec, RateLimitSpec } from '../../service/budget/types.ts';
import { REDIS_URL, budget, rate } from './helpers.ts';

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
after(() => redis.quit());

// Prints what readPlan(1) decoded, field by field (numbers through fmt: exact integers).
const SCRIPT = `${FMT_LUA}${PLAN_LUA}
local p = readPlan(1)
local out = { p.requestId, fmt(p.now), fmt(p.expiresAt), fmt(p.amounts.u), fmt(p.amounts.i), fmt(p.amounts.o), fmt(p.amounts.q), tostring(#p.counters), tostring(#p.checks) }
for _, c in ipairs(p.counters) do
  for _, v in ipairs({ c.key, c.scopeKey, c.window, c.windowId, fmt(c.bucketMs), fmt(c.buckets), fmt(c.bucket), fmt(c.expireAt), fmt(c.start), fmt(c.resetAt) }) do out[#out + 1] = v end
end
for _, k in ipairs(p.checks) do
  for _, v in ipairs({ fmt(k.counter), k.metric, fmt(k.limit), k.hard and '1' or '0', k.name }) do out[#out + 1] = v end
end
return out`;

/** An integer's exact digits (what fmt prints; String() would say 1e+21). */
const int = (x: number): string => {
  assert.ok(Number.isInteger(x), `integer ${x}`);
  return BigInt(x).toString();
};

/** The same fields straight from the JS plan. */
function expected(plan: Plan, withChecks: boolean): string[] {
  const a = plan.amounts;
  const checks = withChecks ? plan.checks : [];
  const out = [plan.requestId, ...[plan.now, plan.expiresAt, a.u, a.i, a.o, a.q, plan.counters.length, checks.length].map(int)];
  for (const c of plan.counters) out.push(c.key, c.scopeKey, c.window, c.windowId, ...[c.bucketMs, c.buckets, c.bucket, c.expireAt, c.start, c.resetAt].map(int));
  for (const k of checks) out.push(int(k.counter), k.metric, int(k.limit), k.hard ? '1' : '0', k.name);
  return out;
}

const odd = ['a:b', 'x|y', 'tab\there', 'new\nline', ':', '::', 'é🙂', ' spaced ', '%d+', 'team:red:*'];

function cases(): Array<{ budgets: BudgetSpec[]; rates: RateLimitSpec[]; est: { usd: number; inputTokens: number; outputTokens: number }; now: number; id: string }> {
  const out = [];
  for (let i = 0; i < odd.length; i++) {
    const s = odd[i];
    out.push({
      id: `req:${s}:${i}`,
      now: 1_700_000_000_000 + i * 86_400_013,
      est: { usd: [0, 0.3, 12.5, 1e-9, 8000][i % 5], inputTokens: [0, 1, 1500, 2 ** 31][i % 4], outputTokens: i * 977 },
      budgets: [
        budget(`b/${s}`, `key:${s}`, { usd: [0.3, 1e9, 1e12, 0][i % 4], requests: 10 + i }, { kind: 'day' }),
        budget(`team ${s}`, `team:${s}`, { inputTokens: 2 ** 40, totalTokens: 5 }, { kind: 'month', timeZone: 'Europe/Paris' }, { enforcement: i % 2 ? 'soft' : 'hard' }),
        budget(`roll${s}`, `custom:${s}`, { outputTokens: 7 }, { kind: 'rolling', seconds: [1, 90, 3600, 31_622_400][i % 4] }),
        budget(`hour${s}`, `key:${s}`, { usd: 2 }, { kind: 'hour' }),
      ],
      rates: [rate(`r:${s}`, `key:${s}`, { rpm: 60, tpm: i * 1000, maxParallel: 2 ** 45 })],
    });
  }
  return out;
}

test('readPlan decodes exactly the plan flatPlan packs (reserve: with checks; settle: without)', async () => {
  for (const c of cases()) {
    const plan = buildPlan({ requestId: c.id, budgets: c.budgets, rateLimits: c.rates, estimate: c.est, tenant: 'acme', now: c.now });
    assert.ok(plan.counters.length >= 4 && plan.checks.length >= 8);
    for (const withChecks of [true, false]) {
      const got = (await redis.eval(SCRIPT, 0, ...flatPlan(plan, withChecks))) as string[];
      assert.deepEqual(got, expected(plan, withChecks), `${c.id} withChecks=${withChecks}`);
    }
  }
});

test('the hold record is byte-identical to JSON.stringify({ amounts, counters }), also when its calendar counters come from the cache', async () => {
  for (const c of [...cases(), ...cases()]) {
    for (const now of [c.now, c.now + 1, c.now + 40 * 86_400_000]) {
      const plan = buildPlan({ requestId: c.id, budgets: c.budgets, rateLimits: c.rates, estimate: c.est, tenant: 'acme', now });
      assert.equal(holdRecord(plan), JSON.stringify({ amounts: plan.amounts, counters: plan.counters }));
    }
  }
});
