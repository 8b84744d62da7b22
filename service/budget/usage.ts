// What a finished request is charged: the provider-reported usage, validated and bounded, or a
// documented estimate when the provider reported none. Pure functions; the request path calls
// settlementUsage() once per request.
//
// Rules (README "Charging"):
//   - never sent upstream                        → release (nothing charged, not counted)
//   - reported usage                             → charged after validation: each count must be a
//       non-negative finite number (fractions round up); a count above the request's plausible
//       maximum is clamped to it ('clamped'); a negative, NaN or non-numeric count is replaced by
//       the reservation's ('invalid'); a report of zero input and zero output is no report
//   - no usage, the provider answered (2xx, or a stream that carried bytes, or the client left
//       before any answer)                       → 'missing': the prompt estimate + output
//       estimated from the bytes relayed (JSON ~4 bytes per token, SSE ~20), at most the bound
//   - no usage on an error answer (≥ 300)        → $0 and no tokens, but the request counts
// Every request that reached a provider counts against request budgets.

/** Token counts of one request. */
export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
}

/** Usage as translators report it (see providers/types.ts). */
export interface ReportedUsage extends TokenCounts {
  cachedInputTokens?: number;
  reasoningTokens?: number;
  cacheCreationInputTokens?: number;
  /** Subset of cacheCreationInputTokens written with a 1-hour TTL (Anthropic). */
  cacheCreation1hInputTokens?: number;
  estimated?: boolean;
}

/** Why the charged counts differ from what the provider reported. */
export type UsageAnomaly = 'missing' | 'invalid' | 'clamped';

export interface SettlementFacts {
  /** The request was sent to a provider (it may have billed it). */
  sentUpstream: boolean;
  /** Upstream HTTP status; 0 when no answer arrived. */
  status: number;
  reported: ReportedUsage | undefined;
  /** What admission reserved: prompt estimate and output limit × n. */
  reserved: TokenCounts;
  /** The most this request can plausibly be billed (see plausibleBounds). */
  bounds: TokenCounts;
  /** Client-format bytes of the answer relayed so far. */
  responseBytes: number;
  streamed: boolean;
}

export interface Settlement {
  usage: ReportedUsage;
  anomaly?: UsageAnomaly;
}

/** Bytes of answer per output token when the provider reported no usage (overestimates on purpose). */
export const JSON_BYTES_PER_TOKEN = 4;
export const SSE_BYTES_PER_TOKEN = 20;
/** Slack on the byte bound of a prompt: framing and tokens a provider adds (tool-use system prompts). */
const INPUT_SLACK_TOKENS = 4096;

/**
 * The largest believable usage of a request. Input: the larger of the deployment's context window
 * and the request's byte size (+ slack: a BPE token is at least one byte of text, and a misconfigured
 * window must not clamp a legitimate long prompt). Output: the output limit × n when the client set
 * one (providers never exceed it), else the larger of that and the context window × n.
 */
export function plausibleBounds(o: { contextWindow: number; requestBytes: number; reserved: TokenCounts; explicitOutputLimit: boolean; choices: number }): TokenCounts {
  const window = Number.isFinite(o.contextWindow) && o.contextWindow > 0 ? o.contextWindow : 0;
  const inputTokens = Math.max(window, o.requestBytes + INPUT_SLACK_TOKENS, o.reserved.inputTokens);
  const outputTokens = o.explicitOutputLimit ? o.reserved.outputTokens : Math.max(o.reserved.outputTokens, window * Math.max(1, o.choices));
  return { inputTokens, outputTokens };
}

function count(v: unknown, fallback: number, bound: number): [number, UsageAnomaly | undefined] {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) return [Math.min(fallback, bound), 'invalid'];
  if (v > bound) return [bound, 'clamped']; // includes +Infinity (e.g. `1e400` in the JSON)
  return [Math.ceil(v), undefined];
}

/** A subset count (cached ⊂ input, reasoning ⊂ output): kept only when valid. */
function subset(v: number | undefined, of: number): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= of ? Math.ceil(v) : undefined;
}

const WORSE: Record<UsageAnomaly, number> = { clamped: 1, invalid: 2, missing: 3 };
function worst(a: UsageAnomaly | undefined, b: UsageAnomaly | undefined): UsageAnomaly | undefined {
  if (!a) return b;
  if (!b) return a;
  return WORSE[a] >= WORSE[b] ? a : b;
}

/** Validates reported usage against the request's bounds; invalid counts fall back to the reservation. */
export function validateUsage(reported: ReportedUsage, reserved: TokenCounts, bounds: TokenCounts): Settlement {
  const [inputTokens, ai] = count(reported.inputTokens, reserved.inputTokens, bounds.inputTokens);
  const [outputTokens, ao] = count(reported.outputTokens, reserved.outputTokens, bounds.outputTokens);
  const usage: ReportedUsage = { inputTokens, outputTokens };
  const cached = subset(reported.cachedInputTokens, inputTokens);
  if (cached !== undefined) usage.cachedInputTokens = cached;
  const written = subset(reported.cacheCreationInputTokens, inputTokens);
  if (written !== undefined) {
    usage.cacheCreationInputTokens = written;
    const oneHour = subset(reported.cacheCreation1hInputTokens, written);
    if (oneHour !== undefined) usage.cacheCreation1hInputTokens = oneHour;
  }
  const reasoning = subset(reported.reasoningTokens, outputTokens);
  if (reasoning !== undefined) usage.reasoningTokens = reasoning;
  const anomaly = worst(ai, ao);
  if (reported.estimated || anomaly === 'invalid') usage.estimated = true;
  return anomaly ? { usage, anomaly } : { usage };
}

/** No usage from the provider: the prompt estimate plus output estimated from the bytes relayed. */
export function estimateFromBytes(reserved: TokenCounts, bounds: TokenCounts, responseBytes: number, streamed: boolean): ReportedUsage {
  const perToken = streamed ? SSE_BYTES_PER_TOKEN : JSON_BYTES_PER_TOKEN;
  return {
    inputTokens: Math.min(reserved.inputTokens, bounds.inputTokens),
    outputTokens: Math.min(Math.ceil(Math.max(0, responseBytes) / perToken), bounds.outputTokens),
    estimated: true,
  };
}

/** What to charge when a request ends; null = release (it never reached a provider). */
export function settlementUsage(f: SettlementFacts): Settlement | null {
  if (!f.sentUpstream) return null;
  const r = f.reported;
  const reportedSomething = r !== undefined && !(r.inputTokens === 0 && r.outputTokens === 0);
  if (reportedSomething) return validateUsage(r, f.reserved, f.bounds);
  if (f.status >= 300) return { usage: { inputTokens: 0, outputTokens: 0 } };
  return { usage: estimateFromBytes(f.reserved, f.bounds, f.responseBytes, f.streamed), anomaly: 'missing' };
}
