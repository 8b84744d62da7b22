// lineageJsonLine() (the drain's serializer) writes exactly JSON.stringify(toProtoJson(record)), and the cached
// timestamp formatting prints exactly Date#toISOString().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineageJsonLine, MAX_CACHED_RULES } from '../../service/lineage/json-line.ts';
import { fromProtoJson, toProtoJson, ts, type LineageRecord } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { variedRecords } from './varied-records.ts';

test('the JSON line is byte-identical to the proto-JSON object path for every kind of record', () => {
  const records = variedRecords();
  assert.ok(records.length >= 15);
  for (const r of records) {
    const line = lineageJsonLine(r);
    assert.equal(line, JSON.stringify(toProtoJson(r)), `record ${JSON.stringify(r.requestId)}`);
    assert.ok(!line.includes('\n'), 'one line');
  }
});

test('rule outcomes stay exact through their text cache, also past its bound and for rules differing in one field', () => {
  const base = variedRecords()[0]!;
  const rules = Array.from({ length: MAX_CACHED_RULES + 50 }, (_, i) => ({
    policy: `p${i % 7}`,
    rule: `r${i}`,
    kind: i % 2 ? 'deny' : 'redact',
    outcome: i % 3 ? ('applied' as const) : ('not_matched' as const),
    message: i % 4 ? undefined : `m"${i}`,
  }));
  // Same policy/rule/kind, another outcome or message: never the cached text of the first.
  const one = (outcome: 'deny' | 'allow', message?: string): LineageRecord => ({ ...base, policy: { rules: [{ policy: 'x', rule: 'y', kind: 'deny', outcome, message }] } });
  for (const r of [one('deny'), one('allow'), one('deny', 'because'), one('deny', 'other'), one('deny')]) {
    assert.equal(lineageJsonLine(r), JSON.stringify(toProtoJson(r)));
  }
  for (let round = 0; round < 2; round++) {
    const r: LineageRecord = { ...base, policy: { ...base.policy, rules } };
    assert.equal(lineageJsonLine(r), JSON.stringify(toProtoJson(r)), `round ${round}`);
  }
});

test('the JSON line of a complete record validates and reads back', () => {
  const r = variedRecords()[0]!;
  const json = JSON.parse(lineageJsonLine(r)) as unknown;
  assert.deepEqual(validateLineageRecord(json), []);
  assert.deepEqual(fromProtoJson(json), { ...r, schemaVersion: 2 });
});

test('a record toProtoJson cannot serialize fails the JSON line too (the drain counts it as lost)', () => {
  const bad = { ...variedRecords()[0]!, startTime: new Date(NaN) } as LineageRecord;
  assert.throws(() => toProtoJson(bad), RangeError);
  assert.throws(() => lineageJsonLine(bad), RangeError);
});

test('timestamps print exactly as Date#toISOString, across seconds, days, years and before 1970', () => {
  const base = [0, -1, -999, -1000, -1001, 1, 999, 1000, 1001, Date.UTC(2025, 2, 1, 12, 0, 1, 250), Date.UTC(2024, 1, 29, 23, 59, 59, 999)];
  const edges = [Date.UTC(0, 0, 1) - 1, -62167219200000, 253402300799999, 253402300800000, 8.64e15, -8.64e15];
  const times = [...base, ...edges];
  // Walk forward and backward through ms/second boundaries so the per-second cache is hit and replaced.
  for (let t = Date.UTC(2025, 0, 1) - 2500; t < Date.UTC(2025, 0, 1) + 2500; t += 37) times.push(t, -t);
  for (const t of times) {
    const d = new Date(t);
    assert.equal(ts(d), d.toISOString(), `t=${t}`);
  }
  assert.throws(() => ts(new Date(NaN)), RangeError);
});
