// The request metrics as recorded before bound-series.ts (prom-client's inc()/observe() with a label object per
// call), kept verbatim as the oracle for test/telemetry/bound-series.test.ts: the fast path must print the same
// /metrics text for the same records.
import type { LineageRecord } from '../../service/lineage/record.ts';
import { NONE, OTHER, operationName, statusLabel, type Metrics } from '../../service/telemetry/metrics.ts';

export function legacyRecordRequestMetrics(m: Metrics, r: LineageRecord): void {
  if (r.mcp) return recordMcpMetrics(m, r);
  const tenant = m.label('tenant', r.principal.tenant);
  const model = m.label('model', r.served?.model ?? r.request.requestedModel);
  const provider = m.label('provider', r.served?.provider);
  const requestModel = m.label('model', r.request.requestedModel);
  const op = operationName(r.request.endpoint);

  m.requests.inc({ tenant, model, provider, decision: r.outcome, status: statusLabel(r.statusCode) });

  const t = r.tokens;
  if (t) {
    if (t.input !== undefined && t.input > 0) m.tokens.inc({ tenant, model, provider, type: 'input' }, t.input);
    if (t.output !== undefined && t.output > 0) m.tokens.inc({ tenant, model, provider, type: 'output' }, t.output);
    if (t.cached !== undefined && t.cached > 0) m.tokens.inc({ tenant, model, provider, type: 'cached' }, t.cached);
    if (t.reasoning !== undefined && t.reasoning > 0) m.tokens.inc({ tenant, model, provider, type: 'reasoning' }, t.reasoning);
    if (t.anomaly) m.usageAnomalies.inc({ provider, anomaly: t.anomaly });
    // Semconv: report token usage only when the counts are known for an operation that reached a provider.
    if (r.served) {
      const base = { gen_ai_operation_name: op, gen_ai_provider_name: provider, gen_ai_request_model: requestModel };
      m.genAiTokenUsage.observe({ ...base, gen_ai_token_type: 'input' }, t.input);
      if (op !== 'embeddings') m.genAiTokenUsage.observe({ ...base, gen_ai_token_type: 'output' }, t.output);
    }
  }
  if (r.costUsd !== undefined && r.costUsd > 0 && Number.isFinite(r.costUsd)) {
    m.costUsd.inc({ tenant, model, provider }, r.costUsd);
  }

  if (r.served || (r.attempts && r.attempts.length > 0)) {
    const seconds = (r.endTime.getTime() - r.startTime.getTime()) / 1000;
    const errorType = r.outcome === 'success' ? '' : (r.errorClass ?? r.outcome);
    const base = { gen_ai_operation_name: op, gen_ai_provider_name: provider, gen_ai_request_model: requestModel };
    if (seconds >= 0) m.genAiOperationDuration.observe({ ...base, error_type: errorType || NONE }, seconds);
    const ttft = r.latency?.upstreamTtftMs;
    if (r.request.stream && ttft !== undefined && ttft >= 0) m.genAiTimeToFirstChunk.observe(base, ttft / 1000);
  }

  const l = r.latency;
  if (l) {
    const d = m.processingDuration;
    if (l.requestHeadersUs !== undefined && l.requestHeadersUs >= 0) d.observe({ phase: 'request_headers' }, l.requestHeadersUs / 1e6);
    if (l.requestBodyUs !== undefined && l.requestBodyUs >= 0) d.observe({ phase: 'request_body' }, l.requestBodyUs / 1e6);
    if (l.responseHeadersUs !== undefined && l.responseHeadersUs >= 0) d.observe({ phase: 'response_headers' }, l.responseHeadersUs / 1e6);
    if (l.responseBodyUs !== undefined && l.responseBodyUs >= 0) d.observe({ phase: 'response_body' }, l.responseBodyUs / 1e6);
    if (l.processingTotalUs !== undefined && l.processingTotalUs >= 0) d.observe({ phase: 'total' }, l.processingTotalUs / 1e6);
    if (l.policyEvalUs !== undefined && l.policyEvalUs >= 0) m.policyEvalDuration.observe(l.policyEvalUs / 1e6);
    if (r.served) {
      const p = { provider };
      if (l.upstreamTotalMs !== undefined && l.upstreamTotalMs >= 0) m.upstreamDuration.observe(p, l.upstreamTotalMs / 1000);
      if (l.upstreamTtfbMs !== undefined && l.upstreamTtfbMs >= 0) m.upstreamTimeToFirstByte.observe(p, l.upstreamTtfbMs / 1000);
      if (l.upstreamTtftMs !== undefined && l.upstreamTtftMs >= 0) m.upstreamTimeToFirstToken.observe(p, l.upstreamTtftMs / 1000);
    }
  }

  for (const a of r.attempts ?? []) {
    // Another replica's upstream stage ran it (and counted it in tollgate_fallback_attempts_total).
    if (a.errorClass === 'not_observed') continue;
    m.upstreamAttempts.inc({ provider: m.label('provider', a.provider), status: statusLabel(a.status) });
  }
  recordDecisionMetrics(m, r, tenant);
}

/** Policy errors, dry-run denials, redactions and budgets of a record (LLM and MCP alike). */
function recordDecisionMetrics(m: Metrics, r: LineageRecord, tenant: string): void {
  for (const rule of r.policy?.rules ?? []) {
    if (rule.outcome === 'error') m.policyEvalErrors.inc({ policy: m.label('policy', rule.policy) });
  }
  for (const d of r.policy?.dryRunDenies ?? []) m.policyDryRunDenials.inc({ policy: m.label('policy', d.policy) });
  for (const red of r.redactions ?? []) {
    if (red.count > 0) m.redactions.inc({ detector: m.label('detector', red.detector), direction: red.direction }, red.count);
  }
  for (const b of r.budgets ?? []) {
    const budget = m.label('budget', b.name);
    const unit = UNITS.has(b.unit) ? b.unit : OTHER;
    // Fail-open effects carry this replica's last knowledge, not the counter: they do not move the gauges.
    if (b.remaining !== undefined && !b.failOpen)
      m.budgetScopes.observe({ budget, tenant, unit, scopeKey: b.scopeKey ?? '', limit: b.limit, remaining: b.remaining, resetAt: b.resetAt });
    if (b.softLimitWarning) m.budgetSoftLimitWarnings.inc({ budget, tenant });
    if (b.exceeded) m.budgetExceeded.inc({ budget, tenant });
    if (b.failOpen) m.budgetFailOpen.inc({ budget });
  }
}

/** An MCP record (service/mcp): its own counters, then what every record counts. */
function recordMcpMetrics(m: Metrics, r: LineageRecord): void {
  const c = r.mcp!;
  const tenant = m.label('tenant', r.principal.tenant);
  const server = m.label('mcp_server', c.server);
  const method = MCP_METHODS.has(c.method ?? '') ? c.method! : c.method?.startsWith('notifications/') ? 'notification' : OTHER;
  m.mcpCalls.inc({ server, method, tool: c.tool ? m.label('mcp_tool', c.tool) : NONE, tenant, decision: r.outcome });
  if (c.hiddenTools) m.mcpToolsHidden.inc({ server, tenant }, c.hiddenTools);
  const seconds = (r.endTime.getTime() - r.startTime.getTime()) / 1000;
  if (seconds >= 0 && r.outcome === 'success') m.mcpCallDuration.observe({ server, method }, seconds);
  if (r.latency?.policyEvalUs !== undefined && r.latency.policyEvalUs >= 0) m.policyEvalDuration.observe(r.latency.policyEvalUs / 1e6);
  recordDecisionMetrics(m, r, tenant);
}

/** MCP methods kept as label values; anything else (client-chosen) is `other`. */
const MCP_METHODS = new Set(['initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel', 'stream/open', 'session/delete']);

const UNITS = new Set(['usd', 'input_tokens', 'output_tokens', 'total_tokens', 'requests']);
