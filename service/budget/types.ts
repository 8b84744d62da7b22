// The budget/rate-limit attachment a policy produces for one request. Policies (service/policy)
// build these; the budget module (service/budget) enforces them. Shape shared by both.

export type BudgetWindow =
  | { kind: 'minute' | 'hour' | 'day' | 'month'; timeZone?: string }
  | { kind: 'rolling'; seconds: number };

export interface BudgetLimit {
  usd?: number;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  requests?: number;
}

export type StoreFailMode = 'failClosed' | 'failOpen' | 'local';

export interface BudgetSpec {
  /** `<policy>/<rule>` that attached it; shown in errors, headers and lineage. */
  name: string;
  /** What it is per: key | user | team | tenant | model | custom. */
  scope: string;
  /** Concrete bucket, e.g. `tenant:acme` or whatever a CEL scope expression produced. */
  scopeKey: string;
  limit: BudgetLimit;
  window: BudgetWindow;
  /** hard → 429 when exceeded; soft → warning header + lineage flag only. */
  enforcement: 'hard' | 'soft';
  onStoreError: StoreFailMode;
}

export interface RateLimitSpec {
  name: string;
  scopeKey: string;
  /** Requests per minute, sliding window. */
  rpm?: number;
  /** Tokens per minute, sliding window. */
  tpm?: number;
  /** Maximum requests in flight at once. */
  maxParallel?: number;
  onStoreError: StoreFailMode;
}
