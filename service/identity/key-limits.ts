// Limits attached to a managed virtual key, turned into what the gateway already enforces: a model
// check next to the policies' (routing), and a budget / rate limit next to the policies' (admission).
import type { BudgetSpec, RateLimitSpec } from '../budget/types.ts';
import type { ModelCheckResult } from '../routing/index.ts';
import type { Principal } from './principal.ts';

/** A refusal when the key names the models it may use and this is none of them; undefined = fine. */
export function keyModelDenial(p: Principal, requested: string, canonical: string): Extract<ModelCheckResult, { ok: false }> | undefined {
  const allowed = p.keyLimits?.models;
  if (!allowed?.length || allowed.includes(requested) || allowed.includes(canonical)) return undefined;
  return {
    ok: false,
    rule: `key/${p.keyId}`,
    message: `This API key may not use model '${requested}' (allowed: ${allowed.join(', ')}).`,
    status: 403,
    code: 'model_not_allowed_for_key',
  };
}

/** The key's own budget and rate limit, scoped to the key. */
export function keyLimitSpecs(p: Principal): { budgets: BudgetSpec[]; rateLimits: RateLimitSpec[] } {
  const l = p.keyLimits;
  if (!l) return { budgets: [], rateLimits: [] };
  const scopeKey = `key:${p.keyId}`;
  const budgets: BudgetSpec[] = l.budget
    ? [{ name: `key/${p.keyId}`, scope: 'key', scopeKey, limit: { usd: l.budget.usd }, window: { kind: l.budget.window }, enforcement: 'hard', onStoreError: 'failClosed' }]
    : [];
  const rateLimits: RateLimitSpec[] =
    l.rateLimit && (l.rateLimit.rpm !== undefined || l.rateLimit.tpm !== undefined)
      ? [{ name: `key/${p.keyId}`, scopeKey, ...l.rateLimit, onStoreError: 'failClosed' }]
      : [];
  return { budgets, rateLimits };
}
