// A Tollgate-like replica for the concurrency test: its own RedisStore + BudgetManager, driven over
// IPC by the parent test. Not a test file itself.

import { BudgetManager, type Admission } from '../../../service/budget/manager.ts';
import { RedisStore } from '../../../service/budget/redis.ts';
import type { BudgetSpec, RateLimitSpec } from '../../../service/budget/types.ts';
import type { UsageEstimate } from '../../../service/budget/plan.ts';
import { GatewayError } from '../../../service/errors.ts';

export interface WorkerJob {
  url: string;
  prefix: string;
  tenant: string;
  ids: string[];
  budgets: BudgetSpec[];
  rateLimits: RateLimitSpec[];
  estimate: UsageEstimate;
  /** hold: reserve and keep the holds (the parent kills us); commit-after: wait for a 'commit' message;
   *  interleaved: commit each right after admission. */
  mode: 'hold' | 'commit-after' | 'interleaved';
  ttlMs: number;
}

export type WorkerMsg =
  | { type: 'admitted'; admitted: string[]; denied: number; errors: string[] }
  | { type: 'committed'; actualNano: number; statuses: Record<string, number> };

const send = (m: WorkerMsg): void => {
  process.send!(m);
};

// Actual cost: a deterministic fraction (1/10 … 10/10) of the estimate, in whole nano-dollars.
const actualFor = (id: string, est: UsageEstimate): number => {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return Math.round((est.usd * 1e9 * ((h % 10) + 1)) / 10);
};

process.once('message', async (job: WorkerJob) => {
  const store = new RedisStore({ url: job.url, prefix: job.prefix, commandTimeoutMs: 5000 });
  await store.ready(5000);
  const m = new BudgetManager(store);
  const admitted: Admission[] = [];
  const errors: string[] = [];
  let denied = 0;
  let actualNano = 0;
  const statuses: Record<string, number> = {};
  const settle = async (a: Admission): Promise<void> => {
    const nano = actualFor(a.reservation.requestId, job.estimate);
    const r = await m.settle(a.reservation, { usd: nano / 1e9, inputTokens: 1, outputTokens: 1 });
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    actualNano += nano;
  };
  const one = async (id: string): Promise<void> => {
    const r = await m.admit(id, job.budgets, job.rateLimits, job.estimate, { tenant: job.tenant, ttlMs: job.ttlMs });
    if (r instanceof GatewayError) {
      if (r.status === 429) denied++;
      else errors.push(`${r.status} ${r.code} ${r.message}`);
      return;
    }
    admitted.push(r);
    if (job.mode === 'interleaved') await settle(r);
  };
  if (job.mode === 'interleaved') {
    // 16 requests in flight per replica, each settling before the lane takes the next.
    const queue = [...job.ids];
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await one(id);
    }));
  } else {
    await Promise.all(job.ids.map(one));
  }
  send({ type: 'admitted', admitted: admitted.map((a) => a.reservation.requestId), denied, errors });
  if (job.mode === 'hold') return; // stay alive holding reservations until killed
  if (job.mode === 'commit-after') {
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    await Promise.all(admitted.map(settle));
  }
  send({ type: 'committed', actualNano, statuses });
  await store.close();
  process.disconnect();
});
