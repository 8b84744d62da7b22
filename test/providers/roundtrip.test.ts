// Every (client API, provider) pair end to end against the fake providers over real loopback HTTP:
// translator.request → fake provider (which validates auth + shape like the real API) → translator.response/stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientApi } from '../../service/errors.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import { startFakeProvider, type FakeProvider, type ReplySpec } from '../support/fake-providers.ts';
import { fakeTarget, freshOptions, runStream, send, sseEvents, viewJson, viewStream } from './helpers.ts';

const PROVIDERS: ProviderApi[] = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock'];
const CLIENTS: ClientApi[] = ['openai', 'anthropic'];

function clientBody(api: ClientApi, stream: boolean, tools: boolean): Buffer {
  const weatherTool = {
    name: 'get_weather',
    description: 'Weather for a city',
    schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  };
  if (api === 'openai') {
    return Buffer.from(
      JSON.stringify({
        model: 'smart',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
        ],
        max_tokens: 100,
        stream,
        ...(tools ? { tools: [{ type: 'function', function: { name: weatherTool.name, description: weatherTool.description, parameters: weatherTool.schema } }] } : {}),
      }),
    );
  }
  return Buffer.from(
    JSON.stringify({
      model: 'smart',
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hi' }],
      stream,
      ...(tools ? { tools: [{ name: weatherTool.name, description: weatherTool.description, input_schema: weatherTool.schema }] } : {}),
    }),
  );
}

const TEXT_REPLY: ReplySpec = { text: 'Hello there, my friend.', usage: { input: 20, output: 5, cached: 8 } };
const TOOL_REPLY: ReplySpec = {
  toolCalls: [{ id: 'call_abc', name: 'get_weather', args: { city: 'Paris' } }],
  usage: { input: 30, output: 9 },
};

const fakes = new Map<ProviderApi, FakeProvider>();
before(async () => {
  for (const p of PROVIDERS) fakes.set(p, await startFakeProvider(p));
});
after(async () => {
  for (const f of fakes.values()) await f.close();
});

for (const client of CLIENTS) {
  for (const provider of PROVIDERS) {
    describe(`${client} client → ${provider}`, () => {
      for (const stream of [false, true]) {
        for (const [label, reply] of [['text', TEXT_REPLY], ['tool call', TOOL_REPLY]] as const) {
          test(`${label}, ${stream ? 'streamed' : 'JSON'}`, async () => {
            const fake = fakes.get(provider)!;
            fake.setNext({ type: 'reply', reply });
            const tr = getTranslator(client, 'chat', provider, freshOptions());
            const req = parseClientRequest(client, 'chat', clientBody(client, stream, label === 'tool call'));
            const up = await tr.request(req, fakeTarget(fake));
            const ans = await send(fake, up);
            assert.equal(ans.status, 200, `fake rejected the translated request: ${ans.body.toString()}`);
            let view;
            if (stream) {
              assert.ok(ans.chunks.length > 1, 'the fake streams in several writes');
              const st = tr.stream(req);
              const text = runStream(st, ans.chunks);
              view = viewStream(client, text);
              if (client === 'openai') assert.equal(sseEvents(text).at(-1)!.data, '[DONE]');
              assert.deepEqual(st.usage(), {
                inputTokens: reply.usage!.input,
                outputTokens: reply.usage!.output,
                ...(reply.usage!.cached ? { cachedInputTokens: reply.usage!.cached } : {}),
              });
              assert.ok(st.finishReason());
            } else {
              const r = tr.response(ans.status, ans.headers, ans.body, req);
              assert.equal(r.status, 200, r.body.toString());
              assert.match(r.headers['content-type']!, /^application\/json/);
              view = viewJson(client, r.body);
              assert.equal(r.usage?.inputTokens, reply.usage!.input);
              assert.equal(r.usage?.outputTokens, reply.usage!.output);
            }
            assert.equal(view.error, undefined);
            if (label === 'text') {
              assert.equal(view.text, TEXT_REPLY.text);
              assert.equal(view.finish, 'stop');
            } else {
              assert.equal(view.toolCalls.length, 1);
              assert.equal(view.toolCalls[0]!.name, 'get_weather');
              assert.deepEqual(view.toolCalls[0]!.args, { city: 'Paris' });
              assert.ok(view.toolCalls[0]!.id.length > 0);
              assert.equal(view.finish, 'tool_calls');
            }
            if (!stream || client === 'anthropic') {
              // Anthropic clients always get usage; OpenAI stream clients only when they ask (next test).
              assert.deepEqual(view.usage, { input: reply.usage!.input, output: reply.usage!.output, cached: reply.usage!.cached ?? 0 });
            }
          });
        }
      }

      test('429 from the provider → 429 in the client error shape with retry-after', async () => {
        const fake = fakes.get(provider)!;
        fake.setNext({ type: 'error', status: 429, message: 'Slow down please', retryAfter: 7 });
        const tr = getTranslator(client, 'chat', provider, freshOptions());
        const req = parseClientRequest(client, 'chat', clientBody(client, false, false));
        const ans = await send(fake, await tr.request(req, fakeTarget(fake)));
        assert.equal(ans.status, 429);
        const r = tr.response(ans.status, ans.headers, ans.body, req);
        assert.equal(r.status, 429);
        assert.equal(r.headers['retry-after'], '7');
        const j = JSON.parse(r.body.toString());
        if (client === 'openai') {
          assert.equal(j.error.message, 'Slow down please');
          assert.equal(j.error.type, 'rate_limit_exceeded');
        } else {
          assert.equal(j.type, 'error');
          assert.equal(j.error.type, 'rate_limit_error');
          assert.equal(j.error.message, 'Slow down please');
        }
      });

      test('mid-stream provider error → client error event, stream closed cleanly', async () => {
        const fake = fakes.get(provider)!;
        fake.setNext({ type: 'stream_error', message: 'Overloaded right now' });
        const tr = getTranslator(client, 'chat', provider, freshOptions());
        const req = parseClientRequest(client, 'chat', clientBody(client, true, false));
        const ans = await send(fake, await tr.request(req, fakeTarget(fake)));
        const text = runStream(tr.stream(req), ans.chunks);
        const view = viewStream(client, text);
        assert.ok(view.error, `expected an error event in ${text}`);
        assert.equal(view.error.message, 'Overloaded right now');
      });

      test('stream cut by the upstream → error event, never a fake success', async () => {
        const fake = fakes.get(provider)!;
        fake.setNext({ type: 'truncate' });
        const tr = getTranslator(client, 'chat', provider, freshOptions());
        const req = parseClientRequest(client, 'chat', clientBody(client, true, false));
        const ans = await send(fake, await tr.request(req, fakeTarget(fake))).catch(() => undefined);
        // The fake destroys the socket; whatever arrived is fed and then end() is called.
        const text = runStream(tr.stream(req), ans?.chunks ?? []);
        const view = viewStream(client, text);
        assert.ok(view.error, `expected an error event in ${text}`);
        assert.match(view.error.message, /ended/);
      });
    });
  }
}

describe('stream usage for OpenAI clients', () => {
  for (const provider of PROVIDERS) {
    for (const includeUsage of [false, true]) {
      test(`${provider}: include_usage=${includeUsage} → ${includeUsage ? 'one' : 'no'} usage chunk; usage always charged`, async () => {
        const fake = fakes.get(provider)!;
        fake.setNext({ type: 'reply', reply: TEXT_REPLY });
        const tr = getTranslator('openai', 'chat', provider, freshOptions());
        const body = {
          model: 'smart',
          messages: [{ role: 'user', content: 'Hi' }],
          stream: true,
          ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
        };
        const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(body)));
        const up = await tr.request(req, fakeTarget(fake));
        const ans = await send(fake, up);
        const st = tr.stream(req);
        const view = viewStream('openai', runStream(st, ans.chunks)) as ReturnType<typeof viewStream> & { usageChunks: number };
        assert.equal(view.usageChunks, includeUsage ? 1 : 0);
        assert.equal(st.usage()?.inputTokens, 20);
        assert.equal(st.usage()?.cachedInputTokens, 8);
        assert.equal(view.text, TEXT_REPLY.text);
      });
    }
  }
});
