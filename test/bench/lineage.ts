// Lineage benchmark: hot-path emit() cost, off-path serialization, end-to-end drain throughput to a JSONL file
// (with metrics), and schema validation cost. Bounded: a few seconds.
import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { pino } from 'pino';
import { startTollgate } from '../../service/app.ts';
import { decodeRequest } from '../../service/extproc/codec.ts';
import { Processor } from '../../service/extproc/processor.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { GatewayExchange } from '../../service/gateway/exchange.ts';
import { chatWorkload } from './chat-workload.ts';
import { benchBundle } from './bench-bundle.ts';
import { LineageEmitter } from '../../service/lineage/emitter.ts';
import { FileSink, type LineageSink } from '../../service/lineage/sinks.ts';
import { toProtoJson, type LineageRecord } from '../../service/lineage/record.ts';
import { toJsonLine } from '../../service/lineage/json-line.ts';
import { legacyToProtoJson } from '../lineage/legacy-proto-json.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { createMetrics, recordRequestMetrics, type Metrics } from '../../service/telemetry/metrics.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { legacyRecordRequestMetrics } from '../telemetry/legacy-request-metrics.ts';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function fmt(us: number): string {
  return us < 10 ? us.toFixed(2) : us.toFixed(1);
}

/** CPU µs per call of `f` over `n` calls. */
function cpuUs(f: (i: number) => void, n: number): number {
  const c = process.cpuUsage();
  for (let i = 0; i < n; i++) f(i);
  const d = process.cpuUsage(c);
  return (d.user + d.system) / n;
}

/** Median of 7 interleaved rounds A, B, A, B … (CPU time), and the median of the per-round ratios A/B. */
function ab(a: (i: number) => void, b: (i: number) => void, n: number): { a: number; b: number; ratio: number } {
  cpuUs(a, n / 4);
  cpuUs(b, n / 4);
  const as: number[] = [];
  const bs: number[] = [];
  const rs: number[] = [];
  for (let round = 0; round < 7; round++) {
    const x = cpuUs(a, n);
    const y = cpuUs(b, n);
    as.push(x);
    bs.push(y);
    rs.push(x / y);
  }
  const med = (v: number[]) => v.sort((p, q) => p - q)[v.length >> 1]!;
  return { a: med(as), b: med(bs), ratio: med(rs) };
}

function records(n: number): LineageRecord[] {
  return Array.from({ length: n }, (_, i) => completeRecord({ requestId: `bench-${i}` }));
}

/**
 * Lineage records of real exchanges: the extproc bench's chat request through the example policies (limits
 * raised), wire messages → Processor → GatewayExchange, each record caught at emit. What the drain serializes under
 * the server: 17 rule outcomes, 3 budgets, fresh ids, times and numbers per request, and the strings as the request
 * path makes them (sliced, concatenated, some two-byte) — a record parsed back from JSON has none of that and
 * serializes markedly faster.
 */
async function exchangeRecords(n: number): Promise<LineageRecord[]> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tg-bench-lineage-'));
  const dir = benchBundle(tmp);
  const saved = { ...process.env };
  Object.assign(process.env, { OPENAI_API_KEY: 'bench', ANTHROPIC_API_KEY: 'bench', AZURE_OPENAI_API_KEY: 'bench' });
  const tg = await startTollgate({
    configDir: dir,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    lineageSinks: ['none'],
    spoolDir: path.join(tmp, 'spool'),
    log: pino({ level: 'silent' }),
    watchConfig: false,
    redactionSecret: 'bench-secret-0123456789abcdef',
  });
  const recs: LineageRecord[] = [];
  (tg.lineage as { emit: (r: LineageRecord) => void }).emit = (r) => {
    recs.push(r);
  };
  try {
    const { body, response } = chatWorkload();
    const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });
    const svc = extProcService().Process!;
    const wires = [
      { request_headers: { headers: { headers: [hv(':method', 'POST'), hv(':path', '/v1/chat/completions'), hv('content-type', 'application/json'), hv('authorization', 'Bearer tg-demo-acme-research-0000000000000001')] }, end_of_stream: false } },
      { request_body: { body, end_of_stream: true } },
      { response_headers: { headers: { headers: [hv(':status', '200'), hv('content-type', 'application/json')] }, end_of_stream: false } },
      { response_body: { body: response, end_of_stream: true } },
    ].map((m) => svc.requestSerialize(m) as Buffer);
    for (let i = 0; i < n; i++) {
      const p = new Processor(new GatewayExchange(tg.services));
      for (const w of wires) {
        const r = p.handleNow(decodeRequest(w));
        if (r instanceof Promise) await r;
      }
      if (i % 32 === 31) await new Promise((r) => setImmediate(r));
    }
  } finally {
    await tg.close(100);
    process.env = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
  if (recs.length !== n) throw new Error(`lineage bench: ${recs.length} records from ${n} exchanges`);
  return recs;
}

export async function bench(): Promise<string[]> {
  const out: string[] = [];
  const silent = pino({ level: 'silent' });
  const nullSink: LineageSink = { name: 'null', durable: false, write: async (b) => ({ written: b.length }), close: async () => {} };

  // 1. emit() on the hot path, with the drain running between bursts as it would in a live process.
  {
    const em = await LineageEmitter.open({ sinks: [nullSink], logger: silent });
    const recs = records(1000);
    const samples: number[] = [];
    for (let round = 0; round < 25; round++) {
      for (let i = 0; i < recs.length; i++) {
        const t0 = process.hrtime.bigint();
        em.emit(recs[i]!);
        const t1 = process.hrtime.bigint();
        if (round >= 5) samples.push(Number(t1 - t0) / 1000);
      }
      await new Promise((r) => setImmediate(r));
    }
    await em.close();
    samples.sort((a, b) => a - b);
    out.push(
      `lineage: emit() hot path p50 ${fmt(pct(samples, 50))}µs p99 ${fmt(pct(samples, 99))}µs p99.9 ${fmt(pct(samples, 99.9))}µs (target ≤ 20µs; ${samples.length} calls)`,
    );
  }

  // 2. Off the hot path: proto JSON + stringify per record.
  {
    const r = completeRecord();
    let n = 0;
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    const stop = Date.now() + 700;
    while (Date.now() < stop) {
      for (let i = 0; i < 100; i++) bytes += JSON.stringify(toProtoJson(r)).length;
      n += 100;
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
    out.push(`lineage: serialize (toProtoJson + JSON.stringify) ${fmt(us)}µs/record, ${Math.round(bytes / n)} B/record`);
  }

  // 2b. The drain's serialization against the implementation before it (legacy-proto-json.ts: JSON.stringify of
  // the proto-JSON object), interleaved, on 2,000 records of real exchanges (exchangeRecords: 17 rule outcomes of the
  // example policies, 3 budgets; ~4.8 KB), each encoded into a reused buffer as the file sink does; and the heap
  // allocated per record (counted over rounds of 50 records; a round during which a scavenge ran undercounts).
  {
    const recs = await exchangeRecords(2000);
    const buf = Buffer.allocUnsafeSlow(1 << 16);
    let bytes = 0;
    let k = 0;
    const before = () => (bytes += buf.write(JSON.stringify(legacyToProtoJson(recs[k++ % recs.length]!)) + '\n', 0));
    const now = () => {
      const json = toJsonLine(recs[k++ % recs.length]!);
      bytes += buf.write(json, 0) + 1;
      buf[json.length] = 0x0a;
    };
    const r = ab(before, now, 20_000);
    out.push(
      `lineage: serialize A/B (real exchange records, into the sink's buffer): before ${fmt(r.a)}µs vs now ${fmt(r.b)}µs per record (median ratio ${r.ratio.toFixed(2)}x, CPU)`,
    );
    // The same with traffic from many keys and users: the principal, a budget's scope, a rule's message and the
    // deployment change from record to record (toJsonLine's remembered runs and rules list miss).
    const varied = recs.map((x, i): LineageRecord => ({
      ...x,
      principal: { ...x.principal, user: `user-${i % 500}`, keyId: `key-${i % 300}` },
      served: x.served && { ...x.served, deployment: `gpt-4o-mini/azure-eu/${i % 3}` },
      budgets: x.budgets?.map((b, j) => (j === 0 ? { ...b, scopeKey: `key:key-${i % 300}` } : b)),
      policy: x.policy && { ...x.policy, rules: x.policy.rules?.map((o, j) => (j === 6 ? { ...o, message: `key:key-${i % 300}` } : o)) },
    }));
    const rv = ab(
      () => (bytes += buf.write(JSON.stringify(legacyToProtoJson(varied[k++ % varied.length]!)) + '\n', 0)),
      () => {
        const json = toJsonLine(varied[k++ % varied.length]!);
        bytes += buf.write(json, 0) + 1;
        buf[json.length] = 0x0a;
      },
      20_000,
    );
    out.push(
      `lineage: serialize A/B (the same, principal/scope/rule message/deployment varying per record): before ${fmt(rv.a)}µs vs now ${fmt(rv.b)}µs per record (median ratio ${rv.ratio.toFixed(2)}x, CPU)`,
    );
    const heap = (f: () => void): number => {
      const k = 50;
      const h0 = v8.getHeapStatistics().used_heap_size;
      for (let i = 0; i < k; i++) f();
      return (v8.getHeapStatistics().used_heap_size - h0) / k;
    };
    const ha: number[] = [];
    const hb: number[] = [];
    for (let round = 0; round < 21; round++) {
      ha.push(heap(before));
      hb.push(heap(now));
    }
    // Rounds where a scavenge ran show a negative or tiny delta: the largest is the allocation.
    out.push(`lineage: serialize heap allocation ≈ before ${(Math.max(...ha) / 1024).toFixed(1)} KB vs now ${(Math.max(...hb) / 1024).toFixed(1)} KB per record`);
  }

  // 2c. Request metrics per record: prom-client per call (before) against the pre-bound series, interleaved.
  {
    const recs = records(64);
    const legacy: Metrics = createMetrics({ collectDefault: false });
    const fast: Metrics = createMetrics({ collectDefault: false });
    const r = ab(
      (i) => legacyRecordRequestMetrics(legacy, recs[i & 63]!),
      (i) => recordRequestMetrics(fast, recs[i & 63]!),
      20_000,
    );
    out.push(
      `lineage: request metrics A/B: prom-client per call ${fmt(r.a)}µs vs bound series ${fmt(r.b)}µs per record (median ratio ${r.ratio.toFixed(2)}x, CPU)`,
    );
  }

  // 3. End to end: emit → serialize → metrics → JSONL file sink (fsync per batch).
  {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-bench-'));
    try {
      const em = await LineageEmitter.open({
        sinks: [new FileSink({ path: path.join(dir, 'lineage.jsonl'), maxBytes: 1 << 30 })],
        spoolDir: path.join(dir, 'spool'),
        metrics: createMetrics({ collectDefault: false }),
        logger: silent,
        flushIntervalMs: 10,
        batchSize: 512,
      });
      // Offer records in bursts for ~1.5 s, then wait for the pipeline to catch up.
      const recs = records(2000);
      let n = 0;
      const t0 = process.hrtime.bigint();
      const stop = Date.now() + 1500;
      while (Date.now() < stop) {
        for (const r of recs) em.emit(r);
        n += recs.length;
        await em.flush();
      }
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      await em.close();
      const size = (await fs.stat(path.join(dir, 'lineage.jsonl'))).size;
      out.push(
        `lineage: drain to JSONL file (fsync per batch, with metrics) ${Math.round(n / s).toLocaleString('en-US')} records/s, ${(size / s / 1e6).toFixed(1)} MB/s`,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  // 4. Schema validation (tests / debug mode only).
  {
    const j = JSON.parse(JSON.stringify(toProtoJson(completeRecord()))) as unknown;
    validateLineageRecord(j); // load the proto once
    let n = 0;
    const t0 = process.hrtime.bigint();
    const stop = Date.now() + 500;
    while (Date.now() < stop) {
      for (let i = 0; i < 20; i++) validateLineageRecord(j);
      n += 20;
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
    out.push(`lineage: validateLineageRecord ${fmt(us)}µs/record (not on the request path)`);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await bench()) console.log(line);
}
