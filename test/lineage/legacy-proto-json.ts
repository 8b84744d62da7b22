// toProtoJson() exactly as it was before rule objects were shared and timestamps cached (kept verbatim as the
// oracle for test/lineage/proto-json.test.ts): the lineage text written must not change by a byte.
import { LINEAGE_SCHEMA_VERSION, MAX_REDACTION_LOCATIONS, type LineageRecord, type LineageRecordJson } from '../../service/lineage/record.ts';

function toEnum(prefix: string, v: string): string {
  return `${prefix}_${v.toUpperCase()}`;
}

// ---- TS → proto3 JSON ----

/** RFC 3339 in UTC, as the proto3 JSON mapping prints Timestamps. */
function ts(d: Date): string {
  return d.toISOString();
}

function u64(n: number): string {
  return String(Math.max(0, Math.trunc(n)));
}

function u32(n: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.round(n)));
}

/** Proto3 JSON for doubles: numbers, or the strings "NaN" / "Infinity" / "-Infinity". */
function dbl(n: number): number | string {
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

export function legacyToProtoJson(r: LineageRecord): LineageRecordJson {
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
    put(
      o,
      'rules',
      pe.rules?.map((x) => {
        const ro: Record<string, unknown> = {};
        put(ro, 'policy', x.policy);
        put(ro, 'rule', x.rule);
        put(ro, 'kind', x.kind);
        put(ro, 'outcome', toEnum('RULE_RESULT', x.outcome));
        put(ro, 'message', x.message);
        return ro;
      }),
    );
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

