// The lineage line the drain writes (toJsonLine: the text written field by field, cached rule text; see also
// json-line.test.ts) is byte-identical to what the implementation before it wrote, JSON.stringify of the old toProtoJson
// (legacy-proto-json.ts), for every kind of record; toProtoJson itself is unchanged; and the cached timestamp
// formatting prints exactly Date#toISOString().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toProtoJson, ts, type LineageRecord } from '../../service/lineage/record.ts';
import { MAX_CACHED_RULES, toJsonLine } from '../../service/lineage/json-line.ts';
import { legacyToProtoJson } from './legacy-proto-json.ts';
import { variedRecords } from './varied-records.ts';

test('every kind of record serializes byte-identically to the previous implementation', () => {
  const records = variedRecords();
  assert.ok(records.length >= 15);
  for (let round = 0; round < 2; round++) {
    for (const r of records) {
      const line = toJsonLine(r);
      assert.equal(line, JSON.stringify(legacyToProtoJson(r)), `record ${JSON.stringify(r.requestId)}`);
      assert.deepEqual(toProtoJson(r), legacyToProtoJson(r));
      assert.ok(!line.includes('\n'), 'one line');
    }
  }
});

test('cached rule text stays exact: rules differing in one field, and past the cache bound', () => {
  const base = variedRecords()[0]!;
  const one = (outcome: 'deny' | 'allow', message?: string): LineageRecord => ({ ...base, policy: { rules: [{ policy: 'x', rule: 'y', kind: 'deny', outcome, message }] } });
  for (const r of [one('deny'), one('allow'), one('deny', 'because'), one('deny', 'other'), one('deny'), one('allow', 'because')]) {
    assert.equal(toJsonLine(r), JSON.stringify(legacyToProtoJson(r)));
  }
  const rules = Array.from({ length: MAX_CACHED_RULES + 50 }, (_, i) => ({
    policy: `p${i % 7}`,
    rule: `r${i}`,
    kind: i % 2 ? 'deny' : 'redact',
    outcome: i % 3 ? ('applied' as const) : ('not_matched' as const),
    message: i % 4 ? undefined : `m"${i}`,
  }));
  for (let round = 0; round < 2; round++) {
    const r: LineageRecord = { ...base, policy: { ...base.policy, rules } };
    assert.equal(toJsonLine(r), JSON.stringify(legacyToProtoJson(r)), `round ${round}`);
  }
});

test('rules with and without a bundle revision, and with every other policy field, keep their place', () => {
  const base = variedRecords()[0]!;
  const rules = base.policy!.rules!;
  const variants: LineageRecord['policy'][] = [
    { rules },
    { rules, labels: { a: 'b' } },
    { bundleRevision: 'r', rules, dryRunDenies: [{ policy: 'p', rule: 'r' }] },
    { rules, droppedCandidates: [{ model: 'm', policy: 'p', rule: 'r' }], labels: { '1': 'x' } },
  ];
  for (const policy of variants) {
    const r: LineageRecord = { ...base, policy };
    assert.equal(toJsonLine(r), JSON.stringify(legacyToProtoJson(r)));
  }
  // Few fields around the policy: the line is spliced from the parts before and after it.
  const sparse: LineageRecord = {
    ...base,
    trace: undefined, served: undefined, attempts: undefined, redactions: undefined, budgets: undefined, tokens: undefined,
    costUsd: undefined, costComponents: undefined, latency: undefined, content: undefined, gatewayInstance: undefined,
    mcp: undefined, audit: undefined, errorClass: undefined, errorCode: undefined,
  };
  for (const policy of variants) {
    const r: LineageRecord = { ...sparse, policy };
    assert.equal(toJsonLine(r), JSON.stringify(legacyToProtoJson(r)));
  }
});

test('timestamps print exactly as Date#toISOString, across seconds, days, years and before 1970', () => {
  const times = [0, -1, -999, -1000, -1001, 1, 999, 1000, 1001, Date.UTC(2025, 2, 1, 12, 0, 1, 250), Date.UTC(2024, 1, 29, 23, 59, 59, 999)];
  times.push(-62167219200001, -62167219200000, 253402300799999, 253402300800000, 8.64e15, -8.64e15);
  // Walk forward and backward through ms/second boundaries so the per-second cache is hit and replaced.
  for (let t = Date.UTC(2025, 0, 1) - 2500; t < Date.UTC(2025, 0, 1) + 2500; t += 37) times.push(t, -t);
  for (const t of times) {
    const d = new Date(t);
    assert.equal(ts(d), d.toISOString(), `t=${t}`);
  }
  assert.throws(() => ts(new Date(NaN)), RangeError);
  const bad = { ...variedRecords()[0]!, startTime: new Date(NaN) } as LineageRecord;
  assert.throws(() => toProtoJson(bad), RangeError, 'an invalid time still fails serialization (counted as lost)');
  assert.throws(() => toJsonLine(bad), RangeError);
});
