// The first vertical slice, end to end: the official OpenAI SDK → real Envoy → Tollgate (gRPC)
// → fake providers, and every error path of the request headers/body phases.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, accessLogFor, eventually, startHarness, type Harness } from '../support/harness.ts';
import { extProcTrouble } from '../support/envoy.ts';

const client = (h: Harness, key = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 10000 });

async function raw(h: Harness, path: string, init: RequestInit & { key?: string } = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set('authorization', `Bearer ${init.key}`);
  const res = await fetch(`${h.url}${path}`, { ...init, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

describe('e2e: OpenAI SDK through a real Envoy', { timeout: 60000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('OpenAI-compatible passthrough, non-stream: routed, credential swapped, usage returned', async () => {
    const res = await client(h).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hi' },
      ],
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(typeof res.choices[0]!.message.content, 'string');
    assert.ok(res.usage && res.usage.total_tokens > 0);
    const got = h.fakes.openai!.requests.at(-1)!;
    assert.equal(got.path, '/v1/chat/completions');
    assert.equal(got.headers.authorization, `Bearer ${h.fakes.openai!.credential}`, 'provider credential injected');
    assert.ok(!JSON.stringify(got.headers).includes(KEYS.acme), 'the virtual key never reaches the provider');
    assert.equal((got.json as any).model, 'gpt-4o-mini-2024-07-18', 'upstream model id of the deployment');
    assert.equal(got.headers['x-tollgate-cluster'], 'fake_openai');
    assert.deepEqual(await extProcTrouble(h.envoy), {}, 'Envoy accepted every mutation and message');
  });

  it('returns x-request-id and served-by headers, and dynamic metadata reaches Envoy', async () => {
    const { data, response } = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.ok(data.id);
    assert.match(response.headers.get('x-request-id') ?? '', /^[\w.:-]{8,}$/);
    assert.equal(response.headers.get('x-tollgate-provider'), 'fake-openai');
    assert.equal(response.headers.get('x-tollgate-model'), 'gpt-4o-mini');
    // Envoy's access log prints Tollgate's dynamic metadata (namespace tollgate).
    const log = await accessLogFor(h, response.headers.get('x-request-id')!);
    assert.equal(log.upstream_cluster, 'fake_openai');
    assert.equal(log.tollgate_tenant, 'acme');
    assert.equal(log.tollgate_provider, 'fake-openai');
    assert.equal(typeof log.tollgate_output_tokens, 'number');
  });

  it('OpenAI → Anthropic, non-stream: valid Messages request with x-api-key + anthropic-version, no Authorization', async () => {
    const res = await client(h).chat.completions.create({
      model: 'claude-sonnet',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Hi.' },
        { role: 'user', content: 'How are you?' },
      ],
      max_tokens: 64,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0]!.message.role, 'assistant');
    assert.ok(res.choices[0]!.message.content!.length > 0);
    assert.ok(res.usage!.prompt_tokens > 0 && res.usage!.completion_tokens > 0);
    const got = h.fakes.anthropic!.requests.at(-1)!;
    assert.equal(got.path, '/v1/messages');
    assert.equal(got.headers['x-api-key'], h.fakes.anthropic!.credential);
    assert.equal(got.headers['anthropic-version'], '2023-06-01');
    assert.equal(got.headers.authorization, undefined, "the client's Authorization is removed");
    const body = got.json as any;
    assert.equal(body.system, 'You are terse.');
    assert.deepEqual(body.messages.map((m: any) => m.role), ['user', 'assistant', 'user']);
    assert.equal(body.max_tokens, 64);
    assert.equal(body.model, 'claude-3-5-sonnet-20241022');
  });

  it('OpenAI → Anthropic, SSE stream: translated chunk by chunk, usage in the last chunk', async () => {
    const stream = await client(h).chat.completions.create({
      model: 'claude-sonnet',
      messages: [{ role: 'user', content: 'Count to three' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const c of stream) {
      chunks++;
      assert.equal(c.object, 'chat.completion.chunk');
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    assert.ok(chunks > 2, `several chunks, got ${chunks}`);
    assert.ok(text.length > 0);
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
    assert.equal(h.fakes.anthropic!.requests.at(-1)!.json && (h.fakes.anthropic!.requests.at(-1)!.json as any).stream, true);
  });

  it('OpenAI-compatible stream passthrough: chunks arrive, usage requested upstream', async () => {
    const stream = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.ok(text.length > 0);
    const up = h.fakes.openai!.requests.at(-1)!.json as any;
    assert.deepEqual(up.stream_options, { include_usage: true }, 'usage asked for so budgets can be charged');
  });

  it('records one lineage record per request with tokens and cost', async () => {
    const before = h.lineage.length;
    await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'lineage' }] });
    await eventually(() => h.lineage.length > before);
    const r = h.lineage.at(-1)!;
    assert.equal(r.outcome, 'success');
    assert.equal(r.principal.tenant, 'acme');
    assert.equal(r.served?.provider, 'fake-openai');
    assert.ok((r.tokens?.input ?? 0) > 0);
    assert.ok((r.costUsd ?? 0) > 0);
  });

  describe('error paths (status + OpenAI error body)', () => {
    const cases: { name: string; path?: string; key?: string; body?: string; method?: string; headers?: Record<string, string>; status: number; code?: string; param?: string; type: string }[] = [
      { name: 'missing key', body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', status: 401, code: 'missing_api_key', type: 'authentication_error' },
      { name: 'unknown key', key: 'tg-this-key-does-not-exist-0000000', body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', status: 401, code: 'invalid_api_key', type: 'authentication_error' },
      { name: 'disabled key', key: KEYS.disabled, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', status: 401, code: 'invalid_api_key', type: 'authentication_error' },
      { name: 'non-virtual bearer', key: 'sk-real-openai-key-from-the-client', body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', status: 401, code: 'invalid_api_key', type: 'authentication_error' },
      { name: 'unknown model', key: KEYS.acme, body: '{"model":"gpt-9-ultra","messages":[{"role":"user","content":"x"}]}', status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' },
      { name: 'malformed JSON', key: KEYS.acme, body: '{"model":"gpt-4o-mini","messages":[', status: 400, type: 'invalid_request_error' },
      { name: 'wrong type', key: KEYS.acme, body: '{"model":"gpt-4o-mini","messages":"hello"}', status: 400, param: 'messages', type: 'invalid_request_error' },
      { name: 'bad role', key: KEYS.acme, body: '{"model":"gpt-4o-mini","messages":[{"role":"wizard","content":"x"}]}', status: 400, param: 'messages[0].role', type: 'invalid_request_error' },
      { name: 'temperature out of range', key: KEYS.acme, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"temperature":"hot"}', status: 400, param: 'temperature', type: 'invalid_request_error' },
      { name: 'body over the limit', key: KEYS.acme, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(300000) }] }), status: 413, code: 'request_too_large', type: 'invalid_request_error' },
      { name: 'unknown endpoint', path: '/v1/fine_tuning/jobs', key: KEYS.acme, body: '{}', status: 404, code: 'unknown_endpoint', type: 'invalid_request_error' },
      { name: 'wrong method', path: '/v1/chat/completions', method: 'GET', key: KEYS.acme, status: 405, code: 'method_not_allowed', type: 'invalid_request_error' },
      { name: 'compressed body', key: KEYS.acme, body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', headers: { 'content-encoding': 'gzip' }, status: 415, code: 'unsupported_content_encoding', type: 'invalid_request_error' },
    ];
    for (const c of cases) {
      it(`${c.name} → ${c.status}`, async () => {
        const beforeCount = h.fakes.openai!.requests.length;
        const r = await raw(h, c.path ?? '/v1/chat/completions', {
          method: c.method ?? 'POST',
          key: c.key,
          body: c.body,
          headers: { 'content-type': 'application/json', ...c.headers },
        });
        assert.equal(r.status, c.status, JSON.stringify(r.json));
        assert.equal(r.json.error.type, c.type);
        assert.equal(typeof r.json.error.message, 'string');
        assert.ok(r.json.error.message.length > 5);
        if (c.code) assert.equal(r.json.error.code, c.code);
        if (c.param) assert.equal(r.json.error.param, c.param);
        assert.equal(h.fakes.openai!.requests.length, beforeCount, 'the provider was never contacted');
      });
    }

    it('the SDK surfaces a 401 as AuthenticationError', async () => {
      await assert.rejects(client(h, 'tg-wrong-key-000000000000000000000').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    });
    it('the SDK surfaces an unknown model as NotFoundError', async () => {
      await assert.rejects(client(h).chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError);
    });
  });

  describe('anti-spoofing', () => {
    it('client-supplied x-tollgate-* headers never steer routing or reach the provider', async () => {
      const r = await raw(h, '/v1/chat/completions', {
        method: 'POST',
        key: KEYS.acme,
        body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}',
        headers: { 'content-type': 'application/json', 'x-tollgate-cluster': 'fake_anthropic', 'x-tollgate-tenant': 'globex', 'x-tollgate-host': 'evil.example' },
      });
      assert.equal(r.status, 200);
      assert.equal((await accessLogFor(h, r.headers.get('x-request-id')!)).upstream_cluster, 'fake_openai');
      const got = h.fakes.openai!.requests.at(-1)!;
      assert.equal(got.headers['x-tollgate-tenant'], undefined);
      assert.notEqual(got.headers.host, 'evil.example');
      await eventually(() => h.lineage.some((l) => l.requestId === r.headers.get('x-request-id')));
      assert.equal(h.lineage.find((l) => l.requestId === r.headers.get('x-request-id'))!.principal.tenant, 'acme');
    });

    it('an unrouted request cannot pick a cluster by header (rejected before routing)', async () => {
      const r = await raw(h, '/v1/chat/completions', {
        method: 'POST',
        body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}',
        headers: { 'content-type': 'application/json', 'x-tollgate-cluster': 'fake_openai' },
      });
      assert.equal(r.status, 401);
    });
  });

  it('GET /v1/models lists the models, answered by Tollgate itself', async () => {
    const list = await client(h).models.list();
    const ids = list.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['claude-sonnet', 'gpt-4o-mini', 'text-embedding-3-small']);
  });

  it('embeddings through the OpenAI SDK', async () => {
    const res = await client(h).embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    assert.equal(res.data.length, 2);
    assert.ok(Array.isArray(res.data[0]!.embedding));
    assert.equal(h.fakes.openai!.requests.at(-1)!.path, '/v1/embeddings');
  });
});
