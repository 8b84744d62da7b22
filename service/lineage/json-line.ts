// The lineage record's JSON line, as the file and Redis sinks store it: exactly `JSON.stringify(toProtoJson(r))`
// (test/lineage/json-line.test.ts checks it byte for byte against the legacy oracle over varied records).
// Why not that expression: the drain runs it for every request; building the proto-JSON object tree (about 60
// small objects for a typical record) only to stringify it, or concatenating the text from a few hundred
// pieces, was a quarter of all heap allocation per request. The text is written here as bytes into one reused
// buffer, field by field in toProtoJson's order, with put()'s presence rules (undefined / null / empty arrays
// are left out) and JSON.stringify's value rules (non-finite numbers print `null`); the result is one flat string.
// Constant parts (rule outcomes, enum names) come from bounded caches.

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

const INITIAL_SCRATCH_BYTES = 16 * 1024;
/** A larger scratch buffer (a record with retained content) is dropped after use. */
const MAX_SCRATCH_BYTES = 1024 * 1024;

/** The line being written (toJsonLine is synchronous: one at a time). */
let buf = Buffer.allocUnsafeSlow(INITIAL_SCRATCH_BYTES);
let pos = 0;
/** Some byte written is not ASCII: the line is decoded as UTF-8 (else as latin1, a plain copy). */
let wide = false;

function room(n: number): void {
  if (pos + n <= buf.length) return;
  const next = Buffer.allocUnsafeSlow(Math.max(pos + n, buf.length * 2));
  buf.copy(next, 0, 0, pos);
  buf = next;
}

/** ASCII text (keys, numbers, enum names, digits) byte by byte. */
function ascii(s: string, from = 0): void {
  room(s.length);
  // Locals, not the module's `buf` / `pos`, inside the loops: context slots are reloaded on every access.
  const b = buf;
  let p = pos;
  for (let i = from; i < s.length; i++) b[p++] = s.charCodeAt(i);
  pos = p;
}

/** Any JSON text (may hold non-ASCII characters), encoded as UTF-8. */
function text(t: string): void {
  room(t.length * 3);
  const n = buf.write(t, pos);
  if (n !== t.length) wide = true;
  pos += n;
}

/** JSON text, usually ASCII (enum names, labels): byte by byte, or encoded as UTF-8 when it is not. */
function json(t: string): void {
  room(t.length);
  const b = buf;
  let p = pos;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c > 0x7f) {
      text(t);
      return;
    }
    b[p++] = c;
  }
  pos = p;
}

/**
 * A JSON string: what JSON.stringify(s) prints. Printable ASCII without `"` or `\` is copied byte by byte
 * between quotes; anything else (escapes, non-ASCII) is rewritten from JSON.stringify.
 */
function str(s: string): void {
  room(s.length + 2);
  const b = buf;
  let p = pos;
  b[p++] = 0x22;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
      text(JSON.stringify(s));
      return;
    }
    b[p++] = c;
  }
  b[p++] = 0x22;
  pos = p;
}

/** `,"name":` — without the comma when it is the first member of its object or array. */
function key(k: string): void {
  const prev = buf[pos - 1];
  ascii(k, prev === 0x7b || prev === 0x5b ? 1 : 0);
}

/** A field as put() + JSON.stringify write it: left out when undefined, null or an empty array. */
function f(k: string, v: unknown): void {
  switch (typeof v) {
    case 'string':
      key(k);
      str(v);
      return;
    case 'number':
      key(k);
      // Number#toString is JSON.stringify's number format; NaN and ±Infinity print null.
      ascii(Number.isFinite(v) ? String(v) : 'null');
      return;
    case 'boolean':
      key(k);
      ascii(v ? 'true' : 'false');
      return;
    case 'undefined':
      return;
  }
  if (v === null || (Array.isArray(v) && v.length === 0)) return;
  ft(k, JSON.stringify(v));
}

/** A field whose value is already JSON text (undefined: left out). */
function ft(k: string, t: string | undefined): void {
  if (t === undefined) return;
  key(k);
  json(t);
}

/**
 * A u64 field (proto3 JSON prints them as strings of digits, or "NaN" / "Infinity": never escaped). Left out when
 * undefined, unless `always` (toProtoJson writes u64(undefined), i.e. "NaN", for those).
 */
function u64f(k: string, n: number | undefined, always = false): void {
  if (n === undefined && !always) return;
  key(k);
  room(1);
  buf[pos++] = 0x22;
  ascii(u64(n as number));
  room(1);
  buf[pos++] = 0x22;
}

function dblf(k: string, n: number | undefined): void {
  if (n !== undefined) f(k, dbl(n));
}

function open(k: string): void {
  key(k);
  room(1);
  buf[pos++] = 0x7b;
}

function close(): void {
  room(1);
  buf[pos++] = 0x7d;
}

/** A repeated field of complete values: `"k":[…]`, left out when absent or empty. */
function list<T>(k: string, a: readonly T[] | undefined | null, item: (x: T) => void): void {
  if (a === undefined || a === null || a.length === 0) return;
  key(k);
  room(1);
  buf[pos++] = 0x5b;
  for (let i = 0; i < a.length; i++) {
    if (i > 0) {
      room(1);
      buf[pos++] = 0x2c;
    }
    item(a[i]!);
  }
  room(1);
  buf[pos++] = 0x5d;
}

/** A repeated message field: each element's fields written by `fields` between braces. */
function objects<T>(k: string, a: readonly T[] | undefined | null, fields: (x: T) => void): void {
  list(k, a, (x) => {
    room(1);
    buf[pos++] = 0x7b;
    fields(x);
    close();
  });
}

/** Enum names as JSON text by value, per prefix (small fixed sets; past 64 values made each time). */
const enumTexts = new Map<string, Map<string, string>>();

function enumText(prefix: string, v: string): string {
  let byValue = enumTexts.get(prefix);
  if (!byValue) enumTexts.set(prefix, (byValue = new Map()));
  let t = byValue.get(v);
  if (t === undefined) {
    t = JSON.stringify(toEnum(prefix, v));
    if (byValue.size < 64) byValue.set(v, t);
  }
  return t;
}

/** One rule outcome's JSON, as toProtoJson's rule object stringifies: UTF-8 bytes, and whether any is not ASCII. */
interface RuleJson {
  bytes: Buffer;
  wide: boolean;
}

function ruleJson(x: RuleOutcome): RuleJson {
  let o = '';
  const add = (k: string, t: string | undefined): void => {
    if (t !== undefined) o += (o === '' ? '' : ',') + k + t;
  };
  // put()'s presence rules, for the uncached path's odd values (the cached path has strings only).
  const js = (v: unknown): string | undefined => (v === undefined || v === null || (Array.isArray(v) && v.length === 0) ? undefined : JSON.stringify(v));
  add('"policy":', js(x.policy));
  add('"rule":', js(x.rule));
  add('"kind":', js(x.kind));
  add('"outcome":', enumText('RULE_RESULT', x.outcome));
  add('"message":', js(x.message));
  const t = '{' + o + '}';
  const bytes = Buffer.from(t);
  return { bytes, wide: bytes.length !== t.length };
}

/**
 * Rule outcomes are most of a record (each rule of the bundle, on every request) and repeat exactly from
 * request to request, so their JSON (as bytes) is remembered by content (policy, rule, kind, outcome, message).
 * Content keys cannot go stale; bounded (past MAX_CACHED_RULES the bytes are made each time).
 */
export const MAX_CACHED_RULES = 10_000;
type Level<T> = Map<string | undefined, T>;
const ruleCache: Level<Level<Level<Level<Level<RuleJson>>>>> = new Map();
let cachedRuleCount = 0;

function ruleOf(x: RuleOutcome): RuleJson {
  const { policy, rule, kind, outcome, message } = x;
  if (typeof policy !== 'string' || typeof rule !== 'string' || typeof kind !== 'string' || typeof outcome !== 'string' || (message !== undefined && typeof message !== 'string')) {
    return ruleJson(x);
  }
  let byRule = ruleCache.get(policy);
  let byKind = byRule?.get(rule);
  let byOutcome = byKind?.get(kind);
  let byMessage = byOutcome?.get(outcome);
  const hit = byMessage?.get(message);
  if (hit !== undefined) return hit;
  const rj = ruleJson(x);
  if (cachedRuleCount >= MAX_CACHED_RULES) return rj;
  if (!byRule) ruleCache.set(policy, (byRule = new Map()));
  if (!byKind) byRule.set(rule, (byKind = new Map()));
  if (!byOutcome) byKind.set(kind, (byOutcome = new Map()));
  if (!byMessage) byOutcome.set(outcome, (byMessage = new Map()));
  byMessage.set(message, rj);
  cachedRuleCount++;
  return rj;
}

function ruleItem(x: RuleOutcome): void {
  const r = ruleOf(x);
  room(r.bytes.length);
  buf.set(r.bytes, pos);
  pos += r.bytes.length;
  if (r.wide) wide = true;
}

function budgetFields(b: BudgetEffect): void {
  f(',"name":', b.name);
  f(',"scopeKey":', b.scopeKey);
  f(',"unit":', b.unit);
  dblf(',"limit":', b.limit);
  dblf(',"reserved":', b.reserved);
  dblf(',"charged":', b.charged);
  dblf(',"remaining":', b.remaining);
  f(',"enforcement":', b.enforcement);
  f(',"softLimitWarning":', b.softLimitWarning);
  f(',"failOpen":', b.failOpen);
  f(',"exceeded":', b.exceeded);
}

/** A string map (labels, audit detail) as toProtoJson copies it (`{ ...m }`) when it has keys, else undefined. */
function mapText(m: Record<string, string> | undefined): string | undefined {
  if (!m || Object.keys(m).length === 0) return undefined;
  // The copy only matters for a toJSON the spread would not carry over (an inherited one).
  return JSON.stringify('toJSON' in m ? { ...m } : m);
}

/** The record's JSON line: exactly `JSON.stringify(toProtoJson(r))`. */
export function toJsonLine(r: LineageRecord): string {
  pos = 0;
  wide = false;
  buf[pos++] = 0x7b; // {
  f(',"schemaVersion":', r.schemaVersion ?? LINEAGE_SCHEMA_VERSION);
  f(',"requestId":', r.requestId);
  f(',"decisionId":', r.decisionId);
  if (r.trace) {
    open(',"trace":');
    const t = r.trace;
    f(',"traceId":', t.traceId);
    f(',"spanId":', t.spanId);
    f(',"parentSpanId":', t.parentSpanId || undefined);
    f(',"sampled":', t.sampled);
    close();
  }
  f(',"startTime":', ts(r.startTime));
  f(',"endTime":', ts(r.endTime));
  {
    open(',"principal":');
    const p = r.principal;
    f(',"keyId":', p.keyId);
    f(',"tenant":', p.tenant);
    f(',"team":', p.team);
    f(',"user":', p.user);
    ft(',"authMethod":', enumText('AUTH_METHOD', p.authMethod));
    f(',"groups":', p.groups);
    close();
  }
  {
    open(',"request":');
    const q = r.request;
    ft(',"clientApi":', q.clientApi === undefined ? undefined : enumText('CLIENT_API', q.clientApi));
    f(',"endpoint":', q.endpoint);
    f(',"method":', q.method);
    f(',"requestedModel":', q.requestedModel);
    f(',"stream":', q.stream);
    u64f(',"requestBytes":', q.requestBytes);
    u64f(',"responseBytes":', q.responseBytes);
    f(',"clientRequestId":', q.clientRequestId);
    close();
  }
  if (r.served) {
    open(',"served":');
    const v = r.served;
    f(',"provider":', v.provider);
    f(',"model":', v.model);
    f(',"upstreamModel":', v.upstreamModel);
    f(',"deployment":', v.deployment);
    f(',"cluster":', v.cluster);
    f(',"region":', v.region);
    close();
  }
  objects(',"attempts":', r.attempts, (a) => {
      f(',"provider":', a.provider);
      f(',"deployment":', a.deployment);
      f(',"status":', u32(a.status));
      f(',"latencyMs":', dbl(a.latencyMs));
      f(',"errorClass":', a.errorClass);
    });
  if (r.policy) {
    open(',"policy":');
    const pe = r.policy;
    f(',"bundleRevision":', pe.bundleRevision);
    list(',"rules":', pe.rules, ruleItem);
    objects(',"dryRunDenies":', pe.dryRunDenies, (x) => {
        f(',"policy":', x.policy);
        f(',"rule":', x.rule);
        f(',"message":', x.message);
      });
    ft(',"labels":', mapText(pe.labels));
    objects(',"droppedCandidates":', pe.droppedCandidates, (x) => {
        f(',"model":', x.model);
        f(',"param":', x.param);
        f(',"deployment":', x.deployment);
        f(',"policy":', x.policy);
        f(',"rule":', x.rule);
        f(',"message":', x.message);
      });
    close();
  }
  objects(',"redactions":', r.redactions, (x) => {
      f(',"detector":', x.detector);
      ft(',"direction":', enumText('DIRECTION', x.direction));
      f(',"action":', x.action);
      u64f(',"count":', x.count, true);
      const locs = x.locations;
      f(',"locations":', locs && locs.length > MAX_REDACTION_LOCATIONS ? locs.slice(0, MAX_REDACTION_LOCATIONS) : locs);
    });
  objects(',"budgets":', r.budgets, budgetFields);
  if (r.tokens) {
    open(',"tokens":');
    const t = r.tokens;
    // input and output are always written (u64 of undefined prints "NaN", as toProtoJson does).
    u64f(',"input":', t.input, true);
    u64f(',"output":', t.output, true);
    u64f(',"cached":', t.cached);
    u64f(',"reasoning":', t.reasoning);
    u64f(',"cacheWrite":', t.cacheWrite);
    u64f(',"cacheWrite1h":', t.cacheWrite1h);
    f(',"estimated":', t.estimated);
    f(',"anomaly":', t.anomaly);
    close();
  }
  dblf(',"costUsd":', r.costUsd);
  if (r.costComponents) {
    open(',"costComponents":');
    const c = r.costComponents;
    dblf(',"inputUsd":', c.inputUsd);
    dblf(',"cacheReadUsd":', c.cacheReadUsd);
    dblf(',"cacheWrite5mUsd":', c.cacheWrite5mUsd);
    dblf(',"cacheWrite1hUsd":', c.cacheWrite1hUsd);
    dblf(',"outputUsd":', c.outputUsd);
    dblf(',"reasoningUsd":', c.reasoningUsd);
    f(',"longContext":', c.longContext);
    close();
  }
  if (r.latency) {
    open(',"latency":');
    const l = r.latency;
    f(',"requestHeadersUs":', l.requestHeadersUs === undefined ? undefined : u32(l.requestHeadersUs));
    f(',"requestBodyUs":', l.requestBodyUs === undefined ? undefined : u32(l.requestBodyUs));
    f(',"responseHeadersUs":', l.responseHeadersUs === undefined ? undefined : u32(l.responseHeadersUs));
    f(',"responseBodyUs":', l.responseBodyUs === undefined ? undefined : u32(l.responseBodyUs));
    f(',"policyEvalUs":', l.policyEvalUs === undefined ? undefined : u32(l.policyEvalUs));
    f(',"redactionUs":', l.redactionUs === undefined ? undefined : u32(l.redactionUs));
    f(',"processingTotalUs":', l.processingTotalUs === undefined ? undefined : u32(l.processingTotalUs));
    dblf(',"upstreamTtfbMs":', l.upstreamTtfbMs);
    dblf(',"upstreamTtftMs":', l.upstreamTtftMs);
    dblf(',"upstreamTotalMs":', l.upstreamTotalMs);
    dblf(',"totalMs":', l.totalMs);
    close();
  }
  f(',"statusCode":', u32(r.statusCode));
  ft(',"outcome":', enumText('OUTCOME', r.outcome));
  f(',"errorClass":', r.errorClass);
  f(',"errorCode":', r.errorCode);
  if (r.content) {
    open(',"content":');
    const c = r.content;
    f(',"promptSha256":', c.promptSha256);
    f(',"responseSha256":', c.responseSha256);
    f(',"prompt":', c.prompt);
    f(',"response":', c.response);
    f(',"retainedBy":', c.retainedBy);
    close();
  }
  f(',"gatewayInstance":', r.gatewayInstance);
  if (r.mcp) {
    open(',"mcp":');
    const m = r.mcp;
    f(',"server":', m.server);
    f(',"method":', m.method);
    f(',"tool":', m.tool);
    f(',"jsonrpcId":', m.jsonrpcId);
    f(',"sessionId":', m.sessionId);
    f(',"parentRequestId":', m.parentRequestId);
    f(',"httpRequestId":', m.httpRequestId);
    f(',"rpcErrorCode":', m.rpcErrorCode);
    f(',"hiddenTools":', m.hiddenTools);
    f(',"batchSize":', m.batchSize);
    close();
  }
  if (r.audit) {
    open(',"audit":');
    const a = r.audit;
    f(',"action":', a.action);
    f(',"actor":', a.actor);
    f(',"target":', a.target);
    ft(',"detail":', mapText(a.detail));
    close();
  }
  close();
  // One flat string straight from the bytes (latin1 is a plain copy when every byte is ASCII).
  const line = wide ? buf.toString('utf8', 0, pos) : buf.toString('latin1', 0, pos);
  if (buf.length > MAX_SCRATCH_BYTES) buf = Buffer.allocUnsafeSlow(INITIAL_SCRATCH_BYTES);
  return line;
}
