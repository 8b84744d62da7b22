// In-process BudgetStore: the embedded default for a single replica, and the local ledger the Redis
// store falls back to. Single-threaded JS makes every operation atomic; no awaits inside.

import { commitAmounts, type Amounts, type CounterPlan, type Plan, type Usage, type UsageEstimate } from './plan.ts';
import {
  evaluate,
  exceeds,
  fits,
  planReservation,
  retryAfterMs,
  toUnit,
  trimOldest,
  type BudgetStore,
  type CounterState,
  type ReserveResult,
  type ReserveSpecs,
  type SettleResult,
  type SpendQuery,
  type SpendRow,
} from './store.ts';
import { NANO } from './plan.ts';

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
}

interface MemReservation {
  plan: Plan;
  expiresAt: number;
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

/** Min-heap of [expiresAt, requestId] with lazy deletion. */
class ExpiryHeap {
  private h: Array<[number, string]> = [];
  get size(): number {
    return this.h.length;
  }
  push(t: number, id: string): void {
    const h = this.h;
    h.push([t, id]);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p][0] <= h[i][0]) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }
  peek(): [number, string] | undefined {
    return this.h[0];
  }
  pop(): void {
    const h = this.h;
    const last = h.pop();
    if (!last || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l][0] < h[m][0]) m = l;
      if (r < h.length && h[r][0] < h[m][0]) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
  /** Replaces the contents (sorted, so already a valid min-heap). */
  reset(entries: Array<[number, string]>): void {
    this.h = entries.sort((a, b) => a[0] - b[0]);
  }
}

export class MemoryStore implements BudgetStore {
  private readonly now: () => number;
  private readonly counters = new Map<string, MemCounter>();
  private readonly reservations = new Map<string, MemReservation>();
  private readonly expiry = new ExpiryHeap();
  /** requestId → [state, forgetAt, plan of an expired hold (a late commit still charges it)] */
  private readonly settled = new Map<string, ['done' | 'expired', number, Plan | null]>();
  private readonly settledMemoryMs: number;
  private readonly maxSettled: number;
  private readonly journalOn: boolean;
  private journalEntries: JournalEntry[] = [];
  private nextCleanup = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.journalOn = opts.journal ?? false;
    this.settledMemoryMs = opts.settledMemoryMs ?? 900_000;
    this.maxSettled = opts.maxSettled ?? 100_000;
  }

  private markSettled(id: string, state: 'done' | 'expired', until: number, plan: Plan | null): void {
    this.settled.delete(id);
    this.settled.set(id, [state, until, plan]);
    trimOldest(this.settled, this.maxSettled);
  }

  async reserve(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): Promise<ReserveResult> {
    return this.reservePlan(planReservation(requestId, specs, estimate, this.now()));
  }

  /** Reserve an already-built plan (synchronous; used directly by the Redis store's fallback). */
  reservePlan(plan: Plan): ReserveResult {
    const now = plan.now;
    this.sweep(now);
    const held = this.reservations.get(plan.requestId);
    const n = plan.counters.length;
    const cs: MemCounter[] = new Array(n);
    const states: CounterState[] = new Array(n);
    for (let i = 0; i < n; i++) {
      cs[i] = this.counterFor(plan.tenant, plan.counters[i], now);
      states[i] = this.stateOf(cs[i], plan.counters[i], now);
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
    for (const chk of plan.checks) {
      const mc = cs[chk.counter];
      const lk = `${chk.name}:${chk.metric}`;
      const v = toUnit(chk.metric, chk.limit);
      if (mc.limits[lk] !== v) mc.limits[lk] = v;
    }
    this.reservations.set(plan.requestId, { plan, expiresAt: plan.expiresAt });
    this.expiry.push(plan.expiresAt, plan.requestId);
    return result;
  }

  async commit(requestId: string, actual: Usage): Promise<SettleResult> {
    const plan = this.reservations.get(requestId)?.plan ?? this.settled.get(requestId)?.[2] ?? undefined;
    return this.settleSync(requestId, commitAmounts(actual, plan?.amounts), null);
  }

  async release(requestId: string): Promise<SettleResult> {
    return this.settleSync(requestId, null, null);
  }

  /**
   * Settle a hold. `charge` null = release. `fallbackPlan` charges counters even when the hold is
   * gone (expired and swept) — the caller still knows which counters the request used.
   */
  settleSync(requestId: string, charge: Amounts | null, fallbackPlan: Plan | null): SettleResult {
    const now = this.now();
    this.sweep(now);
    const prior = this.settled.get(requestId);
    if (prior?.[0] === 'done') return { status: 'duplicate' };
    const res = this.reservations.get(requestId);
    const plan = res?.plan ?? prior?.[2] ?? fallbackPlan;
    if (!plan) return { status: 'unknown' };
    if (res) {
      this.reservations.delete(requestId);
      this.compactExpiry();
      for (const c of plan.counters) {
        const mc = this.counters.get(this.keyOf(plan.tenant, c));
        if (mc) addInto(mc.r, plan.amounts, -1);
      }
    }
    if (charge) this.charge(plan.tenant, plan.counters, charge, now);
    this.markSettled(requestId, 'done', now + this.settledMemoryMs, null);
    return { status: res ? 'settled' : 'expired' };
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
    for (const [k, mc] of this.counters) {
      if (mc.r.q === 0) this.counters.delete(k);
      else {
        mc.c = zero();
        mc.buckets?.clear();
      }
    }
  }

  hasReservation(requestId: string): boolean {
    return this.reservations.has(requestId);
  }

  /** Current state of the counters a plan names, without changing anything. */
  peek(plan: Plan): CounterState[] {
    return plan.counters.map((c) => {
      const mc = this.counters.get(this.keyOf(plan.tenant, c));
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

  private keyOf(tenant: string, c: CounterPlan): string {
    return tenant === '_' ? c.key : `${tenant}\u0000${c.key}`;
  }

  private counterFor(tenant: string, c: CounterPlan, now: number): MemCounter {
    const k = this.keyOf(tenant, c);
    let mc = this.counters.get(k);
    if (mc && mc.expireAt <= now && mc.r.q === 0) {
      this.counters.delete(k);
      mc = undefined;
    }
    if (!mc) {
      mc = { tenant, meta: c, expireAt: c.expireAt, c: zero(), r: zero(), buckets: c.bucketMs > 0 ? new Map() : null, limits: {} };
      this.counters.set(k, mc);
    }
    return mc;
  }

  private stateOf(mc: MemCounter, c: CounterPlan, now: number): CounterState {
    if (!mc.buckets) return { c: { ...mc.c }, r: { ...mc.r } };
    const cur = Math.floor(now / c.bucketMs);
    const sum = zero();
    for (const [b, a] of mc.buckets) {
      if (b < cur - c.buckets) mc.buckets.delete(b);
      else addInto(sum, a);
    }
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
    for (const [id, r] of this.reservations) live.push([r.expiresAt, id]);
    this.expiry.reset(live);
  }

  /** Entries in the expiry heap (live and not yet compacted); for tests. */
  get expiryEntries(): number {
    return this.expiry.size;
  }

  private sweep(now: number): void {
    for (let top = this.expiry.peek(); top && top[0] <= now; top = this.expiry.peek()) {
      this.expiry.pop();
      const res = this.reservations.get(top[1]);
      if (!res || res.expiresAt !== top[0]) continue;
      this.reservations.delete(top[1]);
      for (const c of res.plan.counters) {
        const mc = this.counters.get(this.keyOf(res.plan.tenant, c));
        if (mc) addInto(mc.r, res.plan.amounts, -1);
      }
      this.markSettled(top[1], 'expired', now + this.settledMemoryMs, res.plan);
    }
    if (now < this.nextCleanup) return;
    this.nextCleanup = now + 1000;
    for (const [k, mc] of this.counters) if (mc.expireAt <= now && mc.r.q === 0) this.counters.delete(k);
    for (const [k, [, until]] of this.settled) {
      if (until > now) break; // insertion order is time order
      this.settled.delete(k);
    }
  }
}

// exceeds is re-exported for stores that evaluate single checks.
export { exceeds };

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
