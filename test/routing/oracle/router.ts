// TEST ORACLE: service/routing/router.ts as of a487bce (before the round-3 allocation cuts), frozen.
// test/routing/differential.test.ts checks the live router gives exactly its results. Do not optimise.
// route(): requested model (+ OpenRouter `models` fallbacks and `provider` preferences) →
// ordered candidate deployments (first = primary, rest = fallbacks for retries).
//
// Per model, in the order [model, ...models] (duplicates dropped, also two names of one model),
// each deployment passes:
//   1. provider preferences: only / ignore / data_collection: deny / zdr / max_price
//   2. policy: the model itself must be allowed (checkModel: access rules judged as if the request
//      had named it — a fallback is held to the same rules as the primary), then the route check
//      in force for that model (residency, self-hosted only, …)
//   3. context window ≥ tokenEstimate + maxOutputTokens
// then the model's strategy (or provider.sort) orders the survivors, provider.order moves the
// listed providers to the front, and allow_fallbacks: false keeps only the primary (or, with
// provider.order, only the listed providers) — per model, as OpenRouter does; the `models`
// fallback list still applies. Finally passive health: ejected deployments are skipped.
//
// When nothing survives, the error names the furthest stage any deployment reached, because
// that is the one the caller can act on: allow_fallbacks → 400, context window → 400
// `context_length_exceeded`, policy → the denying model rule's error (e.g. 403 `model_not_allowed`)
// or 403 `route_denied` with the route rule's message, preferences → 400.
// When health alone removes everything: if some ejections are "soft" (failures) we route to them
// anyway, soonest-to-recover first, and set `degraded` (Envoy's panic mode: a passive detector
// only knows the past, and a request is the cheapest probe). If every one is "hard" (the provider
// said 429 + retry-after) → 503 `no_healthy_deployment` with retry-after.
import type { DeploymentConfig, ModelConfig, ProviderConfig } from '../../../service/config/types.ts';
import { GatewayError } from '../../../service/errors.ts';
import type { Catalog, CatalogEntry, ResolvedModel } from '../../../service/routing/catalog.ts';
import type { Availability, HealthTracker } from '../../../service/routing/health.ts';
import { parseModels, parseProviderPreferences } from '../../../service/routing/preferences.ts';
import { order, type Ranked, type SortKey } from './strategies.ts';
import type {
  Candidate,
  DeploymentInfo,
  Exclusion,
  ModelCheckResult,
  PolicyDrop,
  ProviderPreferences,
  RouteCheck,
  RouteCheckResult,
  RouteInput,
  RouteResult,
} from '../../../service/routing/types.ts';

export interface RouterOptions {
  catalog: Catalog;
  /** The process-wide tracker; omitted → every deployment counts as healthy, latency unknown. */
  health?: HealthTracker;
  /** Uniform [0, 1); inject a seeded one in tests. Default Math.random. */
  random?: () => number;
}

/** The policy engine's view of a deployment. */
export function deploymentInfo(c: { model: ModelConfig; deployment: DeploymentConfig; provider: ProviderConfig }): DeploymentInfo {
  return {
    id: c.deployment.id,
    model: c.model.name,
    provider: c.provider.name,
    providerApi: c.provider.api,
    region: c.deployment.region,
    selfHosted: c.provider.selfHosted,
    dataRetention: c.provider.dataRetention,
    inputPricePerM: c.deployment.inputPricePerM,
    outputPricePerM: c.deployment.outputPricePerM,
    contextWindow: c.deployment.contextWindow,
  };
}

const SORT_KEYS: Record<NonNullable<ProviderPreferences['sort']>, SortKey> = {
  price: 'lowest-cost',
  latency: 'lowest-latency',
  throughput: 'highest-throughput',
};

function nonNeg(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function prefsReason(e: CatalogEntry, p: ProviderPreferences | undefined): string | undefined {
  if (!p) return undefined;
  const name = e.provider.name.toLowerCase();
  if (p.only && !p.only.includes(name)) return `provider '${e.provider.name}' is not in provider.only`;
  if (p.ignore && p.ignore.includes(name)) return `provider '${e.provider.name}' is in provider.ignore`;
  if (e.provider.dataRetention && p.data_collection === 'deny') {
    return `provider '${e.provider.name}' may retain data (provider.data_collection: deny)`;
  }
  if (e.provider.dataRetention && p.zdr) return `provider '${e.provider.name}' may retain data (provider.zdr: true)`;
  const mp = p.max_price;
  if (mp?.prompt !== undefined && e.deployment.inputPricePerM > mp.prompt) {
    return `input price $${e.deployment.inputPricePerM}/M exceeds provider.max_price.prompt $${mp.prompt}/M`;
  }
  if (mp?.completion !== undefined && e.deployment.outputPricePerM > mp.completion) {
    return `output price $${e.deployment.outputPricePerM}/M exceeds provider.max_price.completion $${mp.completion}/M`;
  }
  return undefined;
}

type Denial = Extract<RouteCheckResult, { ok: false }> & { status?: number; code?: string; param?: string };

/** A model named by the client, resolved. */
interface Named {
  resolved: ResolvedModel;
  requested: string;
  param: string;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

export class Router {
  readonly catalog: Catalog;
  readonly health: HealthTracker | undefined;
  private readonly random: () => number;

  constructor(opts: RouterOptions) {
    this.catalog = opts.catalog;
    this.health = opts.health;
    this.random = opts.random ?? Math.random;
  }

  route(input: RouteInput): RouteResult {
    const models = this.resolveModels(input);
    const prefs = parseProviderPreferences(input.provider, this.catalog.providers);
    const tokenEstimate = nonNeg(input.tokenEstimate);
    const maxOut = nonNeg(input.maxOutputTokens);
    const need = tokenEstimate + maxOut;
    const stream = input.stream === true;

    const excluded: Exclusion[] = [];
    const dropped: PolicyDrop[] = input.dropped ?? [];
    const prefsReasons: string[] = [];
    let reachedPolicy = 0;
    let reachedContext = 0;
    let cutByFallbacks = 0;
    let firstDenial: Denial | undefined;
    let maxWindow = 0;
    const ordered: Ranked[] = [];
    const ctx = { random: this.random, health: this.health, stream };

    for (const named of models) {
      const m = named.resolved;
      const ranked: Ranked[] = [];
      // Judged once, when the first deployment gets past the provider preferences.
      let modelVerdict: ModelCheckResult | undefined;
      m.entries.forEach((entry, index) => {
        const id = entry.deployment.id;
        const pr = prefsReason(entry, prefs);
        if (pr !== undefined) {
          excluded.push({ deployment: id, reason: pr });
          if (prefsReasons.length < 3 && !prefsReasons.includes(pr)) prefsReasons.push(pr);
          return;
        }
        reachedPolicy++;
        let check: RouteCheck = input.check;
        if (input.checkModel) {
          modelVerdict ??= judgeModel(input.checkModel, named, dropped);
          if (modelVerdict.ok !== true) {
            const v = modelVerdict;
            excluded.push({ deployment: id, reason: `policy rule '${v.rule}': ${v.message}` });
            firstDenial ??= { ok: false, rule: v.rule, message: v.message, status: v.status, code: v.code, param: named.param };
            return;
          }
          check = modelVerdict.check;
        }
        const verdict = check(entry.info);
        if (verdict.ok !== true) {
          // Anything but an explicit ok denies (fail closed on a malformed verdict).
          const denial =
            verdict.ok === false
              ? verdict
              : { ok: false as const, rule: '<invalid verdict>', message: 'route check returned an invalid verdict' };
          excluded.push({ deployment: id, reason: `policy rule '${denial.rule}': ${denial.message}` });
          dropped.push({ model: named.requested, param: named.param, deployment: id, rule: denial.rule, message: denial.message });
          firstDenial ??= denial;
          return;
        }
        reachedContext++;
        const window = entry.deployment.contextWindow;
        if (window > maxWindow) maxWindow = window;
        if (window < need) {
          excluded.push({
            deployment: id,
            reason: `context window ${window} < ${need} tokens (${tokenEstimate} prompt + ${maxOut} output)`,
          });
          return;
        }
        const estimatedCostUsd =
          (tokenEstimate * entry.deployment.inputPricePerM + maxOut * entry.deployment.outputPricePerM) / 1e6;
        ranked.push({ model: m.model, entry, index, estimatedCostUsd });
      });

      const key: SortKey = prefs?.sort ? SORT_KEYS[prefs.sort] : m.strategy;
      let list = order(ranked, key, ctx);
      const preferred = prefs?.order;
      if (preferred && preferred.length > 0) {
        const rank = (r: Ranked): number => {
          const i = preferred.indexOf(r.entry.provider.name.toLowerCase());
          return i < 0 ? preferred.length : i;
        };
        list = list.map((r, i) => ({ r, i, k: rank(r) })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.r);
      }
      if (prefs?.allow_fallbacks === false && list.length > 0) {
        const keep =
          preferred && preferred.length > 0
            ? list.filter((r) => preferred.includes(r.entry.provider.name.toLowerCase()))
            : list.slice(0, 1);
        for (const r of list) {
          if (!keep.includes(r)) {
            excluded.push({ deployment: r.entry.deployment.id, reason: 'provider.allow_fallbacks is false' });
            cutByFallbacks++;
          }
        }
        list = keep;
      }
      ordered.push(...list);
    }

    const resolved = models.map((n) => n.resolved);
    if (ordered.length === 0) {
      throw this.emptyError(input, resolved, {
        cutByFallbacks,
        reachedContext,
        reachedPolicy,
        firstDenial,
        maxWindow,
        tokenEstimate,
        maxOut,
        prefsReasons,
      });
    }
    return this.applyHealth(ordered, resolved, excluded, dropped);
  }

  private resolveModels(input: RouteInput): Named[] {
    const fallbacks = parseModels(input.models) ?? [];
    const names: { name: string; param: string }[] = [];
    if (typeof input.model === 'string' && input.model.length > 0) names.push({ name: input.model, param: 'model' });
    fallbacks.forEach((name, i) => {
      if (!names.some((n) => n.name === name)) names.push({ name, param: `models[${i}]` });
    });
    if (names.length === 0) {
      throw new GatewayError('invalid_request', 'you must provide a model parameter', {
        code: 'invalid_request',
        param: 'model',
      });
    }
    const out: Named[] = [];
    for (const { name, param } of names) {
      const r = this.catalog.lookup(name, param);
      if (r.model.kind !== input.kind) {
        throw new GatewayError(
          'invalid_request',
          `model '${name}' is ${article(r.model.kind)} ${r.model.kind} model and cannot be used for ${input.kind} requests`,
          { code: 'invalid_model', param },
        );
      }
      // An alias of a model already listed adds nothing but a second judgement of the same deployments.
      if (out.some((n) => n.resolved.model.name === r.model.name)) continue;
      out.push({ resolved: r, requested: name, param });
    }
    return out;
  }

  private emptyError(
    input: RouteInput,
    models: ResolvedModel[],
    s: {
      cutByFallbacks: number;
      reachedContext: number;
      reachedPolicy: number;
      firstDenial: Denial | undefined;
      maxWindow: number;
      tokenEstimate: number;
      maxOut: number;
      prefsReasons: string[];
    },
  ): GatewayError {
    const what = models.length === 1 ? `model '${models[0]!.model.name}'` : `models ${models.map((m) => `'${m.model.name}'`).join(', ')}`;
    if (s.cutByFallbacks > 0) {
      return new GatewayError(
        'invalid_request',
        `no deployment of ${what} is offered by the providers in provider.order, and provider.allow_fallbacks is false`,
        { code: 'no_matching_provider', param: 'provider.order' },
      );
    }
    if (s.reachedContext > 0) {
      const total = s.tokenEstimate + s.maxOut;
      const msg =
        input.kind === 'embedding'
          ? `This model's maximum context length is ${s.maxWindow} tokens, however you requested ${total} tokens. Please reduce your input.`
          : `This model's maximum context length is ${s.maxWindow} tokens. However, you requested ${total} tokens (${s.tokenEstimate} in the messages, ${s.maxOut} in the completion). Please reduce the length of the messages or completion.`;
      return new GatewayError('invalid_request', msg, {
        code: 'context_length_exceeded',
        param: input.kind === 'embedding' ? 'input' : 'messages',
      });
    }
    if (s.reachedPolicy > 0 && s.firstDenial) {
      const d = s.firstDenial;
      // A model rule: the error a request naming that model gets, pointing at where it was named.
      if (d.code) return new GatewayError('permission', d.message, { code: d.code, status: d.status, param: d.param });
      return new GatewayError('permission', `${d.message} (policy rule '${d.rule}')`, {
        code: 'route_denied',
      });
    }
    return new GatewayError(
      'invalid_request',
      `no deployment of ${what} satisfies the provider preferences: ${s.prefsReasons.join('; ')}`,
      { code: 'no_matching_provider', param: 'provider' },
    );
  }

  private applyHealth(ordered: Ranked[], models: ResolvedModel[], excluded: Exclusion[], dropped: PolicyDrop[]): RouteResult {
    const toCandidate = (r: Ranked): Candidate => ({
      model: r.model,
      deployment: r.entry.deployment,
      provider: r.entry.provider,
      estimatedCostUsd: r.estimatedCostUsd,
      info: r.entry.info,
    });

    const health = this.health;
    if (!health) return { candidates: ordered.map(toCandidate), excluded, dropped, degraded: false };

    const available: { r: Ranked; a: Availability }[] = [];
    const ejected: { r: Ranked; a: Extract<Availability, { kind: 'ejected' }> }[] = [];
    for (const r of ordered) {
      const a = health.availability(r.entry.deployment.id);
      if (a.kind === 'ejected') ejected.push({ r, a });
      else available.push({ r, a });
    }
    const note = (x: { r: Ranked; a: Extract<Availability, { kind: 'ejected' }> }): void => {
      excluded.push({
        deployment: x.r.entry.deployment.id,
        reason: `unhealthy: ${x.a.reason}; retry after ${new Date(x.a.until).toISOString()}`,
      });
    };

    if (available.length > 0) {
      for (const x of ejected) note(x);
      const first = available[0]!;
      if (first.a.kind === 'trial') health.claimTrial(first.r.entry.deployment.id);
      return { candidates: available.map((x) => toCandidate(x.r)), excluded, dropped, degraded: false };
    }

    const soft = ejected.filter((x) => !x.a.hard);
    if (soft.length > 0) {
      for (const x of ejected) if (x.a.hard) note(x);
      soft.sort((a, b) => a.a.until - b.a.until); // stable: strategy order among equals
      return { candidates: soft.map((x) => toCandidate(x.r)), excluded, dropped, degraded: true };
    }

    for (const x of ejected) note(x);
    const soonest = Math.min(...ejected.map((x) => x.a.until));
    const secs = Math.max(1, Math.ceil((soonest - health.now()) / 1000));
    const what = models.length === 1 ? `model '${models[0]!.model.name}'` : 'the requested models';
    throw new GatewayError(
      'unavailable',
      `every deployment of ${what} is rate limited by its provider; retry after ${secs} seconds`,
      { code: 'no_healthy_deployment', headers: { 'retry-after': String(secs) } },
    );
  }
}

/** Runs the model check, failing closed on anything but a well-formed verdict; records a denial. */
function judgeModel(checkModel: NonNullable<RouteInput['checkModel']>, n: Named, dropped: PolicyDrop[]): ModelCheckResult {
  const v = checkModel(n.requested, n.resolved.model.name, n.param);
  if (v.ok === true && typeof v.check === 'function') return v;
  const denied: ModelCheckResult =
    v.ok === false ? v : { ok: false, rule: '<invalid verdict>', message: 'model check returned an invalid verdict', status: 403, code: 'policy_error' };
  if (denied.ok === false) dropped.push({ model: n.requested, param: n.param, rule: denied.rule, message: denied.message });
  return denied;
}
