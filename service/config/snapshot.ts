// Builds a whole Snapshot off to the side and swaps it in atomically; a bad reload keeps the last
// good one. Requests take the snapshot current at their start and keep it to the end.
import { watch, type FSWatcher } from 'node:fs';
import type { Snapshot } from '../gateway/context.ts';
import { ConfigKeyStore } from '../identity/keys.ts';
import { registerSecrets } from '../errors.ts';
import { compilePolicies } from '../policy/index.ts';
import { Catalog, Router, type HealthTracker } from '../routing/index.ts';
import { ConfigErrors, readConfigDir } from './documents.ts';
import { buildCoreConfig } from './loader.ts';

export interface BuildOptions {
  health?: HealthTracker;
  now?: () => Date;
}

/** Reads and compiles a config directory. Throws ConfigErrors (every problem, file:line:col) or ConfigError. */
export function buildSnapshot(dir: string, opts: BuildOptions = {}): Snapshot {
  const docs = readConfigDir(dir);
  const core = buildCoreConfig(dir, docs);
  // Provider errors that echo a credential are scrubbed of it before anyone sees them.
  registerSecrets(core.credentials.values());
  const policyDocs = core.otherDocs.filter((d) => d.kind === 'Policy');
  const unknown = core.otherDocs.filter((d) => d.kind !== 'Policy' && d.kind !== 'PolicyTest');
  if (unknown.length)
    throw new ConfigErrors(
      unknown.map((d) => d.error(`unknown kind "${d.kind}" (expected Gateway, Provider, Model, Tenant, Team, VirtualKey, Policy, PolicyTest)`, ['kind'])),
    );
  const policy = compilePolicies(policyDocs, { now: opts.now });
  const catalog = new Catalog(core.models, [...core.providers.values()]);
  const router = new Router({ catalog, health: opts.health });
  return {
    revision: core.revision,
    core,
    policy,
    catalog,
    router,
    keys: new ConfigKeyStore(core.keys),
    loadedAt: opts.now?.() ?? new Date(),
  };
}

export interface ReloadStatus {
  revision: string;
  loadedAt: string;
  lastError?: string;
  lastErrorAt?: string;
  reloads: number;
  failures: number;
}

export class ConfigHolder {
  private current: Snapshot;
  private readonly status: ReloadStatus;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly opts: BuildOptions & { onReload?: (ok: boolean, detail: string) => void } = {},
  ) {
    this.current = buildSnapshot(dir, opts);
    this.status = { revision: this.current.revision, loadedAt: this.current.loadedAt.toISOString(), reloads: 0, failures: 0 };
  }

  snapshot(): Snapshot {
    return this.current;
  }

  reloadStatus(): ReloadStatus {
    return { ...this.status };
  }

  /** Rebuilds from disk; on failure keeps the current snapshot and records the error. */
  reload(): { ok: true; changed: boolean } | { ok: false; error: string } {
    try {
      const next = buildSnapshot(this.dir, this.opts);
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
      this.status.failures++;
      this.status.lastError = msg;
      this.status.lastErrorAt = new Date().toISOString();
      this.opts.onReload?.(false, msg);
      return { ok: false, error: msg };
    }
  }

  /** Watches the directory; bursts of changes are coalesced into one reload. */
  watch(debounceMs = 200): void {
    if (this.watcher) return;
    this.watcher = watch(this.dir, { recursive: true }, () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), debounceMs);
      this.timer.unref();
    });
    this.watcher.unref();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
  }
}
