// Evaluates compiled policies against one request and builds the Decision.
//
// Order (documented in docs/policies.md): for each policy in load order, its matchConditions;
// then phase 1, access rules (deny, require, models) of every matching policy; phase 2, route,
// redact, budget, rateLimit, label; phase 3, transforms. Checks see the body as the client sent
// it; transforms run only once nothing denied. The first enforce-mode denial stops evaluation.
import { newHexId } from '../security/random-ids.ts';
import { performance } from 'node:perf_hooks';
import type { BudgetLimit, BudgetSpec, BudgetWindow, RateLimitSpec } from '../budget/types.ts';
import type { CustomDetectorSpec, RedactionRule } from '../redaction/types.ts';
import { asString, errorMessage, type Activation } from './cel.ts';
import type { CExpr, CompiledPolicies, CPolicy, CRule, DenyLike } from './compile.ts';
import { candidateActivation, modelDependence, type ModelDependence } from './candidates.ts';
import { baseActivation, cachedDeploymentValue } from './context.ts';
import { CallerCache, cacheable, type CallerEntry } from './caller-cache.ts';
import { globMatch } from './glob.ts';
import { applyTransform } from './transforms.ts';
import { createMcpEvaluator } from './mcp.ts';
import { MCP_RULE_KINDS } from './types.ts';
import type {
  CompileOptions,
  Decision,
  DeploymentInfo,
  Denial,
  EvaluateOptions,
  ModelVerdict,
  PolicyBundle,
  PolicyInput,
  RouteCheckResult,
  RuleKind,
  RuleOutcome,
  RuleRecord,
} from './types.ts';

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/** Shared by policies without variables: nothing ever writes to it (no expression of theirs needs one). */
const NO_VARS: Map<string, unknown> = new Map();

/** Per-policy evaluation state: lazily evaluated variables. */
export class PolicyState {
  /** Values of the variables computed so far; the shared empty NO_VARS until the first one is. */
  vars: Map<string, unknown> = NO_VARS;
  // Allocated on first use, and only for a policy that has variables (most have none); a request whose
  // expressions need none of them (or find them all in the caller memo) allocates nothing.
  private varErrors: Map<number, string> | undefined;
  private done: boolean[] | undefined;

  /**
   * `seed`: a candidate pass takes the primary pass's values of variables that do not read the
   * model (`dependent[i]` false) instead of computing them again.
   * `memo`: this caller's values of caller-constant expressions (./caller-cache.ts), by callerSlot.
   */
  constructor(
    readonly policy: CPolicy,
    private readonly act: Activation,
    private readonly seed?: { state: PolicyState; dependent: readonly boolean[] },
    private readonly memo?: unknown[],
  ) {}

  /** `vars`, made this state's own Map before the first write (NO_VARS is never written). */
  private ownVars(): Map<string, unknown> {
    return this.vars === NO_VARS ? (this.vars = new Map()) : this.vars;
  }

  private varError(i: number): string | undefined {
    return this.varErrors?.get(i);
  }

  private setVarError(i: number, e: string): void {
    (this.varErrors ??= new Map()).set(i, e);
  }

  /** Takes the seed's value (or error) of a model-independent variable it already computed. */
  private adopt(i: number, name: string): boolean {
    const s = this.seed;
    if (!s || s.dependent[i] !== false || !s.state.done?.[i]) return false;
    const err = s.state.varError(i);
    if (err !== undefined) {
      this.setVarError(i, err);
      return true;
    }
    if (!s.state.vars.has(name)) return false;
    this.ownVars().set(name, s.state.vars.get(name));
    return true;
  }

  private ensure(needs: number[]): string | undefined {
    const n = this.policy.variables.length;
    if (n === 0) return undefined;
    const done = (this.done ??= new Array<boolean>(n).fill(false));
    for (const i of needs) {
      if (!done[i]) {
        done[i] = true;
        const v = this.policy.variables[i];
        if (!v) continue;
        if (this.adopt(i, v.name)) {
          const e = this.varError(i);
          if (e !== undefined) return e;
          continue;
        }
        const errs = this.varErrors;
        const failedDep = errs ? v.expr.needs.find((n) => errs.has(n)) : undefined;
        if (failedDep !== undefined) {
          this.setVarError(i, this.varError(failedDep) as string);
          continue;
        }
        // A caller-constant variable: this caller's earlier value (./caller-cache.ts).
        const memo = this.memo;
        const slot = v.expr.callerSlot;
        const hit = memo !== undefined && slot >= 0 ? memo[slot] : undefined;
        if (hit !== undefined) {
          this.ownVars().set(v.name, hit);
          continue;
        }
        this.act.variables = this.vars;
        const r = v.expr.compiled.run(this.act);
        const err = errorMessage(r);
        if (err === undefined) {
          this.ownVars().set(v.name, r);
          if (memo !== undefined && slot >= 0 && cacheable(r)) memo[slot] = r;
        } else this.setVarError(i, `variable '${v.name}': ${err}`);
      }
      const e = this.varError(i);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** The expression's value, or its error as an `EvalError` (one object per failure, none per success). */
  value(e: CExpr, deployment?: Map<string, unknown>): unknown {
    // Same caller, same bundle: a caller-constant expression has the value it had before (never an error).
    const memo = this.memo;
    const slot = e.callerSlot;
    if (memo !== undefined && slot >= 0) {
      const hit = memo[slot];
      if (hit !== undefined) return hit;
    }
    if (e.needs.length) {
      const err = this.ensure(e.needs);
      if (err !== undefined) return new EvalError(err);
    }
    this.act.variables = this.vars;
    if (deployment) this.act.deployment = deployment;
    const r = e.compiled.run(this.act);
    if (deployment) this.act.deployment = undefined;
    const err = errorMessage(r);
    if (err !== undefined) return new EvalError(err);
    if (memo !== undefined && slot >= 0 && cacheable(r)) memo[slot] = r;
    return r;
  }

  /**
   * `true`/`false`, or the error message. Only `=== true` allows: errors are truthy objects and
   * must never pass as true. (No result object per call: this runs for every rule of every request.)
   */
  test(e: CExpr, deployment?: Map<string, unknown>): boolean | string {
    const v = this.value(e, deployment);
    if (v instanceof EvalError) return v.message;
    if (typeof v !== 'boolean') return `expected bool, got ${typeof v}`;
    return v === true;
  }

  run(e: CExpr, deployment?: Map<string, unknown>): Result<unknown> {
    const v = this.value(e, deployment);
    return v instanceof EvalError ? { ok: false, error: v.message } : { ok: true, value: v };
  }

  bool(e: CExpr, deployment?: Map<string, unknown>): Result<boolean> {
    const r = this.test(e, deployment);
    return typeof r === 'string' ? { ok: false, error: r } : { ok: true, value: r };
  }

  /** A string-valued result (scalars converted), or the error. */
  text(e: CExpr): string | EvalError {
    const v = this.value(e);
    if (v instanceof EvalError) return v;
    const s = asString(v);
    return s === undefined ? new EvalError('expected a string result') : s;
  }

  string(e: CExpr): Result<string> {
    const r = this.run(e);
    if (!r.ok) return r;
    const s = asString(r.value);
    return s === undefined ? { ok: false, error: 'expected a string result' } : { ok: true, value: s };
  }
}

/** A failed evaluation inside PolicyState (never a CEL value: expressions cannot produce it). */
class EvalError {
  constructor(readonly message: string) {}
}

type RouteRule = Extract<CRule, { kind: 'route' }>;

interface ActiveRoute {
  state: PolicyState;
  rule: RouteRule;
}

/**
 * Outcomes of route rules whose expression reads nothing but `deployment` fields (no request, caller,
 * clock or variable), by rule and DeploymentInfo: such an outcome is the same on every request, and
 * the router asks for it on every request for every deployment of the model. One per bundle (a
 * reload makes a new one); DeploymentInfo objects are never mutated (./context.ts
 * cachedDeploymentValue relies on that too) and a WeakMap lets a reload's old ones go. Only
 * true/false are kept: an evaluation error is evaluated (and recorded) again every time.
 */
type RouteMemo = ReadonlyMap<RouteRule, WeakMap<DeploymentInfo, boolean>>;

/** Whether `e` depends on the deployment alone (every root it reads is a `deployment` field, no variables). */
function readsOnlyDeployment(e: CExpr): boolean {
  if (e.needs.length) return false;
  for (const r of e.compiled.roots) if (!r.startsWith('deployment.')) return false;
  return true;
}

function routeMemoOf(policies: readonly CPolicy[]): RouteMemo {
  const m = new Map<RouteRule, WeakMap<DeploymentInfo, boolean>>();
  for (const p of policies) for (const r of p.rules) if (r.kind === 'route' && readsOnlyDeployment(r.expr)) m.set(r, new WeakMap());
  return m;
}

/** A bundle built with `routeCache: false`. */
const NO_ROUTE_MEMO: RouteMemo = new Map();

const ACCESS_KINDS = new Set<RuleKind>(['deny', 'require', 'models']);
/** Judged only for MCP traffic (./mcp.ts). */
const MCP_KINDS = new Set<RuleKind>(MCP_RULE_KINDS);

/** A budget rule's limit and window as every BudgetSpec of it carries them: built once, frozen, shared. */
interface SharedBudget {
  limit: Readonly<BudgetLimit>;
  window: Readonly<BudgetWindow>;
}

/** A policy's rules by evaluation phase, and what their outcomes share (computed once per compiled policy). */
interface Phases {
  access: CRule[];
  phase2: CRule[];
  /**
   * By index in `phase2`: the parts of the rule's outcome that carry no request data (a redact rule's
   * RedactionRule, a budget rule's limit and window), frozen and shared by every decision rather than
   * copied per request. Nothing downstream mutates them (budget and redaction only read specs).
   */
  shared: (RedactionRule | SharedBudget | undefined)[];
  transforms: Extract<CRule, { kind: 'transform' }>[];
  /** By index in matchConditions: the name its records carry (`matchConditions/<name>`), not joined per request. */
  mcNames: string[];
}

const phaseCache = new WeakMap<CPolicy, Phases>();

function phasesOf(p: CPolicy): Phases {
  let ph = phaseCache.get(p);
  if (!ph) {
    ph = { access: [], phase2: [], shared: [], transforms: [], mcNames: p.matchConditions.map((mc) => `matchConditions/${mc.name}`) };
    for (const rule of p.rules) {
      if (ACCESS_KINDS.has(rule.kind)) ph.access.push(rule);
      else if (rule.kind === 'transform') ph.transforms.push(rule);
      else if (!MCP_KINDS.has(rule.kind)) {
        ph.phase2.push(rule);
        ph.shared.push(sharedParts(rule));
      }
    }
    phaseCache.set(p, ph);
  }
  return ph;
}

function sharedParts(rule: CRule): RedactionRule | SharedBudget | undefined {
  // Same keys in the same order as the objects built per request before (lineage serializes them).
  if (rule.kind === 'redact') return Object.freeze({ source: rule.id, detectors: rule.detectors, action: rule.action, responses: rule.responses });
  if (rule.kind === 'budget') return { limit: Object.freeze({ ...rule.limit }), window: Object.freeze({ ...rule.window }) };
  return undefined;
}

/** What a rule's `when` guard says (Recorder.guard). */
const GO = 0;
const SKIP = 1;
const STOP = 2;

/**
 * Records rule outcomes of one pass (one object per pass rather than a closure per helper per
 * request). One clock reading per recorded rule: a rule's duration is the time since the previous record.
 */
class Recorder {
  private last = performance.now();

  constructor(
    private readonly d: DecisionImpl,
    private readonly reportError: (r: RuleRecord) => void,
  ) {}

  private lap(): number {
    const t = performance.now();
    const dur = Math.round((t - this.last) * 10_000) / 10;
    this.last = t;
    return dur;
  }

  record(state: PolicyState, rule: string, kind: RuleRecord['kind'], outcome: RuleOutcome, message?: string): void {
    const policy = state.policy.name;
    const durationUs = this.lap();
    // Built whole (same keys, same order as adding `message` afterwards): no map transition per record.
    const rec: RuleRecord = message === undefined ? { policy, rule, kind, outcome, durationUs } : { policy, rule, kind, outcome, durationUs, message };
    this.d.rules.push(rec);
    if (outcome === 'error') this.reportError(rec);
  }

  /** Applies a denial in the rule's mode. Returns true when evaluation must stop. */
  deny(ruleId: string, mode: 'enforce' | 'dryRun', denial: Omit<Denial, 'rule'>): boolean {
    if (mode === 'dryRun') {
      this.d.dryRunDenials.push({ rule: ruleId, message: denial.message });
      return false;
    }
    this.d.denied = { ...denial, rule: ruleId };
    return true;
  }

  /** Evaluation error handling: onError deny fails closed (in the rule's mode); skip continues. */
  failed(state: PolicyState, ruleName: string, ruleId: string, kind: RuleRecord['kind'], mode: 'enforce' | 'dryRun', onError: 'deny' | 'skip', error: string): boolean {
    this.record(state, ruleName, kind, 'error', error);
    if (onError === 'skip') return false;
    return this.deny(ruleId, mode, {
      status: 403,
      reason: 'policy_error',
      message: `request denied: policy "${state.policy.name}" rule "${ruleName}" could not be evaluated`,
    });
  }

  /** The rule's `when` guard: GO; SKIP when not matched or failed; STOP when the failure ends evaluation. */
  guard(state: PolicyState, rule: CRule): number {
    if (!rule.when) return GO;
    const r = state.test(rule.when);
    if (typeof r === 'string') return this.failed(state, rule.name, rule.id, rule.kind, rule.mode, rule.onError, `when: ${r}`) ? STOP : SKIP;
    if (!r) {
      this.record(state, rule.name, rule.kind, 'not-matched');
      return SKIP;
    }
    return GO;
  }
}

function denyMessage(state: PolicyState, rule: CRule & DenyLike, fallback: string): string {
  if (rule.messageExpr) {
    const m = state.string(rule.messageExpr);
    if (m.ok && m.value !== '') return m.value;
  }
  return rule.message ?? fallback;
}

/** How one evaluation pass runs (see runPass). */
interface Pass {
  listing: boolean;
  /** Whether a policy applies without evaluating its matchConditions; undefined → evaluate them. */
  applies?: (p: CPolicy) => boolean | undefined;
  /** Candidate pass: only these rules are judged. */
  only?: ReadonlySet<CRule>;
  /** Candidate pass: the primary pass's states, whose model-independent variables are reused. */
  seeds?: ReadonlyMap<CPolicy, PolicyState>;
  /** The caller's cache entry: values of caller-constant expressions (PolicyState memo) and scope keys. */
  caller?: CallerEntry;
}

/** What a pass leaves behind for candidate passes. */
interface PassOut {
  /** Every policy's state (variables computed so far). */
  states: Map<CPolicy, PolicyState>;
  /** Policies whose matchConditions held. */
  active: Set<CPolicy>;
}

/** A decision's id: 128 random bits as hex (security/random-ids.ts pools the random bytes). */
export const decisionId = newHexId;

class DecisionImpl implements Decision {
  readonly id = decisionId();
  denied?: Denial;
  readonly rules: RuleRecord[] = [];
  readonly redactions: RedactionRule[] = [];
  readonly customDetectors: CustomDetectorSpec[] = [];
  readonly budgets: BudgetSpec[] = [];
  readonly rateLimits: RateLimitSpec[] = [];
  readonly transforms: string[] = [];
  readonly labels: Record<string, string> = {};
  readonly dryRunDenials: { rule: string; message: string }[] = [];
  /** Route rules in force for this request. */
  routes: ActiveRoute[] = [];
  // Created on first use: most decisions never judge another model or record a route would-deny.
  private routeDryRunSeenSet: Set<string> | undefined;
  /** The model this decision was made for (the request's `model`) and its canonical name. */
  primaryModel = '';
  primaryCanonical = '';
  /** Set by a `candidates: true` evaluation: judges another candidate model of the request. */
  judge: ((model: string, canonical: string) => ModelVerdict) | undefined;
  private verdictMap: Map<string, ModelVerdict> | undefined;

  private get routeDryRunSeen(): Set<string> {
    return (this.routeDryRunSeenSet ??= new Set());
  }

  private get verdicts(): Map<string, ModelVerdict> {
    return (this.verdictMap ??= new Map());
  }

  constructor(
    readonly revision: string,
    private readonly onError: (r: RuleRecord) => void,
    private readonly routeMemo: RouteMemo,
  ) {}

  routeCheck(d: DeploymentInfo): RouteCheckResult {
    return this.checkRoutes(this.routes, d);
  }

  forModel(model: string, canonicalModel?: string): ModelVerdict {
    const canonical = canonicalModel || model;
    if (model === this.primaryModel && canonical === this.primaryCanonical) {
      return { model, denied: this.denied, budgets: this.budgets, rateLimits: this.rateLimits, routeCheck: (d) => this.routeCheck(d) };
    }
    const key = `${model}\u0000${canonical}`;
    let v = this.verdicts.get(key);
    if (!v) {
      // Fail closed: a caller that did not ask for candidates cannot route to another model.
      v = this.judge?.(model, canonical) ?? {
        model,
        denied: { status: 403, reason: 'policy_error', message: `model '${model}' was not evaluated for this request`, rule: '' },
        budgets: [],
        rateLimits: [],
        routeCheck: () => ({ ok: false, rule: '', message: 'not evaluated' }),
      };
      this.verdicts.set(key, v);
    }
    return v;
  }

  /**
   * The verdict for `model` from a candidate pass (`pass`: only model-dependent rules, evaluated
   * with the candidate's activation) combined with this decision's model-independent outcome.
   * Errors and dry-run would-denies of the pass are recorded here, naming the model.
   */
  verdictFrom(model: string, pass: DecisionImpl, deps: ModelDependence): ModelVerdict {
    for (const r of pass.rules) if (r.outcome === 'error') this.rules.push({ ...r, message: `model '${model}': ${r.message ?? ''}` });
    for (const x of pass.dryRunDenials) {
      const key = `${x.rule}\u0000model\u0000${model}`;
      if (this.routeDryRunSeen.has(key)) continue;
      this.routeDryRunSeen.add(key);
      this.dryRunDenials.push({ rule: x.rule, message: `${x.message} (model '${model}')` });
    }
    let denied = pass.denied;
    if (!denied) {
      // The body was redacted and transformed once, for the primary: a candidate needing more cannot serve it.
      const had = new Set(this.redactions.map((r) => r.source));
      const redact = pass.redactions.find((r) => !had.has(r.source))?.source;
      const transform = pass.transforms.find((t) => !this.transforms.includes(t));
      const rule = redact ?? transform;
      if (rule !== undefined) {
        denied = {
          status: 403,
          reason: 'fallback_not_allowed',
          message: `rule "${rule}" applies to model '${model}' but not to the model this request named, so '${model}' cannot serve it`,
          rule,
        };
      }
    }
    const routes = [...this.routes.filter((r) => !deps.ruleIds.has(r.rule.id)), ...pass.routes];
    return {
      model,
      denied,
      budgets: [...this.budgets.filter((b) => !deps.ruleIds.has(b.name)), ...pass.budgets],
      rateLimits: [...this.rateLimits.filter((l) => !deps.ruleIds.has(l.name)), ...pass.rateLimits],
      routeCheck: (d) => this.checkRoutes(routes, d),
    };
  }

  // Enforced rules first; dry-run rules only for deployments that still pass, so a would-deny
  // means "enforcing this rule would change the outcome".
  private checkRoutes(routes: readonly ActiveRoute[], d: DeploymentInfo): RouteCheckResult {
    if (routes.length === 0) return ROUTE_OK;
    for (const { state, rule } of routes) {
      if (rule.mode === 'dryRun') continue;
      const fail = this.checkRoute(state, rule, d);
      if (fail !== undefined) return { ok: false, rule: rule.id, message: fail };
    }
    for (const { state, rule } of routes) {
      if (rule.mode !== 'dryRun') continue;
      // A remembered pass (RouteMemo) needs no clock reading: nothing is recorded for it.
      if (this.routeMemo.get(rule)?.get(d) === true) continue;
      const t0 = performance.now();
      const fail = this.checkRoute(state, rule, d);
      if (fail === undefined) continue;
      const key = `${rule.id}\u0000${d.id}`;
      if (this.routeDryRunSeen.has(key)) continue;
      this.routeDryRunSeen.add(key);
      this.dryRunDenials.push({ rule: rule.id, message: `${fail} (deployment ${d.id})` });
      this.rules.push({ policy: state.policy.name, rule: rule.name, kind: 'route', outcome: 'would-deny', durationUs: us(t0), message: `deployment ${d.id}: ${fail}` });
    }
    return ROUTE_OK;
  }

  /** The rule's message when `d` violates it (or its evaluation failed closed); undefined when it passes. */
  private checkRoute(state: PolicyState, rule: RouteRule, d: DeploymentInfo): string | undefined {
    const memo = this.routeMemo.get(rule);
    if (memo !== undefined) {
      const hit = memo.get(d);
      if (hit !== undefined) return hit ? undefined : rule.message;
    }
    const t0 = performance.now();
    // test(), not bool(): no result object per deployment and rule.
    const r = state.test(rule.expr, cachedDeploymentValue(d));
    if (typeof r === 'boolean') {
      memo?.set(d, r);
      return r ? undefined : rule.message;
    }
    const rec: RuleRecord = { policy: state.policy.name, rule: rule.name, kind: 'route', outcome: 'error', durationUs: us(t0), message: `deployment ${d.id}: ${r}` };
    this.rules.push(rec);
    this.onError(rec);
    return rule.onError === 'skip' ? undefined : `${rule.message} (route rule could not be evaluated)`;
  }

  toJSON(): Omit<Decision, 'routeCheck' | 'forModel'> {
    const { id, revision, denied, rules, redactions, customDetectors, budgets, rateLimits, transforms, labels, dryRunDenials } = this;
    return { id, revision, denied, rules, redactions, customDetectors, budgets, rateLimits, transforms, labels, dryRunDenials };
  }
}

/** A passing route check: one shared (frozen) result instead of `{ ok: true }` per deployment. */
const ROUTE_OK: RouteCheckResult = Object.freeze({ ok: true });

function us(t0: number): number {
  return Math.round((performance.now() - t0) * 1000 * 10) / 10;
}

/** Why a caller-scoped key cannot be built (no closure per call). */
function missingScope(rule: Extract<CRule, { kind: 'budget' | 'rateLimit' }>, what: string): EvalError {
  return new EvalError(`scope ${rule.scope}: the principal has no ${what}`);
}

/**
 * The budget / rate-limit bucket key, or why it cannot be resolved (no closure or result object per call).
 * With a caller cache entry (`caller`: equal principal fields by construction), a caller-scoped key is
 * built once per caller and the same string is returned after that (no concatenation per request).
 */
function scopeKey(rule: Extract<CRule, { kind: 'budget' | 'rateLimit' }>, state: PolicyState, input: PolicyInput, caller: CallerEntry | undefined): string | EvalError {
  const p = input.principal;
  switch (rule.scope) {
    case 'key':
      if (!p.keyId) return missingScope(rule, 'virtual key id');
      if (caller === undefined) return `key:${p.keyId}`;
      return (caller.keyScope ??= `key:${p.keyId}`);
    case 'user':
      if (!p.user) return missingScope(rule, 'user');
      if (caller === undefined) return `user:${p.tenant}/${p.user}`;
      return (caller.userScope ??= `user:${p.tenant}/${p.user}`);
    case 'team':
      if (!p.team) return missingScope(rule, 'team');
      if (caller === undefined) return `team:${p.tenant}/${p.team}`;
      return (caller.teamScope ??= `team:${p.tenant}/${p.team}`);
    case 'tenant':
      if (!p.tenant) return missingScope(rule, 'tenant');
      if (caller === undefined) return `tenant:${p.tenant}`;
      return (caller.tenantScope ??= `tenant:${p.tenant}`);
    case 'model': {
      // Aliases share their model's bucket.
      const m = input.request.canonicalModel || input.request.model;
      return m ? `model:${m}` : missingScope(rule, 'model');
    }
    case 'custom': {
      if (!rule.scopeExpr) return new EvalError('scope custom without scopeExpression');
      const v = state.text(rule.scopeExpr);
      if (typeof v !== 'string') return v;
      return v === '' ? new EvalError('scopeExpression produced an empty string') : `custom:${v}`;
    }
  }
}

/**
 * `names`: the requested name and, when it is an alias, the model's canonical name. Denied when any
 * name matches a deny glob (an alias must not bypass a deny written against the model's name);
 * allowed by an allow list when any name matches it.
 */
function modelAllowed(rule: Extract<CRule, { kind: 'models' }>, names: readonly string[]): boolean {
  if (rule.deny?.some((g) => names.some((n) => globMatch(n, g)))) return false;
  if (rule.allow && !rule.allow.some((g) => names.some((n) => globMatch(n, g)))) return false;
  return true;
}

function modelNames(r: PolicyInput['request']): string[] {
  const c = r.canonicalModel;
  return c && c !== r.model ? [r.model, c] : [r.model];
}

/** Request fields that only a real request has: a model listing cannot be judged on them. */
const CONTENT_ROOTS = ['request.messages', 'request.body', 'request.params', 'request.tokenEstimate', 'request.size', 'request.stream', 'request.*'];

/** Access rules whose expression or `when` reads request content, directly or through variables. */
function rulesReadingContent(policies: readonly CPolicy[]): Set<CRule> {
  const out = new Set<CRule>();
  const reads = (p: CPolicy, e: CExpr | undefined): boolean => {
    if (!e) return false;
    const exprs = [e, ...e.needs.map((i) => p.variables[i]?.expr).filter((x): x is CExpr => x !== undefined)];
    return exprs.some((x) => CONTENT_ROOTS.some((r) => x.compiled.roots.has(r)));
  };
  for (const p of policies)
    for (const rule of p.rules) {
      if (!ACCESS_KINDS.has(rule.kind)) continue;
      if (reads(p, rule.when) || ('expr' in rule && reads(p, rule.expr))) out.add(rule);
    }
  return out;
}

export function createBundle(compiled: CompiledPolicies, opts: CompileOptions = {}): PolicyBundle {
  const { policies, revision, usesBody } = compiled;
  // undefined for a bundle without caller-constant expressions; opts.callerCache false turns it off (tests).
  const callers = compiled.callerSlots > 0 && opts.callerCache !== false ? new CallerCache(compiled.callerSlots) : undefined;
  const onEvalError = opts.onEvalError;
  const reportError = (r: RuleRecord): void => {
    if (!onEvalError) return;
    try {
      onEvalError({ policy: r.policy, rule: r.rule, kind: r.kind, message: r.message ?? '' });
    } catch {
      // A metrics hook must never break a decision.
    }
  };

  const clock = opts.now ?? (() => new Date());
  const contentRules = rulesReadingContent(policies);
  // The policies an LLM request can judge, and their rules by phase, listed once per bundle rather than
  // filtered per request. A policy with nothing to judge for LLM traffic (e.g. only mcp* rules) records nothing.
  const judged: CPolicy[] = [];
  const judgedPhases: Phases[] = [];
  for (const policy of policies) {
    const ph = phasesOf(policy);
    if (!policy.matchConditions.length && !ph.access.length && !ph.phase2.length && !ph.transforms.length) continue;
    judged.push(policy);
    judgedPhases.push(ph);
  }
  const deps = modelDependence(policies);
  const routeMemo = opts.routeCache === false ? NO_ROUTE_MEMO : routeMemoOf(policies);

  // Never throws: an unexpected failure (a bug, a hostile value) denies the request.
  function evaluate(input: PolicyInput, eo: EvaluateOptions = {}): Decision {
    if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) input = { ...input, now: clock() };
    try {
      return evaluateUnsafe(input, eo);
    } catch (e) {
      const d = new DecisionImpl(revision, reportError, routeMemo);
      failClosed(d, 'deny', e, 'request denied', reportError);
      return d;
    }
  }

  function evaluateUnsafe(input: PolicyInput, eo: EvaluateOptions): Decision {
    const d = new DecisionImpl(revision, reportError, routeMemo);
    d.primaryModel = input.request.model;
    d.primaryCanonical = input.request.canonicalModel || input.request.model;
    const act = baseActivation(input, usesBody);
    const caller = callers?.entryFor(input);
    const candidates = eo.candidates === true;
    const out: PassOut | undefined = candidates ? { states: new Map(), active: new Set() } : undefined;
    runPass(d, input, act, { listing: eo.listing === true, caller }, out);
    if (out && !d.denied) d.judge = (model, canonical) => judge(d, input, act, out, model, canonical, caller);
    return d;
  }

  /** One candidate model: the model-dependent rules, evaluated as if the request had named it. */
  function judge(d: DecisionImpl, input: PolicyInput, act: Activation, primary: PassOut, model: string, canonical: string, caller: CallerEntry | undefined): ModelVerdict {
    const pass = new DecisionImpl(revision, reportError, routeMemo);
    try {
      const request = { ...input.request, model, canonicalModel: canonical === model ? undefined : canonical };
      const how: Pass = {
        listing: false,
        applies: (p) => (deps.policies.has(p) ? undefined : primary.active.has(p)),
        only: deps.rules,
        seeds: primary.states,
        caller,
      };
      runPass(pass, { ...input, request }, candidateActivation(act, model, canonical), how, undefined);
    } catch (e) {
      const rec: RuleRecord = { policy: '', rule: '', kind: 'deny', outcome: 'error', durationUs: 0, message: `policy evaluation failed: ${e instanceof Error ? e.message : String(e)}` };
      pass.rules.push(rec);
      reportError(rec);
      pass.denied = { status: 403, reason: 'policy_error', message: 'request denied: policy evaluation failed', rule: '' };
    }
    return d.verdictFrom(model, pass, deps);
  }

  /**
   * Evaluates into `d`. The primary pass judges every rule and applies transforms; a candidate
   * pass (`only` set) judges only those rules, reuses the primary's policy applicability where
   * `applies` says so, and records transforms without applying them. `out` (only when candidates
   * may be judged later) receives what a candidate pass reuses.
   */
  function runPass(d: DecisionImpl, input: PolicyInput, act: Activation, pass: Pass, out: PassOut | undefined): void {
    const listing = pass.listing;
    const only = pass.only;
    const candidate = only !== undefined;
    const active: PolicyState[] = [];
    /** `activePhases[i]`: the rules by phase of `active[i]`'s policy. */
    const activePhases: Phases[] = [];
    const x = new Recorder(d, reportError);
    const caller = pass.caller;
    const memo = caller?.values;

    // matchConditions decide which policies apply.
    for (let pi = 0; pi < judged.length; pi++) {
      const policy = judged[pi] as CPolicy;
      if (candidate && !deps.touched.has(policy)) continue;
      const ph = judgedPhases[pi] as Phases;
      const seed = pass.seeds?.get(policy);
      const state = new PolicyState(policy, act, seed ? { state: seed, dependent: deps.variables.get(policy) ?? [] } : undefined, memo);
      out?.states.set(policy, state);
      const known = pass.applies?.(policy);
      if (known !== undefined) {
        if (known) {
          active.push(state);
          activePhases.push(ph);
        }
        continue;
      }
      let applies = true;
      const mcs = policy.matchConditions;
      for (let m = 0; m < mcs.length; m++) {
        const r = state.test((mcs[m] as CPolicy['matchConditions'][number]).expr);
        if (typeof r === 'string') {
          applies = false;
          const rname = ph.mcNames[m] as string;
          if (x.failed(state, rname, `${policy.name}/${rname}`, 'matchCondition', policy.mode, policy.onError, r)) return;
          break;
        }
        if (!r) {
          x.record(state, ph.mcNames[m] as string, 'matchCondition', 'not-matched');
          applies = false;
          break;
        }
      }
      if (applies) {
        active.push(state);
        activePhases.push(ph);
        out?.active.add(policy);
      }
    }

    // Phase 1: access rules.
    for (let i = 0; i < active.length; i++) {
      const state = active[i] as PolicyState;
      for (const rule of (activePhases[i] as Phases).access) {
        if (only && !only.has(rule)) continue;
        if (listing && contentRules.has(rule)) {
          x.record(state, rule.name, rule.kind, 'skipped', 'reads request content; a model listing has none');
          continue;
        }
        const g = x.guard(state, rule);
        if (g === STOP) return;
        if (g !== GO) continue;
        let violated: boolean;
        if (rule.kind === 'models') {
          violated = !modelAllowed(rule, modelNames(input.request));
        } else if (rule.kind === 'deny' || rule.kind === 'require') {
          const r = state.test(rule.expr);
          if (typeof r === 'string') {
            if (x.failed(state, rule.name, rule.id, rule.kind, rule.mode, rule.onError, r)) return;
            continue;
          }
          violated = rule.kind === 'deny' ? r : !r;
        } else continue;
        if (!violated) {
          x.record(state, rule.name, rule.kind, 'allow');
          continue;
        }
        // Messages are built only for a rule that fires.
        const fallback =
          rule.kind === 'models'
            ? `model "${input.request.model}" is not allowed by policy "${state.policy.name}"`
            : `request denied by policy "${state.policy.name}" (rule "${rule.name}")`;
        const message = denyMessage(state, rule, fallback);
        x.record(state, rule.name, rule.kind, rule.mode === 'dryRun' ? 'would-deny' : 'deny', message);
        if (x.deny(rule.id, rule.mode, { status: rule.status, reason: rule.reason, message })) return;
      }
    }

    // Phase 2: route constraints, redaction, budgets, rate limits, labels.
    for (let i = 0; i < active.length; i++) {
      const state = active[i] as PolicyState;
      const ph = activePhases[i] as Phases;
      for (let j = 0; j < ph.phase2.length; j++) {
        const rule = ph.phase2[j] as CRule;
        if (only && !only.has(rule)) continue;
        const g = x.guard(state, rule);
        if (g === STOP) return;
        if (g !== GO) continue;
        const dry = rule.mode === 'dryRun';
        switch (rule.kind) {
          case 'route':
            d.routes.push({ state, rule });
            x.record(state, rule.name, rule.kind, 'applied', rule.message);
            break;
          case 'redact':
            if (dry) {
              x.record(state, rule.name, rule.kind, 'skipped', `dry run: would ${rule.action} ${rule.detectors.join(', ')}`);
              break;
            }
            d.redactions.push(ph.shared[j] as RedactionRule);
            for (const c of rule.custom) if (!d.customDetectors.some((y) => y.name === c.name)) d.customDetectors.push(c);
            x.record(state, rule.name, rule.kind, 'applied');
            break;
          case 'budget': {
            const k = scopeKey(rule, state, input, caller);
            if (typeof k !== 'string') {
              if (x.failed(state, rule.name, rule.id, rule.kind, rule.mode, rule.onError, k.message)) return;
              break;
            }
            // A dry-run budget is tracked and reported but never blocks.
            const shared = ph.shared[j] as SharedBudget;
            d.budgets.push({
              name: rule.id,
              scope: rule.scope,
              scopeKey: k,
              limit: shared.limit,
              window: shared.window,
              enforcement: dry ? 'soft' : rule.enforcement,
              onStoreError: rule.onStoreError,
            });
            x.record(state, rule.name, rule.kind, 'applied', dry ? `${k} (dry run: soft)` : k);
            break;
          }
          case 'rateLimit': {
            const k = scopeKey(rule, state, input, caller);
            if (typeof k !== 'string') {
              if (x.failed(state, rule.name, rule.id, rule.kind, rule.mode, rule.onError, k.message)) return;
              break;
            }
            if (dry) {
              x.record(state, rule.name, rule.kind, 'skipped', `dry run: ${k}`);
              break;
            }
            const spec: RateLimitSpec = { name: rule.id, scopeKey: k, onStoreError: rule.onStoreError };
            if (rule.rpm !== undefined) spec.rpm = rule.rpm;
            if (rule.tpm !== undefined) spec.tpm = rule.tpm;
            if (rule.maxParallel !== undefined) spec.maxParallel = rule.maxParallel;
            d.rateLimits.push(spec);
            x.record(state, rule.name, rule.kind, 'applied', k);
            break;
          }
          case 'label': {
            let stop = false;
            let errored = false;
            for (const [key, e] of rule.labels) {
              const v = state.text(e);
              if (typeof v === 'string') d.labels[key] = v;
              else {
                errored = true;
                stop = x.failed(state, rule.name, rule.id, rule.kind, rule.mode, rule.onError, `label ${key}: ${v.message}`);
                if (stop) break;
              }
            }
            if (stop) return;
            if (!errored) x.record(state, rule.name, rule.kind, 'applied');
            break;
          }
        }
      }
    }

    // Phase 3: transforms, in policy order.
    for (let i = 0; i < active.length; i++) {
      const state = active[i] as PolicyState;
      for (const rule of (activePhases[i] as Phases).transforms) {
        if (only && !only.has(rule)) continue;
        const g = x.guard(state, rule);
        if (g === STOP) return;
        if (g !== GO) continue;
        if (rule.mode === 'dryRun') {
          x.record(state, rule.name, rule.kind, 'skipped', 'dry run: not applied');
          continue;
        }
        if (candidate) {
          // The body is transformed once, for the primary; a candidate only says what it would need.
          d.transforms.push(rule.id);
          continue;
        }
        const changes = applyTransform(rule.transform, input);
        d.transforms.push(rule.id);
        x.record(state, rule.name, rule.kind, 'applied', changes.length ? changes.join(', ') : 'no change');
      }
    }
  }

  const evaluateMcp = createMcpEvaluator(policies, revision, reportError, clock);
  return { revision, policies: policies.map((p) => p.name), evaluate, evaluateMcp };
}

/**
 * A bundle that throws while evaluating fails closed: the error is recorded as a rule outcome (and reported),
 * and the decision becomes a 403 `policy_error` (LLM requests and MCP calls alike).
 */
export function failClosed(
  d: { rules: RuleRecord[]; denied?: { status: number; reason: string; message: string; rule: string } },
  kind: RuleRecord['kind'],
  e: unknown,
  what: string,
  reportError: (r: RuleRecord) => void,
): void {
  const rec: RuleRecord = { policy: '', rule: '', kind, outcome: 'error', durationUs: 0, message: `policy evaluation failed: ${e instanceof Error ? e.message : String(e)}` };
  d.rules.push(rec);
  reportError(rec);
  d.denied = { status: 403, reason: 'policy_error', message: `${what}: policy evaluation failed`, rule: '' };
}
