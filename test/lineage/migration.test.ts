// Schema version 2 (rule outcomes recorded exactly) next to version 1 records already in the sinks: old records
// still validate, read back unchanged, and come out of `tollgate lineage` as they were written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queryLineage } from '../../service/lineage/query.ts';
import { fromProtoJson, LINEAGE_SCHEMA_VERSION, ruleResult, toProtoJson } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import type { RuleOutcome as PolicyRuleOutcome } from '../../service/policy/types.ts';
import { completeRecord, V1_RECORD_JSON } from './fixtures.ts';

test('new records are schema version 2', () => {
  assert.equal(LINEAGE_SCHEMA_VERSION, 2);
  const { schemaVersion, ...unversioned } = completeRecord();
  assert.equal(schemaVersion, 2);
  assert.equal(toProtoJson(unversioned).schemaVersion, 2);
});

test('every policy rule outcome maps to its own lineage value (no two share one)', () => {
  const all: PolicyRuleOutcome[] = ['allow', 'deny', 'would-deny', 'applied', 'not-matched', 'error', 'skipped'];
  const mapped = all.map(ruleResult);
  assert.deepEqual(mapped, ['allow', 'deny', 'would_deny', 'applied', 'not_matched', 'error', 'skipped']);
  assert.equal(new Set(mapped).size, all.length);
});

test('a schema version 1 record validates, reads back as written, and serializes back byte for byte', () => {
  const v1 = JSON.parse(V1_RECORD_JSON) as Record<string, unknown>;
  assert.deepEqual(validateLineageRecord(v1), []);
  const r = fromProtoJson(v1);
  assert.ok(r);
  assert.equal(r.schemaVersion, 1);
  assert.deepEqual(
    r.policy?.rules?.map((x) => x.outcome),
    ['not_matched', 'matched'],
    'version 1 outcomes are kept as they were, not guessed into version 2 ones',
  );
  assert.equal(JSON.stringify(toProtoJson(r)), V1_RECORD_JSON);
});

test('`tollgate lineage` reads a JSONL file holding version 1 and version 2 records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-lineage-mig-'));
  try {
    const file = join(dir, 'lineage.jsonl');
    const v2 = JSON.stringify(toProtoJson(completeRecord({ requestId: 'req-v2-0001' })));
    writeFileSync(file, `${V1_RECORD_JSON}\n${v2}\n`);
    const out = execFileSync(process.execPath, ['bin/tollgate.js', 'lineage', '--file', file, '--limit', '10'], { encoding: 'utf8', timeout: 30000 });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => l.requestId), ['req-v2-0001', 'req-v1-0001'], 'newest first');
    assert.deepEqual(lines.map((l) => l.schemaVersion), [2, 1]);
    for (const l of lines) assert.deepEqual(validateLineageRecord(l), []);
    assert.equal(JSON.stringify(lines[1]), V1_RECORD_JSON, 'the old record is printed as it was written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a query filters version 1 records like version 2 ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-lineage-mig-'));
  try {
    const file = join(dir, 'lineage.jsonl');
    writeFileSync(file, `${V1_RECORD_JSON}\n${JSON.stringify(toProtoJson(completeRecord({ principal: { authMethod: 'jwt', tenant: 'globex' } })))}\n`);
    const res = await queryLineage({ source: 'file', path: file, tenant: 'acme', limit: 10 });
    assert.equal(res.invalid, 0);
    assert.deepEqual(res.records.map((r) => r.requestId), ['req-v1-0001']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
