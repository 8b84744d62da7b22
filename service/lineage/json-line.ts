// The lineage record's JSON line, as the file and Redis sinks store it: exactly `JSON.stringify(toProtoJson(r))`
// (test/lineage/json-line.test.ts checks it byte for byte against the legacy oracle over varied records).
// Why not that expression: the drain runs it for every request, and building the proto-JSON object tree (about
// 60 small objects for a typical record) only to stringify it was a quarter of all heap allocation per request.
// The text is written here directly, field by field in toProtoJson's order, with put()'s presence rules
// (undefined / null / empty arrays are left out) and JSON.stringify's value rules (non-finite numbers print
// `null`); the constant parts (rule outcomes, enum names) come from bounded caches.

import {
  LINEAGE_SCHEMA_VERSION,
  MAX_REDACTION_LOCATIONS,
  dbl,
  toEnum,
  ts,
  u32,
  u64,
  type BudgetEffect,
  type LineageRecord,
  type RuleOutcome,
} from './record.ts';

/** Strings JSON.stringify prints as they are, between quotes: no quote, backslash, control character or surrogate. */
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/**
 * JSON.stringify of a string. Why not just that: a record has ~45 strings, and the regex check and two
 * concatenations cost about a third of a JSON.stringify call; anything it would escape takes the native path.
 */
export function quote(s: string): string {
  return PLAIN.test(s) ? '"' + s + '"' : JSON.stringify(s);
}

/** A field value's JSON text as put() + JSON.stringify write it, or undefined when the field is left out. */
function jv(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      // Number#toString is JSON.stringify's number format; NaN and ±Infinity print null.
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return undefined;
  }
  if (v === null || (Array.isArray(v) && v.length === 0)) return undefined;
  return JSON.stringify(v);
}

/**
 * `o` (an object's fields so far) with `key` (`,"name":`) and its value appended, when the value is present.
 * The key carries its comma so that a field costs one concatenation less; the first field drops it.
 */
function add(o: string, key: string, v: unknown): string {
  return addText(o, key, jv(v));
}

/** `add` for a value already in JSON text (or undefined: left out). */
function addText(o: string, key: string, t: string | undefined): string {
  if (t === undefined) return o;
  return o === '' ? key.slice(1) + t : o + key + t;
}

/** A u64 field (proto3 JSON prints them as strings): the digits never need escaping. */
function u64Text(n: number | undefined): string | undefined {
  return n === undefined ? undefined : '"' + u64(n) + '"';
}

function dblText(n: number | undefined): string | undefined {
  return n === undefined ? undefined : jv(dbl(n));
}

/** A repeated message field: `[item,…]`, or undefined (left out) when absent or empty. */
function list<T>(a: readonly T[] | undefined | null, item: (x: T) => string): string | undefined {
  if (a === undefined || a === null || a.length === 0) return undefined;
  let s = '[' + item(a[0]!);
  for (let i = 1; i < a.length; i++) s += ',' + item(a[i]!);
  return s + ']';
}

/** Enum names as JSON text by value, per prefix (small fixed sets; past 64 values made each time). */
const enumTexts = new Map<string, Map<string, string>>();

function enumText(prefix: string, v: string): string {
  let byValue = enumTexts.get(prefix);
  if (!byValue) enumTexts.set(prefix, (byValue = new Map()));
  let text = byValue.get(v);
  if (text === undefined) {
    text = JSON.stringify(toEnum(prefix, v));
    if (byValue.size < 64) byValue.set(v, text);
  }
  return text;
}

/** One rule outcome's JSON text, as toProtoJson's rule object stringifies. */
function ruleTextUncached(x: RuleOutcome): string {
  let o = add('', ',"policy":', x.policy);
  o = add(o, ',"rule":', x.rule);
  o = add(o, ',"kind":', x.kind);
  o = addText(o, ',"outcome":', enumText('RULE_RESULT', x.outcome));
  o = add(o, ',"message":', x.message);
  return '{' + o + '}';
}

/**
 * Rule outcomes are most of a record (each rule of the bundle, on every request) and repeat exactly from
 * request to request, so their JSON text is remembered by content (policy, rule, kind, outcome, message).
 * Content keys cannot go stale; bounded (past MAX_CACHED_RULES the text is made each time).
 */
export const MAX_CACHED_RULES = 10_000;
type Level<T> = Map<string | undefined, T>;
const ruleTexts: Level<Level<Level<Level<Level<string>>>>> = new Map();
let cachedRuleCount = 0;

function ruleText(x: RuleOutcome): string {
  const { policy, rule, kind, outcome, message } = x;
  if (typeof policy !== 'string' || typeof rule !== 'string' || typeof kind !== 'string' || typeof outcome !== 'string' || (message !== undefined && typeof message !== 'string')) {
    return ruleTextUncached(x);
  }
  let byRule = ruleTexts.get(policy);
  let byKind = byRule?.get(rule);
  let byOutcome = byKind?.get(kind);
  let byMessage = byOutcome?.get(outcome);
  const hit = byMessage?.get(message);
  if (hit !== undefined) return hit;
  const text = ruleTextUncached(x);
  if (cachedRuleCount >= MAX_CACHED_RULES) return text;
  if (!byRule) ruleTexts.set(policy, (byRule = new Map()));
  if (!byKind) byRule.set(rule, (byKind = new Map()));
  if (!byOutcome) byKind.set(kind, (byOutcome = new Map()));
  if (!byMessage) byOutcome.set(outcome, (byMessage = new Map()));
  byMessage.set(message, text);
  cachedRuleCount++;
  return text;
}

function budgetText(b: BudgetEffect): string {
  let o = add('', ',"name":', b.name);
  o = add(o, ',"scopeKey":', b.scopeKey);
  o = add(o, ',"unit":', b.unit);
  o = addText(o, ',"limit":', dblText(b.limit));
  o = addText(o, ',"reserved":', dblText(b.reserved));
  o = addText(o, ',"charged":', dblText(b.charged));
  o = addText(o, ',"remaining":', dblText(b.remaining));
  o = add(o, ',"enforcement":', b.enforcement);
  o = add(o, ',"softLimitWarning":', b.softLimitWarning);
  o = add(o, ',"failOpen":', b.failOpen);
  o = add(o, ',"exceeded":', b.exceeded);
  return '{' + o + '}';
}

/** A string map (labels, audit detail) as toProtoJson copies it (`{ ...m }`) when it has keys, else undefined. */
function mapText(m: Record<string, string> | undefined): string | undefined {
  if (!m || Object.keys(m).length === 0) return undefined;
  // The copy only matters for a toJSON the spread would not carry over (an inherited one).
  return JSON.stringify('toJSON' in m ? { ...m } : m);
}

/** The record's JSON line: exactly `JSON.stringify(toProtoJson(r))`. */
export function toJsonLine(r: LineageRecord): string {
  let s = add('', ',"schemaVersion":', r.schemaVersion ?? LINEAGE_SCHEMA_VERSION);
  s = add(s, ',"requestId":', r.requestId);
  s = add(s, ',"decisionId":', r.decisionId);
  if (r.trace) {
    const t = r.trace;
    let o = add('', ',"traceId":', t.traceId);
    o = add(o, ',"spanId":', t.spanId);
    o = add(o, ',"parentSpanId":', t.parentSpanId || undefined);
    o = add(o, ',"sampled":', t.sampled);
    s = addText(s, ',"trace":', '{' + o + '}');
  }
  s = add(s, ',"startTime":', ts(r.startTime));
  s = add(s, ',"endTime":', ts(r.endTime));
  {
    const p = r.principal;
    let o = add('', ',"keyId":', p.keyId);
    o = add(o, ',"tenant":', p.tenant);
    o = add(o, ',"team":', p.team);
    o = add(o, ',"user":', p.user);
    o = addText(o, ',"authMethod":', enumText('AUTH_METHOD', p.authMethod));
    o = add(o, ',"groups":', p.groups);
    s = addText(s, ',"principal":', '{' + o + '}');
  }
  {
    const q = r.request;
    let o = addText('', ',"clientApi":', q.clientApi === undefined ? undefined : enumText('CLIENT_API', q.clientApi));
    o = add(o, ',"endpoint":', q.endpoint);
    o = add(o, ',"method":', q.method);
    o = add(o, ',"requestedModel":', q.requestedModel);
    o = add(o, ',"stream":', q.stream);
    o = addText(o, ',"requestBytes":', u64Text(q.requestBytes));
    o = addText(o, ',"responseBytes":', u64Text(q.responseBytes));
    o = add(o, ',"clientRequestId":', q.clientRequestId);
    s = addText(s, ',"request":', '{' + o + '}');
  }
  if (r.served) {
    const v = r.served;
    let o = add('', ',"provider":', v.provider);
    o = add(o, ',"model":', v.model);
    o = add(o, ',"upstreamModel":', v.upstreamModel);
    o = add(o, ',"deployment":', v.deployment);
    o = add(o, ',"cluster":', v.cluster);
    o = add(o, ',"region":', v.region);
    s = addText(s, ',"served":', '{' + o + '}');
  }
  s = addText(
    s,
    ',"attempts":',
    list(r.attempts, (a) => {
      let o = add('', ',"provider":', a.provider);
      o = add(o, ',"deployment":', a.deployment);
      o = add(o, ',"status":', u32(a.status));
      o = add(o, ',"latencyMs":', dbl(a.latencyMs));
      o = add(o, ',"errorClass":', a.errorClass);
      return '{' + o + '}';
    }),
  );
  if (r.policy) {
    const pe = r.policy;
    let o = add('', ',"bundleRevision":', pe.bundleRevision);
    o = addText(o, ',"rules":', list(pe.rules, ruleText));
    o = addText(
      o,
      ',"dryRunDenies":',
      list(pe.dryRunDenies, (x) => {
        let d = add('', ',"policy":', x.policy);
        d = add(d, ',"rule":', x.rule);
        d = add(d, ',"message":', x.message);
        return '{' + d + '}';
      }),
    );
    o = addText(o, ',"labels":', mapText(pe.labels));
    o = addText(
      o,
      ',"droppedCandidates":',
      list(pe.droppedCandidates, (x) => {
        let d = add('', ',"model":', x.model);
        d = add(d, ',"param":', x.param);
        d = add(d, ',"deployment":', x.deployment);
        d = add(d, ',"policy":', x.policy);
        d = add(d, ',"rule":', x.rule);
        d = add(d, ',"message":', x.message);
        return '{' + d + '}';
      }),
    );
    s = addText(s, ',"policy":', '{' + o + '}');
  }
  s = addText(
    s,
    ',"redactions":',
    list(r.redactions, (x) => {
      let o = add('', ',"detector":', x.detector);
      o = addText(o, ',"direction":', enumText('DIRECTION', x.direction));
      o = add(o, ',"action":', x.action);
      o = addText(o, ',"count":', '"' + u64(x.count) + '"');
      const locs = x.locations;
      o = add(o, ',"locations":', locs && locs.length > MAX_REDACTION_LOCATIONS ? locs.slice(0, MAX_REDACTION_LOCATIONS) : locs);
      return '{' + o + '}';
    }),
  );
  s = addText(s, ',"budgets":', list(r.budgets, budgetText));
  if (r.tokens) {
    const t = r.tokens;
    // input and output are always written (u64 of undefined prints "NaN", as toProtoJson does).
    let o = addText('', ',"input":', '"' + u64(t.input) + '"');
    o = addText(o, ',"output":', '"' + u64(t.output) + '"');
    o = addText(o, ',"cached":', u64Text(t.cached));
    o = addText(o, ',"reasoning":', u64Text(t.reasoning));
    o = addText(o, ',"cacheWrite":', u64Text(t.cacheWrite));
    o = addText(o, ',"cacheWrite1h":', u64Text(t.cacheWrite1h));
    o = add(o, ',"estimated":', t.estimated);
    o = add(o, ',"anomaly":', t.anomaly);
    s = addText(s, ',"tokens":', '{' + o + '}');
  }
  s = addText(s, ',"costUsd":', dblText(r.costUsd));
  if (r.costComponents) {
    const c = r.costComponents;
    let o = addText('', ',"inputUsd":', dblText(c.inputUsd));
    o = addText(o, ',"cacheReadUsd":', dblText(c.cacheReadUsd));
    o = addText(o, ',"cacheWrite5mUsd":', dblText(c.cacheWrite5mUsd));
    o = addText(o, ',"cacheWrite1hUsd":', dblText(c.cacheWrite1hUsd));
    o = addText(o, ',"outputUsd":', dblText(c.outputUsd));
    o = addText(o, ',"reasoningUsd":', dblText(c.reasoningUsd));
    o = add(o, ',"longContext":', c.longContext);
    s = addText(s, ',"costComponents":', '{' + o + '}');
  }
  if (r.latency) {
    const l = r.latency;
    let o = add('', ',"requestHeadersUs":', l.requestHeadersUs === undefined ? undefined : u32(l.requestHeadersUs));
    o = add(o, ',"requestBodyUs":', l.requestBodyUs === undefined ? undefined : u32(l.requestBodyUs));
    o = add(o, ',"responseHeadersUs":', l.responseHeadersUs === undefined ? undefined : u32(l.responseHeadersUs));
    o = add(o, ',"responseBodyUs":', l.responseBodyUs === undefined ? undefined : u32(l.responseBodyUs));
    o = add(o, ',"policyEvalUs":', l.policyEvalUs === undefined ? undefined : u32(l.policyEvalUs));
    o = add(o, ',"redactionUs":', l.redactionUs === undefined ? undefined : u32(l.redactionUs));
    o = add(o, ',"processingTotalUs":', l.processingTotalUs === undefined ? undefined : u32(l.processingTotalUs));
    o = addText(o, ',"upstreamTtfbMs":', dblText(l.upstreamTtfbMs));
    o = addText(o, ',"upstreamTtftMs":', dblText(l.upstreamTtftMs));
    o = addText(o, ',"upstreamTotalMs":', dblText(l.upstreamTotalMs));
    o = addText(o, ',"totalMs":', dblText(l.totalMs));
    s = addText(s, ',"latency":', '{' + o + '}');
  }
  s = add(s, ',"statusCode":', u32(r.statusCode));
  s = addText(s, ',"outcome":', enumText('OUTCOME', r.outcome));
  s = add(s, ',"errorClass":', r.errorClass);
  s = add(s, ',"errorCode":', r.errorCode);
  if (r.content) {
    const c = r.content;
    let o = add('', ',"promptSha256":', c.promptSha256);
    o = add(o, ',"responseSha256":', c.responseSha256);
    o = add(o, ',"prompt":', c.prompt);
    o = add(o, ',"response":', c.response);
    o = add(o, ',"retainedBy":', c.retainedBy);
    s = addText(s, ',"content":', '{' + o + '}');
  }
  s = add(s, ',"gatewayInstance":', r.gatewayInstance);
  if (r.mcp) {
    const m = r.mcp;
    let o = add('', ',"server":', m.server);
    o = add(o, ',"method":', m.method);
    o = add(o, ',"tool":', m.tool);
    o = add(o, ',"jsonrpcId":', m.jsonrpcId);
    o = add(o, ',"sessionId":', m.sessionId);
    o = add(o, ',"parentRequestId":', m.parentRequestId);
    o = add(o, ',"httpRequestId":', m.httpRequestId);
    o = add(o, ',"rpcErrorCode":', m.rpcErrorCode);
    o = add(o, ',"hiddenTools":', m.hiddenTools);
    o = add(o, ',"batchSize":', m.batchSize);
    s = addText(s, ',"mcp":', '{' + o + '}');
  }
  if (r.audit) {
    const a = r.audit;
    let o = add('', ',"action":', a.action);
    o = add(o, ',"actor":', a.actor);
    o = add(o, ',"target":', a.target);
    o = addText(o, ',"detail":', mapText(a.detail));
    s = addText(s, ',"audit":', '{' + o + '}');
  }
  return '{' + s + '}';
}
