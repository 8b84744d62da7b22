// Lineage benchmark: hot-path emit() cost, off-path serialization, end-to-end drain throughput to a JSONL file
// (with metrics), and schema validation cost. Bounded: a few seconds.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { LineageEmitter } from '../../service/lineage/emitter.ts';
import { FileSink, type LineageSink } from '../../service/lineage/sinks.ts';
import { toProtoJson, type LineageRecord } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { createMetrics } from '../../service/telemetry/metrics.ts';
import { completeRecord } from '../lineage/fixtures.ts';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function fmt(us: number): string {
  return us < 10 ? us.toFixed(2) : us.toFixed(1);
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
