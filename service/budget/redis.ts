// Redis BudgetStore: one ceiling shared by every replica. One EVALSHA per phase (reserve, settle).
// When Redis is unreachable, hung or erroring, each spec's `onStoreError` decides:
//   failClosed → deny (the manager answers 503 "budget store unavailable")
//   failOpen   → admit, flagged `degraded: 'failOpen'`; usage is still recorded locally and replayed
//   local      → enforce against this replica's share of the last known remaining budget
//                (remaining / live replicas), recorded locally and replayed into Redis on recovery.
// Settles that cannot reach Redis are queued and replayed; scripts are idempotent per request id
// (a `done` marker), so a command that timed out but did run is never applied twice.

import { createHash, randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { displayUrl } from '../security/secrets.ts';
import { commitAmounts, type Amounts, type CheckPlan, type CounterPlan, type Plan, type Usage, type UsageEstimate } from './plan.ts';
import { MemoryStore, compareRows, scopeMatches, spendRow, type JournalEntry } from './memory.ts';
import { APPLY_LUA, RESERVE_LUA, SETTLE_LUA, SWEEP_LUA } from './lua.ts';
import {
  checkResult,
  currentValue,
  evaluate,
  metricValue,
  planReservation,
  trimOldest,
  type BudgetStore,
  type CheckResult,
  type CounterState,
  type ReserveResult,
  type ReserveSpecs,
  type SettleResult,
  type SpendQuery,
  type SpendRow,
} from './store.ts';
import { NANO, tagOf } from './plan.ts';

export interface BudgetLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  /** A ready-made client (use budgetRedisOptions() for it), or a URL to create one from. */
  redis?: Redis;
  url?: string;
  /** Key prefix, default `tg:`. */
  prefix?: string;
  now?: () => number;
  /** Per-command timeout so a hung Redis can't hang requests (ms). Default 150. */
  commandTimeoutMs?: number;
  /** After a failure, skip Redis for this long before trying again (ms). Default 1000. */
  breakerMs?: number;
  /** Fixed replica count for `local` shares. Default: live replicas seen through heartbeats. */
  replicas?: number;
  replicaId?: string;
  /** Heartbeat/maintenance period (ms). Default 1000 (heartbeat every 5th tick). */
  tickMs?: number;
  /** How long settled request ids are remembered — the `done` markers in Redis that make settles and
   *  replays idempotent (ms). Default 15 min: longer than a reservation TTL; a settle replayed after
   *  an outage longer than this could be applied twice if its first attempt ran but timed out.
   *  Memory cost ≈ 100 bytes × requests per second × this window. */
  settledMemoryMs?: number;
  /** Cap on queued settles while Redis is away. Default 100 000. */
  maxPending?: number;
  logger?: BudgetLogger;
}

/** ioredis options for a budget client: bounded command time, fail fast while disconnected, backoff. */
export function budgetRedisOptions(commandTimeoutMs = 150): RedisOptions {
  return {
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Exponential backoff with jitter, capped at 2 s; never gives up.
    retryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 50),
    enableReadyCheck: true,
    lazyConnect: false,
  };
}

interface Script {
  src: string;
  sha: string;
}
const script = (src: string): Script => ({ src, sha: createHash('sha1').update(src).digest('hex') });
const SCRIPTS = { reserve: script(RESERVE_LUA), settle: script(SETTLE_LUA), apply: script(APPLY_LUA), sweep: script(SWEEP_LUA) };

interface Inflight {
  plan: Plan;
  where: 'redis' | 'local';
  at: number;
}

interface PendingSettle {
  requestId: string;
  plan: Plan;
  charge: Amounts | null;
}

interface LastKnown {
  at: number;
  s: CounterState;
}

const noopLogger: BudgetLogger = { warn() {}, error() {} };
const LAST_KNOWN_MAX = 100_000;
const APPLY_BATCH = 64;

export interface RedisStoreStats {
  /** Round trips per operation kind since start (EVALSHA, plus EVAL after a NOSCRIPT). */
  roundTrips: { reserve: number; settle: number; apply: number; sweep: number; heartbeat: number };
  failures: number;
  pending: number;
  journal: number;
  replicas: number;
}

export class RedisStore implements BudgetStore {
  readonly redis: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly breakerMs: number;
  private readonly fixedReplicas: number | undefined;
  private readonly replicaId: string;
  private readonly settledMemoryMs: number;
  private readonly maxPending: number;
  private readonly log: BudgetLogger;
  private readonly local: MemoryStore;
  private readonly inflight = new Map<string, Inflight>();
  private readonly lastKnown = new Map<string, LastKnown>();
  /** Request ids this replica settled recently (a second settle reports `duplicate` without a round trip). */
  private readonly settledIds = new Map<string, number>();
  private pending: PendingSettle[] = [];
  private breakerUntil = 0;
  private liveReplicas = 1;
  private flushing: Promise<void> | null = null;
  private ticks = 0;
  private timer: NodeJS.Timeout;
  private batchSeq = 0;
  private closed = false;
  private readonly counts: RedisStoreStats['roundTrips'] = { reserve: 0, settle: 0, apply: 0, sweep: 0, heartbeat: 0 };
  private failures = 0;
  /** Between a connection error and the next 'ready' (so an outage is logged once). */
  private outage = false;

  constructor(opts: RedisStoreOptions) {
    if (!opts.redis && !opts.url) throw new Error('RedisStore needs `redis` or `url`');
    this.ownsClient = !opts.redis;
    this.redis = opts.redis ?? new Redis(opts.url!, budgetRedisOptions(opts.commandTimeoutMs));
    this.prefix = opts.prefix ?? 'tg:';
    this.now = opts.now ?? Date.now;
    this.breakerMs = opts.breakerMs ?? 1000;
    this.fixedReplicas = opts.replicas;
    this.replicaId = opts.replicaId ?? randomUUID();
    this.settledMemoryMs = opts.settledMemoryMs ?? 900_000;
    this.maxPending = opts.maxPending ?? 100_000;
    this.log = opts.logger ?? noopLogger;
    this.local = new MemoryStore({ now: this.now, journal: true, settledMemoryMs: this.settledMemoryMs });
    // ioredis emits 'error' on every failed reconnect; without a listener Node would crash. Logged
    // once per outage (and once when it is back), not once per retry.
    const where = opts.url ? ` at ${displayUrl(opts.url)}` : '';
    this.redis.on('error', (err: Error) => {
      if (this.outage) return;
      this.outage = true;
      this.log.warn(
        { err: err.message },
        `budget store: cannot connect to Redis${where}; retrying in the background, budgets follow their onStoreError mode until it answers (further errors are not logged)`,
      );
    });
    this.redis.on('ready', () => {
      if (this.outage) this.log.warn({}, `budget store: connected to Redis${where} again`);
      this.outage = false;
      this.breakerUntil = 0;
      void this.loadScripts();
      void this.heartbeat();
      void this.flush();
    });
    if (this.redis.status === 'ready') void this.loadScripts();
    this.timer = setInterval(() => this.tick(), opts.tickMs ?? 1000);
    this.timer.unref();
  }

  /** Resolves when connected (or after timeoutMs; the store works degraded meanwhile). */
  async ready(timeoutMs = 2000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.redis.off('ready', on);
        resolve(false);
      }, timeoutMs);
      const on = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.redis.once('ready', on);
    });
  }

  // ---- BudgetStore ----

  async reserve(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): Promise<ReserveResult> {
    const plan = planReservation(requestId, specs, estimate, this.now());
    if (plan.counters.length === 0) return { ok: true, checks: [], denied: [], warnings: [] };
    if (!this.available()) return this.fallback(plan);
    // The hold record: what the expiry sweep needs to undo the hold if this replica dies.
    const record = holdRecord(plan);
    let out: ReserveReply;
    try {
      out = (await this.run('reserve', SCRIPTS.reserve, this.keysFor(plan), [record, this.cpre(plan.tenant), this.rpre(plan.tenant), String(this.settledMemoryMs), ...flatPlan(plan, true)])) as ReserveReply;
    } catch (err) {
      this.failed(err, 'reserve');
      // The script may still have run (timeout after send): queue a release so the hold can't linger.
      this.enqueue({ requestId, plan, charge: null });
      return this.fallback(plan);
    }
    const n = plan.counters.length;
    const states: CounterState[] = new Array(n);
    for (let i = 0; i < n; i++) states[i] = { c: amountsOfReply(out[2 + 2 * i]), r: amountsOfReply(out[3 + 2 * i]) };
    const retry = new Map<number, number>();
    for (let k = 2 + 2 * n; k + 1 < out.length; k += 2) retry.set(Number(out[k]), Number(out[k + 1]));
    const ok = out[0] === 1;
    const dup = out[1] === 'held' || out[1] === 'settled' ? out[1] : undefined;
    const result = evaluate(plan, states, ok, (i) => retry.get(i) ?? 1000);
    if (dup) return { ...result, duplicate: dup };
    this.remember(plan, states, ok);
    if (ok) this.inflight.set(requestId, { plan, where: 'redis', at: plan.now });
    return result;
  }

  async commit(requestId: string, actual: Usage): Promise<SettleResult> {
    return this.settle(requestId, actual);
  }

  async release(requestId: string): Promise<SettleResult> {
    return this.settle(requestId, null);
  }

  private async settle(requestId: string, actual: Usage | null): Promise<SettleResult> {
    const f = this.inflight.get(requestId);
    if (!f) return { status: this.settledIds.has(requestId) ? 'duplicate' : 'unknown' };
    const charge = actual ? commitAmounts(actual, f.plan.amounts) : null;
    this.inflight.delete(requestId);
    this.settledIds.set(requestId, f.at);
    trimOldest(this.settledIds, LAST_KNOWN_MAX);
    if (f.where === 'local') {
      const r = this.local.settleSync(requestId, charge, f.plan);
      if (this.available()) void this.flush();
      return r;
    }
    const p: PendingSettle = { requestId, plan: f.plan, charge };
    if (!this.available()) {
      this.enqueue(p);
      return { status: 'queued' };
    }
    try {
      return { status: await this.settleRemote(p) };
    } catch (err) {
      this.failed(err, 'settle');
      this.enqueue(p);
      return { status: 'queued' };
    }
  }

  async spend(query: SpendQuery = {}): Promise<SpendRow[]> {
    const now = this.now();
    const match = query.tenant !== undefined ? `${globEscape(this.prefix)}{${globEscape(tagOf(query.tenant))}}:c:*` : `${globEscape(this.prefix)}{*}:c:*`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    // Sweep expired holds of every tenant seen, so reserved numbers are current.
    const tags = new Set(keys.map((k) => this.tagOfKey(k)));
    for (const t of tags) await this.sweepTenant(t, now);
    const pipe = this.redis.pipeline();
    for (const k of keys) pipe.hgetall(k);
    const res = (await pipe.exec()) ?? [];
    const rows: SpendRow[] = [];
    res.forEach(([err, h], idx) => {
      if (err || !h) return;
      const row = rowFromHash(this.tagOfKey(keys[idx]), h as Record<string, string>, now);
      if (row && scopeMatches(row.scopeKey, query.scopeKey)) rows.push(row);
    });
    return rows.sort(compareRows);
  }

  health(): 'ok' | 'degraded' {
    if (this.redis.status !== 'ready' || this.now() < this.breakerUntil) return 'degraded';
    if (this.pending.length > 0 || this.local.journalSize > 0 || this.local.inFlight > 0) return 'degraded';
    return 'ok';
  }

  stats(): RedisStoreStats {
    return {
      roundTrips: { ...this.counts },
      failures: this.failures,
      pending: this.pending.length,
      journal: this.local.journalSize,
      replicas: this.replicas(),
    };
  }

  /** Replay queued settles and local spend now (also runs on reconnect and every tick). */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.available() && (this.pending.length || this.local.journalSize)) {
      await this.flush().catch(() => undefined);
    }
    if (this.ownsClient) {
      try {
        await this.redis.quit();
      } catch {
        this.redis.disconnect();
      }
    }
  }

  // ---- fallback ----

  private fallback(plan: Plan): ReserveResult {
    const closed = [...new Set(plan.checks.filter((c) => c.mode === 'failClosed').map((c) => c.name))];
    if (closed.length > 0) {
      return { ok: false, checks: [], denied: [], warnings: [], storeUnavailable: true, unavailableSpecs: closed };
    }
    const replicas = this.replicas();
    const hasLocal = plan.checks.some((c) => c.mode === 'local');
    const checks: CheckPlan[] = [];
    for (const chk of plan.checks) {
      if (chk.mode === 'failOpen') continue;
      checks.push({ ...chk, limit: this.share(plan, chk, replicas) });
    }
    const localPlan: Plan = { ...plan, checks };
    const r = this.local.reservePlan(localPlan);
    if (r.ok && !r.duplicate) this.inflight.set(plan.requestId, { plan: localPlan, where: 'local', at: plan.now });
    // failOpen specs are not enforced, but they still apply to the request: report them (flagged) so
    // lineage can say which budgets were skipped, with what this replica last knew of them.
    const skipped = plan.checks.filter((c) => c.mode === 'failOpen').map((chk) => this.unenforced(plan, chk, r.ok));
    return { ...r, checks: [...r.checks, ...skipped], degraded: hasLocal ? 'local' : 'failOpen' };
  }

  private unenforced(plan: Plan, chk: CheckPlan, admitted: boolean): CheckResult {
    const need = metricValue(chk.metric, plan.amounts);
    const res = checkResult(chk, plan.counters[chk.counter], this.lastKnownUsage(plan, chk), need, admitted);
    res.degraded = 'failOpen';
    return res;
  }

  /** This replica's share of what was left when Redis was last seen. Unknown counter: limit/replicas. */
  private share(plan: Plan, chk: CheckPlan, replicas: number): number {
    return Math.floor(Math.max(0, chk.limit - this.lastKnownUsage(plan, chk)) / replicas);
  }

  /** A check's usage as Redis last reported it; 0 when never seen, or seen before its sliding window. */
  private lastKnownUsage(plan: Plan, chk: CheckPlan): number {
    const c = plan.counters[chk.counter];
    const lk = this.lastKnown.get(lastKnownKey(plan.tenant, c));
    const fresh = lk && (c.bucketMs === 0 || plan.now - lk.at < c.bucketMs * c.buckets);
    return fresh ? currentValue(chk.metric, lk.s) : 0;
  }

  private remember(plan: Plan, states: CounterState[], admitted: boolean): void {
    plan.counters.forEach((c, i) => {
      const k = lastKnownKey(plan.tenant, c);
      const s = states[i];
      const r = admitted ? { u: s.r.u + plan.amounts.u, i: s.r.i + plan.amounts.i, o: s.r.o + plan.amounts.o, q: s.r.q + plan.amounts.q } : s.r;
      this.lastKnown.delete(k);
      this.lastKnown.set(k, { at: plan.now, s: { c: s.c, r } });
    });
    trimOldest(this.lastKnown, LAST_KNOWN_MAX);
  }

  private replicas(): number {
    return Math.max(1, this.fixedReplicas ?? this.liveReplicas);
  }

  // ---- Redis plumbing ----

  private available(): boolean {
    return !this.closed && this.redis.status === 'ready' && this.now() >= this.breakerUntil;
  }

  private failed(err: unknown, op: string): void {
    this.failures++;
    this.breakerUntil = this.now() + this.breakerMs;
    const msg = err instanceof Error ? err.message : String(err);
    // Script bugs are not outages: say so loudly.
    if (/ERR .*script|user_script|cjson/i.test(msg)) this.log.error({ err: msg, op }, 'budget store: script error');
    else this.log.warn({ err: msg, op }, 'budget store: redis unavailable, using fail modes');
  }

  private async run(kind: keyof RedisStoreStats['roundTrips'], s: Script, keys: string[], args: string[]): Promise<unknown> {
    this.counts[kind]++;
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      this.counts[kind]++;
      return await this.redis.eval(s.src, keys.length, ...keys, ...args);
    }
  }

  private async loadScripts(): Promise<void> {
    try {
      for (const s of Object.values(SCRIPTS)) await this.redis.script('LOAD', s.src);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'budget store: script load failed (will EVAL on demand)');
    }
  }

  private cpre(tag: string): string {
    return `${this.prefix}{${tag}}:c:`;
  }
  private rpre(tag: string): string {
    return `${this.prefix}{${tag}}:res:`;
  }
  private keysFor(plan: Plan): string[] {
    const cp = this.cpre(plan.tenant);
    return [`${this.rpre(plan.tenant)}${plan.requestId}`, `${this.prefix}{${plan.tenant}}:rx`, ...plan.counters.map((c) => cp + c.key)];
  }
  private tagOfKey(key: string): string {
    const s = key.indexOf('{', this.prefix.length - 1);
    const e = key.indexOf('}', s + 1);
    return key.slice(s + 1, e);
  }

  private async settleRemote(p: PendingSettle): Promise<SettleResult['status']> {
    const charge = p.charge ? `${p.charge.u}:${p.charge.i}:${p.charge.o}:${p.charge.q}` : '';
    const args = ['', this.cpre(p.plan.tenant), this.rpre(p.plan.tenant), String(this.settledMemoryMs), String(this.now()), charge, ...flatPlan(p.plan, false)];
    return String(await this.run('settle', SCRIPTS.settle, this.keysFor(p.plan), args)) as SettleResult['status'];
  }

  private async sweepTenant(tag: string, now: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const n = Number(await this.run('sweep', SCRIPTS.sweep, [`${this.prefix}{${tag}}:rx`], [this.cpre(tag), this.rpre(tag), String(this.settledMemoryMs), String(now), '500']));
      if (n < 500) return;
    }
  }

  private enqueue(p: PendingSettle): void {
    if (this.pending.length >= this.maxPending) {
      const dropped = this.pending.shift();
      this.log.error({ requestId: dropped?.requestId }, 'budget store: pending settle queue full, dropping oldest (its hold expires by TTL)');
    }
    this.pending.push(p);
  }

  private async doFlush(): Promise<void> {
    /** Counters whose Redis state this flush changed: their last-known usage is re-read at the end. */
    const touched = new Map<string, { tenant: string; counter: CounterPlan }>();
    while (this.pending.length > 0 && this.available()) {
      const p = this.pending[0];
      try {
        await this.settleRemote(p);
        this.pending.shift();
        for (const c of p.plan.counters) touched.set(lastKnownKey(p.plan.tenant, c), { tenant: p.plan.tenant, counter: c });
      } catch (err) {
        this.failed(err, 'replay');
        return this.refreshKnown([...touched.values()]);
      }
    }
    if (!this.available()) return this.refreshKnown([...touched.values()]);
    const entries = this.local.drainJournal();
    if (entries.length > 0) {
      const byTenant = new Map<string, JournalEntry[]>();
      for (const e of entries) {
        const list = byTenant.get(e.tenant);
        if (list) list.push(e);
        else byTenant.set(e.tenant, [e]);
      }
      const left: JournalEntry[] = [];
      for (const [tenant, list] of byTenant) {
        for (let i = 0; i < list.length; i += APPLY_BATCH) {
          const batch = list.slice(i, i + APPLY_BATCH);
          if (left.length > 0 || !this.available()) {
            left.push(...batch);
            continue;
          }
          try {
            await this.applyBatch(tenant, batch);
            // The spend is in Redis now, and the local counters that held it are reset below: count it in
            // the last-known usage, or the next outage's `local` shares would hand the same headroom out again.
            for (const e of batch) {
              this.foldKnown(e.tenant, e.counter, e.amounts);
              touched.set(lastKnownKey(e.tenant, e.counter), { tenant: e.tenant, counter: e.counter });
            }
          } catch (err) {
            this.failed(err, 'reconcile');
            left.push(...batch);
          }
        }
      }
      if (left.length) this.local.restoreJournal(left);
    }
    if (touched.size > 0) await this.refreshKnown([...touched.values()]);
    if (this.local.journalSize === 0 && this.local.inFlight === 0 && this.pending.length === 0) this.local.resetCounters();
  }

  /** Adds replayed spend to a counter's last-known usage (creating it: a counter never seen had none). */
  private foldKnown(tenant: string, c: CounterPlan, a: Amounts): void {
    const k = lastKnownKey(tenant, c);
    const lk = this.lastKnown.get(k);
    const s: CounterState = lk ? lk.s : { c: { u: 0, i: 0, o: 0, q: 0 }, r: { u: 0, i: 0, o: 0, q: 0 } };
    const next: CounterState = { c: { u: s.c.u + a.u, i: s.c.i + a.i, o: s.c.o + a.o, q: s.c.q + a.q }, r: s.r };
    this.lastKnown.delete(k);
    this.lastKnown.set(k, { at: lk?.at ?? this.now(), s: next });
    trimOldest(this.lastKnown, LAST_KNOWN_MAX);
  }

  /**
   * Re-reads counters from Redis after a replay, so last-known usage includes what other replicas
   * replayed before us. Best effort: on failure the folded values stand (they include our own spend).
   * Replies arrive in command order on the one connection, so a reserve answered earlier cannot
   * overwrite this newer state.
   */
  private async refreshKnown(list: Array<{ tenant: string; counter: CounterPlan }>): Promise<void> {
    if (list.length === 0 || !this.available()) return;
    const pipe = this.redis.pipeline();
    for (const { tenant, counter } of list) pipe.hgetall(this.cpre(tenant) + counter.key);
    let res: Array<[Error | null, unknown]>;
    try {
      res = (await pipe.exec()) ?? [];
    } catch (err) {
      this.failed(err, 'refresh');
      return;
    }
    const now = this.now();
    list.forEach(({ tenant, counter }, i) => {
      const [err, h] = res[i] ?? [null, null];
      if (err || !h || typeof h !== 'object') return;
      const s = stateFromHash(h as Record<string, string>, now);
      if (!s) return;
      const k = lastKnownKey(tenant, counter);
      this.lastKnown.delete(k);
      this.lastKnown.set(k, { at: now, s });
    });
    trimOldest(this.lastKnown, LAST_KNOWN_MAX);
  }

  private async applyBatch(tenant: string, batch: JournalEntry[]): Promise<void> {
    // The batch id is fixed before the first attempt, so a timed-out attempt that did run is not
    // applied again on retry (the marker says so).
    const tagged = batch as Array<JournalEntry & { batchId?: string }>;
    const id = tagged[0].batchId ?? `${this.replicaId}:${++this.batchSeq}`;
    for (const e of tagged) e.batchId = id;
    const cp = this.cpre(tenant);
    const keys = [`${this.prefix}{${tenant}}:rc:${id}`, ...batch.map((e) => cp + e.counter.key)];
    const payload = JSON.stringify(batch.map((e) => [e.counter, e.amounts]));
    await this.run('apply', SCRIPTS.apply, keys, [payload, String(this.now()), String(this.settledMemoryMs)]);
  }

  private async heartbeat(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const now = this.now();
    const key = `${this.prefix}replicas`;
    try {
      this.counts.heartbeat++;
      const res = await this.redis
        .multi()
        .zadd(key, now, this.replicaId)
        .zremrangebyscore(key, '-inf', now - 15_000)
        .zcard(key)
        .pexpire(key, 60_000)
        .exec();
      const card = res?.[2]?.[1];
      if (typeof card === 'number' && card > 0) this.liveReplicas = card;
    } catch {
      // Heartbeats are best effort; the last count stays.
    }
  }

  private tick(): void {
    this.ticks++;
    if (this.ticks % 5 === 1) void this.heartbeat();
    if ((this.pending.length > 0 || this.local.journalSize > 0) && this.available()) void this.flush();
    // A settle never came for these (caller bug or lost stream): the store-side TTL has released them.
    const now = this.now();
    if (this.ticks % 60 === 0) {
      for (const [id, f] of this.inflight) if (now - f.at > f.plan.expiresAt - f.plan.now + this.settledMemoryMs) this.inflight.delete(id);
      for (const [id, at] of this.settledIds) {
        if (now - at <= this.settledMemoryMs) break;
        this.settledIds.delete(id);
      }
    }
  }
}

function lastKnownKey(tenant: string, c: CounterPlan): string {
  return `${tenant}\u0000${c.key}`;
}

// A calendar window's CounterPlan is frozen and shared by every request until the window rolls over (plan.ts):
// its JSON is made once, not per reserve (JSON.stringify of the whole record was ~4 µs per request).
const counterJson = new WeakMap<CounterPlan, string>();

function counterJsonOf(c: CounterPlan): string {
  if (!Object.isFrozen(c)) return JSON.stringify(c);
  let j = counterJson.get(c);
  if (j === undefined) counterJson.set(c, (j = JSON.stringify(c)));
  return j;
}

/** The hold record the expiry sweep decodes: exactly `JSON.stringify({ amounts, counters })` of the plan. */
export function holdRecord(plan: Plan): string {
  let out = `{"amounts":${JSON.stringify(plan.amounts)},"counters":[`;
  for (let i = 0; i < plan.counters.length; i++) out += (i ? ',' : '') + counterJsonOf(plan.counters[i]);
  return `${out}]}`;
}

/** The plan as the packed ARGV layout readPlan() in lua.ts expects (numbers ':'-joined: fewer arguments). */
export function flatPlan(plan: Plan, withChecks: boolean): string[] {
  const a = plan.amounts;
  const nk = withChecks ? plan.checks.length : 0;
  const out: string[] = [plan.requestId, `${plan.now}:${plan.expiresAt}:${a.u}:${a.i}:${a.o}:${a.q}:${plan.counters.length}:${nk}`];
  for (const c of plan.counters) {
    out.push(c.key, c.scopeKey, c.window, c.windowId, `${c.bucketMs}:${c.buckets}:${c.bucket}:${c.expireAt}:${c.start}:${c.resetAt}`);
  }
  for (let i = 0; i < nk; i++) {
    const k = plan.checks[i];
    out.push(`${k.counter}:${k.hard ? '1' : '0'}:${k.limit}:${k.metric}`, k.name);
  }
  return out;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** RESERVE_LUA's reply: ok, dup, per counter committed and reserved "u:i:o:q" (null = none), then retry pairs. */
type ReserveReply = Array<string | number | null>;

const AMOUNTS_RE = /^(-?\d+):(-?\d+):(-?\d+):(-?\d+)$/;

/**
 * A stored "u:i:o:q" from the reserve reply, read as the script reads it (parse4 in lua.ts: not four integers
 * → zeros) and as its '%.0f' re-formatting used to arrive (a value beyond a double's range read as NaN).
 */
export function amountsOfReply(v: string | number | null | undefined): Amounts {
  const m = typeof v === 'string' ? AMOUNTS_RE.exec(v) : null;
  if (!m) return { u: 0, i: 0, o: 0, q: 0 };
  return { u: finiteOrNaN(m[1]), i: finiteOrNaN(m[2]), o: finiteOrNaN(m[3]), q: finiteOrNaN(m[4]) };
}

function finiteOrNaN(s: string): number {
  const x = Number(s);
  return Number.isFinite(x) ? x : NaN;
}

function parse4(v: string | undefined): Amounts {
  if (!v) return { u: 0, i: 0, o: 0, q: 0 };
  const [u, i, o, q] = v.split(':').map(Number);
  return { u, i, o, q };
}

/** A counter hash's committed (in-window) and reserved usage; null when the counter does not exist. */
function stateFromHash(h: Record<string, string>, now: number): CounterState | null {
  if (h.sk === undefined) return null;
  const bucketMs = Number(h.bm ?? 0);
  let c: Amounts;
  if (bucketMs === 0) c = parse4(h.c);
  else {
    c = { u: 0, i: 0, o: 0, q: 0 };
    const minb = Math.floor(now / bucketMs) - Number(h.bn ?? 0);
    for (const [f, v] of Object.entries(h)) {
      if (f[0] !== '#' || Number(f.slice(1)) < minb) continue;
      const a = parse4(v);
      c.u += a.u;
      c.i += a.i;
      c.o += a.o;
      c.q += a.q;
    }
  }
  return { c, r: parse4(h.r) };
}

function rowFromHash(tenant: string, h: Record<string, string>, now: number): SpendRow | null {
  const s = stateFromHash(h, now);
  if (!s) return null;
  const num = (k: string): number => Number(h[k] ?? 0);
  const limits: Record<string, number> = {};
  for (const [f, v] of Object.entries(h)) {
    if (!f.startsWith('l:')) continue;
    const name = f.slice(2);
    limits[name] = name.endsWith(':usd') ? Number(v) / NANO : Number(v);
  }
  return spendRow(tenant, { scopeKey: h.sk, window: h.w, windowId: h.wid ?? '', start: num('st'), resetAt: num('ra') }, s, limits);
}

export type { CounterPlan };
