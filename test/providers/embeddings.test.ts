import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../service/errors.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import { startFakeProvider, type FakeProvider } from '../support/fake-providers.ts';
import { fakeTarget, send, target } from './helpers.ts';

type J = Record<string, any>; // test-only

const fakes: Record<string, FakeProvider> = {};
before(async () => {
  for (const k of ['openai', 'azure', 'gemini'] as const) fakes[k] = await startFakeProvider(k);
});
after(async () => {
  for (const f of Object.values(fakes)) await f.close();
});

function req(body: J) {
  return parseClientRequest('openai', 'embeddings', Buffer.from(JSON.stringify(body)));
}

function decodeBase64Floats(s: string): number[] {
  const b = Buffer.from(s, 'base64');
  return Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
}

const CASES: Array<{ provider: 'openai' | 'azure' | 'gemini'; body: J; path: RegExp; count: number }> = [
  { provider: 'openai', body: { model: 'emb', input: 'hello' }, path: /^\/v1\/embeddings$/, count: 1 },
  { provider: 'openai', body: { model: 'emb', input: ['a', 'b', 'c'], encoding_format: 'base64' }, path: /^\/v1\/embeddings$/, count: 3 },
  { provider: 'azure', body: { model: 'emb', input: ['a', 'b'] }, path: /^\/openai\/deployments\/prod-gpt4o\/embeddings\?api-version=2024-10-21$/, count: 2 },
  { provider: 'gemini', body: { model: 'emb', input: 'hello', dimensions: 4 }, path: /^\/v1beta\/models\/gemini-2\.0-flash:embedContent$/, count: 1 },
  { provider: 'gemini', body: { model: 'emb', input: ['a', 'b'] }, path: /^\/v1beta\/models\/gemini-2\.0-flash:batchEmbedContents$/, count: 2 },
  { provider: 'gemini', body: { model: 'emb', input: ['a', 'b'], encoding_format: 'base64' }, path: /:batchEmbedContents$/, count: 2 },
];

describe('embeddings', () => {
  for (const c of CASES) {
    test(`${c.provider}: ${JSON.stringify(c.body)}`, async () => {
      const fake = fakes[c.provider]!;
      const tr = getTranslator('openai', 'embeddings', c.provider);
      const r = req(c.body);
      const up = await tr.request(r, fakeTarget(fake));
      assert.match(up.path, c.path);
      const sent = JSON.parse(up.body.toString()) as J;
      if (c.provider === 'gemini') {
        if (c.count === 1) {
          assert.deepEqual(sent.content, { parts: [{ text: 'hello' }] });
          if (c.body.dimensions) assert.equal(sent.outputDimensionality, 4);
        } else {
          assert.equal(sent.requests.length, c.count);
          assert.equal(sent.requests[0].model, 'models/gemini-2.0-flash');
        }
      } else {
        assert.equal(sent.model, fakeTarget(fake).deployment.upstreamModel, 'model replaced');
      }
      const ans = await send(fake, up);
      assert.equal(ans.status, 200, ans.body.toString());
      const out = tr.response(ans.status, ans.headers, ans.body, r);
      assert.equal(out.status, 200, out.body.toString());
      const j = JSON.parse(out.body.toString()) as J;
      assert.equal(j.object, 'list');
      assert.equal(j.data.length, c.count);
      for (const [i, d] of (j.data as J[]).entries()) {
        assert.equal(d.index, i);
        const vec = c.body.encoding_format === 'base64' ? decodeBase64Floats(d.embedding) : d.embedding;
        assert.equal(vec.length, 4);
        assert.ok(Math.abs(vec[0] - (0.1 + i)) < 1e-6, `vector ${i} value`);
      }
      assert.ok(out.usage && out.usage.inputTokens > 0);
      if (c.provider === 'gemini') assert.equal(out.usage.estimated, true, 'Gemini reports no token counts: estimate is flagged');
    });
  }

  test('gemini: token-id input cannot be translated → 422', async () => {
    await assert.rejects(getTranslator('openai', 'embeddings', 'gemini').request(req({ model: 'e', input: [[1, 2, 3]] }), target('gemini')), (e: unknown) => {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.status, 422);
      assert.equal(e.param, 'input');
      return true;
    });
  });

  test('gemini: upstream returns fewer vectors than inputs → 502', () => {
    const tr = getTranslator('openai', 'embeddings', 'gemini');
    const out = tr.response(200, {}, Buffer.from('{"embeddings":[{"values":[1]}]}'), req({ model: 'e', input: ['a', 'b'] }));
    assert.equal(out.status, 502);
  });

  test('provider error on embeddings → OpenAI error shape', async () => {
    const fake = fakes.gemini!;
    fake.setNext({ type: 'error', status: 400, message: 'API key expired' });
    const tr = getTranslator('openai', 'embeddings', 'gemini');
    const r = req({ model: 'e', input: 'x' });
    const ans = await send(fake, await tr.request(r, fakeTarget(fake)));
    const out = tr.response(ans.status, ans.headers, ans.body, r);
    assert.equal(out.status, 400);
    assert.equal((JSON.parse(out.body.toString()) as J).error.message, 'API key expired');
  });
});
