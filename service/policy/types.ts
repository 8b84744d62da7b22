// Public types of the policy engine: what the request path hands in (PolicyInput), what it gets
// back (Decision), and the compiled bundle.
import type { Principal } from '../identity/principal.ts';
import type { BudgetSpec, RateLimitSpec } from '../budget/types.ts';
import type { CustomDetectorSpec, RedactionRule } from '../redaction/types.ts';

export interface PolicyMessage {
  role: string;
  text: string;
}

export interface PolicyInput {
  request: {
    method: string;
    path: string;
    /** 'chat' | 'messages' | 'responses' | 'embeddings' | 'models' | 'completions' | 'other' */
    endpoint: string;
    api: 'openai' | 'anthropic';
    /** Lower-cased; internal x-tollgate-* and credentials stripped. */
    headers: Record<string, string>;
    model: string;
    /**
     * The catalog's canonical name of `model` when the client named it by an alias (set by the
     * gateway; absent or equal to `model` otherwise). `models` rules and `model`-scoped budgets
     * use it so an alias cannot bypass a rule written against the model's name.
     */
    canonicalModel?: string;
    stream: boolean;
    /** Every other top-level body field (temperature, max_tokens, tools, …). */
    params: Record<string, unknown>;
    /** Text of every message (parts joined), system prompt included as role `system`. */
    messages: PolicyMessage[];
    tokenEstimate: number;
    /** Body size in bytes. */
    size: number;
    /** The parsed body; transforms mutate it in place. */
    body: Record<string, unknown>;
  };
  /** Who is calling (service/identity): the same shape the gateway authenticates. */
  principal: Principal;
  /** `timeZone`: the Tenant's IANA time zone (config `timeZone`, default UTC), e.g. for `now.getHours(tenant.timeZone)`. */
  tenant: { name: string; attributes: Record<string, unknown>; timeZone?: string };
  team: { name: string; attributes: Record<string, unknown> };
  /** Set for MCP traffic (service/mcp): the JSON-RPC message being judged. */
  mcp?: McpContext;
  now: Date;
}

/** The `mcp` CEL variable (docs/mcp.md). */
export interface McpContext {
  /** McpServer name (the `/mcp/<server>` path). */
  server: string;
  /** JSON-RPC method, e.g. `tools/call`, `tools/list`, `resources/read`. */
  method: string;
  /** `params.name` of a tools/call (or prompts/get); '' otherwise. */
  tool: string;
  /** `params.arguments` of a tools/call or prompts/get; {} otherwise. */
  arguments: Record<string, unknown>;
  /** Mcp-Session-Id, '' before initialize. */
  sessionId: string;
}

// The `deployment` variable of route rules: routing's view of a candidate deployment.
import type { DeploymentInfo, RouteCheckResult } from '../routing/types.ts';
export type { DeploymentInfo, RouteCheckResult };

export type RuleKind =
  | 'deny'
  | 'require'
  | 'models'
  | 'route'
  | 'redact'
  | 'budget'
  | 'rateLimit'
  | 'transform'
  | 'label'
  | McpRuleKind;

/** Rule kinds that judge MCP traffic only (service/policy/mcp.ts); LLM requests never evaluate them. */
export type McpRuleKind = 'mcpTools' | 'mcpDeny' | 'mcpRequire' | 'mcpRedact' | 'mcpRateLimit' | 'mcpLabel';
export const MCP_RULE_KINDS: readonly McpRuleKind[] = ['mcpTools', 'mcpDeny', 'mcpRequire', 'mcpRedact', 'mcpRateLimit', 'mcpLabel'];

export type RuleOutcome = 'allow' | 'deny' | 'would-deny' | 'error' | 'skipped' | 'applied' | 'not-matched';

export interface RuleRecord {
  policy: string;
  /** Rule name; `matchConditions/<name>` for a policy's match condition. */
  rule: string;
  kind: RuleKind | 'matchCondition';
  outcome: RuleOutcome;
  durationUs: number;
  message?: string;
}

export interface Denial {
  status: number;
  /** Machine-readable reason (the client error `code`), e.g. `policy_denied`, `model_not_allowed`. */
  reason: string;
  message: string;
  /** `<policy>/<rule>` */
  rule: string;
}

export interface Decision {
  /** Random 32-hex-char decision id. */
  id: string;
  revision: string;
  /** The first enforce-mode denial; absent when the request may proceed. */
  denied?: Denial;
  rules: RuleRecord[];
  /** Checks one candidate deployment against every active route rule. */
  routeCheck(d: DeploymentInfo): RouteCheckResult;
  /**
   * The outcome for one candidate model of this request (the primary, an OpenRouter `models`
   * fallback, what an alias or wildcard resolves to): what a request naming that model would get.
   * Only rules whose outcome can depend on the model are evaluated again. For any model but the
   * primary this needs `evaluate(…, { candidates: true })`; without it the verdict is a denial.
   */
  forModel(model: string, canonicalModel?: string): ModelVerdict;
  redactions: RedactionRule[];
  customDetectors: CustomDetectorSpec[];
  budgets: BudgetSpec[];
  rateLimits: RateLimitSpec[];
  /** `<policy>/<rule>` of each transform applied to input.request.body, in order. */
  transforms: string[];
  labels: Record<string, string>;
  dryRunDenials: { rule: string; message: string }[];
}

/** What the mcp* rules decided for one MCP JSON-RPC message. */
export interface McpDecision {
  id: string;
  revision: string;
  /** The first enforce-mode denial; absent when the message may proceed. */
  denied?: Denial;
  rules: RuleRecord[];
  /** Redaction of tool arguments (and, with `responses`, of results). */
  redactions: RedactionRule[];
  customDetectors: CustomDetectorSpec[];
  /** Call-count budgets (`limit.requests`) of mcpRateLimit rules. */
  budgets: BudgetSpec[];
  labels: Record<string, string>;
  dryRunDenials: { rule: string; message: string }[];
}

/** The policy outcome for one candidate model of a request (see Decision.forModel). */
export interface ModelVerdict {
  /** The model as the client named it. */
  model: string;
  /**
   * Why this model may not serve the request: an enforce-mode access rule denies it, or a
   * redact / transform rule applies to it that the request (as evaluated for its primary) did not get.
   */
  denied?: Denial;
  /** Budgets and rate limits to admit when this model serves the request. */
  budgets: BudgetSpec[];
  rateLimits: RateLimitSpec[];
  /** Route rules in force for this model, checked against one of its deployments. */
  routeCheck(d: DeploymentInfo): RouteCheckResult;
}

export interface PolicyBundle {
  /** Content hash of all policy documents (16 hex chars). */
  revision: string;
  /** Policy names in evaluation order. */
  readonly policies: readonly string[];
  evaluate(input: PolicyInput, opts?: EvaluateOptions): Decision;
  /**
   * One MCP JSON-RPC message (`input.mcp` set): only the mcp* rules, after each policy's
   * matchConditions. `listing`: judge a tool for a tools/list answer (no arguments yet: rules reading
   * `mcp.arguments` are skipped, and nothing but access is decided).
   */
  evaluateMcp(input: PolicyInput & { mcp: McpContext }, opts?: { listing?: boolean }): McpDecision;
}

export interface EvaluateOptions {
  /**
   * `GET /v1/models`: judge each model as if requested, but skip access rules (deny, require,
   * models) that read request content — messages, body, params, size, token estimate, stream —
   * since a listing has none; otherwise a `require` on content would hide every model.
   */
  listing?: boolean;
  /**
   * The request names other candidate models (OpenRouter `models` fallbacks): keep what
   * Decision.forModel needs to judge each of them (the request's activation). Off by default, so
   * a request without fallbacks retains nothing extra.
   */
  candidates?: boolean;
}

/** Reported for every evaluation error (wire to a metrics counter). */
export interface PolicyErrorEvent {
  policy: string;
  rule: string;
  kind: string;
  message: string;
}

export interface CompileOptions {
  /** Clock used where an input carries none (policy tests); defaults to `() => new Date()`. */
  now?: () => Date;
  /** Called on every evaluation error (after fail-closed/skip handling). Must not throw. */
  onEvalError?: (e: PolicyErrorEvent) => void;
  /**
   * Detector names redact rules may use besides their policies' custom detectors. Defaults to
   * redaction's built-ins and groups (`*`, pii, secrets, …).
   */
  knownDetectors?: readonly string[];
  /**
   * Sample-evaluate every expression at load (default true). false only for a bundle already
   * sample-checked elsewhere: a hot reload checks in a worker thread, then compiles on the main one.
   */
  sampleCheck?: boolean;
  /**
   * Reuse the values of caller-constant expressions across requests of one caller (default true;
   * ./caller-cache.ts). false evaluates everything every time (the reference the cache is tested against).
   */
  callerCache?: boolean;
  /**
   * Remember, per deployment, the outcome of route rules that read only `deployment` fields (default true;
   * ./evaluate.ts RouteMemo). false evaluates them on every check (the reference the memo is tested against).
   */
  routeCache?: boolean;
}
