// Budget gauges from every scope's own latest value. A per-key (or per-team, per-user) budget has one
// counter per key, but key ids are never metric labels; so tollgate_budget_utilization_ratio{budget,tenant,unit}
// is the MOST-USED scope's share and tollgate_budget_remaining the LEAST remaining, over the scopes this
// replica has charged — not whichever scope's request happened to come last. A calendar window that has ended
// counts as reset (nothing used) until the scope is charged again.
//
// Cost: a charge updates one entry in place (two map lookups); a scrape recomputes only the series that
// changed or had a window end since the last scrape. Bounded: past `maxScopes` scopes in all, the scope
// seen first is forgotten (an active one comes back with its next charge).

export interface BudgetGaugeLabels {
  budget: string;
  tenant: string;
  unit: string;
}

export interface BudgetScopeReading extends BudgetGaugeLabels {
  /** The concrete counter (`key:…`, `team:…`); '' when unknown. */
  scopeKey: string;
  limit?: number;
  remaining: number;
  /** End of the scope's calendar window, ms epoch; 0/undefined for sliding windows. */
  resetAt?: number;
}

export interface BudgetGaugeSample {
  labels: BudgetGaugeLabels;
  /** Least remaining over the scopes. */
  remaining: number;
  /** Largest used/limit over the scopes; undefined when no scope has a known positive limit. */
  utilization?: number;
}

interface Entry {
  limit: number | undefined;
  remaining: number;
  resetAt: number;
}

interface Series {
  scopes: Map<string, Entry>;
  sample: BudgetGaugeSample;
  /** A charge changed it since the last computation. */
  dirty: boolean;
  /** Earliest window end after the last computation (Infinity: none): the sample changes then. */
  nextReset: number;
}

export const DEFAULT_MAX_BUDGET_SCOPES = 100_000;

export class BudgetScopeGauges {
  /**
   * budget → tenant → unit → series. Nested maps keyed by the (clamped, long-lived) label strings, not one
   * map keyed by their concatenation: a charge then builds no key string and hashes no fresh string (the
   * concatenation was most of observe()'s cost, ~3 times per request).
   */
  private readonly series = new Map<string, Map<string, Map<string, Series>>>();
  /** Every series, in creation order (the order samples() gives them, as the single map did). */
  private readonly list: Series[] = [];
  /** Every (series, scope) in first-seen order, for the bound. */
  private readonly order: [Series, string][] = [];
  private orderHead = 0;
  private count = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxScopes = DEFAULT_MAX_BUDGET_SCOPES,
  ) {}

  get size(): number {
    return this.count;
  }

  observe(r: BudgetScopeReading): void {
    if (!Number.isFinite(r.remaining)) return;
    let byTenant = this.series.get(r.budget);
    if (!byTenant) this.series.set(r.budget, (byTenant = new Map()));
    let byUnit = byTenant.get(r.tenant);
    if (!byUnit) byTenant.set(r.tenant, (byUnit = new Map()));
    let s = byUnit.get(r.unit);
    if (!s) {
      s = { scopes: new Map(), sample: { labels: { budget: r.budget, tenant: r.tenant, unit: r.unit }, remaining: 0 }, dirty: true, nextReset: Infinity };
      byUnit.set(r.unit, s);
      this.list.push(s);
    }
    const limit = r.limit !== undefined && Number.isFinite(r.limit) && r.limit > 0 ? r.limit : undefined;
    const resetAt = r.resetAt !== undefined && r.resetAt > 0 ? r.resetAt : 0;
    const e = s.scopes.get(r.scopeKey);
    if (e) {
      e.limit = limit;
      e.remaining = r.remaining;
      e.resetAt = resetAt;
    } else {
      s.scopes.set(r.scopeKey, { limit, remaining: r.remaining, resetAt });
      this.order.push([s, r.scopeKey]);
      this.count++;
      if (this.count > this.maxScopes) this.evictOldest();
    }
    s.dirty = true;
  }

  /** One sample per (budget, tenant, unit), from every scope's value now. */
  samples(): BudgetGaugeSample[] {
    const now = this.now();
    const out: BudgetGaugeSample[] = [];
    for (const s of this.list) {
      if (s.dirty || now >= s.nextReset) this.compute(s, now);
      if (s.scopes.size > 0) out.push(s.sample);
    }
    return out;
  }

  private compute(s: Series, now: number): void {
    let remaining = Infinity;
    let utilization: number | undefined;
    let nextReset = Infinity;
    for (const e of s.scopes.values()) {
      const reset = e.resetAt > 0 && e.resetAt <= now;
      if (e.resetAt > now && e.resetAt < nextReset) nextReset = e.resetAt;
      // A window that has ended starts empty: the whole limit remains.
      const rem = reset && e.limit !== undefined ? e.limit : e.remaining;
      if (rem < remaining) remaining = rem;
      if (e.limit !== undefined) {
        const u = reset ? 0 : Math.max(0, (e.limit - e.remaining) / e.limit);
        if (utilization === undefined || u > utilization) utilization = u;
      }
    }
    s.sample = { labels: s.sample.labels, remaining, ...(utilization !== undefined ? { utilization } : {}) };
    s.dirty = false;
    s.nextReset = nextReset;
  }

  private evictOldest(): void {
    const [s, scopeKey] = this.order[this.orderHead]!;
    this.order[this.orderHead++] = undefined as unknown as [Series, string];
    if (this.orderHead > 1024 && this.orderHead * 2 > this.order.length) {
      this.order.splice(0, this.orderHead);
      this.orderHead = 0;
    }
    s.scopes.delete(scopeKey);
    s.dirty = true;
    this.count--;
  }
}
