// The built-in mock provider: answer shapes (OpenAI chat / embeddings, Anthropic Messages; JSON and SSE,
// usage included), its server's credential checks, Tollgate's own translators reading its answers, and
// the load-time rule that lets a mock deployment serve only while a model's real providers have no credential.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClientApi } from '../../service/errors.ts';
import type { ProviderConfig, DeploymentConfig } from '../../service/config/types.ts';
import { loadCoreConfig } from '../../service/config/loader.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { Operation, UpstreamTarget } from '../../service/providers/types.ts';
import {
  anthropicEvents,
  anthropicMessage,
  MockRequestError,
  openAIChatChunks,
  openAIChatCompletion,
  openAIEmbeddings,
  planAnthropicMessage,
  planOpenAIChat,
} from '../../service/standalone/mock-answers.ts';
import { startMockUpstream, type MockUpstream } from '../../service/standalone/mock-upstream.ts';

const KEY = 'tg-mock-unit-test-key';

function mockTarget(credential: string | undefined = KEY): UpstreamTarget {
  const provider: ProviderConfig = {
    name: 'mock',
    api: 'mock',
    cluster: 'mock',
    host: 'mock.tollgate.internal',
    basePath: '/v1',
    credential: { kind: 'env', name: 'TG_MOCK_UNIT' },
    apiVersion: '2023-06-01',
    dataRetention: false,
    selfHosted: true,
  };
  const deployment: DeploymentConfig = {
    id: 'm/mock',
    provider: 'mock',
    upstreamModel: 'gpt-4o-mini',
    region: 'local',
    inputPricePerM: 1,
    outputPricePerM: 2,
    contextWindow: 128000,
    weight: 1,
    priority: 9,
  };
  return { provider, deployment, credential };
}

async function post(m: MockUpstream, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://${m.host}:${m.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** SSE `data:` payloads (and event names) of a body. */
function sseEvents(text: string): { event?: string; data: string }[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const event = /^event: (.*)$/m.exec(b)?.[1];
      const data = /^data: (.*)$/m.exec(b)![1]!;
      return event ? { event, data } : { data };
    });
}

describe('mock answers', () => {
  it('OpenAI chat: a completion quoting the last user message, usage adding up', () => {
    const p = planOpenAIChat({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }] }, 'chatcmpl-1', 100);
    const c = openAIChatCompletion(p) as any;
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'gpt-4o-mini');
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.match(c.choices[0].message.content, /mock provider for gpt-4o-mini.*You said: "hello there"/);
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.usage.prompt_tokens, Math.ceil('be briefhello there'.length / 4));
    assert.equal(c.usage.completion_tokens, c.choices[0].message.content.split(' ').length);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  });

  it('OpenAI chat: content parts, n choices and max_completion_tokens (finish "length")', () => {
    const p = planOpenAIChat({ model: 'm', n: 2, max_completion_tokens: 3, messages: [{ role: 'user', content: [{ type: 'text', text: 'part one' }] }] }, 'x', 1);
    const c = openAIChatCompletion(p) as any;
    assert.equal(c.choices.length, 2);
    for (const ch of c.choices) {
      assert.equal(ch.finish_reason, 'length');
      assert.equal(ch.message.content.split(' ').length, 3);
    }
    assert.equal(c.usage.completion_tokens, 6);
  });

  it('OpenAI SSE: role, content deltas, finish, then a usage chunk when asked, then [DONE]', () => {
    const p = planOpenAIChat({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }, 'id1', 1);
    const chunks = openAIChatChunks(p);
    assert.equal(chunks.at(-1), '[DONE]');
    const parsed = chunks.slice(0, -1).map((c) => JSON.parse(c));
    assert.equal(parsed[0].choices[0].delta.role, 'assistant');
    const text = parsed.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, (openAIChatCompletion(p) as any).choices[0].message.content);
    const last = parsed.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, p.completionTokens);
    assert.equal(parsed.at(-2).choices[0].finish_reason, 'stop');
    // Without include_usage: no usage chunk.
    const plain = openAIChatChunks(planOpenAIChat({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }, 'id2', 1));
    assert.ok(plain.slice(0, -1).every((c) => JSON.parse(c).usage === undefined));
  });

  it('Anthropic: a message with usage; the SSE events Anthropic sends, in order', () => {
    const p = planAnthropicMessage({ model: 'claude-sonnet', max_tokens: 100, system: 'sys', messages: [{ role: 'user', content: [{ type: 'text', text: 'bonjour' }] }] }, 'msg_1');
    const m = anthropicMessage(p) as any;
    assert.equal(m.type, 'message');
    assert.equal(m.stop_reason, 'end_turn');
    assert.match(m.content[0].text, /You said: "bonjour"/);
    assert.deepEqual(m.usage, { input_tokens: Math.ceil('sysbonjour'.length / 4), output_tokens: m.content[0].text.split(' ').length });
    const names = anthropicEvents(p).map(([e]) => e);
    assert.deepEqual([names[0], names[1], names.at(-3), names.at(-2), names.at(-1)], ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop']);
    const delta = anthropicEvents(p).find(([e]) => e === 'message_delta')![1] as any;
    assert.equal(delta.usage.output_tokens, m.usage.output_tokens);
    const cut = anthropicMessage(planAnthropicMessage({ model: 'c', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }, 'm2')) as any;
    assert.equal(cut.stop_reason, 'max_tokens');
    assert.equal(cut.usage.output_tokens, 2);
  });

  it('embeddings: one deterministic unit vector per input, usage counted', () => {
    const a = openAIEmbeddings({ model: 'e', input: ['alpha', 'beta'] }) as any;
    const b = openAIEmbeddings({ model: 'e', input: 'alpha', dimensions: 16 }) as any;
    assert.equal(a.data.length, 2);
    assert.deepEqual(a.data[0].embedding, b.data[0].embedding);
    assert.notDeepEqual(a.data[0].embedding, a.data[1].embedding);
    assert.ok(Math.abs(Math.hypot(...a.data[0].embedding) - 1) < 1e-4);
    assert.equal(a.usage.prompt_tokens, Math.ceil('alphabeta'.length / 4));
  });

  it('refuses malformed requests with the parameter named', () => {
    assert.throws(() => planOpenAIChat({ model: 'm', messages: [] }, 'x', 1), (e: unknown) => e instanceof MockRequestError && e.param === 'messages');
    assert.throws(() => planAnthropicMessage({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'x'), (e: unknown) => e instanceof MockRequestError && e.param === 'max_tokens');
    assert.throws(() => openAIEmbeddings({ model: 'm', input: [] }), (e: unknown) => e instanceof MockRequestError && e.param === 'input');
  });
});

describe('mock upstream server', () => {
  let m: MockUpstream;
  before(async () => {
    m = await startMockUpstream({ key: KEY });
  });
  after(() => m.close());

  it('checks the credential Tollgate injects: Bearer on OpenAI paths, x-api-key + anthropic-version on Anthropic', async () => {
    const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const none = await post(m, '/v1/chat/completions', {}, chat);
    assert.equal(none.status, 401);
    assert.equal(JSON.parse(none.text).error.type, 'invalid_request_error');
    assert.equal((await post(m, '/v1/chat/completions', { authorization: 'Bearer wrong' }, chat)).status, 401);
    assert.equal((await post(m, '/v1/chat/completions', { authorization: `Bearer ${KEY}` }, chat)).status, 200);
    const msg = { model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const anth = await post(m, '/v1/messages', { authorization: `Bearer ${KEY}`, 'anthropic-version': '2023-06-01' }, msg);
    assert.equal(anth.status, 401);
    assert.equal(JSON.parse(anth.text).type, 'error');
    assert.equal((await post(m, '/v1/messages', { 'x-api-key': KEY }, msg)).status, 400, 'anthropic-version required');
    assert.equal((await post(m, '/v1/messages', { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' }, msg)).status, 200);
  });

  it('answers SSE with text/event-stream; 400 in the provider shape for bad JSON; 404 elsewhere', async () => {
    const s = await post(m, '/v1/chat/completions', { authorization: `Bearer ${KEY}` }, { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(s.status, 200);
    assert.match(s.type, /text\/event-stream/);
    assert.equal(sseEvents(s.text).at(-1)!.data, '[DONE]');
    const bad = await post(m, '/v1/chat/completions', { authorization: `Bearer ${KEY}` }, '{nope');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).error.message, /not valid JSON/);
    assert.equal((await post(m, '/v1/files', { authorization: `Bearer ${KEY}` }, {})).status, 404);
  });

  // Tollgate's own translators for the mock kind build the upstream request and read the answer back.
  const cases: { name: string; client: ClientApi; op: Operation; path: string; body: Record<string, unknown> }[] = [
    { name: 'OpenAI chat', client: 'openai', op: 'chat', path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } },
    { name: 'OpenAI chat, streamed', client: 'openai', op: 'chat', path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] } },
    { name: 'Anthropic Messages', client: 'anthropic', op: 'chat', path: '/v1/messages', body: { model: 'claude-sonnet', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] } },
    { name: 'Anthropic Messages, streamed', client: 'anthropic', op: 'chat', path: '/v1/messages', body: { model: 'claude-sonnet', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'hi' }] } },
    { name: 'OpenAI embeddings', client: 'openai', op: 'embeddings', path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'hi' } },
  ];
  for (const c of cases) {
    it(`translator round trip: ${c.name} (usage reaches Tollgate)`, async () => {
      const req = parseClientRequest(c.client, c.op, Buffer.from(JSON.stringify(c.body)));
      const t = getTranslator(c.client, c.op, 'mock');
      const up = await t.request(req, mockTarget());
      assert.equal(up.path, c.path);
      const res = await fetch(`http://${m.host}:${m.port}${up.path}`, { method: 'POST', headers: up.headers, body: up.body, signal: AbortSignal.timeout(5000) });
      const raw = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, raw.toString());
      if (req.stream) {
        const st = t.stream(req);
        const out = Buffer.concat([st.push(raw.subarray(0, 37)), st.push(raw.subarray(37)), st.end()]).toString();
        assert.ok(st.usage()!.outputTokens > 0 && st.usage()!.inputTokens > 0, JSON.stringify(st.usage()));
        assert.equal(st.error?.(), undefined);
        // The client gets the reply word by word, in its own API's stream shape, to the end marker.
        assert.match(out, /"(text|content)":" mock"/);
        assert.match(out, c.client === 'openai' ? /data: \[DONE\]\n\n$/ : /event: message_stop\n/);
      } else {
        const tr = t.response(res.status, Object.fromEntries(res.headers), raw, req);
        assert.equal(tr.status, 200);
        assert.ok(tr.usage!.inputTokens > 0, JSON.stringify(tr.usage));
        if (c.op === 'chat') assert.ok(tr.usage!.outputTokens > 0);
      }
    });
  }
});

describe('mock stand-in rule (config load)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-mock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'all.yaml'),
    `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: real}
spec: {api: openai, cluster: real, host: real.example.com, credential: {env: TG_MOCK_TEST_REAL_KEY}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: local}
spec: {api: openai, cluster: local, host: local.example.com, credential: {none: true}, selfHosted: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: mock}
spec: {api: mock, cluster: mock, host: mock.internal, basePath: /v1, credential: {env: TG_MOCK_TEST_MOCK_KEY}, selfHosted: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: paid}
spec:
  deployments:
  - {provider: real, model: paid, region: us-east-1}
  - {provider: mock, model: paid, region: local, priority: 9}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: self}
spec:
  deployments:
  - {provider: local, model: self, region: local}
  - {provider: mock, model: self, region: local, priority: 9}
`,
  );
  const providersOf = (model: string) => loadCoreConfig(dir).models.find((m) => m.name === model)!.deployments.map((d) => d.provider);

  it('keeps the mock deployment while no real provider of the model has a credential', () => {
    delete process.env.TG_MOCK_TEST_REAL_KEY;
    assert.deepEqual(providersOf('paid'), ['real', 'mock']);
  });

  it('drops it once a real provider has one (or needs none): no fallback to the mock', () => {
    process.env.TG_MOCK_TEST_REAL_KEY = 'sk-real';
    try {
      assert.deepEqual(providersOf('paid'), ['real']);
    } finally {
      delete process.env.TG_MOCK_TEST_REAL_KEY;
    }
    assert.deepEqual(providersOf('self'), ['local']);
  });

  it('warns that a mock provider is served only by `tollgate run`', () => {
    delete process.env.TG_MOCK_TEST_MOCK_KEY;
    assert.ok(loadCoreConfig(dir).warnings.some((w) => /"mock" \(api: mock\) is served only by `tollgate run`/.test(w)));
  });
});
