// Lineage, metrics and traces consume each finished request's record independently: with the lineage queue full
// (records dropped, and counted as dropped), /metrics still counts every request exactly and every request still
// gets its span. Official OpenAI SDK → Envoy front → Tollgate, OTLP to a loopback collector.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';
import { parsePromText, sampleValue, type Sample } from '../telemetry/promtext.ts';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: consumers}
spec:
  rules:
    - name: no-forbidden-word
      deny:
        expression: request.messages.exists(m, m.text.contains('forbidden-word'))
`;

/** Lineage holds 2 records at most and never drains on its own timer during the test: the rest is queue_full. */
const LINEAGE_ROOM = 2;

interface Collector {
  url: string;
  spans: { traceId: string; attributes: { key: string; value: { stringValue?: string } }[] }[];
  close(): Promise<void>;
}

async function collector(): Promise<Collector> {
  const spans: Collector['spans'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const j = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: Collector['spans'] }[] }[] };
      for (const rs of j.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

describe('e2e: metrics and traces do not depend on lineage delivery', { timeout: 60000 }, () => {
  let h: Harness;
  let otlp: Collector;

  before(async () => {
    otlp = await collector();
    h = await startHarness({
      extraYaml: POLICY,
      tollgate: { otlpEndpoint: otlp.url, lineageQueue: { maxInMemory: LINEAGE_ROOM, flushIntervalMs: 600_000 } },
    });
  });
  after(async () => {
    await h?.close();
    await otlp?.close();
  });

  async function scrape(): Promise<Sample[]> {
    const res = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/metrics`);
    assert.equal(res.status, 200);
    return parsePromText(await res.text());
  }
  const total = (s: Sample[], name: string, labels: Record<string, string> = {}) =>
    s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((n, x) => n + x.value, 0);

  it('with the lineage queue full, /metrics counts every request and every request has a span', async () => {
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0 });
    const requestIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] }).withResponse();
      requestIds.push(response.headers.get('x-request-id')!);
    }
    for (let i = 0; i < 2; i++) {
      const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `forbidden-word ${i}` }] }).catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.PermissionDeniedError);
      requestIds.push(err.headers?.get('x-request-id') ?? '');
    }
    // Every request has ended and handed its record over (the harness sees each one as lineage is offered it).
    await eventually(() => requestIds.every((id) => h.lineage.some((r) => r.requestId === id)), 10000);
    await h.tollgate.lineage.flush();

    const s = await scrape();
    // Lineage really was full: it kept LINEAGE_ROOM records and dropped (and counted) the rest.
    assert.equal(sampleValue(s, 'tollgate_lineage_records_emitted_total'), LINEAGE_ROOM);
    assert.equal(sampleValue(s, 'tollgate_lineage_records_dropped_total', { sink: '*', reason: 'queue_full' }), 6 - LINEAGE_ROOM);
    // Metrics: every request, exactly.
    assert.equal(total(s, 'tollgate_requests_total'), 6);
    assert.equal(total(s, 'tollgate_requests_total', { tenant: 'acme', decision: 'success', status: '200' }), 4);
    assert.equal(total(s, 'tollgate_requests_total', { tenant: 'acme', decision: 'denied', status: '403' }), 2);
    assert.equal(total(s, 'tollgate_tokens_total', { tenant: 'acme', type: 'input' }), 4 * 12, 'fake provider usage: 12 input tokens each');
    assert.equal(total(s, 'tollgate_upstream_attempts_total', { status: '200' }), 4);

    // Traces: one span per request, lineage or not.
    await eventually(() => otlp.spans.length >= 6, 5000);
    const spanRequestIds = otlp.spans.map((sp) => sp.attributes.find((a) => a.key === 'tollgate.request_id')?.value.stringValue);
    assert.deepEqual([...spanRequestIds].sort(), [...requestIds].sort());
  });
});
