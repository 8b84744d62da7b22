// Prometheus metrics for Tollgate, on a private prom-client Registry (never the global one) so tests and
// several instances in one process stay independent. Label cardinality is bounded: tenants, models, providers,
// policies, detectors and budgets come from config (setKnownLabels) and anything else becomes `other`; no user
// ids, key ids or request ids are ever labels.
//
// GenAI metrics follow the OpenTelemetry GenAI semantic conventions (gen_ai.client.token.usage,
// gen_ai.client.operation.duration, gen_ai.client.operation.time_to_first_chunk) with their advised buckets,
// translated to Prometheus names (dots → underscores, unit suffix).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LineageRecord } from '../lineage/record.ts';
import { BudgetScopeGauges } from './budget-gauges.ts';
import { BoundCounter, BoundHistogram } from './bound-series.ts';

export const OTHER = 'other';
export const NONE = 'none';

export type LabelKind = 'tenant' | 'model' | 'provider' | 'policy' | 'detector' | 'budget' | 'mcp_server' | 'mcp_tool';

export interface KnownLabels {
  tenants?: Iterable<string>;
  models?: Iterable<string>;
  providers?: Iterable<string>;
  policies?: Iterable<string>;
  detectors?: Iterable<string>;
  budgets?: Iterable<string>;
  mcpServers?: Iterable<string>;
}

export interface MetricsOptions {
  /** Also collect Node process metrics (process_*, nodejs_*). Default true. */
  collectDefault?: boolean;
  /** For a label kind with no known set: distinct values accepted before the rest become `other`. Default 100. */
  maxDistinctPerLabel?: number;
  known?: KnownLabels;
  /** Clock for budget windows (tests). Default Date.now. */
  now?: () => number;
  /** Budget scopes remembered for the budget gauges (default 100,000). */
  maxBudgetScopes?: number;
}

const MAX_LABEL_LENGTH = 128;

/** Maps a raw label value to a bounded one: known values pass, unknown ones become `other`. */
class LabelClamp {
  private allowed: Set<string> | undefined;
  private readonly seen = new Set<string>();
  constructor(private readonly maxDistinct: number) {}

  setAllowed(values: Iterable<string> | undefined): void {
    this.allowed = values === undefined ? undefined : new Set(values);
  }

  clamp(v: string | undefined): string {
    if (v === undefined || v === '') return NONE;
    if (v.length > MAX_LABEL_LENGTH) return OTHER;
    if (this.allowed) return this.allowed.has(v) ? v : OTHER;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.maxDistinct) return OTHER;
    this.seen.add(v);
    return v;
  }
}

const KNOWN_STATUSES = new Set([
  200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 451, 499, 500, 501, 502, 503, 504,
]);

/** The known codes' label strings, made once (not a String() per request). */
const KNOWN_STATUS_LABELS = new Map([...KNOWN_STATUSES].map((c) => [c, String(c)]));

/** HTTP status as a bounded label: common codes verbatim, the rest as `4xx` / `5xx` / …; 0 → `none`. */
export function statusLabel(code: number | undefined): string {
  if (!code) return NONE;
  const known = KNOWN_STATUS_LABELS.get(code);
  if (known !== undefined) return known;
  return code >= 100 && code < 600 ? `${Math.floor(code / 100)}xx` : OTHER;
}

/** GenAI semconv `gen_ai.operation.name` from the endpoint path. */
export function operationName(endpoint: string | undefined): string {
  if (!endpoint) return OTHER;
  const q = endpoint.indexOf('?');
  const p = q < 0 ? endpoint : endpoint.slice(0, q);
  if (p.endsWith('/chat/completions') || p.endsWith('/messages') || p.endsWith('/responses')) return 'chat';
  if (p.endsWith('/embeddings')) return 'embeddings';
  if (p.endsWith('/completions')) return 'text_completion';
  return OTHER;
}

const GENAI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const GENAI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const GENAI_TTFC_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Tollgate's own processing: microseconds to tens of milliseconds. */
const PROCESSING_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

export type Phase = 'request_headers' | 'request_body' | 'response_headers' | 'response_body' | 'total';

export interface Metrics {
  readonly registry: Registry;
  /** Requests by tenant / model / provider / decision (the request's outcome) / HTTP status. */
  readonly requests: Counter<'tenant' | 'model' | 'provider' | 'decision' | 'status'>;
  /** Tokens by tenant / model / provider / type (input | output | cached | reasoning). */
  readonly tokens: Counter<'tenant' | 'model' | 'provider' | 'type'>;
  readonly costUsd: Counter<'tenant' | 'model' | 'provider'>;
  readonly genAiTokenUsage: Histogram<
    'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model' | 'gen_ai_token_type'
  >;
  readonly genAiOperationDuration: Histogram<
    'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model' | 'error_type'
  >;
  readonly genAiTimeToFirstChunk: Histogram<'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model'>;
  /** Tollgate's own processing time per ext_proc phase (and `total`), seconds. */
  readonly processingDuration: Histogram<'phase'>;
  readonly policyEvalDuration: Histogram<never>;
  readonly policyEvalErrors: Counter<'policy'>;
  /** Rules in dryRun mode that would have denied (the request proceeded). */
  readonly policyDryRunDenials: Counter<'policy'>;
  readonly redactions: Counter<'detector' | 'direction'>;
  /** Least remaining over the budget's scopes (budget-gauges.ts), read at scrape time. */
  readonly budgetRemaining: Gauge<'budget' | 'tenant' | 'unit'>;
  /** Largest charged / limit over the budget's scopes in their current windows, 0..1+. */
  readonly budgetUtilization: Gauge<'budget' | 'tenant' | 'unit'>;
  /** Every budget scope's latest value, behind the two gauges above. */
  readonly budgetScopes: BudgetScopeGauges;
  readonly budgetSoftLimitWarnings: Counter<'budget' | 'tenant'>;
  readonly budgetExceeded: Counter<'budget' | 'tenant'>;
  readonly budgetFailOpen: Counter<'budget'>;
  /** Requests charged other than the provider reported (lineage `tokens.anomaly`: missing | invalid | clamped). */
  readonly usageAnomalies: Counter<'provider' | 'anomaly'>;
  readonly upstreamAttempts: Counter<'provider' | 'status'>;
  /** Counted by the upstream stage, once per Envoy attempt on a fallback chain, on whichever replica ran it. */
  readonly chainAttempts: Counter<'provider' | 'status'>;
  readonly upstreamDuration: Histogram<'provider'>;
  readonly upstreamTimeToFirstByte: Histogram<'provider'>;
  readonly upstreamTimeToFirstToken: Histogram<'provider'>;
  // lineage pipeline health
  readonly lineageEmitted: Counter<never>;
  readonly lineageQueueDepth: Gauge<never>;
  readonly lineageWritten: Counter<'sink'>;
  readonly lineageFailed: Counter<'sink'>;
  readonly lineageDropped: Counter<'sink' | 'reason'>;
  readonly lineageSpooled: Counter<'sink'>;
  readonly lineageReplayed: Counter<'sink'>;
  readonly lineageDuplicates: Counter<'sink'>;
  readonly lineageSinkUp: Gauge<'sink'>;
  readonly lineageSpoolBytes: Gauge<'sink'>;
  readonly lineageSpoolCapacityBytes: Gauge<'sink'>;
  readonly lineageSpoolRecords: Gauge<'sink'>;
  readonly lineageSpoolNearFull: Gauge<'sink'>;
  // tracing export
  readonly otlpSpansExported: Counter<never>;
  readonly otlpSpansDropped: Counter<'reason'>;
  // config
  readonly configReloads: Counter<'result'>;
  /** ext_proc streams failed because Envoy sent a message out of order (a protocol bug or a misconfiguration). */
  readonly extprocProtocolErrors: Counter<never>;
  /** ext_proc streams the server refused (max_streams) or cut (idle_timeout) itself. */
  readonly extprocStreamsCut: Counter<'reason'>;
  /** Refused credentials: ext_proc streams (surface grpc) and admin HTTP requests (surface admin). */
  readonly authFailures: Counter<'surface' | 'reason'>;
  readonly keyLookups: Counter<'result'>;
  readonly configInfo: Gauge<'revision'>;
  // MCP (service/mcp): one count per JSON-RPC message
  readonly mcpCalls: Counter<'server' | 'method' | 'tool' | 'tenant' | 'decision'>;
  readonly mcpCallDuration: Histogram<'server' | 'method'>;
  readonly mcpToolsHidden: Counter<'server' | 'tenant'>;
  readonly configLastReloadSuccess: Gauge<never>;

  /** Clamp a raw value for a config-bounded label. */
  label(kind: LabelKind, value: string | undefined): string;
  /** Sets the known label values (call at startup and on every config reload). Undefined = keep as is. */
  setKnownLabels(known: KnownLabels): void;
  /** Counts a config (re)load; on success also publishes the revision as `tollgate_config_info{revision}`. */
  recordConfigReload(ok: boolean, revision?: string): void;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.collectDefault ?? true) collectDefaultMetrics({ register: registry });
  const maxDistinct = opts.maxDistinctPerLabel ?? 100;
  const clamps: Record<LabelKind, LabelClamp> = {
    tenant: new LabelClamp(maxDistinct),
    model: new LabelClamp(maxDistinct),
    provider: new LabelClamp(maxDistinct),
    policy: new LabelClamp(maxDistinct),
    detector: new LabelClamp(maxDistinct),
    budget: new LabelClamp(maxDistinct),
    mcp_server: new LabelClamp(maxDistinct),
    // Tool names come from clients: the first maxDistinct seen are kept, the rest become `other`.
    mcp_tool: new LabelClamp(maxDistinct),
  };
  const registers = [registry];

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
    new Gauge<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: number[],
  ): Histogram<L> => new Histogram<L>({ name, help, labelNames, buckets, registers });

  const revisionHolder: { current: string | undefined } = { current: undefined };
  const budgetScopes = new BudgetScopeGauges(opts.now, opts.maxBudgetScopes);
  const budgetGauge = (name: string, help: string, pick: (s: ReturnType<BudgetScopeGauges['samples']>[number]) => number | undefined): Gauge<'budget' | 'tenant' | 'unit'> =>
    new Gauge<'budget' | 'tenant' | 'unit'>({
      name,
      help,
      labelNames: ['budget', 'tenant', 'unit'],
      registers,
      collect() {
        this.reset();
        for (const s of budgetScopes.samples()) {
          const v = pick(s);
          if (v !== undefined) this.set(s.labels, v);
        }
      },
    });

  const m: Metrics = {
    registry,
    requests: counter('tollgate_requests_total', 'Requests handled, by tenant, model, provider, decision and HTTP status.', [
      'tenant',
      'model',
      'provider',
      'decision',
      'status',
    ]),
    tokens: counter('tollgate_tokens_total', 'Tokens used, by tenant, model, provider and type.', [
      'tenant',
      'model',
      'provider',
      'type',
    ]),
    costUsd: counter('tollgate_cost_usd_total', 'Cost charged in US dollars.', ['tenant', 'model', 'provider']),
    genAiTokenUsage: histogram(
      'gen_ai_client_token_usage',
      'Number of input and output tokens used per operation (OTel GenAI gen_ai.client.token.usage).',
      ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model', 'gen_ai_token_type'],
      GENAI_TOKEN_BUCKETS,
    ),
    genAiOperationDuration: histogram(
      'gen_ai_client_operation_duration_seconds',
      'GenAI operation duration as seen by Tollgate (OTel GenAI gen_ai.client.operation.duration).',
      ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model', 'error_type'],
      GENAI_DURATION_BUCKETS,
    ),
    genAiTimeToFirstChunk: histogram(
      'gen_ai_client_operation_time_to_first_chunk_seconds',
      'Time to the first streamed chunk (OTel GenAI gen_ai.client.operation.time_to_first_chunk).',
      ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model'],
      GENAI_TTFC_BUCKETS,
    ),
    processingDuration: histogram(
      'tollgate_processing_duration_seconds',
      "Tollgate's own processing time per ext_proc phase (total = all phases of a request).",
      ['phase'],
      PROCESSING_BUCKETS,
    ),
    policyEvalDuration: histogram(
      'tollgate_policy_evaluation_duration_seconds',
      'Time to evaluate all policies for one request.',
      [],
      PROCESSING_BUCKETS,
    ),
    policyEvalErrors: counter(
      'tollgate_policy_evaluation_errors_total',
      'Policy rule evaluations that failed (the rule failed closed unless configured otherwise).',
      ['policy'],
    ),
    policyDryRunDenials: counter(
      'tollgate_policy_dry_run_denials_total',
      'Requests a dryRun rule would have denied (they proceeded): watch this before switching to enforce.',
      ['policy'],
    ),
    redactions: counter('tollgate_redactions_total', 'Values redacted, by detector and direction.', [
      'detector',
      'direction',
    ]),
    budgetRemaining: budgetGauge(
      'tollgate_budget_remaining',
      'Least remaining over the budget\'s scopes (keys, teams, users, …) in their current windows (unit label: usd, tokens, …).',
      (s) => s.remaining,
    ),
    budgetUtilization: budgetGauge(
      'tollgate_budget_utilization_ratio',
      'Share of the limit used by the budget\'s most-used scope in its current window (1 = exhausted).',
      (s) => s.utilization,
    ),
    budgetScopes,
    budgetSoftLimitWarnings: counter(
      'tollgate_budget_soft_limit_warnings_total',
      'Requests let through past a soft budget limit.',
      ['budget', 'tenant'],
    ),
    budgetExceeded: counter('tollgate_budget_exceeded_total', 'Requests stopped by a hard budget limit.', [
      'budget',
      'tenant',
    ]),
    budgetFailOpen: counter(
      'tollgate_budget_fail_open_total',
      'Requests let through because the budget store was unavailable and the budget fails open.',
      ['budget'],
    ),
    usageAnomalies: counter(
      'tollgate_usage_anomalies_total',
      'Requests whose provider usage was missing (estimated), invalid (reservation charged) or implausibly large (clamped).',
      ['provider', 'anomaly'],
    ),
    upstreamAttempts: counter('tollgate_upstream_attempts_total', 'Upstream attempts by provider and HTTP status (none = no response).', [
      'provider',
      'status',
    ]),
    chainAttempts: counter(
      'tollgate_fallback_attempts_total',
      'Envoy attempts on fallback chain clusters, counted by the upstream stage that translated them, by provider and HTTP status (none = no response).',
      ['provider', 'status'],
    ),
    upstreamDuration: histogram(
      'tollgate_upstream_duration_seconds',
      'Upstream time from request sent to last byte, by provider.',
      ['provider'],
      GENAI_DURATION_BUCKETS,
    ),
    upstreamTimeToFirstByte: histogram(
      'tollgate_upstream_time_to_first_byte_seconds',
      'Upstream time to response headers, by provider.',
      ['provider'],
      GENAI_TTFC_BUCKETS,
    ),
    upstreamTimeToFirstToken: histogram(
      'tollgate_upstream_time_to_first_token_seconds',
      'Upstream time to the first generated token, by provider.',
      ['provider'],
      GENAI_TTFC_BUCKETS,
    ),
    lineageEmitted: counter('tollgate_lineage_records_emitted_total', 'Lineage records handed to the emitter.', []),
    lineageQueueDepth: gauge('tollgate_lineage_queue_depth', 'Lineage records in memory, not yet written or spooled.', []),
    lineageWritten: counter('tollgate_lineage_records_written_total', 'Lineage records stored by a sink.', ['sink']),
    lineageFailed: counter(
      'tollgate_lineage_records_failed_total',
      'Lineage records a sink failed to store (then spooled for durable sinks).',
      ['sink'],
    ),
    lineageDropped: counter(
      'tollgate_lineage_records_dropped_total',
      'Lineage records LOST, by sink and reason (spool_full, spool_error, sink_error, queue_full, closed, serialize).',
      ['sink', 'reason'],
    ),
    lineageSpooled: counter('tollgate_lineage_records_spooled_total', 'Lineage records written to the disk spool.', ['sink']),
    lineageReplayed: counter(
      'tollgate_lineage_records_replayed_total',
      'Spooled lineage records delivered to their sink.',
      ['sink'],
    ),
    lineageDuplicates: counter(
      'tollgate_lineage_records_deduplicated_total',
      'Replayed lineage records the sink already had (skipped, not written twice).',
      ['sink'],
    ),
    lineageSinkUp: gauge('tollgate_lineage_sink_up', '1 when the sink accepted its last write, 0 when it is failing.', ['sink']),
    lineageSpoolBytes: gauge('tollgate_lineage_spool_bytes', 'Bytes in the disk spool, by sink.', ['sink']),
    lineageSpoolCapacityBytes: gauge('tollgate_lineage_spool_capacity_bytes', 'Configured spool bound, by sink.', ['sink']),
    lineageSpoolRecords: gauge('tollgate_lineage_spool_records', 'Undelivered records in the disk spool, by sink.', ['sink']),
    lineageSpoolNearFull: gauge(
      'tollgate_lineage_spool_near_full',
      '1 when the spool is above its near-full threshold.',
      ['sink'],
    ),
    otlpSpansExported: counter('tollgate_otlp_spans_exported_total', 'Spans accepted by the OTLP collector.', []),
    otlpSpansDropped: counter('tollgate_otlp_spans_dropped_total', 'Spans not exported, by reason (queue_full, export_error).', [
      'reason',
    ]),
    extprocStreamsCut: counter(
      'tollgate_extproc_streams_cut_total',
      'ext_proc streams refused at the TOLLGATE_MAX_STREAMS cap (max_streams) or ended after TOLLGATE_STREAM_IDLE_TIMEOUT_MS without a message (idle_timeout).',
      ['reason'],
    ),
    extprocProtocolErrors: counter(
      'tollgate_extproc_protocol_errors_total',
      'ext_proc streams failed with FAILED_PRECONDITION: a message Envoy would not send in that state.',
      [],
    ),
    authFailures: counter(
      'tollgate_auth_failures_total',
      'Refused credentials, by surface (grpc: ext_proc streams; admin: /v1/spend, /readyz detail) and reason.',
      ['surface', 'reason'],
    ),
    keyLookups: counter(
      'tollgate_key_store_lookups_total',
      'Managed-key lookups (Redis key store), by result: cache (no round trip), redis (fetched), stale (Redis unreachable, an older cached entry answered), unavailable (Redis unreachable, refused with 503).',
      ['result'],
    ),
    configReloads: counter('tollgate_config_reloads_total', 'Config loads and reloads, by result (success, failure).', [
      'result',
    ]),
    mcpCalls: counter('tollgate_mcp_calls_total', 'MCP JSON-RPC messages handled, by server, method, tool, tenant and decision (outcome).', [
      'server',
      'method',
      'tool',
      'tenant',
      'decision',
    ]),
    mcpCallDuration: histogram('tollgate_mcp_call_duration_seconds', 'Time from an MCP message reaching Tollgate to its answer passing through.', ['server', 'method'], GENAI_DURATION_BUCKETS),
    mcpToolsHidden: counter('tollgate_mcp_tools_hidden_total', 'Tools removed from tools/list answers by policy.', ['server', 'tenant']),
    configInfo: gauge('tollgate_config_info', 'Always 1; the revision label names the active config revision.', [
      'revision',
    ]),
    configLastReloadSuccess: gauge(
      'tollgate_config_last_reload_success_timestamp_seconds',
      'Unix time of the last successful config load.',
      [],
    ),
    label(kind, value) {
      return clamps[kind].clamp(value);
    },
    setKnownLabels(known) {
      if (known.tenants) clamps.tenant.setAllowed(known.tenants);
      if (known.models) clamps.model.setAllowed(known.models);
      if (known.providers) clamps.provider.setAllowed(known.providers);
      if (known.policies) clamps.policy.setAllowed(known.policies);
      if (known.detectors) clamps.detector.setAllowed(known.detectors);
      if (known.budgets) clamps.budget.setAllowed(known.budgets);
      if (known.mcpServers) clamps.mcp_server.setAllowed(known.mcpServers);
    },
    recordConfigReload(ok, revision) {
      m.configReloads.inc({ result: ok ? 'success' : 'failure' });
      if (!ok) return;
      m.configLastReloadSuccess.set(Date.now() / 1000);
      if (revision !== undefined) {
        if (revisionHolder.current !== undefined) m.configInfo.remove({ revision: revisionHolder.current });
        revisionHolder.current = revision.slice(0, MAX_LABEL_LENGTH);
        m.configInfo.set({ revision: revisionHolder.current }, 1);
      }
    },
  };
  if (opts.known) m.setKnownLabels(opts.known);
  return m;
}

/** The per-request series, pre-bound (bound-series.ts): created with the Metrics, used only from here. */
interface RequestSeries {
  requests: BoundCounter<'tenant' | 'model' | 'provider' | 'decision' | 'status'>;
  tokens: BoundCounter<'tenant' | 'model' | 'provider' | 'type'>;
  costUsd: BoundCounter<'tenant' | 'model' | 'provider'>;
  usageAnomalies: BoundCounter<'provider' | 'anomaly'>;
  genAiTokenUsage: BoundHistogram<'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model' | 'gen_ai_token_type'>;
  genAiOperationDuration: BoundHistogram<'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model' | 'error_type'>;
  genAiTimeToFirstChunk: BoundHistogram<'gen_ai_operation_name' | 'gen_ai_provider_name' | 'gen_ai_request_model'>;
  processingDuration: BoundHistogram<'phase'>;
  policyEvalDuration: BoundHistogram<never>;
  upstreamDuration: BoundHistogram<'provider'>;
  upstreamTimeToFirstByte: BoundHistogram<'provider'>;
  upstreamTimeToFirstToken: BoundHistogram<'provider'>;
  upstreamAttempts: BoundCounter<'provider' | 'status'>;
  policyEvalErrors: BoundCounter<'policy'>;
  policyDryRunDenials: BoundCounter<'policy'>;
  redactions: BoundCounter<'detector' | 'direction'>;
  budgetSoftLimitWarnings: BoundCounter<'budget' | 'tenant'>;
  budgetExceeded: BoundCounter<'budget' | 'tenant'>;
  budgetFailOpen: BoundCounter<'budget'>;
  mcpCalls: BoundCounter<'server' | 'method' | 'tool' | 'tenant' | 'decision'>;
  mcpToolsHidden: BoundCounter<'server' | 'tenant'>;
  mcpCallDuration: BoundHistogram<'server' | 'method'>;
}

const requestSeries = new WeakMap<Metrics, RequestSeries>();

/** Label names in the order the series' labels were always written (it is their order in /metrics). */
function seriesFor(m: Metrics): RequestSeries {
  let s = requestSeries.get(m);
  if (s) return s;
  const genAi = ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model'] as const;
  s = {
    requests: new BoundCounter(m.requests, ['tenant', 'model', 'provider', 'decision', 'status']),
    tokens: new BoundCounter(m.tokens, ['tenant', 'model', 'provider', 'type']),
    costUsd: new BoundCounter(m.costUsd, ['tenant', 'model', 'provider']),
    usageAnomalies: new BoundCounter(m.usageAnomalies, ['provider', 'anomaly']),
    genAiTokenUsage: new BoundHistogram(m.genAiTokenUsage, [...genAi, 'gen_ai_token_type']),
    genAiOperationDuration: new BoundHistogram(m.genAiOperationDuration, [...genAi, 'error_type']),
    genAiTimeToFirstChunk: new BoundHistogram(m.genAiTimeToFirstChunk, genAi),
    processingDuration: new BoundHistogram(m.processingDuration, ['phase']),
    policyEvalDuration: new BoundHistogram(m.policyEvalDuration, []),
    upstreamDuration: new BoundHistogram(m.upstreamDuration, ['provider']),
    upstreamTimeToFirstByte: new BoundHistogram(m.upstreamTimeToFirstByte, ['provider']),
    upstreamTimeToFirstToken: new BoundHistogram(m.upstreamTimeToFirstToken, ['provider']),
    upstreamAttempts: new BoundCounter(m.upstreamAttempts, ['provider', 'status']),
    policyEvalErrors: new BoundCounter(m.policyEvalErrors, ['policy']),
    policyDryRunDenials: new BoundCounter(m.policyDryRunDenials, ['policy']),
    redactions: new BoundCounter(m.redactions, ['detector', 'direction']),
    budgetSoftLimitWarnings: new BoundCounter(m.budgetSoftLimitWarnings, ['budget', 'tenant']),
    budgetExceeded: new BoundCounter(m.budgetExceeded, ['budget', 'tenant']),
    budgetFailOpen: new BoundCounter(m.budgetFailOpen, ['budget']),
    mcpCalls: new BoundCounter(m.mcpCalls, ['server', 'method', 'tool', 'tenant', 'decision']),
    mcpToolsHidden: new BoundCounter(m.mcpToolsHidden, ['server', 'tenant']),
    mcpCallDuration: new BoundHistogram(m.mcpCallDuration, ['server', 'method']),
  };
  requestSeries.set(m, s);
  return s;
}

const NO_LABELS: readonly string[] = [];

/**
 * Updates request, token, cost, latency, policy, redaction, budget and upstream metrics from one finished
 * request's record. One call per request, as a consumer of its own (service/gateway/outcome.ts): lineage
 * delivery (a full queue, a sink outage) never changes what is counted here.
 */
export function recordRequestMetrics(m: Metrics, r: LineageRecord): void {
  if (r.mcp) return recordMcpMetrics(m, r);
  const s = seriesFor(m);
  const tenant = m.label('tenant', r.principal.tenant);
  const model = m.label('model', r.served?.model ?? r.request.requestedModel);
  const provider = m.label('provider', r.served?.provider);
  const requestModel = m.label('model', r.request.requestedModel);
  const op = operationName(r.request.endpoint);

  s.requests.inc([tenant, model, provider, r.outcome, statusLabel(r.statusCode)]);

  const t = r.tokens;
  if (t) {
    if (t.input !== undefined && t.input > 0) s.tokens.inc([tenant, model, provider, 'input'], t.input);
    if (t.output !== undefined && t.output > 0) s.tokens.inc([tenant, model, provider, 'output'], t.output);
    if (t.cached !== undefined && t.cached > 0) s.tokens.inc([tenant, model, provider, 'cached'], t.cached);
    if (t.reasoning !== undefined && t.reasoning > 0) s.tokens.inc([tenant, model, provider, 'reasoning'], t.reasoning);
    if (t.anomaly) s.usageAnomalies.inc([provider, t.anomaly]);
    // Semconv: report token usage only when the counts are known for an operation that reached a provider.
    if (r.served) {
      s.genAiTokenUsage.observe([op, provider, requestModel, 'input'], t.input);
      if (op !== 'embeddings') s.genAiTokenUsage.observe([op, provider, requestModel, 'output'], t.output);
    }
  }
  if (r.costUsd !== undefined && r.costUsd > 0 && Number.isFinite(r.costUsd)) {
    s.costUsd.inc([tenant, model, provider], r.costUsd);
  }

  if (r.served || (r.attempts && r.attempts.length > 0)) {
    const seconds = (r.endTime.getTime() - r.startTime.getTime()) / 1000;
    const errorType = r.outcome === 'success' ? '' : (r.errorClass ?? r.outcome);
    if (seconds >= 0) s.genAiOperationDuration.observe([op, provider, requestModel, errorType || NONE], seconds);
    const ttft = r.latency?.upstreamTtftMs;
    if (r.request.stream && ttft !== undefined && ttft >= 0) s.genAiTimeToFirstChunk.observe([op, provider, requestModel], ttft / 1000);
  }

  const l = r.latency;
  if (l) {
    const d = s.processingDuration;
    if (l.requestHeadersUs !== undefined && l.requestHeadersUs >= 0) d.observe(PHASE_REQUEST_HEADERS, l.requestHeadersUs / 1e6);
    if (l.requestBodyUs !== undefined && l.requestBodyUs >= 0) d.observe(PHASE_REQUEST_BODY, l.requestBodyUs / 1e6);
    if (l.responseHeadersUs !== undefined && l.responseHeadersUs >= 0) d.observe(PHASE_RESPONSE_HEADERS, l.responseHeadersUs / 1e6);
    if (l.responseBodyUs !== undefined && l.responseBodyUs >= 0) d.observe(PHASE_RESPONSE_BODY, l.responseBodyUs / 1e6);
    if (l.processingTotalUs !== undefined && l.processingTotalUs >= 0) d.observe(PHASE_TOTAL, l.processingTotalUs / 1e6);
    if (l.policyEvalUs !== undefined && l.policyEvalUs >= 0) s.policyEvalDuration.observe(NO_LABELS, l.policyEvalUs / 1e6);
    if (r.served) {
      const p = [provider];
      if (l.upstreamTotalMs !== undefined && l.upstreamTotalMs >= 0) s.upstreamDuration.observe(p, l.upstreamTotalMs / 1000);
      if (l.upstreamTtfbMs !== undefined && l.upstreamTtfbMs >= 0) s.upstreamTimeToFirstByte.observe(p, l.upstreamTtfbMs / 1000);
      if (l.upstreamTtftMs !== undefined && l.upstreamTtftMs >= 0) s.upstreamTimeToFirstToken.observe(p, l.upstreamTtftMs / 1000);
    }
  }

  for (const a of r.attempts ?? []) {
    // Another replica's upstream stage ran it (and counted it in tollgate_fallback_attempts_total).
    if (a.errorClass === 'not_observed') continue;
    s.upstreamAttempts.inc([m.label('provider', a.provider), statusLabel(a.status)]);
  }
  recordDecisionMetrics(m, s, r, tenant);
}

const PHASE_REQUEST_HEADERS: readonly string[] = ['request_headers'];
const PHASE_REQUEST_BODY: readonly string[] = ['request_body'];
const PHASE_RESPONSE_HEADERS: readonly string[] = ['response_headers'];
const PHASE_RESPONSE_BODY: readonly string[] = ['response_body'];
const PHASE_TOTAL: readonly string[] = ['total'];

/** Policy errors, dry-run denials, redactions and budgets of a record (LLM and MCP alike). */
function recordDecisionMetrics(m: Metrics, s: RequestSeries, r: LineageRecord, tenant: string): void {
  const rules = r.policy?.rules;
  if (rules) {
    for (const rule of rules) {
      if (rule.outcome === 'error') s.policyEvalErrors.inc([m.label('policy', rule.policy)]);
    }
  }
  const dry = r.policy?.dryRunDenies;
  if (dry) for (const d of dry) s.policyDryRunDenials.inc([m.label('policy', d.policy)]);
  if (r.redactions) {
    for (const red of r.redactions) {
      if (red.count > 0) s.redactions.inc([m.label('detector', red.detector), red.direction], red.count);
    }
  }
  if (r.budgets) {
    for (const b of r.budgets) {
      const budget = m.label('budget', b.name);
      const unit = UNITS.has(b.unit) ? b.unit : OTHER;
      // Fail-open effects carry this replica's last knowledge, not the counter: they do not move the gauges.
      if (b.remaining !== undefined && !b.failOpen)
        m.budgetScopes.observe({ budget, tenant, unit, scopeKey: b.scopeKey ?? '', limit: b.limit, remaining: b.remaining, resetAt: b.resetAt });
      if (b.softLimitWarning) s.budgetSoftLimitWarnings.inc([budget, tenant]);
      if (b.exceeded) s.budgetExceeded.inc([budget, tenant]);
      if (b.failOpen) s.budgetFailOpen.inc([budget]);
    }
  }
}

/** An MCP record (service/mcp): its own counters, then what every record counts. */
function recordMcpMetrics(m: Metrics, r: LineageRecord): void {
  const s = seriesFor(m);
  const c = r.mcp!;
  const tenant = m.label('tenant', r.principal.tenant);
  const server = m.label('mcp_server', c.server);
  const method = MCP_METHODS.has(c.method ?? '') ? c.method! : c.method?.startsWith('notifications/') ? 'notification' : OTHER;
  s.mcpCalls.inc([server, method, c.tool ? m.label('mcp_tool', c.tool) : NONE, tenant, r.outcome]);
  if (c.hiddenTools) s.mcpToolsHidden.inc([server, tenant], c.hiddenTools);
  const seconds = (r.endTime.getTime() - r.startTime.getTime()) / 1000;
  if (seconds >= 0 && r.outcome === 'success') s.mcpCallDuration.observe([server, method], seconds);
  if (r.latency?.policyEvalUs !== undefined && r.latency.policyEvalUs >= 0) s.policyEvalDuration.observe(NO_LABELS, r.latency.policyEvalUs / 1e6);
  recordDecisionMetrics(m, s, r, tenant);
}

/** MCP methods kept as label values; anything else (client-chosen) is `other`. */
const MCP_METHODS = new Set(['initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel', 'stream/open', 'session/delete']);

const UNITS = new Set(['usd', 'input_tokens', 'output_tokens', 'total_tokens', 'requests']);
