// A complete lineage record with every field set, shared by lineage and telemetry tests.
import type { LineageRecord } from '../../service/lineage/record.ts';

export function completeRecord(overrides: Partial<LineageRecord> = {}): LineageRecord {
  return {
    schemaVersion: 2,
    requestId: 'req-0001',
    decisionId: 'dec-0001',
    trace: {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      sampled: true,
    },
    startTime: new Date('2025-03-01T12:00:00.000Z'),
    endTime: new Date('2025-03-01T12:00:01.250Z'),
    principal: {
      keyId: 'vk_acme_ops',
      tenant: 'acme',
      team: 'ops',
      user: 'alice',
      authMethod: 'virtual_key',
      groups: ['eng'],
    },
    request: {
      clientApi: 'openai',
      endpoint: '/v1/chat/completions',
      method: 'POST',
      requestedModel: 'gpt-4o',
      stream: true,
      requestBytes: 1532,
      responseBytes: 20480,
    },
    served: {
      provider: 'openai',
      model: 'gpt-4o',
      upstreamModel: 'gpt-4o-2024-08-06',
      deployment: 'gpt-4o/0',
      cluster: 'openai_us',
      region: 'us-east-1',
    },
    attempts: [
      { provider: 'azure', deployment: 'gpt-4o/1', status: 503, latencyMs: 40.5, errorClass: 'unavailable' },
      { provider: 'openai', deployment: 'gpt-4o/0', status: 200, latencyMs: 1100.25 },
    ],
    policy: {
      bundleRevision: 'rev-42',
      rules: [
        { policy: 'pii', rule: 'mask-emails', kind: 'redact', outcome: 'applied' },
        { policy: 'models', rule: 'allow-list', kind: 'models', outcome: 'allow' },
        { policy: 'residency', rule: 'eu-only', kind: 'deny', outcome: 'would_deny', message: 'would deny: model outside EU' },
        { policy: 'free-tier', rule: 'matchConditions/free', kind: 'matchCondition', outcome: 'not_matched' },
        { policy: 'pii', rule: 'block-ssn', kind: 'redact', outcome: 'skipped', message: 'dry run: would block ssn' },
      ],
      dryRunDenies: [{ policy: 'residency', rule: 'eu-only', message: 'would deny: model outside EU' }],
      labels: { costCenter: 'cc-1' },
    },
    redactions: [
      { detector: 'email', direction: 'request', action: 'mask', count: 2, locations: ['messages[0].content'] },
    ],
    budgets: [
      {
        name: 'finance/monthly',
        scopeKey: 'tenant:acme',
        unit: 'usd',
        limit: 100,
        reserved: 0.05,
        charged: 0.0123,
        remaining: 12.5,
        enforcement: 'hard',
        softLimitWarning: true,
        failOpen: false,
        exceeded: false,
      },
    ],
    tokens: { input: 1200, output: 350, cached: 100, reasoning: 20, cacheWrite: 300, cacheWrite1h: 100, estimated: false },
    costUsd: 0.0123,
    costComponents: { inputUsd: 0.0024, cacheReadUsd: 0.00003, cacheWrite5mUsd: 0.00075, cacheWrite1hUsd: 0.0006, outputUsd: 0.0049, reasoningUsd: 0.0003, longContext: true },
    latency: {
      requestHeadersUs: 85,
      requestBodyUs: 420,
      responseHeadersUs: 30,
      responseBodyUs: 910,
      policyEvalUs: 120,
      redactionUs: 60,
      processingTotalUs: 1445,
      upstreamTtfbMs: 310.5,
      upstreamTtftMs: 320.25,
      upstreamTotalMs: 1100.25,
      totalMs: 1250,
    },
    statusCode: 200,
    outcome: 'success',
    content: {
      promptSha256: 'a'.repeat(64),
      responseSha256: 'b'.repeat(64),
    },
    gatewayInstance: 'tollgate-0',
    ...overrides,
  };
}

/**
 * A record exactly as schema version 1 wrote it (proto3 JSON, before rule outcomes were recorded exactly):
 * `RULE_RESULT_MATCHED` for a deny / would-deny / applied rule, `RULE_RESULT_NOT_MATCHED` for a passed check.
 */
export const V1_RECORD_JSON = JSON.stringify({
  schemaVersion: 1,
  requestId: 'req-v1-0001',
  decisionId: '0123456789abcdef0123456789abcdef',
  startTime: '2025-02-01T09:00:00.000Z',
  endTime: '2025-02-01T09:00:00.040Z',
  principal: { keyId: 'vk_acme_ops', tenant: 'acme', authMethod: 'AUTH_METHOD_VIRTUAL_KEY' },
  request: { clientApi: 'CLIENT_API_OPENAI', endpoint: '/v1/chat/completions', method: 'POST', requestedModel: 'gpt-4o', requestBytes: '210', responseBytes: '0' },
  policy: {
    bundleRevision: 'rev-7',
    rules: [
      { policy: 'models', rule: 'allow-list', kind: 'models', outcome: 'RULE_RESULT_NOT_MATCHED' },
      { policy: 'baseline', rule: 'no-secrets', kind: 'deny', outcome: 'RULE_RESULT_MATCHED', message: 'secrets are not allowed' },
    ],
  },
  statusCode: 403,
  outcome: 'OUTCOME_DENIED',
  errorClass: 'permission',
  errorCode: 'policy_denied',
  gatewayInstance: 'tollgate-0',
});
