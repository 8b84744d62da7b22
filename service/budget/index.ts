// Public surface of the budget module.

export type { BudgetSpec, BudgetLimit, BudgetWindow, RateLimitSpec, StoreFailMode } from './types.ts';
export { BudgetManager, budgetHeaders, type Admission, type AdmitContext, type Reservation } from './manager.ts';
export { MemoryStore, type MemoryStoreOptions } from './memory.ts';
export { RedisStore, budgetRedisOptions, type RedisStoreOptions, type RedisStoreStats, type BudgetLogger } from './redis.ts';
export type { BudgetStore, CheckResult, ReserveResult, ReserveSpecs, SettleResult, SpendQuery, SpendRow, Degraded } from './store.ts';
export { validateBudgetSpec, validateRateLimitSpec, DEFAULT_RESERVATION_TTL_MS, type Usage, type UsageEstimate } from './plan.ts';
export { estimateCost, estimateRequest, estimateTokens, estimateChatTokens, type Prices } from './cost.ts';
export { estimateBillable, MEDIA_TOKENS, type BillableEstimate } from './billable.ts';
export { plausibleBounds, settlementUsage, validateUsage, type Settlement, type SettlementFacts, type UsageAnomaly } from './usage.ts';
export { fixedWindowAt, describeWindow, isValidTimeZone } from './windows.ts';

import { MemoryStore } from './memory.ts';
import { RedisStore, type BudgetLogger } from './redis.ts';
import type { BudgetStore } from './store.ts';

/** REDIS_URL set → RedisStore (shared across replicas); unset → in-process MemoryStore. */
export function createBudgetStore(
  opts: { redisUrl?: string; prefix?: string; logger?: BudgetLogger; replicas?: number; commandTimeoutMs?: number } = {},
): BudgetStore {
  if (opts.redisUrl)
    return new RedisStore({ url: opts.redisUrl, prefix: opts.prefix, logger: opts.logger, replicas: opts.replicas, commandTimeoutMs: opts.commandTimeoutMs });
  return new MemoryStore();
}
