// The compiled, validated configuration every other module reads. Produced by config/loader.ts
// from the YAML documents; immutable once built (a reload builds a whole new Snapshot).

/**
 * Wire API a provider speaks. `openai` also covers OpenAI-compatible servers (vLLM, Ollama, SGLang, Groq, OpenRouter).
 * `vertex` is Claude on Google Vertex AI (`:rawPredict` / `:streamRawPredict`, OAuth bearer token).
 */
export type ProviderApi = 'openai' | 'azure' | 'anthropic' | 'gemini' | 'bedrock' | 'vertex';

/**
 * What a Provider document's `api` names: a wire API, or `mock`, the built-in stand-in that answers in the
 * client's own API (service/providers/mock.ts; `tollgate run` serves it).
 */
export type ProviderKind = ProviderApi | 'mock';

export type CredentialSource =
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'none' };

export interface ProviderConfig {
  name: string;
  api: ProviderKind;
  /** Envoy cluster name, written to `x-tollgate-cluster`. */
  cluster: string;
  /** Upstream host (`x-tollgate-host`), used for :authority / SNI. */
  host: string;
  /** Path prefix on the upstream, e.g. `/v1` for OpenAI, `/openai` for Azure. */
  basePath: string;
  credential: CredentialSource;
  /** Azure `api-version`, Anthropic `anthropic-version`, … */
  apiVersion?: string;
  /** AWS region for Bedrock SigV4. */
  region?: string;
  /** Whether the provider may retain/train on data (for residency/retention policies). */
  dataRetention: boolean;
  selfHosted: boolean;
}

export interface DeploymentConfig {
  /** Unique id `<model>/<index>` or explicit. */
  id: string;
  provider: string;
  /** Model id the upstream expects (Azure: deployment name). */
  upstreamModel: string;
  region: string;
  /** USD per 1M tokens. */
  inputPricePerM: number;
  outputPricePerM: number;
  /** Prices of the other billed token kinds and the long-context tier (budget/cost.ts); unset = none configured. */
  prices?: DetailedPrices;
  contextWindow: number;
  weight: number;
  priority: number;
}

/**
 * USD per 1M tokens of each kind a provider bills differently. Unset: cache reads and writes cost the input price,
 * reasoning tokens the output price (what the base prices alone would charge).
 */
export interface DetailedPrices {
  cacheReadPerM?: number;
  /** Anthropic/Bedrock 5-minute cache writes (and any provider's cache writes without a TTL split). */
  cacheWrite5mPerM?: number;
  /** Anthropic 1-hour cache writes. */
  cacheWrite1hPerM?: number;
  reasoningPerM?: number;
  /** Above `aboveInputTokens` prompt tokens (cached ones included) the WHOLE request is priced at these rates. */
  longContext?: LongContextPrices;
}

export interface LongContextPrices {
  aboveInputTokens: number;
  inputPerM: number;
  outputPerM: number;
  cacheReadPerM?: number;
  cacheWrite5mPerM?: number;
  cacheWrite1hPerM?: number;
  reasoningPerM?: number;
}

export interface ModelConfig {
  /** Public name clients send in `model`. */
  name: string;
  aliases: string[];
  kind: 'chat' | 'embedding';
  /** How routing orders this model's deployments (service/routing). */
  strategy: 'priority' | 'weighted' | 'lowest-cost' | 'lowest-latency';
  deployments: DeploymentConfig[];
  /** Envoy chain clusters for in-request fallback (see docs/design/provider-fallback.md). */
  fallbackChains: FallbackChain[];
}

/** An Envoy cluster whose priorities are these deployments, in order; Envoy retries walk them. */
export interface FallbackChain {
  cluster: string;
  /** Deployment ids, priority 0 first. */
  deployments: string[];
}

export interface TenantConfig {
  name: string;
  /** Free-form attributes visible to policies as `tenant.*` (tier, regions, …). */
  attributes: Record<string, unknown>;
  timeZone: string;
}

export interface TeamConfig {
  name: string;
  tenant: string;
  attributes: Record<string, unknown>;
}

export interface VirtualKeyRecord {
  /** Public, non-secret id (shown in logs/lineage). */
  id: string;
  /** hex SHA-256 of the full secret key. */
  sha256: string;
  tenant: string;
  team?: string;
  user?: string;
  groups: string[];
  disabled: boolean;
  expiresAt?: string;
  /** Limits attached to the key itself (managed keys, service/identity/redis-key-store.ts). */
  limits?: KeyLimits;
}

/** What a managed key may do, on top of the policies: models allowed, a budget and rate limits of its own. */
export interface KeyLimits {
  /** Model names (as requested or canonical) this key may use; unset/empty → any the policies allow. */
  models?: string[];
  /** A hard USD budget per window for this key. */
  budget?: { usd: number; window: 'minute' | 'hour' | 'day' | 'month' };
  /** Requests / tokens per minute for this key. */
  rateLimit?: { rpm?: number; tpm?: number };
}

export interface JwtMapping {
  /** Key under `metadata_context.filter_metadata["envoy.filters.http.jwt_authn"]`. */
  payloadKey: string;
  tenantClaim: string;
  teamClaim: string;
  userClaim: string;
  groupsClaim: string;
}

export interface GatewaySettings {
  /** Largest request body accepted, bytes. */
  maxRequestBytes: number;
  /** Largest response body (buffered) or chunk (streamed) accepted, bytes. */
  maxResponseBytes: number;
  /** Bodies at least this large ask Envoy for `largeBodyTimeoutMs` (override_message_timeout); 0 = never. */
  largeBodyBytes: number;
  largeBodyTimeoutMs: number;
  /** Header name used for cluster selection. */
  clusterHeader: string;
  hostHeader: string;
  jwt: JwtMapping;
}

/** An MCP server (kind McpServer): clients reach it at `/mcp/<name>`; Tollgate routes to `cluster`. */
export interface McpServerConfig {
  name: string;
  cluster: string;
  host: string;
  /** Upstream path of the server's Streamable HTTP endpoint. */
  path: string;
  credential: CredentialSource;
  credentialHeader: string;
  credentialPrefix: string;
}
