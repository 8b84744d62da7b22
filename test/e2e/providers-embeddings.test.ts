// Embeddings translation, end to end: the official `openai` SDK → real Envoy → Tollgate → OpenAI (passthrough),
// Azure (deployment path + api-key) and Gemini (embedContent / batchEmbedContents, token counts estimated).
// The SDK asks for base64 by default and decodes it; the float format is checked too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ProviderApi } from '../../service/config/types.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { FakeProvider, RecordedRequest } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const model = (name: string, provider: string, upstream: string) => `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: ${name}}
spec:
  kind: embedding
  deployments:
  - {provider: ${provider}, model: ${upstream}, region: us-east-1, pricing: {inputPerMillion: 0.1, outputPerMillion: 0}}
---
`;
const EXTRA =
  model('azure-embed', 'fake-azure', 'my-embedding-deployment') +
  model('gemini-embed', 'fake-gemini', 'text-embedding-004') +
  model('anthropic-embed', 'fake-anthropic', 'claude-3-5-sonnet-20241022') +
  model('bedrock-embed', 'fake-bedrock', 'amazon.titan-embed-text-v2:0');

interface Target {
  kind: ProviderApi;
  model: string;
  upstream: string;
  path(single: boolean): string;
}

const TARGETS: Target[] = [
  { kind: 'openai', model: 'text-embedding-3-small', upstream: 'text-embedding-3-small', path: () => '/v1/embeddings' },
  { kind: 'azure', model: 'azure-embed', upstream: 'my-embedding-deployment', path: () => '/openai/deployments/my-embedding-deployment/embeddings?api-version=2024-10-21' },
  {
    kind: 'gemini',
    model: 'gemini-embed',
    upstream: 'text-embedding-004',
    path: (single) => `/v1beta/models/text-embedding-004:${single ? 'embedContent' : 'batchEmbedContents'}`,
  },
];

const client = (h: Harness) => new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });

/** The fake's vectors: [0.1 + i, -0.2, 0.3, 0.5] for input i. */
function assertVector(got: number[], i: number): void {
  const want = [0.1 + i, -0.2, 0.3, 0.5];
  assert.equal(got.length, want.length);
  got.forEach((x, k) => assert.ok(Math.abs(x - want[k]!) < 1e-6, `vector ${i}[${k}] = ${x}, want ${want[k]}`));
}

async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const before = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, before + 1);
  return { result, got: fake.requests.at(-1)! };
}

async function lineageFor(h: Harness, requestId: string | null | undefined): Promise<LineageRecord> {
  assert.ok(requestId);
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

function assertUpstream(h: Harness, t: Target, got: RecordedRequest, single: boolean): void {
  const fake = h.fakes[t.kind]!;
  assert.equal(got.path, t.path(single));
  for (const [k, v] of Object.entries(got.headers)) assert.ok(!v.includes(KEYS.acme), `virtual key leaked in ${k}`);
  const body = got.json as any;
  switch (t.kind) {
    case 'openai':
      assert.equal(got.headers.authorization, `Bearer ${fake.credential}`);
      assert.equal(body.model, t.upstream);
      break;
    case 'azure':
      assert.equal(got.headers['api-key'], fake.credential);
      assert.equal(got.headers.authorization, undefined);
      break;
    case 'gemini':
      assert.equal(got.headers['x-goog-api-key'], fake.credential);
      assert.equal(got.headers.authorization, undefined);
      break;
  }
}

describe('e2e providers: embeddings through a real Envoy', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic', 'azure', 'gemini', 'bedrock'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  for (const t of TARGETS) {
    describe(`→ ${t.kind} (${t.model})`, () => {
      it('batch input, SDK default (base64 on the wire, decoded by the SDK): vectors in order, usage, served-by headers', async () => {
        const fake = h.fakes[t.kind]!;
        const input = ['first text to embed', 'second, a bit longer text to embed'];
        const { result, got } = await captured(fake, () => client(h).embeddings.create({ model: t.model, input }).withResponse());
        const { data: res, response } = result;
        assert.equal(res.object, 'list');
        assert.equal(res.data.length, 2);
        res.data.forEach((d, i) => {
          assert.equal(d.object, 'embedding');
          assert.equal(d.index, i);
          assertVector(d.embedding, i);
        });
        assert.ok(res.usage.prompt_tokens > 0);
        assert.equal(res.usage.total_tokens, res.usage.prompt_tokens);
        assert.equal(response.headers.get('x-tollgate-provider'), `fake-${t.kind}`);
        assert.equal(response.headers.get('x-tollgate-model'), t.model);
        assertUpstream(h, t, got, false);
        const body = got.json as any;
        if (t.kind === 'gemini') {
          assert.deepEqual(body.requests, input.map((text) => ({ model: 'models/text-embedding-004', content: { parts: [{ text }] } })));
          // Gemini reports no counts: ~4 characters per token, flagged as an estimate.
          assert.equal(res.usage.prompt_tokens, Math.ceil(input.join('').length / 4));
        } else {
          assert.deepEqual(body.input, input);
          assert.equal(body.encoding_format, 'base64', 'the SDK default reaches the provider');
          assert.equal(res.usage.prompt_tokens, 10, "the provider's count");
        }
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'success');
        assert.equal(rec.request.endpoint, '/v1/embeddings');
        assert.equal(rec.tokens?.input, res.usage.prompt_tokens);
        assert.equal(rec.tokens?.estimated, t.kind === 'gemini' ? true : undefined);
        assert.deepEqual(
          rec.attempts?.map((a) => [a.provider, a.status]),
          [[`fake-${t.kind}`, 200]],
        );
      });

      it('single string input, float format, dimensions', async () => {
        const fake = h.fakes[t.kind]!;
        const { result: res, got } = await captured(fake, () =>
          client(h).embeddings.create({ model: t.model, input: 'just one', encoding_format: 'float', dimensions: 4 }),
        );
        assert.equal(res.data.length, 1);
        assert.ok(Array.isArray(res.data[0]!.embedding));
        assertVector(res.data[0]!.embedding, 0);
        assertUpstream(h, t, got, true);
        const body = got.json as any;
        if (t.kind === 'gemini') {
          assert.deepEqual(body, { content: { parts: [{ text: 'just one' }] }, outputDimensionality: 4 });
        } else {
          assert.equal(body.input, 'just one');
          assert.equal(body.dimensions, 4);
          assert.equal(body.encoding_format, 'float');
        }
      });

      it('provider 429 → RateLimitError with retry-after, OpenAI error shape', async () => {
        h.tollgate.services.health.retain([]);
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'error', status: 429, message: 'embedding quota exceeded', retryAfter: 3 });
        let err: unknown;
        try {
          await client(h).embeddings.create({ model: t.model, input: ['x'] });
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal((err as any).status, 429);
        assert.equal((err as any).error.message, 'embedding quota exceeded');
        assert.equal((err as any).error.type, 'rate_limit_exceeded');
        assert.equal((err as any).headers.get('retry-after'), '3');
        h.tollgate.services.health.retain([]);
      });
    });
  }

  for (const [name, kind] of [
    ['anthropic-embed', 'anthropic'],
    ['bedrock-embed', 'bedrock'],
  ] as const) {
    it(`embeddings on ${kind} (no embeddings API) → 422 unsupported_provider, nothing sent`, async () => {
      const fake = h.fakes[kind]!;
      const before = fake.requests.length;
      let err: unknown;
      try {
        await client(h).embeddings.create({ model: name, input: 'x' });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof OpenAI.UnprocessableEntityError, String(err));
      assert.equal((err as any).error.code, 'unsupported_provider');
      assert.equal(fake.requests.length, before);
    });
  }

  it('Gemini: token-id input cannot be carried → 422 with param, nothing sent', async () => {
    const fake = h.fakes.gemini!;
    const before = fake.requests.length;
    let err: unknown;
    try {
      await client(h).embeddings.create({ model: 'gemini-embed', input: [[1, 2, 3]] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OpenAI.UnprocessableEntityError, String(err));
    assert.equal((err as any).error.param, 'input');
    assert.equal(fake.requests.length, before);
  });
});
