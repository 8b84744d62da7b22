// The façade the request path calls: admit() before the request goes upstream, settle() when it
// ends. Turns store results into client-facing headers and typed GatewayErrors.

import { GatewayError, type GatewayErrorOptions } from '../errors.ts';
import type { BudgetSpec, RateLimitSpec } from './types.ts';
import type { Usage, UsageEstimate } from './plan.ts';
import type { BudgetLogger } from './redis.ts';
import type { BudgetStore, CheckResult, Degraded, ReserveResult, SettleResult, SpendQuery, SpendRow } from './store.ts';

export interface AdmitContext {
  /** Tenant namespace: all of a request's counters live in it (Redis Cluster hash tag). */
  tenant?: string;
  /** Reservation TTL (ms), default 10 min. Longer than the longest request you allow. */
  ttlMs?: number;
}

export interface Reservation {
  requestId: string;
  /** No budgets or rate limits applied: settle is a no-op. */
  empty: boolean;
  degraded?: Degraded;
}

export interface Admission {
  ok: true;
  reservation: Reservation;
  /** Soft budgets this request exceeds (admitted anyway): record in lineage. */
  warnings: CheckResult[];
  /** Every check's state after admission (for lineage/metrics). */
  checks: CheckResult[];
  /** Response headers for the client (rate-limit and budget state). */
  headers: Record<string, string>;
  /** The shared store was unavailable; this fail mode admitted the request. */
  degraded?: Degraded;
}

export interface BudgetManagerOptions {
  logger?: BudgetLogger;
}

const EMPTY: readonly [] = [];

export class BudgetManager {
  private readonly store: BudgetStore;
  private readonly log: BudgetLogger | undefined;

  constructor(store: BudgetStore, opts: BudgetManagerOptions = {}) {
    this.store = store;
    this.log = opts.logger;
  }

  /** Reserve `estimate` against every budget and rate limit, all or nothing. Never throws. */
  async admit(
    requestId: string,
    budgets: readonly BudgetSpec[],
    rateLimits: readonly RateLimitSpec[],
    estimate: UsageEstimate,
    ctx: AdmitContext = {},
  ): Promise<Admission | GatewayError> {
    if (budgets.length === 0 && rateLimits.length === 0) {
      return { ok: true, reservation: { requestId, empty: true }, warnings: [], checks: [], headers: {} };
    }
    let r: ReserveResult;
    const store = this.store;
    try {
      const specs = { budgets, rateLimits, tenant: ctx.tenant, ttlMs: ctx.ttlMs };
      r = store.reserveNow ? store.reserveNow(requestId, specs, estimate) : await store.reserve(requestId, specs, estimate);
    } catch (err) {
      if (err instanceof GatewayError) return err;
      this.log?.error({ err: err instanceof Error ? err.message : String(err), requestId }, 'budget admission failed');
      return new GatewayError('internal', 'budget check failed inside the gateway', { code: 'budget_internal_error', cause: err });
    }
    if (r.storeUnavailable) {
      const names = (r.unavailableSpecs ?? []).map((n) => `"${n}"`).join(', ');
      return new GatewayError(
        'unavailable',
        `The budget store is unavailable and ${names} ${(r.unavailableSpecs ?? []).length > 1 ? 'are' : 'is'} configured to fail closed; retry shortly.`,
        { code: 'budget_store_unavailable', headers: { 'retry-after': '1' } },
      );
    }
    if (r.duplicate === 'settled') {
      return new GatewayError('internal', `request id ${requestId} was already used for a settled reservation`, { code: 'budget_duplicate_request' });
    }
    const headers = budgetHeaders(r.checks);
    if (!r.ok) return deniedError(r, headers);
    if (r.warnings.length) headers['x-tollgate-budget-warning'] = [...new Set(r.warnings.map((w) => w.name))].join(', ');
    if (r.degraded) headers['x-tollgate-budget-degraded'] = r.degraded;
    return {
      ok: true,
      reservation: { requestId, empty: false, degraded: r.degraded },
      warnings: r.warnings,
      checks: r.checks,
      headers,
      degraded: r.degraded,
    };
  }

  /**
   * End of request. `actual` = usage the provider reported (partial usage for an aborted stream
   * that reached the provider: the request counts); null = release everything (the request never
   * reached a provider). Never throws; a store outage queues the settle for replay.
   */
  async settle(reservation: Reservation, actual: Usage | null): Promise<SettleResult> {
    if (reservation.empty) return { status: 'settled' };
    try {
      const store = this.store;
      const id = reservation.requestId;
      if (actual) return store.commitNow ? store.commitNow(id, actual) : await store.commit(id, actual);
      return store.releaseNow ? store.releaseNow(id) : await store.release(id);
    } catch (err) {
      this.log?.error({ err: err instanceof Error ? err.message : String(err), requestId: reservation.requestId }, 'budget settle failed');
      return { status: 'unknown' };
    }
  }

  spend(query?: SpendQuery): Promise<SpendRow[]> {
    return this.store.spend(query);
  }

  health(): 'ok' | 'degraded' {
    return this.store.health();
  }
}

// ---- headers and errors -------------------------------------------------------------------------

/** a is tighter than b: less remaining, then the smaller limit. */
function tighter(a: CheckResult, b: CheckResult | undefined): boolean {
  return !b || a.remaining < b.remaining || (a.remaining === b.remaining && a.limit < b.limit);
}

/** USD with 2–6 decimals: `4.75`, `0.000125`. */
function fmtUsd(v: number): string {
  const s = v.toFixed(6);
  let end = s.length;
  while (end > s.length - 4 && s.charCodeAt(end - 1) === 48) end--;
  return end === s.length ? s : s.slice(0, end);
}

// A budget's limit is the same for every request: format each once.
const limitTexts = new Map<number, string>();
function limitText(v: number): string {
  let s = limitTexts.get(v);
  if (s === undefined) {
    s = fmtUsd(v);
    if (limitTexts.size > 1000) limitTexts.clear();
    limitTexts.set(v, s);
  }
  return s;
}

// Window ends repeat for every request of a window: format each once.
const isoCache = new Map<number, string>();
function iso(t: number): string {
  let s = isoCache.get(t);
  if (s === undefined) {
    s = new Date(t).toISOString();
    if (isoCache.size > 1000) isoCache.clear();
    isoCache.set(t, s);
  }
  return s;
}

/** Headers from the tightest rpm, tpm and hard USD budget check. */
export function budgetHeaders(checks: readonly CheckResult[] = EMPTY): Record<string, string> {
  let rq: CheckResult | undefined;
  let tk: CheckResult | undefined;
  let usd: CheckResult | undefined;
  for (const c of checks) {
    if (c.degraded) continue; // not enforced (store down, fail open): its numbers are only a guess
    if (c.kind === 'rate') {
      if (c.metric === 'requests' && tighter(c, rq)) rq = c;
      else if (c.metric === 'totalTokens' && tighter(c, tk)) tk = c;
    } else if (c.metric === 'usd' && c.hard && tighter(c, usd)) usd = c;
  }
  const h: Record<string, string> = {};
  if (rq) {
    h['x-ratelimit-limit-requests'] = String(rq.limit);
    h['x-ratelimit-remaining-requests'] = String(rq.remaining);
  }
  if (tk) {
    h['x-ratelimit-limit-tokens'] = String(tk.limit);
    h['x-ratelimit-remaining-tokens'] = String(tk.remaining);
  }
  if (usd) {
    h['x-tollgate-budget-name'] = usd.name;
    h['x-tollgate-budget-limit-usd'] = limitText(usd.limit);
    h['x-tollgate-budget-remaining-usd'] = fmtUsd(usd.remaining);
    if (usd.resetAt) h['x-tollgate-budget-reset'] = iso(usd.resetAt);
  }
  return h;
}

function describe(metric: CheckResult['metric'], v: number): string {
  switch (metric) {
    case 'usd': return `$${fmtUsd(v)}`;
    case 'inputTokens': return `${v} input tokens`;
    case 'outputTokens': return `${v} output tokens`;
    case 'totalTokens': return `${v} tokens`;
    case 'requests': return `${v} requests`;
    case 'parallel': return `${v} in flight`;
  }
}

/** A budget or rate limit refused the request (429). Carries the hard checks that failed, for lineage and metrics. */
export class LimitExceededError extends GatewayError {
  readonly limitKind: 'budget' | 'rate';
  readonly denied: readonly CheckResult[];
  constructor(message: string, opts: GatewayErrorOptions, limitKind: 'budget' | 'rate', denied: readonly CheckResult[]) {
    super('rate_limit', message, opts);
    this.limitKind = limitKind;
    this.denied = denied;
  }
}

function deniedError(r: ReserveResult, headers: Record<string, string>): GatewayError {
  // The request fits only when every denied check fits: the longest wait decides.
  const never = r.denied.find((d) => d.retryAfterMs < 0);
  const primary = never ?? r.denied.reduce((a, b) => (b.retryAfterMs > a.retryAfterMs ? b : a));
  const h: Record<string, string> = { ...headers, 'x-tollgate-budget-name': primary.name };
  const what = primary.kind === 'rate' ? 'Rate limit' : 'Budget';
  if (never) {
    return new LimitExceededError(
      `${what} "${primary.name}" (${primary.scopeKey}) can never admit this request: it needs up to ${describe(primary.metric, primary.requested)} but the limit is ${describe(primary.metric, primary.limit)}. Lower max_tokens or the prompt size.`,
      { code: 'request_exceeds_limit', headers: h },
      primary.kind,
      r.denied,
    );
  }
  const secs = Math.max(1, Math.ceil(primary.retryAfterMs / 1000));
  h['retry-after'] = String(secs);
  if (primary.metric === 'parallel') {
    return new LimitExceededError(
      `Concurrency limit "${primary.name}" (${primary.scopeKey}) reached: ${primary.used} requests in flight, maximum ${primary.limit}. Retry after ${secs} s.`,
      { code: 'concurrency_limit_exceeded', headers: h },
      'rate',
      r.denied,
    );
  }
  const window = primary.kind === 'rate' ? ' per minute' : '';
  const reset = primary.resetAt ? `; the window resets at ${iso(primary.resetAt)}` : '';
  return new LimitExceededError(
    `${what} "${primary.name}" (${primary.scopeKey}) exceeded: this request needs up to ${describe(primary.metric, primary.requested)}, ${describe(primary.metric, primary.remaining)} of ${describe(primary.metric, primary.limit)}${window} remain${reset}. Retry after ${secs} s.`,
    { code: primary.kind === 'rate' ? 'rate_limit_exceeded' : 'budget_exceeded', headers: h },
    primary.kind,
    r.denied,
  );
}
