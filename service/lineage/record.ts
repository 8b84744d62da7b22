// The lineage record: what happened to one request, and why. Mirrors proto/tollgate/lineage/v1/lineage.proto.
// The TS form is ergonomic for the request path (Dates, numbers, lowercase enums); toProtoJson() produces the
// proto3 JSON form every sink writes, fromProtoJson() reads it back (for `tollgate lineage` queries).
// There is deliberately no field for a credential: principals are identified by their public key id.

import { createHash } from 'node:crypto';
import type { RuleOutcome as PolicyRuleOutcome } from '../policy/types.ts';

/** Written in every new record. Version 1 records (rule outcomes folded into `matched`) still read back. */
export const LINEAGE_SCHEMA_VERSION = 2;

export type Outcome =
  | 'success'
  | 'denied'
  | 'budget_exceeded'
  | 'rate_limited'
  | 'provider_error'
  | 'client_error'
  | 'aborted'
  | 'gateway_error';

export type AuthMethod = 'none' | 'virtual_key' | 'jwt';
export type LineageClientApi = 'openai' | 'anthropic';
/** One per policy engine outcome (service/policy/types.ts RuleOutcome), nothing folded together. */
export type RuleResult = 'allow' | 'deny' | 'would_deny' | 'applied' | 'not_matched' | 'error' | 'skipped';
/**
 * Schema version 1 only, read back from old records: `deny`, `would_deny` or `applied` (and version 1's
 * `not_matched` may be a passed access check, i.e. `allow`). Never written by this version.
 */
export type LegacyRuleResult = 'matched';
export type Direction = 'request' | 'response';

export interface TraceIds {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** Tollgate's own span, 16 lowercase hex digits. */
  spanId: string;
  /** Caller's span from `traceparent`; absent when Tollgate started the trace. */
  parentSpanId?: string;
  sampled: boolean;
}

export interface Principal {
  keyId?: string;
  tenant?: string;
  team?: string;
  user?: string;
  authMethod: AuthMethod;
  groups?: string[];
}

export interface RequestInfo {
  clientApi?: LineageClientApi;
  /** Path as received, e.g. `/v1/chat/completions`. */
  endpoint: string;
  method?: string;
  requestedModel?: string;
  stream?: boolean;
  requestBytes?: number;
  responseBytes?: number;
  /** The client's own `x-request-id` (the record's `requestId` is always Tollgate's). */
  clientRequestId?: string;
}

export interface ServedBy {
  provider: string;
  model?: string;
  upstreamModel?: string;
  deployment?: string;
  cluster?: string;
  region?: string;
}

export interface Attempt {
  provider: string;
  deployment?: string;
  /** Upstream HTTP status; 0 when no response arrived. */
  status: number;
  latencyMs: number;
  errorClass?: string;
}

export interface RuleOutcome {
  policy: string;
  rule: string;
  /** deny | require | models | route | redact | budget | rateLimit | label | transform | matchCondition */
  kind: string;
  outcome: RuleResult | LegacyRuleResult;
  message?: string;
}

export interface DryRunDeny {
  policy: string;
  rule: string;
  message?: string;
}

/** A candidate (fallback model, or one deployment) a policy rule removed from the route. */
export interface DroppedCandidate {
  model: string;
  /** `model`, `models[0]`, … */
  param?: string;
  /** Set when a route rule removed this one deployment. */
  deployment?: string;
  policy: string;
  rule: string;
  message?: string;
}

export interface PolicyEvaluation {
  bundleRevision?: string;
  rules?: RuleOutcome[];
  dryRunDenies?: DryRunDeny[];
  labels?: Record<string, string>;
  droppedCandidates?: DroppedCandidate[];
}

export interface RedactionCount {
  detector: string;
  direction: Direction;
  action?: string;
  count: number;
  /** JSON paths of redacted values (never the values); capped at MAX_REDACTION_LOCATIONS on output. */
  locations?: string[];
}

export interface BudgetEffect {
  /** `<policy>/<rule>` that attached it. */
  name: string;
  scopeKey?: string;
  /** usd | input_tokens | output_tokens | total_tokens | requests */
  unit: string;
  limit?: number;
  reserved?: number;
  charged?: number;
  remaining?: number;
  enforcement?: 'hard' | 'soft';
  softLimitWarning?: boolean;
  failOpen?: boolean;
  exceeded?: boolean;
  /** End of the counter's calendar window (ms epoch; 0 = sliding). For the budget gauges; not part of the record. */
  resetAt?: number;
}

export interface TokenUsage {
  input: number;
  output: number;
  cached?: number;
  reasoning?: number;
  /** Input tokens written to the provider's prompt cache (included in `input`); `cacheWrite1h` of them with a 1-hour TTL. */
  cacheWrite?: number;
  cacheWrite1h?: number;
  estimated?: boolean;
  /** The charged counts differ from the provider's report: `missing` (none; estimated), `invalid`
   *  (negative / not a number; the reservation's count used), `clamped` (above the plausible maximum). */
  anomaly?: 'missing' | 'invalid' | 'clamped';
}

/** `costUsd` by billed token kind, at the serving deployment's catalog prices (USD). */
export interface CostBreakdown {
  inputUsd?: number;
  cacheReadUsd?: number;
  cacheWrite5mUsd?: number;
  cacheWrite1hUsd?: number;
  outputUsd?: number;
  reasoningUsd?: number;
  /** Priced at the deployment's long-context tier. */
  longContext?: boolean;
}

export interface Latencies {
  requestHeadersUs?: number;
  requestBodyUs?: number;
  responseHeadersUs?: number;
  responseBodyUs?: number;
  policyEvalUs?: number;
  redactionUs?: number;
  processingTotalUs?: number;
  upstreamTtfbMs?: number;
  upstreamTtftMs?: number;
  upstreamTotalMs?: number;
  totalMs?: number;
}

export interface ContentDigest {
  promptSha256?: string;
  responseSha256?: string;
  /** Only when a policy retains content. */
  prompt?: string;
  response?: string;
  retainedBy?: string;
}

export interface LineageRecord {
  schemaVersion?: number;
  requestId: string;
  decisionId: string;
  trace?: TraceIds;
  startTime: Date;
  endTime: Date;
  principal: Principal;
  request: RequestInfo;
  served?: ServedBy;
  attempts?: Attempt[];
  policy?: PolicyEvaluation;
  redactions?: RedactionCount[];
  budgets?: BudgetEffect[];
  tokens?: TokenUsage;
  costUsd?: number;
  costComponents?: CostBreakdown;
  latency?: Latencies;
  statusCode: number;
  outcome: Outcome;
  errorClass?: string;
  errorCode?: string;
  content?: ContentDigest;
  gatewayInstance?: string;
  /** MCP traffic only (service/mcp): the JSON-RPC message this record is about. */
  mcp?: McpCall;
  /** Admin audit events only (service/admin/audit.ts). */
  audit?: AdminAudit;
}

export interface McpCall {
  server: string;
  method?: string;
  tool?: string;
  jsonrpcId?: string;
  sessionId?: string;
  parentRequestId?: string;
  httpRequestId?: string;
  rpcErrorCode?: number;
  hiddenTools?: number;
  batchSize?: number;
}

export interface AdminAudit {
  action: string;
  actor: string;
  target?: string;
  detail?: Record<string, string>;
}

/** The proto3 JSON form of a record (plain JSON value). */
export type LineageRecordJson = Record<string, unknown>;

export const MAX_REDACTION_LOCATIONS = 32;

// ---- enum name mapping (TS lowercase ↔ proto ENUM_NAME) ----

const OUTCOMES: readonly Outcome[] = [
  'success',
  'denied',
  'budget_exceeded',
  'rate_limited',
  'provider_error',
  'client_error',
  'aborted',
  'gateway_error',
];
const AUTH_METHODS: readonly AuthMethod[] = ['none', 'virtual_key', 'jwt'];
const CLIENT_APIS: readonly LineageClientApi[] = ['openai', 'anthropic'];
const RULE_RESULTS: readonly (RuleResult | LegacyRuleResult)[] = [
  'allow',
  'deny',
  'would_deny',
  'applied',
  'not_matched',
  'error',
  'skipped',
  'matched',
];
/** Exhaustive over the policy engine's outcomes: a new one fails to compile until lineage records it. */
const RULE_RESULT_OF: Readonly<Record<PolicyRuleOutcome, RuleResult>> = {
  allow: 'allow',
  deny: 'deny',
  'would-deny': 'would_deny',
  applied: 'applied',
  'not-matched': 'not_matched',
  error: 'error',
  skipped: 'skipped',
};
const DIRECTIONS: readonly Direction[] = ['request', 'response'];

/** The lineage value for a policy rule outcome: the same outcome, never a coarser one. */
export function ruleResult(o: PolicyRuleOutcome): RuleResult {
  return RULE_RESULT_OF[o];
}

export function isOutcome(v: unknown): v is Outcome {
  return typeof v === 'string' && (OUTCOMES as readonly string[]).includes(v);
}

/** Enum names by value, per prefix: the value sets are small and fixed (anything past 64 is formatted each time). */
const enumNames = new Map<string, Map<string, string>>();

export function toEnum(prefix: string, v: string): string {
  let byValue = enumNames.get(prefix);
  if (!byValue) enumNames.set(prefix, (byValue = new Map()));
  let name = byValue.get(v);
  if (name === undefined) {
    name = `${prefix}_${v.toUpperCase()}`;
    if (byValue.size < 64) byValue.set(v, name);
  }
  return name;
}

function fromEnum<T extends string>(prefix: string, allowed: readonly T[], v: unknown): T | undefined {
  if (typeof v !== 'string' || !v.startsWith(prefix + '_')) return undefined;
  const s = v.slice(prefix.length + 1).toLowerCase();
  return (allowed as readonly string[]).includes(s) ? (s as T) : undefined;
}

// ---- TS → proto3 JSON ----

/** Last second formatted by ts(): records end within the same second, so most reuse its prefix. */
let tsSecond = NaN;
let tsPrefix = '';

/**
 * RFC 3339 in UTC, as the proto3 JSON mapping prints Timestamps: exactly Date#toISOString(), whose
 * `YYYY-MM-DDTHH:mm:ss.` part is cached per second (formatting a Date costs more than the rest of a field).
 */
export function ts(d: Date): string {
  const t = d instanceof Date ? d.getTime() : NaN;
  // Years 0000-9999 only (toISOString prints others with a sign); anything else, and invalid Dates (which
  // throw), take the plain path.
  if (!(t >= -62167219200000 && t <= 253402300799999)) return d.toISOString();
  const ms = ((t % 1000) + 1000) % 1000;
  const sec = t - ms;
  if (sec !== tsSecond) {
    tsPrefix = d.toISOString().slice(0, 20);
    tsSecond = sec;
  }
  return tsPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z';
}

export function u64(n: number): string {
  return String(Math.max(0, Math.trunc(n)));
}

export function u32(n: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.round(n)));
}

/** Proto3 JSON for doubles: numbers, or the strings "NaN" / "Infinity" / "-Infinity". */
export function dbl(n: number): number | string {
  if (Number.isFinite(n)) return n;
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? 'Infinity' : '-Infinity';
}

/** Sets `out[key]` only for present values, so absent optional fields stay absent. */
function put(out: Record<string, unknown>, key: string, v: unknown): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v) && v.length === 0) return;
  out[key] = v;
}

function opt<T, R>(v: T | undefined, f: (x: T) => R): R | undefined {
  return v === undefined ? undefined : f(v);
}

/** One rule outcome's proto JSON object. */
function ruleJsonUncached(x: RuleOutcome): Record<string, unknown> {
  const ro: Record<string, unknown> = {};
  put(ro, 'policy', x.policy);
  put(ro, 'rule', x.rule);
  put(ro, 'kind', x.kind);
  put(ro, 'outcome', toEnum('RULE_RESULT', x.outcome));
  put(ro, 'message', x.message);
  return ro;
}

/** The proto3 JSON object of a record (the file and Redis sinks write the same as text: json-line.ts toJsonLine). */
export function toProtoJson(r: LineageRecord): LineageRecordJson {
  const out: Record<string, unknown> = {};
  put(out, 'schemaVersion', r.schemaVersion ?? LINEAGE_SCHEMA_VERSION);
  put(out, 'requestId', r.requestId);
  put(out, 'decisionId', r.decisionId);
  if (r.trace) {
    const t: Record<string, unknown> = {};
    put(t, 'traceId', r.trace.traceId);
    put(t, 'spanId', r.trace.spanId);
    put(t, 'parentSpanId', r.trace.parentSpanId || undefined);
    put(t, 'sampled', r.trace.sampled);
    out.trace = t;
  }
  put(out, 'startTime', ts(r.startTime));
  put(out, 'endTime', ts(r.endTime));
  const p = r.principal;
  const principal: Record<string, unknown> = {};
  put(principal, 'keyId', p.keyId);
  put(principal, 'tenant', p.tenant);
  put(principal, 'team', p.team);
  put(principal, 'user', p.user);
  put(principal, 'authMethod', toEnum('AUTH_METHOD', p.authMethod));
  put(principal, 'groups', p.groups);
  out.principal = principal;
  const q = r.request;
  const request: Record<string, unknown> = {};
  put(request, 'clientApi', opt(q.clientApi, (v) => toEnum('CLIENT_API', v)));
  put(request, 'endpoint', q.endpoint);
  put(request, 'method', q.method);
  put(request, 'requestedModel', q.requestedModel);
  put(request, 'stream', q.stream);
  put(request, 'requestBytes', opt(q.requestBytes, u64));
  put(request, 'responseBytes', opt(q.responseBytes, u64));
  put(request, 'clientRequestId', q.clientRequestId);
  out.request = request;
  if (r.served) {
    const s = r.served;
    const served: Record<string, unknown> = {};
    put(served, 'provider', s.provider);
    put(served, 'model', s.model);
    put(served, 'upstreamModel', s.upstreamModel);
    put(served, 'deployment', s.deployment);
    put(served, 'cluster', s.cluster);
    put(served, 'region', s.region);
    out.served = served;
  }
  put(
    out,
    'attempts',
    r.attempts?.map((a) => {
      const o: Record<string, unknown> = {};
      put(o, 'provider', a.provider);
      put(o, 'deployment', a.deployment);
      put(o, 'status', u32(a.status));
      put(o, 'latencyMs', dbl(a.latencyMs));
      put(o, 'errorClass', a.errorClass);
      return o;
    }),
  );
  if (r.policy) {
    const pe = r.policy;
    const o: Record<string, unknown> = {};
    put(o, 'bundleRevision', pe.bundleRevision);
    put(o, 'rules', pe.rules?.map(ruleJsonUncached));
    put(
      o,
      'dryRunDenies',
      pe.dryRunDenies?.map((x) => {
        const d: Record<string, unknown> = {};
        put(d, 'policy', x.policy);
        put(d, 'rule', x.rule);
        put(d, 'message', x.message);
        return d;
      }),
    );
    if (pe.labels && Object.keys(pe.labels).length > 0) o.labels = { ...pe.labels };
    put(
      o,
      'droppedCandidates',
      pe.droppedCandidates?.map((x) => {
        const d: Record<string, unknown> = {};
        put(d, 'model', x.model);
        put(d, 'param', x.param);
        put(d, 'deployment', x.deployment);
        put(d, 'policy', x.policy);
        put(d, 'rule', x.rule);
        put(d, 'message', x.message);
        return d;
      }),
    );
    out.policy = o;
  }
  put(
    out,
    'redactions',
    r.redactions?.map((x) => {
      const o: Record<string, unknown> = {};
      put(o, 'detector', x.detector);
      put(o, 'direction', toEnum('DIRECTION', x.direction));
      put(o, 'action', x.action);
      put(o, 'count', u64(x.count));
      put(o, 'locations', x.locations?.slice(0, MAX_REDACTION_LOCATIONS));
      return o;
    }),
  );
  put(
    out,
    'budgets',
    r.budgets?.map((b) => {
      const o: Record<string, unknown> = {};
      put(o, 'name', b.name);
      put(o, 'scopeKey', b.scopeKey);
      put(o, 'unit', b.unit);
      put(o, 'limit', opt(b.limit, dbl));
      put(o, 'reserved', opt(b.reserved, dbl));
      put(o, 'charged', opt(b.charged, dbl));
      put(o, 'remaining', opt(b.remaining, dbl));
      put(o, 'enforcement', b.enforcement);
      put(o, 'softLimitWarning', b.softLimitWarning);
      put(o, 'failOpen', b.failOpen);
      put(o, 'exceeded', b.exceeded);
      return o;
    }),
  );
  if (r.tokens) {
    const t = r.tokens;
    const o: Record<string, unknown> = {};
    put(o, 'input', u64(t.input));
    put(o, 'output', u64(t.output));
    put(o, 'cached', opt(t.cached, u64));
    put(o, 'reasoning', opt(t.reasoning, u64));
    put(o, 'cacheWrite', opt(t.cacheWrite, u64));
    put(o, 'cacheWrite1h', opt(t.cacheWrite1h, u64));
    put(o, 'estimated', t.estimated);
    put(o, 'anomaly', t.anomaly);
    out.tokens = o;
  }
  put(out, 'costUsd', opt(r.costUsd, dbl));
  if (r.costComponents) {
    const c = r.costComponents;
    const o: Record<string, unknown> = {};
    put(o, 'inputUsd', opt(c.inputUsd, dbl));
    put(o, 'cacheReadUsd', opt(c.cacheReadUsd, dbl));
    put(o, 'cacheWrite5mUsd', opt(c.cacheWrite5mUsd, dbl));
    put(o, 'cacheWrite1hUsd', opt(c.cacheWrite1hUsd, dbl));
    put(o, 'outputUsd', opt(c.outputUsd, dbl));
    put(o, 'reasoningUsd', opt(c.reasoningUsd, dbl));
    put(o, 'longContext', c.longContext);
    out.costComponents = o;
  }
  if (r.latency) {
    const l = r.latency;
    const o: Record<string, unknown> = {};
    put(o, 'requestHeadersUs', opt(l.requestHeadersUs, u32));
    put(o, 'requestBodyUs', opt(l.requestBodyUs, u32));
    put(o, 'responseHeadersUs', opt(l.responseHeadersUs, u32));
    put(o, 'responseBodyUs', opt(l.responseBodyUs, u32));
    put(o, 'policyEvalUs', opt(l.policyEvalUs, u32));
    put(o, 'redactionUs', opt(l.redactionUs, u32));
    put(o, 'processingTotalUs', opt(l.processingTotalUs, u32));
    put(o, 'upstreamTtfbMs', opt(l.upstreamTtfbMs, dbl));
    put(o, 'upstreamTtftMs', opt(l.upstreamTtftMs, dbl));
    put(o, 'upstreamTotalMs', opt(l.upstreamTotalMs, dbl));
    put(o, 'totalMs', opt(l.totalMs, dbl));
    out.latency = o;
  }
  put(out, 'statusCode', u32(r.statusCode));
  put(out, 'outcome', toEnum('OUTCOME', r.outcome));
  put(out, 'errorClass', r.errorClass);
  put(out, 'errorCode', r.errorCode);
  if (r.content) {
    const c = r.content;
    const o: Record<string, unknown> = {};
    put(o, 'promptSha256', c.promptSha256);
    put(o, 'responseSha256', c.responseSha256);
    put(o, 'prompt', c.prompt);
    put(o, 'response', c.response);
    put(o, 'retainedBy', c.retainedBy);
    out.content = o;
  }
  put(out, 'gatewayInstance', r.gatewayInstance);
  if (r.mcp) {
    const m = r.mcp;
    const o: Record<string, unknown> = {};
    put(o, 'server', m.server);
    put(o, 'method', m.method);
    put(o, 'tool', m.tool);
    put(o, 'jsonrpcId', m.jsonrpcId);
    put(o, 'sessionId', m.sessionId);
    put(o, 'parentRequestId', m.parentRequestId);
    put(o, 'httpRequestId', m.httpRequestId);
    put(o, 'rpcErrorCode', m.rpcErrorCode);
    put(o, 'hiddenTools', m.hiddenTools);
    put(o, 'batchSize', m.batchSize);
    out.mcp = o;
  }
  if (r.audit) {
    const a: Record<string, unknown> = {};
    put(a, 'action', r.audit.action);
    put(a, 'actor', r.audit.actor);
    put(a, 'target', r.audit.target);
    if (r.audit.detail && Object.keys(r.audit.detail).length) a.detail = { ...r.audit.detail };
    out.audit = a;
  }
  return out;
}

// ---- proto3 JSON → TS (lenient: unknown fields ignored, so newer compatible records still read) ----

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    const n = Number(v);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}
function bool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}
function usageAnomaly(v: unknown): TokenUsage['anomaly'] {
  return v === 'missing' || v === 'invalid' || v === 'clamped' ? v : undefined;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function date(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Drops keys whose value is undefined so records compare and print cleanly. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * Reads the proto3 JSON form back. Returns undefined when the mandatory core (ids, times, outcome) is
 * unreadable; use validateLineageRecord() for a full, strict check.
 */
export function fromProtoJson(json: unknown): LineageRecord | undefined {
  const j = obj(json);
  if (!j) return undefined;
  const startTime = date(j.startTime);
  const endTime = date(j.endTime);
  const outcome = fromEnum('OUTCOME', OUTCOMES, j.outcome);
  const requestId = str(j.requestId);
  if (!startTime || !endTime || !outcome || requestId === undefined) return undefined;
  const p = obj(j.principal) ?? {};
  const q = obj(j.request) ?? {};
  const rec: LineageRecord = {
    schemaVersion: num(j.schemaVersion),
    requestId,
    decisionId: str(j.decisionId) ?? '',
    startTime,
    endTime,
    principal: clean({
      keyId: str(p.keyId),
      tenant: str(p.tenant),
      team: str(p.team),
      user: str(p.user),
      authMethod: fromEnum('AUTH_METHOD', AUTH_METHODS, p.authMethod) ?? 'none',
      groups: Array.isArray(p.groups) ? p.groups.filter((g): g is string => typeof g === 'string') : undefined,
    }),
    request: clean({
      clientApi: fromEnum('CLIENT_API', CLIENT_APIS, q.clientApi),
      endpoint: str(q.endpoint) ?? '',
      method: str(q.method),
      requestedModel: str(q.requestedModel),
      stream: bool(q.stream),
      requestBytes: num(q.requestBytes),
      responseBytes: num(q.responseBytes),
      clientRequestId: str(q.clientRequestId),
    }),
    statusCode: num(j.statusCode) ?? 0,
    outcome,
  };
  const t = obj(j.trace);
  if (t)
    rec.trace = clean({
      traceId: str(t.traceId) ?? '',
      spanId: str(t.spanId) ?? '',
      parentSpanId: str(t.parentSpanId),
      sampled: bool(t.sampled) ?? false,
    });
  const s = obj(j.served);
  if (s)
    rec.served = clean({
      provider: str(s.provider) ?? '',
      model: str(s.model),
      upstreamModel: str(s.upstreamModel),
      deployment: str(s.deployment),
      cluster: str(s.cluster),
      region: str(s.region),
    });
  if (Array.isArray(j.attempts))
    rec.attempts = arr(j.attempts).map((x) => {
      const a = obj(x) ?? {};
      return clean({
        provider: str(a.provider) ?? '',
        deployment: str(a.deployment),
        status: num(a.status) ?? 0,
        latencyMs: num(a.latencyMs) ?? 0,
        errorClass: str(a.errorClass),
      });
    });
  const pe = obj(j.policy);
  if (pe) {
    const labels = obj(pe.labels);
    rec.policy = clean({
      bundleRevision: str(pe.bundleRevision),
      rules: Array.isArray(pe.rules)
        ? arr(pe.rules).map((x) => {
            const o = obj(x) ?? {};
            return clean({
              policy: str(o.policy) ?? '',
              rule: str(o.rule) ?? '',
              kind: str(o.kind) ?? '',
              outcome: fromEnum('RULE_RESULT', RULE_RESULTS, o.outcome) ?? 'skipped',
              message: str(o.message),
            });
          })
        : undefined,
      dryRunDenies: Array.isArray(pe.dryRunDenies)
        ? arr(pe.dryRunDenies).map((x) => {
            const o = obj(x) ?? {};
            return clean({ policy: str(o.policy) ?? '', rule: str(o.rule) ?? '', message: str(o.message) });
          })
        : undefined,
      labels: labels
        ? Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'))
        : undefined,
      droppedCandidates: Array.isArray(pe.droppedCandidates)
        ? arr(pe.droppedCandidates).map((x) => {
            const o = obj(x) ?? {};
            return clean({
              model: str(o.model) ?? '',
              param: str(o.param),
              deployment: str(o.deployment),
              policy: str(o.policy) ?? '',
              rule: str(o.rule) ?? '',
              message: str(o.message),
            });
          })
        : undefined,
    });
  }
  if (Array.isArray(j.redactions))
    rec.redactions = arr(j.redactions).map((x) => {
      const o = obj(x) ?? {};
      return clean({
        detector: str(o.detector) ?? '',
        direction: fromEnum('DIRECTION', DIRECTIONS, o.direction) ?? 'request',
        action: str(o.action),
        count: num(o.count) ?? 0,
        locations: Array.isArray(o.locations)
          ? o.locations.filter((l): l is string => typeof l === 'string')
          : undefined,
      });
    });
  if (Array.isArray(j.budgets))
    rec.budgets = arr(j.budgets).map((x) => {
      const o = obj(x) ?? {};
      const enforcement = str(o.enforcement);
      return clean({
        name: str(o.name) ?? '',
        scopeKey: str(o.scopeKey),
        unit: str(o.unit) ?? '',
        limit: num(o.limit),
        reserved: num(o.reserved),
        charged: num(o.charged),
        remaining: num(o.remaining),
        enforcement: enforcement === 'hard' || enforcement === 'soft' ? enforcement : undefined,
        softLimitWarning: bool(o.softLimitWarning),
        failOpen: bool(o.failOpen),
        exceeded: bool(o.exceeded),
      });
    });
  const tk = obj(j.tokens);
  if (tk)
    rec.tokens = clean({
      input: num(tk.input) ?? 0,
      output: num(tk.output) ?? 0,
      cached: num(tk.cached),
      reasoning: num(tk.reasoning),
      cacheWrite: num(tk.cacheWrite),
      cacheWrite1h: num(tk.cacheWrite1h),
      estimated: bool(tk.estimated),
      anomaly: usageAnomaly(tk.anomaly),
    });
  const cost = num(j.costUsd);
  if (cost !== undefined) rec.costUsd = cost;
  const cc = obj(j.costComponents);
  if (cc)
    rec.costComponents = clean({
      inputUsd: num(cc.inputUsd),
      cacheReadUsd: num(cc.cacheReadUsd),
      cacheWrite5mUsd: num(cc.cacheWrite5mUsd),
      cacheWrite1hUsd: num(cc.cacheWrite1hUsd),
      outputUsd: num(cc.outputUsd),
      reasoningUsd: num(cc.reasoningUsd),
      longContext: bool(cc.longContext),
    });
  const l = obj(j.latency);
  if (l)
    rec.latency = clean({
      requestHeadersUs: num(l.requestHeadersUs),
      requestBodyUs: num(l.requestBodyUs),
      responseHeadersUs: num(l.responseHeadersUs),
      responseBodyUs: num(l.responseBodyUs),
      policyEvalUs: num(l.policyEvalUs),
      redactionUs: num(l.redactionUs),
      processingTotalUs: num(l.processingTotalUs),
      upstreamTtfbMs: num(l.upstreamTtfbMs),
      upstreamTtftMs: num(l.upstreamTtftMs),
      upstreamTotalMs: num(l.upstreamTotalMs),
      totalMs: num(l.totalMs),
    });
  const ec = str(j.errorClass);
  if (ec !== undefined) rec.errorClass = ec;
  const ecode = str(j.errorCode);
  if (ecode !== undefined) rec.errorCode = ecode;
  const c = obj(j.content);
  if (c)
    rec.content = clean({
      promptSha256: str(c.promptSha256),
      responseSha256: str(c.responseSha256),
      prompt: str(c.prompt),
      response: str(c.response),
      retainedBy: str(c.retainedBy),
    });
  const gi = str(j.gatewayInstance);
  if (gi !== undefined) rec.gatewayInstance = gi;
  const m = obj(j.mcp);
  if (m)
    rec.mcp = clean({
      server: str(m.server) ?? '',
      method: str(m.method),
      tool: str(m.tool),
      jsonrpcId: str(m.jsonrpcId),
      sessionId: str(m.sessionId),
      parentRequestId: str(m.parentRequestId),
      httpRequestId: str(m.httpRequestId),
      rpcErrorCode: num(m.rpcErrorCode),
      hiddenTools: num(m.hiddenTools),
      batchSize: num(m.batchSize),
    });
  const au = obj(j.audit);
  const action = str(au?.action);
  const actor = str(au?.actor);
  if (au && action !== undefined && actor !== undefined) {
    const detail: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(au.detail) ?? {})) if (typeof v === 'string') detail[k] = v;
    rec.audit = clean({ action, actor, target: str(au.target), detail: Object.keys(detail).length ? detail : undefined });
  }
  return clean(rec);
}

/** Hex SHA-256 of content (prompt or response text), for `content.promptSha256` / `responseSha256`. */
export function contentSha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}
