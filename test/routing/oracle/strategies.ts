// TEST ORACLE: service/routing/strategies.ts as of a487bce, frozen (see ./router.ts).
// Orderings of one model's deployments. Each returns a new array; ties fall back to priority
// (lower first) and then config order, so results are deterministic given the random source.
import type { ModelConfig } from '../../../service/config/types.ts';
import type { HealthTracker } from '../../../service/routing/health.ts';
import type { RoutingStrategy } from '../../../service/routing/types.ts';
import type { CatalogEntry } from '../../../service/routing/catalog.ts';

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

export function order(items: Ranked[], key: SortKey, ctx: OrderContext): Ranked[] {
  if (items.length <= 1) return items.slice();
  switch (key) {
    case 'priority': {
      // Equal priority = one tier; spread load inside a tier by weight.
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
        out.push(...(t.length === 1 ? t : weightedShuffle(t, ctx.random)));
      }
      return out;
    }
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
