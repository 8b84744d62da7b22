// Budget benchmark: admission + commit cost per request for the memory and Redis stores, with a
// realistic attachment (key/day, team/month, tenant/month in a zone, and an rpm+tpm+parallel limit).

import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { BudgetManager } from '../../service/budget/manager.ts';
import { MemoryStore } from '../../service/budget/memory.ts';
import { RedisStore } from '../../service/budget/redis.ts';
import type { BudgetSpec, RateLimitSpec } from '../../service/budget/types.ts';
import { GatewayError } from '../../service/errors.ts';
import { costOfUsage, reservationCost } from '../../service/budget/cost.ts';
import { budgetPort } from '../../service/gateway/adapters.ts';

const BUDGETS: BudgetSpec[] = [
  { name: 'keys/daily', scope: 'key', scopeKey: 'key:k1', limit: { usd: 1e9, requests: 1e12 }, window: { kind: 'day' }, enforcement: 'hard', onStoreError: 'failClosed' },
  { name: 'teams/monthly', scope: 'team', scopeKey: 'team:red', limit: { usd: 1e9 }, window: { kind: 'month' }, enforcement: 'hard', onStoreError: 'failClosed' },
  { name: 'tenants/monthly', scope: 'tenant', scopeKey: 'tenant:acme', limit: { usd: 1e9, totalTokens: 1e15 }, window: { kind: 'month', timeZone: 'Europe/Paris' }, enforcement: 'hard', onStoreError: 'failClosed' },
];
const RATES: RateLimitSpec[] = [{ name: 'keys/rate', scopeKey: 'key:k1', rpm: 1e9, tpm: 1e12, maxParallel: 1e6, onStoreError: 'failClosed' }];
const EST = { usd: 0.0125, inputTokens: 1500, outputTokens: 1000 };
const ACTUAL = { usd: 0.004, inputTokens: 1500, outputTokens: 120 };

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const us = (ns: number): string => `${(ns / 1000).toFixed(1)}µs`;

async function timeLoop(m: BudgetManager, n: number, idp: string): Promise<number[]> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    const a = await m.admit(`${idp}${i}`, BUDGETS, RATES, EST, { tenant: 'acme' });
    if (a instanceof GatewayError) throw a;
    await m.settle(a.reservation, ACTUAL);
    t.push(Number(process.hrtime.bigint() - s));
  }
  return t.sort((a, b) => a - b);
}

async function evalshaStats(url: string): Promise<{ calls: number; usec: number }> {
  const r = new Redis(url);
  try {
    const info = await r.info('commandstats');
    const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
    return m ? { calls: Number(m[1]), usec: Number(m[2]) } : { calls: 0, usec: 0 };
  } finally {
    await r.quit();
  }
}

/** The modules one request-shaped run uses (a bench can pass an older copy for an A/B comparison). */
export interface BudgetModules {
  BudgetManager: typeof BudgetManager;
  MemoryStore: typeof MemoryStore;
  budgetPort: typeof budgetPort;
  costOfUsage: typeof costOfUsage;
  reservationCost: typeof reservationCost;
}

const DEPLOYMENT = { inputPricePerM: 0.165, outputPricePerM: 0.66 };

/**
 * What the request path does per request with the example bundle (captured from the exchange bench):
 * fresh spec objects from the policy evaluator (3 budgets + one rpm/tpm/parallel limit), a random
 * reservation id, admit + settle through the gateway port, and the cost computed where the exchange
 * computes it (reservation price, then metadata, settle and lineage: 4× costOfUsage).
 */
export function requestShaped(mods: BudgetModules): (n: number) => Promise<void> {
  const port = mods.budgetPort(new mods.BudgetManager(new mods.MemoryStore()));
  const keyId = 'demo-acme-research';
  return async (n) => {
    for (let i = 0; i < n; i++) {
      const scope = `key:${keyId}`;
      const budgets: BudgetSpec[] = [
        { name: 'spend-controls/key-daily', scope: 'key', scopeKey: scope, limit: { usd: 1e9 }, window: { kind: 'day' }, enforcement: 'hard', onStoreError: 'local' },
        { name: 'spend-controls/tenant-monthly', scope: 'tenant', scopeKey: 'tenant:acme', limit: { usd: 1e9 }, window: { kind: 'month' }, enforcement: 'hard', onStoreError: 'failClosed' },
        { name: 'spend-controls/cost-center-monthly', scope: 'custom', scopeKey: `custom:cost-center:${'acme/r-and-d'}`, limit: { usd: 1e9 }, window: { kind: 'month' }, enforcement: 'soft', onStoreError: 'failOpen' },
      ];
      const rates: RateLimitSpec[] = [{ name: 'baseline/per-key-rate', scopeKey: scope, onStoreError: 'local', rpm: 1e8, tpm: 1e8, maxParallel: 1e8 }];
      const reserved = { inputTokens: 244, outputTokens: 256 };
      const est = { usd: mods.reservationCost(reserved.inputTokens, reserved.outputTokens, DEPLOYMENT), ...reserved };
      const adm = await port.admit(randomUUID(), budgets, rates, est, 'acme');
      const usage = { inputTokens: 300, outputTokens: 5 };
      let usd = mods.costOfUsage(usage, DEPLOYMENT).totalUsd; // metadata
      usd = mods.costOfUsage(usage, DEPLOYMENT).totalUsd; // settle
      const effects = await port.settle(adm, { usd, ...usage });
      if (effects.length !== 3) throw new Error('bench: expected 3 budget effects');
      mods.costOfUsage(usage, DEPLOYMENT); // lineage costUsd
      mods.costOfUsage(usage, DEPLOYMENT); // lineage costComponents
    }
  };
}

export async function bench(): Promise<string[]> {
  const lines: string[] = [];
  {
    const run = requestShaped({ BudgetManager, MemoryStore, budgetPort, costOfUsage, reservationCost });
    await run(5000);
    const n = 30000;
    const cpu0 = process.cpuUsage();
    await run(n);
    const cpu = process.cpuUsage(cpu0);
    lines.push(`budget request-shaped (example bundle: fresh specs, port admit+settle, 4× costOfUsage) CPU ${((cpu.user + cpu.system) / n).toFixed(1)}µs/request`);
  }
  {
    const m = new BudgetManager(new MemoryStore());
    await timeLoop(m, 5000, 'warm');
    const cpu0 = process.cpuUsage();
    const n = 30000;
    const t = await timeLoop(m, n, 'm');
    const cpu = process.cpuUsage(cpu0);
    // CPU time per request is the cost; wall p50/p99 also show scheduling noise on a busy machine.
    const cpuUs = (cpu.user + cpu.system) / n;
    lines.push(`budget memory: admit+commit (3 budgets + rpm/tpm/parallel) CPU ${cpuUs.toFixed(1)}µs/request; wall p50 ${us(pct(t, 50))} p99 ${us(pct(t, 99))}`);
  }
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
  } catch {
    lines.push(`budget redis: skipped (no Redis at ${url})`);
    return lines;
  } finally {
    probe.disconnect();
  }
  const prefix = `tgbench:${randomBytes(4).toString('hex')}:`;
  const store = new RedisStore({ url, prefix, commandTimeoutMs: 2000 });
  try {
    await store.ready(3000);
    const m = new BudgetManager(store);
    await timeLoop(m, 300, 'warm');
    const before = store.stats().roundTrips;
    const n = 3000;
    const info0 = await evalshaStats(url);
    const cpu0 = process.cpuUsage();
    const t = await timeLoop(m, n, 'r');
    const cpu = process.cpuUsage(cpu0);
    const info1 = await evalshaStats(url);
    const after = store.stats().roundTrips;
    const rtReserve = (after.reserve - before.reserve) / n;
    const rtSettle = (after.settle - before.settle) / n;
    const luaUs = info1.calls > info0.calls ? (info1.usec - info0.usec) / (info1.calls - info0.calls) : 0;
    lines.push(
      `budget redis: admit+commit sequential wall p50 ${us(pct(t, 50))} p99 ${us(pct(t, 99))}; round trips per request: reserve ${rtReserve}, commit ${rtSettle}; ` +
        `Lua ${luaUs.toFixed(1)}µs per script in Redis; client CPU ${((cpu.user + cpu.system) / n).toFixed(1)}µs/request`,
    );
    // Throughput with 64 requests in flight (one client connection, pipelined by ioredis).
    const deadline = Date.now() + 1500;
    let done = 0;
    let seq = 0;
    const start = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (Date.now() < deadline) {
          const a = await m.admit(`c${seq++}`, BUDGETS, RATES, EST, { tenant: 'acme' });
          if (a instanceof GatewayError) throw a;
          await m.settle(a.reservation, ACTUAL);
          done++;
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    lines.push(`budget redis: ${Math.round(done / secs)} admit+commit/s with 64 in flight on one connection`);
  } finally {
    await store.close();
    const r = new Redis(url);
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
    await r.quit();
  }
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const l of await bench()) console.log(l);
}
