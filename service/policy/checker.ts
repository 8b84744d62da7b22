// A static type checker for CEL expressions over Tollgate's policy context.
//
// @bufbuild/cel 0.6.1 ships no usable checker (its Checker only handles constants and
// identifiers), so this walks the parsed AST: every identifier, field, function and method is
// resolved against the declared context and the environment's own overload table, in every
// branch — including branches a sample evaluation would never take. It is conservative: when a
// type is only known at run time (`dyn`, e.g. JSON params) it lets the expression through and the
// run-time error path (fail closed) takes over.
import type { CelType } from '@bufbuild/cel';
import type { parse } from '@bufbuild/cel';

export type ParsedExpr = ReturnType<typeof parse>;
export type Expr = ParsedExpr['expr'];

export type Ty =
  | { k: 'dyn' }
  | { k: 'bool' }
  | { k: 'int' }
  | { k: 'uint' }
  | { k: 'double' }
  | { k: 'string' }
  | { k: 'bytes' }
  | { k: 'null' }
  | { k: 'timestamp' }
  | { k: 'duration' }
  | { k: 'type' }
  | { k: 'list'; elem: Ty }
  | { k: 'map'; key: Ty; val: Ty }
  | { k: 'record'; name: string; fields: Readonly<Record<string, Ty>> };

export const T = {
  dyn: { k: 'dyn' } as Ty,
  bool: { k: 'bool' } as Ty,
  int: { k: 'int' } as Ty,
  uint: { k: 'uint' } as Ty,
  double: { k: 'double' } as Ty,
  string: { k: 'string' } as Ty,
  bytes: { k: 'bytes' } as Ty,
  null: { k: 'null' } as Ty,
  timestamp: { k: 'timestamp' } as Ty,
  duration: { k: 'duration' } as Ty,
  type: { k: 'type' } as Ty,
  list: (elem: Ty): Ty => ({ k: 'list', elem }),
  map: (key: Ty, val: Ty): Ty => ({ k: 'map', key, val }),
  record: (name: string, fields: Record<string, Ty>): Ty => ({ k: 'record', name, fields }),
};

export function tyName(t: Ty): string {
  switch (t.k) {
    case 'list':
      return `list(${tyName(t.elem)})`;
    case 'map':
      return `map(${tyName(t.key)}, ${tyName(t.val)})`;
    case 'record':
      return t.name;
    case 'timestamp':
      return 'timestamp';
    case 'duration':
      return 'duration';
    case 'null':
      return 'null';
    default:
      return t.k;
  }
}

export interface Overload {
  target: Ty | undefined;
  args: Ty[];
  result: Ty;
}

export function fromCelType(t: CelType): Ty {
  switch (t.kind) {
    case 'list':
      return T.list(fromCelType(t.element));
    case 'map':
      return T.map(fromCelType(t.key), fromCelType(t.value));
    case 'object':
      if (t.name === 'google.protobuf.Timestamp') return T.timestamp;
      if (t.name === 'google.protobuf.Duration') return T.duration;
      return T.dyn;
    case 'scalar':
      switch (t.scalar) {
        case 'null_type':
          return T.null;
        case 'int':
        case 'uint':
        case 'double':
        case 'string':
        case 'bytes':
        case 'bool':
        case 'type':
        case 'dyn':
          return { k: t.scalar } as Ty;
      }
  }
  return T.dyn;
}

/** Identifiers that name types (`type(x) == string`). */
const TYPE_IDENTS = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn']);

const OPERATOR_NAMES: Record<string, string> = {
  '_+_': '+',
  '_-_': '-',
  '_*_': '*',
  '_/_': '/',
  '_%_': '%',
  '_<_': '<',
  '_<=_': '<=',
  '_>_': '>',
  '_>=_': '>=',
  '_==_': '==',
  '_!=_': '!=',
  '!_': '!',
  '-_': 'unary -',
  '@in': 'in',
  _in_: 'in',
};

function displayFn(name: string): string {
  const op = OPERATOR_NAMES[name];
  return op ? `operator '${op}'` : `'${name}'`;
}

export interface CheckEnv {
  /** Top-level variables. */
  vars: ReadonlyMap<string, Ty>;
  /** Function/method overloads by name (from the CEL environment). */
  overloads: ReadonlyMap<string, Overload[]>;
  /**
   * Validates constant arguments (regex patterns, CIDRs, time zones, …). Returns a message for an
   * invalid constant. `args` holds each argument's string constant or undefined.
   */
  constCheck?: (fn: string, isMethod: boolean, args: ReadonlyArray<string | undefined>) => string | undefined;
}

export interface CheckIssue {
  exprId: bigint;
  message: string;
}

export interface CheckResult {
  type: Ty;
  issue?: CheckIssue;
  /** Names `x` of every `variables.x` referenced. */
  variables: Set<string>;
  /** Deepest nesting of comprehensions (macros like all/exists/map). */
  comprehensionDepth: number;
  /** Top-level fields used, as `var.field`, or `var.*` when the variable is used as a whole. */
  roots: Set<string>;
}

class CheckFailure extends Error {
  constructor(
    readonly exprId: bigint,
    message: string,
  ) {
    super(message);
  }
}

type Match = 'yes' | 'maybe' | 'no';

function assignable(arg: Ty, param: Ty): Match {
  if (param.k === 'dyn') return 'yes';
  if (arg.k === 'dyn') return 'maybe';
  if (param.k === 'map' && arg.k === 'record') return 'yes';
  if (arg.k !== param.k) return 'no';
  if (arg.k === 'list' && param.k === 'list') {
    if (param.elem.k === 'dyn') return 'yes';
    return assignable(arg.elem, param.elem);
  }
  return 'yes';
}

function sameTy(a: Ty, b: Ty): boolean {
  if (a.k !== b.k) return false;
  if (a.k === 'list' && b.k === 'list') return sameTy(a.elem, b.elem);
  if (a.k === 'map' && b.k === 'map') return sameTy(a.key, b.key) && sameTy(a.val, b.val);
  if (a.k === 'record' && b.k === 'record') return a.name === b.name;
  return true;
}

function unify(types: Ty[]): Ty {
  if (types.length === 0) return T.dyn;
  const first = types[0] as Ty;
  return types.every((t) => sameTy(t, first)) ? first : T.dyn;
}

const NUMERIC = new Set(['int', 'uint', 'double']);

function comparableForEquality(a: Ty, b: Ty): boolean {
  if (a.k === 'dyn' || b.k === 'dyn' || a.k === 'null' || b.k === 'null') return true;
  if (NUMERIC.has(a.k) && NUMERIC.has(b.k)) return true;
  if ((a.k === 'record' && b.k === 'map') || (a.k === 'map' && b.k === 'record')) return true;
  return a.k === b.k;
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

export function suggest(name: string, candidates: Iterable<string>): string {
  let best = '';
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best && bestD <= Math.max(2, Math.floor(name.length / 3)) ? `; did you mean '${best}'?` : '';
}

function constString(e: Expr): string | undefined {
  if (e.exprKind.case === 'constExpr' && e.exprKind.value.constantKind.case === 'stringValue') {
    return e.exprKind.value.constantKind.value;
  }
  return undefined;
}

/** Dotted name of an ident/select chain (`a.b.c`), for qualified function names like `strings.quote`. */
function qualifiedName(e: Expr): string | undefined {
  if (e.exprKind.case === 'identExpr') return e.exprKind.value.name;
  if (e.exprKind.case === 'selectExpr' && !e.exprKind.value.testOnly) {
    const inner = e.exprKind.value.operand ? qualifiedName(e.exprKind.value.operand) : undefined;
    return inner === undefined ? undefined : `${inner}.${e.exprKind.value.field}`;
  }
  return undefined;
}

class Checker {
  private scopes: Map<string, Ty>[] = [];
  readonly variables = new Set<string>();
  readonly roots = new Set<string>();
  maxComprehensionDepth = 0;
  private comprehensionDepth = 0;

  constructor(private readonly env: CheckEnv) {}

  private lookupLocal(name: string): Ty | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const t = this.scopes[i]?.get(name);
      if (t) return t;
    }
    return undefined;
  }

  check(e: Expr): Ty {
    const kind = e.exprKind;
    switch (kind.case) {
      case 'constExpr': {
        switch (kind.value.constantKind.case) {
          case 'boolValue':
            return T.bool;
          case 'int64Value':
            return T.int;
          case 'uint64Value':
            return T.uint;
          case 'doubleValue':
            return T.double;
          case 'stringValue':
            return T.string;
          case 'bytesValue':
            return T.bytes;
          case 'nullValue':
            return T.null;
          default:
            return T.dyn;
        }
      }
      case 'identExpr':
        return this.ident(e.id, kind.value.name);
      case 'selectExpr': {
        const sel = kind.value;
        if (!sel.operand) throw new CheckFailure(e.id, 'malformed field selection');
        // `variables.x` records which variables the expression needs.
        if (sel.operand.exprKind.case === 'identExpr' && sel.operand.exprKind.value.name === 'variables' && !this.lookupLocal('variables')) {
          this.variables.add(sel.field);
        }
        let operand: Ty;
        const root = sel.operand.exprKind.case === 'identExpr' ? sel.operand.exprKind.value.name : undefined;
        const rootT = root !== undefined && !this.lookupLocal(root) ? this.env.vars.get(root) : undefined;
        if (root !== undefined && rootT) {
          this.roots.add(`${root}.${sel.field}`);
          operand = rootT;
        } else {
          operand = this.check(sel.operand);
        }
        const t = this.field(e.id, operand, sel.field, sel.operand);
        return sel.testOnly ? T.bool : t;
      }
      case 'callExpr':
        return this.call(e);
      case 'listExpr': {
        const elems = kind.value.elements.map((x) => this.check(x));
        return T.list(unify(elems));
      }
      case 'structExpr': {
        if (kind.value.messageName !== '') {
          throw new CheckFailure(e.id, `message construction '${kind.value.messageName}{…}' is not supported`);
        }
        const keys: Ty[] = [];
        const vals: Ty[] = [];
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case !== 'mapKey') throw new CheckFailure(entry.id, 'only map literals are supported');
          const kt = this.check(entry.keyKind.value);
          if (!['string', 'int', 'uint', 'bool', 'dyn'].includes(kt.k)) {
            throw new CheckFailure(entry.id, `map keys must be string, int, uint or bool, not ${tyName(kt)}`);
          }
          keys.push(kt);
          if (entry.value) vals.push(this.check(entry.value));
        }
        return T.map(unify(keys), unify(vals));
      }
      case 'comprehensionExpr': {
        const c = kind.value;
        if (!c.iterRange || !c.accuInit || !c.loopCondition || !c.loopStep || !c.result) {
          throw new CheckFailure(e.id, 'malformed comprehension');
        }
        const range = this.check(c.iterRange);
        let iterT: Ty;
        let iterT2: Ty = T.dyn;
        switch (range.k) {
          case 'list':
            iterT = c.iterVar2 ? T.int : range.elem;
            iterT2 = range.elem;
            break;
          case 'map':
            iterT = range.key;
            iterT2 = range.val;
            break;
          case 'record':
            iterT = T.string;
            break;
          case 'dyn':
            iterT = T.dyn;
            break;
          default:
            throw new CheckFailure(c.iterRange.id, `cannot iterate over a value of type ${tyName(range)}; macros like all/exists/map need a list or map`);
        }
        const accuT = this.check(c.accuInit);
        const scope = new Map<string, Ty>([
          [c.accuVar, accuT],
          [c.iterVar, iterT],
        ]);
        if (c.iterVar2) scope.set(c.iterVar2, iterT2);
        this.scopes.push(scope);
        this.comprehensionDepth++;
        this.maxComprehensionDepth = Math.max(this.maxComprehensionDepth, this.comprehensionDepth);
        try {
          this.check(c.loopCondition);
          const stepT = this.check(c.loopStep);
          // map()/filter() start from [] (list(dyn)); keep the accumulator as declared unless the step disagrees.
          if (!sameTy(stepT, accuT) && stepT.k !== accuT.k) scope.set(c.accuVar, T.dyn);
          return this.check(c.result);
        } finally {
          this.comprehensionDepth--;
          this.scopes.pop();
        }
      }
      default:
        throw new CheckFailure(e.id, 'unsupported expression');
    }
  }

  private ident(id: bigint, name: string): Ty {
    const local = this.lookupLocal(name);
    if (local) return local;
    const v = this.env.vars.get(name);
    if (v) {
      this.roots.add(`${name}.*`);
      return v;
    }
    if (TYPE_IDENTS.has(name)) return T.type;
    const known = [...this.env.vars.keys()];
    throw new CheckFailure(id, `unknown variable '${name}'${suggest(name, known)} (available: ${known.join(', ')})`);
  }

  private field(id: bigint, operand: Ty, field: string, operandExpr: Expr): Ty {
    switch (operand.k) {
      case 'record': {
        const t = operand.fields[field];
        if (t) return t;
        const names = Object.keys(operand.fields);
        const what = operand.name === 'variables' ? `no variable named '${field}' is declared before this expression` : `'${operand.name}' has no field '${field}'`;
        throw new CheckFailure(id, `${what}${suggest(field, names)}${names.length ? ` (known: ${names.join(', ')})` : ''}`);
      }
      case 'map':
        if (operand.key.k !== 'string' && operand.key.k !== 'dyn') {
          throw new CheckFailure(id, `cannot select field '${field}' of a map with ${tyName(operand.key)} keys; use m[key]`);
        }
        return operand.val;
      case 'dyn':
        return T.dyn;
      default: {
        const q = qualifiedName(operandExpr);
        throw new CheckFailure(id, `cannot select field '${field}' from ${q ? `'${q}', ` : ''}a value of type ${tyName(operand)}`);
      }
    }
  }

  private call(e: Expr): Ty {
    if (e.exprKind.case !== 'callExpr') throw new CheckFailure(e.id, 'internal: not a call');
    const call = e.exprKind.value;
    const fn = call.function;
    const args = call.args;

    switch (fn) {
      case '_&&_':
      case '_||_': {
        for (const a of args) {
          const t = this.check(a);
          if (t.k !== 'bool' && t.k !== 'dyn') {
            throw new CheckFailure(a.id, `operands of ${fn === '_&&_' ? '&&' : '||'} must be bool, got ${tyName(t)}`);
          }
        }
        return T.bool;
      }
      case '_?_:_': {
        const [c, a, b] = args;
        if (!c || !a || !b) throw new CheckFailure(e.id, 'malformed conditional');
        const ct = this.check(c);
        if (ct.k !== 'bool' && ct.k !== 'dyn') throw new CheckFailure(c.id, `the condition of ?: must be bool, got ${tyName(ct)}`);
        const at = this.check(a);
        const bt = this.check(b);
        return sameTy(at, bt) ? at : T.dyn;
      }
      case '@not_strictly_false':
      case '__not_strictly_false__':
        for (const a of args) this.check(a);
        return T.bool;
      case '_[_]': {
        const [target, index] = args;
        if (!target || !index) throw new CheckFailure(e.id, 'malformed index');
        const tt = this.check(target);
        const it = this.check(index);
        switch (tt.k) {
          case 'list':
            if (!['int', 'uint', 'dyn'].includes(it.k)) throw new CheckFailure(index.id, `list index must be int, got ${tyName(it)}`);
            return tt.elem;
          case 'map':
            return tt.val;
          case 'record': {
            const key = constString(index);
            if (key !== undefined) return this.field(e.id, tt, key, target);
            if (it.k !== 'string' && it.k !== 'dyn') throw new CheckFailure(index.id, `'${tt.name}' keys are strings, got ${tyName(it)}`);
            return T.dyn;
          }
          case 'dyn':
            return T.dyn;
          default:
            throw new CheckFailure(e.id, `cannot index a value of type ${tyName(tt)}`);
        }
      }
      case '_[?_]':
      case '_?._':
        throw new CheckFailure(e.id, 'optional syntax (?. and [?]) is not supported');
    }

    // A method call on a name that is not a variable may be a qualified function (strings.quote).
    if (call.target) {
      const q = qualifiedName(call.target);
      if (q !== undefined && !this.lookupLocal(q.split('.')[0] as string) && !this.env.vars.has(q.split('.')[0] as string)) {
        const qualified = `${q}.${fn}`;
        if (this.env.overloads.has(qualified)) return this.resolve(e, qualified, undefined, args.map((a) => this.check(a)), undefined);
      }
    }

    const targetT = call.target ? this.check(call.target) : undefined;
    const argTs = args.map((a) => this.check(a));
    if (fn === '_==_' || fn === '_!=_') {
      const [a, b] = argTs as [Ty, Ty];
      if (!comparableForEquality(a, b)) {
        throw new CheckFailure(e.id, `comparing ${tyName(a)} with ${tyName(b)} is always ${fn === '_==_' ? 'false' : 'true'}; convert one side (e.g. string(x), int(x))`);
      }
      return T.bool;
    }
    return this.resolve(e, fn, targetT, argTs, call.target ?? undefined);
  }

  private resolve(e: Expr, fn: string, targetT: Ty | undefined, argTs: Ty[], targetExpr: Expr | undefined): Ty {
    if (e.exprKind.case !== 'callExpr') throw new CheckFailure(e.id, 'internal: not a call');
    const all = this.env.overloads.get(fn);
    const isMethod = targetT !== undefined;
    if (!all) {
      const names = [...this.env.overloads.keys()].filter((n) => /^[a-zA-Z]/.test(n));
      throw new CheckFailure(e.id, `unknown ${isMethod ? 'method' : 'function'} '${fn}'${suggest(fn, names)}`);
    }
    const sameShape = all.filter((o) => (o.target !== undefined) === isMethod);
    if (sameShape.length === 0) {
      throw new CheckFailure(
        e.id,
        isMethod ? `'${fn}' is a function, not a method: call it as ${fn}(…)` : `'${fn}' is a method, not a function: call it as x.${fn}(…)`,
      );
    }
    const arity = sameShape.filter((o) => o.args.length === argTs.length);
    if (arity.length === 0) {
      const counts = [...new Set(sameShape.map((o) => o.args.length))].join(' or ');
      throw new CheckFailure(e.id, `${displayFn(fn)} takes ${counts} argument(s), got ${argTs.length}`);
    }
    const maybe: Overload[] = [];
    for (const o of arity) {
      let m: Match = 'yes';
      const checks = o.target && targetT ? [assignable(targetT, o.target)] : [];
      o.args.forEach((p, i) => checks.push(assignable(argTs[i] as Ty, p)));
      for (const c of checks) {
        if (c === 'no') m = 'no';
        else if (c === 'maybe' && m === 'yes') m = 'maybe';
      }
      if (m === 'yes') {
        this.validateConsts(e, fn, isMethod);
        // list + list keeps the element type when both sides agree.
        if (fn === '_+_' && argTs[0]?.k === 'list' && argTs[1]?.k === 'list') return sameTy(argTs[0], argTs[1]) ? argTs[0] : T.list(T.dyn);
        return o.result;
      }
      if (m === 'maybe') maybe.push(o);
    }
    if (maybe.length > 0) {
      this.validateConsts(e, fn, isMethod);
      return unify(maybe.map((o) => o.result));
    }
    const shown = `${targetT ? `${tyName(targetT)}.` : ''}(${argTs.map(tyName).join(', ')})`;
    const q = targetExpr ? qualifiedName(targetExpr) : undefined;
    const kinds = new Set([targetT, ...argTs].map((t) => t?.k));
    const hint = kinds.has('int') && kinds.has('double') ? '; CEL does not mix int and double: write 2.0 for a double, or convert with int(x) / double(x)' : '';
    throw new CheckFailure(e.id, `no matching overload for ${displayFn(fn)} applied to ${shown}${q ? ` (receiver '${q}')` : ''}${hint}`);
  }

  private validateConsts(e: Expr, fn: string, isMethod: boolean): void {
    if (!this.env.constCheck || e.exprKind.case !== 'callExpr') return;
    const msg = this.env.constCheck(fn, isMethod, e.exprKind.value.args.map(constString));
    if (msg) throw new CheckFailure(e.id, msg);
  }
}

export function checkExpr(expr: Expr, env: CheckEnv): CheckResult {
  const c = new Checker(env);
  try {
    const type = c.check(expr);
    return { type, variables: c.variables, comprehensionDepth: c.maxComprehensionDepth, roots: c.roots };
  } catch (err) {
    if (err instanceof CheckFailure) {
      return { type: T.dyn, issue: { exprId: err.exprId, message: err.message }, variables: c.variables, comprehensionDepth: c.maxComprehensionDepth, roots: c.roots };
    }
    throw err;
  }
}

/** Deepest nesting of the AST (iterative, so a pathological expression cannot overflow the stack here). */
export function astDepth(expr: Expr): number {
  let max = 0;
  const stack: [Expr, number][] = [[expr, 1]];
  while (stack.length) {
    const [e, d] = stack.pop() as [Expr, number];
    if (d > max) max = d;
    for (const child of children(e)) stack.push([child, d + 1]);
  }
  return max;
}

export function children(e: Expr): Expr[] {
  const k = e.exprKind;
  switch (k.case) {
    case 'selectExpr':
      return k.value.operand ? [k.value.operand] : [];
    case 'callExpr':
      return [...(k.value.target ? [k.value.target] : []), ...k.value.args];
    case 'listExpr':
      return [...k.value.elements];
    case 'structExpr': {
      const out: Expr[] = [];
      for (const en of k.value.entries) {
        if (en.keyKind.case === 'mapKey') out.push(en.keyKind.value);
        if (en.value) out.push(en.value);
      }
      return out;
    }
    case 'comprehensionExpr': {
      const c = k.value;
      return [c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result].filter((x): x is Expr => x !== undefined);
    }
    default:
      return [];
  }
}
