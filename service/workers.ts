// TOLLGATE_WORKERS=N (N > 1): N worker processes (node:cluster) serve the one gRPC port and the one
// HTTP port; the primary only forks, restarts a worker that dies, forwards SIGTERM/SIGINT and answers
// the workers' /metrics requests with the sum over all workers (prom-client's AggregatorRegistry).
//
// Shared state stays exact because it is not per worker:
//   - budgets and rate limits live in Redis (REDIS_URL): the in-memory store would give every worker
//     its own counters (N× the limits), so N > 1 without REDIS_URL refuses to start;
//   - fallback plans are sealed with one key: unset TOLLGATE_PLAN_KEY, the primary generates one for
//     all workers (a router-stage stream and its upstream-stage stream may land on different workers);
//     likewise TOLLGATE_REDACTION_SECRET, so `hash` redaction agrees across workers;
//   - lineage: every worker emits its own records (each request is handled by one worker), through its
//     own spool directory (<TOLLGATE_SPOOL_DIR>/worker-<i>) and, for `file:<path>` sinks, its own file
//     (<path>.worker-<i>): two processes must not append to one file.
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';

export const WORKER_INDEX_ENV = 'TOLLGATE_WORKER_INDEX';

export class WorkersConfigError extends Error {
  override readonly name = 'WorkersConfigError';
}

/** TOLLGATE_WORKERS: a whole number ≥ 1 (default 1). */
export function workersFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.TOLLGATE_WORKERS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new WorkersConfigError(`TOLLGATE_WORKERS must be a whole number from 1 to 256, got ${JSON.stringify(raw)}`);
  if (n > 1 && !env.REDIS_URL)
    throw new WorkersConfigError(
      `TOLLGATE_WORKERS=${n} needs REDIS_URL: budgets and rate limits must be shared by the workers (the in-memory store would give each worker its own counters, ${n}× the configured limits)`,
    );
  return n;
}

/** This process's worker index (1-based) when it is a cluster worker, else undefined. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const i = Number(process.env[WORKER_INDEX_ENV]);
  return Number.isSafeInteger(i) && i > 0 ? i : undefined;
}

/** A worker's own lineage sink specs and spool directory (see the header). */
export function perWorkerLineage(sinks: string[], spoolDir: string, index: number): { sinks: string[]; spoolDir: string } {
  return {
    sinks: sinks.map((s) => (s.startsWith('file:') ? `${s}.worker-${index}` : s)),
    spoolDir: join(spoolDir, `worker-${index}`),
  };
}

const METRICS_REQUEST = 'tollgate:metrics-request';
const METRICS_REPLY = 'tollgate:metrics-reply';

/**
 * In a worker: the registry the primary aggregates, and the text for /metrics (all workers summed, asked
 * of the primary over IPC).
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's worker-side listener that answers the primary's requests.
  new AggregatorRegistry();
  let seq = 0;
  const waiting = new Map<number, (text: string) => void>();
  process.on('message', (m: unknown) => {
    const msg = m as { type?: string; id?: number; text?: string };
    if (msg?.type === METRICS_REPLY && typeof msg.id === 'number') {
      waiting.get(msg.id)?.(msg.text ?? '');
      waiting.delete(msg.id);
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const t = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary did not answer the metrics request'));
      }, 5000);
      waiting.set(id, (text) => {
        clearTimeout(t);
        resolve(text);
      });
      process.send?.({ type: METRICS_REQUEST, id });
    });
}

/**
 * In the primary: forks `n` workers running this same entry point, keeps them running, and stops them
 * on SIGTERM/SIGINT (each worker drains as a single process would). Resolves when all have exited.
 */
export function runPrimary(n: number, log: Logger): Promise<void> {
  const env: Record<string, string> = {};
  if (!process.env.TOLLGATE_PLAN_KEY && !process.env.TOLLGATE_PLAN_KEY_FILE) env.TOLLGATE_PLAN_KEY = randomBytes(32).toString('base64');
  // `hash` redaction must give the same value whichever worker handles a request.
  if (!process.env.TOLLGATE_REDACTION_SECRET) env.TOLLGATE_REDACTION_SECRET = randomBytes(32).toString('base64');
  const aggregator = new AggregatorRegistry();
  const byIndex = new Map<number, Worker>();
  let stopping = false;
  const fork = (i: number): void => {
    const w = cluster.fork({ ...env, [WORKER_INDEX_ENV]: String(i) });
    byIndex.set(i, w);
    w.on('message', (m: unknown) => {
      const msg = m as { type?: string; id?: number };
      if (msg?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => w.send({ type: METRICS_REPLY, id: msg.id, text }),
        (err: Error) => w.send({ type: METRICS_REPLY, id: msg.id, text: `# metrics aggregation failed: ${err.message}\n` }),
      );
    });
    w.on('exit', (code, signal) => {
      if (byIndex.get(i) === w) byIndex.delete(i);
      if (stopping) return;
      log.error({ worker: i, code, signal }, 'worker exited; starting a new one');
      setTimeout(() => fork(i), 500);
    });
  };
  for (let i = 1; i <= n; i++) fork(i);
  log.info({ workers: n }, 'started workers');
  return new Promise((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping workers');
      const left = [...byIndex.values()];
      if (!left.length) return resolve();
      let alive = left.length;
      for (const w of left) {
        w.once('exit', () => {
          if (--alive === 0) resolve();
        });
        w.process.kill(sig);
      }
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
