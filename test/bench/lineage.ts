// Lineage benchmark: hot-path emit() cost, off-path serialization, end-to-end drain throughput to a JSONL file
// (with metrics), and schema validation cost. Bounded: a few seconds.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { pino } from 'pino';
import { LineageEmitter } from '../../service/lineage/emitter.ts';
import { FileSink, type LineageSink } from '../../service/lineage/sinks.ts';
import { toProtoJson, type LineageRecord } from '../../service/lineage/record.ts';
import { toJsonLine } from '../../service/lineage/json-line.ts';
import { legacyToProtoJson } from '../lineage/legacy-proto-json.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { createMetrics, recordRequestMetrics, type Metrics } from '../../service/telemetry/metrics.ts';
import { completeRecord, exchangeRecord } from '../lineage/fixtures.ts';
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
  // the proto-JSON object), interleaved, on the record of an exchange-bench request (17 rule outcomes of the example
  // policies, 3 budgets; ~4.7 KB), each written into a reused buffer as the file sink does; and the heap allocated
  // per record (counted over rounds of 50 records; a round during which a scavenge ran undercounts).
  {
    const rec = exchangeRecord();
    const buf = Buffer.allocUnsafeSlow(1 << 16);
    let bytes = 0;
    const before = () => (bytes += buf.write(JSON.stringify(legacyToProtoJson(rec)) + '\n', 0));
    const now = () => {
      const json = toJsonLine(rec);
      bytes += buf.write(json, 0) + 1;
      buf[json.length] = 0x0a;
    };
    const r = ab(before, now, 20_000);
    out.push(
      `lineage: serialize A/B (exchange-shaped record, into the sink's buffer): before ${fmt(r.a)}µs vs now ${fmt(r.b)}µs per record (median ratio ${r.ratio.toFixed(2)}x, CPU)`,
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
