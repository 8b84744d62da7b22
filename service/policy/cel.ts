// The safe wrapper around @bufbuild/cel: one shared environment (std + strings extension +
// Tollgate functions), hard limits checked before parsing, a static check of every expression,
// and a run() that bounds comprehension work and never throws.
import { CelScalar, celEnv, celFunc, celMethod, isCelError, listType, parse, plan, type CelFunc, type CelList } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { astDepth, checkExpr, fromCelType, tyName, type Expr, type Overload, type ParsedExpr, type Ty } from './checker.ts';
import { cidrContains, parseCidr } from './cidr.ts';
import { compileNative, FALLBACK, NErr, TIME_METHOD_NAMES, timeGetter } from './fast.ts';
import { globMatch } from './glob.ts';

export const LIMITS = {
  /** Characters in one expression. */
  maxExpressionLength: 4096,
  /** Bracket nesting, checked on the source before parsing (the parser recurses per level). */
  maxNesting: 32,
  /** AST depth after parsing (the evaluator recurses per level). */
  maxAstDepth: 256,
  /** Comprehension iterations (all/exists/map/filter steps, summed) per expression evaluation. */
  maxIterations: 50_000,
};

// Iterations left for the expression being evaluated. Evaluation is synchronous and
// single-threaded, so one module-level counter is exact.
let iterationBudget = 0;
const TICK = '@tollgate_tick';

const tick = celFunc(TICK, [CelScalar.BOOL], CelScalar.BOOL, (b: boolean) => {
  if (--iterationBudget < 0) {
    throw new Error(`comprehension iteration limit of ${LIMITS.maxIterations} exceeded`);
  }
  return b;
});

function stringsOf(list: CelList, fn: string): string[] {
  const out: string[] = [];
  for (const v of list) {
    if (typeof v !== 'string') throw new Error(`${fn}: list elements must be strings`);
    out.push(v);
  }
  return out;
}

const tollgateFuncs: CelFunc[] = [
  celFunc('glob', [CelScalar.STRING, CelScalar.STRING], CelScalar.BOOL, (s: string, p: string) => globMatch(s, p)),
  celMethod('glob', CelScalar.STRING, [CelScalar.STRING], CelScalar.BOOL, function (this: string, p: string) {
    return globMatch(this, p);
  }),
  celMethod('glob', CelScalar.STRING, [listType(CelScalar.DYN)], CelScalar.BOOL, function (this: string, ps: CelList) {
    return stringsOf(ps, 'glob').some((p) => globMatch(this, p));
  }),
  celFunc('cidrContains', [CelScalar.STRING, CelScalar.STRING], CelScalar.BOOL, (c: string, ip: string) => cidrContains(c, ip)),
  celFunc('cidrContains', [listType(CelScalar.DYN), CelScalar.STRING], CelScalar.BOOL, (cs: CelList, ip: string) =>
    stringsOf(cs, 'cidrContains').some((c) => cidrContains(c, ip)),
  ),
  tick,
];

// @bufbuild/cel 0.6.1's timestamp getters with a time zone are wrong during the midnight hour
// (they format with hour12:false, V8 prints hour "24", and the rebuilt Date rolls to the next day)
// and depend on the host's TZ. Replace them with the fast path's implementation.
const TIMESTAMP_T = (() => {
  for (const f of celEnv().funcs) if (f.name === 'getHours' && f.target?.name === 'google.protobuf.Timestamp') return f.target;
  throw new Error('@bufbuild/cel: timestamp type not found');
})();

function epochMs(ts: unknown): number {
  const m = (ts as { message?: { seconds?: bigint; nanos?: number } }).message;
  if (!m || typeof m.seconds !== 'bigint') throw new Error('not a timestamp');
  return Number(m.seconds) * 1000 + Math.floor((m.nanos ?? 0) / 1_000_000);
}

const timeFuncs: CelFunc[] = TIME_METHOD_NAMES.flatMap((name) => [
  celMethod(name, TIMESTAMP_T, [], CelScalar.INT, function (this: unknown) {
    return BigInt(timeGetter(name, epochMs(this)));
  }),
  celMethod(name, TIMESTAMP_T, [CelScalar.STRING], CelScalar.INT, function (this: unknown, tz: string) {
    return BigInt(timeGetter(name, epochMs(this), tz));
  }),
]);

export const env = celEnv({ funcs: [...strings, ...tollgateFuncs, ...timeFuncs] });

/** Overload table for the checker, straight from the environment (one source of truth). */
const overloads: Map<string, Overload[]> = (() => {
  const m = new Map<string, Overload[]>();
  for (const f of env.funcs) {
    if (f.name === TICK) continue;
    const list = m.get(f.name) ?? [];
    list.push({ target: f.target ? fromCelType(f.target) : undefined, args: f.arguments.map(fromCelType), result: fromCelType(f.result) });
    m.set(f.name, list);
  }
  return m;
})();

export type Activation = Record<string, unknown>;
type Program = (ctx: Activation) => unknown;

function compileRaw(source: string): Program {
  return plan(env, parse(source)) as unknown as Program;
}

const regexProbe = compileRaw('s.matches(p)');
const timestampProbe = compileRaw('timestamp(s)');
const durationProbe = compileRaw('duration(s)');

const TIME_METHODS = new Set(['getDate', 'getDayOfMonth', 'getDayOfWeek', 'getDayOfYear', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds']);

function validTimeZone(tz: string): boolean {
  if (/^[+-]?\d{2}:\d{2}$/.test(tz)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Load-time validation of constant arguments: regexes, CIDRs, time zones, timestamp/duration literals. */
function constCheck(fn: string, isMethod: boolean, args: ReadonlyArray<string | undefined>): string | undefined {
  const a0 = args[0];
  if (a0 === undefined) return undefined;
  if (fn === 'matches' && isMethod) {
    const r = regexProbe({ s: '', p: a0 });
    if (isCelError(r)) return `invalid regular expression ${JSON.stringify(a0)}: ${r.message} (RE2 syntax: no lookaround or backreferences)`;
  }
  if (fn === 'cidrContains' && !isMethod) {
    try {
      parseCidr(a0);
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (TIME_METHODS.has(fn) && isMethod && !validTimeZone(a0)) return `unknown time zone ${JSON.stringify(a0)} (use an IANA name like "Europe/Berlin")`;
  if ((fn === 'timestamp' || fn === 'duration') && !isMethod) {
    const r = (fn === 'timestamp' ? timestampProbe : durationProbe)({ s: a0 });
    if (isCelError(r)) return `invalid ${fn} literal ${JSON.stringify(a0)}: ${r.message}`;
  }
  return undefined;
}

/** Bracket nesting depth of the source, ignoring string literals and comments. */
export function sourceNesting(src: string): number {
  let depth = 0;
  let max = 0;
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const raw = i > 0 && /[rR]/.test(src[i - 1] as string);
      const q = src.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
      i += q.length;
      while (i < src.length && !src.startsWith(q, i)) i += !raw && src[i] === '\\' ? 2 : 1;
      i += q.length;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ')' || c === ']' || c === '}') depth--;
    i++;
  }
  return max;
}

/** `scalar`: a string, or an int/uint/double/bool converted to one (label values). */
export type Expect = 'bool' | 'string' | 'scalar' | 'any';

const SCALAR_KINDS = new Set(['string', 'int', 'uint', 'double', 'bool']);

export interface CompiledExpr {
  source: string;
  type: Ty;
  /** `variables.x` names referenced directly. */
  variables: string[];
  /** Top-level fields used (`request.body`, or `request.*` for the whole variable). */
  roots: ReadonlySet<string>;
  /** Whether the native fast path handles this expression (falling back per evaluation when needed). */
  native: boolean;
  /** Evaluates; returns a CelError (truthy!) on failure, never throws. */
  run(act: Activation): unknown;
}

export type CompileResult = { ok: true; expr: CompiledExpr } | { ok: false; message: string; offset?: number };

function offsetOf(parsed: ParsedExpr, id: bigint | undefined): number | undefined {
  if (id === undefined) return undefined;
  return parsed.sourceInfo?.positions[id.toString() as unknown as number];
}

// Wraps each comprehension's loop condition in the tick function so every iteration spends
// from the per-evaluation budget; the evaluator stops on the error it raises.
function instrument(e: Expr, nextId: { n: bigint }): void {
  const stack: Expr[] = [e];
  while (stack.length) {
    const x = stack.pop() as Expr;
    if (x.exprKind.case === 'comprehensionExpr' && x.exprKind.value.loopCondition) {
      const cond = x.exprKind.value.loopCondition;
      const wrapped = {
        $typeName: 'cel.expr.Expr',
        id: nextId.n++,
        exprKind: { case: 'callExpr', value: { $typeName: 'cel.expr.Expr.Call', function: TICK, target: undefined, args: [cond] } },
      } as unknown as Expr;
      x.exprKind.value.loopCondition = wrapped;
    }
    const k = x.exprKind;
    switch (k.case) {
      case 'selectExpr':
        if (k.value.operand) stack.push(k.value.operand);
        break;
      case 'callExpr':
        if (k.value.target) stack.push(k.value.target);
        stack.push(...k.value.args);
        break;
      case 'listExpr':
        stack.push(...k.value.elements);
        break;
      case 'structExpr':
        for (const en of k.value.entries) {
          if (en.keyKind.case === 'mapKey') stack.push(en.keyKind.value);
          if (en.value) stack.push(en.value);
        }
        break;
      case 'comprehensionExpr': {
        const c = k.value;
        for (const y of [c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result]) if (y) stack.push(y);
        break;
      }
      default:
        break;
    }
  }
}

function maxId(e: Expr): bigint {
  let max = 0n;
  const stack: Expr[] = [e];
  while (stack.length) {
    const x = stack.pop() as Expr;
    if (x.id > max) max = x.id;
    const k = x.exprKind;
    if (k.case === 'selectExpr' && k.value.operand) stack.push(k.value.operand);
    else if (k.case === 'callExpr') stack.push(...(k.value.target ? [k.value.target] : []), ...k.value.args);
    else if (k.case === 'listExpr') stack.push(...k.value.elements);
    else if (k.case === 'structExpr') for (const en of k.value.entries) stack.push(...(en.keyKind.case === 'mapKey' ? [en.keyKind.value] : []), ...(en.value ? [en.value] : []));
    else if (k.case === 'comprehensionExpr') for (const y of [k.value.iterRange, k.value.accuInit, k.value.loopCondition, k.value.loopStep, k.value.result]) if (y) stack.push(y);
  }
  return max;
}

/**
 * Parses, checks and plans one expression. `vars` declares the variables in scope with their
 * types; `expect` is the result type the caller needs.
 */
export function compileExpression(source: string, vars: ReadonlyMap<string, Ty>, expect: Expect): CompileResult {
  if (typeof source !== 'string' || source.trim() === '') return { ok: false, message: 'expression is empty' };
  if (source.length > LIMITS.maxExpressionLength) {
    return { ok: false, message: `expression is ${source.length} characters long; the limit is ${LIMITS.maxExpressionLength}` };
  }
  const nesting = sourceNesting(source);
  if (nesting > LIMITS.maxNesting) {
    return { ok: false, message: `expression nests brackets ${nesting} levels deep; the limit is ${LIMITS.maxNesting}` };
  }
  let parsed: ParsedExpr;
  try {
    parsed = parse(source);
  } catch (e) {
    if (e instanceof RangeError) return { ok: false, message: 'expression nests too deeply to parse' };
    const err = e as { rawMessage?: unknown; location?: { start?: { offset?: number } }; message?: string };
    const raw = typeof err.rawMessage === 'string' ? err.rawMessage : String(err.message ?? e).replace(/^<input>:\d+:\d+: /, '');
    return { ok: false, message: `syntax error: ${raw}`, offset: err.location?.start?.offset };
  }
  const depth = astDepth(parsed.expr);
  if (depth > LIMITS.maxAstDepth) {
    return { ok: false, message: `expression is nested ${depth} levels deep; the limit is ${LIMITS.maxAstDepth} (split it into policy variables, or use 'x in [...]' for long lists)` };
  }
  const checked = checkExpr(parsed.expr, { vars, overloads, constCheck });
  if (checked.issue) return { ok: false, message: checked.issue.message, offset: offsetOf(parsed, checked.issue.exprId) };
  const t = checked.type;
  if (expect === 'scalar') {
    if (t.k !== 'dyn' && !SCALAR_KINDS.has(t.k)) {
      return { ok: false, message: `expression must evaluate to a string (or an int, double or bool, converted), but it has type ${tyName(t)}` };
    }
  } else if (expect !== 'any' && t.k !== 'dyn' && t.k !== expect) {
    return { ok: false, message: `expression must evaluate to ${expect}, but it has type ${tyName(t)}` };
  }
  const native = compileNative(parsed.expr);
  instrument(parsed.expr, { n: maxId(parsed.expr) + 1n });
  const program = plan(env, parsed) as unknown as Program;
  return {
    ok: true,
    expr: {
      source,
      type: t,
      variables: [...checked.variables],
      roots: checked.roots,
      native: native !== undefined,
      run(act: Activation): unknown {
        if (native) {
          try {
            return native(act);
          } catch (e) {
            // FALLBACK: the fast path could not decide. Anything else would be a fast-path bug;
            // the library still gives the right answer.
            if (e !== FALLBACK) fastPathBugs++;
          }
        }
        iterationBudget = LIMITS.maxIterations;
        try {
          return program(act);
        } catch (e) {
          // plan() already converts throws to CelErrors; this is belt and braces.
          return new Error(e instanceof Error ? e.message : String(e));
        }
      },
    },
  };
}

/** Unexpected exceptions inside the fast path (each one fell back to the library); should stay 0. */
export let fastPathBugs = 0;

/** Error message of a failed evaluation, or undefined for a value. */
export function errorMessage(v: unknown): string | undefined {
  // Most results are scalars: no error check needed (runs once per expression per request).
  if (typeof v !== 'object' || v === null) return undefined;
  if (v instanceof NErr) return v.message;
  if (isCelError(v)) return v.message;
  if (v instanceof Error) return v.message;
  return undefined;
}

/** Errors that mean the expression is wrong (not the data): rejected at load when a sample hits them. */
export function isTypeError(message: string): boolean {
  return /^(found no matching overload|unbound function|unresolved attribute|type mismatch|no such overload)/.test(message);
}

const OPS: Record<string, string> = {
  '_+_': '+',
  '_-_': '-',
  '_*_': '*',
  '_/_': '/',
  '_%_': '%',
  '_<_': '<',
  '_<=_': '<=',
  '_>_': '>',
  '_>=_': '>=',
  '-_': 'unary -',
  '!_': '!',
  '@in': 'in',
};

/** A run-time type error as a human message, with a hint for the classic JSON-number mistake. */
export function describeTypeError(message: string): string {
  let m = message.replace(/'(_[^']*_|-_|!_|@in)'/g, (all, op: string) => (OPS[op] ? `operator '${OPS[op]}'` : all));
  if (/\(double, int\)|\(int, double\)/.test(m)) m += ' (JSON numbers are doubles in CEL: compare with 1.0, or convert with int(x) / double(x))';
  return m;
}

/** Name of a run-time value's CEL type, for messages. */
export function valueTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'double';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'a list, map or message' : typeof v;
}

/** A string-valued result: strings as is, scalars converted; lists, maps, null → undefined. */
export function asString(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'bigint':
    case 'boolean':
      return String(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : undefined;
    default:
      return undefined;
  }
}
