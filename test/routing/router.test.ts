import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { HealthTracker } from '../../service/routing/health.ts';
import { deploymentInfo, Router } from '../../service/routing/router.ts';
import type { RouteCheck, RouteInput, RouteResult } from '../../service/routing/types.ts';
import { allowAll, Clock, dep, euOnly, model, PROVIDERS, seeded } from './fixtures.ts';

const MODELS = [
  model(
    'gpt-4o',
    [
      dep('gpt-4o/openai', 'openai', { upstreamModel: 'gpt-4o', priority: 0 }),
      dep('gpt-4o/azure-eu', 'azure-eu', { region: 'eu-west-1', priority: 1 }),
      dep('gpt-4o/azure-us', 'azure-us', { priority: 1 }),
    ],
    { aliases: ['gpt4'] },
  ),
  model('claude', [
    dep('claude/anthropic', 'anthropic', { contextWindow: 200_000 }),
    dep('claude/bedrock', 'bedrock', { region: 'eu-central-1', contextWindow: 200_000, priority: 1 }),
  ]),
  model(
    'mix-cost',
    [
      dep('cost/openai', 'openai', { inputPricePerM: 5, outputPricePerM: 15 }),
      // cheap prompts, expensive completions
      dep('cost/anthropic', 'anthropic', { inputPricePerM: 0.5, outputPricePerM: 40 }),
      // expensive prompts, cheap completions
      dep('cost/vllm', 'vllm', { inputPricePerM: 8, outputPricePerM: 1 }),
    ],
    { strategy: 'lowest-cost' },
  ),
  model(
    'mix-fast',
    [dep('fast/openai', 'openai'), dep('fast/anthropic', 'anthropic'), dep('fast/vllm', 'vllm')],
    { strategy: 'lowest-latency' },
  ),
  model(
    'mix-weighted',
    [
      dep('w/openai', 'openai', { weight: 1 }),
      dep('w/anthropic', 'anthropic', { weight: 2 }),
      dep('w/vllm', 'vllm', { weight: 7 }),
      dep('w/standby', 'ollama', { weight: 0 }),
    ],
    { strategy: 'weighted' },
  ),
  model('ctx', [
    dep('ctx/eu-small', 'azure-eu', { region: 'eu-west-1', contextWindow: 8_192 }),
    dep('ctx/us-big', 'azure-us', { contextWindow: 131_072, priority: 1 }),
  ]),
  model('priced', [
    dep('priced/expensive', 'openai', { inputPricePerM: 10, outputPricePerM: 30 }),
    dep('priced/cheap', 'vllm', { inputPricePerM: 1, outputPricePerM: 1, priority: 1 }),
  ]),
  model('embed', [dep('embed/openai', 'openai')], { kind: 'embedding' }),
  model('ollama/*', [dep('ollama/local', 'ollama', { upstreamModel: '*', contextWindow: 8_192 })]),
];

const catalog = new Catalog(MODELS, PROVIDERS);

function router(opts: { health?: HealthTracker; seed?: number } = {}): Router {
  return new Router({ catalog, health: opts.health, random: seeded(opts.seed ?? 1) });
}

function input(over: Partial<RouteInput> = {}): RouteInput {
  return { model: 'gpt-4o', tokenEstimate: 1000, maxOutputTokens: 500, check: allowAll, kind: 'chat', ...over };
}

const ids = (r: RouteResult): string[] => r.candidates.map((c) => c.deployment.id);

function rejects(fn: () => unknown, want: { status: number; code: string; param?: string; message?: RegExp }): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, `expected GatewayError, got ${String(e)}`);
    assert.equal(e.status, want.status);
    assert.equal(e.code, want.code);
    if (want.param !== undefined) assert.equal(e.param, want.param);
    if (want.message) assert.match(e.message, want.message);
    return true;
  });
}

describe('priority strategy (default)', () => {
  it('lowest priority value first; equal priorities both kept as fallbacks', () => {
    const r = router().route(input());
    assert.equal(ids(r)[0], 'gpt-4o/openai');
    assert.deepEqual(ids(r).slice(1).sort(), ['gpt-4o/azure-eu', 'gpt-4o/azure-us']);
    assert.deepEqual(r.excluded, []);
    assert.equal(r.degraded, false);
  });

  it('spreads load by weight inside a priority tier', () => {
    const rt = router({ seed: 7 });
    const firstFallback = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const id = ids(rt.route(input()))[1]!;
      firstFallback.set(id, (firstFallback.get(id) ?? 0) + 1);
    }
    const eu = firstFallback.get('gpt-4o/azure-eu') ?? 0;
    assert.ok(eu > 850 && eu < 1150, `equal weights should split ~50/50, got ${eu}/2000`);
  });

  it('resolves aliases and returns provider, deployment and policy view', () => {
    const c = router().route(input({ model: 'gpt4' })).candidates[0]!;
    assert.equal(c.model.name, 'gpt-4o');
    assert.equal(c.provider.name, 'openai');
    assert.equal(c.deployment.upstreamModel, 'gpt-4o');
    assert.deepEqual(c.info, deploymentInfo(c));
    assert.deepEqual(c.info, {
      id: 'gpt-4o/openai',
      model: 'gpt-4o',
      provider: 'openai',
      providerApi: 'openai',
      region: 'us-east-1',
      selfHosted: false,
      dataRetention: true,
      inputPricePerM: 1,
      outputPricePerM: 2,
      contextWindow: 128_000,
    });
  });
});

describe('lowest-cost strategy', () => {
  const cases = [
    { name: 'prompt-heavy', tokenEstimate: 100_000, maxOutputTokens: 100, want: ['cost/anthropic', 'cost/openai', 'cost/vllm'] },
    { name: 'completion-heavy', tokenEstimate: 100, maxOutputTokens: 4_000, want: ['cost/vllm', 'cost/openai', 'cost/anthropic'] },
  ];
  for (const c of cases) {
    it(`${c.name}: cheapest for this request first`, () => {
      const r = router().route(input({ model: 'mix-cost', tokenEstimate: c.tokenEstimate, maxOutputTokens: c.maxOutputTokens }));
      assert.deepEqual(ids(r), c.want);
      const costs = r.candidates.map((x) => x.estimatedCostUsd);
      assert.deepEqual(costs, [...costs].sort((a, b) => a - b));
    });
  }
  it('estimates cost as prompt × input price + max output × output price', () => {
    const r = router().route(input({ model: 'mix-cost', tokenEstimate: 20_000, maxOutputTokens: 10_000 }));
    const byId = Object.fromEntries(r.candidates.map((c) => [c.deployment.id, Math.round(c.estimatedCostUsd * 1e6) / 1e6]));
    assert.deepEqual(byId, { 'cost/openai': 0.25, 'cost/anthropic': 0.41, 'cost/vllm': 0.17 });
  });
  it('provider.sort=price overrides the model strategy', () => {
    assert.deepEqual(ids(router().route(input({ model: 'priced' }))), ['priced/expensive', 'priced/cheap']);
    assert.deepEqual(ids(router().route(input({ model: 'priced', provider: { sort: 'price' } }))), ['priced/cheap', 'priced/expensive']);
  });
});

describe('lowest-latency strategy', () => {
  it('samples never-observed deployments first, then the fastest', () => {
    const clock = new Clock();
    const health = new HealthTracker({ now: clock.now });
    const rt = router({ health });
    health.observe('fast/openai', { status: 200, latencyMs: 900 });
    health.observe('fast/anthropic', { status: 200, latencyMs: 300 });
    assert.equal(ids(rt.route(input({ model: 'mix-fast' })))[0], 'fast/vllm', 'unobserved deployment is tried first');
    health.observe('fast/vllm', { status: 200, latencyMs: 600 });
    assert.deepEqual(ids(rt.route(input({ model: 'mix-fast' }))), ['fast/anthropic', 'fast/vllm', 'fast/openai']);
  });

  it('follows the EWMA as a deployment slows down', () => {
    const health = new HealthTracker({ now: new Clock().now, ewmaAlpha: 0.5 });
    const rt = router({ health });
    for (const [id, ms] of [['fast/openai', 500], ['fast/anthropic', 400], ['fast/vllm', 450]] as const) {
      health.observe(id, { status: 200, latencyMs: ms });
    }
    assert.equal(ids(rt.route(input({ model: 'mix-fast' })))[0], 'fast/anthropic');
    health.observe('fast/anthropic', { status: 200, latencyMs: 2000 }); // EWMA → 1200
    assert.equal(ids(rt.route(input({ model: 'mix-fast' })))[0], 'fast/vllm');
    assert.equal(health.latency('fast/anthropic')?.latencyMs, 1200);
  });

  it('streaming requests rank by time to first token', () => {
    const health = new HealthTracker({ now: new Clock().now });
    const rt = router({ health });
    health.observe('fast/openai', { status: 200, latencyMs: 4000, ttftMs: 150, outputTokens: 400 });
    health.observe('fast/anthropic', { status: 200, latencyMs: 2000, ttftMs: 900, outputTokens: 400 });
    health.observe('fast/vllm', { status: 200, latencyMs: 3000, ttftMs: 500, outputTokens: 400 });
    assert.deepEqual(ids(rt.route(input({ model: 'mix-fast', stream: true }))), ['fast/openai', 'fast/vllm', 'fast/anthropic']);
    assert.deepEqual(ids(rt.route(input({ model: 'mix-fast' }))), ['fast/anthropic', 'fast/vllm', 'fast/openai']);
    // throughput: 400 tokens / (latency − ttft)
    assert.deepEqual(ids(rt.route(input({ model: 'mix-fast', provider: { sort: 'throughput' } }))), ['fast/anthropic', 'fast/vllm', 'fast/openai']);
    // provider.sort=latency means time to first token on a stream, like OpenRouter
    assert.deepEqual(ids(rt.route(input({ model: 'claude', provider: { sort: 'latency' } })))[0], 'claude/anthropic');
  });
});

describe('weighted strategy', () => {
  it('first pick follows the weights (seeded RNG, 20k requests)', () => {
    const rt = router({ seed: 42 });
    const n = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const r = rt.route(input({ model: 'mix-weighted' }));
      assert.equal(r.candidates.length, 4);
      assert.equal(ids(r)[3], 'w/standby', 'weight 0 is a last-resort fallback');
      const first = ids(r)[0]!;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    const share = (id: string): number => (counts.get(id) ?? 0) / n;
    assert.ok(Math.abs(share('w/openai') - 0.1) < 0.015, `openai ${share('w/openai')}`);
    assert.ok(Math.abs(share('w/anthropic') - 0.2) < 0.015, `anthropic ${share('w/anthropic')}`);
    assert.ok(Math.abs(share('w/vllm') - 0.7) < 0.015, `vllm ${share('w/vllm')}`);
    assert.equal(counts.get('w/standby'), undefined);
  });

  it('is reproducible for a given seed', () => {
    const a = router({ seed: 3 });
    const b = router({ seed: 3 });
    for (let i = 0; i < 50; i++) assert.deepEqual(ids(a.route(input({ model: 'mix-weighted' }))), ids(b.route(input({ model: 'mix-weighted' }))));
  });
});

describe('context window', () => {
  it('drops deployments whose window < prompt + max output', () => {
    const r = router().route(input({ model: 'ctx', tokenEstimate: 7_000, maxOutputTokens: 2_000 }));
    assert.deepEqual(ids(r), ['ctx/us-big']);
    assert.deepEqual(r.excluded, [{ deployment: 'ctx/eu-small', reason: 'context window 8192 < 9000 tokens (7000 prompt + 2000 output)' }]);
    assert.deepEqual(ids(router().route(input({ model: 'ctx', tokenEstimate: 6_000, maxOutputTokens: 2_000 }))), ['ctx/eu-small', 'ctx/us-big']);
  });

  it('too long for every deployment → 400 context_length_exceeded', () => {
    rejects(() => router().route(input({ model: 'ctx', tokenEstimate: 130_000, maxOutputTokens: 4_000 })), {
      status: 400,
      code: 'context_length_exceeded',
      param: 'messages',
      message: /maximum context length is 131072 tokens\. However, you requested 134000 tokens \(130000 in the messages, 4000 in the completion\)/,
    });
    rejects(() => router().route(input({ model: 'embed', kind: 'embedding', tokenEstimate: 200_000, maxOutputTokens: 0 })), {
      status: 400,
      code: 'context_length_exceeded',
      param: 'input',
    });
  });
});

describe('policy route constraints (residency)', () => {
  it('removes non-EU deployments and says why', () => {
    const r = router().route(input({ check: euOnly }));
    assert.deepEqual(ids(r), ['gpt-4o/azure-eu']);
    assert.deepEqual(r.excluded, [
      { deployment: 'gpt-4o/openai', reason: "policy rule 'residency/eu-only': tenant acme requires EU data residency" },
      { deployment: 'gpt-4o/azure-us', reason: "policy rule 'residency/eu-only': tenant acme requires EU data residency" },
    ]);
  });

  it('sees the same DeploymentInfo the candidate carries', () => {
    const seen: string[] = [];
    router().route(input({ model: 'ollama/phi3', check: (d) => (seen.push(`${d.model}@${d.provider}:${d.selfHosted}`), { ok: true }) }));
    assert.deepEqual(seen, ['ollama/phi3@ollama:true']);
  });

  it('every deployment denied → 403 route_denied with the policy message and rule', () => {
    rejects(() => router().route(input({ model: 'mix-fast', check: euOnly })), {
      status: 403,
      code: 'route_denied',
      message: /^tenant acme requires EU data residency \(policy rule 'residency\/eu-only'\)$/,
    });
  });

  it('a malformed verdict denies (fail closed)', () => {
    const broken = (() => ({ ok: 'yes' })) as unknown as RouteCheck;
    rejects(() => router().route(input({ model: 'embed', kind: 'embedding', check: broken })), { status: 403, code: 'route_denied' });
  });

  it('the error names the furthest stage: policy-allowed but too small → context error', () => {
    rejects(() => router().route(input({ model: 'ctx', tokenEstimate: 9_000, check: euOnly })), {
      status: 400,
      code: 'context_length_exceeded',
      message: /maximum context length is 8192 tokens/,
    });
  });

  it('the error names the furthest stage: provider prefs allowed, policy denied → 403', () => {
    rejects(() => router().route(input({ provider: { only: ['openai'] }, check: euOnly })), { status: 403, code: 'route_denied' });
  });
});

describe('models fallback array', () => {
  it('tries models in order, each with its own deployments; duplicates dropped', () => {
    const r = router().route(input({ model: 'claude', models: ['gpt-4o', 'claude', 'ollama/llama3'] }));
    assert.deepEqual(ids(r), ['claude/anthropic', 'claude/bedrock', 'gpt-4o/openai', ...ids(r).slice(3, 5), 'ollama/local']);
    assert.deepEqual(r.candidates.map((c) => c.model.name), ['claude', 'claude', 'gpt-4o', 'gpt-4o', 'gpt-4o', 'ollama/llama3']);
    assert.equal(r.candidates[5]!.deployment.upstreamModel, 'llama3');
  });

  it('works with model omitted', () => {
    assert.deepEqual(ids(router().route(input({ model: '', models: ['embed'], kind: 'embedding' }))), ['embed/openai']);
  });

  it('a fallback model that satisfies the constraint wins when the primary cannot', () => {
    const r = router().route(input({ model: 'mix-cost', models: ['claude'], check: euOnly }));
    assert.deepEqual(ids(r), ['claude/bedrock']);
    assert.equal(r.excluded.length, 4);
  });

  const bad: { name: string; in: Partial<RouteInput>; status: number; code: string; param: string }[] = [
    { name: 'unknown fallback', in: { models: ['claude', 'gpt-9'] }, status: 404, code: 'model_not_found', param: 'models[1]' },
    { name: 'unknown primary', in: { model: 'gpt-9' }, status: 404, code: 'model_not_found', param: 'model' },
    { name: 'no model at all', in: { model: '' }, status: 400, code: 'invalid_request', param: 'model' },
    { name: 'models not an array', in: { models: 'claude' }, status: 400, code: 'invalid_request', param: 'models' },
    { name: 'embedding model for chat', in: { model: 'embed' }, status: 400, code: 'invalid_model', param: 'model' },
    { name: 'chat fallback for embeddings', in: { model: 'embed', models: ['claude'], kind: 'embedding' }, status: 400, code: 'invalid_model', param: 'models[0]' },
  ];
  for (const c of bad) {
    it(`${c.name} → ${c.status} ${c.code}`, () => rejects(() => router().route(input(c.in)), c));
  }
});

describe('provider preferences', () => {
  const cases: { name: string; model?: string; provider: unknown; want: string[]; excluded?: string[] }[] = [
    { name: 'order moves listed providers first', provider: { order: ['azure-us', 'azure-eu'] }, want: ['gpt-4o/azure-us', 'gpt-4o/azure-eu', 'gpt-4o/openai'] },
    { name: 'order is case-insensitive', provider: { order: ['AZURE-US'] }, want: ['gpt-4o/azure-us', 'gpt-4o/openai', 'gpt-4o/azure-eu'] },
    { name: 'only', provider: { only: ['azure-eu', 'openai'] }, want: ['gpt-4o/openai', 'gpt-4o/azure-eu'], excluded: ["gpt-4o/azure-us: provider 'azure-us' is not in provider.only"] },
    { name: 'ignore', provider: { ignore: ['openai'] }, want: ['gpt-4o/azure-us', 'gpt-4o/azure-eu'], excluded: ["gpt-4o/openai: provider 'openai' is in provider.ignore"] },
    {
      name: 'data_collection deny drops retaining providers',
      provider: { data_collection: 'deny' },
      want: ['gpt-4o/azure-us', 'gpt-4o/azure-eu'],
      excluded: ["gpt-4o/openai: provider 'openai' may retain data (provider.data_collection: deny)"],
    },
    { name: 'data_collection allow keeps them', provider: { data_collection: 'allow' }, want: ['gpt-4o/openai', 'gpt-4o/azure-us', 'gpt-4o/azure-eu'] },
    { name: 'zdr', provider: { zdr: true }, want: ['gpt-4o/azure-us', 'gpt-4o/azure-eu'] },
    { name: 'allow_fallbacks false → only the primary', provider: { allow_fallbacks: false }, want: ['gpt-4o/openai'] },
    { name: 'allow_fallbacks false + order → only the ordered providers', provider: { allow_fallbacks: false, order: ['azure-eu', 'azure-us'] }, want: ['gpt-4o/azure-eu', 'gpt-4o/azure-us'] },
    { name: 'max_price', model: 'mix-cost', provider: { max_price: { prompt: 6, completion: 20 } }, want: ['cost/openai'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = router({ seed: 2 }).route(input({ model: c.model ?? 'gpt-4o', provider: c.provider }));
      // Equal-priority fallbacks are shuffled; compare sets where order is not asserted.
      if (c.name.startsWith('order') || c.name.includes('allow_fallbacks') || c.name === 'max_price') assert.deepEqual(ids(r), c.want);
      else {
        assert.equal(ids(r)[0], c.want[0]);
        assert.deepEqual([...ids(r)].sort(), [...c.want].sort());
      }
      if (c.excluded) assert.deepEqual(r.excluded.map((x) => `${x.deployment}: ${x.reason}`), c.excluded);
    });
  }

  it('allow_fallbacks false keeps the model fallbacks from `models`', () => {
    const r = router().route(input({ model: 'gpt-4o', models: ['claude'], provider: { allow_fallbacks: false } }));
    assert.deepEqual(ids(r), ['gpt-4o/openai', 'claude/anthropic']);
  });

  it('allow_fallbacks false + order with no listed provider → 400 on provider.order', () => {
    rejects(() => router().route(input({ provider: { allow_fallbacks: false, order: ['anthropic'] } })), {
      status: 400,
      code: 'no_matching_provider',
      param: 'provider.order',
    });
  });

  it('preferences that exclude everything → 400 naming the reasons', () => {
    rejects(() => router().route(input({ provider: { only: ['anthropic'] } })), {
      status: 400,
      code: 'no_matching_provider',
      param: 'provider',
      message: /no deployment of model 'gpt-4o' satisfies the provider preferences: provider 'openai' is not in provider.only/,
    });
  });

  it('invalid preferences → 400 with param', () => {
    rejects(() => router().route(input({ provider: { sort: 'fastest' } })), { status: 400, code: 'invalid_request', param: 'provider.sort' });
    rejects(() => router().route(input({ provider: { only: ['nobody'] } })), { status: 400, code: 'invalid_request', param: 'provider.only[0]' });
  });
});
