// The request metrics fast path (bound-series.ts) prints exactly what prom-client's own inc()/observe() printed:
// the same /metrics text, series order included, for a fixed sequence of records — also across a reset() of a
// metric, values prom-client rejects, and more label tuples than the bound cache holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, recordRequestMetrics, type Metrics } from '../../service/telemetry/metrics.ts';
import { MAX_BOUND_SERIES } from '../../service/telemetry/bound-series.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { variedRecords } from '../lineage/varied-records.ts';
import { legacyRecordRequestMetrics } from './legacy-request-metrics.ts';

function pair(maxDistinctPerLabel?: number): [Metrics, Metrics] {
  const mk = () => createMetrics({ collectDefault: false, maxDistinctPerLabel, now: () => Date.UTC(2025, 2, 1) });
  return [mk(), mk()];
}

/** Feeds the same records to both; a throw must happen on both sides alike. */
function feed(fast: Metrics, legacy: Metrics, records: LineageRecord[]): void {
  for (const r of records) {
    let a: unknown;
    let b: unknown;
    try {
      recordRequestMetrics(fast, r);
    } catch (err) {
      a = (err as Error).message;
    }
    try {
      legacyRecordRequestMetrics(legacy, r);
    } catch (err) {
      b = (err as Error).message;
    }
    assert.equal(a, b, `record ${JSON.stringify(r.requestId)}`);
  }
}

const sequence = (): LineageRecord[] => {
  const varied = variedRecords().filter((r) => r.requestId !== 'numbers');
  const out: LineageRecord[] = [];
  for (let i = 0; i < 40; i++) {
    for (const r of varied) {
      out.push({
        ...r,
        latency: r.latency && { ...r.latency, requestBodyUs: (i * 37) % 900, upstreamTotalMs: i * 123.456, policyEvalUs: i * 0.3 },
        costUsd: r.costUsd === undefined ? undefined : r.costUsd * (1 + i / 7),
      });
    }
  }
  return out;
};

test('/metrics text is identical to plain prom-client for a fixed sequence of records', async () => {
  const [fast, legacy] = pair();
  fast.setKnownLabels({ tenants: ['acme'], policies: ['pii', 'models', 'residency'] });
  legacy.setKnownLabels({ tenants: ['acme'], policies: ['pii', 'models', 'residency'] });
  const seq = sequence();
  feed(fast, legacy, seq.slice(0, 200));
  assert.equal(await fast.registry.metrics(), await legacy.registry.metrics());
  feed(fast, legacy, seq.slice(200));
  const text = await fast.registry.metrics();
  assert.equal(text, await legacy.registry.metrics());
  assert.match(text, /tollgate_requests_total\{tenant="acme",model="gpt-4o",provider="openai",decision="success",status="200"\} \d+/);
  assert.match(text, /gen_ai_client_token_usage_bucket\{le="1024",gen_ai_operation_name="chat"/);
  assert.match(text, /tollgate_mcp_calls_total\{server="files",method="tools\/call",tool="read_file"/);
});

test('a metric reset meanwhile, and values prom-client rejects, behave exactly as with plain prom-client', async () => {
  const [fast, legacy] = pair();
  const seq = sequence();
  feed(fast, legacy, seq.slice(0, 50));
  for (const m of [fast, legacy]) {
    m.requests.reset();
    m.processingDuration.reset();
    m.tokens.remove({ tenant: 'acme', model: 'gpt-4o', provider: 'openai', type: 'input' });
  }
  feed(fast, legacy, seq.slice(50, 120));
  // NaN / infinite observations: prom-client throws for histograms (the record's remaining metrics are skipped).
  feed(fast, legacy, [variedRecords().find((r) => r.requestId === 'numbers')!]);
  feed(fast, legacy, [completeRecord({ tokens: { input: NaN, output: 1 } }), completeRecord({ tokens: { input: Infinity, output: 2 } }), completeRecord({ latency: { requestHeadersUs: Infinity } })]);
  feed(fast, legacy, seq.slice(120, 160));
  assert.equal(await fast.registry.metrics(), await legacy.registry.metrics());
});

test('more label tuples than the bound cache holds are still all counted', async () => {
  const [fast, legacy] = pair(MAX_BOUND_SERIES + 500);
  const records = Array.from({ length: MAX_BOUND_SERIES + 300 }, (_, i) =>
    completeRecord({ requestId: `r${i}`, principal: { authMethod: 'virtual_key', tenant: `t${i}` }, attempts: [], tokens: undefined, latency: undefined, budgets: [], redactions: [], policy: undefined }),
  );
  feed(fast, legacy, records);
  feed(fast, legacy, records.slice(-10));
  const text = await fast.registry.metrics();
  assert.equal(text, await legacy.registry.metrics());
  assert.match(text, new RegExp(`tollgate_requests_total\\{tenant="t${MAX_BOUND_SERIES + 299}",[^}]*\\} 2`));
});
