import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LineageEmitter } from '../../service/lineage/emitter.ts';
import { FileSink, StdoutSink, type LineageSink, type SinkEntry, type WriteResult } from '../../service/lineage/sinks.ts';
import { RedisSink } from '../../service/lineage/redis-sink.ts';
import { queryLineage } from '../../service/lineage/query.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { GatewayError } from '../../service/errors.ts';
import { createMetrics } from '../../service/telemetry/metrics.ts';
import { parsePromText, sampleValue } from '../telemetry/promtext.ts';
import { completeRecord } from './fixtures.ts';
import { PrivateRedis } from './redis-server.ts';

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-lineage-'));
}

function rec(i: number, tenant = 'acme') {
  return completeRecord({
    requestId: `req-${String(i).padStart(6, '0')}`,
    decisionId: `dec-${i}`,
    principal: { authMethod: 'virtual_key', keyId: 'vk_1', tenant },
    startTime: new Date(Date.UTC(2025, 2, 1, 12, 0, 0) + i * 1000),
    endTime: new Date(Date.UTC(2025, 2, 1, 12, 0, 0) + i * 1000 + 500),
  });
}

/** A log sink capturing pino lines, to assert on warnings/errors. */
function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function streamRequestIds(r: PrivateRedis, key: string): Promise<string[]> {
  const c = r.client();
  try {
    const entries = (await c.xrange(key, '-', '+')) as [string, string[]][];
    return entries.map(([, f]) => (JSON.parse(f[1]!) as { requestId: string }).requestId);
  } finally {
    c.disconnect();
  }
}

test('Redis down for a while, Tollgate restarted meanwhile: every record arrives, in order, once', async () => {
  const redis = await PrivateRedis.start();
  const spoolDir = await tmpDir();
  const key = 'test:lineage:outage';
  const { logger, lines } = captureLogger();
  const open = (metrics = createMetrics({ collectDefault: false })) =>
    LineageEmitter.open({
      sinks: [new RedisSink({ url: redis.url, streamKey: key, commandTimeoutMs: 500 })],
      spoolDir,
      metrics,
      logger,
      flushIntervalMs: 10,
      batchSize: 20,
      retryMinMs: 50,
      retryMaxMs: 200,
    });
  try {
    // Phase 1: Redis up.
    let em = await open();
    for (let i = 0; i < 30; i++) em.emit(rec(i));
    await em.flush();
    assert.equal((await streamRequestIds(redis, key)).length, 30);

    // Phase 2: Redis goes away; records keep coming and land in the spool.
    await redis.stop();
    for (let i = 30; i < 130; i++) em.emit(rec(i));
    await em.flush();
    await until(() => (em.health().sinks.redis?.spool?.records ?? 0) === 100, 10_000, 'records spooled');
    const h = em.health();
    assert.equal(h.sinks.redis?.up, false);
    assert.equal(h.degraded, true);
    assert.ok(lines.some((l) => l.msg === 'lineage sink failing'), 'the outage is logged');

    // Phase 3: "restart Tollgate" while Redis is still down.
    await em.close(2000);
    const metrics2 = createMetrics({ collectDefault: false });
    em = await open(metrics2);
    assert.equal(em.health().sinks.redis?.spool?.records, 100, 'the backlog survived the restart');
    for (let i = 130; i < 150; i++) em.emit(rec(i));
    await em.flush();

    // Phase 4: Redis returns (empty: it was started without persistence) and the backlog replays.
    await redis.startProcess();
    for (let i = 150; i < 160; i++) em.emit(rec(i));
    await until(async () => em.health().sinks.redis?.spool?.records === 0 && em.health().queueDepth === 0, 20_000, 'replay');
    await em.flush();
    const ids = await streamRequestIds(redis, key);
    const expected = Array.from({ length: 130 }, (_, i) => `req-${String(i + 30).padStart(6, '0')}`);
    assert.deepEqual(ids, expected, 'records written after the outage began arrive in emit order, none twice');
    assert.equal(em.health().sinks.redis?.up, true);
    assert.equal(em.health().dropped, 0);
    const samples = parsePromText(await metrics2.registry.metrics());
    // 100 spooled before the restart + 20 after it are replayed; the last 10 may be replayed or written directly.
    const replayed = sampleValue(samples, 'tollgate_lineage_records_replayed_total', { sink: 'redis' }) ?? 0;
    assert.ok(replayed >= 120 && replayed <= 130, `replayed ${replayed}`);
    assert.equal(sampleValue(samples, 'tollgate_lineage_records_written_total', { sink: 'redis' }), 130);
    assert.equal(sampleValue(samples, 'tollgate_lineage_records_dropped_total'), undefined, 'nothing lost');
    assert.equal(sampleValue(samples, 'tollgate_lineage_spool_records', { sink: 'redis' }), 0);
    assert.equal(sampleValue(samples, 'tollgate_lineage_sink_up', { sink: 'redis' }), 1);
    await em.close();
    const segs = (await fs.readdir(path.join(spoolDir, 'redis'))).filter((n) => n.startsWith('seg-'));
    assert.deepEqual(segs, [], 'the spool is empty on disk once replayed');
  } finally {
    await redis.stop();
    await fs.rm(spoolDir, { recursive: true, force: true });
  }
});

test('Redis sink: a replayed batch that already landed is not written twice', async () => {
  const redis = await PrivateRedis.start();
  try {
    const sink = new RedisSink({ url: redis.url, streamKey: 'test:dedupe', chunkSize: 3 });
    sink.setWriterId('0123456789abcdef');
    const batch: SinkEntry[] = Array.from({ length: 10 }, (_, i) => ({ seq: 1000 + i, json: JSON.stringify({ requestId: `r${i}` }) }));
    await until(() => sink.client.status === 'ready', 5000, 'redis ready');
    assert.deepEqual(await sink.write(batch.slice(0, 6)), { written: 6, duplicates: 0 });
    // Replay of an ambiguous failure: the first 6 are already there.
    assert.deepEqual(await sink.write(batch), { written: 10, duplicates: 6 });
    // Another writer (replica) with its own sequence writes to the same stream.
    const other = new RedisSink({ url: redis.url, streamKey: 'test:dedupe' });
    other.setWriterId('fedcba9876543210');
    await until(() => other.client.status === 'ready', 5000, 'redis ready');
    assert.deepEqual(await other.write([{ seq: 1, json: '{"requestId":"x"}' }]), { written: 1, duplicates: 0 });
    assert.equal((await streamRequestIds(redis, 'test:dedupe')).join(','), 'r0,r1,r2,r3,r4,r5,r6,r7,r8,r9,x');
    await sink.close();
    await other.close();
  } finally {
    await redis.stop();
  }
});

test('file sink: JSONL in order, size rotation keeps N files, query reads newest first', async () => {
  const dir = await tmpDir();
  const file = path.join(dir, 'lineage.jsonl');
  try {
    const em = await LineageEmitter.open({
      sinks: [new FileSink({ path: file, maxBytes: 16 * 1024, keep: 2 })],
      spoolDir: path.join(dir, 'spool'),
      flushIntervalMs: 10,
      validate: true,
    });
    for (let i = 0; i < 40; i++) em.emit(rec(i, i % 2 === 0 ? 'acme' : 'globex'));
    await em.close();
    const names = (await fs.readdir(dir)).filter((n) => n.startsWith('lineage.jsonl')).sort();
    assert.deepEqual(names, ['lineage.jsonl', 'lineage.jsonl.1', 'lineage.jsonl.2']);
    for (const n of names) {
      const st = await fs.stat(path.join(dir, n));
      assert.ok(st.size <= 16 * 1024, `${n} is within maxBytes`);
    }
    // Every line in every file is one complete, valid record, and the live file holds the newest ones.
    const live = (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const j of live) assert.deepEqual(validateLineageRecord(j), []);
    assert.equal(live[live.length - 1]!.requestId, 'req-000039');

    const newest = await queryLineage({ source: 'file', path: file, limit: 3 });
    assert.deepEqual(newest.records.map((r) => r.requestId), ['req-000039', 'req-000038', 'req-000037']);
    const globex = await queryLineage({ source: 'file', path: file, tenant: 'globex', limit: 2 });
    assert.deepEqual(globex.records.map((r) => r.requestId), ['req-000039', 'req-000037']);
    const one = await queryLineage({ source: 'file', path: file, requestId: 'req-000031', limit: 10 });
    assert.equal(one.records.length, 1);
    assert.equal(one.records[0]!.tokens?.input, 1200);
    const window = await queryLineage({
      source: 'file',
      path: file,
      since: new Date(Date.UTC(2025, 2, 1, 12, 0, 33)),
      until: new Date(Date.UTC(2025, 2, 1, 12, 0, 35)),
      limit: 10,
    });
    assert.deepEqual(window.records.map((r) => r.requestId), ['req-000035', 'req-000034', 'req-000033']);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('query from the Redis stream: newest first with filters', async () => {
  const redis = await PrivateRedis.start();
  try {
    const em = await LineageEmitter.open({
      sinks: [new RedisSink({ url: redis.url, streamKey: 'test:query' })],
      logger: captureLogger().logger,
      flushIntervalMs: 10,
    });
    for (let i = 0; i < 25; i++) em.emit(rec(i, i < 20 ? 'acme' : 'globex'));
    await em.close();
    const r = await queryLineage({ source: 'redis', redis: redis.url, streamKey: 'test:query', tenant: 'acme', limit: 2 });
    assert.deepEqual(r.records.map((x) => x.requestId), ['req-000019', 'req-000018']);
    const byId = await queryLineage({ source: 'redis', redis: redis.url, streamKey: 'test:query', requestId: 'req-000003', limit: 5 });
    assert.deepEqual(byId.records.map((x) => x.requestId), ['req-000003']);
    assert.equal(byId.scanned, 25);
    await assert.rejects(queryLineage({ source: 'redis', redis: redis.url, limit: 0 }), GatewayError);
  } finally {
    await redis.stop();
  }
});

/** A sink whose availability the test controls. */
class FlakySink implements LineageSink {
  readonly name: string;
  readonly durable: boolean;
  down = false;
  hang = false;
  readonly seqs: number[] = [];
  constructor(name: string, durable: boolean) {
    this.name = name;
    this.durable = durable;
  }
  async write(batch: SinkEntry[]): Promise<WriteResult> {
    if (this.hang) await new Promise(() => undefined);
    if (this.down) return { written: 0, error: new Error('sink unavailable') };
    this.seqs.push(...batch.map((e) => e.seq));
    return { written: batch.length };
  }
  async close(): Promise<void> {}
}

test('a full spool is loud: counted by reason, logged, readiness detail says records are being lost', async () => {
  const spoolDir = await tmpDir();
  const { logger, lines } = captureLogger();
  const metrics = createMetrics({ collectDefault: false });
  try {
    const sink = new FlakySink('audit', true);
    sink.down = true;
    const em = await LineageEmitter.open({
      sinks: [sink],
      spoolDir,
      spool: { maxBytes: 64 * 1024, overflow: 'drop_newest' },
      metrics,
      logger,
      flushIntervalMs: 5,
      retryMinMs: 60_000,
    });
    for (let i = 0; i < 100; i++) em.emit(rec(i));
    await em.flush();
    const h = em.health();
    assert.ok(h.dropped > 0, 'records were refused');
    assert.equal(h.ok, false);
    assert.equal(h.sinks.audit?.spool?.full, true);
    assert.equal(h.sinks.audit?.spool?.nearFull, true);
    const samples = parsePromText(await metrics.registry.metrics());
    const dropped = sampleValue(samples, 'tollgate_lineage_records_dropped_total', { sink: 'audit', reason: 'spool_full' });
    const spooled = sampleValue(samples, 'tollgate_lineage_records_spooled_total', { sink: 'audit' });
    assert.equal(dropped, h.dropped);
    assert.equal((dropped ?? 0) + (spooled ?? 0), 100, 'every record is either spooled or counted as lost');
    assert.equal(sampleValue(samples, 'tollgate_lineage_spool_near_full', { sink: 'audit' }), 1);
    assert.ok(lines.some((l) => l.level === 40 && String(l.msg).includes('nearly full')), 'near-full warning logged');
    assert.ok(lines.some((l) => l.level === 50 && l.msg === 'lineage records lost' && l.reason === 'spool_full'));
    // Logs never carry record contents.
    assert.ok(lines.every((l) => !JSON.stringify(l).includes('vk_1')));
    await em.close();
  } finally {
    await fs.rm(spoolDir, { recursive: true, force: true });
  }
});

test('non-durable sink failures and emits after close are counted as lost', async () => {
  const metrics = createMetrics({ collectDefault: false });
  const { logger } = captureLogger();
  const sink = new FlakySink('best-effort', false);
  sink.down = true;
  const em = await LineageEmitter.open({ sinks: [sink], metrics, logger, flushIntervalMs: 5 });
  for (let i = 0; i < 5; i++) em.emit(rec(i));
  await em.flush();
  await em.close();
  em.emit(rec(99));
  const samples = parsePromText(await metrics.registry.metrics());
  assert.equal(sampleValue(samples, 'tollgate_lineage_records_dropped_total', { sink: 'best-effort', reason: 'sink_error' }), 5);
  assert.equal(sampleValue(samples, 'tollgate_lineage_records_dropped_total', { sink: '*', reason: 'closed' }), 1);
});

test('close() is bounded even when a sink hangs, and parks the backlog in the spool', async () => {
  const spoolDir = await tmpDir();
  const { logger } = captureLogger();
  try {
    const sink = new FlakySink('slow', true);
    const em = await LineageEmitter.open({ sinks: [sink], spoolDir, logger, flushIntervalMs: 5, batchSize: 10 });
    for (let i = 0; i < 10; i++) em.emit(rec(i));
    await em.flush();
    assert.equal(sink.seqs.length, 10);
    sink.hang = true;
    for (let i = 10; i < 50; i++) em.emit(rec(i));
    const t0 = Date.now();
    await em.close(300);
    const took = Date.now() - t0;
    assert.ok(took < 3000, `close took ${took} ms`);
    // The hung batch of 10 is unaccounted for (reported lost); the 30 behind it were parked in the spool.
    const h = em.health();
    assert.equal(h.sinks.slow?.spool?.records, 30);

    // Next start replays them, continuing the sequence.
    const sink2 = new FlakySink('slow', true);
    const em2 = await LineageEmitter.open({ sinks: [sink2], spoolDir, logger, flushIntervalMs: 5 });
    em2.emit(rec(50));
    await until(() => sink2.seqs.length === 31, 5000, 'replay after restart');
    for (let i = 1; i < sink2.seqs.length; i++) assert.ok(sink2.seqs[i]! > sink2.seqs[i - 1]!, 'seqs increase across restarts');
    assert.ok(sink2.seqs[0]! > sink.seqs[9]!);
    await em2.close();
  } finally {
    await fs.rm(spoolDir, { recursive: true, force: true });
  }
});

test('a spool directory is used by one emitter at a time', async () => {
  const spoolDir = await tmpDir();
  const { logger } = captureLogger();
  try {
    const em = await LineageEmitter.open({ sinks: [new FlakySink('a', true)], spoolDir, logger });
    await assert.rejects(
      LineageEmitter.open({ sinks: [new FlakySink('a', true)], spoolDir, logger }),
      (e: unknown) => e instanceof GatewayError && e.code === 'lineage_spool_locked',
    );
    await em.close();
    const again = await LineageEmitter.open({ sinks: [new FlakySink('a', true)], spoolDir, logger });
    await again.close();
  } finally {
    await fs.rm(spoolDir, { recursive: true, force: true });
  }
});

test('bad emitter configuration is rejected with a precise message', async () => {
  await assert.rejects(LineageEmitter.open({ sinks: [new FlakySink('Bad Name', false)] }), /sink name "Bad Name" must match/);
  await assert.rejects(
    LineageEmitter.open({ sinks: [new FlakySink('x', false), new FlakySink('x', false)] }),
    /sink name "x" is used twice/,
  );
  await assert.rejects(
    LineageEmitter.open({ sinks: [], spool: { nearFullRatio: 2 } }),
    /nearFullRatio must be in \(0, 1\]/,
  );
});

test('stdout sink writes one pino JSON line per record', async () => {
  const { logger, lines } = captureLogger();
  const em = await LineageEmitter.open({ sinks: [new StdoutSink({ logger })], logger: captureLogger().logger, flushIntervalMs: 5 });
  em.emit(rec(1));
  em.emit(rec(2));
  await em.close();
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.msg, 'lineage');
  const j = lines[1]!.lineage as Record<string, unknown>;
  assert.equal(j.requestId, 'req-000002');
  assert.deepEqual(validateLineageRecord(j), []);
});

test('the emitter counts its own pipeline only: request metrics are a separate consumer', async () => {
  const metrics = createMetrics({ collectDefault: false });
  const em = await LineageEmitter.open({ sinks: [new FlakySink('m', false)], metrics, flushIntervalMs: 5 });
  for (let i = 0; i < 3; i++) em.emit(rec(i));
  await em.close();
  const samples = parsePromText(await metrics.registry.metrics());
  assert.equal(sampleValue(samples, 'tollgate_requests_total'), undefined);
  assert.equal(sampleValue(samples, 'tollgate_lineage_records_emitted_total'), 3);
  assert.equal(sampleValue(samples, 'tollgate_lineage_records_written_total', { sink: 'm' }), 3);
});

test('a large burst is drained in slices without reordering or loss', async () => {
  const sink = new FlakySink('burst', false);
  const metrics = createMetrics({ collectDefault: false });
  const em = await LineageEmitter.open({ sinks: [sink], metrics, flushIntervalMs: 5, batchSize: 100, logger: captureLogger().logger });
  for (let i = 0; i < 5000; i++) em.emit(rec(i));
  await until(() => sink.seqs.length === 5000, 20_000, 'burst delivered');
  for (let i = 1; i < sink.seqs.length; i++) assert.equal(sink.seqs[i], sink.seqs[i - 1]! + 1);
  await em.close();
  const samples = parsePromText(await metrics.registry.metrics());
  assert.equal(sampleValue(samples, 'tollgate_lineage_records_emitted_total'), 5000);
  assert.equal(sampleValue(samples, 'tollgate_lineage_queue_depth'), 0);
});
