import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigErrors } from '../../service/config/documents.ts';
import { renderError, GatewayError } from '../../service/errors.ts';
import { Catalog, toOpenAIModel } from '../../service/routing/catalog.ts';
import { dep, model, PROVIDERS } from './fixtures.ts';

const models = [
  model('gpt-4o', [dep('gpt-4o/openai', 'openai', { upstreamModel: 'gpt-4o-2024-08-06' }), dep('gpt-4o/azure', 'azure-eu', { upstreamModel: 'gpt4o-prod', contextWindow: 64_000, region: 'eu-west-1' })], {
    aliases: ['gpt4', 'default'],
  }),
  model('text-embedding-3-small', [dep('emb/openai', 'openai', { upstreamModel: 'text-embedding-3-small' })], { kind: 'embedding' }),
  model('ollama/*', [dep('ollama/local', 'ollama', { upstreamModel: '*' })]),
  model('ollama/qwen/*', [dep('ollama/qwen', 'vllm', { upstreamModel: 'Qwen/*' })]),
  model('fw/*', [dep('fw/0', 'openai', { upstreamModel: 'accounts/fireworks/models/*' })]),
];
const catalog = new Catalog(models, PROVIDERS);

describe('catalog lookup', () => {
  const cases: { name: string; via: 'name' | 'alias' | 'wildcard'; model: string; upstream: string[] }[] = [
    { name: 'gpt-4o', via: 'name', model: 'gpt-4o', upstream: ['gpt-4o-2024-08-06', 'gpt4o-prod'] },
    { name: 'gpt4', via: 'alias', model: 'gpt-4o', upstream: ['gpt-4o-2024-08-06', 'gpt4o-prod'] },
    { name: 'default', via: 'alias', model: 'gpt-4o', upstream: ['gpt-4o-2024-08-06', 'gpt4o-prod'] },
    { name: 'ollama/llama3', via: 'wildcard', model: 'ollama/llama3', upstream: ['llama3'] },
    { name: 'ollama/llama3:8b-instruct', via: 'wildcard', model: 'ollama/llama3:8b-instruct', upstream: ['llama3:8b-instruct'] },
    // longest prefix wins
    { name: 'ollama/qwen/qwen2.5-7b', via: 'wildcard', model: 'ollama/qwen/qwen2.5-7b', upstream: ['Qwen/qwen2.5-7b'] },
    { name: 'fw/llama-v3p1-8b', via: 'wildcard', model: 'fw/llama-v3p1-8b', upstream: ['accounts/fireworks/models/llama-v3p1-8b'] },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.model} via ${c.via}`, () => {
      const r = catalog.lookup(c.name);
      assert.equal(r.via, c.via);
      assert.equal(r.model.name, c.model);
      assert.deepEqual(
        r.entries.map((e) => e.deployment.upstreamModel),
        c.upstream,
      );
      assert.deepEqual(
        r.entries.map((e) => e.info.model),
        c.upstream.map(() => c.model),
      );
    });
  }

  it('does not mutate the wildcard model config', () => {
    catalog.lookup('ollama/mistral');
    assert.equal(models[2]!.deployments[0]!.upstreamModel, '*');
    assert.equal(catalog.lookup('ollama/a').model.name, 'ollama/a');
  });

  for (const name of ['gpt-5', 'GPT-4O', 'ollama/', 'ollama', 'text-embedding-3']) {
    it(`unknown '${name}' → 404 model_not_found`, () => {
      assert.throws(
        () => catalog.lookup(name),
        (e: unknown) => {
          assert.ok(e instanceof GatewayError);
          assert.equal(e.status, 404);
          assert.equal(e.code, 'model_not_found');
          assert.equal(e.param, 'model');
          assert.equal(e.message, `model '${name}' does not exist or you do not have access to it`);
          const body = JSON.parse(renderError(e, 'openai').body.toString());
          assert.equal(body.error.code, 'model_not_found');
          return true;
        },
      );
    });
  }

  for (const name of ['ollama/../admin', 'ollama/a b', 'ollama//x', 'ollama/x?y=1', 'ollama/%2e%2e', `ollama/${'a'.repeat(201)}`, 'ollama//']) {
    it(`unsafe wildcard suffix in '${name.slice(0, 30)}' → 400 invalid_model`, () => {
      assert.throws(
        () => catalog.lookup(name, 'models[1]'),
        (e: unknown) => e instanceof GatewayError && e.status === 400 && e.code === 'invalid_model' && e.param === 'models[1]',
      );
    });
  }
});

describe('catalog build errors', () => {
  const cases: { name: string; models: ReturnType<typeof model>[]; expect: RegExp }[] = [
    { name: 'duplicate model', models: [model('a', [dep('a/0', 'openai')]), model('a', [dep('a/1', 'openai')])], expect: /name 'a' is already used by model 'a'/ },
    { name: 'alias collides with model', models: [model('a', [dep('a/0', 'openai')]), model('b', [dep('b/0', 'openai')], { aliases: ['a'] })], expect: /model 'b': name 'a' is already used/ },
    { name: 'unknown provider', models: [model('a', [dep('a/0', 'nope')])], expect: /deployment 'a\/0' uses unknown provider 'nope'/ },
    { name: 'duplicate deployment id', models: [model('a', [dep('x', 'openai'), dep('x', 'ollama')])], expect: /deployment id 'x' is not unique/ },
    { name: 'star in the middle', models: [model('a/*/b', [dep('a/0', 'openai', { upstreamModel: '*' })])], expect: /exactly one '\*', at the end/ },
    { name: 'wildcard without star upstream', models: [model('a/*', [dep('a/0', 'openai', { upstreamModel: 'fixed' })])], expect: /needs '\*' in its upstream model/ },
    { name: 'wildcard with aliases', models: [model('a/*', [dep('a/0', 'openai', { upstreamModel: '*' })], { aliases: ['b'] })], expect: /wildcard model cannot have aliases/ },
    { name: 'no deployments', models: [model('a', [])], expect: /needs at least one deployment/ },
    { name: 'negative weight', models: [model('a', [dep('a/0', 'openai', { weight: -1 })])], expect: /weight must be a finite number/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.throws(
        () => new Catalog(c.models, PROVIDERS),
        (e: unknown) => e instanceof ConfigErrors && c.expect.test(e.message),
      );
    });
  }

  it('reports every problem at once', () => {
    try {
      new Catalog([model('a', [dep('a/0', 'nope')]), model('b', [dep('b/0', 'nope2')])], PROVIDERS);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof ConfigErrors);
      assert.equal(e.errors.length, 2);
    }
  });
});

describe('listModels', () => {
  it('lists concrete models in config order, skipping wildcard patterns', () => {
    assert.deepEqual(
      catalog.listModels().map((l) => l.id),
      ['gpt-4o', 'text-embedding-3-small'],
    );
  });
  it('filters by kind and by the policy include callback', () => {
    assert.deepEqual(catalog.listModels({ kind: 'embedding' }).map((l) => l.id), ['text-embedding-3-small']);
    assert.deepEqual(catalog.listModels({ include: (m) => m.name !== 'gpt-4o' }).map((l) => l.id), ['text-embedding-3-small']);
  });
  it('optionally lists aliases and wildcards', () => {
    const ids = catalog.listModels({ includeAliases: true, includeWildcards: true }).map((l) => `${l.id}${l.aliasOf ? `→${l.aliasOf}` : ''}`);
    assert.deepEqual(ids, ['gpt-4o', 'gpt4→gpt-4o', 'default→gpt-4o', 'text-embedding-3-small', 'ollama/*', 'ollama/qwen/*', 'fw/*']);
  });
  it('reports providers and the largest context window; renders OpenAI list items', () => {
    const l = catalog.listModels()[0]!;
    assert.deepEqual(l.providers, ['openai', 'azure-eu']);
    assert.equal(l.contextWindow, 128_000);
    assert.deepEqual(toOpenAIModel(l, 1700000000), { id: 'gpt-4o', object: 'model', created: 1700000000, owned_by: 'openai' });
  });
});
