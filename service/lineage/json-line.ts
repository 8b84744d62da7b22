// The lineage record's JSON line, as the file and Redis sinks store it: exactly `JSON.stringify(toProtoJson(r))`
// (test/lineage/json-line.test.ts checks it byte for byte against the legacy oracle over varied records).
// Why not that expression: the drain runs it for every request, and building the proto-JSON object tree (about 60
// small objects for a typical record) only to stringify it costs more than the text itself. The text is made here
// field by field in toProtoJson's order, with put()'s presence rules (undefined / null / empty arrays are left out)
// and JSON.stringify's value rules (non-finite numbers print `null`), by string concatenation: V8 joins strings
// natively (a rope, flattened once at the end), where writing bytes from JS costs a few ns per character — and
// most of a line repeats from request to request: the members whose values repeat (names, models, flags), rule
// outcomes, the rules list and enum names come whole from bounded, content-keyed caches (one piece each).

import {
  LINEAGE_SCHEMA_VERSION,
  MAX_REDACTION_LOCATIONS,
  dbl,
  toEnum,
  ts,
  u32,
  u64,
  type Attempt,
  type BudgetEffect,
  type DroppedCandidate,
  type DryRunDeny,
  type LineageRecord,
  type PolicyEvaluation,
  type Principal,
  type RequestInfo,
  type RuleOutcome,
  type ServedBy,
} from './record.ts';

/** The line so far (toJsonLine is synchronous: one line at a time). */
let o = '';
/** The next member is the first of its object or array: no comma before it. */
let first = true;

/**
 * What JSON.stringify escapes in a string (`"`, `\\`, control characters) or rewrites (lone surrogates): a string
 * without any is its own JSON text between quotes.
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string: what JSON.stringify(s) prints. */
function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/** `,"name":` as given — without its comma when it is the first member of its object. */
function key(k: string): void {
  if (first) {
    first = false;
    o += k.slice(1);
  } else {
    o += k;
  }
}

/** A field as put() + JSON.stringify write it: left out when undefined, null or an empty array. */
function f(k: string, v: unknown): void {
  switch (typeof v) {
    case 'string':
      key(k);
      o += str(v);
      return;
    case 'number':
      key(k);
      // Number#toString is JSON.stringify's number format; NaN and ±Infinity print null.
      o += Number.isFinite(v) ? String(v) : 'null';
      return;
    case 'boolean':
      key(k);
      o += v ? 'true' : 'false';
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
  o += t;
}

/** Text of Latin-1 characters only. */
const LATIN1 = /^[\u0000-\u00ff]*$/;

/**
 * A text about to be cached, as a flat one-byte string when it holds only Latin-1 characters. Why: V8 keeps some
 * strings in its two-byte form although they are ASCII (one rule name of the example bundle comes out of the config
 * loader that way), and one such piece makes every line built with it two-byte: twice the bytes to flatten when
 * the sink writes it, and a slower UTF-8 encoding. Made once per cached text.
 */
function compact(t: string): string {
  return LATIN1.test(t) ? Buffer.from(t, 'latin1').toString('latin1') : t;
}

/** The first character of the last text flattened (kept so that reading it is not optimized away). */
let flattened = 0;

/**
 * A remembered text made of pieces, flattened in place (V8 flattens a concatenation when a character is read) when
 * it is first reused: later lines then hold it as one piece instead of copying its pieces again each time. Not
 * when it is made (most texts of a run that keeps changing are never reused). Its pieces are one-byte already
 * (cached texts are compact), so no compact() copy.
 */
function flat(t: string): string {
  flattened = t.charCodeAt(0);
  return t;
}

/**
 * Per field key, past this many distinct values a member's text is made each time; and longer texts are never
 * cached (some values come from the client, e.g. the requested model): at most a few MB in all.
 */
export const MAX_CACHED_VALUES = 128;
export const MAX_CACHED_TEXT_LENGTH = 160;
type FieldTexts = Map<string, Map<string | number | boolean, string>>;
/** `,"name":value` by key and value; and `"name":value` for first members. */
const fieldTexts: FieldTexts = new Map();
const firstFieldTexts: FieldTexts = new Map();

/**
 * f() for fields whose values repeat from request to request (names, models, providers, flags, status): the
 * member's whole text is remembered by key and value, so a repeat costs two lookups and one concatenation
 * instead of an escape scan and four. Content keys cannot go stale; bounded (MAX_CACHED_VALUES per key, short
 * texts only).
 */
function rep(k: string, v: unknown): void {
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    f(k, v);
    return;
  }
  const texts = first ? firstFieldTexts : fieldTexts;
  let byValue = texts.get(k);
  if (byValue === undefined) texts.set(k, (byValue = new Map()));
  let t = byValue.get(v);
  if (t === undefined) {
    const start = o;
    o = '';
    f(k, v);
    t = o;
    o = start;
    if (byValue.size < MAX_CACHED_VALUES && t.length <= MAX_CACHED_TEXT_LENGTH) byValue.set(v, (t = compact(t)));
  }
  first = false;
  o += t;
}

/**
 * A u64 field (proto3 JSON prints them as strings of digits, or "NaN" / "Infinity": never escaped). Left out when
 * undefined, unless `always` (toProtoJson writes u64(undefined), i.e. "NaN", for those).
 */
function u64f(k: string, n: number | undefined, always = false): void {
  if (n === undefined && !always) return;
  key(k);
  o += '"' + u64(n as number) + '"';
}

function dblf(k: string, n: number | undefined): void {
  if (n !== undefined) f(k, dbl(n));
}

function open(k: string): void {
  key(k);
  o += '{';
  first = true;
}

function close(): void {
  o += '}';
  first = false;
}

/** A repeated message field: each element's fields written by `fields` between braces. */
function objects<T>(k: string, a: readonly T[] | undefined | null, fields: (x: T) => void): void {
  if (a === undefined || a === null || a.length === 0) return;
  key(k);
  for (let i = 0; i < a.length; i++) {
    o += i > 0 ? ',{' : '[{';
    first = true;
    fields(a[i]!);
    o += '}';
  }
  o += ']';
  first = false;
}

/** Enum names as JSON text by value, per prefix (small fixed sets; past 64 values made each time). */
const enumTexts = new Map<string, Map<string, string>>();

function enumText(prefix: string, v: string): string {
  let byValue = enumTexts.get(prefix);
  if (!byValue) enumTexts.set(prefix, (byValue = new Map()));
  let t = byValue.get(v);
  if (t === undefined) {
    t = JSON.stringify(toEnum(prefix, v));
    if (byValue.size < 64) byValue.set(v, (t = compact(t)));
  }
  return t;
}

/** One rule outcome's JSON, as toProtoJson's rule object stringifies. */
function ruleJson(x: RuleOutcome): string {
  let t = '';
  const add = (k: string, v: string | undefined): void => {
    if (v !== undefined) t += (t === '' ? '' : ',') + k + v;
  };
  // put()'s presence rules, for the uncached path's odd values (the cached path has strings only).
  const js = (v: unknown): string | undefined => (v === undefined || v === null || (Array.isArray(v) && v.length === 0) ? undefined : JSON.stringify(v));
  add('"policy":', js(x.policy));
  add('"rule":', js(x.rule));
  add('"kind":', js(x.kind));
  add('"outcome":', enumText('RULE_RESULT', x.outcome));
  add('"message":', js(x.message));
  return '{' + t + '}';
}

/**
 * Rule outcomes are most of a record (each rule of the bundle, on every request) and repeat exactly from
 * request to request, so their JSON is remembered by content (policy, rule, kind, outcome, message).
 * Content keys cannot go stale; bounded (past MAX_CACHED_RULES the text is made each time).
 */
export const MAX_CACHED_RULES = 10_000;
type Level<T> = Map<string | undefined, T>;
const ruleCache: Level<Level<Level<Level<Level<string>>>>> = new Map();
let cachedRuleCount = 0;

function ruleOf(x: RuleOutcome): string {
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
  let rj = ruleJson(x);
  if (cachedRuleCount >= MAX_CACHED_RULES) return rj;
  rj = compact(rj);
  if (!byRule) ruleCache.set(policy, (byRule = new Map()));
  if (!byKind) byRule.set(rule, (byKind = new Map()));
  if (!byOutcome) byKind.set(kind, (byOutcome = new Map()));
  if (!byMessage) byOutcome.set(outcome, (byMessage = new Map()));
  byMessage.set(message, rj);
  cachedRuleCount++;
  return rj;
}

/** The last rules list written: each rule's policy, rule, kind, outcome, message in turn, and the list's text. */
let lastRuleFields: (string | undefined)[] = [];
let lastRulesText = '';
let lastRulesFlat = false;

/**
 * A record's rules list (`[…]`): the same list as the last record's more often than not (same bundle, same
 * outcomes), then its text is the last one's, after comparing 5 strings per rule instead of 5 lookups per rule
 * and a concatenation each. Only lists of string fields are remembered: equal strings give equal text.
 */
function rulesText(rules: readonly RuleOutcome[]): string {
  const n = rules.length;
  const last = lastRuleFields;
  let same = last.length === n * 5;
  for (let i = 0, j = 0; same && i < n; i++, j += 5) {
    const x = rules[i]!;
    same = x.policy === last[j] && x.rule === last[j + 1] && x.kind === last[j + 2] && x.outcome === last[j + 3] && x.message === last[j + 4];
  }
  if (same) {
    if (!lastRulesFlat) {
      lastRulesText = flat(lastRulesText);
      lastRulesFlat = true;
    }
    return lastRulesText;
  }
  let t = '[';
  const fields: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const x = rules[i]!;
    t += (i > 0 ? ',' : '') + ruleOf(x);
    const { policy, rule, kind, outcome, message } = x;
    fields.push(policy, rule, kind, outcome, message);
  }
  t += ']';
  // Objects as fields would compare by identity: such a list is not remembered.
  if (fields.every((v) => v === undefined || typeof v === 'string')) {
    lastRuleFields = fields;
    lastRulesText = t;
    lastRulesFlat = false;
  }
  return t;
}

/** Marks in a run's values: an array or a string map follows (its size, then its elements or keys and values). */
const ARRAY_MARK: unknown = { mark: 'array' };
const MAP_MARK: unknown = { mark: 'map' };
/** The values the current run of members is written from (see Run), and how many. */
const vals: unknown[] = [];
let nv = 0;

/** Adds a value to the current run's; false for one a run cannot compare by value (objects, functions). */
function val(v: unknown): boolean {
  if (typeof v === 'function') return false;
  if (typeof v !== 'object' || v === null) {
    vals[nv++] = v;
    return true;
  }
  // An array of primitives (JSON.stringify prints it from its elements, unless it has a toJSON).
  if (!Array.isArray(v) || 'toJSON' in v) return false;
  vals[nv++] = ARRAY_MARK;
  vals[nv++] = v.length;
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if ((typeof x === 'object' && x !== null) || typeof x === 'function') return false;
    vals[nv++] = x;
  }
  return true;
}

/** val() for a string map (labels): its keys and values in JSON.stringify's order; absent or a plain value as is. */
function valMap(m: unknown): boolean {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return val(m);
  if ('toJSON' in m) return false;
  const keys = Object.keys(m);
  vals[nv++] = MAP_MARK;
  vals[nv++] = keys.length;
  for (const k of keys) {
    vals[nv++] = k;
    if (!val((m as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** val() for a repeated message field: each element's members through `each`; absent or a plain value as is. */
function valList<T>(a: readonly T[] | undefined | null, each: (x: T) => boolean): boolean {
  if (!Array.isArray(a)) return val(a);
  vals[nv++] = ARRAY_MARK;
  vals[nv++] = a.length;
  for (let i = 0; i < a.length; i++) if (!each(a[i] as T)) return false;
  return true;
}

/**
 * A run of members that is usually the same as in the last record (the principal, the served deployment, a
 * budget's name and unit…): its last text, and the values that text was made from — whether the run began its
 * object (no comma before its first member), then each value it writes, in order. Equal values make equal text,
 * so when they are all === the last ones the text is reused whole: one piece instead of one per member (fewer
 * concatenations, a smaller rope to flatten, no lookups). Only primitives (arrays and maps of them, spelled out)
 * are compared; a run holding anything else is written each time and not remembered. Each run is a pair of
 * functions: the writer (principal) and its collector (principalVals), which must add every value the writer reads
 * (test/lineage/json-line.test.ts changes each of them in place and compares with the oracle).
 */
class Run {
  private last: unknown[] = [];
  private text = '';
  private firstAfter = false;
  private isFlat = false;

  /** Writes the members of `x`: the last text when `collect` gives the last values, else by `write`. */
  write<T>(x: T, collect: (x: T) => boolean, write: (x: T) => void): void {
    nv = 0;
    vals[nv++] = first;
    const comparable = collect(x);
    if (comparable && this.same()) {
      if (!this.isFlat) {
        this.text = flat(this.text);
        this.isFlat = true;
      }
      o += this.text;
      first = this.firstAfter;
      return;
    }
    const outer = o;
    o = '';
    write(x);
    const text = o;
    o = outer + text;
    if (comparable) {
      this.last = vals.slice(0, nv);
      this.text = text;
      this.isFlat = false;
      this.firstAfter = first;
    }
  }

  private same(): boolean {
    const last = this.last;
    if (last.length !== nv) return false;
    for (let i = 0; i < nv; i++) if (vals[i] !== last[i]) return false;
    return true;
  }
}

/** One Run per position, for repeated fields (budgets, attempts); past `max` elements no run is remembered. */
function runsOf(max: number): Run[] {
  return Array.from({ length: max }, () => new Run());
}

const budgetHeads = runsOf(8);
const budgetTails = runsOf(8);
let budgetIndex = 0;

function budgetHead(b: BudgetEffect): void {
  rep(',"name":', b.name);
  rep(',"scopeKey":', b.scopeKey);
  rep(',"unit":', b.unit);
  if (b.limit !== undefined) rep(',"limit":', dbl(b.limit));
}

function budgetHeadVals(b: BudgetEffect): boolean {
  return val(b.name) && val(b.scopeKey) && val(b.unit) && val(b.limit);
}

function budgetTail(b: BudgetEffect): void {
  rep(',"enforcement":', b.enforcement);
  rep(',"softLimitWarning":', b.softLimitWarning);
  rep(',"failOpen":', b.failOpen);
  rep(',"exceeded":', b.exceeded);
}

function budgetTailVals(b: BudgetEffect): boolean {
  return val(b.enforcement) && val(b.softLimitWarning) && val(b.failOpen) && val(b.exceeded);
}

function budgetFields(b: BudgetEffect): void {
  const i = budgetIndex++;
  if (i < budgetHeads.length) budgetHeads[i]!.write(b, budgetHeadVals, budgetHead);
  else budgetHead(b);
  dblf(',"reserved":', b.reserved);
  dblf(',"charged":', b.charged);
  dblf(',"remaining":', b.remaining);
  if (i < budgetTails.length) budgetTails[i]!.write(b, budgetTailVals, budgetTail);
  else budgetTail(b);
}

const principalRun = new Run();

function principal(p: Principal): void {
  rep(',"keyId":', p.keyId);
  rep(',"tenant":', p.tenant);
  rep(',"team":', p.team);
  rep(',"user":', p.user);
  ft(',"authMethod":', enumText('AUTH_METHOD', p.authMethod));
  f(',"groups":', p.groups);
}

function principalVals(p: Principal): boolean {
  return val(p.keyId) && val(p.tenant) && val(p.team) && val(p.user) && val(p.authMethod) && val(p.groups);
}

const requestRun = new Run();

/** The request's members up to `stream` (the byte counts after them change with every request). */
function requestHead(q: RequestInfo): void {
  ft(',"clientApi":', q.clientApi === undefined ? undefined : enumText('CLIENT_API', q.clientApi));
  rep(',"endpoint":', q.endpoint);
  rep(',"method":', q.method);
  rep(',"requestedModel":', q.requestedModel);
  rep(',"stream":', q.stream);
}

function requestHeadVals(q: RequestInfo): boolean {
  return val(q.clientApi) && val(q.endpoint) && val(q.method) && val(q.requestedModel) && val(q.stream);
}

const servedRun = new Run();

function served(v: ServedBy): void {
  rep(',"provider":', v.provider);
  rep(',"model":', v.model);
  rep(',"upstreamModel":', v.upstreamModel);
  rep(',"deployment":', v.deployment);
  rep(',"cluster":', v.cluster);
  rep(',"region":', v.region);
}

function servedVals(v: ServedBy): boolean {
  return val(v.provider) && val(v.model) && val(v.upstreamModel) && val(v.deployment) && val(v.cluster) && val(v.region);
}

const attemptHeads = runsOf(4);
let attemptIndex = 0;

function attemptHead(a: Attempt): void {
  rep(',"provider":', a.provider);
  rep(',"deployment":', a.deployment);
  rep(',"status":', u32(a.status));
}

function attemptHeadVals(a: Attempt): boolean {
  return val(a.provider) && val(a.deployment) && val(a.status);
}

function attemptFields(a: Attempt): void {
  const i = attemptIndex++;
  if (i < attemptHeads.length) attemptHeads[i]!.write(a, attemptHeadVals, attemptHead);
  else attemptHead(a);
  f(',"latencyMs":', dbl(a.latencyMs));
  rep(',"errorClass":', a.errorClass);
}

const policyTailRun = new Run();

/** The policy members after the rules: dry-run denies, labels, dropped candidates. */
function policyTail(pe: PolicyEvaluation): void {
  objects(',"dryRunDenies":', pe.dryRunDenies, dryRunDeny);
  ft(',"labels":', mapText(pe.labels));
  objects(',"droppedCandidates":', pe.droppedCandidates, droppedCandidate);
}

function policyTailVals(pe: PolicyEvaluation): boolean {
  return valList(pe.dryRunDenies, dryRunDenyVals) && valMap(pe.labels) && valList(pe.droppedCandidates, droppedCandidateVals);
}

function dryRunDeny(x: DryRunDeny): void {
  rep(',"policy":', x.policy);
  rep(',"rule":', x.rule);
  rep(',"message":', x.message);
}

function dryRunDenyVals(x: DryRunDeny): boolean {
  return val(x.policy) && val(x.rule) && val(x.message);
}

function droppedCandidate(x: DroppedCandidate): void {
  rep(',"model":', x.model);
  rep(',"param":', x.param);
  rep(',"deployment":', x.deployment);
  rep(',"policy":', x.policy);
  rep(',"rule":', x.rule);
  rep(',"message":', x.message);
}

function droppedCandidateVals(x: DroppedCandidate): boolean {
  return val(x.model) && val(x.param) && val(x.deployment) && val(x.policy) && val(x.rule) && val(x.message);
}

const outcomeRun = new Run();

function outcome(r: LineageRecord): void {
  rep(',"statusCode":', u32(r.statusCode));
  ft(',"outcome":', enumText('OUTCOME', r.outcome));
  rep(',"errorClass":', r.errorClass);
  rep(',"errorCode":', r.errorCode);
}

function outcomeVals(r: LineageRecord): boolean {
  return val(r.statusCode) && val(r.outcome) && val(r.errorClass) && val(r.errorCode);
}

/** A string map (labels, audit detail) as toProtoJson copies it (`{ ...m }`) when it has keys, else undefined. */
function mapText(m: Record<string, string> | undefined): string | undefined {
  if (!m || Object.keys(m).length === 0) return undefined;
  // The copy only matters for a toJSON the spread would not carry over (an inherited one).
  return JSON.stringify('toJSON' in m ? { ...m } : m);
}

/** The record's JSON line: exactly `JSON.stringify(toProtoJson(r))`. */
export function toJsonLine(r: LineageRecord): string {
  // A line that threw half way (the oracle throws on the same records) left pieces behind.
  o = '{';
  first = true;
  rep(',"schemaVersion":', r.schemaVersion ?? LINEAGE_SCHEMA_VERSION);
  f(',"requestId":', r.requestId);
  f(',"decisionId":', r.decisionId);
  if (r.trace) {
    open(',"trace":');
    const t = r.trace;
    f(',"traceId":', t.traceId);
    f(',"spanId":', t.spanId);
    f(',"parentSpanId":', t.parentSpanId || undefined);
    rep(',"sampled":', t.sampled);
    close();
  }
  f(',"startTime":', ts(r.startTime));
  f(',"endTime":', ts(r.endTime));
  {
    open(',"principal":');
    principalRun.write(r.principal, principalVals, principal);
    close();
  }
  {
    open(',"request":');
    const q = r.request;
    requestRun.write(q, requestHeadVals, requestHead);
    u64f(',"requestBytes":', q.requestBytes);
    u64f(',"responseBytes":', q.responseBytes);
    f(',"clientRequestId":', q.clientRequestId);
    close();
  }
  if (r.served) {
    open(',"served":');
    servedRun.write(r.served, servedVals, served);
    close();
  }
  attemptIndex = 0;
  objects(',"attempts":', r.attempts, attemptFields);
  if (r.policy) {
    open(',"policy":');
    const pe = r.policy;
    rep(',"bundleRevision":', pe.bundleRevision);
    if (pe.rules !== undefined && pe.rules !== null && pe.rules.length > 0) ft(',"rules":', rulesText(pe.rules));
    policyTailRun.write(pe, policyTailVals, policyTail);
    close();
  }
  objects(',"redactions":', r.redactions, (x) => {
      rep(',"detector":', x.detector);
      ft(',"direction":', enumText('DIRECTION', x.direction));
      rep(',"action":', x.action);
      u64f(',"count":', x.count, true);
      const locs = x.locations;
      f(',"locations":', locs && locs.length > MAX_REDACTION_LOCATIONS ? locs.slice(0, MAX_REDACTION_LOCATIONS) : locs);
    });
  budgetIndex = 0;
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
    rep(',"estimated":', t.estimated);
    rep(',"anomaly":', t.anomaly);
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
    rep(',"longContext":', c.longContext);
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
  outcomeRun.write(r, outcomeVals, outcome);
  if (r.content) {
    open(',"content":');
    const c = r.content;
    f(',"promptSha256":', c.promptSha256);
    f(',"responseSha256":', c.responseSha256);
    f(',"prompt":', c.prompt);
    f(',"response":', c.response);
    rep(',"retainedBy":', c.retainedBy);
    close();
  }
  rep(',"gatewayInstance":', r.gatewayInstance);
  if (r.mcp) {
    open(',"mcp":');
    const m = r.mcp;
    rep(',"server":', m.server);
    rep(',"method":', m.method);
    rep(',"tool":', m.tool);
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
    rep(',"action":', a.action);
    rep(',"actor":', a.actor);
    rep(',"target":', a.target);
    ft(',"detail":', mapText(a.detail));
    close();
  }
  close();
  const line = o;
  o = '';
  // The concatenations made a rope of a few hundred pieces; reading a character flattens it in place (one copy),
  // so a queued line holds ~5 KB instead of the rope, and the sink encodes a flat string (as it would flatten it).
  if (line.charCodeAt(0) !== 0x7b) throw new Error('lineage line does not start with {');
  return line;
}
