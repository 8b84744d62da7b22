// route() cost per request for a catalog of 20 models (3 deployments each), with health tracking.
import type { DeploymentConfig, ModelConfig, ProviderConfig } from '../../service/config/types.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { HealthTracker } from '../../service/routing/health.ts';
import { Router } from '../../service/routing/router.ts';
import { ROUTING_STRATEGIES, type RouteCheck, type RouteInput } from '../../service/routing/types.ts';
import * as catalogModule from '../../service/routing/catalog.ts';
import * as healthModule from '../../service/routing/health.ts';
import * as routerModule from '../../service/routing/router.ts';
import { abAlloc, abCpu, baseSource, importBase } from './ab.ts';

function providers(): ProviderConfig[] {
  return ['openai', 'azure-eu', 'azure-us', 'anthropic', 'bedrock', 'vllm'].map((name, i) => ({
    name,
    api: 'openai',
    cluster: `${name}-cluster`,
    host: `${name}.example`,
    basePath: '/v1',
    credential: { kind: 'none' },
    dataRetention: i === 0,
    selfHosted: name === 'vllm',
  }));
}

function catalogModels(): ModelConfig[] {
  const provs = ['openai', 'azure-eu', 'azure-us', 'anthropic', 'bedrock', 'vllm'];
  const models: ModelConfig[] = [];
  for (let m = 0; m < 19; m++) {
    const deployments: DeploymentConfig[] = [0, 1, 2].map((d) => ({
      id: `model-${m}/${d}`,
      provider: provs[(m + d) % provs.length]!,
      upstreamModel: `upstream-${m}`,
      region: d === 1 ? 'eu-west-1' : 'us-east-1',
      inputPricePerM: 1 + d,
      outputPricePerM: 3 + d,
      contextWindow: 128_000,
      weight: d + 1,
      priority: d,
    }));
    models.push({ name: `model-${m}`, aliases: [`alias-${m}`], kind: 'chat', strategy: ROUTING_STRATEGIES[m % 4]!, deployments, fallbackChains: [] });
  }
  models.push({
    name: 'local/*',
    aliases: [],
    kind: 'chat',
    strategy: 'priority',
    deployments: [{ id: 'local/0', provider: 'vllm', upstreamModel: '*', region: 'eu-west-1', inputPricePerM: 0, outputPricePerM: 0, contextWindow: 32_000, weight: 1, priority: 0 }],
    fallbackChains: [],
  });
  return models;
}

function measure(label: string, n: number, fn: (i: number) => void, unit = 'routes'): string {
  for (let i = 0; i < 2_000; i++) fn(i); // warm-up
  const samples = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  const totalS = Number(process.hrtime.bigint() - t0) / 1e9;
  samples.sort();
  const p = (q: number): string => samples[Math.min(n - 1, Math.floor(q * n))]!.toFixed(1);
  return `routing: ${label}: p50 ${p(0.5)}µs p99 ${p(0.99)}µs; ${Math.round(n / totalS).toLocaleString('en-US')} ${unit}/s`;
}

export async function bench(): Promise<string[]> {
  const catalog = new Catalog(catalogModels(), providers());
  let t = Date.now();
  const health = new HealthTracker({ now: () => t });
  let seed = 1;
  const router = new Router({ catalog, health, random: () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646 });
  for (let m = 0; m < 19; m++) for (let d = 0; d < 3; d++) health.observe(`model-${m}/${d}`, { status: 200, latencyMs: 200 + 50 * d, ttftMs: 80 });
  for (let i = 0; i < 3; i++) health.observe('model-3/0', { status: 503, latencyMs: 10 });

  const allow: RouteCheck = () => ({ ok: true });
  const euOnly: RouteCheck = (d) => (d.region.startsWith('eu-') ? { ok: true } : { ok: false, rule: 'residency', message: 'EU only' });
  const base = (over: Partial<RouteInput>): RouteInput => ({ model: 'model-0', tokenEstimate: 1200, maxOutputTokens: 512, check: allow, kind: 'chat', ...over });

  const n = 50_000;
  const out: string[] = [];
  out.push(measure('20-model catalog, plain request', n, (i) => router.route(base({ model: `model-${i % 19}` }))));
  out.push(
    measure('alias + models[2 fallbacks] + provider{order,ignore,sort} + EU route check', n, (i) =>
      router.route(
        base({
          model: `alias-${i % 19}`,
          models: [`model-${(i + 1) % 19}`, `model-${(i + 2) % 19}`],
          provider: { order: ['azure-eu'], ignore: ['openai'], sort: 'price' },
          check: euOnly,
        }),
      ),
    ),
  );
  out.push(measure('wildcard model (local/*)', n, (i) => router.route(base({ model: `local/m${i % 100}` }))));
  out.push(
    measure('health.observe()', n, (i) => {
      t += 1;
      health.observe(`model-${i % 19}/1`, { status: 200, latencyMs: 300, ttftMs: 90, outputTokens: 100 });
    }, 'observations'),
  );
  if (baseSource()) out.push(...(await abLines(base, allow, euOnly)));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await bench()) console.log(line);
}

/** BENCH_BASE_SRC set: the same routes on this checkout's router and on the base's, interleaved (CPU per route). */
async function abLines(base: (over: Partial<RouteInput>) => RouteInput, allow: RouteCheck, euOnly: RouteCheck): Promise<string[]> {
  const B = {
    Catalog: (await importBase('service/routing/catalog.ts', catalogModule)).Catalog,
    HealthTracker: (await importBase('service/routing/health.ts', healthModule)).HealthTracker,
    Router: (await importBase('service/routing/router.ts', routerModule)).Router,
  };
  const make = (C: typeof Catalog, H: typeof HealthTracker, R: typeof Router): Router => {
    const health = new H({ now: () => 1_700_000_000_000 });
    for (let m = 0; m < 19; m++) for (let d = 0; d < 3; d++) health.observe(`model-${m}/${d}`, { status: 200, latencyMs: 200 + 50 * d, ttftMs: 80 });
    let seed = 1;
    return new R({ catalog: new C(catalogModels(), providers()), health, random: () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646 });
  };
  const fresh = make(Catalog, HealthTracker, Router);
  const old = make(B.Catalog, B.HealthTracker, B.Router);
  const cases: [string, (i: number) => RouteInput][] = [
    ['plain request, checkModel + route check (as the gateway calls it)', (i) => base({ model: `model-${i % 19}`, checkModel: () => ({ ok: true, check: allow }) })],
    ['alias + models[2] + provider prefs + EU check', (i) => base({ model: `alias-${i % 19}`, models: [`model-${(i + 1) % 19}`, `model-${(i + 2) % 19}`], provider: { order: ['azure-eu'], ignore: ['openai'], sort: 'price' }, check: euOnly })],
  ];
  const out = cases.map(([label, input]) => abCpu(`routing ${label}`, (i) => fresh.route(input(i)), (i) => old.route(input(i)), 20_000).line);
  const plain = cases[0]![1];
  out.push(await abAlloc('routing plain request', (i) => fresh.route(plain(i)), (i) => old.route(plain(i))));
  return out;
}
