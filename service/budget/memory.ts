// In-process BudgetStore: the embedded default for a single replica, and the local ledger the Redis
// store falls back to. Single-threaded JS makes every operation atomic; no awaits inside.

import { commitAmounts, type Amounts, type CheckPlan, type CounterPlan, type Plan, type Usage, type UsageEstimate } from './plan.ts';
import {
  evaluate,
  exceeds,
  fits,
  planReservation,
  retryAfterMs,
  toUnit,
  type BudgetStore,
  type CounterState,
  type ReserveResult,
  type ReserveSpecs,
  type SettleResult,
  type SpendQuery,
  type SpendRow,
} from './store.ts';
import { NANO } from './plan.ts';
import { SettledIds } from './settled-ids.ts';

interface MemCounter {
  tenant: string;
  meta: CounterPlan;
  expireAt: number;
  /** Fixed windows: committed usage. */
  c: Amounts;
  r: Amounts;
  /** Sliding windows: committed usage per bucket index. */
  buckets: Map<number, Amounts> | null;
  limits: Record<string, number>;
  /** The checks array whose limits were last recorded in `limits` (see reservePlan). */
  limitsFrom: readonly CheckPlan[] | null;
  /** Sliding windows: scratch state (in-window sum + the live holds) that liveState refills for each reserve. */
  view: CounterState | null;
}

/** One charge applied to a counter; the Redis store replays these after an outage. */
export interface JournalEntry {
  tenant: string;
  counter: CounterPlan;
  amounts: Amounts;
}

export interface MemoryStoreOptions {
  now?: () => number;
  /** Record every commit's charges (used by the Redis store's local fallback for reconciliation). */
  journal?: boolean;
  /** How long settled request ids are remembered to make settle idempotent (ms). Default 15 min. */
  settledMemoryMs?: number;
  /** Cap on remembered settled ids (oldest forgotten first). Default 100 000. */
  maxSettled?: number;
}

const zero = (): Amounts => ({ u: 0, i: 0, o: 0, q: 0 });

function addInto(a: Amounts, b: Amounts, sign = 1): void {
  a.u += sign * b.u;
  a.i += sign * b.i;
  a.o += sign * b.o;
  a.q += sign * b.q;
  // Holds can be dropped by a sweep and a settle racing in the Redis replay path; never go negative.
  if (a.u < 0) a.u = 0;
  if (a.i < 0) a.i = 0;
  if (a.o < 0) a.o = 0;
  if (a.q < 0) a.q = 0;
}

/** Min-heap of (expiresAt, requestId) with lazy deletion; parallel arrays, no tuple per entry. */
class ExpiryHeap {
  private t: number[] = [];
  private id: string[] = [];
  get size(): number {
    return this.t.length;
  }
  push(t: number, id: string): void {
    const ts = this.t;
    const ids = this.id;
    let i = ts.length;
    ts.push(t);
    ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ts[p] <= t) break;
      ts[i] = ts[p];
      ids[i] = ids[p];
      i = p;
    }
    ts[i] = t;
    ids[i] = id;
  }
  /** Earliest expiry (Infinity when empty). */
  peekTime(): number {
    return this.t.length ? this.t[0] : Infinity;
  }
  peekId(): string {
    return this.id[0];
  }
  pop(): void {
    const ts = this.t;
    const ids = this.id;
    const lt = ts.pop();
    const lid = ids.pop();
    if (lt === undefined || lid === undefined || ts.length === 0) return;
    const n = ts.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && ts[r] < ts[l] ? r : l;
      if (ts[m] >= lt) break;
      ts[i] = ts[m];
      ids[i] = ids[m];
      i = m;
    }
    ts[i] = lt;
    ids[i] = lid;
  }
  /** Replaces the contents (sorted, so already a valid min-heap). */
  reset(entries: Array<[number, string]>): void {
    entries.sort((a, b) => a[0] - b[0]);
    this.t = entries.map((e) => e[0]);
    this.id = entries.map((e) => e[1]);
  }
}

/** Counters by tenant tag, then by counter key: plans carry the same key strings request after request, so
 *  both lookups hash nothing new (a `tenant + key` string per lookup did). */
class CounterTable {
  private readonly byTenant = new Map<string, Map<string, MemCounter>>();

  get(tenant: string, key: string): MemCounter | undefined {
    return this.byTenant.get(tenant)?.get(key);
  }

  set(tenant: string, key: string, mc: MemCounter): void {
    let m = this.byTenant.get(tenant);
    if (!m) this.byTenant.set(tenant, (m = new Map()));
    m.set(key, mc);
  }

  delete(tenant: string, key: string): void {
    const m = this.byTenant.get(tenant);
    if (!m) return;
    m.delete(key);
    if (m.size === 0) this.byTenant.delete(tenant);
  }

  /** Drops every counter `drop` says to (safe while iterating: Map iteration tolerates deletes). */
  deleteWhere(drop: (mc: MemCounter) => boolean): void {
    for (const [tenant, m] of this.byTenant) {
      for (const [k, mc] of m) if (drop(mc)) m.delete(k);
      if (m.size === 0) this.byTenant.delete(tenant);
    }
  }

  *values(): IterableIterator<MemCounter> {
    for (const m of this.byTenant.values()) yield* m.values();
  }

  clear(): void {
    this.byTenant.clear();
  }
}

export class MemoryStore implements BudgetStore {
  private readonly now: () => number;
  private readonly counters = new CounterTable();
  /** Live holds: requestId → its plan (plan.expiresAt is the hold's expiry). */
  private readonly reservations = new Map<string, Plan>();
  private readonly expiry = new ExpiryHeap();
  private readonly settled: SettledIds;
  private readonly settledMemoryMs: number;
  private readonly journalOn: boolean;
  private journalEntries: JournalEntry[] = [];
  private nextCleanup = 0;
  private readonly scratchCounters: MemCounter[] = [];
  private readonly scratchStates: CounterState[] = [];

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.journalOn = opts.journal ?? false;
    this.settledMemoryMs = opts.settledMemoryMs ?? 900_000;
    this.settled = new SettledIds(opts.maxSettled ?? 100_000);
  }

  async reserve(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): Promise<ReserveResult> {
    return this.reserveNow(requestId, specs, estimate);
  }

  reserveNow(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): ReserveResult {
    return this.reservePlan(planReservation(requestId, specs, estimate, this.now()));
  }

  /** Reserve an already-built plan (synchronous; used directly by the Redis store's fallback). */
  reservePlan(plan: Plan): ReserveResult {
    const now = plan.now;
    this.sweep(now);
    const held = this.reservations.get(plan.requestId);
    const n = plan.counters.length;
    // Scratch arrays, reused by every call (nothing here awaits, and neither escapes this call). Entries past n
    // are left from earlier plans and never read (checks index counters below n); setting `length` costs a call.
    const cs = this.scratchCounters;
    const states = this.scratchStates;
    for (let i = 0; i < n; i++) {
      cs[i] = this.counterFor(plan.tenant, plan.counters[i], now);
      // Not copied: states are read (by evaluate) before this reservation changes the counters.
      states[i] = this.liveState(cs[i], plan.counters[i], now);
    }
    if (held || this.settled.has(plan.requestId)) {
      // Same id again: idempotent for a live hold, refused after settlement.
      return { ...evaluate(plan, states, Boolean(held), () => 1000), duplicate: held ? 'held' : 'settled' };
    }
    const ok = fits(plan, states);
    const result = evaluate(plan, states, ok, (i) => {
      const chk = plan.checks[i];
      const mc = cs[chk.counter];
      return retryAfterMs(chk, plan, states[chk.counter], this.bucketsOldestFirst(mc, plan.counters[chk.counter], now));
    });
    if (!ok) return result;
    for (let i = 0; i < n; i++) {
      const mc = cs[i];
      addInto(mc.r, plan.amounts);
      if (plan.counters[i].expireAt > mc.expireAt) mc.expireAt = plan.counters[i].expireAt;
    }
    // Record each check's limit on its counter (spend reports). Why the skip: plans of the same specs share one
    // checks array (plan templates), and only this loop writes `limits`; when a counter's limits were last written
    // from this very array, every value below is already there.
    const checks = plan.checks;
    for (let i = 0; i < n; i++) {
      const mc = cs[i];
      if (mc.limitsFrom === checks) continue;
      for (const chk of checks) {
        if (chk.counter !== i) continue;
        const lk = limitKey(chk.name, chk.metric);
        const v = toUnit(chk.metric, chk.limit);
        if (mc.limits[lk] !== v) mc.limits[lk] = v;
      }
      mc.limitsFrom = checks;
    }
    this.reservations.set(plan.requestId, plan);
    this.expiry.push(plan.expiresAt, plan.requestId);
    return result;
  }

  async commit(requestId: string, actual: Usage): Promise<SettleResult> {
    return this.commitNow(requestId, actual);
  }

  commitNow(requestId: string, actual: Usage): SettleResult {
    const plan = this.reservations.get(requestId) ?? this.settled.expiredPlan(requestId);
    return this.settleSync(requestId, commitAmounts(actual, plan?.amounts), null);
  }

  async release(requestId: string): Promise<SettleResult> {
    return this.releaseNow(requestId);
  }

  releaseNow(requestId: string): SettleResult {
    return this.settleSync(requestId, null, null);
  }

  /**
   * Settle a hold. `charge` null = release. `fallbackPlan` charges counters even when the hold is
   * gone (expired and swept) — the caller still knows which counters the request used.
   */
  settleSync(requestId: string, charge: Amounts | null, fallbackPlan: Plan | null): SettleResult {
    const now = this.now();
    this.sweep(now);
    const res = this.reservations.get(requestId);
    // A live hold was never settled (a settled id cannot reserve again): look in the settled ids only without one.
    if (!res && this.settled.isDone(requestId)) return DUPLICATE;
    const plan = res ?? this.settled.expiredPlan(requestId) ?? fallbackPlan;
    if (!plan) return UNKNOWN;
    if (res) {
      this.reservations.delete(requestId);
      this.compactExpiry();
      for (const c of plan.counters) {
        const mc = this.counters.get(plan.tenant, c.key);
        if (mc) addInto(mc.r, plan.amounts, -1);
      }
    }
    if (charge) this.charge(plan.tenant, plan.counters, charge, now);
    // A live hold's id is never among the settled ones (reserve refuses settled ids; every mark drops the hold).
    this.settled.mark(requestId, now + this.settledMemoryMs, null, res !== undefined);
    return res ? SETTLED : EXPIRED;
  }

  /** Add committed usage to counters (also the reconciliation path). */
  charge(tenant: string, counters: readonly CounterPlan[], amounts: Amounts, now: number): void {
    for (const c of counters) {
      const mc = this.counterFor(tenant, c, now);
      if (c.bucketMs === 0) addInto(mc.c, amounts);
      else {
        const cur = Math.floor(now / c.bucketMs);
        // Charged to the admission bucket; if that already left the window there is nothing to count.
        if (c.bucket < cur - c.buckets) continue;
        let b = mc.buckets!.get(c.bucket);
        if (!b) mc.buckets!.set(c.bucket, (b = zero()));
        addInto(b, amounts);
      }
      if (this.journalOn) this.journalEntries.push({ tenant, counter: c, amounts: { ...amounts } });
    }
  }

  /** Take and clear the journal. */
  drainJournal(): JournalEntry[] {
    const j = this.journalEntries;
    this.journalEntries = [];
    return j;
  }

  /** Put entries back at the front (a replay failed). */
  restoreJournal(entries: JournalEntry[]): void {
    this.journalEntries = entries.concat(this.journalEntries);
  }

  get journalSize(): number {
    return this.journalEntries.length;
  }

  /** Forget all counters except those holding live reservations' holds (after reconciliation). */
  resetCounters(): void {
    this.counters.deleteWhere((mc) => {
      if (mc.r.q === 0) return true;
      mc.c = zero();
      mc.buckets?.clear();
      return false;
    });
  }

  hasReservation(requestId: string): boolean {
    return this.reservations.has(requestId);
  }

  /** Current state of the counters a plan names, without changing anything. */
  peek(plan: Plan): CounterState[] {
    return plan.counters.map((c) => {
      const mc = this.counters.get(plan.tenant, c.key);
      return mc ? this.stateOf(mc, c, plan.now) : { c: zero(), r: zero() };
    });
  }

  async spend(query: SpendQuery = {}): Promise<SpendRow[]> {
    const now = this.now();
    this.sweep(now);
    const rows: SpendRow[] = [];
    for (const mc of this.counters.values()) {
      if (mc.expireAt <= now) continue;
      if (query.tenant !== undefined && mc.tenant !== tagOfQuery(query.tenant)) continue;
      if (!scopeMatches(mc.meta.scopeKey, query.scopeKey)) continue;
      const s = this.stateOf(mc, mc.meta, now);
      rows.push(spendRow(mc.tenant, mc.meta, s, mc.limits));
    }
    return rows.sort(compareRows);
  }

  health(): 'ok' {
    return 'ok';
  }

  async close(): Promise<void> {
    this.counters.clear();
    this.reservations.clear();
    this.settled.clear();
  }

  /** Count of live holds (tests, gauges). */
  get inFlight(): number {
    return this.reservations.size;
  }

  // ---- internals ----

  private counterFor(tenant: string, c: CounterPlan, now: number): MemCounter {
    let mc = this.counters.get(tenant, c.key);
    if (mc && mc.expireAt <= now && mc.r.q === 0) {
      this.counters.delete(tenant, c.key);
      mc = undefined;
    }
    if (!mc) {
      const r = zero();
      mc = { tenant, meta: c, expireAt: c.expireAt, c: zero(), r, buckets: c.bucketMs > 0 ? new Map() : null, limits: {}, limitsFrom: null, view: c.bucketMs > 0 ? { c: zero(), r } : null };
      this.counters.set(tenant, c.key, mc);
    }
    return mc;
  }

  /**
   * The counter's state as of `now`, sharing the live amounts (read it before changing the counter). Why no new
   * objects: this runs for every counter of every request; a fixed window's counter is its own state, a sliding
   * one refills its scratch view (both are read only inside reservePlan, before anything changes).
   */
  private liveState(mc: MemCounter, c: CounterPlan, now: number): CounterState {
    const buckets = mc.buckets;
    const view = mc.view;
    if (!buckets || !view) return mc;
    const sum = view.c;
    sum.u = 0;
    sum.i = 0;
    sum.o = 0;
    sum.q = 0;
    sumInWindow(buckets, Math.floor(now / c.bucketMs) - c.buckets, sum);
    return view;
  }

  private stateOf(mc: MemCounter, c: CounterPlan, now: number): CounterState {
    if (!mc.buckets) return { c: { ...mc.c }, r: { ...mc.r } };
    const sum = zero();
    sumInWindow(mc.buckets, Math.floor(now / c.bucketMs) - c.buckets, sum);
    return { c: sum, r: { ...mc.r } };
  }

  private bucketsOldestFirst(mc: MemCounter, c: CounterPlan, now: number): Array<[number, Amounts]> {
    if (!mc.buckets) return [];
    const cur = Math.floor(now / c.bucketMs);
    return [...mc.buckets.entries()].filter(([b]) => b >= cur - c.buckets).sort((a, b) => a[0] - b[0]);
  }

  /**
   * Settled holds leave their heap entry behind (lazy deletion); at thousands of requests a second
   * and a 10-minute hold TTL that is a million dead entries. Rebuild from the live holds once dead
   * ones dominate: amortized O(1) per settle, heap ≤ 2× live holds + slack.
   */
  private compactExpiry(): void {
    if (this.expiry.size < 2 * this.reservations.size + 4096) return;
    const live: Array<[number, string]> = [];
    for (const [id, p] of this.reservations) live.push([p.expiresAt, id]);
    this.expiry.reset(live);
  }

  /** Entries in the expiry heap (live and not yet compacted); for tests. */
  get expiryEntries(): number {
    return this.expiry.size;
  }

  private sweep(now: number): void {
    for (let t = this.expiry.peekTime(); t <= now; t = this.expiry.peekTime()) {
      const id = this.expiry.peekId();
      this.expiry.pop();
      const plan = this.reservations.get(id);
      if (!plan || plan.expiresAt !== t) continue;
      this.reservations.delete(id);
      for (const c of plan.counters) {
        const mc = this.counters.get(plan.tenant, c.key);
        if (mc) addInto(mc.r, plan.amounts, -1);
      }
      this.settled.mark(id, now + this.settledMemoryMs, plan, true); // its hold was live: not settled before
    }
    if (now < this.nextCleanup) return;
    this.nextCleanup = now + 1000;
    this.counters.deleteWhere((mc) => mc.expireAt <= now && mc.r.q === 0);
    this.settled.forget(now);
  }
}

// Settle results carry nothing but their status: one frozen object each instead of a new one per settle.
const SETTLED: SettleResult = Object.freeze({ status: 'settled' });
const EXPIRED: SettleResult = Object.freeze({ status: 'expired' });
const DUPLICATE: SettleResult = Object.freeze({ status: 'duplicate' });
const UNKNOWN: SettleResult = Object.freeze({ status: 'unknown' });

/** Adds the buckets from index `oldest` on into `sum`, dropping older ones. */
function sumInWindow(buckets: Map<number, Amounts>, oldest: number, sum: Amounts): void {
  // forEach, not for…of: no [key, value] array per bucket (a busy rate window has ~60 of them).
  buckets.forEach((a, b) => {
    if (b < oldest) buckets.delete(b);
    else addInto(sum, a);
  });
}

// exceeds is re-exported for stores that evaluate single checks.
export { exceeds };

// Spend rows key limits by `<budget name>:<metric>`: the same few strings for every request, made once.
const limitKeys = new Map<string, Map<string, string>>();
function limitKey(name: string, metric: string): string {
  let m = limitKeys.get(name);
  if (!m) {
    if (limitKeys.size >= 10_000) limitKeys.clear();
    limitKeys.set(name, (m = new Map()));
  }
  let k = m.get(metric);
  if (k === undefined) m.set(metric, (k = `${name}:${metric}`));
  return k;
}

import { tagOf } from './plan.ts';
function tagOfQuery(tenant: string): string {
  return tagOf(tenant);
}

export function scopeMatches(scopeKey: string, pattern: string | undefined): boolean {
  if (pattern === undefined) return true;
  if (pattern.endsWith('*')) return scopeKey.startsWith(pattern.slice(0, -1));
  return scopeKey === pattern;
}

export function spendRow(tenant: string, c: Pick<CounterPlan, 'scopeKey' | 'window' | 'windowId' | 'start' | 'resetAt'>, s: CounterState, limits: Record<string, number>): SpendRow {
  return {
    tenant,
    scopeKey: c.scopeKey,
    window: c.window,
    windowId: c.windowId,
    start: c.start,
    resetAt: c.resetAt,
    usd: s.c.u / NANO,
    inputTokens: s.c.i,
    outputTokens: s.c.o,
    requests: s.c.q,
    reservedUsd: s.r.u / NANO,
    reservedInputTokens: s.r.i,
    reservedOutputTokens: s.r.o,
    inFlight: s.r.q,
    limits: { ...limits },
  };
}

export function compareRows(a: SpendRow, b: SpendRow): number {
  return a.tenant.localeCompare(b.tenant) || a.scopeKey.localeCompare(b.scopeKey) || a.window.localeCompare(b.window) || a.windowId.localeCompare(b.windowId);
}
