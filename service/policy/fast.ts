// Native fast path for the common subset of CEL used in policies.
//
// @bufbuild/cel costs ~4 µs per expression (generic dispatch, value conversion) and ~500 µs for a
// time-zone getter (it builds an Intl formatter per call). Policies are mostly field selects,
// comparisons, boolean logic, `in` and string tests, so those compile to plain closures here.
//
// Safety rule: the fast path is an optimisation, never a second semantics. It handles a value only
// when the outcome is certain to match @bufbuild/cel; for anything else (an unusual type, an
// overflow, a library value from a variable) it throws FALLBACK and the caller re-runs the whole
// expression on @bufbuild/cel. Expressions are pure, so re-running is safe. A differential test
// (test/policy/fast.test.ts) checks both paths agree.
import { LazyActivation, NOW_MS, type ActivationRoot } from './activation.ts';
import { cidrContains } from './cidr.ts';
import type { Expr } from './checker.ts';
import { globMatch } from './glob.ts';

/** Evaluation error produced by the fast path (cheap: no stack capture). */
export class NErr {
  constructor(readonly message: string) {}
}

/** Thrown when the fast path cannot decide; the caller falls back to @bufbuild/cel. */
export const FALLBACK: unique symbol = Symbol('fallback');

export type Native = (act: Record<string, unknown>) => unknown;
type Node = Native;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fallback(): never {
  throw FALLBACK;
}

function isPlainScalar(v: unknown): v is string | boolean | bigint | number | null {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'number';
}

/** CEL equality for scalars (heterogeneous numeric equality; other type mixes are false). */
function eq(a: unknown, b: unknown): boolean {
  if (!isPlainScalar(a) || !isPlainScalar(b)) fallback();
  if (a === null || b === null) return a === b;
  const ta = typeof a;
  const tb = typeof b;
  if (ta === tb) {
    if (ta === 'number') return a === b; // NaN != NaN, as in CEL
    return a === b;
  }
  if (ta === 'bigint' && tb === 'number') return Number.isInteger(b) && BigInt(b as number) === a;
  if (ta === 'number' && tb === 'bigint') return Number.isInteger(a) && BigInt(a as number) === b;
  return false;
}

function num(v: unknown): bigint | number {
  if (typeof v === 'bigint' || typeof v === 'number') return v;
  return fallback();
}

function str(v: unknown): string {
  if (typeof v === 'string') return v;
  return fallback();
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++;
    n++;
  }
  return n;
}

function checkedInt(v: bigint): bigint {
  if (v < INT64_MIN || v > INT64_MAX) fallback();
  return v;
}

// ---- time zone getters with cached formatters ----------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();
const partsCache = new Map<string, { ms: number; parts: TimeParts }>();

export interface TimeParts {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
  hour: number;
  minute: number;
  second: number;
  weekday: number; // 0 = Sunday
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

export function formatParts(ms: number, tz: string): TimeParts {
  const hit = partsCache.get(tz);
  if (hit && hit.ms === ms) return hit.parts;
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    });
    if (formatters.size < 256) formatters.set(tz, f);
  }
  const p: TimeParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
  for (const part of f.formatToParts(ms)) {
    switch (part.type) {
      case 'year':
        p.year = Number(part.value);
        break;
      case 'month':
        p.month = Number(part.value);
        break;
      case 'day':
        p.day = Number(part.value);
        break;
      case 'hour':
        p.hour = Number(part.value);
        break;
      case 'minute':
        p.minute = Number(part.value);
        break;
      case 'second':
        p.second = Number(part.value);
        break;
      case 'weekday':
        p.weekday = WEEKDAYS[part.value] ?? fallback();
        break;
      default:
        break;
    }
  }
  if (partsCache.size < 256 || partsCache.has(tz)) partsCache.set(tz, { ms, parts: p });
  return p;
}

/**
 * Wall-clock parts in `tz`. Intl formatting costs ~10 µs, so the zone's UTC offset is computed once per
 * 15-minute bucket (real-world offset changes happen on 15-minute boundaries) and the parts are derived
 * arithmetically. The offset is probed a minute into the bucket, and at the bucket's first instant: when
 * both agree, the whole bucket (its first minute included) uses it; when they differ (a change inside the
 * bucket's first minute, e.g. a historical local-mean-time switch), instants in that first minute still
 * go through Intl. An offset change exactly on the boundary belongs to the new offset at both probes.
 */
const offsetCache = new Map<string, { bucket: number; offset: number; firstMinute: boolean }>();
const BUCKET_MS = 15 * 60_000;

// The last answer: one request's variables often read several parts of `now` in the same zone.
// (Three fields rather than an object: no allocation per new instant.)
let lastMs = NaN;
let lastTz = '';
let lastParts: TimeParts | undefined;

export function timeParts(ms: number, tz: string): TimeParts {
  if (lastParts !== undefined && lastMs === ms && lastTz === tz) return lastParts;
  const parts = computeTimeParts(ms, tz);
  lastMs = ms;
  lastTz = tz;
  lastParts = parts;
  return parts;
}

/** Date's UTC fields of `t`. */
function dateParts(t: number): TimeParts {
  const d = new Date(t);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
  };
}

// The UTC fields of the last minute asked for (its second 0). Why: requests arrive in the same minute one
// after another, and a Date plus seven getters per call cost more than the rest of a time getter. The
// fields of an instant depend on that instant alone, so one entry serves every zone (callers pass the
// zone's wall-clock time).
let minuteKey = NaN;
let minuteParts: TimeParts | undefined;

/** Date's UTC fields of `t` (dateParts), the fields above the second taken from the minute cache. */
export function utcParts(t: number): TimeParts {
  // Non-integers (Date truncates toward zero) and instants out of Date's range take the plain path.
  if (!Number.isInteger(t) || t > 8.64e15 || t < -8.64e15) return dateParts(t);
  const m = Math.floor(t / 60_000);
  let c = minuteParts;
  if (c === undefined || m !== minuteKey) {
    c = minuteParts = dateParts(m * 60_000);
    minuteKey = m;
  }
  return { year: c.year, month: c.month, day: c.day, hour: c.hour, minute: c.minute, second: Math.floor(t / 1000) - m * 60, weekday: c.weekday };
}

/** `tz`'s offset from UTC at `probe` (a whole second), or undefined for years Date.UTC cannot express. */
function offsetAt(probe: number, tz: string): number | undefined {
  const p = formatParts(probe, tz);
  // Years below 100 are mapped to 19xx by Date.UTC; leave those to Intl.
  if (p.year < 100) return undefined;
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - probe;
}

function computeTimeParts(ms: number, tz: string): TimeParts {
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return formatParts(ms, tz);
  const bucket = Math.floor(ms / BUCKET_MS);
  let o = offsetCache.get(tz);
  if (!o || o.bucket !== bucket) {
    const start = bucket * BUCKET_MS;
    const offset = offsetAt(start + 60_000, tz);
    if (offset === undefined) return formatParts(ms, tz);
    o = { bucket, offset, firstMinute: offsetAt(start, tz) === offset };
    if (offsetCache.size < 256 || offsetCache.has(tz)) offsetCache.set(tz, o);
  }
  if (!o.firstMinute && ms - bucket * BUCKET_MS < 60_000) return formatParts(ms, tz);
  return utcParts(ms + o.offset);
}

const TIME_GETTERS: Record<string, (p: TimeParts, ms: number) => number> = {
  getFullYear: (p) => p.year,
  getMonth: (p) => p.month - 1,
  getDate: (p) => p.day,
  getDayOfMonth: (p) => p.day - 1,
  getDayOfWeek: (p) => p.weekday,
  getDayOfYear: (p) => Math.round((Date.UTC(p.year, p.month - 1, p.day) - Date.UTC(p.year, 0, 1)) / 86_400_000),
  getHours: (p) => p.hour,
  getMinutes: (p) => p.minute,
  getSeconds: (p) => p.second,
  getMilliseconds: (_p, ms) => ((ms % 1000) + 1000) % 1000,
};

const OFFSET_RE = /^([+-]?)(\d\d):(\d\d)$/;

/**
 * CEL timestamp getter `name` for epoch milliseconds in time zone `tz` (IANA name or fixed
 * "+hh:mm" offset; UTC when absent). Throws on an unknown zone. Independent of the host's TZ.
 */
export function timeGetter(name: string, ms: number, tz?: string): number {
  const getter = TIME_GETTERS[name];
  if (!getter) throw new Error(`unknown timestamp method ${name}`);
  const shift = fixedShift(tz);
  return getter(shift === undefined ? timeParts(ms, tz as string) : utcParts(ms + shift), ms);
}

/** The shift of UTC or a fixed "+hh:mm" offset in ms; undefined for an IANA zone name. */
function fixedShift(tz: string | undefined): number | undefined {
  if (tz === undefined) return 0;
  const off = OFFSET_RE.exec(tz);
  return off ? (off[1] === '-' ? -1 : 1) * (Number(off[2]) * 3_600_000 + Number(off[3]) * 60_000) : undefined;
}

/**
 * timeGetter for a method and zone known when the expression is compiled: the getter and the zone's kind are
 * looked up once, not on every call (the time getters of a policy's variables run on every request).
 */
export function compiledTimeGetter(name: string, tz: string | undefined): (ms: number) => number {
  const getter = TIME_GETTERS[name];
  if (!getter) throw new Error(`unknown timestamp method ${name}`);
  const shift = fixedShift(tz);
  if (shift === undefined) {
    const zone = tz as string;
    return (ms) => getter(timeParts(ms, zone), ms);
  }
  return (ms) => getter(utcParts(ms + shift), ms);
}

export const TIME_METHOD_NAMES: readonly string[] = Object.keys(TIME_GETTERS);

export { NOW_MS };

// ---- the compiler ----------------------------------------------------------------------------

class Unsupported extends Error {}

function unsupported(): never {
  throw new Unsupported();
}

const TOP_LEVEL = new Set(['request', 'principal', 'tenant', 'team', 'variables', 'deployment']);
/** Variables a LazyActivation serves field by field. */
const FIELD_ROOTS = new Set(['request', 'principal', 'tenant', 'team']);

function compileNode(e: Expr): Node {
  const k = e.exprKind;
  switch (k.case) {
    case 'constExpr': {
      const c = k.value.constantKind;
      switch (c.case) {
        case 'boolValue':
        case 'stringValue':
        case 'int64Value':
        case 'doubleValue': {
          const v = c.value;
          return () => v;
        }
        case 'nullValue':
          return () => null;
        default:
          return unsupported();
      }
    }
    case 'identExpr': {
      const name = k.value.name;
      if (!TOP_LEVEL.has(name)) return unsupported();
      return (a) => {
        const v = a[name];
        return v === undefined ? new NErr(`undeclared reference to '${name}'`) : v;
      };
    }
    case 'selectExpr': {
      const { field, testOnly } = k.value;
      if (!k.value.operand) return unsupported();
      const operand = compileNode(k.value.operand);
      const op = k.value.operand.exprKind;
      // `request.model`-style reads on the lazy activation convert only the field read (./activation.ts).
      if (op.case === 'identExpr' && FIELD_ROOTS.has(op.value.name)) {
        const root = op.value.name as ActivationRoot;
        if (testOnly) {
          return (a) => {
            if (!(a instanceof LazyActivation)) return fieldTest(operand(a), field);
            return a.field(root, field) != null;
          };
        }
        return (a) => {
          if (!(a instanceof LazyActivation)) return fieldSelect(operand(a), field);
          const x = a.field(root, field);
          return x === undefined ? new NErr(`no such key: ${field}`) : x;
        };
      }
      if (testOnly) return (a) => fieldTest(operand(a), field);
      return (a) => fieldSelect(operand(a), field);
    }
    case 'listExpr': {
      if (k.value.optionalIndices.length) return unsupported();
      const elems = k.value.elements.map(compileNode);
      // A list of literals (`x in [0, 6]`) is built once: CEL values are never mutated.
      if (k.value.elements.every((el) => el.exprKind.case === 'constExpr')) {
        const values = elems.map((el) => el({}));
        if (!values.some((v) => v instanceof NErr)) return () => values;
      }
      return (a) => {
        const out: unknown[] = [];
        for (const el of elems) {
          const v = el(a);
          if (v instanceof NErr) return v;
          out.push(v);
        }
        return out;
      };
    }
    case 'callExpr':
      return compileCall(e);
    default:
      return unsupported();
  }
}

/** `has(x.f)`: as @bufbuild/cel, a key whose value is null counts as absent. */
function fieldTest(v: unknown, field: string): unknown {
  if (v instanceof NErr) return v;
  if (v instanceof Map) return v.get(field) != null;
  return fallback();
}

function fieldSelect(v: unknown, field: string): unknown {
  if (v instanceof NErr) return v;
  if (v instanceof Map) {
    const x = v.get(field);
    return x === undefined ? new NErr(`no such key: ${field}`) : x;
  }
  return fallback();
}

function logic(args: Node[], isAnd: boolean): Node {
  return (a) => {
    let err: NErr | undefined;
    for (const arg of args) {
      const v = arg(a);
      if (typeof v === 'boolean') {
        if (v !== isAnd) return v; // false short-circuits &&, true short-circuits ||
        continue;
      }
      if (!err) err = v instanceof NErr ? v : new NErr('type mismatch: expected bool');
    }
    return err ?? isAnd;
  };
}

function binary(args: Node[], op: (x: unknown, y: unknown) => unknown): Node {
  const [l, r] = args as [Node, Node];
  return (a) => {
    const x = l(a);
    if (x instanceof NErr) return x;
    const y = r(a);
    if (y instanceof NErr) return y;
    return op(x, y);
  };
}

function compare(op: '<' | '<=' | '>' | '>='): (x: unknown, y: unknown) => boolean {
  return (x, y) => {
    const a = num(x);
    const b = num(y);
    if ((typeof a === 'number' && Number.isNaN(a)) || (typeof b === 'number' && Number.isNaN(b))) fallback();
    switch (op) {
      case '<':
        return a < b;
      case '<=':
        return a <= b;
      case '>':
        return a > b;
      case '>=':
        return a >= b;
    }
  };
}

function arith(op: '+' | '-' | '*'): (x: unknown, y: unknown) => unknown {
  return (x, y) => {
    if (op === '+' && typeof x === 'string' && typeof y === 'string') return x + y;
    if (typeof x === 'bigint' && typeof y === 'bigint') return checkedInt(op === '+' ? x + y : op === '-' ? x - y : x * y);
    if (typeof x === 'number' && typeof y === 'number') return op === '+' ? x + y : op === '-' ? x - y : x * y;
    return fallback();
  };
}

function compileCall(e: Expr): Node {
  if (e.exprKind.case !== 'callExpr') return unsupported();
  const call = e.exprKind.value;
  const fn = call.function;

  if (call.target) {
    const targetExpr = call.target;
    // Time getters on `now` itself, with an optional constant IANA time zone.
    if (fn in TIME_GETTERS && targetExpr.exprKind.case === 'identExpr' && targetExpr.exprKind.value.name === 'now') {
      const tzArg = call.args[0];
      if (call.args.length > 1 || (tzArg && (tzArg.exprKind.case !== 'constExpr' || tzArg.exprKind.value.constantKind.case !== 'stringValue'))) return unsupported();
      const tz = tzArg?.exprKind.case === 'constExpr' && tzArg.exprKind.value.constantKind.case === 'stringValue' ? tzArg.exprKind.value.constantKind.value : undefined;
      const get = compiledTimeGetter(fn, tz);
      return (a) => {
        const ms = a[NOW_MS];
        if (typeof ms !== 'number') return fallback();
        try {
          return BigInt(get(ms));
        } catch (err) {
          return new NErr((err as Error).message);
        }
      };
    }
    const target = compileNode(targetExpr);
    const args = call.args.map(compileNode);
    const withArgs = (impl: (t: unknown, xs: unknown[]) => unknown): Node => (a) => {
      const t = target(a);
      if (t instanceof NErr) return t;
      const xs: unknown[] = [];
      for (const arg of args) {
        const v = arg(a);
        if (v instanceof NErr) return v;
        xs.push(v);
      }
      return impl(t, xs);
    };
    switch (fn) {
      case 'startsWith':
        if (args.length !== 1) return unsupported();
        return withArgs((t, [p]) => str(t).startsWith(str(p)));
      case 'endsWith':
        if (args.length !== 1) return unsupported();
        return withArgs((t, [p]) => str(t).endsWith(str(p)));
      case 'contains':
        if (args.length !== 1) return unsupported();
        return withArgs((t, [p]) => str(t).includes(str(p)));
      case 'size':
        if (args.length !== 0) return unsupported();
        return withArgs((t) => sizeOf(t));
      case 'glob':
        if (args.length !== 1) return unsupported();
        return withArgs((t, [p]) => {
          const s = str(t);
          if (typeof p === 'string') return globMatch(s, p);
          if (Array.isArray(p)) return p.some((x) => globMatch(s, str(x)));
          return fallback();
        });
      case 'lowerAscii':
        if (args.length !== 0) return unsupported();
        return withArgs((t) => str(t).replace(/[A-Z]+/g, (m) => m.toLowerCase()));
      case 'upperAscii':
        if (args.length !== 0) return unsupported();
        return withArgs((t) => str(t).replace(/[a-z]+/g, (m) => m.toUpperCase()));
      default:
        return unsupported();
    }
  }

  const args = call.args.map(compileNode);
  switch (fn) {
    case '_&&_':
      return logic(args, true);
    case '_||_':
      return logic(args, false);
    case '!_': {
      const [x] = args as [Node];
      return (a) => {
        const v = x(a);
        if (v instanceof NErr) return v;
        return typeof v === 'boolean' ? !v : fallback();
      };
    }
    case '_?_:_': {
      const [c, t, f] = args as [Node, Node, Node];
      return (a) => {
        const v = c(a);
        if (v instanceof NErr) return v;
        if (typeof v !== 'boolean') return fallback();
        return v ? t(a) : f(a);
      };
    }
    case '_==_':
    case '_!=_': {
      const neg = fn === '_!=_';
      // `principal.tenant == 'acme'`: most comparisons are with a string literal; compare strings
      // directly (other values take the general path, so the semantics are eq()'s).
      const [a0, a1] = call.args;
      const lit = constString(a1) ?? constString(a0);
      if (lit !== undefined && args.length === 2) {
        const other = (constString(a1) !== undefined ? args[0] : args[1]) as Node;
        return (a) => {
          const x = other(a);
          if (typeof x === 'string') return (x === lit) !== neg;
          if (x instanceof NErr) return x;
          return eq(x, lit) !== neg;
        };
      }
      return binary(args, neg ? (x, y) => !eq(x, y) : (x, y) => eq(x, y));
    }
    case '@in':
      return binary(args, (x, c) => {
        if (Array.isArray(c)) {
          for (const el of c) if (eq(x, el)) return true;
          return false;
        }
        if (c instanceof Map && typeof x === 'string') return c.get(x) != null;
        return fallback();
      });
    case '_<_':
      return binary(args, compare('<'));
    case '_<=_':
      return binary(args, compare('<='));
    case '_>_':
      return binary(args, compare('>'));
    case '_>=_':
      return binary(args, compare('>='));
    case '_+_':
      return binary(args, arith('+'));
    case '_-_':
      return binary(args, arith('-'));
    case '_*_':
      return binary(args, arith('*'));
    case '_[_]':
      return binary(args, (c, key) => {
        if (c instanceof Map && typeof key === 'string') {
          const v = c.get(key);
          return v === undefined ? new NErr(`no such key: ${key}`) : v;
        }
        if (Array.isArray(c) && typeof key === 'bigint') {
          if (key < 0n || key >= BigInt(c.length)) return new NErr(`index out of bounds: ${key}`);
          return c[Number(key)];
        }
        return fallback();
      });
    case 'size':
      if (args.length !== 1) return unsupported();
      return binary([args[0] as Node, () => null], (x) => sizeOf(x));
    case 'string':
      if (args.length !== 1) return unsupported();
      return binary([args[0] as Node, () => null], (x) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'bigint' || typeof x === 'boolean') return String(x);
        return fallback();
      });
    case 'glob':
      if (args.length !== 2) return unsupported();
      return binary(args, (s, p) => globMatch(str(s), str(p)));
    case 'cidrContains':
      if (args.length !== 2) return unsupported();
      return binary(args, (c, ip) => {
        const addr = str(ip);
        try {
          if (typeof c === 'string') return cidrContains(c, addr);
          if (Array.isArray(c)) return c.some((x) => cidrContains(str(x), addr));
        } catch (err) {
          if (err === FALLBACK) throw err;
          return new NErr((err as Error).message);
        }
        return fallback();
      });
    default:
      return unsupported();
  }
}

function constString(e: Expr | undefined): string | undefined {
  const k = e?.exprKind;
  return k?.case === 'constExpr' && k.value.constantKind.case === 'stringValue' ? k.value.constantKind.value : undefined;
}

function sizeOf(v: unknown): bigint {
  if (typeof v === 'string') return BigInt(codePoints(v));
  if (Array.isArray(v)) return BigInt(v.length);
  if (v instanceof Map) return BigInt(v.size);
  return fallback();
}

/** A native closure for `e`, or undefined when the expression uses anything outside the subset. */
export function compileNative(e: Expr): Native | undefined {
  try {
    return compileNode(e);
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}
