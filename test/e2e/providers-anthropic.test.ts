// Provider translation for Anthropic clients, end to end: the official `@anthropic-ai/sdk` (baseURL = a real
// Envoy, apiKey = a Tollgate virtual key, sent as x-api-key) → Tollgate → Anthropic (passthrough) and, through
// the OpenAI shape, an OpenAI-compatible provider (a Model added for this test), Azure, Gemini and Bedrock.
// Non-stream, stream, tools (definitions, tool_choice, tool_use blocks returned, streamed input_json_delta
// reassembled by the SDK, tool results in a follow-up turn) and errors in Anthropic's error shape.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { ProviderApi } from '../../service/config/types.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { FakeProvider, RecordedRequest } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';
import { extProcTrouble } from '../support/envoy.ts';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: claude-via-openai}
spec:
  kind: chat
  deployments:
  - {provider: fake-openai, model: gpt-4o-2024-08-06, region: us-east-1, pricing: {inputPerMillion: 2.5, outputPerMillion: 10}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: bedrock-nova}
spec:
  kind: chat
  deployments:
  - {provider: fake-bedrock, model: amazon.nova-pro-v1:0, region: us-east-1, pricing: {inputPerMillion: 0.8, outputPerMillion: 3.2}}
`;

interface Target {
  kind: ProviderApi;
  model: string;
  upstream: string;
  path(stream: boolean): string;
}

// A non-Claude Bedrock model goes through Converse (the OpenAI-shape pivot); Claude on Bedrock takes the
// Anthropic-native InvokeModel path (test/e2e/providers-anthropic-native.test.ts).
const BEDROCK_MODEL = 'amazon.nova-pro-v1:0';
const TARGETS: Target[] = [
  { kind: 'anthropic', model: 'claude-sonnet', upstream: 'claude-3-5-sonnet-20241022', path: () => '/v1/messages' },
  { kind: 'openai', model: 'claude-via-openai', upstream: 'gpt-4o-2024-08-06', path: () => '/v1/chat/completions' },
  {
    kind: 'azure',
    model: 'azure-gpt',
    upstream: 'my-gpt4o-deployment',
    path: () => '/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21',
  },
  {
    kind: 'gemini',
    model: 'gemini-flash',
    upstream: 'gemini-2.0-flash',
    path: (s) => (s ? '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse' : '/v1beta/models/gemini-2.0-flash:generateContent'),
  },
  {
    kind: 'bedrock',
    model: 'bedrock-nova',
    upstream: BEDROCK_MODEL,
    path: (s) => `/model/${encodeURIComponent(BEDROCK_MODEL)}/${s ? 'converse-stream' : 'converse'}`,
  },
];

/** anthropic-version headers the SDK sent (passthrough forwards the client's version). */
const sentVersions: string[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const v = new Headers(init?.headers).get('anthropic-version');
  if (v) sentVersions.push(v);
  return fetch(input, init);
};
const anthropic = (h: Harness, key = KEYS.acme) =>
  new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, timeout: 15000, fetch: recordingFetch });

async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const before = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, before + 1, `exactly one upstream request to fake-${fake.kind}`);
  return { result, got: fake.requests.at(-1)! };
}

function assertUpstream(h: Harness, t: Target, got: RecordedRequest, stream: boolean): void {
  const fake = h.fakes[t.kind]!;
  assert.equal(got.path, t.path(stream), `${t.kind}: upstream path`);
  for (const [k, v] of Object.entries(got.headers)) assert.ok(!v.includes(KEYS.acme), `virtual key leaked in upstream header ${k}`);
  assert.ok(!got.body.toString('utf8').includes(KEYS.acme));
  const hd = got.headers;
  switch (t.kind) {
    case 'anthropic':
      assert.equal(hd['x-api-key'], fake.credential, "the provider key replaces the client's x-api-key");
      assert.ok(sentVersions.length > 0);
      assert.equal(hd['anthropic-version'], sentVersions.at(-1), "the client's anthropic-version is forwarded on passthrough");
      assert.equal(hd.authorization, undefined);
      assert.equal((got.json as any).model, t.upstream);
      break;
    case 'openai':
      assert.equal(hd.authorization, `Bearer ${fake.credential}`);
      assert.equal(hd['x-api-key'], undefined, "the client's x-api-key is not forwarded");
      assert.equal(hd['anthropic-version'], undefined, 'no Anthropic headers to an OpenAI-compatible provider');
      assert.equal((got.json as any).model, t.upstream);
      break;
    case 'azure':
      assert.equal(hd['api-key'], fake.credential);
      assert.equal(hd.authorization, undefined);
      assert.equal(hd['x-api-key'], undefined);
      break;
    case 'gemini':
      assert.equal(hd['x-goog-api-key'], fake.credential);
      assert.equal(hd['x-api-key'], undefined);
      break;
    case 'bedrock':
      assert.match(hd.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDFAKE\//);
      assert.equal(hd['x-api-key'], undefined);
      assert.equal(hd.host, fake.host);
      break;
  }
}

async function lineageFor(h: Harness, requestId: string | null | undefined): Promise<LineageRecord> {
  assert.ok(requestId, 'x-request-id on the response');
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
};
const TIME: Anthropic.Tool = { name: 'get_time', description: 'Local time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } };
const CALLS = [
  { id: 'toolu_w1', name: 'get_weather', args: { city: 'Paris', unit: 'c' } },
  { id: 'toolu_t2', name: 'get_time', args: { tz: 'Europe/Paris' } },
];

function toolUses(m: Anthropic.Message): { id: string; name: string; input: unknown }[] {
  return m.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, input: b.input }));
}

function text(m: Anthropic.Message): string {
  return m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

/** Upstream shape of the tool definitions + a forced tool_choice, per provider. */
function assertToolRequest(kind: ProviderApi, body: any): void {
  switch (kind) {
    case 'anthropic':
      assert.deepEqual(body.tools, [WEATHER, TIME], 'passthrough: tools untouched');
      assert.deepEqual(body.tool_choice, { type: 'tool', name: 'get_weather' });
      break;
    case 'openai':
    case 'azure':
      assert.deepEqual(body.tools[0], { type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER.input_schema } });
      assert.equal(body.tools[1].function.name, 'get_time');
      assert.deepEqual(body.tool_choice, { type: 'function', function: { name: 'get_weather' } });
      break;
    case 'gemini': {
      const decls = body.tools.flatMap((t: any) => t.functionDeclarations ?? []);
      assert.deepEqual(decls.map((d: any) => d.name), ['get_weather', 'get_time']);
      assert.deepEqual(decls[0].parametersJsonSchema, WEATHER.input_schema);
      assert.deepEqual(body.toolConfig.functionCallingConfig, { mode: 'ANY', allowedFunctionNames: ['get_weather'] });
      break;
    }
    case 'bedrock':
      assert.deepEqual(body.toolConfig.tools[0].toolSpec, { name: 'get_weather', description: 'Current weather for a city', inputSchema: { json: WEATHER.input_schema } });
      assert.deepEqual(body.toolConfig.toolChoice, { tool: { name: 'get_weather' } });
      break;
  }
}

describe('e2e providers: Anthropic SDK → Anthropic passthrough and via the OpenAI shape', { timeout: 240000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic', 'azure', 'gemini', 'bedrock'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  for (const t of TARGETS) {
    describe(`Anthropic SDK → ${t.kind} (${t.model})`, () => {
      it('non-stream: an Anthropic message with text, usage and stop_reason; provider got its own auth', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { text: 'Bonjour from the provider.', usage: { input: 21, output: 9 }, id: 'r_ns_1' } });
        const { result, got } = await captured(fake, () =>
          anthropic(h)
            .messages.create({ model: t.model, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hi in French' }], stop_sequences: ['END'] })
            .withResponse(),
        );
        const { data: msg, response } = result;
        assert.equal(msg.type, 'message');
        assert.equal(msg.role, 'assistant');
        assert.equal(text(msg), 'Bonjour from the provider.');
        assert.equal(msg.stop_reason, 'end_turn');
        assert.equal(msg.usage.input_tokens, 21);
        assert.equal(msg.usage.output_tokens, 9);
        assert.ok(msg.id.length > 0);
        assert.equal(response.headers.get('x-tollgate-provider'), `fake-${t.kind}`);
        assert.equal(response.headers.get('x-tollgate-model'), t.model);
        assertUpstream(h, t, got, false);
        const body = got.json as any;
        if (t.kind === 'anthropic') {
          assert.equal(body.system, 'Be brief.');
          assert.equal(body.max_tokens, 100);
          assert.deepEqual(body.stop_sequences, ['END']);
          assert.equal(msg.id, 'msg_r_ns_1', 'passthrough keeps the provider id');
        } else if (t.kind === 'openai' || t.kind === 'azure') {
          assert.deepEqual(body.messages, [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Say hi in French' },
          ]);
          assert.deepEqual(body.stop, ['END']);
        }
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.request.clientApi, 'anthropic');
        assert.equal(rec.outcome, 'success');
        assert.deepEqual({ i: rec.tokens?.input, o: rec.tokens?.output }, { i: 21, o: 9 });
        assert.equal(rec.attempts?.length, 1);
        assert.equal(rec.attempts![0]!.provider, `fake-${t.kind}`);
        assert.equal(rec.attempts![0]!.status, 200);
        assert.ok(rec.attempts![0]!.latencyMs > 0);
      });

      it('stream: the SDK assembles text deltas into the final message, usage applied', async () => {
        const fake = h.fakes[t.kind]!;
        const reply = 'One, two, three, four, five — counted by the fake.';
        fake.setNext({ type: 'reply', reply: { text: reply, usage: { input: 30, output: 14 } } });
        const { result, got } = await captured(fake, async () => {
          const stream = anthropic(h).messages.stream({ model: t.model, max_tokens: 200, messages: [{ role: 'user', content: 'Count to five' }] });
          const deltas: string[] = [];
          const events: string[] = [];
          stream.on('text', (d) => deltas.push(d));
          stream.on('streamEvent', (e) => events.push(e.type));
          const final = await stream.finalMessage();
          return { final, deltas, events };
        });
        assertUpstream(h, t, got, true);
        assert.equal(text(result.final), reply);
        assert.ok(result.deltas.length > 2, `several text deltas (${result.deltas.length})`);
        assert.equal(result.deltas.join(''), reply);
        assert.equal(result.final.stop_reason, 'end_turn');
        assert.equal(result.final.usage.output_tokens, 14);
        assert.equal(result.final.usage.input_tokens, 30);
        assert.equal(result.events[0], 'message_start');
        assert.equal(result.events.at(-1), 'message_stop');
        assert.ok(result.events.includes('content_block_start') && result.events.includes('message_delta'));
      });

      it('tools, non-stream: tools + tool_choice translated, tool_use blocks come back with parsed input', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS, usage: { input: 40, output: 20 } } });
        const { result: msg, got } = await captured(fake, () =>
          anthropic(h).messages.create({
            model: t.model,
            max_tokens: 300,
            messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
            tools: [WEATHER, TIME],
            tool_choice: { type: 'tool', name: 'get_weather' },
          }),
        );
        assertUpstream(h, t, got, false);
        assertToolRequest(t.kind, got.json);
        assert.equal(msg.stop_reason, 'tool_use');
        const uses = toolUses(msg);
        assert.deepEqual(uses.map((u) => [u.name, u.input]), CALLS.map((c) => [c.name, c.args]));
        if (t.kind === 'gemini') assert.ok(uses.every((u) => u.id.length > 0) && uses[0]!.id !== uses[1]!.id);
        else assert.deepEqual(uses.map((u) => u.id), CALLS.map((c) => c.id));
      });

      it('tools, stream: input_json_delta fragments reassembled by the SDK into tool_use inputs', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS, usage: { input: 40, output: 20 } } });
        const { result, got } = await captured(fake, async () => {
          const stream = anthropic(h).messages.stream({
            model: t.model,
            max_tokens: 300,
            messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
            tools: [WEATHER, TIME],
            tool_choice: { type: 'any' },
          });
          let jsonDeltas = 0;
          stream.on('inputJson', () => jsonDeltas++);
          const final = await stream.finalMessage();
          return { final, jsonDeltas };
        });
        assertUpstream(h, t, got, true);
        assert.equal(result.final.stop_reason, 'tool_use');
        const uses = toolUses(result.final);
        assert.deepEqual(uses.map((u) => [u.name, u.input]), CALLS.map((c) => [c.name, c.args]));
        if (t.kind !== 'gemini') assert.deepEqual(uses.map((u) => u.id), CALLS.map((c) => c.id));
        assert.ok(result.jsonDeltas >= 2, `input_json_delta events (${result.jsonDeltas})`);
        assert.equal(result.final.usage.output_tokens, 20);
        const body = got.json as any;
        if (t.kind === 'openai' || t.kind === 'azure') assert.equal(body.tool_choice, 'required');
        if (t.kind === 'anthropic') assert.deepEqual(body.tool_choice, { type: 'any' });
      });

      it('tool results in a follow-up turn: history translated for the provider, final answer returned', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS } });
        const first = await anthropic(h).messages.create({
          model: t.model,
          max_tokens: 300,
          messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
          tools: [WEATHER, TIME],
        });
        const uses = toolUses(first);
        assert.equal(uses.length, 2);
        fake.setNext({ type: 'reply', reply: { text: 'It is 18°C in Paris at 14:05.' } });
        const { result: second, got } = await captured(fake, () =>
          anthropic(h).messages.create({
            model: t.model,
            max_tokens: 300,
            tools: [WEATHER, TIME],
            messages: [
              { role: 'user', content: 'Weather and time in Paris?' },
              { role: 'assistant', content: first.content },
              {
                role: 'user',
                content: [
                  { type: 'tool_result', tool_use_id: uses[0]!.id, content: '{"temp":18}' },
                  { type: 'tool_result', tool_use_id: uses[1]!.id, content: [{ type: 'text', text: '14:05' }] },
                ],
              },
            ],
          }),
        );
        assertUpstream(h, t, got, false);
        assert.equal(text(second), 'It is 18°C in Paris at 14:05.');
        assert.equal(second.stop_reason, 'end_turn');
        const body = got.json as any;
        const ids = uses.map((u) => u.id);
        switch (t.kind) {
          case 'anthropic': {
            const results = body.messages[2].content;
            assert.deepEqual(results.map((r: any) => r.tool_use_id), ids);
            assert.deepEqual(body.messages[1].content.filter((b: any) => b.type === 'tool_use').map((b: any) => b.id), ids);
            break;
          }
          case 'openai':
          case 'azure':
            assert.deepEqual(body.messages.map((m: any) => m.role), ['user', 'assistant', 'tool', 'tool']);
            assert.deepEqual(body.messages[1].tool_calls.map((c: any) => [c.id, c.function.name, JSON.parse(c.function.arguments)]), [
              [ids[0], 'get_weather', { city: 'Paris', unit: 'c' }],
              [ids[1], 'get_time', { tz: 'Europe/Paris' }],
            ]);
            assert.deepEqual(body.messages.slice(2).map((m: any) => [m.tool_call_id, m.content]), [
              [ids[0], '{"temp":18}'],
              [ids[1], '14:05'],
            ]);
            break;
          case 'gemini': {
            assert.deepEqual(body.contents.map((c: any) => c.role), ['user', 'model', 'user']);
            const fr = body.contents[2].parts.map((p: any) => p.functionResponse);
            assert.deepEqual(fr.map((r: any) => [r.name, r.response]), [
              ['get_weather', { output: '{"temp":18}' }],
              ['get_time', { output: '14:05' }],
            ]);
            break;
          }
          case 'bedrock': {
            const res = body.messages[2].content.map((b: any) => b.toolResult);
            assert.deepEqual(res.map((r: any) => r.toolUseId), ids);
            break;
          }
        }
      });

      it("stream failing half-way → an `error` event in Anthropic's shape; the SDK rejects after the text so far", async () => {
        h.tollgate.services.health.retain([]);
        h.fakes[t.kind]!.setNext({ type: 'stream_error', message: 'fake overloaded mid-stream' });
        const stream = anthropic(h).messages.stream({ model: t.model, max_tokens: 100, messages: [{ role: 'user', content: 'stream error' }] });
        let textSoFar = '';
        stream.on('text', (d) => (textSoFar += d));
        let err: unknown;
        try {
          await stream.finalMessage();
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof Anthropic.APIError, String(err));
        const body = (err as InstanceType<typeof Anthropic.APIError>).error as { type?: string; error?: { type?: string; message?: string } };
        assert.equal(body.type, 'error');
        // The fakes' in-stream errors: Anthropic overloaded_error (passthrough), OpenAI/Azure server_error → api_error,
        // Gemini UNAVAILABLE → overloaded_error, Bedrock throttlingException → rate_limit_error.
        const type: Record<ProviderApi, string> = { anthropic: 'overloaded_error', openai: 'api_error', azure: 'api_error', gemini: 'overloaded_error', bedrock: 'rate_limit_error', vertex: 'overloaded_error' };
        assert.equal(body.error?.type, type[t.kind]);
        assert.match(body.error?.message ?? '', /fake overloaded mid-stream/);
        assert.ok(textSoFar.length > 0 && 'Hello from the fake provider.'.startsWith(textSoFar), JSON.stringify(textSoFar));
        h.tollgate.services.health.retain([]);
      });

      describe("provider errors → Anthropic's error shape and SDK error classes", () => {
        const cases = [
          { status: 429, clientStatus: 429, cls: Anthropic.RateLimitError, type: 'rate_limit_error', message: 'Slow down, fake rate limit' },
          { status: 500, clientStatus: 502, cls: Anthropic.InternalServerError, type: 'api_error', message: 'fake upstream exploded' },
          { status: 400, clientStatus: 400, cls: Anthropic.BadRequestError, type: 'invalid_request_error', message: 'fake says the request is invalid' },
          { status: 503, clientStatus: 503, cls: Anthropic.InternalServerError, type: 'overloaded_error', message: 'fake is overloaded' },
        ] as const;
        for (const c of cases) {
          it(`upstream ${c.status} → ${c.clientStatus} ${c.cls.name} (${c.type})`, async () => {
            h.tollgate.services.health.retain([]); // each case must reach the provider (no passive-health ejection)
            const fake = h.fakes[t.kind]!;
            fake.setNext({ type: 'error', status: c.status, message: c.message, ...(c.status === 429 ? { retryAfter: 7 } : {}) });
            let err: unknown;
            try {
              await anthropic(h).messages.create({ model: t.model, max_tokens: 10, messages: [{ role: 'user', content: `error ${c.status}` }] });
            } catch (e) {
              err = e;
            }
            assert.ok(err instanceof c.cls, `${String(err)} is a ${c.cls.name}`);
            const e = err as InstanceType<typeof Anthropic.APIError>;
            assert.equal(e.status, c.clientStatus);
            const body = e.error as { type?: string; error?: { type?: string; message?: string } };
            assert.equal(body.type, 'error', JSON.stringify(body));
            assert.equal(body.error?.type, c.type);
            assert.equal(body.error?.message, c.message);
            assert.equal(e.headers?.get('x-tollgate-provider'), `fake-${t.kind}`);
            if (c.status === 429) assert.equal(e.headers?.get('retry-after'), '7');
            const rec = await lineageFor(h, e.headers?.get('x-request-id'));
            assert.equal(rec.attempts?.[0]?.status, c.status);
            assert.equal(rec.attempts?.[0]?.errorClass, `http_${c.status}`);
          });
        }
      });
    });
  }

  it('Anthropic passthrough forwards the client anthropic-beta header, never the client x-api-key', async () => {
    const fake = h.fakes.anthropic!;
    const { got } = await captured(fake, () =>
      anthropic(h).messages.create(
        { model: 'claude-sonnet', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } },
      ),
    );
    assert.equal(got.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    assert.equal(got.headers['x-api-key'], fake.credential);
  });

  it('passthrough without a client anthropic-version uses the Provider apiVersion (2023-06-01)', async () => {
    const fake = h.fakes.anthropic!;
    const { result: res, got } = await captured(fake, () =>
      fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': KEYS.acme, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
      }),
    );
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).type, 'message');
    assert.equal(got.headers['anthropic-version'], '2023-06-01');
  });

  it('a virtual key in Authorization: Bearer also works on /v1/messages', async () => {
    const c = new Anthropic({ authToken: KEYS.acme, apiKey: null, baseURL: h.url, maxRetries: 0, timeout: 15000 });
    const fake = h.fakes.anthropic!;
    const { result, got } = await captured(fake, () => c.messages.create({ model: 'claude-sonnet', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(result.type, 'message');
    assert.equal(got.headers.authorization, undefined, 'client Authorization removed before Anthropic');
    assert.equal(got.headers['x-api-key'], fake.credential);
  });

  it('a bad key on /v1/messages → 401 in the Anthropic error shape (AuthenticationError)', async () => {
    let err: unknown;
    try {
      await anthropic(h, 'tg-this-key-does-not-exist-0000000').messages.create({ model: 'claude-sonnet', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
    assert.equal((err as any).error.type, 'error');
    assert.equal((err as any).error.error.type, 'authentication_error');
  });

  it('an Anthropic field with no OpenAI equivalent → 422 in the Anthropic shape, nothing sent upstream', async () => {
    const fake = h.fakes.openai!;
    const before = fake.requests.length;
    let err: unknown;
    try {
      await anthropic(h).messages.create({
        model: 'claude-via-openai',
        max_tokens: 100,
        thinking: { type: 'enabled', budget_tokens: 1024 },
        messages: [{ role: 'user', content: 'think' }],
      });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Anthropic.UnprocessableEntityError, String(err));
    assert.equal((err as any).error.error.type, 'invalid_request_error');
    assert.match((err as any).error.error.message, /thinking/);
    assert.equal(fake.requests.length, before, 'refused before the provider');
  });

  it('Envoy rejected no mutation, got no spurious message and lost no ext_proc stream in the whole run', async () => {
    assert.deepEqual(await extProcTrouble(h.envoy), {});
  });
});
