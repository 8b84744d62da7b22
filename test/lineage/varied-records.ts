// Records covering every outcome and optional part, MCP and audit records, unicode and awkward values: the
// inputs for the byte-equality tests of the lineage JSON line and the request metrics fast path.
import type { LineageRecord, Outcome } from '../../service/lineage/record.ts';
import { completeRecord } from './fixtures.ts';

const OUTCOMES: Outcome[] = ['success', 'denied', 'budget_exceeded', 'rate_limited', 'provider_error', 'client_error', 'aborted', 'gateway_error'];

export function variedRecords(): LineageRecord[] {
  const out: LineageRecord[] = [completeRecord()];
  OUTCOMES.forEach((outcome, i) => {
    out.push(
      completeRecord({
        requestId: `req-${outcome}`,
        outcome,
        statusCode: [200, 403, 429, 429, 502, 400, 499, 500][i]!,
        errorClass: outcome === 'success' ? undefined : `class_${i}`,
        errorCode: outcome === 'success' ? undefined : `code_${i}`,
        principal: { authMethod: i % 3 === 0 ? 'virtual_key' : i % 3 === 1 ? 'jwt' : 'none', tenant: i % 2 ? 'acme' : 'globex', keyId: i % 2 ? 'vk_1' : undefined },
        served: outcome === 'denied' ? undefined : { provider: i % 2 ? 'openai' : 'azure', model: `m${i % 3}` },
        tokens: outcome === 'denied' ? undefined : { input: 10 * i, output: i, estimated: i % 2 === 0, anomaly: (['missing', 'invalid', 'clamped'] as const)[i % 3] },
        endTime: new Date(Date.UTC(2025, 2, 1, 12, 0, i, i * 7)),
      }),
    );
  });
  // Minimal: only the mandatory core; empty arrays and empty nested objects.
  out.push({
    requestId: 'min',
    decisionId: '',
    startTime: new Date(0),
    endTime: new Date(999),
    principal: { authMethod: 'none' },
    request: { endpoint: '/' },
    statusCode: 401,
    outcome: 'denied',
    attempts: [],
    redactions: [],
    budgets: [],
    policy: { rules: [], dryRunDenies: [], labels: {}, droppedCandidates: [] },
    trace: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentSpanId: '', sampled: false },
    content: {},
    latency: {},
  });
  // Unicode and characters JSON escapes: quotes, backslashes, control characters, U+2028, emoji, a lone surrogate.
  const nasty = 'é"\\\n\t\u0001\u001f\u2028\u2029 😀 \ud800 end \udc00';
  out.push(
    completeRecord({
      requestId: nasty,
      principal: { authMethod: 'jwt', keyId: 'lone-\udbff', team: 'emoji-😀-only', tenant: 'tenant-ü', user: nasty, groups: ['a"b', 'ß', nasty] },
      request: { endpoint: '/v1/messages', clientApi: 'anthropic', requestedModel: 'claude-ø', clientRequestId: nasty, stream: false },
      policy: {
        bundleRevision: nasty,
        rules: [{ policy: 'p', rule: 'r/😀', kind: 'deny', outcome: 'deny', message: nasty }],
        labels: { '2': 'two', b: nasty, '1': 'one', 'ключ': 'значение' },
        droppedCandidates: [{ model: 'm', param: 'models[1]', deployment: 'm/0', policy: 'p', rule: 'r', message: 'x' }],
      },
      redactions: [{ detector: 'email', direction: 'response', count: 3, locations: Array.from({ length: 40 }, (_, i) => `$.messages[${i}].content`) }],
      errorCode: 'x'.repeat(300) + '"',
      gatewayInstance: 'g'.repeat(300),
    }),
  );
  // Numbers: non-finite doubles, negatives, rounding, -0, large counts, u32 clamping.
  out.push(
    completeRecord({
      requestId: 'numbers',
      costUsd: NaN,
      costComponents: { inputUsd: Infinity, outputUsd: -Infinity, cacheReadUsd: -0, reasoningUsd: 1e-7, cacheWrite5mUsd: 1e21, longContext: false },
      tokens: { input: 2 ** 53, output: -5, cached: 3.7, reasoning: 0 },
      attempts: [{ provider: 'p', status: 2 ** 40, latencyMs: NaN }, { provider: 'q', status: -1, latencyMs: 0.1 + 0.2, errorClass: 'not_observed' }],
      latency: { requestHeadersUs: 1.5, requestBodyUs: -3, processingTotalUs: 1e12, totalMs: 0.000123, upstreamTtftMs: -1 },
      budgets: [{ name: 'b', unit: 'requests', limit: Infinity, remaining: -0.5, charged: NaN, failOpen: true, exceeded: true }],
      statusCode: 200.6,
      startTime: new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 1)),
      endTime: new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
    }),
  );
  // MCP and admin audit records.
  out.push(
    completeRecord({
      requestId: 'mcp-1',
      mcp: { server: 'files', method: 'tools/call', tool: 'read_file', jsonrpcId: '7', sessionId: 's', parentRequestId: 'p', httpRequestId: 'h', rpcErrorCode: -32600, hiddenTools: 2, batchSize: 1 },
    }),
    completeRecord({ requestId: 'mcp-2', outcome: 'denied', mcp: { server: 'other-server', method: 'notifications/progress' } }),
    completeRecord({ requestId: 'mcp-3', mcp: { server: 'files', method: 'tools/list', hiddenTools: 0 } }),
    completeRecord({ requestId: 'audit', audit: { action: 'key.create', actor: 'admin', target: 'vk_1', detail: { reason: nasty, '10': 'x' } } }),
    completeRecord({ requestId: 'audit-empty', audit: { action: 'reload', actor: 'system', detail: {} } }),
  );
  return out;
}
