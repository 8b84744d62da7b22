// Main-thread side of a hot reload: a fresh worker thread per reload reads and validates the config
// directory (config/reload-worker.ts) while this thread keeps serving streams. Parts are pulled one
// per event-loop turn (setImmediate between them), so I/O runs between any two of them. A worker
// that hangs, crashes or runs out of memory fails the reload; the running config stays.
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigErrors } from './errors.ts';
import type { CoreConfig } from './loader.ts';
import type { ReloadWorkerInput, ReloadWorkerMessage } from './reload-worker.ts';
import { CoreAssembler, failureError } from './transfer.ts';

export interface WorkerLoadOptions {
  now: Date;
  /** Give up (and terminate the worker) after this long. */
  timeoutMs: number;
  /** Heap cap of the worker: a runaway config or policy evaluation kills the worker, not Tollgate. */
  maxHeapMb: number;
}

export const WORKER_DEFAULTS = { timeoutMs: 120_000, maxHeapMb: 2048 };

export interface WorkerLoad {
  result: Promise<CoreConfig>;
  /** Stops the worker; `result` rejects. */
  cancel(): void;
}

// From source (tsx) the worker needs the TypeScript loader registered in its own thread (reload-worker.mjs);
// compiled (dist/) it runs the emitted reload-worker.js directly.
const ENTRY = import.meta.url.endsWith('.ts') ? new URL('./reload-worker.mjs', import.meta.url) : new URL('./reload-worker.js', import.meta.url);

export function loadCoreInWorker(dir: string, opts: WorkerLoadOptions): WorkerLoad {
  const input: ReloadWorkerInput = { dir, nowIso: opts.now.toISOString() };
  const worker = new Worker(ENTRY, { workerData: input, resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb } });
  let settle: { resolve: (c: CoreConfig) => void; reject: (e: ConfigError | ConfigErrors) => void } | undefined;
  const result = new Promise<CoreConfig>((resolve, reject) => (settle = { resolve, reject }));
  const assembler = new CoreAssembler();
  const finish = (outcome: CoreConfig | ConfigError | ConfigErrors): void => {
    if (!settle) return;
    const s = settle;
    settle = undefined;
    clearTimeout(timer);
    void worker.terminate();
    if (outcome instanceof Error) s.reject(outcome);
    else s.resolve(outcome);
  };
  const timer = setTimeout(() => finish(new ConfigError(`reading ${dir} took longer than ${opts.timeoutMs} ms; reload abandoned`)), opts.timeoutMs);
  timer.unref();

  worker.on('message', (m: ReloadWorkerMessage) => {
    if (!settle) return;
    switch (m.type) {
      case 'part':
        try {
          assembler.add(m.part);
        } catch (e) {
          finish(new ConfigError(`reload: ${(e as Error).message}`));
          return;
        }
        setImmediate(() => settle && worker.postMessage('next'));
        return;
      case 'done':
        try {
          finish(assembler.done());
        } catch (e) {
          finish(new ConfigError(`reload: ${(e as Error).message}`));
        }
        return;
      case 'failed':
        finish(failureError(m.failure));
    }
  });
  worker.on('error', (err: Error & { code?: string }) =>
    finish(
      new ConfigError(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `reading ${dir} needed more than ${opts.maxHeapMb} MB; reload abandoned`
          : `reload worker failed: ${err.message}`,
      ),
    ),
  );
  worker.on('exit', (code) => finish(new ConfigError(`reload worker exited (code ${code}) before finishing`)));
  return { result, cancel: () => finish(new ConfigError('reload cancelled')) };
}
