// Provider translation, end to end: the official `openai` SDK → real Envoy → Tollgate (real gRPC) → each fake
// provider (OpenAI-compatible, Azure, Anthropic, Gemini, Bedrock) and back. For every provider: non-stream, stream,
// tools (definitions, tool_choice, tool calls returned, streamed tool-call deltas reassembled by the SDK, tool results
// in a follow-up turn), and error mapping (429/500/400 → SDK error class, OpenAI error shape, retry-after). Each fake
// validates auth and request shape the way the real API does and records what it got, so the tests also assert what
// the provider received (path, auth header, no client key, upstream model id). Served-by headers and the lineage
// record's `attempts` are checked on the same traffic. Anthropic SDK and embeddings: providers-anthropic.test.ts and
// providers-embeddings.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ProviderApi } from '../../service/config/types.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import {
  anthropicStream,
  bedrockStream,
  geminiStream,
  openAIStream,
  type Behaviour,
  type FakeProvider,
  type RecordedRequest,
} from '../support/fake-providers.ts';
import { KEYS, accessLogFor, eventually, startHarness, type Harness } from '../support/harness.ts';
import { extProcTrouble } from '../support/envoy.ts';

const ALL: ProviderApi[] = ['openai', 'anthropic', 'azure', 'gemini', 'bedrock'];

interface Target {
  kind: ProviderApi;
  /** Public model name (harness config). */
  model: string;
  /** Upstream model id of the deployment. */
  upstream: string;
  /** The path (with query) the provider must receive. */
  path(stream: boolean): string;
}

const BEDROCK_MODEL = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
export const CHAT_TARGETS: Target[] = [
  { kind: 'openai', model: 'gpt-4o-mini', upstream: 'gpt-4o-mini-2024-07-18', path: () => '/v1/chat/completions' },
  {
    kind: 'azure',
    model: 'azure-gpt',
    upstream: 'my-gpt4o-deployment',
    path: () => '/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21',
  },
  { kind: 'anthropic', model: 'claude-sonnet', upstream: 'claude-3-5-sonnet-20241022', path: () => '/v1/messages' },
  {
    kind: 'gemini',
    model: 'gemini-flash',
    upstream: 'gemini-2.0-flash',
    path: (s) => (s ? '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse' : '/v1beta/models/gemini-2.0-flash:generateContent'),
  },
  {
    kind: 'bedrock',
    model: 'bedrock-claude',
    upstream: BEDROCK_MODEL,
    path: (s) => `/model/${encodeURIComponent(BEDROCK_MODEL)}/${s ? 'converse-stream' : 'converse'}`,
  },
];

// Same fake Bedrock, signed with a wrong secret (host need not be the fake's: Envoy connects by cluster).
const BAD_BEDROCK_YAML = `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: bedrock-badkey}
spec:
  api: bedrock
  cluster: fake_bedrock
  host: bedrock-runtime.us-east-1.amazonaws.com
  basePath: ""
  credential: {env: TG_TEST_BEDROCK_BAD_KEY}
  region: us-east-1
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: bedrock-badkey}
spec:
  kind: chat
  deployments:
  - {provider: bedrock-badkey, model: ${JSON.stringify(BEDROCK_MODEL)}, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
`;

const client = (h: Harness, key = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });

/**
 * Azure's first stream chunk: `{id:"", object:"", choices:[], prompt_filter_results:[…]}`. The Azure translator is
 * a passthrough and forwards it (golden test openai-azure/content-filter-chunks); the SDK tolerates it.
 */
function isAzureFilterChunk(c: OpenAI.ChatCompletionChunk): boolean {
  return c.choices.length === 0 && !c.usage && c.id === '' && Array.isArray((c as unknown as { prompt_filter_results?: unknown }).prompt_filter_results);
}

/**
 * A 200 stream whose body ends cleanly (no reset) after the first half of the events, before the provider's end
 * marker ([DONE], message_stop, finishReason, messageStop/metadata).
 */
function partialStream(kind: ProviderApi): Behaviour {
  const reply = { text: 'Hello from the fake provider.' };
  let parts: Buffer[];
  switch (kind) {
    case 'openai':
    case 'azure':
      parts = openAIStream(reply, true, kind === 'azure').map((x) => Buffer.from(x));
      break;
    case 'anthropic':
      parts = anthropicStream(reply).map((x) => Buffer.from(x));
      break;
    case 'gemini':
      parts = geminiStream(reply).map((x) => Buffer.from(x));
      break;
    case 'bedrock':
      parts = bedrockStream(reply);
      break;
    case 'vertex':
      parts = anthropicStream(reply).map((x) => Buffer.from(x));
      break;
  }
  const n = parts.length <= 4 ? parts.length - 1 : Math.floor(parts.length / 2);
  const body = Buffer.concat(parts.slice(0, n));
  const ct = kind === 'bedrock' ? 'application/vnd.amazon.eventstream' : 'text/event-stream; charset=utf-8';
  return { type: 'raw', status: 200, headers: { 'content-type': ct }, body };
}

/** Runs `fn` and returns the one request the fake received meanwhile. */
async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const before = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, before + 1, `exactly one upstream request to fake-${fake.kind}`);
  return { result, got: fake.requests.at(-1)! };
}

/** What every provider must have received: its path, its own auth, never the client's virtual key, the upstream model. */
export function assertUpstream(h: Harness, t: Target, got: RecordedRequest, stream: boolean): void {
  const fake = h.fakes[t.kind]!;
  assert.equal(got.method, 'POST');
  assert.equal(got.path, t.path(stream), `${t.kind}: upstream path`);
  const hdrs = got.headers;
  for (const [k, v] of Object.entries(hdrs)) {
    assert.ok(!v.includes(KEYS.acme), `${t.kind}: the virtual key leaked to the provider in header ${k}`);
  }
  assert.ok(!got.body.toString('utf8').includes(KEYS.acme), `${t.kind}: the virtual key leaked into the upstream body`);
  switch (t.kind) {
    case 'openai':
      assert.equal(hdrs.authorization, `Bearer ${fake.credential}`, 'provider key replaces the client Authorization');
      assert.equal((got.json as any).model, t.upstream);
      break;
    case 'azure':
      assert.equal(hdrs['api-key'], fake.credential);
      assert.equal(hdrs.authorization, undefined, 'no Authorization header to Azure');
      break;
    case 'anthropic':
      assert.equal(hdrs['x-api-key'], fake.credential);
      assert.equal(hdrs['anthropic-version'], '2023-06-01');
      assert.equal(hdrs.authorization, undefined, 'no Authorization header to Anthropic');
      assert.equal((got.json as any).model, t.upstream);
      break;
    case 'gemini':
      assert.equal(hdrs['x-goog-api-key'], fake.credential);
      assert.equal(hdrs.authorization, undefined, 'no Authorization header to Gemini');
      break;
    case 'bedrock': {
      const [akid] = fake.credential!.split(':');
      assert.match(hdrs.authorization ?? '', new RegExp(`^AWS4-HMAC-SHA256 Credential=${akid}/\\d{8}/us-east-1/bedrock/aws4_request, ?SignedHeaders=[^,]*host[^,]*, ?Signature=[0-9a-f]{64}$`));
      assert.equal(hdrs.host, fake.host, 'the :authority Envoy sends is the signed host');
      assert.ok(hdrs['x-amz-date']);
      assert.ok(!('model' in (got.json as any)), 'Converse carries the model in the path only');
      break;
    }
  }
}

/**
 * Passive health ejects a deployment after a 429 with retry-after (or 3 failures in a row); each error case here
 * must reach the provider, so forget the health state first (the tests are about translation, not routing).
 */
function resetHealth(h: Harness): void {
  h.tollgate.services.health.retain([]);
}

async function lineageFor(h: Harness, requestId: string | null): Promise<LineageRecord> {
  assert.ok(requestId, 'x-request-id on the response');
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

function assertAttempt(rec: LineageRecord, t: Target, status: number): void {
  assert.equal(rec.served?.provider, `fake-${t.kind}`);
  assert.equal(rec.served?.upstreamModel, t.upstream);
  assert.equal(rec.attempts?.length, 1, 'one attempt');
  const a = rec.attempts![0]!;
  assert.equal(a.provider, `fake-${t.kind}`);
  assert.equal(a.status, status, 'attempt status is the upstream HTTP status');
  assert.equal(typeof a.latencyMs, 'number');
  assert.ok(a.latencyMs > 0, `latency measured (${a.latencyMs})`);
  if (status >= 400) assert.equal(a.errorClass, `http_${status}`);
  else assert.equal(a.errorClass, undefined);
}

const WEATHER_TOOL: OpenAI.ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
const TIME_TOOL: OpenAI.ChatCompletionFunctionTool = {
  type: 'function',
  function: { name: 'get_time', description: 'Local time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } },
};
const CALLS = [
  { id: 'call_w1', name: 'get_weather', args: { city: 'Paris', unit: 'c' } },
  { id: 'call_t2', name: 'get_time', args: { tz: 'Europe/Paris' } },
];

/** Checks the provider-native shape of the tool definitions and a forced tool_choice on get_weather. */
function assertToolRequest(kind: ProviderApi, body: any): void {
  const params = WEATHER_TOOL.function.parameters;
  switch (kind) {
    case 'openai':
    case 'azure':
      assert.deepEqual(body.tools, [WEATHER_TOOL, TIME_TOOL]);
      assert.deepEqual(body.tool_choice, { type: 'function', function: { name: 'get_weather' } });
      break;
    case 'anthropic':
      assert.deepEqual(body.tools[0], { name: 'get_weather', description: 'Current weather for a city', input_schema: params });
      assert.equal(body.tools[1].name, 'get_time');
      assert.equal(body.tool_choice.type, 'tool');
      assert.equal(body.tool_choice.name, 'get_weather');
      break;
    case 'gemini': {
      const decls = body.tools.flatMap((t: any) => t.functionDeclarations ?? []);
      assert.deepEqual(decls.map((d: any) => d.name), ['get_weather', 'get_time']);
      assert.deepEqual(decls[0].parametersJsonSchema, params);
      assert.equal(decls[0].description, 'Current weather for a city');
      assert.equal(body.toolConfig.functionCallingConfig.mode, 'ANY');
      assert.deepEqual(body.toolConfig.functionCallingConfig.allowedFunctionNames, ['get_weather']);
      break;
    }
    case 'bedrock':
      assert.deepEqual(body.toolConfig.tools[0], { toolSpec: { name: 'get_weather', description: 'Current weather for a city', inputSchema: { json: params } } });
      assert.equal(body.toolConfig.tools[1].toolSpec.name, 'get_time');
      assert.deepEqual(body.toolConfig.toolChoice, { tool: { name: 'get_weather' } });
      break;
  }
}

/** Checks the provider-native shape of [user, assistant tool calls, tool results] history. */
function assertToolResultRequest(kind: ProviderApi, body: any, ids: string[]): void {
  switch (kind) {
    case 'openai':
    case 'azure': {
      assert.deepEqual(body.messages.map((m: any) => m.role), ['user', 'assistant', 'tool', 'tool']);
      assert.deepEqual(body.messages[1].tool_calls.map((c: any) => c.id), ids);
      assert.deepEqual(body.messages.slice(2).map((m: any) => [m.tool_call_id, m.content]), [
        [ids[0], '{"temp":18}'],
        [ids[1], '14:05'],
      ]);
      break;
    }
    case 'anthropic': {
      assert.deepEqual(body.messages.map((m: any) => m.role), ['user', 'assistant', 'user']);
      const uses = body.messages[1].content.filter((b: any) => b.type === 'tool_use');
      assert.deepEqual(uses.map((b: any) => [b.id, b.name, b.input]), [
        [ids[0], 'get_weather', { city: 'Paris', unit: 'c' }],
        [ids[1], 'get_time', { tz: 'Europe/Paris' }],
      ]);
      const results = body.messages[2].content.filter((b: any) => b.type === 'tool_result');
      assert.deepEqual(results.map((b: any) => b.tool_use_id), ids, 'both results in ONE user turn, in order');
      const text = (c: any) => (typeof c === 'string' ? c : c.map((x: any) => x.text).join(''));
      assert.deepEqual(results.map((b: any) => text(b.content)), ['{"temp":18}', '14:05']);
      break;
    }
    case 'gemini': {
      assert.deepEqual(body.contents.map((c: any) => c.role), ['user', 'model', 'user']);
      const calls = body.contents[1].parts.filter((p: any) => p.functionCall).map((p: any) => p.functionCall);
      assert.deepEqual(calls.map((c: any) => [c.name, c.args]), [
        ['get_weather', { city: 'Paris', unit: 'c' }],
        ['get_time', { tz: 'Europe/Paris' }],
      ]);
      const responses = body.contents[2].parts.map((p: any) => p.functionResponse);
      assert.deepEqual(responses.map((r: any) => r?.name), ['get_weather', 'get_time'], 'functionResponse named after the matching call');
      assert.deepEqual(responses.map((r: any) => r.response), [{ output: '{"temp":18}' }, { output: '14:05' }]);
      break;
    }
    case 'bedrock': {
      assert.deepEqual(body.messages.map((m: any) => m.role), ['user', 'assistant', 'user']);
      const uses = body.messages[1].content.filter((b: any) => b.toolUse).map((b: any) => b.toolUse);
      assert.deepEqual(uses.map((u: any) => [u.toolUseId, u.name, u.input]), [
        [ids[0], 'get_weather', { city: 'Paris', unit: 'c' }],
        [ids[1], 'get_time', { tz: 'Europe/Paris' }],
      ]);
      const results = body.messages[2].content.filter((b: any) => b.toolResult).map((b: any) => b.toolResult);
      assert.deepEqual(results.map((r: any) => r.toolUseId), ids);
      assert.deepEqual(results.map((r: any) => r.content.map((c: any) => c.text ?? JSON.stringify(c.json)).join('')), ['{"temp":18}', '14:05']);
      break;
    }
  }
}

describe('e2e providers: OpenAI SDK → every provider through a real Envoy', { timeout: 240000 }, () => {
  let h: Harness;
  before(async () => {
    process.env.TG_TEST_BEDROCK_BAD_KEY = 'AKIDFAKE:not-the-right-secret';
    h = await startHarness({ providers: ALL, extraYaml: BAD_BEDROCK_YAML });
  });
  after(async () => {
    await h?.close();
  });

  for (const t of CHAT_TARGETS) {
    describe(`→ ${t.kind} (${t.model})`, () => {
      it('non-stream: text, usage, finish_reason; provider got its own auth + shape; served-by headers; lineage attempt', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { text: 'Bonjour from the provider.', usage: { input: 21, output: 9 }, id: 'r_ns_1' } });
        const { result, got } = await captured(fake, () =>
          client(h)
            .chat.completions.create({
              model: t.model,
              messages: [
                { role: 'system', content: 'Be brief.' },
                { role: 'user', content: 'Say hi in French' },
              ],
              max_tokens: 50,
              temperature: 0.2,
            })
            .withResponse(),
        );
        const { data, response } = result;
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices.length, 1);
        assert.equal(data.choices[0]!.message.role, 'assistant');
        assert.equal(data.choices[0]!.message.content, 'Bonjour from the provider.');
        assert.equal(data.choices[0]!.finish_reason, 'stop');
        assert.deepEqual(
          { p: data.usage?.prompt_tokens, c: data.usage?.completion_tokens, t: data.usage?.total_tokens },
          { p: 21, c: 9, t: 30 },
          'usage from the provider, in OpenAI terms',
        );
        assert.ok(data.id.length > 0);
        assert.equal(response.headers.get('x-tollgate-provider'), `fake-${t.kind}`);
        assert.equal(response.headers.get('x-tollgate-model'), t.model);
        assertUpstream(h, t, got, false);
        const body = got.json as any;
        // The system prompt and the sampling parameters arrive in the provider's own fields.
        switch (t.kind) {
          case 'openai':
          case 'azure':
            assert.deepEqual(body.messages[0], { role: 'system', content: 'Be brief.' });
            assert.equal(body.temperature, 0.2);
            break;
          case 'anthropic':
            assert.equal(body.system, 'Be brief.');
            assert.equal(body.max_tokens, 50);
            assert.equal(body.temperature, 0.2);
            break;
          case 'gemini':
            assert.deepEqual(body.systemInstruction.parts, [{ text: 'Be brief.' }]);
            assert.equal(body.generationConfig.maxOutputTokens, 50);
            assert.equal(body.generationConfig.temperature, 0.2);
            break;
          case 'bedrock':
            assert.deepEqual(body.system, [{ text: 'Be brief.' }]);
            assert.equal(body.inferenceConfig.maxTokens, 50);
            assert.equal(body.inferenceConfig.temperature, 0.2);
            break;
        }
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'success');
        assert.deepEqual({ i: rec.tokens?.input, o: rec.tokens?.output }, { i: 21, o: 9 });
        assertAttempt(rec, t, 200);
      });

      it('stream: the SDK reassembles the text, usage chunk when asked, finish_reason stop', async () => {
        const fake = h.fakes[t.kind]!;
        const text = 'One, two, three, four, five — counted by the fake.';
        fake.setNext({ type: 'reply', reply: { text, usage: { input: 30, output: 14 }, id: 'r_st_1' } });
        const { result, got } = await captured(fake, async () => {
          const { data: stream, response } = await client(h)
            .chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'Count to five' }], stream: true, stream_options: { include_usage: true } })
            .withResponse();
          let out = '';
          let chunks = 0;
          let finish: string | null | undefined;
          let usage: OpenAI.CompletionUsage | null | undefined;
          const ids = new Set<string>();
          let filterChunks = 0;
          for await (const c of stream) {
            if (isAzureFilterChunk(c)) {
              filterChunks++;
              continue;
            }
            chunks++;
            assert.equal(c.object, 'chat.completion.chunk');
            ids.add(c.id);
            out += c.choices[0]?.delta?.content ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
            if (c.usage) usage = c.usage;
          }
          return { out, chunks, finish, usage, ids, response, filterChunks };
        });
        assert.equal(result.out, text);
        assert.equal(result.filterChunks, t.kind === 'azure' ? 1 : 0, "only Azure's own prompt-filter annotation chunk is extra");
        assert.ok(result.chunks > 3, `streamed in several chunks (${result.chunks})`);
        assert.equal(result.finish, 'stop');
        assert.equal(result.ids.size, 1, 'one completion id across chunks');
        assert.deepEqual({ p: result.usage?.prompt_tokens, c: result.usage?.completion_tokens }, { p: 30, c: 14 });
        assert.match(result.response.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.equal(result.response.headers.get('x-tollgate-provider'), `fake-${t.kind}`);
        assert.equal(result.response.headers.get('x-tollgate-model'), t.model);
        assertUpstream(h, t, got, true);
        if (t.kind === 'openai' || t.kind === 'azure') assert.deepEqual((got.json as any).stream_options, { include_usage: true });
        if (t.kind === 'anthropic') assert.equal((got.json as any).stream, true);
        const rec = await lineageFor(h, result.response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'success');
        assert.equal(rec.request.stream, true);
        assert.deepEqual({ i: rec.tokens?.input, o: rec.tokens?.output }, { i: 30, o: 14 });
        assertAttempt(rec, t, 200);
      });

      it('stream without include_usage: no usage chunk reaches the client, lineage still counts tokens', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { text: 'short answer', usage: { input: 8, output: 2 } } });
        const { data: stream, response } = await client(h)
          .chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'hi' }], stream: true })
          .withResponse();
        let out = '';
        let usageChunks = 0;
        let emptyChoiceChunks = 0;
        for await (const c of stream) {
          out += c.choices[0]?.delta?.content ?? '';
          if (c.usage) usageChunks++;
          if (c.choices.length === 0 && !isAzureFilterChunk(c)) emptyChoiceChunks++;
        }
        assert.equal(out, 'short answer');
        assert.equal(usageChunks, 0);
        assert.equal(emptyChoiceChunks, 0, 'no choice-less usage chunk');
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.deepEqual({ i: rec.tokens?.input, o: rec.tokens?.output }, { i: 8, o: 2 });
      });

      it('tools, non-stream: definitions + tool_choice translated, tool calls returned with parsed arguments', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS, usage: { input: 40, output: 20 } } });
        const { result: res, got } = await captured(fake, () =>
          client(h).chat.completions.create({
            model: t.model,
            messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
            tools: [WEATHER_TOOL, TIME_TOOL],
            tool_choice: { type: 'function', function: { name: 'get_weather' } },
          }),
        );
        assertUpstream(h, t, got, false);
        assertToolRequest(t.kind, got.json);
        const msg = res.choices[0]!.message;
        assert.equal(res.choices[0]!.finish_reason, 'tool_calls');
        assert.equal(msg.tool_calls?.length, 2);
        const calls = msg.tool_calls!.map((c) => {
          assert.equal(c.type, 'function');
          const fn = (c as OpenAI.ChatCompletionMessageFunctionToolCall).function;
          return { id: c.id, name: fn.name, args: JSON.parse(fn.arguments) };
        });
        assert.deepEqual(calls.map((c) => [c.name, c.args]), CALLS.map((c) => [c.name, c.args]));
        if (t.kind === 'gemini') {
          // Gemini sends no call ids: synthesized, unique, non-empty.
          assert.ok(calls.every((c) => /^call_\S+$/.test(c.id)), JSON.stringify(calls));
          assert.notEqual(calls[0]!.id, calls[1]!.id);
        } else {
          assert.deepEqual(calls.map((c) => c.id), CALLS.map((c) => c.id), 'provider tool-call ids carried through');
        }
      });

      it('tools, stream: the SDK reassembles streamed tool-call deltas into complete calls', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS, usage: { input: 40, output: 20 } } });
        const { result: final, got } = await captured(fake, async () => {
          const runner = client(h).chat.completions.stream({
            model: t.model,
            messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
            tools: [WEATHER_TOOL, TIME_TOOL],
            tool_choice: 'required',
            stream_options: { include_usage: true },
          });
          const doneCalls: string[] = [];
          runner.on('tool_calls.function.arguments.done', (e) => doneCalls.push(e.name));
          const fin = await runner.finalChatCompletion();
          return { fin, doneCalls };
        });
        assertUpstream(h, t, got, true);
        const msg = final.fin.choices[0]!.message;
        assert.equal(final.fin.choices[0]!.finish_reason, 'tool_calls');
        const calls = (msg.tool_calls ?? []).map((c) => {
          const fn = (c as OpenAI.ChatCompletionMessageFunctionToolCall).function;
          return { id: c.id, name: fn.name, args: JSON.parse(fn.arguments) };
        });
        assert.deepEqual(calls.map((c) => [c.name, c.args]), CALLS.map((c) => [c.name, c.args]));
        assert.ok(calls.every((c) => c.id.length > 0));
        if (t.kind !== 'gemini') assert.deepEqual(calls.map((c) => c.id), CALLS.map((c) => c.id));
        assert.deepEqual(final.doneCalls, ['get_weather', 'get_time'], 'argument streams completed per call');
        assert.deepEqual({ p: final.fin.usage?.prompt_tokens, c: final.fin.usage?.completion_tokens }, { p: 40, c: 20 });
        // tool_choice "required" in the provider's terms.
        const body = got.json as any;
        switch (t.kind) {
          case 'openai':
          case 'azure':
            assert.equal(body.tool_choice, 'required');
            break;
          case 'anthropic':
            assert.equal(body.tool_choice.type, 'any');
            break;
          case 'gemini':
            assert.equal(body.toolConfig.functionCallingConfig.mode, 'ANY');
            assert.equal(body.toolConfig.functionCallingConfig.allowedFunctionNames, undefined);
            break;
          case 'bedrock':
            assert.deepEqual(body.toolConfig.toolChoice, { any: {} });
            break;
        }
      });

      it('tool results in a follow-up turn: history translated, final answer returned', async () => {
        const fake = h.fakes[t.kind]!;
        // Turn 1: get real tool-call ids from this provider path (Gemini's are synthesized).
        fake.setNext({ type: 'reply', reply: { toolCalls: CALLS } });
        const first = await client(h).chat.completions.create({
          model: t.model,
          messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
          tools: [WEATHER_TOOL, TIME_TOOL],
        });
        const assistant = first.choices[0]!.message;
        const ids = assistant.tool_calls!.map((c) => c.id);
        fake.setNext({ type: 'reply', reply: { text: 'It is 18°C in Paris at 14:05.', usage: { input: 60, output: 12 } } });
        const { result: second, got } = await captured(fake, () =>
          client(h).chat.completions.create({
            model: t.model,
            messages: [
              { role: 'user', content: 'Weather and time in Paris?' },
              { role: 'assistant', content: assistant.content, tool_calls: assistant.tool_calls },
              { role: 'tool', tool_call_id: ids[0]!, content: '{"temp":18}' },
              { role: 'tool', tool_call_id: ids[1]!, content: '14:05' },
            ],
            tools: [WEATHER_TOOL, TIME_TOOL],
          }),
        );
        assertUpstream(h, t, got, false);
        assertToolResultRequest(t.kind, got.json, ids);
        assert.equal(second.choices[0]!.message.content, 'It is 18°C in Paris at 14:05.');
        assert.equal(second.choices[0]!.finish_reason, 'stop');
      });

      /** Reads an SDK stream to the end; returns the text so far and what the SDK threw. */
      async function drain(stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<{ text: string; finish?: string; err: unknown }> {
        let text = '';
        let finish: string | undefined;
        try {
          for await (const c of stream) {
            text += c.choices[0]?.delta?.content ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
          }
        } catch (e) {
          return { text, finish, err: e };
        }
        return { text, finish, err: undefined };
      }

      for (const mode of ['stream_error', 'partial'] as const) {
        const what = mode === 'stream_error' ? "the provider's in-stream error half-way" : 'a clean end of the upstream body before the end marker';
        it(`stream with ${what} → the SDK raises an APIError after the text so far; lineage attempt recorded`, async () => {
          resetHealth(h);
          const fake = h.fakes[t.kind]!;
          if (mode === 'stream_error') fake.setNext({ type: 'stream_error', message: 'fake overloaded mid-stream' });
          else fake.setNext(partialStream(t.kind));
          const { data: stream, response } = await client(h)
            .chat.completions.create({ model: t.model, messages: [{ role: 'user', content: `stream ${mode}` }], stream: true })
            .withResponse();
          assert.equal(response.status, 200, 'headers were already sent');
          const r = await drain(stream);
          assert.ok(r.err instanceof OpenAI.APIError, `the SDK raised an APIError (got ${String(r.err)}; text so far ${JSON.stringify(r.text)})`);
          assert.ok(r.text.length > 0 && 'Hello from the fake provider.'.startsWith(r.text), `the text before the failure arrived: ${JSON.stringify(r.text)}`);
          const body = (r.err as InstanceType<typeof OpenAI.APIError>).error as { message?: string; type?: string };
          // Bedrock's in-stream exception from the fake is a throttlingException: a rate limit, not a server error.
          assert.equal(body?.type, t.kind === 'bedrock' && mode === 'stream_error' ? 'rate_limit_exceeded' : 'server_error');
          if (mode === 'stream_error') assert.match(body.message!, /fake overloaded mid-stream/);
          else assert.match(body.message!, /ended|incomplete|before/i);
          assert.equal(r.finish, undefined, 'no finish_reason for an interrupted answer');
          const rec = await lineageFor(h, response.headers.get('x-request-id'));
          assertAttempt(rec, t, 200);
          resetHealth(h);
        });
      }

      it('lineage: a stream that failed half-way is not recorded as a success', async () => {
        resetHealth(h);
        h.fakes[t.kind]!.setNext({ type: 'stream_error', message: 'fake overloaded mid-stream' });
        const { data: stream, response } = await client(h)
          .chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'stream error outcome' }], stream: true })
          .withResponse();
        const r = await drain(stream);
        assert.ok(r.err instanceof OpenAI.APIError);
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'provider_error', `outcome of a stream that ended in an error event: ${rec.outcome}`);
        // The fakes' in-stream errors: OpenAI/Azure server_error, Anthropic overloaded_error, Gemini UNAVAILABLE,
        // Bedrock throttlingException.
        const cls: Record<ProviderApi, string> = { openai: 'upstream', azure: 'upstream', anthropic: 'unavailable', gemini: 'unavailable', bedrock: 'rate_limit', vertex: 'unavailable' };
        assert.equal(rec.errorClass, cls[t.kind]);
        resetHealth(h);
      });

      it('upstream connection reset mid-stream → the client connection is reset too (as Envoy does); lineage says aborted', async () => {
        resetHealth(h);
        h.fakes[t.kind]!.setNext({ type: 'truncate' });
        const { data: stream, response } = await client(h)
          .chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'stream reset' }], stream: true })
          .withResponse();
        const r = await drain(stream);
        assert.ok(r.err instanceof Error, 'the SDK sees the broken stream');
        assert.equal(r.finish, undefined);
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'aborted');
        // Envoy logs it as an upstream reset after the response started (a cut chunked body: UPE).
        const log = await accessLogFor(h, response.headers.get('x-request-id')!);
        assert.match(String(log.details), /^upstream_reset_after_response_started/, JSON.stringify(log));
        resetHealth(h);
      });

      it('cached prompt tokens are reported as prompt_tokens_details.cached_tokens (prompt_tokens includes them)', async () => {
        const fake = h.fakes[t.kind]!;
        fake.setNext({ type: 'reply', reply: { text: 'cached', usage: { input: 100, output: 5, cached: 60 } } });
        const res = await client(h).chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'cache me' }] });
        assert.equal(res.usage?.prompt_tokens, 100);
        assert.equal(res.usage?.completion_tokens, 5);
        assert.equal(res.usage?.prompt_tokens_details?.cached_tokens, 60);
      });

      describe('provider errors → OpenAI error shape and SDK error classes', () => {
        const cases = [
          { status: 429, clientStatus: 429, cls: OpenAI.RateLimitError, type: 'rate_limit_exceeded', message: 'Slow down, fake rate limit' },
          { status: 500, clientStatus: 502, cls: OpenAI.InternalServerError, type: 'server_error', message: 'fake upstream exploded' },
          { status: 400, clientStatus: 400, cls: OpenAI.BadRequestError, type: 'invalid_request_error', message: 'fake says the request is invalid' },
          { status: 503, clientStatus: 503, cls: OpenAI.InternalServerError, type: 'server_error', message: 'fake is overloaded' },
        ] as const;
        for (const c of cases) {
          it(`upstream ${c.status} → ${c.clientStatus} ${c.cls.name}`, async () => {
            resetHealth(h);
            const fake = h.fakes[t.kind]!;
            fake.setNext({ type: 'error', status: c.status, message: c.message, ...(c.status === 429 ? { retryAfter: 7 } : {}) });
            let err: unknown;
            try {
              await client(h).chat.completions.create({ model: t.model, messages: [{ role: 'user', content: `error ${c.status}` }] });
            } catch (e) {
              err = e;
            }
            assert.ok(err instanceof c.cls, `${String(err)} is a ${c.cls.name}`);
            const e = err as InstanceType<typeof OpenAI.APIError>;
            assert.equal(e.status, c.clientStatus);
            const body = e.error as { message?: string; type?: string; code?: unknown; param?: unknown };
            assert.equal(body.type, c.type, JSON.stringify(body));
            assert.equal(body.message, c.message, 'the provider message is passed on (JSON error bodies only)');
            assert.ok('param' in body && 'code' in body, 'OpenAI error shape {message,type,param,code}');
            assert.equal(e.headers?.get('x-tollgate-provider'), `fake-${t.kind}`);
            if (c.status === 429) {
              // Azure's fake also sends retry-after-ms (7000); either way the client sees retry-after: 7.
              assert.equal(e.headers?.get('retry-after'), '7', 'retry-after passed on');
            }
            if (t.kind === 'bedrock' && c.status === 429) assert.equal(body.code, 'ThrottlingException');
            const rec = await lineageFor(h, e.headers?.get('x-request-id') ?? null);
            assert.equal(rec.outcome, c.status === 400 ? 'client_error' : 'provider_error');
            assertAttempt(rec, t, c.status);
          });
        }

        it('upstream 401 (the gateway credential is wrong) → 502 upstream_auth_failed, provider text not echoed', async () => {
          resetHealth(h);
          const fake = h.fakes[t.kind]!;
          fake.setNext({ type: 'error', status: 401, message: 'Incorrect API key provided: sk-abc***xyz' });
          let err: unknown;
          try {
            await client(h).chat.completions.create({ model: t.model, messages: [{ role: 'user', content: 'auth' }] });
          } catch (e) {
            err = e;
          }
          assert.ok(err instanceof OpenAI.InternalServerError, String(err));
          assert.equal((err as any).status, 502);
          const body = (err as any).error;
          assert.equal(body.code, 'upstream_auth_failed');
          assert.ok(!JSON.stringify(body).includes('sk-abc'), 'provider message with key fragments not echoed');
        });
      });
    });
  }

  it('Bedrock: the fake really checks SigV4 — a deployment signed with the wrong secret is refused (→ 502)', async () => {
    const fake = h.fakes.bedrock!;
    const before = fake.requests.length;
    let err: unknown;
    try {
      await client(h).chat.completions.create({ model: 'bedrock-badkey', messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OpenAI.InternalServerError, String(err));
    assert.equal((err as any).status, 502);
    assert.equal((err as any).error.code, 'upstream_auth_failed');
    assert.equal(fake.requests.length, before + 1);
    const got = fake.requests.at(-1)!;
    assert.equal(got.headers.host, 'bedrock-runtime.us-east-1.amazonaws.com', 'the provider host reached the upstream (host rewrite)');
    assert.match(got.headers.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDFAKE\//);
  });

  it('Envoy rejected no mutation, got no spurious message and lost no ext_proc stream in the whole run', async () => {
    assert.deepEqual(await extProcTrouble(h.envoy), {});
  });
});
