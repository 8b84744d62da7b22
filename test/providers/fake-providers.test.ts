// The fake providers must be as strict as the real APIs, or end-to-end tests would pass against a lie.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProviderApi } from '../../service/config/types.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { UpstreamRequest } from '../../service/providers/types.ts';
import { startFakeProvider, type FakeProvider } from '../support/fake-providers.ts';
import { fakeTarget, freshOptions, send } from './helpers.ts';

const KINDS: ProviderApi[] = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock'];
const fakes = new Map<ProviderApi, FakeProvider>();
before(async () => {
  for (const k of KINDS) fakes.set(k, await startFakeProvider(k));
});
after(async () => {
  for (const f of fakes.values()) await f.close();
});

async function good(kind: ProviderApi): Promise<UpstreamRequest> {
  const tr = getTranslator('openai', 'chat', kind, freshOptions());
  const req = parseClientRequest('openai', 'chat', Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'));
  return tr.request(req, fakeTarget(fakes.get(kind)!));
}

type Mutate = (up: UpstreamRequest) => UpstreamRequest;
const withHeaders = (h: Record<string, string | undefined>): Mutate => (up) => {
  const headers = { ...up.headers };
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return { ...up, headers };
};
const withBody = (f: (b: Record<string, unknown>) => void): Mutate => (up) => {
  const b = JSON.parse(up.body.toString()) as Record<string, unknown>;
  f(b);
  return { ...up, body: Buffer.from(JSON.stringify(b)) };
};

const REJECTIONS: Array<{ kind: ProviderApi; name: string; mutate: Mutate; status: number; message: RegExp }> = [
  { kind: 'openai', name: 'wrong bearer token', mutate: withHeaders({ authorization: 'Bearer nope' }), status: 401, message: /Incorrect API key/ },
  { kind: 'openai', name: 'empty messages', mutate: withBody((b) => (b.messages = [])), status: 400, message: /too short/ },
  { kind: 'azure', name: 'Authorization instead of api-key', mutate: withHeaders({ 'api-key': undefined, authorization: 'Bearer test-azure-key' }), status: 401, message: /api-key/ },
  { kind: 'azure', name: 'missing api-version', mutate: (up) => ({ ...up, path: up.path.split('?')[0]! }), status: 404, message: /api-version/ },
  { kind: 'anthropic', name: 'Authorization header present', mutate: withHeaders({ authorization: 'Bearer test-anthropic-key' }), status: 401, message: /x-api-key/ },
  { kind: 'anthropic', name: 'missing anthropic-version', mutate: withHeaders({ 'anthropic-version': undefined }), status: 400, message: /anthropic-version/ },
  { kind: 'anthropic', name: 'missing max_tokens', mutate: withBody((b) => delete b.max_tokens), status: 400, message: /max_tokens/ },
  { kind: 'anthropic', name: 'OpenAI-only field', mutate: withBody((b) => (b.stream_options = { include_usage: true })), status: 400, message: /stream_options: Extra inputs/ },
  { kind: 'anthropic', name: 'system role in messages', mutate: withBody((b) => (b.messages = [{ role: 'system', content: 'x' }])), status: 400, message: /role/ },
  { kind: 'gemini', name: 'wrong api key', mutate: withHeaders({ 'x-goog-api-key': 'nope' }), status: 403, message: /API Key/ },
  { kind: 'gemini', name: 'OpenAI body', mutate: withBody((b) => (b.messages = [])), status: 400, message: /Unknown name \\"messages\\"/ },
  { kind: 'bedrock', name: 'body changed after signing', mutate: withBody((b) => (b.system = [{ text: 'injected' }])), status: 403, message: /signature/ },
  { kind: 'bedrock', name: 'no signature', mutate: withHeaders({ authorization: undefined }), status: 403, message: /signature/ },
];

describe('fake providers validate like the real APIs', () => {
  for (const kind of KINDS) {
    test(`${kind}: a correctly translated request is accepted and recorded`, async () => {
      const fake = fakes.get(kind)!;
      const before = fake.requests.length;
      const up = await good(kind);
      const ans = await send(fake, up);
      assert.equal(ans.status, 200, ans.body.toString());
      const rec = fake.requests[before]!;
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, up.path);
      assert.deepEqual(rec.body, up.body);
      assert.ok(rec.json);
    });
  }
  for (const r of REJECTIONS) {
    test(`${r.kind}: ${r.name} → ${r.status}`, async () => {
      const fake = fakes.get(r.kind)!;
      const ans = await send(fake, r.mutate(await good(r.kind)));
      assert.equal(ans.status, r.status, ans.body.toString());
      assert.match(ans.body.toString(), r.message);
    });
  }

  test('openai fake without an API key (Ollama-style) accepts requests with no Authorization', async () => {
    const fake = await startFakeProvider('openai', { apiKey: null });
    try {
      const tr = getTranslator('openai', 'chat', 'openai');
      const req = parseClientRequest('openai', 'chat', Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}'));
      const t = fakeTarget(fake);
      t.credential = undefined;
      const up = await tr.request(req, t);
      assert.equal(up.headers.authorization, undefined);
      assert.equal((await send(fake, up)).status, 200);
    } finally {
      await fake.close();
    }
  });

  test('hang: the request never completes; close() still ends promptly', async () => {
    const fake = await startFakeProvider('anthropic');
    fake.setNext({ type: 'hang' });
    const up = await getTranslator('openai', 'chat', 'anthropic').request(
      parseClientRequest('openai', 'chat', Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}')),
      fakeTarget(fake),
    );
    await assert.rejects(send(fake, up, 150), /timeout/);
    await fake.close();
  });

  test('setNext queues behaviours in order, then falls back to the default reply', async () => {
    const fake = fakes.get('openai')!;
    fake.setNext({ type: 'error', status: 500 });
    fake.setNext({ type: 'error', status: 429 });
    const up = await good('openai');
    assert.equal((await send(fake, up)).status, 500);
    const limited = await send(fake, up);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '2');
    assert.equal((await send(fake, up)).status, 200);
  });
});
