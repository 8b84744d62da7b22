// GET /v1/models and GET /v1/models/{id} through a real Envoy, answered by Tollgate itself, in the shape each
// official SDK expects (OpenAI: object "list"/"model"; Anthropic, chosen by the anthropic-version header the SDK
// sends: type "model", display_name, created_at, has_more/first_id/last_id), filtered by the caller's policies:
// a model the key may not use is absent from the list and retrieving it is a 404 in that SDK's error shape.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: opus}
spec:
  aliases: [claude-opus-latest]
  deployments:
  - {provider: fake-anthropic, model: claude-opus-4-1-20250805, region: us-east-1}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: "local/*"}
spec:
  deployments:
  - {provider: fake-openai, model: "*", region: us-east-1}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: free-models}
spec:
  matchConditions:
    - {name: free, expression: "principal.tenant == 'globex'"}
  rules:
    - name: no-claude
      models:
        deny: ['claude-*', '*-claude', 'opus']
`;

const ALL = ['bedrock-claude', 'claude-sonnet', 'gpt-4o-mini', 'opus', 'text-embedding-3-small', 'vertex-claude'];
const FREE = ['gpt-4o-mini', 'text-embedding-3-small'];

describe('e2e: GET /v1/models and /v1/models/{id} in each SDK shape, filtered per key', { timeout: 60000 }, () => {
  let h: Harness;
  const openai = (key: string) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 10000 });
  const anthropic = (key: string) => new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, timeout: 10000 });
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic', 'bedrock', 'vertex'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  it('OpenAI SDK models.list: OpenAI objects, only what the key may use', async () => {
    for (const [key, want] of [[KEYS.acme, ALL], [KEYS.globex, FREE]] as const) {
      const ids: string[] = [];
      for await (const m of openai(key).models.list()) {
        assert.equal(m.object, 'model');
        assert.equal(typeof m.created, 'number');
        assert.ok(m.owned_by.startsWith('fake-'), m.owned_by);
        ids.push(m.id);
      }
      assert.deepEqual(ids.sort(), want);
    }
    assert.equal(h.fakes.openai!.requests.length + h.fakes.anthropic!.requests.length, 0, 'answered by Tollgate, no upstream');
  });

  it('OpenAI SDK models.retrieve: the model; an alias and a wildcard match by the name asked; denied or unknown → NotFoundError', async () => {
    const m = await openai(KEYS.acme).models.retrieve('claude-sonnet');
    assert.deepEqual(m, { id: 'claude-sonnet', object: 'model', created: m.created, owned_by: 'fake-anthropic' });
    assert.equal((await openai(KEYS.acme).models.retrieve('claude-opus-latest')).id, 'claude-opus-latest');
    assert.equal((await openai(KEYS.acme).models.retrieve('local/llama3:8b')).owned_by, 'fake-openai');
    for (const [key, id] of [[KEYS.globex, 'claude-sonnet'], [KEYS.globex, 'claude-opus-latest'], [KEYS.globex, 'vertex-claude'], [KEYS.acme, 'no-such-model']] as const) {
      await assert.rejects(openai(key).models.retrieve(id), (err: unknown) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `${id}: ${String(err)}`);
        assert.equal((err.error as { code?: string }).code, 'model_not_found');
        return true;
      });
    }
    assert.equal((await openai(KEYS.globex).models.retrieve('gpt-4o-mini')).id, 'gpt-4o-mini');
    // Lineage keeps the route, not the client-chosen id.
    const { response } = await openai(KEYS.acme).models.retrieve('local/alice-private-finetune').withResponse();
    const id = response.headers.get('x-request-id');
    await eventually(() => h.lineage.some((r) => r.requestId === id));
    const rec = h.lineage.find((r) => r.requestId === id)!;
    assert.equal(rec.request.endpoint, '/v1/models/{id}');
    assert.ok(!JSON.stringify(rec).includes('alice-private-finetune'));
  });

  it('Anthropic SDK models.list: Anthropic objects and paging fields, only what the key may use', async () => {
    for (const [key, want] of [[KEYS.acme, ALL], [KEYS.globex, FREE]] as const) {
      const ids: string[] = [];
      for await (const m of anthropic(key).models.list()) {
        assert.equal(m.type, 'model');
        assert.equal(m.display_name, m.id);
        assert.ok(!Number.isNaN(Date.parse(m.created_at)), m.created_at);
        ids.push(m.id);
      }
      assert.deepEqual(ids.sort(), want);
    }
    // One page of two, then the rest by after_id (the SDK's auto-pagination walks has_more / last_id).
    const page = await anthropic(KEYS.acme).models.list({ limit: 2 });
    assert.equal(page.data.length, 2);
    assert.equal(page.has_more, true);
    assert.equal(page.last_id, page.data[1]!.id);
    const ids: string[] = [];
    for await (const m of anthropic(KEYS.acme).models.list({ limit: 2 })) ids.push(m.id);
    assert.deepEqual(ids.sort(), ALL);
  });

  it('Anthropic SDK models.retrieve: the model; denied → NotFoundError in the Anthropic error shape', async () => {
    const m = await anthropic(KEYS.acme).models.retrieve('vertex-claude');
    assert.deepEqual(m, { type: 'model', id: 'vertex-claude', display_name: 'vertex-claude', created_at: m.created_at });
    await assert.rejects(anthropic(KEYS.globex).models.retrieve('vertex-claude'), (err: unknown) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.equal((err.error as { type?: string; error?: { type?: string } }).error?.type, 'not_found_error');
      return true;
    });
  });

  it('a bad key → 401 in the SDK shape (authentication before the list)', async () => {
    await assert.rejects(anthropic('tg-not-a-real-key-000000000000000000000').models.list(), Anthropic.AuthenticationError);
    await assert.rejects(openai('tg-not-a-real-key-000000000000000000000').models.retrieve('gpt-4o-mini'), OpenAI.AuthenticationError);
  });
});
