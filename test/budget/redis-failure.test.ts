// Redis failing mid-run, on a private redis-server: each fail mode behaves as configured, nothing
// crashes or hangs, and once Redis is back every admitted request is counted exactly once.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../service/errors.ts';
import { BudgetManager, type Admission } from '../../service/budget/manager.ts';
import { RedisStore } from '../../service/budget/redis.ts';
import type { StoreFailMode } from '../../service/budget/types.ts';
import { PrivateRedis, budget, freePort, until, usd } from './helpers.ts';

const servers: PrivateRedis[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function privateRedis(): Promise<PrivateRedis> {
  const s = new PrivateRedis(await freePort());
  servers.push(s);
  await s.start();
  return s;
}

function newStore(url: string): RedisStore {
  return new RedisStore({ url, prefix: 'tgfail:', commandTimeoutMs: 300, breakerMs: 200, replicas: 2, tickMs: 50 });
}

const isAdmission = (r: Admission | GatewayError): r is Admission => !(r instanceof GatewayError);

interface Expect {
  /** Admissions attempted while Redis is frozen, and how many get in. */
  duringOutage: number;
  admitted: number;
  degraded: 'failOpen' | 'local' | undefined;
  denial: { status: number; code: string } | undefined;
}

// Before the outage $5 of a $10 day budget is spent (2 replicas → a `local` share of $2.50).
const table: Array<[StoreFailMode, Expect]> = [
  ['failClosed', { duringOutage: 3, admitted: 0, degraded: undefined, denial: { status: 503, code: 'budget_store_unavailable' } }],
  ['failOpen', { duringOutage: 8, admitted: 8, degraded: 'failOpen', denial: undefined }],
  ['local', { duringOutage: 4, admitted: 2, degraded: 'local', denial: { status: 429, code: 'budget_exceeded' } }],
];

for (const [mode, want] of table) {
  test(`Redis frozen mid-run (SIGSTOP), onStoreError=${mode}: behaves as configured and reconciles exactly once`, async () => {
    const redis = await privateRedis();
    const store = newStore(redis.url);
    const m = new BudgetManager(store);
    try {
      assert.equal(await store.ready(3000), true);
      const specs = [budget('acme/daily', 'tenant:acme', { usd: 10 }, { kind: 'day' }, { onStoreError: mode })];
      const ctx = { tenant: 'acme' };
      for (let i = 0; i < 5; i++) {
        const a = await m.admit(`ok-${i}`, specs, [], usd(1), ctx);
        assert.ok(isAdmission(a));
        await m.settle(a.reservation, usd(1));
      }
      // One request is in flight when Redis freezes; its commit must survive the outage.
      const inflight = await m.admit('inflight', specs, [], usd(1), ctx);
      assert.ok(isAdmission(inflight));
      assert.equal(store.health(), 'ok');

      redis.pause();
      assert.deepEqual(await m.settle(inflight.reservation, usd(1)), { status: 'queued' });
      let admittedCount = 0;
      const admissions: Admission[] = [];
      for (let i = 0; i < want.duringOutage; i++) {
        const r = await m.admit(`outage-${i}`, specs, [], usd(1), ctx);
        if (isAdmission(r)) {
          admittedCount++;
          admissions.push(r);
          assert.equal(r.degraded, want.degraded);
          assert.equal(r.headers['x-tollgate-budget-degraded'], want.degraded);
        } else {
          assert.ok(want.denial, `unexpected denial ${r.code}`);
          assert.equal(r.status, want.denial.status);
          assert.equal(r.code, want.denial.code);
        }
      }
      assert.equal(admittedCount, want.admitted);
      assert.equal(store.health(), 'degraded');
      for (const a of admissions) await m.settle(a.reservation, usd(1));

      redis.resume();
      await until(() => store.health() === 'ok', 10_000, 'store to recover');
      await store.flush();
      const [row] = await store.spend({ tenant: 'acme' });
      // 5 before + the in-flight one + every request admitted during the outage, each once.
      assert.equal(row.usd, 6 + want.admitted);
      assert.equal(row.requests, 6 + want.admitted);
      // Timed-out reserves that ran late were released by the replayed releases.
      assert.equal(row.reservedUsd, 0);
      assert.equal(row.inFlight, 0);
      // Healthy again: admissions go through Redis (no degraded flag).
      const after = await m.admit('after', specs, [], usd(0.5), ctx);
      if (row.usd + 0.5 <= 10) {
        assert.ok(isAdmission(after));
        assert.equal(after.degraded, undefined);
      } else {
        assert.ok(after instanceof GatewayError && after.code === 'budget_exceeded');
      }
      assert.ok(store.stats().failures > 0);
    } finally {
      await store.close();
      await redis.stop();
    }
  });
}

test('Redis killed and restarted empty: local spend is replayed into the new Redis once; scripts reload', async () => {
  const redis = await privateRedis();
  const store = newStore(redis.url);
  const m = new BudgetManager(store);
  try {
    assert.equal(await store.ready(3000), true);
    const specs = [budget('k/daily', 'key:k', { usd: 100 }, { kind: 'day' }, { onStoreError: 'local' })];
    const ctx = { tenant: 'acme' };
    const a0 = await m.admit('before', specs, [], usd(1), ctx);
    assert.ok(isAdmission(a0));
    await m.settle(a0.reservation, usd(1));

    await redis.stop();
    await until(() => store.redis.status !== 'ready', 5000, 'client to notice');
    for (let i = 0; i < 3; i++) {
      const a = await m.admit(`down-${i}`, specs, [], usd(2), ctx);
      assert.ok(isAdmission(a), 'local share admits');
      assert.equal(a.degraded, 'local');
      await m.settle(a.reservation, { usd: 1.5, inputTokens: 10, outputTokens: 10 });
    }
    assert.equal(store.health(), 'degraded');

    await redis.start();
    await until(() => store.health() === 'ok', 15_000, 'reconnect');
    // The replay runs right after the reconnect; wait for it to land rather than racing it.
    await until(async () => (await store.spend({ tenant: 'acme' })).length > 0, 15_000, 'replay');
    const [row] = await store.spend({ tenant: 'acme' });
    // The restarted Redis lost the $1 from before; it holds exactly the replayed local spend.
    assert.equal(row.usd, 4.5);
    assert.equal(row.requests, 3);
    // Replays are idempotent: flushing again adds nothing.
    await store.flush();
    assert.equal((await store.spend({ tenant: 'acme' }))[0].usd, 4.5);
    const a = await m.admit('after', specs, [], usd(1), ctx);
    assert.ok(isAdmission(a));
    assert.equal(a.degraded, undefined);
  } finally {
    await store.close();
    await redis.stop();
  }
});

test('Redis absent from the start: failClosed denies, no crash, health is degraded', async () => {
  const port = await freePort();
  const store = newStore(`redis://127.0.0.1:${port}`);
  const m = new BudgetManager(store);
  try {
    const r = await m.admit('a', [budget('t', 'tenant:acme', { usd: 1 })], [], usd(0.1));
    assert.ok(r instanceof GatewayError);
    assert.equal(r.status, 503);
    assert.equal(store.health(), 'degraded');
  } finally {
    await store.close();
  }
});

test('onStoreError=local over repeated outages: the headroom is spent once, not once per outage (exact across outages)', async () => {
  const redis = await privateRedis();
  // One replica: its `local` share is everything Redis last reported as left.
  const store = new RedisStore({ url: redis.url, prefix: 'tgfail:', commandTimeoutMs: 300, breakerMs: 200, replicas: 1, tickMs: 50 });
  const m = new BudgetManager(store);
  try {
    assert.equal(await store.ready(3000), true);
    const specs = [budget('acme/daily', 'tenant:acme', { usd: 10 }, { kind: 'day' }, { onStoreError: 'local' })];
    const ctx = { tenant: 'acme' };
    for (let i = 0; i < 4; i++) {
      const a = await m.admit(`before-${i}`, specs, [], usd(1), ctx);
      assert.ok(isAdmission(a));
      await m.settle(a.reservation, usd(1));
    }
    const admittedPerOutage: number[] = [];
    for (let outage = 0; outage < 3; outage++) {
      redis.pause();
      let n = 0;
      for (let i = 0; i < 8; i++) {
        const r = await m.admit(`outage${outage}-${i}`, specs, [], usd(1), ctx);
        if (!isAdmission(r)) {
          // A share of 0 can never admit anything: `request_exceeds_limit`.
          assert.ok(r.code === 'budget_exceeded' || r.code === 'request_exceeds_limit', r.code);
          continue;
        }
        assert.equal(r.degraded, 'local');
        n++;
        await m.settle(r.reservation, usd(1));
      }
      admittedPerOutage.push(n);
      redis.resume();
      // Recovered and replayed; the next outage starts before any request touches Redis again.
      await until(() => store.health() === 'ok', 10_000, `recovery after outage ${outage}`);
      await store.flush();
    }
    // $4 spent before; the first outage may use the $6 left, later ones nothing.
    assert.deepEqual(admittedPerOutage, [6, 0, 0]);
    const [row] = await store.spend({ tenant: 'acme' });
    assert.equal(row.usd, 10);
    assert.equal(row.requests, 10);
  } finally {
    await store.close();
    await redis.stop();
  }
});
