// Client-chosen model names: the catalog's character set (400 otherwise, without echoing the name),
// and the lineage-safe form of names a wildcard let through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { checkModelNames, ModelNameScrubber } from '../../service/gateway/model-names.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { dep, model, PROVIDERS } from '../routing/fixtures.ts';

const catalog = new Catalog(
  [
    model('gpt-4o', [dep('gpt-4o/openai', 'openai')], { aliases: ['gpt-4o@2024-08-06'] }),
    model('local/*', [dep('local/vllm', 'vllm', { upstreamModel: '*' })]),
  ],
  PROVIDERS,
);

function refused(body: Record<string, unknown>, param: string, secret: string): void {
  assert.throws(
    () => checkModelNames(catalog, body),
    (e: unknown) => {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'invalid_model');
      assert.equal(e.param, param);
      assert.ok(!e.message.includes(secret), `the message must not echo the name: ${e.message}`);
      return true;
    },
  );
}

describe('checkModelNames', () => {
  it('refuses an email in a wildcard name, in model and in models[i]', () => {
    refused({ model: 'local/alice@example.com' }, 'model', 'alice');
    refused({ model: 'gpt-4o', models: ['local/x', 'local/bob@example.com'] }, 'models[1]', 'bob');
    refused({ model: 'local/a b' }, 'model', 'a b');
    refused({ model: 'local/x\nInjected: 1' }, 'model', 'Injected');
  });

  it('accepts configured names and aliases as written, and names of the allowed characters', () => {
    for (const m of ['gpt-4o', 'gpt-4o@2024-08-06', 'local/llama3:8b-instruct', 'local/Qwen/qwen2.5-7b', 'unknown-model']) {
      assert.doesNotThrow(() => checkModelNames(catalog, { model: m, models: [m] }), m);
    }
  });

  it('the catalog refuses @ in a wildcard suffix too (resolve)', () => {
    assert.throws(() => catalog.resolve('local/alice@example.com'), (e: unknown) => e instanceof GatewayError && e.status === 400 && !e.message.includes('alice'));
  });
});

describe('ModelNameScrubber', () => {
  it('scrubs what a detector finds in a wildcard-matched name, and the same text in messages', () => {
    const s = new ModelNameScrubber(catalog);
    const name = 'local/4111111111111111';
    const safe = s.name(name);
    assert.equal(safe, 'local/[CREDIT_CARD]');
    assert.equal(s.upstream('4111111111111111', name), '[CREDIT_CARD]');
    assert.equal(s.text(`model:${name}`), 'model:local/[CREDIT_CARD]');
  });

  it('leaves configured names and ordinary wildcard names alone', () => {
    const s = new ModelNameScrubber(catalog);
    for (const n of ['gpt-4o', 'gpt-4o@2024-08-06', 'local/llama3:8b', 'local/qwen2.5-7b-instruct', 'local/llama-3.1-70b-2024-07-23']) assert.equal(s.name(n), n);
    assert.equal(s.text('the free tier cannot use gpt-4o'), 'the free tier cannot use gpt-4o');
  });
});
