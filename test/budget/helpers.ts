// Shared helpers for the budget tests: an injectable clock, spec builders, store factories with
// unique Redis prefixes and cleanup, and a private redis-server for failure tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import type { BudgetSpec, BudgetWindow, RateLimitSpec, StoreFailMode } from '../../service/budget/types.ts';
import { MemoryStore } from '../../service/budget/memory.ts';
import { RedisStore, type RedisStoreOptions } from '../../service/budget/redis.ts';
import type { BudgetStore } from '../../service/budget/store.ts';
import { testRedisUrl } from '../support/redis.ts';

export const REDIS_URL = testRedisUrl();

export class Clock {
  t: number;
  constructor(start: number | string) {
    this.t = typeof start === 'string' ? Date.parse(start) : start;
  }
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
}

export function budget(
  name: string,
  scopeKey: string,
  limit: BudgetSpec['limit'],
  window: BudgetWindow = { kind: 'month' },
  extra: Partial<BudgetSpec> = {},
): BudgetSpec {
  return { name, scope: scopeKey.split(':')[0], scopeKey, limit, window, enforcement: 'hard', onStoreError: 'failClosed', ...extra };
}

export function rate(name: string, scopeKey: string, l: { rpm?: number; tpm?: number; maxParallel?: number }, onStoreError: StoreFailMode = 'failClosed'): RateLimitSpec {
  return { name, scopeKey, ...l, onStoreError };
}

export const usd = (v: number) => ({ usd: v, inputTokens: 10, outputTokens: 10 });

export function uniquePrefix(label: string): string {
  return `tgtest:${label}:${randomBytes(4).toString('hex')}:`;
}

/** Delete every key under a prefix (test cleanup). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    await r.quit();
  }
}

export interface StoreFactory {
  name: string;
  make(clock: Clock, opts?: Partial<RedisStoreOptions>): Promise<BudgetStore>;
  cleanup(): Promise<void>;
}

export function memoryFactory(): StoreFactory {
  const stores: BudgetStore[] = [];
  return {
    name: 'memory',
    async make(clock) {
      const s = new MemoryStore({ now: clock.now });
      stores.push(s);
      return s;
    },
    async cleanup() {
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}

export function redisFactory(url = REDIS_URL): StoreFactory {
  const made: Array<{ store: RedisStore; prefix: string }> = [];
  return {
    name: 'redis',
    async make(clock, opts = {}) {
      const prefix = uniquePrefix('conf');
      // Generous timeout: the shared test Redis may be busy with other suites.
      const store = new RedisStore({ url, prefix, now: clock.now, commandTimeoutMs: 2000, ...opts });
      const ok = await store.ready(5000);
      if (!ok) throw new Error(`test Redis at ${url} is not reachable`);
      made.push({ store, prefix });
      return store;
    },
    async cleanup() {
      for (const { store, prefix } of made) {
        await store.close();
        await deletePrefix(url, prefix);
      }
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A private redis-server on 127.0.0.1:<port>, no persistence. Kill only this one. */
export class PrivateRedis {
  proc: ChildProcess | null = null;
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        await r.ping();
        r.disconnect();
        return;
      } catch {
        r.disconnect();
        if (Date.now() > deadline) throw new Error('private redis did not start');
        await sleep(50);
      }
    }
  }
  /** Freeze (SIGSTOP): connections stay open, commands hang — the worst case for a client. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }
  resume(): void {
    this.proc?.kill('SIGCONT');
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGCONT');
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGKILL');
    await exited;
    this.proc = null;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
