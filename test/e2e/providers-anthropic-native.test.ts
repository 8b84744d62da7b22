// Anthropic-native paths end to end: the official `@anthropic-ai/sdk` → real Envoy → Tollgate → Claude on Bedrock
// (InvokeModel / InvokeModelWithResponseStream, SigV4 checked by the fake) and Claude on Vertex AI (:rawPredict /
// :streamRawPredict, OAuth bearer checked by the fake). `thinking`, `cache_control`, `anthropic-beta` and tool
// definitions reach the provider exactly as the client sent them; thinking blocks and cache usage come back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { FakeProvider, RecordedRequest } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const BEDROCK_MODEL = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const VERTEX_MODEL = 'claude-sonnet-4@20250514';

const TARGETS = [
  {
    kind: 'bedrock' as const,
    model: 'bedrock-claude',
    path: (s: boolean) => `/model/${encodeURIComponent(BEDROCK_MODEL)}/${s ? 'invoke-with-response-stream' : 'invoke'}`,
    version: 'bedrock-2023-05-31',
  },
  {
    kind: 'vertex' as const,
    model: 'vertex-claude',
    path: (s: boolean) => `/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/${VERTEX_MODEL}:${s ? 'streamRawPredict' : 'rawPredict'}`,
    version: 'vertex-2023-10-16',
  },
];

const anthropic = (h: Harness) => new Anthropic({ apiKey: KEYS.acme, baseURL: h.url, maxRetries: 0, timeout: 15000 });

const SYSTEM: Anthropic.TextBlockParam[] = [{ type: 'text', text: 'You are a weather bot. '.repeat(20), cache_control: { type: 'ephemeral', ttl: '1h' } }];
const TOOLS: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } },
];
const MESSAGES: Anthropic.MessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?', cache_control: { type: 'ephemeral' } }] }];
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };
const BETA = 'interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11';
const REPLY = {
  thinking: 'The user wants the weather in Paris.',
  text: 'Sunny in Paris.',
  usage: { input: 23012, output: 87, cached: 20000, cacheWrite: 3000, cacheWrite1h: 2000 },
};

async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const n = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, n + 1, `exactly one upstream request to fake-${fake.kind}`);
  return { result, got: fake.requests.at(-1)! };
}

async function lineageFor(h: Harness, id: string | null): Promise<LineageRecord> {
  assert.ok(id);
  await eventually(() => h.lineage.some((r) => r.requestId === id), 5000);
  return h.lineage.find((r) => r.requestId === id)!;
}

describe('e2e: Anthropic SDK → Claude on Bedrock (InvokeModel) and Vertex AI, Anthropic body intact', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['anthropic', 'bedrock', 'vertex'] });
  });
  after(async () => {
    await h?.close();
  });

  for (const t of TARGETS) {
    for (const stream of [false, true]) {
      it(`${t.kind}, ${stream ? 'stream' : 'non-stream'}: thinking, cache_control, tools and anthropic-beta reach the fake as sent; thinking and cache usage come back`, async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: REPLY });
        const params = { model: t.model, max_tokens: 2048, thinking: THINKING, system: SYSTEM, tools: TOOLS, messages: MESSAGES };
        const opts = { headers: { 'anthropic-beta': BETA } };
        const { result, got } = await captured(fake, async () => {
          if (!stream) return anthropic(h).messages.create(params, opts).withResponse();
          const s = anthropic(h).messages.stream(params, opts);
          const thinkingDeltas: string[] = [];
          s.on('thinking', (d) => thinkingDeltas.push(d));
          const data = await s.finalMessage();
          assert.ok(thinkingDeltas.length > 1, 'thinking_delta events reached the SDK');
          return { data, response: (await s.withResponse()).response };
        });
        assert.equal(got.path, t.path(stream));
        const body = got.json as Record<string, unknown>;
        assert.equal(body.anthropic_version, t.version);
        assert.equal(body.model, undefined, 'the model is in the path');
        assert.deepEqual(body.thinking, THINKING);
        assert.deepEqual(body.system, SYSTEM, 'system with cache_control (1h ttl) intact');
        assert.deepEqual(body.tools, TOOLS, 'tools with cache_control intact');
        assert.deepEqual(body.messages, MESSAGES, 'content blocks with cache_control intact');
        if (t.kind === 'bedrock') {
          // SigV4 was verified by the fake (it answers 403 otherwise); the beta header moved into the body.
          assert.match(got.headers.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDFAKE\//);
          assert.deepEqual(body.anthropic_beta, BETA.split(','));
          assert.equal(body.stream, undefined, 'Bedrock streams by path, not by body');
        } else {
          assert.equal(got.headers.authorization, `Bearer ${fake.credential}`);
          assert.equal(got.headers['anthropic-beta'], BETA);
          assert.equal(body.stream, stream ? true : undefined);
        }
        for (const v of Object.values(got.headers)) assert.ok(!v.includes(KEYS.acme), 'virtual key never reaches the provider');

        const msg = result.data;
        const thinking = msg.content.find((b) => b.type === 'thinking');
        assert.ok(thinking && thinking.type === 'thinking', JSON.stringify(msg.content));
        assert.equal(thinking.thinking, REPLY.thinking);
        assert.ok(thinking.signature.length > 0, 'signature kept (needed to continue a thinking conversation)');
        assert.equal(msg.content.find((b) => b.type === 'text')?.type === 'text' ? (msg.content.find((b) => b.type === 'text') as Anthropic.TextBlock).text : '', REPLY.text);
        assert.equal(msg.usage.cache_read_input_tokens, 20000);
        assert.equal(msg.usage.cache_creation_input_tokens, 3000);
        assert.equal(msg.usage.output_tokens, 87);

        const rec = await lineageFor(h, result.response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'success');
        assert.equal(rec.served?.provider, `fake-${t.kind}`);
        assert.deepEqual({ i: rec.tokens?.input, o: rec.tokens?.output, c: rec.tokens?.cached }, { i: 23012, o: 87, c: 20000 });
      });
    }
  }

  it('bedrock: an exception frame mid-stream → an Anthropic `error` event; the SDK rejects', async () => {
    const fake = h.fakes.bedrock!;
    fake.setNext({ type: 'stream_error', message: 'Too many tokens, slow down' });
    const s = anthropic(h).messages.stream({ model: 'bedrock-claude', max_tokens: 100, messages: [{ role: 'user', content: 'Tell a long story' }] });
    await assert.rejects(s.finalMessage(), (err: unknown) => {
      assert.ok(err instanceof Anthropic.APIError, String(err));
      assert.match(String(err.message), /Too many tokens, slow down/);
      return true;
    });
    h.tollgate.services.health.retain([]);
  });
});
