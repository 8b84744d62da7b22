// Three replica processes, each with its own RedisStore, race 2,000 reservations against one budget.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RedisStore } from '../../service/budget/redis.ts';
import type { WorkerJob, WorkerMsg } from './support/worker.ts';
import { REDIS_URL, budget, deletePrefix, rate, sleep, uniquePrefix, until } from './helpers.ts';

const WORKER = fileURLToPath(new URL('./support/worker.ts', import.meta.url));
const prefix = uniquePrefix('conc');
const children: ChildProcess[] = [];
let observer: RedisStore;

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await observer?.close();
  await deletePrefix(REDIS_URL, prefix);
});

interface Worker {
  proc: ChildProcess;
  next(): Promise<WorkerMsg>;
}

function startWorker(job: WorkerJob): Worker {
  const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(proc);
  const queue: WorkerMsg[] = [];
  const waiters: Array<(m: WorkerMsg) => void> = [];
  proc.on('message', (m: WorkerMsg) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  proc.send(job);
  return {
    proc,
    next: () =>
      new Promise<WorkerMsg>((resolve, reject) => {
        const q = queue.shift();
        if (q) return resolve(q);
        const t = setTimeout(() => reject(new Error('worker did not answer in 30 s')), 30_000);
        waiters.push((m) => {
          clearTimeout(t);
          resolve(m);
        });
      }),
  };
}

const ids = (p: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${p}-${i}`);
const EST = { usd: 0.2, inputTokens: 100, outputTokens: 100 };

test('2,000 concurrent reservations from 3 processes: exactly the budget is admitted, commits counted once', async () => {
  observer = new RedisStore({ url: REDIS_URL, prefix, commandTimeoutMs: 5000 });
  await observer.ready(5000);
  // $100 admits exactly 500 requests of $0.20; the tenant budget and the rpm limit are looser.
  const budgets = [budget('key/daily', 'key:k', { usd: 100 }, { kind: 'day' }), budget('tenant/monthly', 'tenant:acme', { usd: 1000 })];
  const rateLimits = [rate('key/rpm', 'key:k', { rpm: 100_000, maxParallel: 10_000 })];
  const base = { url: REDIS_URL, prefix, tenant: 'acme', budgets, rateLimits, estimate: EST, ttlMs: 60_000 };
  const workers = [667, 667, 666].map((n, w) => startWorker({ ...base, ids: ids(`w${w}`, n), mode: 'commit-after' }));
  const admittedMsgs = await Promise.all(workers.map((w) => w.next()));
  let admitted = 0;
  let denied = 0;
  for (const m of admittedMsgs) {
    assert.equal(m.type, 'admitted');
    if (m.type !== 'admitted') continue;
    assert.deepEqual(m.errors, []);
    admitted += m.admitted.length;
    denied += m.denied;
  }
  assert.equal(admitted, 500);
  assert.equal(denied, 1500);
  const held = (await observer.spend({ tenant: 'acme', scopeKey: 'key:k' }))[0];
  assert.ok(Math.abs(held.reservedUsd - 100) < 1e-9, `reserved ${held.reservedUsd}`);
  assert.equal(held.inFlight, 500);

  for (const w of workers) w.proc.send('commit');
  const done = await Promise.all(workers.map((w) => w.next()));
  let actualNano = 0;
  let settled = 0;
  for (const m of done) {
    assert.equal(m.type, 'committed');
    if (m.type !== 'committed') continue;
    actualNano += m.actualNano;
    for (const [status, n] of Object.entries(m.statuses)) {
      assert.equal(status, 'settled');
      settled += n;
    }
  }
  assert.equal(settled, 500);
  for (const scope of ['key:k', 'tenant:acme']) {
    const [row] = await observer.spend({ tenant: 'acme', scopeKey: scope });
    assert.equal(Math.round(row.usd * 1e9), actualNano, `${scope}: committed = sum of actual costs`);
    assert.equal(row.requests, 500);
    assert.equal(row.reservedUsd, 0);
    assert.equal(row.inFlight, 0);
  }
  const rpm = (await observer.spend({ tenant: 'acme', scopeKey: 'key:k' })).length;
  assert.equal(rpm, 2, 'the day budget and the rate counter');
});

test('interleaved reserve+commit from 3 processes never spends past the limit', async () => {
  const budgets = [budget('key/daily', 'key:i', { usd: 50 }, { kind: 'day' })];
  const base = { url: REDIS_URL, prefix, tenant: 'acme2', budgets, rateLimits: [], estimate: EST, ttlMs: 60_000 };
  const workers = [667, 667, 666].map((n, w) => startWorker({ ...base, ids: ids(`i${w}`, n), mode: 'interleaved' }));
  const first = await Promise.all(workers.map((w) => w.next()));
  const done = await Promise.all(workers.map((w) => w.next()));
  let actualNano = 0;
  let admitted = 0;
  for (const m of first) if (m.type === 'admitted') admitted += m.admitted.length;
  for (const m of done) if (m.type === 'committed') actualNano += m.actualNano;
  const [row] = await observer.spend({ tenant: 'acme2' });
  assert.equal(Math.round(row.usd * 1e9), actualNano);
  assert.equal(row.requests, admitted);
  assert.ok(row.usd <= 50, `spent ${row.usd} of 50`);
  // Commits below the estimate free budget for later requests: more than 250 fit.
  assert.ok(admitted > 250, `admitted ${admitted}`);
});

test('holds of a killed replica come back after their TTL', async () => {
  const budgets = [budget('key/daily', 'key:x', { usd: 10 }, { kind: 'day' })];
  const rateLimits = [rate('key/par', 'key:x', { maxParallel: 40 })];
  const w = startWorker({ url: REDIS_URL, prefix, tenant: 'acme3', budgets, rateLimits, estimate: EST, ttlMs: 1500, ids: ids('k', 60), mode: 'hold' });
  const m = await w.next();
  assert.equal(m.type === 'admitted' && m.admitted.length, 40);
  w.proc.kill('SIGKILL');
  await new Promise((r) => w.proc.once('exit', r));
  const [held] = await observer.spend({ tenant: 'acme3', scopeKey: 'key:x' });
  assert.equal(held.inFlight, 40);
  assert.ok(Math.abs(held.reservedUsd - 8) < 1e-9);
  await sleep(1600);
  await until(async () => (await observer.spend({ tenant: 'acme3', scopeKey: 'key:x' }))[0].inFlight === 0, 5000, 'holds to expire');
  const after = (await observer.spend({ tenant: 'acme3', scopeKey: 'key:x' }))[0];
  assert.equal(after.reservedUsd, 0);
  assert.equal(after.usd, 0);
  const r = await observer.reserve('fresh', { budgets, rateLimits, tenant: 'acme3' }, { usd: 9, inputTokens: 1, outputTokens: 1 });
  assert.equal(r.ok, true);
});
