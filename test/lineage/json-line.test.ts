// toJsonLine writes the record's JSON text directly (service/lineage/json-line.ts) instead of stringifying the
// proto-JSON object, with cached pieces (members whose values repeat, rule outcomes, the last rules list). Differential tests against the oracle, JSON.stringify of the legacy toProtoJson
// (legacy-proto-json.ts): thousands of randomly varied records (every optional field present or absent, null,
// empty arrays and objects, awkward strings and numbers, MCP and audit records), and strings written
// byte by byte against JSON.stringify over every UTF-16 code unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toJsonLine } from '../../service/lineage/json-line.ts';
import type { LineageRecord, RuleOutcome } from '../../service/lineage/record.ts';
import { legacyToProtoJson } from './legacy-proto-json.ts';
import { completeRecord, EXCHANGE_LINE, exchangeRecord } from './fixtures.ts';
import { variedRecords } from './varied-records.ts';
import { seeded } from '../support/seeded.ts';

const STRINGS = [
  '',
  'a',
  'azure-eu',
  'spend-controls/key-daily',
  'é"\\\n\t',
  '\u0000',
  '\u001f',
  '\u007f',
  ' ',
  '\u2028\u2029',
  '😀',
  '\ud800',
  'x\udc00y',
  '\udbff\udfff',
  'ключ',
  '\\u0041',
  '</script>',
  'a'.repeat(300),
  'tail"',
  '"head',
  'mid\\dle',
];
const NUMBERS = [
  0, -0, 1, -1, 0.1 + 0.2, 5.2799999999999996e-5, 999999999.9999471, 1e21, 1e-7, 2 ** 53, 2 ** 53 + 2, 2 ** 32, 2 ** 32 - 1,
  -5, 3.7, 200.6, 0.5, 1.5, -0.5, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 1000000000,
];
const TIMES = [0, -1, 999, Date.UTC(2025, 2, 1, 12, 0, 1, 250), Date.UTC(1969, 11, 31, 23, 59, 59, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
/** Enum-valued fields keep values from their set (the oracle and toJsonLine both upper-case anything else). */
const ENUMS: Record<string, readonly string[]> = {
  outcome: ['success', 'denied', 'budget_exceeded', 'rate_limited', 'provider_error', 'client_error', 'aborted', 'gateway_error', 'allow', 'deny', 'would_deny', 'applied', 'not_matched', 'error', 'skipped', 'matched'],
  authMethod: ['none', 'virtual_key', 'jwt'],
  clientApi: ['openai', 'anthropic'],
  direction: ['request', 'response'],
  enforcement: ['hard', 'soft'],
  anomaly: ['missing', 'invalid', 'clamped'],
};
/** Fields the serializers dereference unconditionally: removing them makes both throw, which is not interesting. */
const MANDATORY = new Set(['principal', 'request', 'startTime', 'endTime']);

function randomString(rnd: () => number): string {
  if (rnd() < 0.6) return STRINGS[Math.floor(rnd() * STRINGS.length)]!;
  let s = '';
  const n = Math.floor(rnd() * 12);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    // Mostly printable ASCII; sometimes control characters, Latin-1, BMP, surrogates (paired or not).
    s += String.fromCharCode(r < 0.6 ? 0x20 + Math.floor(rnd() * 95) : r < 0.7 ? Math.floor(rnd() * 0x20) : r < 0.8 ? 0x80 + Math.floor(rnd() * 0x80) : r < 0.9 ? Math.floor(rnd() * 0x10000) : 0xd800 + Math.floor(rnd() * 0x800));
  }
  return s;
}

function vary(v: unknown, key: string, rnd: () => number): unknown {
  if (v instanceof Date) return rnd() < 0.3 ? new Date(TIMES[Math.floor(rnd() * TIMES.length)]!) : v;
  if (typeof v === 'string') {
    const set = ENUMS[key];
    if (set) return set[Math.floor(rnd() * set.length)];
    return rnd() < 0.5 ? v : randomString(rnd);
  }
  if (typeof v === 'number') return rnd() < 0.5 ? v : NUMBERS[Math.floor(rnd() * NUMBERS.length)];
  if (typeof v === 'boolean') return rnd() < 0.5;
  if (Array.isArray(v)) {
    if (rnd() < 0.15) return [];
    // Sometimes long (redaction locations are capped at 32 on output).
    const n = rnd() < 0.1 ? 30 + Math.floor(rnd() * 10) : 1 + Math.floor(rnd() * 3);
    return Array.from({ length: n }, (_, i) => vary(v[i % v.length], key, rnd));
  }
  if (v !== null && typeof v === 'object') {
    if (rnd() < 0.05) return {};
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = rnd();
      if (!MANDATORY.has(k) && r < 0.15) continue; // absent
      if (!MANDATORY.has(k) && r < 0.2) {
        out[k] = r < 0.175 ? undefined : null;
        continue;
      }
      out[k] = vary(x, k, rnd);
    }
    // Map-valued fields (labels, audit detail) get random keys too, integer-like ones included.
    if ((key === 'labels' || key === 'detail') && rnd() < 0.5) out[rnd() < 0.5 ? String(Math.floor(rnd() * 20)) : randomString(rnd)] = randomString(rnd);
    return out;
  }
  return v;
}

/** Every field the record type has, so that every one gets varied. */
function fullRecord(i: number): LineageRecord {
  return completeRecord({
    requestId: `r-${i}`,
    policy: {
      ...completeRecord().policy,
      droppedCandidates: [{ model: 'gpt-4o-mini', param: 'models[1]', deployment: 'gpt-4o-mini/openai/0', policy: 'eu', rule: 'eu-only', message: 'EU only' }],
    },
    request: { ...completeRecord().request, clientRequestId: 'client-1' },
    latency: { ...completeRecord().latency, upstreamTtftMs: 12.5 },
    tokens: { ...completeRecord().tokens!, anomaly: 'clamped' },
    content: { promptSha256: 'a'.repeat(64), responseSha256: 'b'.repeat(64), prompt: 'hello', response: 'world', retainedBy: 'p/r' },
    errorClass: 'provider',
    errorCode: 'upstream_503',
    mcp: i % 2 ? { server: 'files', method: 'tools/call', tool: 'read', jsonrpcId: '7', sessionId: 's', parentRequestId: 'p', httpRequestId: 'h', rpcErrorCode: -32600, hiddenTools: 2, batchSize: 1 } : undefined,
    audit: i % 3 === 0 ? { action: 'key.create', actor: 'admin', target: 'vk_1', detail: { reason: 'rotation', '10': 'x' } } : undefined,
  });
}

function sameAsOracle(r: LineageRecord, what: string): void {
  let expected: string;
  try {
    expected = JSON.stringify(legacyToProtoJson(r));
  } catch (err) {
    assert.throws(() => toJsonLine(r), (err as Error).constructor as new () => Error, `${what}: the oracle throws, so must toJsonLine`);
    return;
  }
  assert.equal(toJsonLine(r), expected, what);
}

test('toJsonLine is byte-identical to JSON.stringify(legacy toProtoJson) over 4,000 randomly varied records', () => {
  const rnd = seeded(17);
  for (let i = 0; i < 4000; i++) {
    const r = vary(fullRecord(i), '', rnd) as LineageRecord;
    sameAsOracle(r, `record ${i}`);
  }
});

test('toJsonLine matches the oracle on the hand-made varied records and a record shaped like the bench', () => {
  for (const r of variedRecords()) sameAsOracle(r, `record ${JSON.stringify(r.requestId)}`);
  const base = completeRecord();
  const budgets = ['spend-controls/key-daily', 'spend-controls/tenant-monthly', 'spend-controls/cost-center-monthly'].map((name, i) => ({
    name,
    scopeKey: ['key:demo-acme-research', 'tenant:acme', 'custom:cost-center:acme/r-and-d'][i],
    unit: 'usd',
    limit: 1000000000,
    reserved: 0.00020922,
    charged: 5.2799999999999996e-5,
    remaining: 999999999.9999471,
    enforcement: i === 2 ? ('soft' as const) : ('hard' as const),
    softLimitWarning: false,
    exceeded: false,
  }));
  sameAsOracle({ ...base, budgets, costUsd: 5.2799999999999996e-5, tokens: { input: 300, output: 5 } }, 'bench-shaped');
  // Non-ASCII only inside a cached rule outcome (or only in labels): the line is still decoded as UTF-8.
  const ascii: LineageRecord = { requestId: 'a', decisionId: 'b', startTime: new Date(0), endTime: new Date(0), principal: { authMethod: 'none' }, request: { endpoint: '/' }, statusCode: 200, outcome: 'success' };
  for (let round = 0; round < 2; round++) {
    sameAsOracle({ ...ascii, policy: { rules: [{ policy: 'p', rule: 'r', kind: 'deny', outcome: 'deny', message: 'nur hier: ü 😀' }] } }, `rule, round ${round}`);
    sameAsOracle({ ...ascii, policy: { labels: { 'schlüssel': 'wert' } } }, `labels, round ${round}`);
  }
  // A line the file sink wrote for a real exchange reads back and serializes to the same bytes.
  sameAsOracle(exchangeRecord(), 'exchange record');
  assert.equal(toJsonLine(exchangeRecord()), EXCHANGE_LINE);
});

test('strings print as JSON.stringify prints them: every UTF-16 code unit, alone and inside text, surrogate pairs', () => {
  const minimal = (text: string): LineageRecord => ({
    requestId: text,
    decisionId: 'ab' + text + 'cd',
    startTime: new Date(0),
    endTime: new Date(0),
    principal: { authMethod: 'none', tenant: text, user: text + text },
    request: { endpoint: '/', requestedModel: text.repeat(20) },
    policy: { labels: { [text]: text }, rules: [{ policy: text, rule: 'r', kind: 'deny', outcome: 'deny', message: 'm' + text }] },
    statusCode: 200,
    outcome: 'success',
    gatewayInstance: text,
  });
  // Twice each: the second line is made from the cached member texts (tenant, gatewayInstance, rule) of the first.
  for (let c = 0; c < 0x10000; c++) {
    sameAsOracle(minimal(String.fromCharCode(c)), `U+${c.toString(16)}`);
    if (c < 0x400) sameAsOracle(minimal(String.fromCharCode(c)), `U+${c.toString(16)}, again`);
  }
  for (const s of ['😀', '\ud83d\ude00x', 'x\udbff\udfff', '\udfff\ud800', '', 'plain text', 'a'.repeat(100_000), 'ü'.repeat(50_000)]) sameAsOracle(minimal(s), JSON.stringify(s.slice(0, 20)));
});

test('cached pieces give the line a fresh one would: repeated records, and cached inputs changed in place', () => {
  // One record object changed a little at a time (in place, as a caching bug would not notice), drawing values
  // from small pools so that most lines hit the caches (member texts, rule texts, the last rules list, the runs of
  // members remembered whole) and many hit them right after an input they were made from changed — a member's
  // value or type, an element of an array or a map inside, a member's presence (which moves the comma): each line
  // against the oracle.
  const rnd = seeded(4711);
  const pick = <T,>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const WORDS = ['acme', 'globex', 'azure-eu', 'gpt-4o-mini', 'key:demo', 'schlüssel', 'ключ', '😀', 'a"b', '\\', '', '1', 'true', 'x'.repeat(40)];
  const VALUES: readonly unknown[] = [...WORDS, undefined, undefined, 1, 0, -0, 200, 1e21, NaN, true, false, null, [], ['eng'], ['eng', 'ops'], [{ a: 1 }], { a: 1 }];
  const OUTCOMES = ['allow', 'deny', 'applied', 'not_matched', 'skipped'] as const;
  const groups = ['eng'];
  const labels: Record<string, string> = { tenant: 'acme', tier: 'gold' };
  const dropped = [{ model: 'gpt-4o-mini', param: 'model', deployment: 'gpt-4o-mini/openai/0', policy: 'eu', rule: 'eu-only', message: 'EU only' }];
  const denies = [{ policy: 'residency', rule: 'eu-only', message: 'would deny' }];
  /**
   * Enum-valued members keep values of their set (anything else throws in both serializers); lists and maps stay
   * lists and maps (toJsonLine, like the byte writer before it, does not throw on a string where the oracle calls
   * .map — outside the record's type, not compared here).
   */
  const VALUE_SETS: Record<string, readonly unknown[]> = {
    authMethod: ['none', 'virtual_key', 'jwt'],
    clientApi: ['openai', 'anthropic', undefined],
    outcome: ['success', 'denied', 'provider_error'],
    labels: [labels, labels, undefined, null, {}, { a: 'x', 10: 'y' }],
    droppedCandidates: [dropped, dropped, undefined, null, [], [{ model: 'm', rule: 'r' }]],
    dryRunDenies: [denies, denies, undefined, null, []],
  };
  const ruleOf = (i: number): RuleOutcome => ({ policy: `p${i % 4}`, rule: `r${i}`, kind: pick(['deny', 'route', 'budget']), outcome: pick(OUTCOMES), message: rnd() < 0.5 ? undefined : pick(WORDS) });
  const rules = Array.from({ length: 17 }, (_, i) => ruleOf(i));
  const base = completeRecord();
  const budget = (i: number) => ({ ...base.budgets![0]!, name: `b${i}` });
  const r = completeRecord({
    principal: { ...base.principal, groups },
    policy: { ...base.policy, rules, labels, droppedCandidates: dropped, dryRunDenies: denies },
    budgets: [budget(0), budget(1), budget(2)],
    errorClass: 'provider',
  });
  type Obj = Record<string, unknown>;
  const at = (obj: unknown, keys: readonly string[]): [Obj, string][] => keys.map((k) => [obj as Obj, k]);
  const members: [Obj, string][] = [
    ...at(r.principal, ['keyId', 'tenant', 'team', 'user', 'authMethod', 'groups']),
    ...at(r.request, ['clientApi', 'endpoint', 'method', 'requestedModel', 'stream', 'requestBytes']),
    ...at(r.served, ['provider', 'model', 'upstreamModel', 'deployment', 'cluster', 'region']),
    ...r.budgets!.flatMap((b) => at(b, ['name', 'scopeKey', 'unit', 'limit', 'reserved', 'enforcement', 'softLimitWarning', 'failOpen', 'exceeded'])),
    ...r.attempts!.flatMap((a) => at(a, ['provider', 'deployment', 'status', 'errorClass'])),
    ...at(r.policy, ['bundleRevision', 'labels', 'droppedCandidates', 'dryRunDenies']),
    ...at(dropped[0], ['model', 'param', 'deployment', 'policy', 'rule', 'message']),
    ...at(denies[0], ['policy', 'rule', 'message']),
    ...at(r, ['statusCode', 'outcome', 'errorClass', 'errorCode', 'gatewayInstance']),
  ];
  const originals = new Map(members.map(([obj, k]) => [`${members.findIndex(([o2, k2]) => o2 === obj && k2 === k)}`, obj[k]]));
  for (let step = 0; step < 4000; step++) {
    const x = rnd();
    if (x < 0.3) {
      // A rule's field changes in place (or is set to what it already is).
      const rule = rules[Math.floor(rnd() * rules.length)]! as unknown as Obj;
      const k = pick(['policy', 'rule', 'kind', 'outcome', 'message']);
      rule[k] = k === 'outcome' ? pick(OUTCOMES) : k === 'message' ? pick([undefined, ...WORDS]) : pick(WORDS);
    } else if (x < 0.35) {
      // The list grows or shrinks, or a rule is replaced by an equal copy.
      const y = rnd();
      if (y < 0.35 && rules.length > 0) rules.pop();
      else if (y < 0.7) rules.push(ruleOf(rules.length));
      else if (rules.length > 0) rules[0] = { ...rules[0]! };
    } else if (x < 0.45) {
      // Arrays and maps inside remembered runs change in place.
      const y = rnd();
      if (y < 0.25) groups[Math.floor(rnd() * 2)] = pick(WORDS);
      else if (y < 0.35) groups.length = Math.floor(rnd() * 3);
      else if (y < 0.6) labels[pick(['tenant', 'tier', 'team', '7'])] = pick(WORDS);
      else if (y < 0.7) delete labels[pick(['tenant', 'tier', 'team', '7'])];
      else if (y < 0.8) (dropped[0] as Obj)[pick(['model', 'policy', 'message'])] = pick(VALUES);
      else if (y < 0.9) (dropped.length > 1 ? dropped.pop() : dropped.push({ ...dropped[0]!, model: pick(WORDS) }));
      else denies.length = denies.length ? 0 : denies.push({ policy: 'p', rule: pick(WORDS), message: 'm' });
    } else if (x < 0.9) {
      const i = Math.floor(rnd() * members.length);
      const [obj, k] = members[i]!;
      // Sometimes back to the original value (a hit on an older text), sometimes absent (the comma moves).
      obj[k] = rnd() < 0.3 ? originals.get(`${i}`) : (VALUE_SETS[k] ? pick(VALUE_SETS[k]!) : pick(VALUES));
    }
    // else: the same record again (every cache hits).
    sameAsOracle(r, `step ${step}`);
  }
});

test('a remembered run of members that wrote nothing leaves the next member first in its object (no comma)', () => {
  const bare = (request: LineageRecord['request'], budget: Record<string, unknown>): LineageRecord => ({
    requestId: 'a',
    decisionId: 'b',
    startTime: new Date(0),
    endTime: new Date(0),
    principal: { authMethod: 'none' },
    request,
    budgets: [budget as unknown as NonNullable<LineageRecord['budgets']>[number]],
    statusCode: 200,
    outcome: 'success',
  });
  // Twice each (the second from the remembered runs), and alternating with runs that do write members.
  for (let round = 0; round < 3; round++) {
    sameAsOracle(bare({ requestBytes: 5 } as LineageRecord['request'], { reserved: 1, exceeded: true }), `empty runs, round ${round}`);
    sameAsOracle(bare({ requestBytes: 5 } as LineageRecord['request'], { reserved: 1, exceeded: true }), `empty runs again, round ${round}`);
    sameAsOracle(bare({ endpoint: '/', requestBytes: 5 }, { name: 'n', reserved: 1 }), `written runs, round ${round}`);
  }
});
