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
import { estimateBillable } from '../../service/budget/billable.ts';
import { chatWorkload } from './chat-workload.ts';
import { spread } from './noise.ts';

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
  estimateBillable: typeof estimateBillable;
}

const DEPLOYMENT = { inputPricePerM: 0.165, outputPricePerM: 0.66 };

/**
 * What the request path does per request with the example bundle (captured from the exchange bench):
 * fresh spec objects from the policy evaluator (3 budgets + one rpm/tpm/parallel limit), a random
 * reservation id, the billable estimate of the extproc bench's chat body (parsed once, as the exchange
 * has it), admit + settle through the gateway port, and the cost computed where the exchange
 * computes it (reservation price, then metadata, settle and lineage: 4× costOfUsage).
 */
export function requestShaped(mods: BudgetModules): (n: number) => Promise<void> {
  const port = mods.budgetPort(new mods.BudgetManager(new mods.MemoryStore()));
  const keyId = 'demo-acme-research';
  const body = JSON.parse(chatWorkload().body.toString()) as Record<string, unknown>;
  return async (n) => {
    for (let i = 0; i < n; i++) {
      const bill = mods.estimateBillable('openai', 'chat', body, 256);
      if (bill.inputTokens !== 258) throw new Error(`bench: estimate ${bill.inputTokens}, expected 258`);
      const scope = `key:${keyId}`;
      const budgets: BudgetSpec[] = [
        { name: 'spend-controls/key-daily', scope: 'key', scopeKey: scope, limit: { usd: 1e9 }, window: { kind: 'day' }, enforcement: 'hard', onStoreError: 'local' },
        { name: 'spend-controls/tenant-monthly', scope: 'tenant', scopeKey: 'tenant:acme', limit: { usd: 1e9 }, window: { kind: 'month' }, enforcement: 'hard', onStoreError: 'failClosed' },
        { name: 'spend-controls/cost-center-monthly', scope: 'custom', scopeKey: `custom:cost-center:${'acme/r-and-d'}`, limit: { usd: 1e9 }, window: { kind: 'month' }, enforcement: 'soft', onStoreError: 'failOpen' },
      ];
      const rates: RateLimitSpec[] = [{ name: 'baseline/per-key-rate', scopeKey: scope, onStoreError: 'local', rpm: 1e8, tpm: 1e8, maxParallel: 1e8 }];
      const reserved = { inputTokens: bill.inputTokens, outputTokens: bill.outputTokens };
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

/** Redis server CPU (s) and command counts, from INFO: what Redis itself spends on our scripts. */
async function serverStats(r: Redis): Promise<{ cpu: number; evalsha: number; inner: number }> {
  const cpuInfo = await r.info('cpu');
  const num = (k: string): number => Number(new RegExp(`${k}:([\\d.]+)`).exec(cpuInfo)?.[1] ?? 0);
  const cmd = await r.info('commandstats');
  let evalsha = 0;
  let inner = 0;
  for (const m of cmd.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) {
    if (m[1] === 'evalsha') evalsha += Number(m[2]);
    else if (m[1] !== 'info' && !m[1].startsWith('script')) inner += Number(m[2]);
  }
  return { cpu: num('used_cpu_user') + num('used_cpu_sys'), evalsha, inner };
}

/**
 * A/B against another checkout (BENCH_BUDGET_BASE=/tmp/base6): its budget modules and this one's, in this
 * process, alternating rounds (A, B, A, B …) so machine noise hits both; medians of per-round figures.
 */
async function abLines(base: string, url: string | undefined): Promise<string[]> {
  const lines: string[] = [];
  const baseMods: BudgetModules = {
    BudgetManager: (await import(`${base}/service/budget/manager.ts`)).BudgetManager,
    MemoryStore: (await import(`${base}/service/budget/memory.ts`)).MemoryStore,
    budgetPort: (await import(`${base}/service/gateway/adapters.ts`)).budgetPort,
    costOfUsage: (await import(`${base}/service/budget/cost.ts`)).costOfUsage,
    reservationCost: (await import(`${base}/service/budget/cost.ts`)).reservationCost,
    estimateBillable: (await import(`${base}/service/budget/billable.ts`)).estimateBillable,
  };
  const newMods: BudgetModules = { BudgetManager, MemoryStore, budgetPort, costOfUsage, reservationCost, estimateBillable };
  {
    const runs = [requestShaped(baseMods), requestShaped(newMods)];
    const per: number[][] = [[], []];
    for (const r of runs) await r(5000);
    const rounds = Number(process.env.BENCH_AB_ROUNDS ?? 10);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < 2; k++) {
        const n = 10000;
        const c0 = process.cpuUsage();
        await runs[k](n);
        const c = process.cpuUsage(c0);
        per[k].push((c.user + c.system) / n);
      }
    }
    lines.push(`A/B memory request-shaped CPU µs/request: base ${spread(per[0], 1)}; new ${spread(per[1], 1)}; new/base ${spread(per[1].map((v, i) => v / per[0][i]), 3)}`);
  }
  if (!url) return lines;
  const BaseRedisStore: typeof RedisStore = (await import(`${base}/service/budget/redis.ts`)).RedisStore;
  const admin = new Redis(url);
  const prefix = `tgbench:${randomBytes(4).toString('hex')}:`;
  const stores = [new BaseRedisStore({ url, prefix: `${prefix}a:`, commandTimeoutMs: 2000 }), new RedisStore({ url, prefix: `${prefix}b:`, commandTimeoutMs: 2000 })];
  try {
    for (const s of stores) await s.ready(3000);
    const managers = [new baseMods.BudgetManager(stores[0]), new BudgetManager(stores[1])];
    const client: number[][] = [[], []];
    const server: number[][] = [[], []];
    const calls: string[] = ['', ''];
    let seq = 0;
    // 32 in flight on one connection (ioredis pipelines them), like a busy replica.
    const round = async (k: number, ms: number): Promise<number> => {
      const m = managers[k];
      const deadline = Date.now() + ms;
      let done = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (Date.now() < deadline) {
            const a = await m.admit(`ab${k}-${seq++}`, BUDGETS, RATES, EST, { tenant: 'acme' });
            if (a instanceof GatewayError) throw a;
            await m.settle(a.reservation, ACTUAL);
            done++;
          }
        }),
      );
      return done;
    };
    await round(0, 500);
    await round(1, 500);
    for (let r = 0; r < 6; r++) {
      for (let k = 0; k < 2; k++) {
        const s0 = await serverStats(admin);
        const c0 = process.cpuUsage();
        const n = await round(k, 1000);
        const c = process.cpuUsage(c0);
        const s1 = await serverStats(admin);
        client[k].push((c.user + c.system) / n);
        server[k].push(((s1.cpu - s0.cpu) * 1e6) / n);
        calls[k] = `${((s1.evalsha - s0.evalsha) / n).toFixed(2)} EVALSHA + ${((s1.inner - s0.inner) / n).toFixed(1)} redis.call`;
      }
    }
    lines.push(`A/B redis (3 budgets + rpm/tpm/parallel, 32 in flight) per request: base ${calls[0]}, new ${calls[1]}`);
    lines.push(`  Redis server CPU µs/request: base ${spread(server[0], 1)}; new ${spread(server[1], 1)}; new/base ${spread(server[1].map((v, i) => v / server[0][i]), 3)}`);
    lines.push(`  client CPU µs/request: base ${spread(client[0], 1)}; new ${spread(client[1], 1)}; new/base ${spread(client[1].map((v, i) => v / client[0][i]), 3)}`);
  } finally {
    for (const s of stores) await s.close();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await admin.del(...keys);
    } while (cursor !== '0');
    await admin.quit();
  }
  return lines;
}

export async function bench(): Promise<string[]> {
  const lines: string[] = [];
  const abBase = process.env.BENCH_BUDGET_BASE;
  if (abBase) return abLines(abBase, process.env.REDIS_URL || undefined);
  {
    const run = requestShaped({ BudgetManager, MemoryStore, budgetPort, costOfUsage, reservationCost, estimateBillable });
    await run(5000);
    const n = 30000;
    const cpu0 = process.cpuUsage();
    await run(n);
    const cpu = process.cpuUsage(cpu0);
    lines.push(`budget request-shaped (example bundle: billable estimate, fresh specs, port admit+settle, 4× costOfUsage) CPU ${((cpu.user + cpu.system) / n).toFixed(1)}µs/request`);
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
