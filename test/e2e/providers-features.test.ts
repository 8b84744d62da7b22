// Provider translation of request features beyond plain chat, end to end with the official `openai` SDK through
// the real Envoy: structured output (`response_format` json_schema → Anthropic/Bedrock forced tool, Gemini
// responseJsonSchema; the JSON comes back as message text), base64 images, and parameters that cannot be carried
// (422 with `param`, nothing sent to the provider).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ProviderApi } from '../../service/config/types.ts';
import { gzipSync } from 'node:zlib';
import { anthropicReply, openAIReply, type ReplySpec } from '../support/fake-providers.ts';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';

const MODELS: Record<ProviderApi, string> = {
  openai: 'gpt-4o-mini',
  azure: 'azure-gpt',
  anthropic: 'claude-sonnet',
  gemini: 'gemini-flash',
  bedrock: 'bedrock-claude',
  vertex: 'vertex-claude',
};
const KINDS = Object.keys(MODELS) as ProviderApi[];

const client = (h: Harness) => new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });

const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, temp: { type: 'number' } },
  required: ['city', 'temp'],
  additionalProperties: false,
};
const ANSWER = { city: 'Paris', temp: 18 };

/** What each fake must "say" so that the client gets ANSWER as JSON text. */
function jsonReply(kind: ProviderApi): ReplySpec {
  // Anthropic and Bedrock have no JSON mode: Tollgate forces a `json_response` tool and turns its input into text.
  if (kind === 'anthropic' || kind === 'bedrock') return { toolCalls: [{ id: 'toolu_json_1', name: 'json_response', args: ANSWER }], usage: { input: 30, output: 10 } };
  return { text: JSON.stringify(ANSWER), usage: { input: 30, output: 10 } };
}

function assertJsonModeRequest(kind: ProviderApi, body: any): void {
  switch (kind) {
    case 'openai':
    case 'azure':
      assert.deepEqual(body.response_format, { type: 'json_schema', json_schema: { name: 'weather', schema: SCHEMA, strict: true } });
      break;
    case 'anthropic':
      assert.deepEqual(body.tools.map((t: any) => [t.name, t.input_schema]), [['json_response', SCHEMA]]);
      assert.deepEqual(body.tool_choice, { type: 'tool', name: 'json_response' });
      break;
    case 'bedrock':
      assert.deepEqual(body.toolConfig.tools.map((t: any) => [t.toolSpec.name, t.toolSpec.inputSchema.json]), [['json_response', SCHEMA]]);
      assert.deepEqual(body.toolConfig.toolChoice, { tool: { name: 'json_response' } });
      break;
    case 'gemini':
      assert.equal(body.generationConfig.responseMimeType, 'application/json');
      assert.deepEqual(body.generationConfig.responseJsonSchema, SCHEMA);
      break;
  }
}

// 1×1 transparent PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

describe('e2e providers: structured output, images, untranslatable parameters', { timeout: 180000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: KINDS });
  });
  after(async () => {
    await h?.close();
  });

  const rf: OpenAI.ResponseFormatJSONSchema = { type: 'json_schema', json_schema: { name: 'weather', schema: SCHEMA, strict: true } };

  for (const kind of KINDS) {
    describe(`→ ${kind}`, () => {
      it('response_format json_schema, non-stream: the JSON arrives as message text, finish_reason stop', async () => {
        const fake = h.fakes[kind]!;
        fake.setNext({ type: 'reply', reply: jsonReply(kind) });
        const res = await client(h).chat.completions.create({ model: MODELS[kind], messages: [{ role: 'user', content: 'Weather in Paris as JSON' }], response_format: rf });
        assertJsonModeRequest(kind, fake.requests.at(-1)!.json);
        const msg = res.choices[0]!.message;
        assert.deepEqual(JSON.parse(msg.content ?? 'null'), ANSWER);
        assert.equal(msg.tool_calls ?? undefined, undefined, 'the forced tool is not shown to the client');
        assert.equal(res.choices[0]!.finish_reason, 'stop');
      });

      it('response_format json_schema, stream: the SDK reassembles the JSON text', async () => {
        const fake = h.fakes[kind]!;
        fake.setNext({ type: 'reply', reply: jsonReply(kind) });
        const stream = await client(h).chat.completions.create({
          model: MODELS[kind],
          messages: [{ role: 'user', content: 'Weather in Paris as JSON' }],
          response_format: rf,
          stream: true,
        });
        let text = '';
        let finish: string | null | undefined;
        let toolDeltas = 0;
        for await (const c of stream) {
          text += c.choices[0]?.delta?.content ?? '';
          if (c.choices[0]?.delta?.tool_calls) toolDeltas++;
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        assertJsonModeRequest(kind, fake.requests.at(-1)!.json);
        assert.deepEqual(JSON.parse(text), ANSWER);
        assert.equal(toolDeltas, 0);
        assert.equal(finish, 'stop');
      });

      it('base64 image in a user message → the provider-native image part', async () => {
        const fake = h.fakes[kind]!;
        await client(h).chat.completions.create({
          model: MODELS[kind],
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'What is in this image?' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
              ],
            },
          ],
        });
        const body = fake.requests.at(-1)!.json as any;
        switch (kind) {
          case 'openai':
          case 'azure':
            assert.deepEqual(body.messages[0].content[1], { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } });
            break;
          case 'anthropic':
            assert.deepEqual(body.messages[0].content, [
              { type: 'text', text: 'What is in this image?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            ]);
            break;
          case 'gemini':
            assert.deepEqual(body.contents[0].parts, [{ text: 'What is in this image?' }, { inlineData: { mimeType: 'image/png', data: PNG } }]);
            break;
          case 'bedrock':
            assert.deepEqual(body.messages[0].content, [{ text: 'What is in this image?' }, { image: { format: 'png', source: { bytes: PNG } } }]);
            break;
        }
      });
    });
  }

  describe('parameters a provider cannot carry → 422 unsupported_parameter with param; nothing sent', () => {
    const cases: { kind: ProviderApi; param: string; extra: Record<string, unknown> }[] = [
      { kind: 'anthropic', param: 'logit_bias', extra: { logit_bias: { '50256': -100 } } },
      { kind: 'gemini', param: 'logit_bias', extra: { logit_bias: { '50256': -100 } } },
      { kind: 'bedrock', param: 'logit_bias', extra: { logit_bias: { '50256': -100 } } },
      { kind: 'anthropic', param: 'n', extra: { n: 2 } },
      { kind: 'bedrock', param: 'n', extra: { n: 2 } },
      { kind: 'anthropic', param: 'temperature', extra: { temperature: 1.5 } },
      { kind: 'anthropic', param: 'presence_penalty', extra: { presence_penalty: 0.5 } },
      { kind: 'gemini', param: 'parallel_tool_calls', extra: { parallel_tool_calls: false, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] } },
      { kind: 'gemini', param: 'messages[0].content[1].image_url.url', extra: { messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] } },
    ];
    for (const c of cases) {
      it(`${c.kind}: ${c.param}`, async () => {
        const fake = h.fakes[c.kind]!;
        const before = fake.requests.length;
        let err: unknown;
        try {
          await client(h).chat.completions.create({ model: MODELS[c.kind], messages: [{ role: 'user', content: 'x' }], ...c.extra } as never);
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof OpenAI.UnprocessableEntityError, String(err));
        const body = (err as any).error;
        assert.equal(body.type, 'invalid_request_error');
        assert.equal(body.code, 'unsupported_parameter');
        assert.equal(body.param, c.param);
        assert.equal(fake.requests.length, before, 'refused before the provider');
      });
    }

    it('the same parameters go through untouched to an OpenAI-compatible provider', async () => {
      const fake = h.fakes.openai!;
      await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], logit_bias: { '50256': -100 }, n: 2, temperature: 1.5, presence_penalty: 0.5 });
      const body = fake.requests.at(-1)!.json as any;
      assert.deepEqual({ lb: body.logit_bias, n: body.n, t: body.temperature, p: body.presence_penalty }, { lb: { '50256': -100 }, n: 2, t: 1.5, p: 0.5 });
    });
  });

  describe('provider answers that need care', () => {
    it('Azure 429 with only retry-after-ms → retry-after in seconds (rounded up) for the client', async () => {
      h.tollgate.services.health.retain([]);
      h.fakes.azure!.setNext({ type: 'raw', status: 429, headers: { 'retry-after-ms': '1500' }, body: JSON.stringify({ error: { code: '429', message: 'azure throttled' } }) });
      let err: any;
      try {
        await client(h).chat.completions.create({ model: 'azure-gpt', messages: [{ role: 'user', content: 'x' }] });
      } catch (e) {
        err = e;
      }
      assert.equal(err instanceof OpenAI.RateLimitError, true, String(err));
      assert.equal(err.headers.get('retry-after'), '2');
      assert.equal(err.error.message, 'azure throttled');
      h.tollgate.services.health.retain([]);
    });

    it('a non-JSON (HTML) provider error page is not echoed: 502 with a generic OpenAI error', async () => {
      h.tollgate.services.health.retain([]);
      h.fakes.openai!.setNext({ type: 'raw', status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad gateway at internal-lb-7.corp</html>' });
      let err: any;
      try {
        await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      } catch (e) {
        err = e;
      }
      assert.equal(err instanceof OpenAI.InternalServerError, true, String(err));
      assert.equal(err.status, 502);
      assert.equal(err.error.type, 'server_error');
      assert.ok(!JSON.stringify(err.error).includes('internal-lb-7'), JSON.stringify(err.error));
      assert.match(err.headers.get('content-type') ?? '', /application\/json/);
      h.tollgate.services.health.retain([]);
    });

    it('a malformed 200 body → 502 in the client shape, never a 200 with garbage', async () => {
      h.tollgate.services.health.retain([]);
      h.fakes.anthropic!.setNext({ type: 'raw', status: 200, body: '{"type":"message","content":[' });
      let err: any;
      try {
        await client(h).chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'x' }] });
      } catch (e) {
        err = e;
      }
      assert.equal(err instanceof OpenAI.InternalServerError, true, String(err));
      assert.equal(err.status, 502);
      assert.equal(err.error.type, 'server_error');
      h.tollgate.services.health.retain([]);
    });

    // Tollgate asks for `accept-encoding: identity`; a provider (or proxy) that gzips anyway is decoded by the
    // translator. The client must then not be told the (now plain) body is gzip.
    const gz: { name: string; kind: ProviderApi; status: number; body: unknown }[] = [
      { name: 'OpenAI passthrough, 200', kind: 'openai', status: 200, body: openAIReply({ text: 'zipped answer' }) },
      { name: 'OpenAI → Anthropic, 200', kind: 'anthropic', status: 200, body: anthropicReply({ text: 'zipped answer' }) },
      { name: 'OpenAI passthrough, 400 error', kind: 'openai', status: 400, body: { error: { message: 'zipped complaint', type: 'invalid_request_error', param: null, code: null } } },
    ];
    for (const c of gz) {
      it(`gzip-encoded provider answer despite accept-encoding: identity (${c.name}) → readable by the SDK`, async () => {
        const fake = h.fakes[c.kind]!;
        fake.setNext({ type: 'raw', status: c.status, headers: { 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(c.body)) });
        let res: OpenAI.ChatCompletion | undefined;
        let err: any;
        try {
          res = await client(h).chat.completions.create({ model: MODELS[c.kind], messages: [{ role: 'user', content: 'x' }] });
        } catch (e) {
          err = e;
        }
        assert.equal(fake.requests.at(-1)!.headers['accept-encoding'], 'identity');
        if (c.status === 200) {
          assert.equal(err, undefined, `SDK failed: ${String(err)}`);
          assert.equal(res!.choices[0]!.message.content, 'zipped answer');
        } else {
          assert.equal(err instanceof OpenAI.BadRequestError, true, String(err));
          assert.equal(err.error?.message, 'zipped complaint', 'the error body is readable');
        }
      });
    }
  });
});
