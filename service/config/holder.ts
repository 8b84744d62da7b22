// Holds the running Snapshot and swaps in a new one atomically; a bad reload keeps the last good one.
// Requests take the snapshot current at their start and keep it to the end. The start-up load runs
// on this thread (nothing is served yet); every hot reload reads and validates in a worker thread
// (config/reload.ts) and only assembles the runtime objects here.
import { watch, type FSWatcher } from 'node:fs';
import type { Snapshot } from '../gateway/context.ts';
import { compilePolicies } from '../policy/index.ts';
import { loadCoreInWorker, WORKER_DEFAULTS, type WorkerLoad } from './reload.ts';
import { assembleSnapshot, buildSnapshot, policyDocs, type BuildOptions } from './snapshot.ts';

export interface ReloadStatus {
  revision: string;
  loadedAt: string;
  lastError?: string;
  lastErrorAt?: string;
  reloads: number;
  failures: number;
  /** A reload is being read and validated right now. */
  inProgress: boolean;
  /** How long the last finished reload took, ms (worker and main thread together). */
  lastDurationMs?: number;
}

const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

export type ReloadResult = { ok: true; changed: boolean } | { ok: false; error: string };

export interface HolderOptions extends BuildOptions {
  onReload?: (ok: boolean, detail: string) => void;
  /** Reload worker limits (defaults: 120 s, 2048 MB heap). */
  reloadTimeoutMs?: number;
  reloadMaxHeapMb?: number;
}

export class ConfigHolder {
  private current: Snapshot;
  private readonly status: ReloadStatus;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<ReloadResult> | undefined;
  private queued: Promise<ReloadResult> | undefined;
  private load: WorkerLoad | undefined;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly opts: HolderOptions = {},
  ) {
    this.current = buildSnapshot(dir, opts);
    this.status = { revision: this.current.revision, loadedAt: this.current.loadedAt.toISOString(), reloads: 0, failures: 0, inProgress: false };
  }

  snapshot(): Snapshot {
    return this.current;
  }

  reloadStatus(): ReloadStatus {
    return { ...this.status };
  }

  /**
   * Rebuilds from disk; on failure keeps the current snapshot and records the error. One reload
   * runs at a time; calls during one share a single follow-up reload (which sees the latest files).
   */
  reload(): Promise<ReloadResult> {
    if (this.inFlight) {
      this.queued ??= this.inFlight.then(() => {
        this.queued = undefined;
        return this.reload();
      });
      return this.queued;
    }
    this.inFlight = this.reloadOnce().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async reloadOnce(): Promise<ReloadResult> {
    if (this.closed) return { ok: false, error: 'config holder closed' };
    const started = performance.now();
    this.status.inProgress = true;
    try {
      this.load = loadCoreInWorker(this.dir, {
        now: this.opts.now?.() ?? new Date(),
        timeoutMs: this.opts.reloadTimeoutMs ?? WORKER_DEFAULTS.timeoutMs,
        maxHeapMb: this.opts.reloadMaxHeapMb ?? WORKER_DEFAULTS.maxHeapMb,
      });
      const core = await this.load.result;
      // The worker compiled and sample-checked these policies already; compiling again here is what
      // gives this thread its CEL programs (they cannot cross threads). Each step in its own turn.
      await yieldTurn();
      const policy = compilePolicies(policyDocs(core.otherDocs), { now: this.opts.now, sampleCheck: false });
      await yieldTurn();
      const next = assembleSnapshot(core, policy, this.opts);
      if (this.closed) return { ok: false, error: 'config holder closed' };
      const changed = next.revision !== this.current.revision;
      if (changed) {
        this.current = next;
        this.status.revision = next.revision;
        this.status.loadedAt = next.loadedAt.toISOString();
        this.opts.health?.retain(next.catalog.models().flatMap((m) => m.deployments.map((d) => d.id)));
      }
      this.status.reloads++;
      delete this.status.lastError;
      delete this.status.lastErrorAt;
      this.opts.onReload?.(true, next.revision);
      return { ok: true, changed };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (this.closed) return { ok: false, error: msg };
      this.status.failures++;
      this.status.lastError = msg;
      this.status.lastErrorAt = new Date().toISOString();
      this.opts.onReload?.(false, msg);
      return { ok: false, error: msg };
    } finally {
      this.load = undefined;
      this.status.inProgress = false;
      this.status.lastDurationMs = Math.round(performance.now() - started);
    }
  }

  /** Watches the directory; bursts of changes are coalesced into one reload. */
  watch(debounceMs = 200): void {
    if (this.watcher) return;
    this.watcher = watch(this.dir, { recursive: true }, () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), debounceMs);
      this.timer.unref();
    });
    // The directory itself removed or replaced: reload (refused while it is missing) and keep watching the events we get.
    this.watcher.on('error', () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), debounceMs);
      this.timer.unref();
    });
    this.watcher.unref();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.load?.cancel();
  }
}
