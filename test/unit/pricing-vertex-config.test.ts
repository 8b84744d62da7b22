// Config for the cost components and the vertex provider kind: detailed prices reach the deployment (and stay
// absent when none is configured), unknown price fields and a vertex basePath without project/location are
// refused with the file position, and the cost function prices each component, tier and clamp as documented.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigErrors, parseDocuments } from '../../service/config/documents.ts';
import { buildCoreConfig } from '../../service/config/loader.ts';
import { costOfUsage, reservationCost } from '../../service/budget/cost.ts';

const HEAD = 'apiVersion: tollgate.dev/v1alpha1\n';
const PROVIDERS = `${HEAD}kind: Provider\nmetadata: {name: anth}\nspec: {api: anthropic, cluster: c, host: h, credential: {env: K}}\n---\n${HEAD}kind: Provider\nmetadata: {name: vtx}\nspec: {api: vertex, cluster: v, host: us-east5-aiplatform.googleapis.com, basePath: /v1/projects/p1/locations/us-east5, credential: {file: /run/secrets/vertex-token}}\n---\n`;

function load(yaml: string) {
  return buildCoreConfig('.', parseDocuments('cfg.yaml', yaml));
}

function errorsOf(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

describe('pricing components and the vertex provider in config', () => {
  it('detailed prices and the long-context tier reach the deployment; plain pricing has none', () => {
    const cfg = load(`${PROVIDERS}${HEAD}kind: Model\nmetadata: {name: m}\nspec:\n  deployments:\n  - provider: vtx\n    model: claude-sonnet-4@20250514\n    region: us-east5\n    pricing: {inputPerMillion: 3, outputPerMillion: 15, cacheReadPerMillion: 0.3, cacheWrite1hPerMillion: 6, longContext: {aboveInputTokens: 200000, inputPerMillion: 6, outputPerMillion: 22.5}}\n  - {provider: anth, model: x, region: r, pricing: {inputPerMillion: 1, outputPerMillion: 2}}\n`);
    const [d0, d1] = cfg.models[0]!.deployments;
    assert.deepEqual(d0!.prices, { cacheReadPerM: 0.3, cacheWrite1hPerM: 6, longContext: { aboveInputTokens: 200000, inputPerM: 6, outputPerM: 22.5 } });
    assert.equal(d1!.prices, undefined);
    assert.equal(cfg.providers.get('vtx')!.api, 'vertex');
  });

  it('an unknown price field and a vertex basePath without project/location are refused', () => {
    const bad = errorsOf(`${PROVIDERS}${HEAD}kind: Model\nmetadata: {name: m}\nspec:\n  deployments:\n  - {provider: anth, model: x, region: r, pricing: {inputPerMillion: 1, outputPerMillion: 2, cachedPerMillion: 0.1}}\n`);
    assert.ok(bad.some((e) => /pricing/.test(e) && /cachedPerMillion/.test(e)), JSON.stringify(bad));
    const vertex = errorsOf(`${HEAD}kind: Provider\nmetadata: {name: vtx}\nspec: {api: vertex, cluster: v, host: h, basePath: /v1, credential: {env: T}}\n`);
    assert.ok(vertex.some((e) => /vertex providers need spec\.basePath/.test(e)), JSON.stringify(vertex));
  });
});

describe('costOfUsage', () => {
  const d = { inputPricePerM: 3, outputPricePerM: 15, prices: { cacheReadPerM: 0.3, cacheWrite5mPerM: 3.75, cacheWrite1hPerM: 6, longContext: { aboveInputTokens: 1000, inputPerM: 6, outputPerM: 22.5 } } };

  it('unset component prices cost what the base prices alone would', () => {
    const c = costOfUsage({ inputTokens: 1000, outputTokens: 100, cachedInputTokens: 400, cacheCreationInputTokens: 100, reasoningTokens: 50 }, { inputPricePerM: 2, outputPricePerM: 8 });
    assert.ok(Math.abs(c.totalUsd - (1000 * 2 + 100 * 8) / 1e6) < 1e-15, String(c.totalUsd));
  });

  it('the long-context tier applies to the whole request above the threshold, scaling unset tier components', () => {
    const at = costOfUsage({ inputTokens: 1000, outputTokens: 10 }, d);
    assert.equal(at.longContext, false);
    const above = costOfUsage({ inputTokens: 1001, outputTokens: 10, cachedInputTokens: 1000 }, d);
    assert.equal(above.longContext, true);
    // 1 × 6 + 1000 × (0.3 × 6/3) + 10 × 22.5
    assert.ok(Math.abs(above.totalUsd - (6 + 600 + 225) / 1e6) < 1e-15, String(above.totalUsd));
  });

  it('subsets are clamped: reads + writes never exceed input, reasoning never exceeds output', () => {
    const c = costOfUsage({ inputTokens: 100, outputTokens: 10, cachedInputTokens: 90, cacheCreationInputTokens: 50, cacheCreation1hInputTokens: 80, reasoningTokens: 30 }, { ...d, prices: { ...d.prices, longContext: undefined } });
    // 90 read × 0.3 + 10 written (all 1h: 1h ≤ written) × 6 + 0 uncached; 10 reasoning × 15
    assert.ok(Math.abs(c.totalUsd - (27 + 60 + 150) / 1e6) < 1e-15, String(c.totalUsd));
    assert.equal(c.inputUsd, 0);
    assert.equal(c.outputUsd, 0);
  });

  it('the reservation prices prompt tokens at the dearest configured input-side rate', () => {
    assert.equal(reservationCost(100, 10, { ...d, prices: { ...d.prices, longContext: undefined } }), (100 * 6 + 10 * 15) / 1e6);
    assert.equal(reservationCost(100, 10, { inputPricePerM: 3, outputPricePerM: 15 }), (100 * 3 + 10 * 15) / 1e6);
  });
});
