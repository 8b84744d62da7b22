// Fallback chains: config validation (file:line) and when a routed request may use a chain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigErrors, parseDocuments } from '../../service/config/documents.ts';
import { buildCoreConfig } from '../../service/config/loader.ts';
import { chooseChain } from '../../service/fallback/chains.ts';
import { Catalog, Router, type Candidate } from '../../service/routing/index.ts';
import { allowAll, dep, euOnly, model, PROVIDERS } from '../routing/fixtures.ts';

const HEAD = 'apiVersion: tollgate.dev/v1alpha1\n';
const PROVIDERS_YAML = `${HEAD}kind: Provider\nmetadata: {name: a}\nspec: {api: openai, cluster: ca, host: a, credential: {none: true}}\n---\n${HEAD}kind: Provider\nmetadata: {name: b}\nspec: {api: anthropic, cluster: cb, host: b, credential: {none: true}}\n---\n`;

function errorsOf(modelSpec: string): string[] {
  try {
    buildCoreConfig('.', parseDocuments('cfg.yaml', `${PROVIDERS_YAML}${HEAD}kind: Model\nmetadata: {name: m}\nspec:\n${modelSpec}`));
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

const DEPS = '  deployments:\n  - {provider: a, model: x, region: r}\n  - {provider: b, model: y, region: r}\n';

describe('fallbackChains config', () => {
  it('accepts a chain over the model’s deployment ids', () => {
    assert.deepEqual(errorsOf(`${DEPS}  fallbackChains:\n  - {cluster: tgc.m, deployments: [m/a/0, m/b/1]}\n`), []);
  });
  const cases: [string, string, RegExp][] = [
    ['unknown deployment id, at the id', '  - {cluster: tgc.m, deployments: [m/a/0, m/c/2]}\n', /^cfg\.yaml:19:\d+: Model "m": fallback chain "tgc.m" names unknown deployment "m\/c\/2" \(ids: m\/a\/0, m\/b\/1\)/],
    ['the same deployment twice', '  - {cluster: tgc.m, deployments: [m/a/0, m/a/0]}\n', /lists deployment "m\/a\/0" twice/],
    ['a single-deployment chain', '  - {cluster: tgc.m, deployments: [m/a/0]}\n', /at least two deployments/],
    ['a provider cluster reused as a chain', '  - {cluster: ca, deployments: [m/a/0, m/b/1]}\n', /is provider "a"'s cluster; a chain needs its own cluster/],
    ['two chains on one cluster', '  - {cluster: tgc.m, deployments: [m/a/0, m/b/1]}\n  - {cluster: tgc.m, deployments: [m/b/1, m/a/0]}\n', /cluster "tgc.m" is already used/],
    ['an unknown field', '  - {cluster: tgc.m, deployments: [m/a/0, m/b/1], retries: 3}\n', /Unrecognized key.*retries/],
  ];
  for (const [name, chain, want] of cases)
    it(`rejects ${name}`, () => {
      const errs = errorsOf(`${DEPS}  fallbackChains:\n${chain}`);
      assert.ok(errs.some((e) => want.test(e)), errs.join('\n'));
    });
});

describe('chooseChain: a chain is used only when it agrees with routing', () => {
  const m = model('m', [dep('m/us', 'openai', { region: 'us-east-1' }), dep('m/eu', 'azure-eu', { region: 'eu-west-1', priority: 1 }), dep('m/eu2', 'bedrock', { region: 'eu-central-1', priority: 2 })], {
    fallbackChains: [
      { cluster: 'tgc.m', deployments: ['m/us', 'm/eu'] },
      { cluster: 'tgc.m.eu', deployments: ['m/eu', 'm/eu2'] },
    ],
  });
  const router = new Router({ catalog: new Catalog([m], PROVIDERS) });
  const route = (check = allowAll, provider?: unknown): Candidate[] =>
    router.route({ model: 'm', tokenEstimate: 10, maxOutputTokens: 10, check, kind: 'chat', provider }).candidates;
  const pick = (cands: Candidate[], usable: (c: Candidate) => boolean = () => true) => chooseChain(cands[0]!, cands, usable);

  it('picks the chain that starts with routing’s primary, members in priority order', () => {
    const c = pick(route());
    assert.equal(c?.cluster, 'tgc.m');
    assert.deepEqual(c?.members.map((x) => x.deployment.id), ['m/us', 'm/eu']);
  });
  it('residency: an EU-only request gets the EU chain, never one with a US member', () => {
    const c = pick(route(euOnly));
    assert.equal(c?.cluster, 'tgc.m.eu');
  });
  it('no chain when a member lacks a credential (the single-cluster path is taken)', () => {
    assert.equal(pick(route(), (c) => c.deployment.id !== 'm/eu'), undefined);
  });
  it('no chain with provider.allow_fallbacks: false', () => {
    assert.equal(pick(route(allowAll, { allow_fallbacks: false })), undefined);
  });
  it('no chain when routing put another deployment first (e.g. provider.order)', () => {
    const cands = route(allowAll, { order: ['bedrock'] });
    assert.equal(cands[0]!.deployment.id, 'm/eu2');
    assert.equal(pick(cands), undefined);
  });
});
