// The BudgetStore interface both stores implement, and the check evaluation they share.
//
// Model: every counter (scopeKey × window instance) holds committed usage `c` and reserved
// (in-flight) usage `r`. A request reserves its maximum cost on every counter its specs name; a
// check passes when committed + reserved + this request ≤ limit. Commit moves the request's hold
// to committed at its actual size; release drops the hold. Reservations expire on their own after
// a TTL (the store sweeps them), so a dead replica's holds come back.

import type { BudgetSpec, RateLimitSpec, StoreFailMode } from './types.ts';
import type { Amounts, CheckPlan, Metric, Plan, Usage, UsageEstimate } from './plan.ts';

export interface CounterState {
  /** Committed usage inside the window (sliding: sum of in-window buckets). */
  c: Amounts;
  /** Reserved, not yet settled. */
  r: Amounts;
}

export interface CheckResult {
  name: string;
  kind: 'budget' | 'rate';
  metric: Metric;
  scopeKey: string;
  hard: boolean;
  /** In the metric's unit (USD as a decimal number, tokens, requests). */
  limit: number;
  /** Committed + reserved, including this request when it was admitted. */
  used: number;
  remaining: number;
  /** This request's need in the metric's unit. */
  requested: number;
  exceeded: boolean;
  /** Calendar windows: window end (ms epoch); sliding: 0. */
  resetAt: number;
  /** For exceeded checks: ms until the request could fit; -1 = never (request larger than the limit). */
  retryAfterMs: number;
  /** Not enforced: the shared store was unavailable and this spec fails open. used/remaining/exceeded
   *  are then this replica's last knowledge of the counter (0 used when it never saw it). */
  degraded?: 'failOpen';
}

export type Degraded = 'failOpen' | 'local';

export interface ReserveResult {
  ok: boolean;
  /** Every check, in plan order. */
  checks: CheckResult[];
  /** Hard checks that failed (empty when ok). */
  denied: CheckResult[];
  /** Soft checks that are exceeded (request admitted anyway). */
  warnings: CheckResult[];
  /** The request id was seen before: `held` = still reserved (ok, nothing added), `settled` = refused. */
  duplicate?: 'held' | 'settled';
  /** Set when the shared store was unavailable and a fail mode decided. */
  degraded?: Degraded;
  /** The shared store was unavailable and a failClosed spec denied the request. */
  storeUnavailable?: boolean;
  /** Names of failClosed specs behind storeUnavailable. */
  unavailableSpecs?: string[];
}

export interface SettleResult {
  /** settled = hold converted/dropped now; expired = hold had already expired (usage still charged);
   *  duplicate = already settled before (nothing changed); unknown = no such reservation;
   *  queued = shared store unavailable, will be applied when it returns. */
  status: 'settled' | 'expired' | 'duplicate' | 'unknown' | 'queued';
}

export interface SpendQuery {
  /** Tenant namespace (the `tenant` passed at reserve). Omit for all. */
  tenant?: string;
  /** Exact scopeKey, or a prefix ending in `*` (e.g. `team:*`). */
  scopeKey?: string;
}

export interface SpendRow {
  tenant: string;
  scopeKey: string;
  /** Window shape (`month@Europe/Paris`, `day`, `rolling3600s`, `rate`). */
  window: string;
  /** Calendar window id, '' for sliding windows. */
  windowId: string;
  start: number;
  resetAt: number;
  usd: number;
  inputTokens: number;
  outputTokens: number;
  requests: number;
  reservedUsd: number;
  reservedInputTokens: number;
  reservedOutputTokens: number;
  inFlight: number;
  /** Last limits seen for this counter, by `<budget name>:<metric>` (metric unit as in CheckResult). */
  limits: Record<string, number>;
}

export interface ReserveSpecs {
  budgets: readonly BudgetSpec[];
  rateLimits?: readonly RateLimitSpec[];
  /** Tenant namespace (Redis hash tag). All counters of one request live in it. */
  tenant?: string;
  /** Reservation TTL in ms (default 10 min). */
  ttlMs?: number;
}

export interface BudgetStore {
  /** Atomically reserve `estimate` against every applicable budget and rate limit, or nothing. */
  reserve(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): Promise<ReserveResult>;
  /** Charge actual usage (counts the request) and drop the rest of the hold. Idempotent. */
  commit(requestId: string, actual: Usage): Promise<SettleResult>;
  /** Drop the hold without charging anything (the request never reached a provider). Idempotent. */
  release(requestId: string): Promise<SettleResult>;
  spend(query?: SpendQuery): Promise<SpendRow[]>;
  health(): 'ok' | 'degraded';
  close(): Promise<void>;
  /**
   * A store that never waits (the in-process one) may offer the same three operations synchronously, with the same
   * results (an error is thrown instead of rejected). Why: the manager then skips a promise and a microtask per
   * admission and per settlement on the request path.
   */
  reserveNow?(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate): ReserveResult;
  commitNow?(requestId: string, actual: Usage): SettleResult;
  releaseNow?(requestId: string): SettleResult;
}

// ---- shared evaluation --------------------------------------------------------------------------

import { buildPlan, NANO, type CounterPlan } from './plan.ts';

/** The plan for one reserve() call, at the store's clock. */
export function planReservation(requestId: string, specs: ReserveSpecs, estimate: UsageEstimate, now: number): Plan {
  return buildPlan({
    requestId,
    budgets: specs.budgets,
    rateLimits: specs.rateLimits ?? [],
    estimate,
    tenant: specs.tenant,
    ttlMs: specs.ttlMs,
    now,
  });
}

export function metricValue(m: Metric, a: Amounts): number {
  switch (m) {
    case 'usd': return a.u;
    case 'inputTokens': return a.i;
    case 'outputTokens': return a.o;
    case 'totalTokens': return a.i + a.o;
    case 'requests': return a.q;
    case 'parallel': return a.q;
  }
}

/** Usage a check compares against its limit (before adding this request). */
export function currentValue(m: Metric, s: CounterState): number {
  if (m === 'parallel') return s.r.q;
  return metricValue(m, s.c) + metricValue(m, s.r);
}

export function exceeds(chk: CheckPlan, s: CounterState, amounts: Amounts): boolean {
  return currentValue(chk.metric, s) + metricValue(chk.metric, amounts) > chk.limit;
}

export const toUnit = (m: Metric, v: number): number => (m === 'usd' ? v / NANO : v);

/**
 * One check's result from the counter's usage before this request (`cur`) and the request's need, both in
 * integer units. `admitted` adds the request to `used`. retryAfterMs is 0: the caller sets it for an exceeded check.
 */
export function checkResult(chk: CheckPlan, counter: CounterPlan, cur: number, need: number, admitted: boolean): CheckResult {
  const used = admitted ? cur + need : cur;
  return {
    name: chk.name,
    kind: chk.kind,
    metric: chk.metric,
    scopeKey: chk.scopeKey,
    hard: chk.hard,
    limit: toUnit(chk.metric, chk.limit),
    used: toUnit(chk.metric, used),
    remaining: toUnit(chk.metric, Math.max(0, chk.limit - used)),
    requested: toUnit(chk.metric, need),
    exceeded: cur + need > chk.limit,
    resetAt: counter.resetAt,
    retryAfterMs: 0,
  };
}

/**
 * Check results from counter states taken *before* this request. `admitted` adds the request to
 * `used`. `retryMs(i)` gives the store's retry estimate for an exceeded check i.
 */
export function evaluate(plan: Plan, states: readonly CounterState[], admitted: boolean, retryMs: (i: number) => number): ReserveResult {
  const checks: CheckResult[] = [];
  const denied: CheckResult[] = [];
  const warnings: CheckResult[] = [];
  for (let i = 0; i < plan.checks.length; i++) {
    const chk = plan.checks[i];
    const cur = currentValue(chk.metric, states[chk.counter]);
    const need = metricValue(chk.metric, plan.amounts);
    const res = checkResult(chk, plan.counters[chk.counter], cur, need, admitted);
    if (res.exceeded) res.retryAfterMs = retryMs(i);
    checks.push(res);
    if (res.exceeded) (chk.hard ? denied : warnings).push(res);
  }
  return { ok: admitted, checks, denied, warnings };
}

/** Whether a plan fits: every hard check passes. */
export function fits(plan: Plan, states: readonly CounterState[]): boolean {
  for (const chk of plan.checks) if (chk.hard && exceeds(chk, states[chk.counter], plan.amounts)) return false;
  return true;
}

/**
 * Retry estimate for an exceeded check. Calendar windows: the window end, unless only in-flight
 * holds block it (then 1 s: holds settle within a request's lifetime). Sliding windows: the moment
 * enough old buckets leave the window. `bucketsOldestFirst` = [bucket index, committed amounts].
 */
export function retryAfterMs(
  chk: CheckPlan,
  plan: Plan,
  s: CounterState,
  bucketsOldestFirst: ReadonlyArray<readonly [number, Amounts]>,
): number {
  const need = metricValue(chk.metric, plan.amounts);
  if (need > chk.limit) return -1;
  if (chk.metric === 'parallel') return 1000;
  const c = plan.counters[chk.counter];
  const committed = metricValue(chk.metric, s.c);
  const reserved = metricValue(chk.metric, s.r);
  if (c.bucketMs === 0) {
    if (committed + need <= chk.limit) return 1000;
    return Math.max(1000, c.resetAt - plan.now);
  }
  let cur = committed + reserved;
  for (const [b, a] of bucketsOldestFirst) {
    cur -= metricValue(chk.metric, a);
    if (cur + need <= chk.limit) return Math.max(1, (b + c.buckets + 1) * c.bucketMs - plan.now);
  }
  return 1000;
}

export const ZERO: Readonly<Amounts> = Object.freeze({ u: 0, i: 0, o: 0, q: 0 });

/** Bounds an insertion-ordered map (oldest first) to `max` entries by dropping its oldest ones. */
export function trimOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) break;
    map.delete(oldest);
  }
}

export type { StoreFailMode };
