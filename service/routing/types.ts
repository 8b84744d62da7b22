// Routing's public types. The policy engine imports DeploymentInfo from here; the config schema
// uses RoutingStrategy / ROUTING_STRATEGIES for the model's `strategy` field.
import type { DeploymentConfig, ModelConfig, ProviderConfig, ProviderKind } from '../config/types.ts';

/** How a model orders its deployments. Default `priority`. */
export const ROUTING_STRATEGIES = ['priority', 'weighted', 'lowest-cost', 'lowest-latency'] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

/** The policy engine's view of one deployment (visible to route-constraint policies). Immutable. */
export interface DeploymentInfo {
  readonly id: string;
  /** Public model name (canonical name; for wildcard models the concrete requested name). */
  readonly model: string;
  readonly provider: string;
  readonly providerApi: ProviderKind;
  readonly region: string;
  readonly selfHosted: boolean;
  readonly dataRetention: boolean;
  /** USD per 1M tokens. */
  readonly inputPricePerM: number;
  readonly outputPricePerM: number;
  readonly contextWindow: number;
}

export type RouteCheckResult = { ok: true } | { ok: false; rule: string; message: string };
/** Policy route constraint (residency, self-hosted only, …). Called once per deployment per request. */
export type RouteCheck = (d: DeploymentInfo) => RouteCheckResult;

/**
 * The policy verdict on one candidate model (the primary, a `models` fallback): ok with the route
 * check that applies to its deployments, or denied like a request naming it (status / code are
 * the client error's).
 */
export type ModelCheckResult =
  | { ok: true; check: RouteCheck }
  | { ok: false; rule: string; message: string; status: number; code: string };

/**
 * Judges a candidate model. `requested`: the name as the client wrote it; `canonical`: the
 * catalog's name for it (the concrete name for a wildcard match); `param`: where the client wrote
 * it (`model`, `models[0]`, …). Called at most once per model, and only once one of its
 * deployments passed the provider preferences.
 */
export type ModelCheck = (requested: string, canonical: string, param: string) => ModelCheckResult;

/** A candidate a policy rule removed from the route: a whole model, or one deployment of it. */
export interface PolicyDrop {
  /** The model as the client named it. */
  model: string;
  /** `model`, `models[0]`, … */
  param: string;
  /** Set when a route rule removed this one deployment (the model itself was allowed). */
  deployment?: string;
  /** `<policy>/<rule>` */
  rule: string;
  message: string;
}

/** OpenRouter `provider` preferences, validated (see preferences.ts). Provider names are lower-cased. */
export interface ProviderPreferences {
  order?: string[];
  only?: string[];
  ignore?: string[];
  sort?: 'price' | 'latency' | 'throughput';
  data_collection?: 'allow' | 'deny';
  /** Default true. */
  allow_fallbacks?: boolean;
  /** true → only providers with dataRetention: false (same filter as data_collection: deny). */
  zdr?: boolean;
  /** USD per 1M tokens. */
  max_price?: { prompt?: number; completion?: number };
}

export interface RouteInput {
  /** Requested model (`model` in the body). May be '' when `models` is given. */
  model: string;
  /** Raw `models` fallback array from the body (validated here: string[], ≤ 10 entries). */
  models?: unknown;
  /** Raw `provider` object from the body (validated here; see ProviderPreferences). */
  provider?: unknown;
  /** Estimated prompt tokens. */
  tokenEstimate: number;
  /** Output tokens the request may produce (max_tokens / max_completion_tokens, or the lead's default). 0 for embeddings. */
  maxOutputTokens: number;
  /** Route check for every model (when `checkModel` is absent). */
  check: RouteCheck;
  /**
   * Per-model policy verdict. When given, every model in `[model, ...models]` is judged as if the
   * request had named it, and its deployments use the route check it returns (`check` is unused).
   */
  checkModel?: ModelCheck;
  /** Filled with policy drops as they happen, so the caller has them also when route() throws. */
  dropped?: PolicyDrop[];
  kind: 'chat' | 'embedding';
  /** Streaming requests rank `lowest-latency` by time to first token; others by total latency. */
  stream?: boolean;
}

export interface Candidate {
  /** The model config this candidate belongs to (for wildcard models: a concrete copy named after the request). */
  model: ModelConfig;
  /** For wildcard models `upstreamModel` already has the suffix substituted. */
  deployment: DeploymentConfig;
  provider: ProviderConfig;
  /** tokenEstimate × input price + maxOutputTokens × output price (upper bound, USD). */
  estimatedCostUsd: number;
  /** The policy engine's view, same object the route check saw. */
  info: DeploymentInfo;
}

export interface Exclusion {
  deployment: string;
  reason: string;
}

export interface RouteResult {
  /** Ordered, ≥ 1: first = primary, rest = fallbacks for retries (in order). */
  candidates: Candidate[];
  excluded: Exclusion[];
  /** Candidates removed by policy (model rules and route rules), in the order they were judged. */
  dropped: PolicyDrop[];
  /**
   * true when every allowed deployment was ejected by passive health checks and the router
   * routed to them anyway (least-bad first, like Envoy's panic threshold). Worth a metric.
   */
  degraded: boolean;
}

export interface HealthObservation {
  /** Upstream HTTP status; 0 when no response (connect failure, reset). */
  status: number;
  /** Total upstream time, ms. */
  latencyMs: number;
  /** Time to first byte of the body (first SSE event), ms. */
  ttftMs?: number;
  timedOut?: boolean;
  /** Parsed retry-after of a 429/503 (see parseRetryAfter), ms from now. */
  retryAfterMs?: number;
  /** Completion tokens, for throughput (tokens/s after the first token). */
  outputTokens?: number;
}
