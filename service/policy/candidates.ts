// Per-candidate-model evaluation support: which rules can change outcome with the model, and the
// activation a candidate model is judged with.
//
// A request can end up on a model other than the one in `model`: an OpenRouter `models` fallback,
// what an alias or wildcard resolves to. Each candidate must pass the same rules a request naming
// it would, but only rules whose outcome can depend on the model need evaluating again.
import { LazyActivation } from './activation.ts';
import type { Activation } from './cel.ts';
import type { CExpr, CPolicy, CRule } from './compile.ts';

/**
 * Request fields a candidate model changes. `request.body` holds `model` too (a rule may read
 * `request.body.model`), and `request.*` is the whole request (e.g. `request['model']`).
 */
const MODEL_ROOTS = ['request.model', 'request.canonicalModel', 'request.body', 'request.*'];

export interface ModelDependence {
  /** Policies whose matchConditions read the model: applicability is decided per candidate. */
  policies: ReadonlySet<CPolicy>;
  /**
   * Rules evaluated again per candidate: `models` rules, rules whose `when` / expression /
   * scope expression reads the model, `model`-scoped budgets and rate limits, and every rule of
   * a policy in `policies`. Labels are never re-evaluated (they describe the request).
   */
  rules: ReadonlySet<CRule>;
  /** `<policy>/<rule>` of every rule in `rules`. */
  ruleIds: ReadonlySet<string>;
  /** Policies with at least one rule in `rules` (a candidate pass skips the others entirely). */
  touched: ReadonlySet<CPolicy>;
  /** Per policy, per variable: whether its value can depend on the model (else a candidate reuses it). */
  variables: ReadonlyMap<CPolicy, readonly boolean[]>;
}

function readsModelDirectly(e: CExpr): boolean {
  return MODEL_ROOTS.some((r) => e.compiled.roots.has(r));
}

function readsModel(p: CPolicy, e: CExpr | undefined): boolean {
  if (!e) return false;
  const exprs = [e, ...e.needs.map((i) => p.variables[i]?.expr).filter((x): x is CExpr => x !== undefined)];
  return exprs.some((x) => MODEL_ROOTS.some((r) => x.compiled.roots.has(r)));
}

function ruleReadsModel(p: CPolicy, rule: CRule): boolean {
  if (rule.kind === 'models') return true;
  if (readsModel(p, rule.when)) return true;
  switch (rule.kind) {
    case 'deny':
    case 'require':
    case 'route':
      return readsModel(p, rule.expr);
    case 'budget':
    case 'rateLimit':
      return rule.scope === 'model' || readsModel(p, rule.scopeExpr);
    default:
      return false;
  }
}

export function modelDependence(policies: readonly CPolicy[]): ModelDependence {
  const deps = new Set<CPolicy>();
  const rules = new Set<CRule>();
  const variables = new Map<CPolicy, boolean[]>();
  for (const p of policies) {
    // `needs` is transitive: a variable depends on the model when it or any variable it needs reads it.
    variables.set(
      p,
      p.variables.map((v) => readsModelDirectly(v.expr) || v.expr.needs.some((i) => { const n = p.variables[i]; return n !== undefined && readsModelDirectly(n.expr); })),
    );
    const matchDepends = p.matchConditions.some((mc) => readsModel(p, mc.expr));
    if (matchDepends) deps.add(p);
    for (const rule of p.rules) {
      if (rule.kind === 'label') continue;
      if (matchDepends || ruleReadsModel(p, rule)) rules.add(rule);
    }
  }
  const touched = new Set(policies.filter((p) => p.rules.some((r) => rules.has(r))));
  return { policies: deps, rules, ruleIds: new Set([...rules].map((r) => r.id)), touched, variables };
}

/**
 * The request's activation with `request.model`, `request.canonicalModel` and `request.body.model`
 * set to the candidate. Shallow copies: the body's other fields are shared, not converted again.
 */
export function candidateActivation(base: Activation, model: string, canonical: string): Activation {
  if (base instanceof LazyActivation) return base.forModel(model, canonical);
  const request = new Map(base.request as Map<string, unknown>);
  request.set('model', model);
  request.set('canonicalModel', canonical || model);
  const body = request.get('body');
  if (body instanceof Map) {
    const copy = new Map(body as Map<string, unknown>);
    copy.set('model', model);
    request.set('body', copy);
  }
  // Without the primary's `variables` / `deployment` (each PolicyState sets its own); no `delete`,
  // which would turn the object into a slow dictionary.
  const { variables: _variables, deployment: _deployment, ...rest } = base;
  return { ...rest, request };
}
