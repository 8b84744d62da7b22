import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createMetrics, recordRequestMetrics, statusLabel, operationName } from '../../service/telemetry/metrics.ts';
import { startTelemetryServer, parseAddr, type Readiness } from '../../service/telemetry/http.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { parsePromText, sampleValue } from './promtext.ts';
import { adminGuard } from '../../service/security/index.ts';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('/metrics is scraped, parses as Prometheus text, and matches what was recorded', async () => {
  const metrics = createMetrics();
  metrics.setKnownLabels({ tenants: ['acme'], models: ['gpt-4o'], providers: ['openai', 'azure'], policies: ['pii', 'models'] });
  const ok = completeRecord();
  recordRequestMetrics(metrics, ok);
  recordRequestMetrics(metrics, ok);
  recordRequestMetrics(
    metrics,
    completeRecord({
      principal: { authMethod: 'jwt', tenant: 'acme' },
      served: undefined,
      attempts: [],
      tokens: undefined,
      costUsd: undefined,
      statusCode: 403,
      outcome: 'denied',
      errorClass: 'permission',
      policy: { rules: [{ policy: 'models', rule: 'allow-list', kind: 'deny', outcome: 'error' }] },
      redactions: [],
      budgets: [],
    }),
  );
  metrics.recordConfigReload(true, 'rev-1');
  metrics.recordConfigReload(false);
  metrics.recordConfigReload(true, 'rev-2');

  const server = await startTelemetryServer({
    addr: '127.0.0.1:0',
    metrics,
    readiness: () => ({ ready: true, detail: {} }),
  });
  try {
    const res = await get(server.port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const s = parsePromText(res.body);
    const base = { tenant: 'acme', model: 'gpt-4o', provider: 'openai' };
    assert.equal(sampleValue(s, 'tollgate_requests_total', { ...base, decision: 'success', status: '200' }), 2);
    assert.equal(
      sampleValue(s, 'tollgate_requests_total', { tenant: 'acme', provider: 'none', decision: 'denied', status: '403' }),
      1,
    );
    assert.equal(sampleValue(s, 'tollgate_tokens_total', { ...base, type: 'input' }), 2400);
    assert.equal(sampleValue(s, 'tollgate_tokens_total', { ...base, type: 'output' }), 700);
    assert.equal(sampleValue(s, 'tollgate_tokens_total', { ...base, type: 'cached' }), 200);
    assert.ok(Math.abs((sampleValue(s, 'tollgate_cost_usd_total', base) ?? 0) - 0.0246) < 1e-12);
    const genai = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o' };
    assert.equal(sampleValue(s, 'gen_ai_client_token_usage_sum', { ...genai, gen_ai_token_type: 'input' }), 2400);
    assert.equal(sampleValue(s, 'gen_ai_client_token_usage_count', { ...genai, gen_ai_token_type: 'output' }), 2);
    assert.equal(sampleValue(s, 'gen_ai_client_operation_duration_seconds_count', { ...genai, error_type: 'none' }), 2);
    assert.equal(sampleValue(s, 'gen_ai_client_operation_duration_seconds_sum', { ...genai, error_type: 'none' }), 2.5);
    assert.equal(sampleValue(s, 'gen_ai_client_operation_time_to_first_chunk_seconds_count', genai), 2);
    // 1445 µs total processing → falls in the 2.5 ms bucket, not the 1 ms one.
    assert.equal(sampleValue(s, 'tollgate_processing_duration_seconds_bucket', { phase: 'total', le: '0.001' }), 0);
    assert.equal(sampleValue(s, 'tollgate_processing_duration_seconds_bucket', { phase: 'total', le: '0.0025' }), 3);
    assert.equal(sampleValue(s, 'tollgate_policy_evaluation_duration_seconds_count'), 3);
    assert.equal(sampleValue(s, 'tollgate_policy_evaluation_errors_total', { policy: 'models' }), 1);
    assert.equal(sampleValue(s, 'tollgate_redactions_total', { detector: 'email', direction: 'request' }), 4);
    assert.equal(sampleValue(s, 'tollgate_budget_remaining', { budget: 'finance/monthly', tenant: 'acme', unit: 'usd' }), 12.5);
    assert.equal(
      sampleValue(s, 'tollgate_budget_utilization_ratio', { budget: 'finance/monthly', tenant: 'acme', unit: 'usd' }),
      0.875,
    );
    assert.equal(sampleValue(s, 'tollgate_budget_soft_limit_warnings_total', { budget: 'finance/monthly', tenant: 'acme' }), 2);
    assert.equal(sampleValue(s, 'tollgate_upstream_attempts_total', { provider: 'azure', status: '503' }), 2);
    assert.equal(sampleValue(s, 'tollgate_upstream_attempts_total', { provider: 'openai', status: '200' }), 2);
    assert.equal(sampleValue(s, 'tollgate_upstream_time_to_first_token_seconds_count', { provider: 'openai' }), 2);
    assert.equal(sampleValue(s, 'tollgate_config_reloads_total', { result: 'success' }), 2);
    assert.equal(sampleValue(s, 'tollgate_config_reloads_total', { result: 'failure' }), 1);
    assert.equal(sampleValue(s, 'tollgate_config_info', { revision: 'rev-2' }), 1);
    assert.equal(sampleValue(s, 'tollgate_config_info', { revision: 'rev-1' }), undefined, 'old revision removed');
    assert.ok(sampleValue(s, 'process_cpu_user_seconds_total') !== undefined, 'process metrics are collected');
    // No request ids, user ids or key ids anywhere in the exposition.
    for (const secretish of ['req-0001', 'alice', 'vk_acme_ops', 'dec-0001']) assert.ok(!res.body.includes(secretish), secretish);
  } finally {
    await server.close();
  }
});

test('label cardinality is bounded: unknown values become "other"', async () => {
  const metrics = createMetrics({ collectDefault: false, maxDistinctPerLabel: 3 });
  metrics.setKnownLabels({ tenants: ['acme'] });
  for (const tenant of ['acme', 'evil-1', 'evil-2']) {
    recordRequestMetrics(metrics, completeRecord({ principal: { authMethod: 'jwt', tenant } }));
  }
  // Models have no known set here: the first 3 distinct are kept, the rest clamp.
  for (let i = 0; i < 6; i++) {
    recordRequestMetrics(metrics, completeRecord({ served: { provider: 'openai', model: `m${i}` } }));
  }
  const s = parsePromText(await metrics.registry.metrics());
  const tenants = new Set(s.filter((x) => x.name === 'tollgate_requests_total').map((x) => x.labels.tenant));
  assert.deepEqual([...tenants].sort(), ['acme', 'other']);
  const models = new Set(s.filter((x) => x.name === 'tollgate_requests_total').map((x) => x.labels.model));
  assert.deepEqual([...models].sort(), ['gpt-4o', 'm0', 'm1', 'other']);
  assert.equal(metrics.label('tenant', 'x'.repeat(500)), 'other');
  assert.equal(metrics.label('tenant', undefined), 'none');
});

test('fresh registries are independent', async () => {
  const a = createMetrics({ collectDefault: false });
  const b = createMetrics({ collectDefault: false });
  recordRequestMetrics(a, completeRecord());
  const sb = parsePromText(await b.registry.metrics());
  assert.equal(sampleValue(sb, 'tollgate_requests_total'), undefined);
});

test('status and operation labels', () => {
  const rows: [number | undefined, string][] = [
    [200, '200'],
    [429, '429'],
    [418, '4xx'],
    [599, '5xx'],
    [0, 'none'],
    [undefined, 'none'],
    [999, 'other'],
  ];
  for (const [code, want] of rows) assert.equal(statusLabel(code), want, String(code));
  const ops: [string, string][] = [
    ['/v1/chat/completions', 'chat'],
    ['/v1/messages?beta=true', 'chat'],
    ['/v1/embeddings', 'embeddings'],
    ['/v1/completions', 'text_completion'],
    ['/v1/models', 'other'],
  ];
  for (const [ep, want] of ops) assert.equal(operationName(ep), want, ep);
});

test('/healthz, /readyz (200/503 with detail), 404, 405, HEAD and extra routes', async () => {
  let readiness: Readiness = { ready: true, detail: { config: { loaded: true, revision: 'rev-1' } } };
  const metrics = createMetrics({ collectDefault: false });
  const server = await startTelemetryServer({
    addr: '127.0.0.1:0',
    metrics,
    readiness: () => {
      if (readiness.detail.throw) throw new Error('boom');
      return readiness;
    },
    extraRoutes: new Map([['/debug/config', (_req, res) => void res.end('cfg')]]),
    // The detail is admin-only (test/security covers the guard); here every caller is admin.
    admin: adminGuard({ openWithoutToken: true }),
  });
  try {
    assert.equal(server.host, '127.0.0.1');
    const h = await get(server.port, '/healthz');
    assert.deepEqual([h.status, h.body], [200, 'ok\n']);
    const r1 = await get(server.port, '/readyz');
    assert.equal(r1.status, 200);
    assert.deepEqual(JSON.parse(r1.body), { config: { loaded: true, revision: 'rev-1' }, ready: true });
    readiness = { ready: false, detail: { ready: true, lineage: { spoolNearFull: true }, lastReloadError: 'policies/a.yaml:3:1: bad' } };
    const r2 = await get(server.port, '/readyz');
    assert.equal(r2.status, 503);
    const body = JSON.parse(r2.body) as Record<string, unknown>;
    assert.equal(body.ready, false, 'detail cannot override the verdict');
    assert.equal(body.lastReloadError, 'policies/a.yaml:3:1: bad');
    readiness = { ready: true, detail: { throw: true } };
    const r3 = await get(server.port, '/readyz');
    assert.equal(r3.status, 503);
    assert.match(r3.body, /readiness check failed: boom/);
    assert.equal((await get(server.port, '/nope')).status, 404);
    const post = await get(server.port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const head = await get(server.port, '/healthz', 'HEAD');
    assert.deepEqual([head.status, head.body], [200, '']);
    assert.equal((await get(server.port, '/debug/config')).body, 'cfg');
    assert.equal((await get(server.port, '/metrics?x=1')).status, 200);
  } finally {
    await server.close();
  }
});

test('telemetry address parsing', async () => {
  assert.deepEqual(parseAddr('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseAddr('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAddr('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['9464', ':9464', '127.0.0.1:99999', '127.0.0.1:x', '::1:80']) {
    assert.throws(() => parseAddr(bad), /telemetry address/, bad);
  }
  const metrics = createMetrics({ collectDefault: false });
  const a = await startTelemetryServer({ addr: '127.0.0.1:0', metrics, readiness: () => ({ ready: true, detail: {} }) });
  try {
    await assert.rejects(
      startTelemetryServer({ addr: `127.0.0.1:${a.port}`, metrics, readiness: () => ({ ready: true, detail: {} }) }),
      /EADDRINUSE/,
    );
  } finally {
    await a.close();
  }
});
