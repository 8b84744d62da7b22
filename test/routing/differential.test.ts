// The router's allocation cuts (one pass over health, no per-request name lists, shared resolved
// models, the distinct-priority fast path of the `priority` strategy) change no result: the live
// Router is compared with a frozen copy of the previous implementation (./oracle) over random
// catalogs, health states, preferences, fallbacks and policy checks — candidates, exclusions,
// policy drops, degraded flag, thrown errors and the health tracker's state afterwards.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeploymentConfig, ModelConfig } from '../../service/config/types.ts';
import { GatewayError } from '../../service/errors.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { HealthTracker } from '../../service/routing/health.ts';
import { Router } from '../../service/routing/router.ts';
import { order, priorityTiers, type Ranked } from '../../service/routing/strategies.ts';
import { ROUTING_STRATEGIES, type ModelCheck, type RouteCheck, type RouteInput, type RouteResult } from '../../service/routing/types.ts';
import { Router as OracleRouter } from './oracle/router.ts';
import { Clock, dep, model, PROVIDERS, seeded } from './fixtures.ts';

const PROVIDER_NAMES = PROVIDERS.map((p) => p.name);

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)] as T;
}

function randomCatalog(rnd: () => number): ModelConfig[] {
  const models: ModelConfig[] = [];
  for (let m = 0; m < 6; m++) {
    const n = 1 + Math.floor(rnd() * 4);
    const tied = rnd() < 0.4;
    const deployments: DeploymentConfig[] = [];
    for (let d = 0; d < n; d++) {
      deployments.push(
        dep(`m${m}/${d}`, pick(rnd, PROVIDER_NAMES), {
          region: pick(rnd, ['eu-west-1', 'us-east-1', 'eu-central-1', 'local']),
          priority: tied ? Math.floor(rnd() * 2) : (d * 7 + m) % 5 === 0 ? 9 : d * 3 + Math.floor(rnd() * 3),
          weight: pick(rnd, [0, 1, 2, 5]),
          contextWindow: pick(rnd, [8_000, 32_000, 128_000]),
          inputPricePerM: pick(rnd, [0, 0.5, 2.5, 15]),
          outputPricePerM: pick(rnd, [0, 2, 10, 75]),
        }),
      );
    }
    models.push(model(`m${m}`, deployments, { aliases: [`a${m}`], strategy: pick(rnd, ROUTING_STRATEGIES), kind: m === 5 ? 'embedding' : 'chat' }));
  }
  models.push(model('local/*', [dep('local/0', 'vllm', { upstreamModel: '*', priority: 0 }), dep('local/1', 'ollama', { upstreamModel: '*', priority: 0 })]));
  return models;
}

const euOnly: RouteCheck = (d) => (d.region.startsWith('eu-') ? { ok: true } : { ok: false, rule: 'p/eu', message: 'EU only' });
const noLocal: RouteCheck = (d) => (d.region === 'local' ? { ok: false, rule: 'p/no-local', message: 'no local' } : { ok: true });
const allow: RouteCheck = () => ({ ok: true });

function randomInput(rnd: () => number): RouteInput {
  const names = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'a0', 'a2', 'local/x', 'local/y', 'nope', ''];
  const input: RouteInput = {
    model: pick(rnd, names),
    tokenEstimate: pick(rnd, [10, 1_000, 20_000, 100_000]),
    maxOutputTokens: pick(rnd, [0, 256, 8_000]),
    check: pick(rnd, [allow, allow, euOnly, noLocal]),
    kind: rnd() < 0.9 ? 'chat' : 'embedding',
    stream: rnd() < 0.5,
  };
  const r = rnd();
  if (r < 0.3) input.models = [pick(rnd, names), pick(rnd, names)].filter((n) => n !== '');
  else if (r < 0.35) input.models = null;
  else if (r < 0.38) input.models = 'm1';
  const p = rnd();
  if (p < 0.15) input.provider = { order: [pick(rnd, PROVIDER_NAMES), pick(rnd, PROVIDER_NAMES)], allow_fallbacks: rnd() < 0.5 };
  else if (p < 0.25) input.provider = { ignore: [pick(rnd, PROVIDER_NAMES)], sort: pick(rnd, ['price', 'latency', 'throughput']) };
  else if (p < 0.3) input.provider = { only: [pick(rnd, PROVIDER_NAMES)], data_collection: 'deny', max_price: { prompt: 3 } };
  if (rnd() < 0.4) {
    const deny = pick(rnd, ['m1', 'm3', 'none']);
    const check: ModelCheck = (_requested, canonical) =>
      canonical === deny ? { ok: false, rule: 'p/models', message: `model '${canonical}' is not allowed`, status: 403, code: 'model_not_allowed' } : { ok: true, check: canonical === 'm2' ? euOnly : allow };
    input.checkModel = check;
  }
  return input;
}

/** Same observations on both trackers: failures (soft ejections), 429 + retry-after (hard), latencies. */
function randomHealth(rnd: () => number, trackers: HealthTracker[], clock: Clock): void {
  const ids = ['m0/0', 'm0/1', 'm1/0', 'm1/1', 'm1/2', 'm2/0', 'm2/1', 'm3/0', 'm4/0', 'local/0', 'local/1'];
  const steps = Math.floor(rnd() * 12);
  for (let i = 0; i < steps; i++) {
    const id = pick(rnd, ids);
    const k = rnd();
    const o =
      k < 0.35
        ? { status: 503, latencyMs: 5 }
        : k < 0.5
          ? { status: 429, latencyMs: 5, retryAfterMs: pick(rnd, [1_000, 60_000]) }
          : { status: 200, latencyMs: 100 + Math.floor(rnd() * 400), ttftMs: 50, outputTokens: 100 };
    const times = k < 0.35 ? 3 : 1;
    for (let t = 0; t < times; t++) for (const h of trackers) h.observe(id, o);
    if (rnd() < 0.3) clock.advance(pick(rnd, [1_000, 31_000, 200_000]));
  }
}

function outcome(f: () => RouteResult): unknown {
  try {
    const r = f();
    return {
      candidates: r.candidates.map((c) => ({ model: c.model.name, id: c.deployment.id, upstream: c.deployment.upstreamModel, provider: c.provider.name, cost: c.estimatedCostUsd, info: c.info })),
      excluded: r.excluded,
      dropped: r.dropped,
      degraded: r.degraded,
    };
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e;
    return { error: { kind: e.kind, message: e.message, code: e.code, status: e.status, param: e.param, headers: e.headers } };
  }
}

describe('router: same results as the previous implementation', () => {
  it('over 3000 random catalogs, health states and requests', () => {
    const rnd = seeded(17);
    let candidates = 0;
    let errors = 0;
    for (let round = 0; round < 60; round++) {
      const catalog = new Catalog(randomCatalog(rnd), PROVIDERS);
      const clock = new Clock();
      const hNew = new HealthTracker({ now: clock.now });
      const hOld = new HealthTracker({ now: clock.now });
      const seed = Math.floor(rnd() * 1e9);
      const live = new Router({ catalog, health: rnd() < 0.85 ? hNew : undefined, random: seeded(seed) });
      const oracle = new OracleRouter({ catalog, health: live.health ? hOld : undefined, random: seeded(seed) });
      for (let i = 0; i < 50; i++) {
        randomHealth(rnd, [hNew, hOld], clock);
        const input = randomInput(rnd);
        const a = outcome(() => live.route({ ...input, dropped: [] }));
        const b = outcome(() => oracle.route({ ...input, dropped: [] }));
        assert.deepEqual(a, b, `round ${round} request ${i}: ${JSON.stringify({ ...input, check: undefined, checkModel: undefined })}`);
        assert.deepEqual(hNew.snapshot(), hOld.snapshot(), `round ${round} request ${i}: health state (trials claimed)`);
        if ((a as { error?: unknown }).error) errors++;
        else candidates++;
      }
    }
    // Both kinds of outcome were exercised.
    assert.ok(candidates > 1000 && errors > 300, `${candidates} routed, ${errors} errors`);
  });

  it('priority strategy: the distinct-priority order equals the tiered order (ties, zero weights, one entry)', () => {
    const rnd = seeded(5);
    for (let i = 0; i < 2000; i++) {
      const n = 1 + Math.floor(rnd() * 6);
      const items: Ranked[] = [];
      const m = model('m', [dep('x', 'openai')]);
      for (let j = 0; j < n; j++) {
        const d = dep(`d${j}`, 'openai', { priority: rnd() < 0.5 ? Math.floor(rnd() * 4) : j * 2 - Math.floor(rnd() * 2), weight: pick(rnd, [0, 1, 3]) });
        items.push({ model: m, entry: { deployment: d, provider: PROVIDERS[0]!, info: {} as never }, index: j, estimatedCostUsd: 0 });
      }
      const seed = Math.floor(rnd() * 1e9);
      const a = order(items, 'priority', { random: seeded(seed), health: undefined, stream: false }).map((r) => r.entry.deployment.id);
      const b = (n <= 1 ? items.slice() : priorityTiers(items, seeded(seed))).map((r) => r.entry.deployment.id);
      assert.deepEqual(a, b, JSON.stringify(items.map((r) => r.entry.deployment.priority)));
    }
  });
});
