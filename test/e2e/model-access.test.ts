// Model access rules cannot be routed around (issue #11 items 1, 5, 6), with the official SDKs:
//  * a free-tier key that names an allowed model plus a forbidden `models` fallback, with the
//    primary knocked out (provider.ignore, context window, missing credential), is refused or served
//    by an allowed model — the forbidden model's provider receives nothing; same on /v1/messages;
//    aliases, wildcards and provider.order/only do not help; model-scoped rate limits count on the
//    model that serves;
//  * a model name carrying an email is refused (400) and no lineage or log line carries it; what a
//    wildcard lets through is scrubbed in lineage;
//  * two clients sending the same x-request-id get two lineage records with Tollgate's own ids.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { toProtoJson, type LineageRecord } from '../../service/lineage/record.ts';
import { eventually, KEYS, startHarness, type Harness } from '../support/harness.ts';
import { memoryLogger } from '../support/memory-log.ts';

const UNSET_ENV = 'TG_TEST_MODEL_ACCESS_UNSET_KEY';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: fake-nocred}
spec:
  api: openai
  cluster: fake_openai
  host: 127.0.0.1:9
  basePath: /v1
  credential: {env: ${UNSET_ENV}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: cheap-chat}
spec:
  deployments:
  - {provider: fake-openai, model: cheap-upstream, region: us-east-1, pricing: {inputPerMillion: 0.1, outputPerMillion: 0.2}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: tiny-chat}
spec:
  deployments:
  - {provider: fake-openai, model: tiny-upstream, region: us-east-1, contextWindow: 200}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: nocred-chat}
spec:
  deployments:
  - {provider: fake-nocred, model: nocred-upstream, region: us-east-1}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: gpt-4o}
spec:
  aliases: [smart]
  deployments:
  - {provider: fake-azure, model: gpt-4o-upstream, region: us-east-1, pricing: {inputPerMillion: 2.5, outputPerMillion: 10}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: "gpt-4o-tuned/*"}
spec:
  deployments:
  - {provider: fake-azure, model: "*", region: us-east-1}
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
    - name: no-premium
      models:
        deny: ['gpt-4o*']
        messageExpression: "'the free tier cannot use ' + request.model"
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: support-per-model}
spec:
  matchConditions:
    - {name: support, expression: "principal.team == 'support'"}
  rules:
    - name: one-per-model
      rateLimit: {scope: model, rpm: 1}
`;

const EMAIL_A = 'alice.model-access@example.com';
const EMAIL_B = 'bob.model-access@example.com';
const CARD = '4111111111111111';


type ApiError = { status?: number; code?: string | null; param?: string | null; headers?: Headers; error?: unknown };

async function caught(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    return e as ApiError;
  }
  throw new Error('expected the request to be refused');
}

describe('e2e: model access rules hold for every model a request can end up on', { timeout: 120000 }, () => {
  let h: Harness;
  let logs: () => string;
  before(async () => {
    delete process.env[UNSET_ENV];
    const m = memoryLogger();
    logs = m.text;
    h = await startHarness({ providers: ['openai', 'anthropic', 'azure'], extraYaml: EXTRA, tollgate: { log: m.log, lineageSinks: ['stdout'] } });
  });
  after(async () => {
    await h?.close();
  });

  const openai = (key = KEYS.globex) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });
  const anthropic = (key = KEYS.globex) => new Anthropic({ apiKey: key, baseURL: h.baseURL.replace(/\/v1$/, ''), maxRetries: 0, timeout: 15000 });
  const azureCount = () => h.fakes.azure!.requests.length;

  async function record(requestId: string | null | undefined): Promise<LineageRecord> {
    assert.ok(requestId, 'x-request-id on the response');
    await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
    return h.lineage.find((r) => r.requestId === requestId)!;
  }

  /** Sends an OpenAI chat request with OpenRouter-style fields. */
  function chat(body: Record<string, unknown>, key = KEYS.globex) {
    return openai(key).chat.completions.create({ messages: [{ role: 'user', content: 'hello' }], max_tokens: 16, ...body } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse();
  }

  // Three ways to knock the allowed primary out; each leaves the forbidden fallback as the next candidate.
  const knockouts: { name: string; body: Record<string, unknown>; refusal: { status: number; code: string } }[] = [
    { name: 'provider.ignore', body: { model: 'cheap-chat', provider: { ignore: ['fake-openai'] } }, refusal: { status: 403, code: 'model_not_allowed' } },
    { name: 'context window', body: { model: 'tiny-chat', messages: [{ role: 'user', content: 'word '.repeat(400) }] }, refusal: { status: 400, code: 'context_length_exceeded' } },
    { name: 'missing credential', body: { model: 'nocred-chat' }, refusal: { status: 503, code: 'provider_unavailable' } },
  ];

  for (const k of knockouts) {
    it(`OpenAI SDK, primary knocked out by ${k.name}: a forbidden fallback alone → refused, its provider gets nothing`, async () => {
      const azure = azureCount();
      const e = await caught(chat({ ...k.body, models: ['gpt-4o'] }));
      assert.equal(e.status, k.refusal.status, JSON.stringify(e.error));
      assert.equal(e.code, k.refusal.code);
      assert.equal(azureCount(), azure, 'the forbidden model was never called');
      const r = await record(e.headers?.get('x-request-id'));
      assert.equal(r.served, undefined);
      assert.deepEqual(r.policy?.droppedCandidates, [
        { model: 'gpt-4o', param: 'models[0]', policy: 'free-models', rule: 'no-premium', message: 'the free tier cannot use gpt-4o' },
      ]);
    });

    it(`OpenAI SDK, primary knocked out by ${k.name}: forbidden then allowed fallback → served by the allowed one`, async () => {
      const azure = azureCount();
      const claude = h.fakes.anthropic!.requests.length;
      const { data, response } = await chat({ ...k.body, models: ['gpt-4o', 'claude-sonnet'] });
      assert.equal(data.object, 'chat.completion');
      assert.equal(response.headers.get('x-tollgate-model'), 'claude-sonnet');
      assert.equal(h.fakes.anthropic!.requests.length, claude + 1);
      assert.equal(azureCount(), azure, 'the forbidden model was never called');
      const r = await record(response.headers.get('x-request-id'));
      assert.equal(r.served?.model, 'claude-sonnet');
      assert.deepEqual(r.policy?.droppedCandidates?.map((d) => [d.model, d.param, d.rule]), [['gpt-4o', 'models[0]', 'no-premium']]);
    });
  }

  it('the forbidden model named directly, or with an allowed fallback, is denied as before', async () => {
    const azure = azureCount();
    const e = await caught(chat({ model: 'gpt-4o', models: ['claude-sonnet'] }));
    assert.equal(e.status, 403);
    assert.equal(e.code, 'model_not_allowed');
    assert.equal(azureCount(), azure);
  });

  const disguises: { name: string; body: Record<string, unknown> }[] = [
    { name: 'an alias of the forbidden model', body: { model: 'cheap-chat', models: ['smart'], provider: { ignore: ['fake-openai'] } } },
    { name: 'a wildcard model the deny glob covers', body: { model: 'cheap-chat', models: ['gpt-4o-tuned/v2'], provider: { ignore: ['fake-openai'] } } },
    { name: 'provider.only naming the forbidden model\'s provider', body: { model: 'cheap-chat', models: ['gpt-4o'], provider: { only: ['fake-azure'] } } },
    { name: 'two forbidden fallbacks (an alias, then the name)', body: { model: 'cheap-chat', models: ['smart', 'gpt-4o'], provider: { ignore: ['fake-openai'] } } },
  ];
  for (const d of disguises) {
    it(`${d.name} cannot route around the rule`, async () => {
      const azure = azureCount();
      const e = await caught(chat(d.body));
      assert.equal(e.status, 403, JSON.stringify(e.error));
      assert.equal(e.code, 'model_not_allowed');
      assert.equal(e.param, 'models[0]');
      assert.equal(azureCount(), azure, 'the forbidden model was never called');
    });
  }

  it('provider.order listing the forbidden model\'s provider first still serves the allowed primary', async () => {
    const azure = azureCount();
    const { response } = await chat({ model: 'cheap-chat', models: ['gpt-4o'], provider: { order: ['fake-azure', 'fake-openai'] } });
    assert.equal(response.headers.get('x-tollgate-model'), 'cheap-chat');
    assert.equal(azureCount(), azure);
  });

  it('Anthropic SDK on /v1/messages: forbidden fallback refused; with an allowed one after it, served by that one', async () => {
    const azure = azureCount();
    const body = { model: 'cheap-chat', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }], provider: { ignore: ['fake-openai'] } };
    const e = await caught(anthropic().messages.create({ ...body, models: ['gpt-4o'] } as unknown as Anthropic.MessageCreateParamsNonStreaming));
    assert.ok(e instanceof Anthropic.PermissionDeniedError, String(e));
    assert.equal((e.error as { error?: { message?: string } }).error?.message, 'the free tier cannot use gpt-4o');
    const { data, response } = await anthropic()
      .messages.create({ ...body, models: ['gpt-4o', 'claude-sonnet'] } as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    assert.equal(data.type, 'message');
    assert.equal(response.headers.get('x-tollgate-model'), 'claude-sonnet');
    assert.equal(azureCount(), azure, 'the forbidden model was never called');
  });

  it('a model-scoped rate limit counts on the model that serves, not on the one named first', async () => {
    // One request a minute per model for the support key: claude-sonnet's is used up directly …
    await openai(KEYS.acmeSupport).chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'one' }], max_tokens: 8 });
    // … so reaching claude-sonnet as a fallback of another model is refused too.
    const claude = h.fakes.anthropic!.requests.length;
    const e = await caught(chat({ model: 'cheap-chat', models: ['claude-sonnet'], provider: { ignore: ['fake-openai'] } }, KEYS.acmeSupport));
    assert.equal(e.status, 429);
    assert.equal(h.fakes.anthropic!.requests.length, claude, 'the fallback was not called');
  });

  it('a model name carrying an email is refused (400) and nothing records it', async () => {
    const openaiCount = h.fakes.openai!.requests.length;
    const a = await caught(chat({ model: `local/${EMAIL_A}` }, KEYS.acme));
    assert.equal(a.status, 400);
    assert.equal(a.code, 'invalid_model');
    assert.equal(a.param, 'model');
    const b = await caught(chat({ model: 'cheap-chat', models: [`local/${EMAIL_B}`] }, KEYS.acme));
    assert.equal(b.status, 400);
    assert.equal(b.param, 'models[0]');
    const c = await caught(anthropic(KEYS.acme).messages.create({ model: `local/${EMAIL_A}`, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(c.status, 400);
    assert.equal(h.fakes.openai!.requests.length, openaiCount, 'no provider was called');
    for (const x of [a, b, c]) await record(x.headers?.get('x-request-id'));
    await h.tollgate.lineage.flush();
    const everything = `${JSON.stringify(h.lineage.map((r) => toProtoJson(r)))}\n${logs()}`;
    for (const secret of [EMAIL_A, EMAIL_B, 'alice.model-access', 'bob.model-access']) assert.ok(!everything.includes(secret), `lineage and logs must not contain ${secret}`);
  });

  it('what a wildcard lets through is scrubbed in lineage (served, but no card number recorded)', async () => {
    const { response } = await chat({ model: `local/${CARD}` }, KEYS.acme);
    assert.equal(response.status, 200);
    const r = await record(response.headers.get('x-request-id'));
    assert.equal(r.request.requestedModel, 'local/[CREDIT_CARD]');
    assert.equal(r.served?.model, 'local/[CREDIT_CARD]');
    assert.equal(r.served?.upstreamModel, '[CREDIT_CARD]');
    await h.tollgate.lineage.flush();
    assert.ok(!JSON.stringify(toProtoJson(r)).includes(CARD));
    assert.ok(!logs().includes(CARD), 'no log line carries it');
  });

  it('two clients sending the same x-request-id get two records with Tollgate\'s ids, each keeping the client id', async () => {
    const shared = 'client-chosen-request-id-0001';
    const one = await openai(KEYS.acme).chat.completions.create({ model: 'cheap-chat', messages: [{ role: 'user', content: 'a' }] }, { headers: { 'x-request-id': shared } }).withResponse();
    const two = await openai(KEYS.globex).chat.completions.create({ model: 'cheap-chat', messages: [{ role: 'user', content: 'b' }] }, { headers: { 'x-request-id': shared } }).withResponse();
    const ida = one.response.headers.get('x-request-id');
    const idb = two.response.headers.get('x-request-id');
    assert.ok(ida && idb && ida !== idb, `distinct ids: ${ida} ${idb}`);
    assert.notEqual(ida, shared);
    const ra = await record(ida);
    const rb = await record(idb);
    assert.deepEqual([ra.principal.tenant, rb.principal.tenant], ['acme', 'globex']);
    assert.equal(ra.request.clientRequestId, shared);
    assert.equal(rb.request.clientRequestId, shared);
    assert.equal(h.lineage.filter((r) => r.requestId === shared).length, 0, 'the client id is never a record id');
    // The provider sees Tollgate's id too.
    assert.ok(h.fakes.openai!.requests.some((q) => q.headers['x-request-id'] === ida));
  });
});
