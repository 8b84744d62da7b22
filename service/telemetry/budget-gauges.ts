// Budget gauges from every scope's own latest value. A per-key (or per-team, per-user) budget has one
// counter per key, but key ids are never metric labels; so tollgate_budget_utilization_ratio{budget,tenant,unit}
// is the MOST-USED scope's share and tollgate_budget_remaining the LEAST remaining, over the scopes this
// replica has charged — not whichever scope's request happened to come last. A calendar window that has ended
// counts as reset (nothing used) until the scope is charged again. Bounded: past `maxScopes` scopes the one
// charged longest ago is forgotten.

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
  labels: BudgetGaugeLabels;
  seriesKey: string;
  limit?: number;
  remaining: number;
  resetAt: number;
}

export const DEFAULT_MAX_BUDGET_SCOPES = 100_000;

export class BudgetScopeGauges {
  /** Insertion order = least recently charged first. */
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxScopes = DEFAULT_MAX_BUDGET_SCOPES,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  observe(r: BudgetScopeReading): void {
    if (!Number.isFinite(r.remaining)) return;
    const labels = { budget: r.budget, tenant: r.tenant, unit: r.unit };
    const seriesKey = `${r.budget}\u0000${r.tenant}\u0000${r.unit}`;
    const key = `${seriesKey}\u0000${r.scopeKey}`;
    this.entries.delete(key);
    const limit = r.limit !== undefined && Number.isFinite(r.limit) && r.limit > 0 ? r.limit : undefined;
    this.entries.set(key, { labels, seriesKey, limit, remaining: r.remaining, resetAt: r.resetAt && r.resetAt > 0 ? r.resetAt : 0 });
    if (this.entries.size > this.maxScopes) this.entries.delete(this.entries.keys().next().value!);
  }

  /** One sample per (budget, tenant, unit), from every scope's value now. */
  samples(): BudgetGaugeSample[] {
    const now = this.now();
    const out = new Map<string, BudgetGaugeSample>();
    for (const e of this.entries.values()) {
      const reset = e.resetAt > 0 && e.resetAt <= now;
      // A window that has ended starts empty: the whole limit remains.
      const remaining = reset && e.limit !== undefined ? e.limit : e.remaining;
      const utilization = e.limit === undefined ? undefined : reset ? 0 : Math.max(0, (e.limit - e.remaining) / e.limit);
      const s = out.get(e.seriesKey);
      if (!s) out.set(e.seriesKey, { labels: e.labels, remaining, utilization });
      else {
        s.remaining = Math.min(s.remaining, remaining);
        if (utilization !== undefined) s.utilization = s.utilization === undefined ? utilization : Math.max(s.utilization, utilization);
      }
    }
    return [...out.values()];
  }
}
