// toJsonLine's member-text cache is bounded in size, not only in count: some values come from the client (the
// requested model) and may be long. In a file of its own: a fresh process, whose caches no other test has filled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { toJsonLine } from '../../service/lineage/json-line.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { legacyToProtoJson } from './legacy-proto-json.ts';

test('long values (some come from the client) are not cached: distinct long requested models leave no texts behind', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const record = (requestedModel: string): LineageRecord => ({
    requestId: 'a',
    decisionId: 'b',
    startTime: new Date(0),
    endTime: new Date(0),
    principal: { authMethod: 'none' },
    request: { endpoint: '/', requestedModel },
    statusCode: 200,
    outcome: 'success',
  });
  gc();
  const before = v8.getHeapStatistics().used_heap_size;
  for (let i = 0; i < 300; i++) {
    const r = record(String(i).padEnd(100_000, 'x'));
    assert.equal(toJsonLine(r), JSON.stringify(legacyToProtoJson(r)));
  }
  gc();
  const grown = v8.getHeapStatistics().used_heap_size - before;
  // Cached, the first 128 would hold ~12.8 MB; the last line's remembered run holds one (~100 KB).
  assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MB`);
});
