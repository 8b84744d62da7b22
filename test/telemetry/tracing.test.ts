import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  startSpan,
} from '../../service/telemetry/tracing.ts';
import { OtlpSpanExporter, createOtlpExporter, spanFromLineage } from '../../service/telemetry/otlp.ts';
import { createMetrics } from '../../service/telemetry/metrics.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { parsePromText, sampleValue } from './promtext.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

test('traceparent parsing follows W3C Trace Context', () => {
  const rows: [string | undefined, { traceId: string; parentSpanId: string; sampled: boolean } | undefined][] = [
    [`00-${T}-${S}-01`, { traceId: T, parentSpanId: S, sampled: true }],
    [`00-${T}-${S}-00`, { traceId: T, parentSpanId: S, sampled: false }],
    [`  00-${T}-${S}-03 `, { traceId: T, parentSpanId: S, sampled: true }],
    // A future version: parse the 00 prefix, ignore what follows a dash.
    [`01-${T}-${S}-01-extra`, { traceId: T, parentSpanId: S, sampled: true }],
    [`01-${T}-${S}-01`, { traceId: T, parentSpanId: S, sampled: true }],
    [undefined, undefined],
    ['', undefined],
    [`00-${T}-${S}-01-extra`, undefined], // version 00 must be exactly 55 chars
    [`ff-${T}-${S}-01`, undefined], // forbidden version
    [`00-${'0'.repeat(32)}-${S}-01`, undefined], // all-zero trace id
    [`00-${T}-${'0'.repeat(16)}-01`, undefined], // all-zero span id
    [`00-${T.toUpperCase()}-${S}-01`, undefined], // uppercase hex
    [`00-${T.slice(1)}-${S}-01`, undefined], // short trace id
    [`00-${T}-${S.slice(1)}-001`, undefined], // misplaced dash
    [`00_${T}-${S}-01`, undefined],
    [`00-${T}-${S}-0g`, undefined], // bad flags
    [`0x-${T}-${S}-01`, undefined], // bad version
    [`01-${T}-${S}-01x`, undefined], // future version without a dash after the flags
  ];
  for (const [header, want] of rows) {
    const got = parseTraceparent(header);
    if (want === undefined) assert.equal(got, undefined, String(header));
    else assert.deepEqual({ traceId: got?.traceId, parentSpanId: got?.parentSpanId, sampled: got?.sampled }, want, header);
  }
});

test('a span continues the caller trace or starts a new one; ids are well-formed', () => {
  const cont = startSpan(`00-${T}-${S}-01`);
  assert.equal(cont.traceId, T);
  assert.equal(cont.parentSpanId, S);
  assert.notEqual(cont.spanId, S);
  assert.match(cont.spanId, /^[0-9a-f]{16}$/);
  assert.equal(formatTraceparent(cont), `00-${T}-${cont.spanId}-01`);
  assert.deepEqual(parseTraceparent(formatTraceparent(cont))?.parentSpanId, cont.spanId);

  const fresh = startSpan('garbage');
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
  assert.equal(fresh.parentSpanId, undefined);
  assert.equal(fresh.sampled, true);
  assert.equal(startSpan(undefined, { sampleRatio: 0 }).sampled, false);
  const ids = new Set(Array.from({ length: 1000 }, () => newSpanId()));
  assert.equal(ids.size, 1000);
  assert.match(newTraceId(), /^[0-9a-f]{32}$/);
});

interface Captured {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

async function fakeCollector(status = 200): Promise<{ url: string; requests: Captured[]; close(): Promise<void> }> {
  const requests: Captured[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(body) });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

test('OTLP/HTTP JSON export to a loopback collector, driven by request records', async () => {
  const collector = await fakeCollector();
  const metrics = createMetrics({ collectDefault: false });
  const exporter = new OtlpSpanExporter({
    endpoint: collector.url,
    headers: { 'x-tenant': 'ops' },
    serviceInstanceId: 'tollgate-0',
    metrics,
    flushIntervalMs: 10_000,
  });
  try {
    exporter.observe(completeRecord());
    exporter.observe(
      completeRecord({
        requestId: 'req-denied',
        trace: { traceId: T, spanId: 'aaaaaaaaaaaaaaaa', sampled: true },
        outcome: 'denied',
        statusCode: 403,
        errorClass: 'permission',
        errorCode: 'policy_denied',
      }),
    );
    exporter.observe(completeRecord({ requestId: 'req-unsampled', trace: { traceId: T, spanId: 'bbbbbbbbbbbbbbbb', sampled: false } }));
    await exporter.close();
    assert.equal(collector.requests.length, 1, 'one batch');
    const req = collector.requests[0]!;
    assert.equal(req.path, '/v1/traces');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-tenant'], 'ops');
    const rs = req.body.resourceSpans[0];
    assert.deepEqual(rs.resource.attributes[0], { key: 'service.name', value: { stringValue: 'tollgate' } });
    const spans = rs.scopeSpans[0].spans;
    assert.equal(spans.length, 2, 'unsampled traces are not exported');
    const [ok, denied] = spans;
    assert.equal(ok.traceId, T);
    assert.equal(ok.spanId, S);
    assert.equal(ok.parentSpanId, 'b7ad6b7169203331');
    assert.equal(ok.name, 'chat gpt-4o');
    assert.equal(ok.kind, 2);
    assert.equal(ok.startTimeUnixNano, '1740830400000000000');
    assert.equal(ok.endTimeUnixNano, '1740830401250000000');
    assert.deepEqual(ok.status, { code: 0 });
    const attr = (span: any, key: string) => span.attributes.find((a: any) => a.key === key)?.value;
    assert.deepEqual(attr(ok, 'gen_ai.usage.input_tokens'), { intValue: '1200' });
    assert.deepEqual(attr(ok, 'gen_ai.provider.name'), { stringValue: 'openai' });
    assert.deepEqual(attr(ok, 'tollgate.cost_usd'), { doubleValue: 0.0123 });
    assert.equal(attr(ok, 'enduser.id'), undefined);
    assert.ok(!JSON.stringify(req.body).includes('alice'), 'no user ids in spans');
    assert.ok(!JSON.stringify(req.body).includes('vk_acme_ops'), 'no key ids in spans');
    assert.equal(denied.parentSpanId, undefined);
    assert.deepEqual(denied.status, { code: 2, message: 'policy_denied' });
    assert.deepEqual(attr(denied, 'error.type'), { stringValue: 'permission' });
    const s = parsePromText(await metrics.registry.metrics());
    assert.equal(sampleValue(s, 'tollgate_otlp_spans_exported_total'), 2);
  } finally {
    await collector.close();
  }
});

test('OTLP export failures are counted and dropped; endpoint forms and config', async () => {
  const collector = await fakeCollector(503);
  const metrics = createMetrics({ collectDefault: false });
  try {
    const exporter = new OtlpSpanExporter({ endpoint: `${collector.url}/v1/traces`, metrics, flushIntervalMs: 10_000 });
    assert.equal(exporter.url, `${collector.url}/v1/traces`);
    const span = spanFromLineage(completeRecord())!;
    exporter.enqueue(span);
    exporter.enqueue(span);
    await exporter.close();
    const s = parsePromText(await metrics.registry.metrics());
    assert.equal(sampleValue(s, 'tollgate_otlp_spans_dropped_total', { reason: 'export_error' }), 2);
    assert.equal(new OtlpSpanExporter({ endpoint: 'http://c:4318/otel/' }).url, 'http://c:4318/otel/v1/traces');
    assert.throws(() => new OtlpSpanExporter({ endpoint: 'not a url' }), /otlp\.endpoint "not a url" is not a URL/);
    assert.throws(() => new OtlpSpanExporter({ endpoint: 'ftp://x' }), /must be http\(s\)/);
    assert.equal(createOtlpExporter(undefined), undefined);
    assert.equal(createOtlpExporter({}), undefined);
    const queued = new OtlpSpanExporter({ endpoint: collector.url, maxQueue: 1, metrics, flushIntervalMs: 10_000 });
    queued.enqueue(span);
    queued.enqueue(span);
    const s2 = parsePromText(await metrics.registry.metrics());
    assert.equal(sampleValue(s2, 'tollgate_otlp_spans_dropped_total', { reason: 'queue_full' }), 1);
    await queued.close();
  } finally {
    await collector.close();
  }
});
