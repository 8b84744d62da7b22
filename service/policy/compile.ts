// Policy documents → compiled policies. Every problem is collected (not just the first) and thrown
// as one ConfigErrors with file:line:col positions. Every CEL expression is statically checked
// and then sample-evaluated against synthetic contexts before the bundle is accepted.
import { createHash } from 'node:crypto';
import { ConfigErrors, type ConfigDocument, type ConfigError, type Path } from '../config/documents.ts';
import type { BudgetLimit, BudgetWindow, StoreFailMode } from '../budget/types.ts';
import type { CustomDetectorSpec, RedactionAction } from '../redaction/types.ts';
import { customDetectorProblems } from '../redaction/custom.ts';
import { BUILTIN_DETECTORS, DETECTOR_GROUPS } from '../redaction/detectors.ts';
import { asString, compileExpression, describeTypeError, errorMessage, isTypeError, valueTypeName, type Activation, type CompiledExpr, type Expect } from './cel.ts';
import { suggest, T, type Ty } from './checker.ts';
import { baseActivation, declaredVars, deploymentValue, SAMPLE_DEPLOYMENTS, sampleInputs } from './context.ts';
import { At, NAME_HINT, NAME_RE } from './spec.ts';
import { PROTECTED_FIELDS, type TransformSpec } from './transforms.ts';
import { MCP_RULE_KINDS, type CompileOptions, type RuleKind } from './types.ts';

export type Mode = 'enforce' | 'dryRun';
export type OnError = 'deny' | 'skip';

export interface CExpr {
  compiled: CompiledExpr;
  /** Indices into the policy's variables this expression needs (transitively), ascending. */
  needs: number[];
  /** Where it came from, for load-time messages. */
  path: Path;
  expect: Expect;
  withDeployment: boolean;
  /**
   * Whether the value depends only on who is calling (principal, tenant, team fields and variables
   * that do): decided here, statically. Such values may be reused across requests of the same caller
   * (./caller-cache.ts). Anything reading request.*, deployment.*, mcp.*, now or the whole
   * `variables` map is not.
   */
  callerConstant: boolean;
  /** The expression's slot in its bundle's per-caller cache, or -1 (not caller-constant). Set by compileDocuments. */
  callerSlot: number;
}

export interface CVariable {
  name: string;
  expr: CExpr;
}

interface RuleBase {
  name: string;
  /** `<policy>/<rule>` */
  id: string;
  mode: Mode;
  onError: OnError;
  when?: CExpr;
}

export interface DenyLike {
  status: number;
  reason: string;
  message?: string;
  messageExpr?: CExpr;
}

export type CRule = RuleBase &
  (
    | ({ kind: 'deny' | 'require'; expr: CExpr } & DenyLike)
    | ({ kind: 'models'; allow?: string[]; deny?: string[] } & DenyLike)
    | { kind: 'route'; expr: CExpr; message: string }
    | { kind: 'redact'; detectors: string[]; action: RedactionAction; responses: boolean; custom: CustomDetectorSpec[] }
    | { kind: 'budget'; scope: Scope; scopeExpr?: CExpr; limit: BudgetLimit; window: BudgetWindow; enforcement: 'hard' | 'soft'; onStoreError: StoreFailMode }
    | { kind: 'rateLimit'; scope: Scope; scopeExpr?: CExpr; rpm?: number; tpm?: number; maxParallel?: number; onStoreError: StoreFailMode }
    | { kind: 'transform'; transform: TransformSpec }
    | { kind: 'label'; labels: [string, CExpr][] }
    | ({ kind: 'mcpTools'; allow?: string[]; deny?: string[] } & DenyLike)
    | ({ kind: 'mcpDeny' | 'mcpRequire'; expr: CExpr } & DenyLike)
    | { kind: 'mcpRedact'; detectors: string[]; action: RedactionAction; responses: boolean; custom: CustomDetectorSpec[] }
    | { kind: 'mcpRateLimit'; scope: Scope; scopeExpr?: CExpr; calls: number; window: BudgetWindow; perTool: boolean; onStoreError: StoreFailMode }
    | { kind: 'mcpLabel'; labels: [string, CExpr][] }
  );

export type Scope = 'key' | 'user' | 'team' | 'tenant' | 'model' | 'custom';

export interface CPolicy {
  name: string;
  file: string;
  mode: Mode;
  onError: OnError;
  matchConditions: { name: string; expr: CExpr }[];
  variables: CVariable[];
  rules: CRule[];
}

const RULE_KINDS: readonly RuleKind[] = ['deny', 'require', 'models', 'route', 'redact', 'budget', 'rateLimit', 'transform', 'label', ...MCP_RULE_KINDS];
const RULE_COMMON = ['name', 'mode', 'onError', 'when', 'description'];
const MODES = ['enforce', 'dryRun'] as const;
const ON_ERROR = ['deny', 'skip'] as const;
const SCOPES = ['key', 'user', 'team', 'tenant', 'model', 'custom'] as const;
const STORE_FAIL = ['failClosed', 'failOpen', 'local'] as const;
const ACTIONS = ['mask', 'hash', 'block', 'pseudonymize'] as const;
const REASON_RE = /^[a-z][a-z0-9_]{0,63}$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;

/** Redaction's built-in detector and group names (the default for CompileOptions.knownDetectors). */
export const DEFAULT_DETECTOR_NAMES: readonly string[] = [...BUILTIN_DETECTORS.map((d) => d.name), ...Object.keys(DETECTOR_GROUPS)];

interface Ctx {
  doc: ConfigDocument;
  errors: ConfigError[];
  opts: CompileOptions;
  /** Variable types declared so far in this policy, in order. */
  varTypes: Map<string, Ty>;
  varIndex: Map<string, number>;
  /** Transitive needs of each variable. */
  varNeeds: number[][];
  /** Whether each variable is caller-constant (CExpr.callerConstant). */
  varCaller: boolean[];
  exprs: CExpr[];
}

function exprError(at: At, message: string, offset: number | undefined): void {
  const src = typeof at.value === 'string' ? at.value : '';
  let where = '';
  if (offset !== undefined && src) {
    const before = src.slice(0, offset);
    const line = before.split('\n').length;
    const col = offset - before.lastIndexOf('\n');
    where = src.includes('\n') ? ` (at line ${line}, column ${col} of the expression)` : ` (at column ${col} of the expression)`;
  }
  at.fail(`${at.label}: ${message}${where}`);
}

/**
 * Fields that are the same for every request of one caller (a virtual key, or a JWT's claims) under
 * one config: the only roots a caller-constant expression may read. A whitelist: a new variable or
 * field is not cached until listed here.
 */
const CALLER_ROOTS: ReadonlySet<string> = new Set([
  'principal.keyId', 'principal.tenant', 'principal.team', 'principal.user', 'principal.groups', 'principal.claims', 'principal.authMethod', 'principal.*',
  'tenant.name', 'tenant.attributes', 'tenant.timeZone', 'tenant.*',
  'team.name', 'team.attributes', 'team.*',
]);

/** `variables.x` roots are allowed here when x is a declared variable (its own constancy is checked through `needs`). */
function readsOnlyCaller(roots: ReadonlySet<string>, varIndex: ReadonlyMap<string, number>): boolean {
  for (const r of roots) {
    if (CALLER_ROOTS.has(r)) continue;
    if (r.startsWith('variables.') && r !== 'variables.*' && varIndex.has(r.slice('variables.'.length))) continue;
    return false;
  }
  return true;
}

function compileAt(ctx: Ctx, at: At, expect: Expect, withDeployment = false): CExpr | undefined {
  if (at.missing) return at.fail(`${at.label} is required`);
  if (typeof at.value !== 'string') return at.fail(`${at.label} must be a CEL expression string`);
  const r = compileExpression(at.value, declaredVars(ctx.varTypes, withDeployment), expect);
  if (!r.ok) {
    exprError(at, r.message, r.offset);
    return undefined;
  }
  const needs = new Set<number>();
  for (const v of r.expr.variables) {
    const i = ctx.varIndex.get(v);
    if (i === undefined) continue;
    for (const n of ctx.varNeeds[i] ?? []) needs.add(n);
    needs.add(i);
  }
  const sortedNeeds = [...needs].sort((a, b) => a - b);
  const callerConstant = !withDeployment && readsOnlyCaller(r.expr.roots, ctx.varIndex) && sortedNeeds.every((i) => ctx.varCaller[i] === true);
  const e: CExpr = { compiled: r.expr, needs: sortedNeeds, path: at.path, expect, withDeployment, callerConstant, callerSlot: -1 };
  ctx.exprs.push(e);
  return e;
}

function readDenyLike(ctx: Ctx, at: At, defaults: { reason: string }): DenyLike {
  const status = at.key('status').number({ integer: true, min: 400, max: 599 }) ?? 403;
  const reason = at.key('reason').string({ pattern: REASON_RE, patternHint: 'must be a lower_snake_case code' }) ?? defaults.reason;
  const message = at.key('message').string();
  const mAt = at.key('messageExpression');
  const messageExpr = mAt.missing ? undefined : compileAt(ctx, mAt, 'string');
  if (message !== undefined && !mAt.missing) at.fail(`${at.label}: set message or messageExpression, not both`);
  return { status, reason, message, messageExpr };
}

function readScope(ctx: Ctx, at: At): { scope: Scope; scopeExpr?: CExpr } {
  const scope = at.key('scope').oneOf(SCOPES, { required: true }) ?? 'key';
  const sAt = at.key('scopeExpression');
  let scopeExpr: CExpr | undefined;
  if (scope === 'custom') scopeExpr = compileAt(ctx, sAt, 'string');
  else if (!sAt.missing) at.fail(`${at.label}: scopeExpression is only used with scope: custom`, [...at.path, 'scopeExpression']);
  return { scope, scopeExpr };
}

function known(opts: CompileOptions): readonly string[] {
  return opts.knownDetectors ?? DEFAULT_DETECTOR_NAMES;
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function readRule(ctx: Ctx, policy: { name: string; mode: Mode; onError: OnError }, at: At, seen: Set<string>, detectors: Map<string, CustomDetectorSpec>): CRule | undefined {
  if (at.missing || typeof at.value !== 'object' || Array.isArray(at.value)) return at.fail(`${at.label}: a rule must be a mapping`);
  const keys = Object.keys(at.value as object);
  const kinds = keys.filter((k) => (RULE_KINDS as readonly string[]).includes(k)) as RuleKind[];
  if (!at.object([...RULE_COMMON, ...RULE_KINDS], 'a rule')) return undefined;
  const name = at.key('name').string({ required: true, pattern: NAME_RE, patternHint: NAME_HINT });
  if (name !== undefined) {
    if (seen.has(name)) at.fail(`${at.label}: duplicate rule name "${name}"`, [...at.path, 'name']);
    seen.add(name);
  }
  if (kinds.length !== 1) {
    return at.fail(`${at.label}: a rule needs exactly one of ${RULE_KINDS.join(', ')}${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`);
  }
  const kind = kinds[0] as RuleKind;
  const base: RuleBase = {
    name: name ?? '?',
    id: `${policy.name}/${name ?? '?'}`,
    mode: at.key('mode').oneOf(MODES) ?? policy.mode,
    onError: at.key('onError').oneOf(ON_ERROR) ?? policy.onError,
  };
  at.key('description').string();
  const wAt = at.key('when');
  if (!wAt.missing) base.when = compileAt(ctx, wAt, 'bool');
  const b = at.key(kind);

  switch (kind) {
    case 'deny':
    case 'require': {
      if (!b.object(['expression', 'status', 'reason', 'message', 'messageExpression'], `a ${kind} rule`)) return undefined;
      const expr = compileAt(ctx, b.key('expression'), 'bool');
      const d = readDenyLike(ctx, b, { reason: 'policy_denied' });
      return expr && { ...base, kind, expr, ...d };
    }
    case 'models': {
      if (!b.object(['allow', 'deny', 'status', 'reason', 'message', 'messageExpression'], 'a models rule')) return undefined;
      const allow = b.key('allow').stringList({ nonEmpty: true });
      const deny = b.key('deny').stringList({ nonEmpty: true });
      if (b.key('allow').missing && b.key('deny').missing) return b.fail(`${b.label}: a models rule needs allow, deny or both`);
      const d = readDenyLike(ctx, b, { reason: 'model_not_allowed' });
      return { ...base, kind, allow, deny, ...d };
    }
    case 'route': {
      if (!b.object(['expression', 'message'], 'a route rule')) return undefined;
      const expr = compileAt(ctx, b.key('expression'), 'bool', true);
      const message = b.key('message').string({ required: true });
      return expr && message !== undefined ? { ...base, kind, expr, message } : undefined;
    }
    case 'redact': {
      if (!b.object(['detectors', 'action', 'responses'], 'a redact rule')) return undefined;
      const names = b.key('detectors').stringList({ required: true, nonEmpty: true }) ?? [];
      const action = b.key('action').oneOf(ACTIONS, { required: true }) ?? 'mask';
      const responses = b.key('responses').bool() ?? false;
      const custom: CustomDetectorSpec[] = [];
      names.forEach((n, i) => {
        const c = detectors.get(n);
        if (c) custom.push(c);
        else if (!known(ctx.opts).includes(n)) {
          b.fail(`${b.label}.detectors[${i}]: unknown detector "${n}"${suggest(n, known(ctx.opts))} (built-in: ${known(ctx.opts).join(', ')}; or declare it under spec.detectors)`, [...b.path, 'detectors', i]);
        }
      });
      return { ...base, kind, detectors: names, action, responses, custom };
    }
    case 'budget': {
      if (!b.object(['scope', 'scopeExpression', 'limit', 'window', 'timeZone', 'enforcement', 'onStoreError'], 'a budget rule')) return undefined;
      const s = readScope(ctx, b);
      const l = b.key('limit');
      const limit: BudgetLimit = {};
      if (l.object(['usd', 'inputTokens', 'outputTokens', 'totalTokens', 'requests'], 'a budget limit')) {
        const usd = l.key('usd').number({ positive: true });
        if (usd !== undefined) limit.usd = usd;
        for (const f of ['inputTokens', 'outputTokens', 'totalTokens', 'requests'] as const) {
          const v = l.key(f).number({ positive: true, integer: true });
          if (v !== undefined) limit[f] = v;
        }
        if (Object.keys(limit).length === 0) l.fail(`${l.label}: set at least one of usd, inputTokens, outputTokens, totalTokens, requests`);
      }
      const w = b.key('window');
      let window: BudgetWindow = { kind: 'day' };
      const tz = b.key('timeZone').string();
      if (tz !== undefined && !validTimeZone(tz)) b.fail(`${b.label}.timeZone: unknown time zone "${tz}"`, [...b.path, 'timeZone']);
      if (typeof w.value === 'string') {
        const k = w.oneOf(['minute', 'hour', 'day', 'month'] as const);
        if (k) window = tz ? { kind: k, timeZone: tz } : { kind: k };
      } else if (w.value && typeof w.value === 'object') {
        if (w.object(['rollingSeconds'], 'a rolling window')) {
          const secs = w.key('rollingSeconds').number({ required: true, integer: true, min: 1, max: 366 * 86400 });
          if (secs !== undefined) window = { kind: 'rolling', seconds: secs };
          if (tz !== undefined) b.fail(`${b.label}.timeZone: a rolling window has no time zone`, [...b.path, 'timeZone']);
        }
      } else {
        w.fail(`${w.label} is required: minute, hour, day, month or {rollingSeconds: N}`);
      }
      const enforcement = b.key('enforcement').oneOf(['hard', 'soft'] as const) ?? 'hard';
      const onStoreError = b.key('onStoreError').oneOf(STORE_FAIL) ?? 'failClosed';
      return { ...base, kind, ...s, limit, window, enforcement, onStoreError };
    }
    case 'rateLimit': {
      if (!b.object(['scope', 'scopeExpression', 'rpm', 'tpm', 'maxParallel', 'onStoreError'], 'a rateLimit rule')) return undefined;
      const s = readScope(ctx, b);
      const rpm = b.key('rpm').number({ positive: true, integer: true });
      const tpm = b.key('tpm').number({ positive: true, integer: true });
      const maxParallel = b.key('maxParallel').number({ positive: true, integer: true });
      if (rpm === undefined && tpm === undefined && maxParallel === undefined && b.key('rpm').missing && b.key('tpm').missing && b.key('maxParallel').missing) {
        b.fail(`${b.label}: set at least one of rpm, tpm, maxParallel`);
      }
      const onStoreError = b.key('onStoreError').oneOf(STORE_FAIL) ?? 'failClosed';
      return { ...base, kind, ...s, rpm, tpm, maxParallel, onStoreError };
    }
    case 'transform': {
      if (!b.object(['maxTokens', 'forceUser', 'prependSystem', 'set', 'remove'], 'a transform rule')) return undefined;
      const t: TransformSpec = {};
      const mt = b.key('maxTokens').number({ positive: true, integer: true });
      if (mt !== undefined) t.maxTokens = mt;
      const fu = b.key('forceUser').bool();
      if (fu !== undefined) t.forceUser = fu;
      const ps = b.key('prependSystem').string({ required: !b.key('prependSystem').missing });
      if (ps !== undefined) t.prependSystem = ps;
      if (!b.key('set').missing) {
        const set: Record<string, unknown> = {};
        for (const [k, v] of b.key('set').entries()) {
          if (PROTECTED_FIELDS.has(k)) v.fail(`${v.label}: a transform may not set "${k}"`);
          else set[k] = v.value;
        }
        t.set = set;
      }
      const remove = b.key('remove').stringList({ nonEmpty: true });
      if (remove) {
        remove.forEach((k, i) => {
          if (PROTECTED_FIELDS.has(k)) b.fail(`${b.label}.remove[${i}]: a transform may not remove "${k}"`, [...b.path, 'remove', i]);
        });
        t.remove = remove;
      }
      if (Object.keys(t).length === 0) b.fail(`${b.label}: a transform needs at least one of maxTokens, forceUser, prependSystem, set, remove`);
      return { ...base, kind, transform: t };
    }
    case 'mcpTools': {
      if (!b.object(['allow', 'deny', 'status', 'reason', 'message', 'messageExpression'], 'an mcpTools rule')) return undefined;
      const allow = b.key('allow').stringList({ nonEmpty: true });
      const deny = b.key('deny').stringList({ nonEmpty: true });
      if (b.key('allow').missing && b.key('deny').missing) return b.fail(`${b.label}: an mcpTools rule needs allow, deny or both`);
      const d = readDenyLike(ctx, b, { reason: 'tool_not_allowed' });
      return { ...base, kind, allow, deny, ...d };
    }
    case 'mcpDeny':
    case 'mcpRequire': {
      if (!b.object(['expression', 'status', 'reason', 'message', 'messageExpression'], `an ${kind} rule`)) return undefined;
      const expr = compileAt(ctx, b.key('expression'), 'bool');
      const d = readDenyLike(ctx, b, { reason: 'tool_call_denied' });
      return expr && { ...base, kind, expr, ...d };
    }
    case 'mcpRedact': {
      if (!b.object(['detectors', 'action', 'results'], 'an mcpRedact rule')) return undefined;
      const names = b.key('detectors').stringList({ required: true, nonEmpty: true }) ?? [];
      const action = b.key('action').oneOf(ACTIONS, { required: true }) ?? 'mask';
      if (action === 'pseudonymize') b.fail(`${b.label}.action: pseudonymize is not supported for MCP (results are not restored); use mask or hash`, [...b.path, 'action']);
      const responses = b.key('results').bool() ?? false;
      const custom: CustomDetectorSpec[] = [];
      names.forEach((n, i) => {
        const c = detectors.get(n);
        if (c) custom.push(c);
        else if (!known(ctx.opts).includes(n))
          b.fail(`${b.label}.detectors[${i}]: unknown detector "${n}"${suggest(n, known(ctx.opts))} (built-in: ${known(ctx.opts).join(', ')}; or declare it under spec.detectors)`, [...b.path, 'detectors', i]);
      });
      return { ...base, kind, detectors: names, action, responses, custom };
    }
    case 'mcpRateLimit': {
      if (!b.object(['scope', 'scopeExpression', 'calls', 'window', 'perTool', 'onStoreError'], 'an mcpRateLimit rule')) return undefined;
      const s = readScope(ctx, b);
      if (s.scope === 'model') b.fail(`${b.label}.scope: MCP calls have no model; use key, user, team, tenant or custom`, [...b.path, 'scope']);
      const calls = b.key('calls').number({ required: true, positive: true, integer: true }) ?? 1;
      const w = b.key('window');
      let window: BudgetWindow = { kind: 'minute' };
      if (typeof w.value === 'string') {
        const k = w.oneOf(['minute', 'hour', 'day', 'month'] as const);
        if (k) window = { kind: k };
      } else if (w.value && typeof w.value === 'object') {
        if (w.object(['rollingSeconds'], 'a rolling window')) {
          const secs = w.key('rollingSeconds').number({ required: true, integer: true, min: 1, max: 366 * 86400 });
          if (secs !== undefined) window = { kind: 'rolling', seconds: secs };
        }
      } else w.fail(`${w.label} is required: minute, hour, day, month or {rollingSeconds: N}`);
      const perTool = b.key('perTool').bool() ?? true;
      const onStoreError = b.key('onStoreError').oneOf(STORE_FAIL) ?? 'failClosed';
      return { ...base, kind, ...s, calls, window, perTool, onStoreError };
    }
    case 'mcpLabel':
    case 'label': {
      const labels: [string, CExpr][] = [];
      const entries = b.entries();
      if (entries.length === 0 && !b.missing) b.fail(`${b.label}: a label rule needs at least one key: expression`);
      for (const [k, v] of entries) {
        if (!LABEL_RE.test(k)) {
          v.fail(`${v.label}: label name "${k}" must be letters, digits and _ (Prometheus label rules)`);
          continue;
        }
        // Label values may be any scalar: ints, doubles and bools are converted (docs/policies.md).
        const e = compileAt(ctx, v, 'scalar');
        if (e) labels.push([k, e]);
      }
      return { ...base, kind, labels };
    }
  }
}

function readDetectors(doc: ConfigDocument, root: At, global: Map<string, string>, opts: CompileOptions): Map<string, CustomDetectorSpec> {
  const out = new Map<string, CustomDetectorSpec>();
  const items = root.key('detectors').list() ?? [];
  for (const d of items) {
    if (!d.object(['name', 'regex', 'keywords', 'caseInsensitive'], 'a detector')) continue;
    const name = d.key('name').string({ required: true, pattern: /^[a-z][a-z0-9_]{0,62}$/, patternHint: 'must be lower_snake_case' });
    if (name === undefined) continue;
    if (known(opts).includes(name)) {
      d.fail(`${d.label}: "${name}" is a built-in detector or group; pick another name`, [...d.path, 'name']);
      continue;
    }
    const prev = global.get(name);
    if (prev) d.fail(`${d.label}: detector "${name}" is already declared in policy "${prev}" (detector names are global)`, [...d.path, 'name']);
    global.set(name, doc.name);
    const spec: CustomDetectorSpec = { name };
    const regex = d.key('regex').string({ required: !d.key('regex').missing });
    const keywords = d.key('keywords').stringList({ nonEmpty: true });
    if ((regex === undefined) === (keywords === undefined)) {
      d.fail(`${d.label}: a detector needs exactly one of regex or keywords`);
      continue;
    }
    if (regex !== undefined) spec.regex = regex;
    if (keywords) spec.keywords = keywords;
    const ci = d.key('caseInsensitive').bool();
    if (ci !== undefined) spec.caseInsensitive = ci;
    // Redaction owns detector semantics (RE2 via re2js, size limits): ask it.
    const problems = customDetectorProblems(spec);
    for (const p of problems) d.fail(`${d.label}: ${p}`, [...d.path, regex !== undefined ? 'regex' : 'keywords']);
    if (problems.length === 0) out.set(name, spec);
  }
  return out;
}

function compilePolicy(doc: ConfigDocument, errors: ConfigError[], opts: CompileOptions, detectorNames: Map<string, string>): { policy: CPolicy; exprs: CExpr[] } | undefined {
  const root = new At(doc, errors, [], doc.spec);
  if (!NAME_RE.test(doc.name)) {
    errors.push(doc.error(`metadata.name ${JSON.stringify(doc.name)} ${NAME_HINT}`, ['metadata', 'name']));
  }
  if (!root.object(['description', 'mode', 'onError', 'matchConditions', 'variables', 'detectors', 'rules'], 'a Policy spec')) return undefined;
  root.key('description').string();
  const ctx: Ctx = { doc, errors, opts, varTypes: new Map(), varIndex: new Map(), varNeeds: [], varCaller: [], exprs: [] };
  const mode = root.key('mode').oneOf(MODES) ?? 'enforce';
  const onError = root.key('onError').oneOf(ON_ERROR) ?? 'deny';

  const variables: CVariable[] = [];
  for (const v of root.key('variables').list() ?? []) {
    if (!v.object(['name', 'expression'], 'a variable')) continue;
    const name = v.key('name').string({ required: true, pattern: /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/, patternHint: 'must be an identifier (letters, digits, _)' });
    if (name === undefined) continue;
    if (ctx.varIndex.has(name)) {
      v.fail(`${v.label}: duplicate variable "${name}"`, [...v.path, 'name']);
      continue;
    }
    const expr = compileAt(ctx, v.key('expression'), 'any');
    if (!expr) {
      // Declare it anyway (as dyn) so later expressions do not pile up "unknown variable" errors.
      ctx.varTypes.set(name, T.dyn);
      ctx.varIndex.set(name, variables.length);
      ctx.varNeeds.push([]);
      ctx.varCaller.push(false);
      variables.push({ name, expr: { compiled: { source: '', type: T.dyn, variables: [], roots: new Set(), native: false, run: () => new Error('not compiled') }, needs: [], path: v.path, expect: 'any', withDeployment: false, callerConstant: false, callerSlot: -1 } });
      continue;
    }
    ctx.varTypes.set(name, expr.compiled.type);
    ctx.varIndex.set(name, variables.length);
    ctx.varNeeds.push(expr.needs);
    ctx.varCaller.push(expr.callerConstant);
    variables.push({ name, expr });
  }

  const matchConditions: { name: string; expr: CExpr }[] = [];
  const mcNames = new Set<string>();
  for (const m of root.key('matchConditions').list() ?? []) {
    if (!m.object(['name', 'expression'], 'a match condition')) continue;
    const name = m.key('name').string({ required: true, pattern: NAME_RE, patternHint: NAME_HINT });
    if (name !== undefined && mcNames.has(name)) m.fail(`${m.label}: duplicate match condition "${name}"`, [...m.path, 'name']);
    if (name !== undefined) mcNames.add(name);
    const expr = compileAt(ctx, m.key('expression'), 'bool');
    if (name !== undefined && expr) matchConditions.push({ name, expr });
  }

  const detectors = readDetectors(doc, root, detectorNames, opts);
  const rules: CRule[] = [];
  const seen = new Set<string>();
  const ruleAts = root.key('rules').list({ required: true, nonEmpty: true }) ?? [];
  for (const r of ruleAts) {
    const rule = readRule(ctx, { name: doc.name, mode, onError }, r, seen, detectors);
    if (rule) rules.push(rule);
  }
  return { policy: { name: doc.name, file: doc.file, mode, onError, matchConditions, variables, rules }, exprs: ctx.exprs };
}

// Errors that no request can avoid: a resource limit hit by the expression's own shape (a comprehension
// over a huge range, a string or list built past the engine's maximum size), not by missing data.
const RESOURCE_ERROR = /iteration limit of \d+ exceeded|Invalid string length|Invalid array length|Maximum call stack size exceeded|Array buffer allocation failed/;

// Evaluates every expression of a policy against synthetic inputs: catches type errors the static
// check could not see through `dyn` values, non-bool/non-string results, and expressions that hit a
// resource limit on every sample (they would fail — deny or be skipped — on every request).
function sampleCheck(doc: ConfigDocument, errors: ConfigError[], policy: CPolicy, exprs: CExpr[], now: Date): void {
  const reported = new Set<CExpr>();
  const report = (e: CExpr, msg: string): void => {
    if (reported.has(e)) return;
    reported.add(e);
    errors.push(doc.error(`${new At(doc, errors, e.path, undefined).label}: ${msg}`, ['spec', ...e.path]));
  };
  /** Per expression: evaluations, and the resource-limit failures among them (with the first message). */
  const tally = new Map<CExpr, { runs: number; resourceFailures: number; message: string }>();
  const count = (e: CExpr, err: string | undefined): void => {
    const t = tally.get(e) ?? { runs: 0, resourceFailures: 0, message: '' };
    t.runs++;
    if (err !== undefined && RESOURCE_ERROR.test(err)) {
      t.resourceFailures++;
      t.message ||= err;
    }
    tally.set(e, t);
  };
  for (const input of sampleInputs(now)) {
    const act: Activation = baseActivation(input);
    const vars = new Map<string, unknown>();
    act.variables = vars;
    const failed = new Set<number>();
    policy.variables.forEach((v, i) => {
      if (v.expr.needs.some((n) => failed.has(n))) {
        failed.add(i);
        return;
      }
      const r = v.expr.compiled.run(act);
      const err = errorMessage(r);
      count(v.expr, err);
      if (err === undefined) vars.set(v.name, r);
      else {
        failed.add(i);
        if (isTypeError(err)) report(v.expr, `type error with sample input: ${describeTypeError(err)}`);
      }
    });
    const deployments = SAMPLE_DEPLOYMENTS.map(deploymentValue);
    for (const e of exprs) {
      if (e.needs.some((n) => failed.has(n))) continue;
      for (const d of e.withDeployment ? deployments : [undefined]) {
        if (d) act.deployment = d;
        const r = e.compiled.run(act);
        const err = errorMessage(r);
        count(e, err);
        if (err !== undefined) {
          if (isTypeError(err)) report(e, `type error with sample input: ${describeTypeError(err)}`);
        } else if (e.expect === 'bool' && typeof r !== 'boolean') {
          report(e, `expression must evaluate to bool, but it produced ${valueTypeName(r)}`);
        } else if ((e.expect === 'string' || e.expect === 'scalar') && asString(r) === undefined) {
          report(e, `expression must evaluate to a string, but it produced ${valueTypeName(r)}`);
        }
        delete act.deployment;
      }
    }
  }
  for (const [e, t] of tally) {
    if (t.runs > 0 && t.resourceFailures === t.runs)
      report(e, `fails on every sample input (${t.message}); it would fail on every request — reduce the work it does (smaller ranges, fewer nested macros, shorter strings)`);
  }
}

export interface CompiledPolicies {
  policies: CPolicy[];
  revision: string;
  /** Whether any expression reads request.body (it is converted per request only then). */
  usesBody: boolean;
  /** Number of caller-constant expressions (their CExpr.callerSlot are 0 … callerSlots-1). */
  callerSlots: number;
}

/** Compiles every `kind: Policy` document (others are ignored). Throws ConfigErrors listing every problem. */
export function compileDocuments(docs: ConfigDocument[], opts: CompileOptions = {}): CompiledPolicies {
  const errors: ConfigError[] = [];
  const policies: CPolicy[] = [];
  const names = new Map<string, ConfigDocument>();
  const detectorNames = new Map<string, string>();
  const hash = createHash('sha256');
  const now = (opts.now ?? (() => new Date()))();
  let usesBody = false;
  let callerSlots = 0;
  for (const doc of docs) {
    if (doc.kind !== 'Policy') continue;
    const prev = names.get(doc.name);
    if (prev) {
      const p = prev.pos(['metadata', 'name']);
      errors.push(doc.error(`duplicate policy name "${doc.name}" (first defined at ${p.file}:${p.line}:${p.col})`, ['metadata', 'name']));
      continue;
    }
    names.set(doc.name, doc);
    hash.update(JSON.stringify({ name: doc.name, spec: doc.spec }));
    hash.update('\n');
    const before = errors.length;
    const r = compilePolicy(doc, errors, opts, detectorNames);
    if (!r) continue;
    // Sample evaluation only makes sense once the policy compiled cleanly.
    // Skipped only when the caller already ran it on this exact bundle (config/reload.ts: the worker did).
    if (errors.length === before && opts.sampleCheck !== false) sampleCheck(doc, errors, r.policy, r.exprs, now);
    if (r.exprs.some((e) => e.compiled.roots.has('request.body') || e.compiled.roots.has('request.*'))) usesBody = true;
    for (const e of r.exprs) if (e.callerConstant) e.callerSlot = callerSlots++;
    policies.push(r.policy);
  }
  if (errors.length) throw new ConfigErrors(errors);
  return { policies, revision: hash.digest('hex').slice(0, 16), usesBody, callerSlots };
}
