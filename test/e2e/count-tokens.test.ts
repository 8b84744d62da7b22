// POST /v1/messages/count_tokens end to end with the official Anthropic SDK (`messages.countTokens`) through a real
// Envoy: the same authentication and policies as /v1/messages (model rules apply), then the provider's own counter
// (Anthropic's endpoint, Bedrock CountTokens with SigV4, Vertex count-tokens:rawPredict), or — for a provider without
// one — a local count (o200k_base for OpenAI models), labelled in `x-tollgate-token-count`. Never billed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import type { FakeProvider, RecordedRequest } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: free-models}
spec:
  matchConditions:
    - {name: free, expression: "principal.tenant == 'globex'"}
  rules:
    - name: no-claude
      models:
        deny: ['claude-*']
`;

const SYSTEM: Anthropic.TextBlockParam[] = [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }];
const TOOLS: Anthropic.Tool[] = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
const MESSAGES: Anthropic.MessageParam[] = [{ role: 'user', content: 'How many tokens is this?' }];
const THINKING = { type: 'enabled' as const, budget_tokens: 2000 };

async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const n = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, n + 1, `exactly one upstream request to fake-${fake.kind}`);
  return { result, got: fake.requests.at(-1)! };
}

describe('e2e: Anthropic SDK messages.countTokens', { timeout: 90000 }, () => {
  let h: Harness;
  const client = (key = KEYS.acme) => new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, timeout: 15000 });
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic', 'bedrock', 'vertex'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  it("→ Anthropic's count_tokens endpoint: prompt forwarded with the provider key; the provider's count comes back", async () => {
    const fake = h.fakes.anthropic!;
    fake.setNext({ type: 'reply', reply: { usage: { input: 1234, output: 0 } } });
    const { result, got } = await captured(fake, () => client().messages.countTokens({ model: 'claude-sonnet', system: SYSTEM, tools: TOOLS, thinking: THINKING, messages: MESSAGES }).withResponse());
    assert.equal(result.data.input_tokens, 1234);
    assert.equal(got.path, '/v1/messages/count_tokens');
    assert.equal(got.headers['x-api-key'], fake.credential);
    const body = got.json as Record<string, unknown>;
    assert.deepEqual(body, { model: 'claude-3-5-sonnet-20241022', system: SYSTEM, tools: TOOLS, thinking: THINKING, messages: MESSAGES });
    await eventually(() => h.lineage.some((r) => r.requestId === result.response.headers.get('x-request-id')));
    const rec = h.lineage.find((r) => r.requestId === result.response.headers.get('x-request-id'))!;
    assert.equal(rec.request.endpoint, '/v1/messages/count_tokens');
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.tokens, undefined, 'nothing billed');
  });

  it('→ Claude on Bedrock: CountTokens (SigV4 checked by the fake) with the InvokeModel body inside', async () => {
    const fake = h.fakes.bedrock!;
    fake.setNext({ type: 'reply', reply: { usage: { input: 777, output: 0 } } });
    const { result, got } = await captured(fake, () => client().messages.countTokens({ model: 'bedrock-claude', system: SYSTEM, thinking: THINKING, messages: MESSAGES }));
    assert.equal(result.input_tokens, 777);
    assert.equal(got.path, `/model/${encodeURIComponent('anthropic.claude-3-5-sonnet-20241022-v2:0')}/count-tokens`);
    assert.match(got.headers.authorization ?? '', /^AWS4-HMAC-SHA256 /);
    const inner = JSON.parse(Buffer.from((got.json as any).input.invokeModel.body, 'base64').toString('utf8'));
    assert.equal(inner.anthropic_version, 'bedrock-2023-05-31');
    assert.deepEqual(inner.system, SYSTEM);
    assert.deepEqual(inner.thinking, THINKING);
    assert.ok(inner.max_tokens > THINKING.budget_tokens);
  });

  it('→ Claude on Vertex: count-tokens:rawPredict with the bearer token', async () => {
    const fake = h.fakes.vertex!;
    fake.setNext({ type: 'reply', reply: { usage: { input: 55, output: 0 } } });
    const { result, got } = await captured(fake, () => client().messages.countTokens({ model: 'vertex-claude', messages: MESSAGES }));
    assert.equal(result.input_tokens, 55);
    assert.equal(got.path, '/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict');
    assert.equal(got.headers.authorization, `Bearer ${fake.credential}`);
    assert.equal((got.json as any).model, 'claude-sonnet-4@20250514');
  });

  it('→ an OpenAI model (no counter for an Anthropic body): counted locally with o200k_base, labelled, nothing sent', async () => {
    const n = h.fakes.openai!.requests.length;
    const text = '東京タワーの高さは何メートルですか？ How tall is the Tokyo Tower?';
    const count = () => client().messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }).withResponse();
    // The first local count starts loading the tokenizer (never awaited by a request) and is labelled `estimate`;
    // once loaded, counts are exact and labelled `o200k_base`.
    const first = await count();
    let last = first;
    const deadline = Date.now() + 10000;
    while (last.response.headers.get('x-tollgate-token-count') !== 'o200k_base') {
      assert.equal(last.response.headers.get('x-tollgate-token-count'), 'estimate');
      assert.ok(Date.now() < deadline, 'tokenizer never loaded');
      await new Promise((r) => setTimeout(r, 200));
      last = await count();
    }
    // Framing (3 for the reply primer + 4 for the message) + the exact o200k count of the text.
    assert.equal(last.data.input_tokens, 3 + 4 + countTokens(text));
    if (first !== last) assert.ok(first.data.input_tokens > last.data.input_tokens, 'the heuristic counts CJK high');
    assert.equal(h.fakes.openai!.requests.length, n, 'no upstream request');
  });

  it('model rules apply: a denied model → PermissionDeniedError, nothing sent', async () => {
    const n = h.fakes.anthropic!.requests.length;
    await assert.rejects(client(KEYS.globex).messages.countTokens({ model: 'claude-sonnet', messages: MESSAGES }), Anthropic.PermissionDeniedError);
    assert.equal(h.fakes.anthropic!.requests.length, n);
    await assert.rejects(client('tg-not-a-real-key-000000000000000000000').messages.countTokens({ model: 'claude-sonnet', messages: MESSAGES }), Anthropic.AuthenticationError);
  });
});
