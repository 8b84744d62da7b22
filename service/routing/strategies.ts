// Orderings of one model's deployments. Each returns a new array; ties fall back to priority
// (lower first) and then config order, so results are deterministic given the random source.
import type { ModelConfig } from '../config/types.ts';
import type { HealthTracker } from './health.ts';
import type { RoutingStrategy } from './types.ts';
import type { CatalogEntry } from './catalog.ts';

export type SortKey = RoutingStrategy | 'highest-throughput';

export interface Ranked {
  model: ModelConfig;
  entry: CatalogEntry;
  /** Position in the model's config list (stable tiebreak). */
  index: number;
  estimatedCostUsd: number;
}

export interface OrderContext {
  random: () => number;
  health: HealthTracker | undefined;
  stream: boolean;
}

function byPriority(a: Ranked, b: Ranked): number {
  return a.entry.deployment.priority - b.entry.deployment.priority || a.index - b.index;
}

/**
 * Weighted random order without replacement (Efraimidis–Spirakis: key = ln(u)/w, largest first),
 * so the first pick follows the weights and fallbacks do too. Weight 0 → only after every
 * positively weighted entry, in priority order.
 */
function weightedShuffle(items: Ranked[], random: () => number): Ranked[] {
  const keyed: { r: Ranked; k: number }[] = [];
  const zero: Ranked[] = [];
  for (const r of items) {
    const w = r.entry.deployment.weight;
    if (w > 0) keyed.push({ r, k: Math.log(1 - random()) / w });
    else zero.push(r);
  }
  keyed.sort((a, b) => b.k - a.k || byPriority(a.r, b.r));
  return [...keyed.map((x) => x.r), ...zero.sort(byPriority)];
}

/** Lower is better; unknown (never observed) → -1 so new deployments get sampled. */
function latencyScore(r: Ranked, ctx: OrderContext): number {
  const s = ctx.health?.latency(r.entry.deployment.id);
  if (!s) return -1;
  const v = ctx.stream ? (s.ttftMs ?? s.latencyMs) : (s.latencyMs ?? s.ttftMs);
  return v ?? -1;
}

/** Higher is better; unknown → +∞ (explore). */
function throughputScore(r: Ranked, ctx: OrderContext): number {
  return ctx.health?.latency(r.entry.deployment.id)?.tokensPerSec ?? Number.POSITIVE_INFINITY;
}

/**
 * `items` by ascending priority when no two share one (the usual config: one deployment per tier), else
 * undefined. Then every tier has a single entry, so the tiered order below is exactly this and draws no
 * random number: this skips its Map and per-tier arrays on every request.
 */
function distinctPriorities(items: readonly Ranked[]): Ranked[] | undefined {
  for (const r of items) if (!Number.isFinite(r.entry.deployment.priority)) return undefined;
  const out = items.slice();
  // Insertion sort: a model has a handful of deployments.
  for (let i = 1; i < out.length; i++) {
    const r = out[i] as Ranked;
    const p = r.entry.deployment.priority;
    let j = i - 1;
    while (j >= 0 && (out[j] as Ranked).entry.deployment.priority > p) {
      out[j + 1] = out[j] as Ranked;
      j--;
    }
    if (j >= 0 && (out[j] as Ranked).entry.deployment.priority === p) return undefined;
    out[j + 1] = r;
  }
  return out;
}

/** The `priority` strategy in general: tiers of equal priority, lowest first, each spread by weight. */
export function priorityTiers(items: Ranked[], random: () => number): Ranked[] {
  const tiers = new Map<number, Ranked[]>();
  for (const r of items) {
    const p = r.entry.deployment.priority;
    const t = tiers.get(p);
    if (t) t.push(r);
    else tiers.set(p, [r]);
  }
  const out: Ranked[] = [];
  for (const p of [...tiers.keys()].sort((a, b) => a - b)) {
    const t = tiers.get(p)!;
    out.push(...(t.length === 1 ? t : weightedShuffle(t, random)));
  }
  return out;
}

export function order(items: Ranked[], key: SortKey, ctx: OrderContext): Ranked[] {
  if (items.length <= 1) return items.slice();
  switch (key) {
    case 'priority':
      // Equal priority = one tier; spread load inside a tier by weight.
      return distinctPriorities(items) ?? priorityTiers(items, ctx.random);
    case 'weighted':
      return weightedShuffle(items, ctx.random);
    case 'lowest-cost':
      return items.slice().sort((a, b) => a.estimatedCostUsd - b.estimatedCostUsd || byPriority(a, b));
    case 'lowest-latency': {
      const scored = items.map((r) => ({ r, s: latencyScore(r, ctx) }));
      scored.sort((a, b) => a.s - b.s || byPriority(a.r, b.r));
      return scored.map((x) => x.r);
    }
    case 'highest-throughput': {
      const scored = items.map((r) => ({ r, s: throughputScore(r, ctx) }));
      scored.sort((a, b) => (b.s === a.s ? 0 : b.s > a.s ? 1 : -1) || byPriority(a.r, b.r));
      return scored.map((x) => x.r);
    }
  }
}
