// Request metrics consume each finished record on their own: a lineage port that refuses or throws, or a broken
// record, never changes what is counted for the others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { publishOutcome } from '../../service/gateway/outcome.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { createMetrics } from '../../service/telemetry/metrics.ts';
import { RequestMetricsConsumer } from '../../service/telemetry/request-metrics.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { parsePromText, sampleValue } from './promtext.ts';

const silent = pino({ level: 'silent' });

async function requests(metrics: ReturnType<typeof createMetrics>): Promise<number | undefined> {
  return sampleValue(parsePromText(await metrics.registry.metrics()), 'tollgate_requests_total', { decision: 'success' });
}

test('every consumed record is counted within one event-loop turn, in a batch', async () => {
  const metrics = createMetrics({ collectDefault: false });
  const c = new RequestMetricsConsumer(metrics, silent);
  for (let i = 0; i < 5; i++) c.consume(completeRecord({ requestId: `r${i}` }));
  await new Promise((r) => setImmediate(r));
  assert.equal(await requests(metrics), 5);
  c.consume(completeRecord());
  c.flush();
  assert.equal(await requests(metrics), 6, 'flush() counts what is pending at once');
});

test('a record the metrics code fails on does not cost the rest of its batch', async () => {
  const metrics = createMetrics({ collectDefault: false });
  const c = new RequestMetricsConsumer(metrics, silent);
  c.consume(completeRecord());
  c.consume({ ...completeRecord(), principal: undefined } as unknown as LineageRecord);
  c.consume(completeRecord());
  c.flush();
  assert.equal(await requests(metrics), 2);
});

test('publishOutcome: lineage throwing and another consumer throwing never stop metrics', async () => {
  const metrics = createMetrics({ collectDefault: false });
  const c = new RequestMetricsConsumer(metrics, silent);
  const seen: string[] = [];
  const lineage = {
    emit: (r: LineageRecord) => {
      seen.push(`lineage ${r.requestId}`);
      throw new Error('lineage is down');
    },
  };
  const broken = { name: 'broken', consume: () => { throw new Error('bug'); } };
  for (let i = 0; i < 3; i++) publishOutcome(completeRecord({ requestId: `r${i}` }), lineage, [broken, c], silent);
  c.flush();
  assert.deepEqual(seen, ['lineage r0', 'lineage r1', 'lineage r2']);
  assert.equal(await requests(metrics), 3);
});
