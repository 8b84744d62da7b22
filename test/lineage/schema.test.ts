import { test } from 'node:test';
import assert from 'node:assert/strict';
import protoLoader from '@grpc/proto-loader';
import { fromProtoJson, toProtoJson, type LineageRecord } from '../../service/lineage/record.ts';
import { LINEAGE_PROTO_PATH, lineageRecordType, validateLineageRecord } from '../../service/lineage/schema.ts';
import { completeRecord } from './fixtures.ts';

type Json = Record<string, any>;

function json(r: LineageRecord = completeRecord()): Json {
  return JSON.parse(JSON.stringify(toProtoJson(r))) as Json;
}

test('a complete record validates against the proto schema', () => {
  const j = json();
  assert.deepEqual(validateLineageRecord(j), []);
  // Spot-check the proto3 JSON mapping itself.
  assert.equal(j.startTime, '2025-03-01T12:00:00.000Z');
  assert.equal(j.outcome, 'OUTCOME_SUCCESS');
  assert.equal(j.principal.authMethod, 'AUTH_METHOD_VIRTUAL_KEY');
  assert.equal(j.tokens.input, '1200');
  assert.equal(j.request.requestBytes, '1532');
  assert.deepEqual(
    j.policy.rules.map((r: Json) => r.outcome),
    ['RULE_RESULT_APPLIED', 'RULE_RESULT_ALLOW', 'RULE_RESULT_WOULD_DENY', 'RULE_RESULT_NOT_MATCHED', 'RULE_RESULT_SKIPPED'],
  );
  assert.equal(j.redactions[0].count, '2');
  assert.equal(j.schemaVersion, 2);
});

test('a minimal denied record validates (optional parts absent)', () => {
  const r: LineageRecord = {
    requestId: 'r1',
    decisionId: 'd1',
    startTime: new Date('2025-01-01T00:00:00Z'),
    endTime: new Date('2025-01-01T00:00:00.002Z'),
    principal: { authMethod: 'none' },
    request: { endpoint: '/v1/chat/completions' },
    statusCode: 401,
    outcome: 'denied',
    errorClass: 'authentication',
  };
  assert.deepEqual(validateLineageRecord(json(r)), []);
});

test('the record has no field that could hold a credential', () => {
  const names: string[] = [];
  const walk = (t: ReturnType<typeof lineageRecordType>, seen: Set<string>): void => {
    if (seen.has(t.fullName)) return;
    seen.add(t.fullName);
    for (const f of t.fieldsArray) {
      names.push(f.name);
      const rt = f.resolvedType;
      if (rt && 'fieldsArray' in rt) walk(rt as ReturnType<typeof lineageRecordType>, seen);
    }
  };
  walk(lineageRecordType(), new Set());
  assert.ok(names.includes('keyId'));
  for (const n of names) assert.doesNotMatch(n, /secret|password|apiKey|^key$|token$|authorization|bearer/i, n);
});

// Each row: how to break a valid record, and the problem the validator must report.
const broken: [string, (j: Json) => void, RegExp][] = [
  ['missing request id', (j) => delete j.requestId, /^requestId: required field is missing/],
  ['empty decision id', (j) => (j.decisionId = ''), /^decisionId: required field is missing/],
  ['missing start time', (j) => delete j.startTime, /^startTime: required/],
  ['missing principal', (j) => delete j.principal, /^principal: required/],
  ['missing auth method', (j) => delete j.principal.authMethod, /^principal\.authMethod: required/],
  ['unspecified outcome', (j) => (j.outcome = 'OUTCOME_UNSPECIFIED'), /^outcome: required/],
  ['missing status code', (j) => delete j.statusCode, /^statusCode: required/],
  ['status code as string', (j) => (j.statusCode = '200'), /^statusCode: expected a uint32 number, got "200"/],
  ['negative uint32', (j) => (j.latency.requestBodyUs = -1), /^latency\.requestBodyUs: expected a uint32/],
  ['fractional uint32', (j) => (j.attempts[0].status = 200.5), /^attempts\[0\]\.status: expected a uint32/],
  ['int64 as a JSON number', (j) => (j.tokens.input = 1200), /^tokens\.input: expected a uint64 as a decimal string/],
  ['uint64 out of range', (j) => (j.tokens.output = '18446744073709551616'), /^tokens\.output: .* out of range/],
  ['negative uint64', (j) => (j.tokens.output = '-1'), /^tokens\.output: -1 is out of range/],
  ['unknown enum name', (j) => (j.outcome = 'OUTCOME_WIN'), /^outcome: "OUTCOME_WIN" is not a value of Outcome/],
  ['enum as number', (j) => (j.outcome = 1), /^outcome: expected an enum name/],
  ['timestamp not RFC 3339', (j) => (j.endTime = '2025-03-01 12:00:01'), /^endTime: expected an RFC 3339/],
  ['timestamp impossible date', (j) => (j.endTime = '2025-02-30T00:00:00Z'), /^endTime: expected an RFC 3339/],
  ['end before start', (j) => (j.endTime = '2025-03-01T11:59:59Z'), /^endTime: is before startTime/],
  ['unknown top-level field', (j) => (j.apiKey = 'sk-123'), /^apiKey: unknown field for LineageRecord/],
  ['unknown nested field', (j) => (j.principal.secret = 'x'), /^principal\.secret: unknown field for Principal/],
  ['trace id not hex', (j) => (j.trace.traceId = 'Z'.repeat(32)), /^trace\.traceId: .* does not match/],
  ['span id wrong length', (j) => (j.trace.spanId = 'abc'), /^trace\.spanId: .* does not match/],
  ['sha256 wrong length', (j) => (j.content.promptSha256 = 'abc'), /^content\.promptSha256: .* does not match/],
  ['repeated field not an array', (j) => (j.attempts = {}), /^attempts: expected a JSON array/],
  ['message field as string', (j) => (j.served = 'openai'), /^served: expected a JSON object for ServedBy/],
  ['bool as string', (j) => (j.request.stream = 'true'), /^request\.stream: expected true or false/],
  ['map value not a string', (j) => (j.policy.labels.n = 1), /^policy\.labels\["n"\]: expected a string/],
  ['double as string', (j) => (j.costUsd = '0.1'), /^costUsd: expected a number/],
  ['rule without policy', (j) => delete j.policy.rules[0].policy, /^policy\.rules\[0\]\.policy: required/],
  ['budget without unit', (j) => delete j.budgets[0].unit, /^budgets\[0\]\.unit: required/],
  ['newer schema version', (j) => (j.schemaVersion = 3), /^schemaVersion: 3 is newer/],
  ['version 1 outcome in a version 2 record', (j) => (j.policy.rules[1].outcome = 'RULE_RESULT_MATCHED'), /^policy\.rules\[1\]\.outcome: RULE_RESULT_MATCHED is not a rule outcome of schema version 2/],
  ['version 2 outcome in a version 1 record', (j) => (j.schemaVersion = 1), /^policy\.rules\[0\]\.outcome: RULE_RESULT_APPLIED is not a rule outcome of schema version 1/],
  ['unknown rule outcome', (j) => (j.policy.rules[0].outcome = 'RULE_RESULT_FIRED'), /^policy\.rules\[0\]\.outcome: "RULE_RESULT_FIRED" is not a value of RuleResult/],
  ['not an object', (j) => Object.assign(j, { request: [] }), /^request: expected a JSON object/],
];

for (const [name, mutate, expected] of broken) {
  test(`validator reports: ${name}`, () => {
    const j = json();
    mutate(j);
    const problems = validateLineageRecord(j);
    assert.ok(
      problems.some((p) => expected.test(p)),
      `expected a problem matching ${expected}, got ${JSON.stringify(problems)}`,
    );
  });
}

test('validator rejects non-objects', () => {
  for (const v of [null, 42, 'x', []]) {
    assert.match(validateLineageRecord(v)[0] ?? '', /^\(record\): expected a JSON object/);
  }
});

test('validator accepts what proto3 JSON parsers must accept', () => {
  const cases: [string, (j: Json) => void][] = [
    ['original snake_case field names', (j) => {
      j.request_id = j.requestId;
      delete j.requestId;
    }],
    ['null for a field (= default)', (j) => (j.errorClass = null)],
    ['timestamp with offset and nanos', (j) => (j.endTime = '2025-03-01T14:00:01.123456789+02:00')],
    ['NaN / Infinity doubles as strings', (j) => (j.latency.totalMs = 'Infinity')],
    ['max uint64', (j) => (j.tokens.output = '18446744073709551615')],
  ];
  for (const [name, mutate] of cases) {
    const j = json();
    mutate(j);
    assert.deepEqual(validateLineageRecord(j), [], name);
  }
});

test('fromProtoJson(toProtoJson(r)) gives back r', () => {
  const r = completeRecord();
  assert.deepEqual(fromProtoJson(json(r)), r);
  const minimal: LineageRecord = {
    requestId: 'r',
    decisionId: 'd',
    startTime: new Date(0),
    endTime: new Date(1),
    principal: { authMethod: 'jwt', tenant: 't' },
    request: { endpoint: '/v1/messages', clientApi: 'anthropic' },
    statusCode: 499,
    outcome: 'aborted',
  };
  assert.deepEqual(fromProtoJson(json(minimal)), { ...minimal, schemaVersion: 2 });
});

test('content text is present only when retained, and locations are capped', () => {
  const plain = json();
  assert.equal('prompt' in plain.content, false);
  const retained = json(
    completeRecord({
      content: { promptSha256: 'c'.repeat(64), prompt: '', response: 'hello', retainedBy: 'audit/keep' },
      redactions: [
        { detector: 'email', direction: 'response', count: 50, locations: Array.from({ length: 50 }, (_, i) => `choices[${i}]`) },
      ],
    }),
  );
  assert.deepEqual(validateLineageRecord(retained), []);
  assert.equal(retained.content.prompt, '', 'an explicitly retained empty prompt stays present');
  assert.equal(retained.content.response, 'hello');
  assert.equal(retained.redactions[0].locations.length, 32);
});

test('the proto also loads with @grpc/proto-loader (consumable by other systems)', () => {
  const def = protoLoader.loadSync(LINEAGE_PROTO_PATH);
  assert.ok(def['tollgate.lineage.v1.LineageRecord']);
});
