// OpenAI Responses API end to end: the official `openai` SDK's `client.responses.create` (stream and not) → a real
// Envoy → Tollgate → OpenAI and Azure (passthrough) and Anthropic, Bedrock and Gemini (translated). Each does a
// function-tool round trip (function_call out, function_call_output back in) and the fake provider asserts the
// translated request shape and its own auth. Also: built-in tools and server-side state refused with a 422 naming
// them, redaction of input items and of output (stream included), and lineage records with usage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ProviderApi } from '../../service/config/types.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { FakeProvider, RecordedRequest, ReplySpec } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

type J = Record<string, any>; // test-only: reading provider JSON

const REDACT = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: responses-redaction}
spec:
  matchConditions:
    - name: selected
      expression: "'x-redaction-mode' in request.headers && request.headers['x-redaction-mode'] == 'mask'"
  rules:
    - name: contact
      redact: {detectors: [email], action: mask, responses: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: responses-deny}
spec:
  rules:
    - name: no-secret-project
      deny:
        expression: "request.messages.exists(m, m.text.contains('project nightingale'))"
        message: "Project Nightingale may not be discussed."
    - name: transforms
      when: "'x-transform-mode' in request.headers"
      transform:
        maxTokens: 50
        forceUser: true
        prependSystem: Policy preamble.
    - name: output-tokens
      when: "'x-budget-mode' in request.headers && request.headers['x-budget-mode'] == 'tokens'"
      budget: {scope: key, limit: {outputTokens: 1000}, window: {rollingSeconds: 3600}}
---
`;

interface Target {
  kind: ProviderApi;
  model: string;
  path(stream: boolean): string;
}

const BEDROCK_MODEL = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const TARGETS: Target[] = [
  { kind: 'openai', model: 'gpt-4o-mini', path: () => '/v1/responses' },
  { kind: 'azure', model: 'azure-gpt', path: () => '/openai/v1/responses' },
  { kind: 'anthropic', model: 'claude-sonnet', path: () => '/v1/messages' },
  {
    kind: 'gemini',
    model: 'gemini-flash',
    path: (s) => (s ? '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse' : '/v1beta/models/gemini-2.0-flash:generateContent'),
  },
  { kind: 'bedrock', model: 'bedrock-claude', path: (s) => `/model/${encodeURIComponent(BEDROCK_MODEL)}/${s ? 'converse-stream' : 'converse'}` },
];
const UPSTREAM: Record<string, string> = { openai: 'gpt-4o-mini-2024-07-18', azure: 'my-gpt4o-deployment' };

const WEATHER_PARAMS = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const TOOLS: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_PARAMS, strict: false }];

const client = (h: Harness, headers: Record<string, string> = {}) =>
  new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 15000, defaultHeaders: headers });

async function captured<T>(fake: FakeProvider, fn: () => Promise<T>): Promise<{ result: T; got: RecordedRequest }> {
  const before = fake.requests.length;
  const result = await fn();
  assert.equal(fake.requests.length, before + 1, `exactly one upstream request to fake-${fake.kind}`);
  return { result, got: fake.requests.at(-1)! };
}

async function lineageFor(h: Harness, requestId: string | null | undefined): Promise<LineageRecord> {
  assert.ok(requestId, 'x-request-id on the response');
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

/** The provider's own auth, and no trace of the client's virtual key. */
function assertAuth(h: Harness, t: Target, got: RecordedRequest, stream: boolean): void {
  const fake = h.fakes[t.kind]!;
  assert.equal(got.path, t.path(stream), `${t.kind}: upstream path`);
  for (const [k, v] of Object.entries(got.headers)) assert.ok(!v.includes(KEYS.acme), `virtual key leaked in upstream header ${k}`);
  const hd = got.headers;
  if (t.kind === 'openai') assert.equal(hd.authorization, `Bearer ${fake.credential}`);
  if (t.kind === 'azure') assert.equal(hd['api-key'], fake.credential);
  if (t.kind === 'anthropic') assert.equal(hd['x-api-key'], fake.credential);
  if (t.kind === 'gemini') assert.equal(hd['x-goog-api-key'], fake.credential);
  if (t.kind === 'bedrock') assert.match(hd.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDFAKE\//);
}

/** Turn 1 as the provider received it: instructions, the user question, the function tool. */
function assertFirstTurn(t: Target, b: J): void {
  switch (t.kind) {
    case 'openai':
    case 'azure':
      assert.equal(b.model, UPSTREAM[t.kind], 'model rewritten to the deployment');
      assert.equal(b.instructions, 'Answer with tools.');
      assert.equal(b.input, 'Weather in Paris?');
      assert.deepEqual(b.tools, TOOLS, 'passthrough: tools untouched');
      break;
    case 'anthropic':
      assert.equal(b.system, 'Answer with tools.');
      assert.deepEqual(b.messages, [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }]);
      assert.deepEqual(b.tools, [{ name: 'get_weather', description: 'Weather for a city', input_schema: WEATHER_PARAMS }]);
      assert.equal(b.max_tokens, 300);
      break;
    case 'gemini':
      assert.deepEqual(b.systemInstruction, { parts: [{ text: 'Answer with tools.' }] });
      assert.deepEqual(b.contents, [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }]);
      assert.deepEqual(b.tools[0].functionDeclarations, [{ name: 'get_weather', description: 'Weather for a city', parametersJsonSchema: WEATHER_PARAMS }]);
      assert.equal(b.generationConfig.maxOutputTokens, 300);
      break;
    case 'bedrock':
      assert.deepEqual(b.system, [{ text: 'Answer with tools.' }]);
      assert.deepEqual(b.messages, [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }]);
      assert.deepEqual(b.toolConfig.tools, [{ toolSpec: { name: 'get_weather', description: 'Weather for a city', inputSchema: { json: WEATHER_PARAMS } } }]);
      assert.equal(b.inferenceConfig.maxTokens, 300);
      break;
  }
}

/** Turn 2 as the provider received it: the function call and its output, in the provider's own shape. */
function assertSecondTurn(t: Target, b: J, callId: string): void {
  switch (t.kind) {
    case 'openai':
    case 'azure': {
      const items = b.input as J[];
      assert.equal(items[1].type, 'function_call');
      assert.equal(items[1].call_id, callId);
      assert.deepEqual(items[2], { type: 'function_call_output', call_id: callId, output: '18C and sunny' });
      break;
    }
    case 'anthropic':
      assert.deepEqual(b.messages[1], { role: 'assistant', content: [{ type: 'tool_use', id: callId, name: 'get_weather', input: { city: 'Paris' } }] });
      assert.deepEqual(b.messages[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: '18C and sunny' }] });
      break;
    case 'gemini':
      assert.deepEqual(b.contents[1], { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] });
      assert.deepEqual(b.contents[2], { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: '18C and sunny' } } }] });
      break;
    case 'bedrock':
      assert.deepEqual(b.messages[1], { role: 'assistant', content: [{ toolUse: { toolUseId: callId, name: 'get_weather', input: { city: 'Paris' } } }] });
      assert.deepEqual(b.messages[2], { role: 'user', content: [{ toolResult: { toolUseId: callId, content: [{ text: '18C and sunny' }] } }] });
      break;
  }
}

function functionCalls(r: OpenAI.Responses.Response): OpenAI.Responses.ResponseFunctionToolCall[] {
  return r.output.filter((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
}

/** Consumes a Responses stream: event types in order, sequence numbers, and the final response. */
async function collect(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>): Promise<{ types: string[]; seqs: number[]; text: string; args: string; final: OpenAI.Responses.Response | undefined }> {
  const types: string[] = [];
  const seqs: number[] = [];
  let text = '';
  let args = '';
  let final: OpenAI.Responses.Response | undefined;
  for await (const ev of stream) {
    types.push(ev.type);
    seqs.push(ev.sequence_number);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    if (ev.type === 'response.completed') final = ev.response;
  }
  return { types, seqs, text, args, final };
}

describe('e2e Responses API: openai SDK responses.create through Envoy', { timeout: 300000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic', 'azure', 'gemini', 'bedrock'], extraYaml: REDACT });
  });
  after(async () => {
    await h?.close();
  });

  for (const t of TARGETS) {
    describe(`responses.create → ${t.kind} (${t.model})`, () => {
      it('non-stream: function_call out, function_call_output back in; usage and lineage', async () => {
        const fake = h.fakes[t.kind]!;
        const callId = t.kind === 'anthropic' ? 'toolu_e2e1' : 'call_e2e1';
        fake.setNext({ type: 'reply', reply: { toolCalls: [{ id: callId, name: 'get_weather', args: { city: 'Paris' } }], usage: { input: 40, output: 12, cached: 8 }, id: 'ns1' } });
        const first = await captured(fake, () =>
          client(h).responses.create({ model: t.model, instructions: 'Answer with tools.', input: 'Weather in Paris?', tools: TOOLS, max_output_tokens: 300 }).withResponse(),
        );
        assertAuth(h, t, first.got, false);
        assertFirstTurn(t, first.got.json as J);
        const r1 = first.result.data;
        assert.equal(r1.object, 'response');
        assert.equal(r1.status, 'completed');
        const calls = functionCalls(r1);
        assert.equal(calls.length, 1, JSON.stringify(r1.output));
        // Gemini sends no call ids: Tollgate makes one up (call_<responseId>_<candidate>_<n>).
        assert.equal(calls[0]!.call_id, t.kind === 'gemini' ? 'call_ns1_0_0' : callId);
        assert.equal(calls[0]!.name, 'get_weather');
        assert.deepEqual(JSON.parse(calls[0]!.arguments), { city: 'Paris' });
        assert.equal(r1.usage?.input_tokens, 40);
        assert.equal(r1.usage?.output_tokens, 12);
        assert.equal(r1.usage?.input_tokens_details.cached_tokens, 8);
        const rec1 = await lineageFor(h, first.result.response.headers.get('x-request-id'));
        assert.equal(rec1.request.endpoint, '/v1/responses');
        assert.equal(rec1.served?.provider, `fake-${t.kind}`);
        assert.deepEqual({ input: rec1.tokens?.input, output: rec1.tokens?.output, cached: rec1.tokens?.cached }, { input: 40, output: 12, cached: 8 });
        assert.equal(rec1.outcome, 'success');

        fake.setNext({ type: 'reply', reply: { text: 'It is 18C and sunny in Paris.', usage: { input: 60, output: 9 }, id: 'ns2' } });
        const second = await captured(fake, () =>
          client(h).responses.create({
            model: t.model,
            input: [
              { role: 'user', content: [{ type: 'input_text', text: 'Weather in Paris?' }] },
              { type: 'function_call', call_id: calls[0]!.call_id, name: calls[0]!.name, arguments: calls[0]!.arguments },
              { type: 'function_call_output', call_id: calls[0]!.call_id, output: '18C and sunny' },
            ],
            tools: TOOLS,
          }),
        );
        assertAuth(h, t, second.got, false);
        assertSecondTurn(t, second.got.json as J, calls[0]!.call_id);
        assert.equal(second.result.output_text, 'It is 18C and sunny in Paris.');
        assert.equal(functionCalls(second.result).length, 0);
      });

      it('stream: Responses events with sequence numbers, a streamed function call, then the tool output round trip', async () => {
        const fake = h.fakes[t.kind]!;
        const callId = t.kind === 'anthropic' ? 'toolu_e2e2' : 'call_e2e2';
        fake.setNext({ type: 'reply', reply: { text: 'Let me check.', toolCalls: [{ id: callId, name: 'get_weather', args: { city: 'Paris' } }], usage: { input: 30, output: 14 }, id: 's1' } });
        const first = await captured(fake, async () =>
          collect(await client(h).responses.create({ model: t.model, instructions: 'Answer with tools.', input: 'Weather in Paris?', tools: TOOLS, max_output_tokens: 300, stream: true })),
        );
        assertAuth(h, t, first.got, true);
        assertFirstTurn(t, first.got.json as J);
        const { types, seqs, text, args, final } = first.result;
        assert.deepEqual(seqs, seqs.map((_, i) => i), 'sequence_number counts 0, 1, 2, …');
        assert.equal(types[0], 'response.created');
        assert.equal(types[1], 'response.in_progress');
        assert.equal(types.at(-1), 'response.completed');
        for (const ty of [
          'response.output_item.added',
          'response.content_part.added',
          'response.output_text.delta',
          'response.output_text.done',
          'response.content_part.done',
          'response.output_item.done',
          'response.function_call_arguments.delta',
          'response.function_call_arguments.done',
        ]) {
          assert.ok(types.includes(ty), `${ty} in ${types.join(',')}`);
        }
        assert.equal(text, 'Let me check.');
        assert.deepEqual(JSON.parse(args), { city: 'Paris' });
        assert.ok(final);
        assert.equal(final.usage?.input_tokens, 30);
        assert.equal(final.usage?.output_tokens, 14);
        const calls = functionCalls(final);
        assert.equal(calls[0]?.call_id, t.kind === 'gemini' ? 'call_s1_0_0' : callId);

        fake.setNext({ type: 'reply', reply: { text: 'Sunny, 18C.', usage: { input: 50, output: 5 }, id: 's2' } });
        const second = await captured(fake, async () =>
          collect(
            await client(h).responses.create({
              model: t.model,
              input: [
                { role: 'user', content: 'Weather in Paris?' },
                { type: 'function_call', call_id: calls[0]!.call_id, name: 'get_weather', arguments: calls[0]!.arguments },
                { type: 'function_call_output', call_id: calls[0]!.call_id, output: '18C and sunny' },
              ],
              tools: TOOLS,
              stream: true,
            }),
          ),
        );
        assertAuth(h, t, second.got, true);
        assertSecondTurn(t, second.got.json as J, calls[0]!.call_id);
        assert.equal(second.result.text, 'Sunny, 18C.');
      });
    });
  }

  for (const t of TARGETS.filter((x) => x.kind !== 'openai' && x.kind !== 'azure')) {
    it(`${t.kind}: a built-in tool it cannot run → 422 naming it, nothing sent upstream`, async () => {
      const fake = h.fakes[t.kind]!;
      const before = fake.requests.length;
      await assert.rejects(
        client(h).responses.create({ model: t.model, input: 'Search the web', tools: [{ type: 'web_search' } as OpenAI.Responses.Tool] }),
        (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.status, 422);
          assert.match(e.message, /web_search/);
          assert.equal((e.error as J).param, 'tools[0].type');
          return true;
        },
      );
      assert.equal(fake.requests.length, before);
    });

    it(`${t.kind}: previous_response_id / store:true → 422 naming the field (no state kept); store:false passes`, async () => {
      for (const [extra, param] of [
        [{ previous_response_id: 'resp_123' }, 'previous_response_id'],
        [{ store: true }, 'store'],
        [{ background: true }, 'background'],
      ] as const) {
        await assert.rejects(client(h).responses.create({ model: t.model, input: 'Hi', ...extra }), (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.status, 422);
          assert.equal((e.error as J).param, param);
          return true;
        });
      }
      const r = await client(h).responses.create({ model: t.model, input: 'Hi', store: false });
      assert.equal(r.status, 'completed');
      assert.equal((r as unknown as J).store, false);
    });
  }

  it('openai: previous_response_id and store pass through to OpenAI untouched', async () => {
    const fake = h.fakes.openai!;
    const { got } = await captured(fake, () => client(h).responses.create({ model: 'gpt-4o-mini', input: 'And then?', previous_response_id: 'resp_prev1', store: true }));
    assert.equal((got.json as J).previous_response_id, 'resp_prev1');
    assert.equal((got.json as J).store, true);
  });

  it('openai passthrough: cached and reasoning tokens from the Responses usage reach lineage (non-stream and stream)', async () => {
    const fake = h.fakes.openai!;
    // `reasoning`: output_tokens_details.reasoning_tokens in the fake's Responses usage.
    fake.setNext({ type: 'reply', reply: { text: 'Thought about it.', usage: { input: 500, output: 120, cached: 256 }, reasoning: 96 } as ReplySpec });
    const r = await client(h).responses.create({ model: 'gpt-4o-mini', input: 'Think hard', reasoning: { effort: 'high' } }).withResponse();
    assert.equal(r.data.usage?.output_tokens_details.reasoning_tokens, 96);
    const rec = await lineageFor(h, r.response.headers.get('x-request-id'));
    assert.deepEqual(
      { input: rec.tokens?.input, output: rec.tokens?.output, cached: rec.tokens?.cached, reasoning: rec.tokens?.reasoning },
      { input: 500, output: 120, cached: 256, reasoning: 96 },
    );
    assert.deepEqual((fake.requests.at(-1)!.json as J).reasoning, { effort: 'high' }, 'reasoning passes through');

    fake.setNext({ type: 'reply', reply: { text: 'Streamed thoughts.', usage: { input: 70, output: 33, cached: 64 }, reasoning: 20 } as ReplySpec });
    const s = await client(h).responses.create({ model: 'gpt-4o-mini', input: 'Think', stream: true }).withResponse();
    const ev = await collect(s.data);
    assert.equal(ev.text, 'Streamed thoughts.');
    const rs = await lineageFor(h, s.response.headers.get('x-request-id'));
    assert.deepEqual(
      { input: rs.tokens?.input, output: rs.tokens?.output, cached: rs.tokens?.cached, reasoning: rs.tokens?.reasoning },
      { input: 70, output: 33, cached: 64, reasoning: 20 },
    );
    assert.equal(rs.request.stream, true);
  });

  it('reasoning.effort → Anthropic thinking budget, Gemini thinkingBudget, Bedrock Claude additionalModelRequestFields', async () => {
    const want: Record<string, (b: J) => void> = {
      anthropic: (b) => {
        assert.deepEqual(b.thinking, { type: 'enabled', budget_tokens: 8192 });
        assert.ok(b.max_tokens > 8192, 'max_tokens leaves room above the thinking budget');
      },
      gemini: (b) => assert.deepEqual(b.generationConfig.thinkingConfig, { thinkingBudget: 8192 }),
      bedrock: (b) => assert.deepEqual(b.additionalModelRequestFields.thinking, { type: 'enabled', budget_tokens: 8192 }),
    };
    for (const t of TARGETS.filter((x) => want[x.kind])) {
      const { got } = await captured(h.fakes[t.kind]!, () => client(h).responses.create({ model: t.model, input: 'Think', reasoning: { effort: 'medium' } }));
      want[t.kind]!(got.json as J);
    }
  });

  for (const t of TARGETS.filter((x) => x.kind === 'anthropic' || x.kind === 'openai')) {
    it(`${t.kind}: redaction masks an email in input items and tool outputs before the provider, and in the output (stream too)`, async () => {
      const fake = h.fakes[t.kind]!;
      const email = 'jane.doe@example.com';
      const callId = 'call_red1';
      const input: OpenAI.Responses.ResponseInput = [
        { role: 'user', content: [{ type: 'input_text', text: `Mail ${email} please` }] },
        { type: 'function_call', call_id: callId, name: 'get_weather', arguments: JSON.stringify({ city: 'Paris' }) },
        { type: 'function_call_output', call_id: callId, output: `owner: ${email}` },
      ];
      for (const stream of [false, true]) {
        fake.setNext({ type: 'reply', reply: { text: `Sent to bob.smith@example.org now.`, usage: { input: 20, output: 6 } } });
        const before = fake.requests.length;
        let text: string;
        let id: string | null;
        if (!stream) {
          const r = await client(h, { 'x-redaction-mode': 'mask' }).responses.create({ model: t.model, instructions: `Reply to ${email}`, input, tools: TOOLS }).withResponse();
          text = r.data.output_text;
          id = r.response.headers.get('x-request-id');
        } else {
          const r = await client(h, { 'x-redaction-mode': 'mask' }).responses.create({ model: t.model, instructions: `Reply to ${email}`, input, tools: TOOLS, stream: true }).withResponse();
          const ev = await collect(r.data);
          text = ev.text;
          id = r.response.headers.get('x-request-id');
          const done = ev.final?.output_text ?? ev.final?.output.flatMap((o) => (o.type === 'message' ? o.content.map((c) => (c.type === 'output_text' ? c.text : '')) : [])).join('');
          assert.doesNotMatch(done ?? '', /bob\.smith@example\.org/, 'response.completed carries the redacted text too');
        }
        assert.equal(fake.requests.length, before + 1);
        const sent = fake.requests.at(-1)!.body.toString('utf8');
        assert.ok(!sent.includes(email), `${t.kind}: the provider never sees the email: ${sent}`);
        assert.match(sent, /Mail .+ please/);
        assert.doesNotMatch(text, /bob\.smith@example\.org/, 'output email masked');
        assert.match(text, /^Sent to .+ now\.$/);
        const rec = await lineageFor(h, id);
        const req = (rec.redactions ?? []).filter((x) => x.detector === 'email' && x.direction === 'request');
        assert.ok(req.reduce((a, x) => a + x.count, 0) >= 3, `instructions, message and tool output: ${JSON.stringify(rec.redactions)}`);
        assert.ok((rec.redactions ?? []).some((x) => x.detector === 'email' && x.direction === 'response'));
      }
    });
  }

  it('budgets: reserve max_output_tokens, settle from the reported usage; a reservation that cannot fit is refused before the provider', async () => {
    const fake = h.fakes.bedrock!;
    fake.setNext({ type: 'reply', reply: { text: 'Short.', usage: { input: 25, output: 9 } } });
    const r = await client(h, { 'x-budget-mode': 'tokens' }).responses.create({ model: 'bedrock-claude', input: 'Be short', max_output_tokens: 700 }).withResponse();
    const rec = await lineageFor(h, r.response.headers.get('x-request-id'));
    const b = rec.budgets?.find((x) => x.name.endsWith('/output-tokens'));
    assert.ok(b, JSON.stringify(rec.budgets));
    assert.equal(b.reserved, 700, 'reserved from max_output_tokens');
    assert.equal(b.charged, 9, 'settled from the provider usage');
    const before = fake.requests.length;
    await assert.rejects(
      client(h, { 'x-budget-mode': 'tokens' }).responses.create({ model: 'bedrock-claude', input: 'Be long', max_output_tokens: 995 }),
      (e: unknown) => e instanceof OpenAI.RateLimitError,
    );
    assert.equal(fake.requests.length, before, 'nothing sent once the budget cannot cover max_output_tokens');
  });

  it('policy transforms apply: maxTokens caps max_output_tokens, prependSystem goes into instructions, forceUser sets user', async () => {
    const want: Record<string, (b: J) => void> = {
      openai: (b) => {
        assert.equal(b.max_output_tokens, 50);
        assert.equal(b.instructions, 'Policy preamble.\n\nBe brief.');
        assert.equal(b.user, 'alice');
      },
      anthropic: (b) => {
        assert.equal(b.max_tokens, 50);
        assert.equal(b.system, 'Policy preamble.\n\nBe brief.');
        assert.deepEqual(b.metadata, { user_id: 'alice' });
      },
      gemini: (b) => assert.equal(b.generationConfig.maxOutputTokens, 50),
    };
    for (const t of TARGETS.filter((x) => want[x.kind])) {
      for (const max of [undefined, 4000]) {
        const { got } = await captured(h.fakes[t.kind]!, () =>
          client(h, { 'x-transform-mode': '1' }).responses.create({ model: t.model, instructions: 'Be brief.', input: 'Hi', ...(max ? { max_output_tokens: max } : {}) }),
        );
        want[t.kind]!(got.json as J);
      }
    }
  });

  it('policies see Responses input items as messages (a deny rule on message text applies)', async () => {
    const fake = h.fakes.anthropic!;
    const before = fake.requests.length;
    await assert.rejects(
      client(h).responses.create({ model: 'claude-sonnet', input: [{ type: 'function_call_output', call_id: 'c1', output: 'notes about project nightingale' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 403 && /Nightingale/.test(e.message),
    );
    assert.equal(fake.requests.length, before);
  });

  it('bad input → 400 naming the field, in the OpenAI error shape', async () => {
    await assert.rejects(
      client(h).responses.create({ model: 'claude-sonnet', input: [{ type: 'function_call_output', output: 'x' } as unknown as OpenAI.Responses.ResponseInputItem] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && (e.error as J).param === 'input[0].call_id',
    );
    await assert.rejects(
      client(h).responses.create({ model: 'claude-sonnet' } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && (e.error as J).param === 'input',
    );
  });
});
