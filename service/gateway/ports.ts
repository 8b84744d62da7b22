// The narrow interfaces the request path needs from budgets, redaction, lineage, metrics and traces.
// app.ts adapts the real modules to them; tests can pass simple fakes.
import type { BudgetSpec, RateLimitSpec } from '../budget/types.ts';
import type { BudgetEffect, LineageRecord, RedactionCount } from '../lineage/record.ts';
import type { CustomDetectorSpec, RedactionRule } from '../redaction/types.ts';

export interface CostEstimate {
  usd: number;
  inputTokens: number;
  outputTokens: number;
}

export interface Admission {
  /** Response headers for the client (x-ratelimit-*, x-tollgate-budget-*). */
  headers: Record<string, string>;
  effects: BudgetEffect[];
  /** Opaque handle for settle(). */
  handle: unknown;
}

export interface BudgetPort {
  /** Reserves against every budget and limit; throws GatewayError (429 / 503) when refused. */
  admit(requestId: string, budgets: BudgetSpec[], limits: RateLimitSpec[], estimate: CostEstimate, tenant: string): Promise<Admission>;
  /** Charges actual usage (or releases everything when `actual` is null). Never throws. */
  settle(admission: Admission, actual: CostEstimate | null): Promise<BudgetEffect[]>;
}

/** Incremental text filter: push text, get what is safe to release now; end() flushes. */
export interface TextStream {
  push(text: string): string;
  end(): string;
}

export interface RedactionResult {
  report: RedactionCount[];
  /**
   * Model-output transform, present when pseudonyms must be restored and/or a rule asked for
   * response redaction: one stream per text channel (choice / content block).
   */
  output?: {
    /** `json`: the text is JSON source (tool-call arguments): restored values are inserted JSON-escaped. */
    text(text: string, json?: boolean): string;
    stream(json?: boolean): TextStream;
    report(): RedactionCount[];
  };
}

export interface RedactionPort {
  /** Redacts the parsed request body in place. Throws GatewayError('permission') for `block`. */
  redactRequest(
    body: Record<string, unknown>,
    rules: RedactionRule[],
    custom: CustomDetectorSpec[],
    tenant: string,
  ): RedactionResult;
}

/** Audit: takes each finished request's record into the lineage pipeline (enqueue only). */
export interface LineagePort {
  emit(record: LineageRecord): void;
}

/**
 * Another consumer of the same finished-request record (request metrics, traces). Each consumer is fed on its
 * own: one that throws, drops or falls behind never changes what another one sees. Must not mutate the record.
 */
export interface OutcomeConsumer {
  readonly name: string;
  consume(record: LineageRecord): void;
}
