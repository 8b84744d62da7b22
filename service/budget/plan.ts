// Turns a request's BudgetSpecs + RateLimitSpecs + estimate into a store-neutral plan: the counters
// to touch (deduplicated: one counter per scopeKey × window shape, charged once per request) and
// the checks to run against them. Both stores execute the same plan, so window maths, units and
// key layout live here once.
//
// Units inside plans and stores are integers: USD as nano-dollars (1e-9 USD), tokens, requests.

import { GatewayError } from '../errors.ts';
import type { BudgetSpec, BudgetWindow, RateLimitSpec, StoreFailMode } from './types.ts';
import { bucketOf, describeWindow, fixedWindowAt, isValidTimeZone, slidingOf, type SlidingWindow } from './windows.ts';

export const NANO = 1_000_000_000;

/** Token counts and maximum (or actual) cost of one request. */
export interface UsageEstimate {
  usd: number;
  inputTokens: number;
  outputTokens: number;
}
export type Usage = UsageEstimate;

/** Integer amounts: u = nano-USD, i = input tokens, o = output tokens, q = requests. */
export interface Amounts {
  u: number;
  i: number;
  o: number;
  q: number;
}

export type Metric = 'usd' | 'inputTokens' | 'outputTokens' | 'totalTokens' | 'requests' | 'parallel';

export interface CounterPlan {
  /** Storage key suffix, unique per scopeKey × window shape × window instance. */
  key: string;
  scopeKey: string;
  /** describeWindow() of the shape, or `rate` for RateLimitSpecs (a 60 s sliding window). */
  window: string;
  /** Fixed windows: window id; sliding: '' */
  windowId: string;
  /** 0 = fixed (calendar) window, >0 = sliding window bucket size in ms. */
  bucketMs: number;
  /** Sliding: number of buckets per window. */
  buckets: number;
  /** Sliding: the bucket this request is charged to (admission time). */
  bucket: number;
  /** Fixed: window start/end (ms). Sliding: 0/0. */
  start: number;
  resetAt: number;
  /** When the stored counter may be dropped (ms). */
  expireAt: number;
}

export interface CheckPlan {
  name: string;
  kind: 'budget' | 'rate';
  /** Index into Plan.counters. */
  counter: number;
  metric: Metric;
  /** Integer units (nano-USD for usd). */
  limit: number;
  hard: boolean;
  mode: StoreFailMode;
  scopeKey: string;
}

export interface Plan {
  requestId: string;
  /** Hash-tag value: every key of one request lives in this tenant's slot. */
  tenant: string;
  now: number;
  /** Reservation expiry (ms). */
  expiresAt: number;
  amounts: Amounts;
  counters: CounterPlan[];
  /** Shared by every plan of the same specs (see PlanTemplate): never changed. */
  checks: readonly CheckPlan[];
}

export const RATE_WINDOW_SECONDS = 60;
/** Default reservation TTL: longer than any sane LLM request, short enough that a dead replica's holds return. */
export const DEFAULT_RESERVATION_TTL_MS = 600_000;

function budgetConfigError(name: string, detail: string): GatewayError {
  return new GatewayError('internal', `budget "${name}" is misconfigured: ${detail}`, { code: 'budget_config_invalid' });
}

const MODES: ReadonlySet<string> = new Set(['failClosed', 'failOpen', 'local']);

function validLimit(v: unknown): boolean {
  return v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
}
const LIMIT_KEYS = ['usd', 'inputTokens', 'outputTokens', 'totalTokens', 'requests'] as const;

/** Load-time validation for the policy engine / config loader. Returns problems; empty = valid. */
export function validateBudgetSpec(spec: BudgetSpec): string[] {
  const errs: string[] = [];
  if (!spec.name) errs.push('name is empty');
  if (!spec.scopeKey) errs.push('scopeKey is empty');
  const l = spec.limit ?? {};
  const keys = LIMIT_KEYS;
  if (!keys.some((k) => l[k] !== undefined)) errs.push('limit sets none of usd, inputTokens, outputTokens, totalTokens, requests');
  for (const k of keys) if (!validLimit(l[k])) errs.push(`limit.${k} must be a finite number ≥ 0`);
  for (const k of ['inputTokens', 'outputTokens', 'totalTokens', 'requests'] as const) {
    if (l[k] !== undefined && !Number.isInteger(l[k])) errs.push(`limit.${k} must be an integer`);
  }
  const w = spec.window as BudgetWindow | undefined;
  if (!w) errs.push('window is missing');
  else if (w.kind === 'rolling') {
    if (!Number.isInteger(w.seconds) || w.seconds < 1 || w.seconds > 366 * 86400) errs.push('rolling window seconds must be an integer in 1..31622400');
  } else if (w.kind === 'minute' || w.kind === 'hour' || w.kind === 'day' || w.kind === 'month') {
    if (w.timeZone !== undefined && !isValidTimeZone(w.timeZone)) errs.push(`unknown time zone "${w.timeZone}"`);
  } else errs.push(`unknown window kind "${(w as { kind: string }).kind}"`);
  if (spec.enforcement !== 'hard' && spec.enforcement !== 'soft') errs.push('enforcement must be hard or soft');
  if (!MODES.has(spec.onStoreError)) errs.push('onStoreError must be failClosed, failOpen or local');
  return errs;
}

export function validateRateLimitSpec(spec: RateLimitSpec): string[] {
  const errs: string[] = [];
  if (!spec.name) errs.push('name is empty');
  if (!spec.scopeKey) errs.push('scopeKey is empty');
  if (spec.rpm === undefined && spec.tpm === undefined && spec.maxParallel === undefined) errs.push('sets none of rpm, tpm, maxParallel');
  for (const k of ['rpm', 'tpm', 'maxParallel'] as const) {
    const v = spec[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) errs.push(`${k} must be an integer ≥ 0`);
  }
  if (!MODES.has(spec.onStoreError)) errs.push('onStoreError must be failClosed, failOpen or local');
  return errs;
}

export function validateEstimate(e: UsageEstimate, what: string): void {
  for (const k of ['usd', 'inputTokens', 'outputTokens'] as const) {
    const v = e[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new GatewayError('internal', `${what}.${k} must be a finite number ≥ 0 (got ${String(v)})`, { code: 'budget_bad_usage' });
    }
  }
}

export function toAmounts(e: UsageEstimate, requests: number, round: 'up' | 'nearest'): Amounts {
  const f = round === 'up' ? Math.ceil : Math.round;
  // Subtract a hair before ceil so 0.3 USD (0.30000000000000004 × 1e9) doesn't become +1 nano.
  const u = round === 'up' ? Math.ceil(e.usd * NANO - 1e-6) : Math.round(e.usd * NANO);
  return { u: Math.max(0, u), i: f(e.inputTokens), o: f(e.outputTokens), q: requests };
}

/**
 * Largest amount one commit charges per field (≈ 8.8e12: $8,796 in nano-USD, or tokens). Keeps
 * counters exact integers (sums stay far below 2^53) whatever a caller passes.
 */
export const MAX_CHARGE = 2 ** 43;

function chargeField(v: unknown, scale: number, hold: number): number {
  // Not a finite number ≥ 0 (NaN, ±Infinity from `1e400`, negative, not a number): charge the hold,
  // so a broken usage report neither poisons a counter nor goes uncharged.
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return Math.min(hold, MAX_CHARGE);
  return Math.min(Math.round(v * scale), MAX_CHARGE);
}

/**
 * Commit amounts from actual usage. Every store applies this, so no store can be driven negative,
 * to Infinity, or past exact integers; callers validate plausibility first (usage.ts). `hold` is
 * the reservation's amounts (undefined when the hold is unknown: invalid fields then charge 0).
 */
export function commitAmounts(actual: Usage, hold: Amounts | undefined): Amounts {
  return {
    u: chargeField(actual.usd, NANO, hold?.u ?? 0),
    i: chargeField(actual.inputTokens, 1, hold?.i ?? 0),
    o: chargeField(actual.outputTokens, 1, hold?.o ?? 0),
    q: 1,
  };
}

/** Tag-safe tenant (a `{` or `}` inside a hash tag would move the slot). */
export function tagOf(tenant: string | undefined): string {
  if (!tenant) return '_';
  // Almost every tenant needs no escaping: hand back the same string (its hash is already computed).
  if (tenant.indexOf('{') < 0 && tenant.indexOf('}') < 0 && tenant.indexOf('%') < 0) return tenant;
  return tenant.replace(/[{}%]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

const MINUTE_MS = 60_000;
/** Calendar counters are kept one extra window (≥ 1 day) for spend reports, and past any reservation. */
function retentionMs(windowMs: number, ttlMs: number): number {
  return Math.max(windowMs, 86_400_000) + ttlMs;
}

export interface PlanInput {
  requestId: string;
  budgets: readonly BudgetSpec[];
  rateLimits: readonly RateLimitSpec[];
  estimate: UsageEstimate;
  tenant?: string;
  ttlMs?: number;
  now: number;
}

/**
 * The same rules as validateBudgetSpec without building messages: policies hand over fresh spec objects for
 * every request, so this runs per request. Only an invalid spec pays for validateBudgetSpec's messages.
 */
function budgetSpecOk(spec: BudgetSpec): boolean {
  if (!spec.name || !spec.scopeKey) return false;
  const l = spec.limit;
  if (!l) return false;
  const u = l.usd;
  if (u !== undefined && !(typeof u === 'number' && Number.isFinite(u) && u >= 0)) return false;
  if (!countOk(l.inputTokens) || !countOk(l.outputTokens) || !countOk(l.totalTokens) || !countOk(l.requests)) return false;
  if (u === undefined && l.inputTokens === undefined && l.outputTokens === undefined && l.totalTokens === undefined && l.requests === undefined) return false;
  const w = spec.window;
  if (!w) return false;
  if (w.kind === 'rolling') {
    if (!(Number.isInteger(w.seconds) && w.seconds >= 1 && w.seconds <= 366 * 86400)) return false;
  } else if (w.kind === 'minute' || w.kind === 'hour' || w.kind === 'day' || w.kind === 'month') {
    if (w.timeZone !== undefined && !isValidTimeZone(w.timeZone)) return false;
  } else return false;
  return (spec.enforcement === 'hard' || spec.enforcement === 'soft') && MODES.has(spec.onStoreError);
}

/** Unset, or an integer ≥ 0. */
function countOk(v: unknown): boolean {
  return v === undefined || (Number.isInteger(v) && (v as number) >= 0);
}

/** validateRateLimitSpec's rules, without messages (see budgetSpecOk). */
function rateSpecOk(spec: RateLimitSpec): boolean {
  if (!spec.name || !spec.scopeKey) return false;
  if (spec.rpm === undefined && spec.tpm === undefined && spec.maxParallel === undefined) return false;
  return countOk(spec.rpm) && countOk(spec.tpm) && countOk(spec.maxParallel) && MODES.has(spec.onStoreError);
}

/** The full validator is the authority: it names every problem (and a spec it accepts goes on). */
function rejectSpec(spec: BudgetSpec | RateLimitSpec, errs: string[]): void {
  if (errs.length) throw budgetConfigError(spec.name || '(unnamed)', errs.join('; '));
}

/**
 * A counter's identity strings (scopeKey × window shape), built once and shared by every request that
 * touches it: equal strings by identity keep map lookups cheap. Fixed windows also keep the CounterPlan of
 * their current window instance (it only changes when the window rolls over or the TTL differs).
 */
interface CounterShape {
  /** `b|<scopeKey>|<shape>` or `r|<scopeKey>|rate` */
  id: string;
  scopeKey: string;
  shape: string;
  kind: BudgetWindow['kind'] | 'rate';
  timeZone: string | undefined;
  seconds: number;
  sliding: SlidingWindow | undefined;
  /** Fixed windows: the current instance's (frozen) plan and the TTL it was built with. */
  fixed: CounterPlan | undefined;
  fixedTtl: number;
}

/**
 * scopeKey → its counter shapes. Pure memo of string building (nothing here depends on configuration: a
 * changed window or scope is a different entry). Bounded: scope keys can be per user.
 */
const shapes = new Map<string, CounterShape[]>();
export const MAX_CACHED_SCOPES = 10_000;

function sameShape(s: CounterShape, kind: BudgetWindow['kind'] | 'rate', timeZone: string | undefined, seconds: number): boolean {
  return s.kind === kind && s.timeZone === timeZone && s.seconds === seconds;
}

function shapeOf(scopeKey: string, window: BudgetWindow | 'rate'): CounterShape {
  const kind = window === 'rate' ? 'rate' : window.kind;
  const timeZone = window === 'rate' || window.kind === 'rolling' ? undefined : window.timeZone;
  const seconds = window === 'rate' ? RATE_WINDOW_SECONDS : window.kind === 'rolling' ? window.seconds : 0;
  let list = shapes.get(scopeKey);
  if (list) {
    for (let i = 0; i < list.length; i++) if (sameShape(list[i], kind, timeZone, seconds)) return list[i];
  } else {
    if (shapes.size >= MAX_CACHED_SCOPES) shapes.clear();
    list = [];
    shapes.set(scopeKey, list);
  }
  const shape = window === 'rate' ? 'rate' : describeWindow(window);
  const s: CounterShape = {
    // No budget window is named `rate`, so scopeKey + shape identifies the counter.
    id: `${window === 'rate' ? 'r' : 'b'}|${scopeKey}|${shape}`,
    scopeKey,
    shape,
    kind,
    timeZone,
    seconds,
    sliding: kind === 'rate' || kind === 'rolling' ? slidingOf(seconds) : undefined,
    fixed: undefined,
    fixedTtl: 0,
  };
  list.push(s);
  return s;
}

function newCounter(s: CounterShape, now: number, ttlMs: number): CounterPlan {
  const sw = s.sliding;
  if (sw) {
    return {
      key: s.id,
      scopeKey: s.scopeKey,
      window: s.shape,
      windowId: '',
      bucketMs: sw.bucketMs,
      buckets: sw.buckets,
      bucket: bucketOf(now, sw),
      start: 0,
      resetAt: 0,
      expireAt: now + sw.bucketMs * (sw.buckets + 1) + ttlMs,
    };
  }
  const f = s.fixed;
  if (f && f.start <= now && now < f.resetAt && s.fixedTtl === ttlMs) return f;
  const fw = fixedWindowAt(s.kind as 'minute' | 'hour' | 'day' | 'month', s.timeZone, now);
  const c: CounterPlan = Object.freeze({
    key: `${s.id}|${fw.id}`,
    scopeKey: s.scopeKey,
    window: s.shape,
    windowId: fw.id,
    bucketMs: 0,
    buckets: 0,
    bucket: 0,
    start: fw.start,
    resetAt: fw.end,
    expireAt: fw.end + retentionMs(fw.end - fw.start, ttlMs),
  });
  s.fixed = c;
  s.fixedTtl = ttlMs;
  return c;
}

/** Index of the counter for (scopeKey, window shape), adding it on first use. */
function counterIndex(shapes: CounterShape[], s: CounterShape): number {
  for (let i = 0; i < shapes.length; i++) {
    const c = shapes[i];
    if (c.scopeKey === s.scopeKey && c.shape === s.shape) return i;
  }
  shapes.push(s);
  return shapes.length - 1;
}

function pushCheck(checks: CheckPlan[], spec: { name: string; scopeKey: string; onStoreError: StoreFailMode }, kind: 'budget' | 'rate', counter: number, metric: Metric, limit: number, hard: boolean): void {
  checks.push({
    name: spec.name,
    kind,
    counter,
    metric,
    // Limits round down: a $0.3 budget never admits 0.30000000001.
    limit: metric === 'usd' ? Math.floor(limit * NANO + 1e-6) : Math.floor(limit),
    hard,
    mode: spec.onStoreError,
    scopeKey: spec.scopeKey,
  });
}

export function buildPlan(input: PlanInput): Plan {
  return planOf(input, true);
}

/** buildPlan without plan templates: the general path alone (tests compare the two). */
export function buildPlanUncached(input: PlanInput): Plan {
  return planOf(input, false);
}

function planOf(input: PlanInput, cached: boolean): Plan {
  const { requestId, now } = input;
  if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 200) {
    throw new GatewayError('internal', 'budget reservation needs a request id of 1..200 characters', { code: 'budget_bad_request_id' });
  }
  validateEstimate(input.estimate, 'estimate');
  const ttlMs = input.ttlMs ?? DEFAULT_RESERVATION_TTL_MS;
  let t = cached ? findTemplate(input.budgets, input.rateLimits) : undefined;
  if (!t) {
    t = specPart(input.budgets, input.rateLimits);
    if (cached) remember(t);
  }
  const counters: CounterPlan[] = [];
  for (let i = 0; i < t.shapes.length; i++) counters.push(newCounter(t.shapes[i], now, ttlMs));
  return {
    requestId,
    tenant: tagOf(input.tenant),
    now,
    expiresAt: now + ttlMs,
    amounts: toAmounts(input.estimate, 1, 'up'),
    counters,
    checks: t.checks,
  };
}

/**
 * What a plan takes from its specs alone (validated): the counter shapes in plan order and the checks. The
 * general path; `buildPlan` reuses its result for specs equal field by field (see findTemplate).
 */
function specPart(budgets: readonly BudgetSpec[], rateLimits: readonly RateLimitSpec[]): PlanTemplate {
  const shapes: CounterShape[] = [];
  const checks: CheckPlan[] = [];
  for (const spec of budgets) {
    if (!budgetSpecOk(spec)) rejectSpec(spec, validateBudgetSpec(spec));
    const ci = counterIndex(shapes, shapeOf(spec.scopeKey, spec.window));
    const hard = spec.enforcement === 'hard';
    const l = spec.limit;
    if (l.usd !== undefined) pushCheck(checks, spec, 'budget', ci, 'usd', l.usd, hard);
    if (l.inputTokens !== undefined) pushCheck(checks, spec, 'budget', ci, 'inputTokens', l.inputTokens, hard);
    if (l.outputTokens !== undefined) pushCheck(checks, spec, 'budget', ci, 'outputTokens', l.outputTokens, hard);
    if (l.totalTokens !== undefined) pushCheck(checks, spec, 'budget', ci, 'totalTokens', l.totalTokens, hard);
    if (l.requests !== undefined) pushCheck(checks, spec, 'budget', ci, 'requests', l.requests, hard);
  }
  for (const spec of rateLimits) {
    if (!rateSpecOk(spec)) rejectSpec(spec, validateRateLimitSpec(spec));
    const ci = counterIndex(shapes, shapeOf(spec.scopeKey, 'rate'));
    if (spec.rpm !== undefined) pushCheck(checks, spec, 'rate', ci, 'requests', spec.rpm, true);
    if (spec.tpm !== undefined) pushCheck(checks, spec, 'rate', ci, 'totalTokens', spec.tpm, true);
    if (spec.maxParallel !== undefined) pushCheck(checks, spec, 'rate', ci, 'parallel', spec.maxParallel, true);
  }
  // The checks are shared by every plan of these specs: frozen, so a store that changed one would fail loudly.
  // (The array itself stays a plain array: a frozen one makes every for…of over it allocate an iterator.)
  for (const c of checks) Object.freeze(c);
  return {
    budgets: budgets.map(budgetFields),
    rates: rateLimits.map(rateFields),
    shapes,
    checks,
  };
}

// ---- plan templates -----------------------------------------------------------------------------
//
// Why: policies hand over fresh spec objects for every request, but for one key they are the same specs request
// after request. Validating them, finding their counter shapes and building their checks was a third of
// buildPlan's work and most of its allocation. A template remembers that result together with a flat copy of
// every spec field buildPlan reads; a request whose specs match the copy field by field (===) gets the same
// checks (shared by every plan that uses them, never changed) and shapes. Anything that differs — including values
// the general path would reject — misses and takes the general path. Nothing here depends on configuration (a
// changed spec simply no longer matches), so a config reload needs no invalidation; the cache is bounded.

/** Every field of a BudgetSpec that buildPlan reads, flat. */
interface BudgetFields {
  name: string;
  scopeKey: string;
  usd: number | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  totalTokens: number | undefined;
  requests: number | undefined;
  kind: string;
  timeZone: string | undefined;
  seconds: number | undefined;
  enforcement: string;
  onStoreError: string;
}

/** Every field of a RateLimitSpec that buildPlan reads. */
interface RateFields {
  name: string;
  scopeKey: string;
  rpm: number | undefined;
  tpm: number | undefined;
  maxParallel: number | undefined;
  onStoreError: string;
}

/** A window's fields whatever its kind (a rolling window has no timeZone, a calendar one no seconds). */
type WindowFields = { kind: string; timeZone?: string; seconds?: number };

interface PlanTemplate {
  budgets: readonly BudgetFields[];
  rates: readonly RateFields[];
  /** Counter shapes in plan order (Plan.counters[i] is an instance of shapes[i]). */
  shapes: readonly CounterShape[];
  checks: readonly CheckPlan[];
}

function budgetFields(b: BudgetSpec): BudgetFields {
  const l = b.limit;
  const w = b.window as WindowFields;
  return {
    name: b.name,
    scopeKey: b.scopeKey,
    usd: l.usd,
    inputTokens: l.inputTokens,
    outputTokens: l.outputTokens,
    totalTokens: l.totalTokens,
    requests: l.requests,
    kind: w.kind,
    timeZone: w.timeZone,
    seconds: w.seconds,
    enforcement: b.enforcement,
    onStoreError: b.onStoreError,
  };
}

function rateFields(r: RateLimitSpec): RateFields {
  return { name: r.name, scopeKey: r.scopeKey, rpm: r.rpm, tpm: r.tpm, maxParallel: r.maxParallel, onStoreError: r.onStoreError };
}

// Malformed specs (null, non-objects) never match: the general path reports them as it always has.
function sameBudget(f: BudgetFields, b: BudgetSpec): boolean {
  if (typeof b !== 'object' || b === null) return false;
  const l = b.limit;
  const w = b.window as WindowFields | undefined;
  if (typeof l !== 'object' || l === null || typeof w !== 'object' || w === null) return false;
  return (
    f.scopeKey === b.scopeKey &&
    f.name === b.name &&
    f.usd === l.usd &&
    f.inputTokens === l.inputTokens &&
    f.outputTokens === l.outputTokens &&
    f.totalTokens === l.totalTokens &&
    f.requests === l.requests &&
    f.kind === w.kind &&
    f.timeZone === w.timeZone &&
    f.seconds === w.seconds &&
    f.enforcement === b.enforcement &&
    f.onStoreError === b.onStoreError
  );
}

function sameRate(f: RateFields, r: RateLimitSpec): boolean {
  if (typeof r !== 'object' || r === null) return false;
  return f.scopeKey === r.scopeKey && f.name === r.name && f.rpm === r.rpm && f.tpm === r.tpm && f.maxParallel === r.maxParallel && f.onStoreError === r.onStoreError;
}

function matches(t: PlanTemplate, budgets: readonly BudgetSpec[], rateLimits: readonly RateLimitSpec[]): boolean {
  if (t.budgets.length !== budgets.length || t.rates.length !== rateLimits.length) return false;
  for (let i = 0; i < budgets.length; i++) if (!sameBudget(t.budgets[i], budgets[i])) return false;
  for (let i = 0; i < rateLimits.length; i++) if (!sameRate(t.rates[i], rateLimits[i])) return false;
  return true;
}

/** Templates by the first spec's scopeKey (per key/user: a handful each, e.g. per model). Bounded in number
 *  (scope keys can be per user): at MAX_PLAN_TEMPLATES the cache starts afresh. */
const templates = new Map<string, PlanTemplate[]>();
let templateCount = 0;
export const MAX_PLAN_TEMPLATES = 10_000;
const MAX_TEMPLATES_PER_SCOPE = 8;

function firstScopeKey(budgets: readonly BudgetSpec[], rateLimits: readonly RateLimitSpec[]): unknown {
  const first: unknown = budgets.length > 0 ? budgets[0] : rateLimits.length > 0 ? rateLimits[0] : undefined;
  return typeof first === 'object' && first !== null ? (first as { scopeKey?: unknown }).scopeKey : undefined;
}

function findTemplate(budgets: readonly BudgetSpec[], rateLimits: readonly RateLimitSpec[]): PlanTemplate | undefined {
  const k = firstScopeKey(budgets, rateLimits);
  if (typeof k !== 'string') return undefined;
  const list = templates.get(k);
  if (!list) return undefined;
  for (let i = 0; i < list.length; i++) if (matches(list[i], budgets, rateLimits)) return list[i];
  return undefined;
}

function remember(t: PlanTemplate): void {
  const k = t.budgets.length > 0 ? t.budgets[0].scopeKey : t.rates.length > 0 ? t.rates[0].scopeKey : undefined;
  if (k === undefined) return;
  if (templateCount >= MAX_PLAN_TEMPLATES) clearPlanTemplates();
  let list = templates.get(k);
  if (!list) templates.set(k, (list = []));
  if (list.length >= MAX_TEMPLATES_PER_SCOPE) {
    list.shift();
    templateCount--;
  }
  list.push(t);
  templateCount++;
}

/** Templates held (tests: the bound). */
export function planTemplateCount(): number {
  return templateCount;
}

/** Forget every template (the next plans take the general path). */
export function clearPlanTemplates(): void {
  templates.clear();
  templateCount = 0;
}

export { MINUTE_MS };
