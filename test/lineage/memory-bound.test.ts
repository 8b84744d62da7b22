// What a stalled lineage sink can pin in memory under saturation: at most DEFAULT_MAX_IN_MEMORY
// records in the emit queue and as many per sink pipeline; the rest is dropped and counted, never
// kept. Entries for sinks that do not read the record object carry only its JSON text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DEFAULT_MAX_IN_MEMORY, LineageEmitter } from '../../service/lineage/emitter.ts';
import type { LineageSink, SinkEntry, WriteResult } from '../../service/lineage/sinks.ts';
import { completeRecord } from './fixtures.ts';

/** A sink that takes the first batch and never answers (a hung disk or network). */
class StalledSink implements LineageSink {
  readonly name = 'stalled';
  readonly durable = false;
  batches: SinkEntry[][] = [];
  constructor(readonly wantsObject: boolean) {}
  write(batch: SinkEntry[]): Promise<WriteResult> {
    this.batches.push(batch);
    return new Promise(() => undefined);
  }
  async close(): Promise<void> {}
}

async function flood(sink: StalledSink, n: number): Promise<LineageEmitter> {
  const emitter = await LineageEmitter.open({ sinks: [sink], logger: pino({ level: 'silent' }), flushIntervalMs: 5 });
  for (let i = 0; i < n; i++) {
    emitter.emit(completeRecord({ requestId: `req-${i}`, decisionId: `dec-${i}` }));
    // Let the background drain run now and then, as a busy server's event loop would.
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  return emitter;
}

test('a stalled sink under a flood keeps a bounded number of records in memory and counts the rest as dropped', async () => {
  const sent = DEFAULT_MAX_IN_MEMORY * 3;
  const sink = new StalledSink(false);
  const emitter = await flood(sink, sent);
  const h = emitter.health();
  const held = h.queueDepth;
  assert.ok(held <= 2 * DEFAULT_MAX_IN_MEMORY, `records in memory: ${held} (bound ${2 * DEFAULT_MAX_IN_MEMORY})`);
  const inFlight = sink.batches.reduce((n, b) => n + b.length, 0);
  assert.equal(held + inFlight + h.dropped, sent, `held ${held} + in flight ${inFlight} + dropped ${h.dropped} = sent`);
  assert.ok(h.dropped >= sent - 2 * DEFAULT_MAX_IN_MEMORY - inFlight);
  assert.equal(sink.batches[0]![0]!.object, undefined, 'entries for a sink that reads only JSON do not keep the object too');
  assert.ok(sink.batches[0]![0]!.json.includes('"requestId":"req-0"'));
});

test('the default bound is tens of thousands of records, not hundreds of thousands', () => {
  assert.ok(DEFAULT_MAX_IN_MEMORY <= 50_000, `DEFAULT_MAX_IN_MEMORY = ${DEFAULT_MAX_IN_MEMORY}`);
});

test('a sink that reads the record object still gets it', async () => {
  const sink = new StalledSink(true);
  await flood(sink, 10);
  assert.equal((sink.batches[0]![0]!.object as { requestId?: string } | undefined)?.requestId, 'req-0');
});

test('entries for object-reading sinks alone still give the exact JSON text when asked for it', async () => {
  const sink = new StalledSink(true);
  await flood(sink, 3);
  const e = sink.batches[0]![0]!;
  assert.ok(e.object);
  assert.equal(e.json, JSON.stringify(e.object));
  assert.ok(e.json.includes('"requestId":"req-0"'));
});
