// A record straight to its proto3 JSON line: the exact text of JSON.stringify(toProtoJson(record)), written
// field by field without building the intermediate object tree first (that tree, then stringifying it, was
// most of the lineage drain's CPU). Same field order, same omission rules (absent / null / empty array), same
// number and enum mapping; test/lineage/json-line.test.ts holds it byte-equal to the object path.
// toProtoJson() stays for sinks that want the object (stdout via pino) and for schema validation.

import { dbl, LINEAGE_SCHEMA_VERSION, MAX_REDACTION_LOCATIONS, toEnum, ts, u32, u64, type LineageRecord, type RuleOutcome } from './record.ts';

/**
 * JSON.stringify(s) for a string: quotes only when nothing needs escaping (control characters, `"`, `\`, and
 * surrogates, which JSON.stringify escapes when unpaired), otherwise JSON.stringify itself. Most values are
 * short identifiers; the native call costs more than this scan for them.
 */
function quote(s: string): string {
  if (s.length > 256) return JSON.stringify(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** JSON text of one value as JSON.stringify would print it inside an object; undefined = key omitted. */
function enc(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return undefined;
    default:
      if (v === null || (Array.isArray(v) && v.length === 0)) return undefined;
      return JSON.stringify(v);
  }
}

/** Appends `"key":value` (key given pre-quoted with its colon) when the value is present. */
function add(body: string, key: string, v: unknown): string {
  const e = enc(v);
  if (e === undefined) return body;
  return body === '' ? key + e : body + ',' + key + e;
}

function wrap(body: string): string {
  return '{' + body + '}';
}

function opt<T, R>(v: T | undefined, f: (x: T) => R): R | undefined {
  return v === undefined ? undefined : f(v);
}

/** Enum names by value, per prefix (the value sets are small and fixed; anything else is formatted each time). */
const enumCache = new Map<string, Map<string, string>>();
function enumName(prefix: string, v: string): string {
  let byValue = enumCache.get(prefix);
  if (!byValue) enumCache.set(prefix, (byValue = new Map()));
  let name = byValue.get(v);
  if (name === undefined) {
    name = toEnum(prefix, v);
    if (byValue.size < 64) byValue.set(v, name);
  }
  return name;
}

/** Adds an array of objects, each written by `item`; empty and absent arrays are omitted. */
function addList<T>(body: string, key: string, list: readonly T[] | undefined, item: (x: T) => string): string {
  if (list === undefined || list === null || list.length === 0) return body;
  let s = '';
  for (let i = 0; i < list.length; i++) s += (i === 0 ? '' : ',') + item(list[i]!);
  return (body === '' ? key : body + ',' + key) + '[' + s + ']';
}

/** Adds a nested object (always written once present, even when empty, as toProtoJson does). */
function addObj(body: string, key: string, inner: string): string {
  return (body === '' ? key : body + ',' + key) + wrap(inner);
}

function ruleJsonUncached(x: RuleOutcome): string {
  let c = '';
  c = add(c, '"policy":', x.policy);
  c = add(c, '"rule":', x.rule);
  c = add(c, '"kind":', x.kind);
  c = add(c, '"outcome":', enumName('RULE_RESULT', x.outcome));
  c = add(c, '"message":', x.message);
  return wrap(c);
}

/**
 * Rule outcomes are most of a record (every rule of the bundle, every request) and repeat exactly from request
 * to request, so their text is remembered by content: (policy, rule, kind, outcome, message). Content keys
 * cannot go stale; the cache is bounded (past MAX_CACHED_RULES entries the text is built each time).
 */
export const MAX_CACHED_RULES = 10_000;
type Level<T> = Map<string | undefined, T>;
const ruleCache: Level<Level<Level<Level<Level<string>>>>> = new Map();
let ruleCacheSize = 0;

function ruleJson(x: RuleOutcome): string {
  const { policy, rule, kind, outcome, message } = x;
  if (typeof policy !== 'string' || typeof rule !== 'string' || typeof kind !== 'string' || typeof outcome !== 'string' || (message !== undefined && typeof message !== 'string')) {
    return ruleJsonUncached(x);
  }
  let byRule = ruleCache.get(policy);
  let byKind = byRule?.get(rule);
  let byOutcome = byKind?.get(kind);
  let byMessage = byOutcome?.get(outcome);
  const hit = byMessage?.get(message);
  if (hit !== undefined) return hit;
  const text = ruleJsonUncached(x);
  if (ruleCacheSize >= MAX_CACHED_RULES) return text;
  if (!byRule) ruleCache.set(policy, (byRule = new Map()));
  if (!byKind) byRule.set(rule, (byKind = new Map()));
  if (!byOutcome) byKind.set(kind, (byOutcome = new Map()));
  if (!byMessage) byOutcome.set(outcome, (byMessage = new Map()));
  byMessage.set(message, text);
  ruleCacheSize++;
  return text;
}

/** `JSON.stringify(toProtoJson(r))`, without the intermediate object. Throws where toProtoJson would. */
export function lineageJsonLine(r: LineageRecord): string {
  let o = '';
  o = add(o, '"schemaVersion":', r.schemaVersion ?? LINEAGE_SCHEMA_VERSION);
  o = add(o, '"requestId":', r.requestId);
  o = add(o, '"decisionId":', r.decisionId);
  if (r.trace) {
    const t = r.trace;
    let b = '';
    b = add(b, '"traceId":', t.traceId);
    b = add(b, '"spanId":', t.spanId);
    b = add(b, '"parentSpanId":', t.parentSpanId || undefined);
    b = add(b, '"sampled":', t.sampled);
    o = addObj(o, '"trace":', b);
  }
  o = add(o, '"startTime":', ts(r.startTime));
  o = add(o, '"endTime":', ts(r.endTime));
  {
    const p = r.principal;
    let b = '';
    b = add(b, '"keyId":', p.keyId);
    b = add(b, '"tenant":', p.tenant);
    b = add(b, '"team":', p.team);
    b = add(b, '"user":', p.user);
    b = add(b, '"authMethod":', enumName('AUTH_METHOD', p.authMethod));
    b = add(b, '"groups":', p.groups);
    o = addObj(o, '"principal":', b);
  }
  {
    const q = r.request;
    let b = '';
    b = add(b, '"clientApi":', q.clientApi === undefined ? undefined : enumName('CLIENT_API', q.clientApi));
    b = add(b, '"endpoint":', q.endpoint);
    b = add(b, '"method":', q.method);
    b = add(b, '"requestedModel":', q.requestedModel);
    b = add(b, '"stream":', q.stream);
    b = add(b, '"requestBytes":', opt(q.requestBytes, u64));
    b = add(b, '"responseBytes":', opt(q.responseBytes, u64));
    b = add(b, '"clientRequestId":', q.clientRequestId);
    o = addObj(o, '"request":', b);
  }
  if (r.served) {
    const s = r.served;
    let b = '';
    b = add(b, '"provider":', s.provider);
    b = add(b, '"model":', s.model);
    b = add(b, '"upstreamModel":', s.upstreamModel);
    b = add(b, '"deployment":', s.deployment);
    b = add(b, '"cluster":', s.cluster);
    b = add(b, '"region":', s.region);
    o = addObj(o, '"served":', b);
  }
  o = addList(o, '"attempts":', r.attempts, (a) => {
    let b = '';
    b = add(b, '"provider":', a.provider);
    b = add(b, '"deployment":', a.deployment);
    b = add(b, '"status":', u32(a.status));
    b = add(b, '"latencyMs":', dbl(a.latencyMs));
    b = add(b, '"errorClass":', a.errorClass);
    return wrap(b);
  });
  if (r.policy) {
    const pe = r.policy;
    let b = '';
    b = add(b, '"bundleRevision":', pe.bundleRevision);
    b = addList(b, '"rules":', pe.rules, ruleJson);
    b = addList(b, '"dryRunDenies":', pe.dryRunDenies, (x) => {
      let c = '';
      c = add(c, '"policy":', x.policy);
      c = add(c, '"rule":', x.rule);
      c = add(c, '"message":', x.message);
      return wrap(c);
    });
    if (pe.labels && Object.keys(pe.labels).length > 0) b = add(b, '"labels":', { ...pe.labels });
    b = addList(b, '"droppedCandidates":', pe.droppedCandidates, (x) => {
      let c = '';
      c = add(c, '"model":', x.model);
      c = add(c, '"param":', x.param);
      c = add(c, '"deployment":', x.deployment);
      c = add(c, '"policy":', x.policy);
      c = add(c, '"rule":', x.rule);
      c = add(c, '"message":', x.message);
      return wrap(c);
    });
    o = addObj(o, '"policy":', b);
  }
  o = addList(o, '"redactions":', r.redactions, (x) => {
    let c = '';
    c = add(c, '"detector":', x.detector);
    c = add(c, '"direction":', enumName('DIRECTION', x.direction));
    c = add(c, '"action":', x.action);
    c = add(c, '"count":', u64(x.count));
    c = add(c, '"locations":', x.locations?.slice(0, MAX_REDACTION_LOCATIONS));
    return wrap(c);
  });
  o = addList(o, '"budgets":', r.budgets, (x) => {
    let c = '';
    c = add(c, '"name":', x.name);
    c = add(c, '"scopeKey":', x.scopeKey);
    c = add(c, '"unit":', x.unit);
    c = add(c, '"limit":', opt(x.limit, dbl));
    c = add(c, '"reserved":', opt(x.reserved, dbl));
    c = add(c, '"charged":', opt(x.charged, dbl));
    c = add(c, '"remaining":', opt(x.remaining, dbl));
    c = add(c, '"enforcement":', x.enforcement);
    c = add(c, '"softLimitWarning":', x.softLimitWarning);
    c = add(c, '"failOpen":', x.failOpen);
    c = add(c, '"exceeded":', x.exceeded);
    return wrap(c);
  });
  if (r.tokens) {
    const t = r.tokens;
    let b = '';
    b = add(b, '"input":', u64(t.input));
    b = add(b, '"output":', u64(t.output));
    b = add(b, '"cached":', opt(t.cached, u64));
    b = add(b, '"reasoning":', opt(t.reasoning, u64));
    b = add(b, '"cacheWrite":', opt(t.cacheWrite, u64));
    b = add(b, '"cacheWrite1h":', opt(t.cacheWrite1h, u64));
    b = add(b, '"estimated":', t.estimated);
    b = add(b, '"anomaly":', t.anomaly);
    o = addObj(o, '"tokens":', b);
  }
  o = add(o, '"costUsd":', opt(r.costUsd, dbl));
  if (r.costComponents) {
    const c = r.costComponents;
    let b = '';
    b = add(b, '"inputUsd":', opt(c.inputUsd, dbl));
    b = add(b, '"cacheReadUsd":', opt(c.cacheReadUsd, dbl));
    b = add(b, '"cacheWrite5mUsd":', opt(c.cacheWrite5mUsd, dbl));
    b = add(b, '"cacheWrite1hUsd":', opt(c.cacheWrite1hUsd, dbl));
    b = add(b, '"outputUsd":', opt(c.outputUsd, dbl));
    b = add(b, '"reasoningUsd":', opt(c.reasoningUsd, dbl));
    b = add(b, '"longContext":', c.longContext);
    o = addObj(o, '"costComponents":', b);
  }
  if (r.latency) {
    const l = r.latency;
    let b = '';
    b = add(b, '"requestHeadersUs":', opt(l.requestHeadersUs, u32));
    b = add(b, '"requestBodyUs":', opt(l.requestBodyUs, u32));
    b = add(b, '"responseHeadersUs":', opt(l.responseHeadersUs, u32));
    b = add(b, '"responseBodyUs":', opt(l.responseBodyUs, u32));
    b = add(b, '"policyEvalUs":', opt(l.policyEvalUs, u32));
    b = add(b, '"redactionUs":', opt(l.redactionUs, u32));
    b = add(b, '"processingTotalUs":', opt(l.processingTotalUs, u32));
    b = add(b, '"upstreamTtfbMs":', opt(l.upstreamTtfbMs, dbl));
    b = add(b, '"upstreamTtftMs":', opt(l.upstreamTtftMs, dbl));
    b = add(b, '"upstreamTotalMs":', opt(l.upstreamTotalMs, dbl));
    b = add(b, '"totalMs":', opt(l.totalMs, dbl));
    o = addObj(o, '"latency":', b);
  }
  o = add(o, '"statusCode":', u32(r.statusCode));
  o = add(o, '"outcome":', enumName('OUTCOME', r.outcome));
  o = add(o, '"errorClass":', r.errorClass);
  o = add(o, '"errorCode":', r.errorCode);
  if (r.content) {
    const c = r.content;
    let b = '';
    b = add(b, '"promptSha256":', c.promptSha256);
    b = add(b, '"responseSha256":', c.responseSha256);
    b = add(b, '"prompt":', c.prompt);
    b = add(b, '"response":', c.response);
    b = add(b, '"retainedBy":', c.retainedBy);
    o = addObj(o, '"content":', b);
  }
  o = add(o, '"gatewayInstance":', r.gatewayInstance);
  if (r.mcp) {
    const m = r.mcp;
    let b = '';
    b = add(b, '"server":', m.server);
    b = add(b, '"method":', m.method);
    b = add(b, '"tool":', m.tool);
    b = add(b, '"jsonrpcId":', m.jsonrpcId);
    b = add(b, '"sessionId":', m.sessionId);
    b = add(b, '"parentRequestId":', m.parentRequestId);
    b = add(b, '"httpRequestId":', m.httpRequestId);
    b = add(b, '"rpcErrorCode":', m.rpcErrorCode);
    b = add(b, '"hiddenTools":', m.hiddenTools);
    b = add(b, '"batchSize":', m.batchSize);
    o = addObj(o, '"mcp":', b);
  }
  if (r.audit) {
    const a = r.audit;
    let b = '';
    b = add(b, '"action":', a.action);
    b = add(b, '"actor":', a.actor);
    b = add(b, '"target":', a.target);
    if (a.detail && Object.keys(a.detail).length) b = add(b, '"detail":', { ...a.detail });
    o = addObj(o, '"audit":', b);
  }
  return wrap(o);
}
