// A complete lineage record with every field set, shared by lineage and telemetry tests.
import { fromProtoJson, type LineageRecord } from '../../service/lineage/record.ts';

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

/**
 * The lineage line of one `npm run bench -- exchange` request (example policies: 17 rule outcomes, 3 budgets,
 * labels, a dropped candidate; ~4.7 KB), as the file sink wrote it.
 */
export const EXCHANGE_LINE = "{\"schemaVersion\":2,\"requestId\":\"b11078dd-9b7a-4b1b-a3c3-75b296773668\",\"decisionId\":\"02892d58f3fe0cf8756cb57b465cd7f4\",\"trace\":{\"traceId\":\"9c7a90fde822d6c20b4ea61f886037ea\",\"spanId\":\"536156a26b11ab80\",\"sampled\":true},\"startTime\":\"2026-12-06T18:05:35.413Z\",\"endTime\":\"2026-12-06T18:05:35.488Z\",\"principal\":{\"keyId\":\"demo-acme-research\",\"tenant\":\"acme\",\"team\":\"research\",\"user\":\"alice\",\"authMethod\":\"AUTH_METHOD_VIRTUAL_KEY\",\"groups\":[\"engineering\"]},\"request\":{\"clientApi\":\"CLIENT_API_OPENAI\",\"endpoint\":\"/v1/chat/completions\",\"method\":\"POST\",\"requestedModel\":\"gpt-4o-mini\",\"stream\":false,\"requestBytes\":\"1223\",\"responseBytes\":\"254\"},\"served\":{\"provider\":\"azure-eu\",\"model\":\"gpt-4o-mini\",\"upstreamModel\":\"gpt-4o-mini-eu\",\"deployment\":\"gpt-4o-mini/azure-eu/1\",\"cluster\":\"azure_eu\",\"region\":\"eu-west-1\"},\"attempts\":[{\"provider\":\"azure-eu\",\"deployment\":\"gpt-4o-mini/azure-eu/1\",\"status\":200,\"latencyMs\":8.346}],\"policy\":{\"bundleRevision\":\"4d97cc0337de6cef\",\"rules\":[{\"policy\":\"free-tier\",\"rule\":\"matchConditions/free-tenant\",\"kind\":\"matchCondition\",\"outcome\":\"RULE_RESULT_NOT_MATCHED\"},{\"policy\":\"support-pseudonyms\",\"rule\":\"matchConditions/pseudonymizing-team\",\"kind\":\"matchCondition\",\"outcome\":\"RULE_RESULT_NOT_MATCHED\"},{\"policy\":\"baseline\",\"rule\":\"tenant-bound\",\"kind\":\"require\",\"outcome\":\"RULE_RESULT_ALLOW\"},{\"policy\":\"baseline\",\"rule\":\"prompt-size\",\"kind\":\"deny\",\"outcome\":\"RULE_RESULT_ALLOW\"},{\"policy\":\"baseline\",\"rule\":\"few-choices\",\"kind\":\"deny\",\"outcome\":\"RULE_RESULT_ALLOW\"},{\"policy\":\"premium-hours\",\"rule\":\"opus-business-hours\",\"kind\":\"deny\",\"outcome\":\"RULE_RESULT_ALLOW\"},{\"policy\":\"baseline\",\"rule\":\"per-key-rate\",\"kind\":\"rateLimit\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"key:demo-acme-research\"},{\"policy\":\"baseline\",\"rule\":\"per-user-rate\",\"kind\":\"rateLimit\",\"outcome\":\"RULE_RESULT_NOT_MATCHED\"},{\"policy\":\"baseline\",\"rule\":\"request-labels\",\"kind\":\"label\",\"outcome\":\"RULE_RESULT_APPLIED\"},{\"policy\":\"eu-residency\",\"rule\":\"eu-or-self-hosted\",\"kind\":\"route\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"this tenant's data must stay in the EU (eu-* regions or self-hosted models only)\"},{\"policy\":\"eu-residency\",\"rule\":\"zero-retention\",\"kind\":\"route\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"providers that retain prompts are not allowed for EU tenants\"},{\"policy\":\"data-protection\",\"rule\":\"mask-pii\",\"kind\":\"redact\",\"outcome\":\"RULE_RESULT_APPLIED\"},{\"policy\":\"data-protection\",\"rule\":\"mask-secrets\",\"kind\":\"redact\",\"outcome\":\"RULE_RESULT_APPLIED\"},{\"policy\":\"data-protection\",\"rule\":\"acme-codenames\",\"kind\":\"redact\",\"outcome\":\"RULE_RESULT_APPLIED\"},{\"policy\":\"spend-controls\",\"rule\":\"key-daily\",\"kind\":\"budget\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"key:demo-acme-research\"},{\"policy\":\"spend-controls\",\"rule\":\"tenant-monthly\",\"kind\":\"budget\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"tenant:acme\"},{\"policy\":\"spend-controls\",\"rule\":\"cost-center-monthly\",\"kind\":\"budget\",\"outcome\":\"RULE_RESULT_APPLIED\",\"message\":\"custom:cost-center:acme/r-and-d\"}],\"labels\":{\"tenant\":\"acme\",\"team\":\"research\",\"tier\":\"enterprise\",\"endpoint\":\"chat\"},\"droppedCandidates\":[{\"model\":\"gpt-4o-mini\",\"param\":\"model\",\"deployment\":\"gpt-4o-mini/openai/0\",\"policy\":\"eu-residency\",\"rule\":\"eu-or-self-hosted\",\"message\":\"this tenant's data must stay in the EU (eu-* regions or self-hosted models only)\"}]},\"budgets\":[{\"name\":\"spend-controls/key-daily\",\"scopeKey\":\"key:demo-acme-research\",\"unit\":\"usd\",\"limit\":1000000000,\"reserved\":0.00020922,\"charged\":0.000052799999999999996,\"remaining\":999999999.9999471,\"enforcement\":\"hard\",\"softLimitWarning\":false,\"exceeded\":false},{\"name\":\"spend-controls/tenant-monthly\",\"scopeKey\":\"tenant:acme\",\"unit\":\"usd\",\"limit\":1000000000,\"reserved\":0.00020922,\"charged\":0.000052799999999999996,\"remaining\":999999999.9999471,\"enforcement\":\"hard\",\"softLimitWarning\":false,\"exceeded\":false},{\"name\":\"spend-controls/cost-center-monthly\",\"scopeKey\":\"custom:cost-center:acme/r-and-d\",\"unit\":\"usd\",\"limit\":1000000000,\"reserved\":0.00020922,\"charged\":0.000052799999999999996,\"remaining\":999999999.9999471,\"enforcement\":\"soft\",\"softLimitWarning\":false,\"exceeded\":false}],\"tokens\":{\"input\":\"300\",\"output\":\"5\"},\"costUsd\":0.000052799999999999996,\"costComponents\":{\"inputUsd\":0.0000495,\"cacheReadUsd\":0,\"cacheWrite5mUsd\":0,\"cacheWrite1hUsd\":0,\"outputUsd\":0.0000033,\"reasoningUsd\":0},\"latency\":{\"requestHeadersUs\":7281,\"requestBodyUs\":58721,\"responseHeadersUs\":236,\"responseBodyUs\":1077,\"policyEvalUs\":11350,\"redactionUs\":25156,\"processingTotalUs\":67314,\"upstreamTtfbMs\":0.42,\"upstreamTotalMs\":8.346,\"totalMs\":75.032},\"statusCode\":200,\"outcome\":\"OUTCOME_SUCCESS\",\"content\":{\"promptSha256\":\"d6d9481f709f3dd04656d2542ef2a7ee9443522f0396bb97ac8bc7f7564ab93d\",\"responseSha256\":\"194f007c74aab9f6ee00411f6e30975be93e18452bc0959d8d7aded9ecf76ea0\"},\"gatewayInstance\":\"vm\"}";

/** EXCHANGE_LINE read back: a record shaped like a real request's. */
export function exchangeRecord(): LineageRecord {
  return fromProtoJson(JSON.parse(EXCHANGE_LINE))!;
}
