import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, renderError, type ClientApi } from '../../service/errors.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { Operation } from '../../service/providers/types.ts';

interface Case {
  name: string;
  api: ClientApi;
  op?: Operation;
  raw: string;
  status: number;
  param?: string;
  message: RegExp;
}

const msgs = '[{"role":"user","content":"hi"}]';

const BAD: Case[] = [
  { name: 'empty body', api: 'openai', raw: '', status: 400, message: /empty/ },
  { name: 'malformed JSON', api: 'openai', raw: '{"model": "x", ', status: 400, message: /not valid JSON/ },
  { name: 'JSON array instead of object', api: 'openai', raw: '[1,2]', status: 400, message: /must be a JSON object/ },
  { name: 'missing model', api: 'openai', raw: `{"messages":${msgs}}`, status: 400, param: 'model', message: /Missing required parameter: 'model'/ },
  { name: 'model is a number', api: 'openai', raw: `{"model":5,"messages":${msgs}}`, status: 400, param: 'model', message: /Invalid type for 'model'/ },
  { name: 'missing messages', api: 'openai', raw: '{"model":"m"}', status: 400, param: 'messages', message: /Missing required parameter: 'messages'/ },
  { name: 'empty messages', api: 'openai', raw: '{"model":"m","messages":[]}', status: 400, param: 'messages', message: /messages/ },
  { name: 'bad role', api: 'openai', raw: '{"model":"m","messages":[{"role":"wizard","content":"x"}]}', status: 400, param: 'messages[0].role', message: /'wizard'|"wizard"/ },
  { name: 'missing role', api: 'openai', raw: '{"model":"m","messages":[{"content":"x"}]}', status: 400, param: 'messages[0].role', message: /role/ },
  { name: 'content is a number', api: 'openai', raw: '{"model":"m","messages":[{"role":"user","content":5}]}', status: 400, param: 'messages[0].content', message: /Invalid type for 'messages\[0\]\.content'/ },
  { name: 'missing user content', api: 'openai', raw: '{"model":"m","messages":[{"role":"user"}]}', status: 400, param: 'messages[0].content', message: /Missing required parameter: 'messages\[0\]\.content'/ },
  { name: 'text part with non-string text', api: 'openai', raw: '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}', status: 400, param: 'messages[0].content[0].text', message: /text/ },
  { name: 'unknown content part type', api: 'openai', raw: '{"model":"m","messages":[{"role":"user","content":[{"type":"video","video":"x"}]}]}', status: 400, param: 'messages[0].content[0].type', message: /video/ },
  { name: 'tool message without tool_call_id', api: 'openai', raw: '{"model":"m","messages":[{"role":"tool","content":"x"}]}', status: 400, param: 'messages[0].tool_call_id', message: /tool_call_id/ },
  { name: 'temperature out of range', api: 'openai', raw: `{"model":"m","messages":${msgs},"temperature":3}`, status: 400, param: 'temperature', message: /temperature/ },
  { name: 'temperature wrong type', api: 'openai', raw: `{"model":"m","messages":${msgs},"temperature":"hot"}`, status: 400, param: 'temperature', message: /Invalid type for 'temperature'/ },
  { name: 'max_tokens not an integer', api: 'openai', raw: `{"model":"m","messages":${msgs},"max_tokens":1.5}`, status: 400, param: 'max_tokens', message: /max_tokens/ },
  { name: 'stream not a boolean', api: 'openai', raw: `{"model":"m","messages":${msgs},"stream":"yes"}`, status: 400, param: 'stream', message: /stream/ },
  { name: 'tool_choice unknown string', api: 'openai', raw: `{"model":"m","messages":${msgs},"tool_choice":"always"}`, status: 400, param: 'tool_choice', message: /tool_choice/ },
  { name: 'tool without function name', api: 'openai', raw: `{"model":"m","messages":${msgs},"tools":[{"type":"function","function":{}}]}`, status: 400, param: 'tools[0].function.name', message: /name/ },
  { name: 'response_format unknown type', api: 'openai', raw: `{"model":"m","messages":${msgs},"response_format":{"type":"yaml"}}`, status: 400, param: 'response_format.type', message: /yaml/ },
  { name: 'anthropic: missing max_tokens', api: 'anthropic', raw: `{"model":"m","messages":${msgs}}`, status: 400, param: 'max_tokens', message: /Missing required parameter: 'max_tokens'/ },
  { name: 'anthropic: system role inside messages', api: 'anthropic', raw: '{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}', status: 400, param: 'messages[0].role', message: /system/ },
  { name: 'anthropic: temperature above 1', api: 'anthropic', raw: `{"model":"m","max_tokens":5,"messages":${msgs},"temperature":1.5}`, status: 400, param: 'temperature', message: /temperature/ },
  { name: 'anthropic: tool_result without tool_use_id', api: 'anthropic', raw: '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}', status: 400, param: 'messages[0].content[0].tool_use_id', message: /tool_use_id/ },
  { name: 'embeddings: missing input', api: 'openai', op: 'embeddings', raw: '{"model":"e"}', status: 400, param: 'input', message: /input/ },
  { name: 'embeddings: input of objects', api: 'openai', op: 'embeddings', raw: '{"model":"e","input":[{"a":1}]}', status: 400, param: 'input[0]', message: /input/ },
  { name: 'embeddings: stream', api: 'openai', op: 'embeddings', raw: '{"model":"e","input":"x","stream":true}', status: 400, param: 'stream', message: /cannot be streamed/ },
  { name: 'embeddings on the Anthropic API', api: 'anthropic', op: 'embeddings', raw: '{"model":"e","input":"x"}', status: 404, message: /no embeddings/ },
];

describe('parseClientRequest rejects bad input with a precise 400', () => {
  for (const c of BAD) {
    test(c.name, () => {
      assert.throws(
        () => parseClientRequest(c.api, c.op ?? 'chat', Buffer.from(c.raw)),
        (e: unknown) => {
          assert.ok(e instanceof GatewayError, `not a GatewayError: ${String(e)}`);
          assert.equal(e.status, c.status);
          if (c.param !== undefined) assert.equal(e.param, c.param);
          assert.match(e.message, c.message);
          // The rendered OpenAI error names the param, as OpenAI does.
          const body = JSON.parse(renderError(e, 'openai').body.toString());
          assert.equal(body.error.param, c.param ?? null);
          return true;
        },
      );
    });
  }
});

describe('parseClientRequest accepts valid requests', () => {
  const GOOD: Array<{ name: string; api: ClientApi; op?: Operation; body: Record<string, unknown>; stream: boolean }> = [
    { name: 'minimal OpenAI chat', api: 'openai', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] }, stream: false },
    {
      name: 'unknown extra fields pass through untouched',
      api: 'openai',
      body: { model: 'm', messages: [{ role: 'user', content: 'hi', x_custom: 1 }], stream: true, chat_template_kwargs: { a: 1 } },
      stream: true,
    },
    {
      name: 'nullable OpenAI fields (SDKs send null)',
      api: 'openai',
      body: { model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }], temperature: null, stop: null },
      stream: false,
    },
    { name: 'Anthropic message', api: 'anthropic', body: { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream: true }, stream: true },
    { name: 'embeddings with token arrays', api: 'openai', op: 'embeddings', body: { model: 'e', input: [[1, 2, 3]] }, stream: false },
    {
      name: 'Anthropic block types we do not model still parse (passthrough keeps up with the API)',
      api: 'anthropic',
      body: { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'search_result', source: 'https://x', title: 't', content: [] }] }] },
      stream: false,
    },
  ];
  for (const g of GOOD) {
    test(g.name, () => {
      const req = parseClientRequest(g.api, g.op ?? 'chat', Buffer.from(JSON.stringify(g.body)));
      assert.equal(req.api, g.api);
      assert.equal(req.model, g.body.model);
      assert.equal(req.stream, g.stream);
      assert.deepEqual(req.body, g.body, 'body is the client JSON as sent, extra fields included');
    });
  }
});

describe('getTranslator', () => {
  const UNSUPPORTED: Array<[ClientApi, Operation, 'anthropic' | 'bedrock' | 'openai']> = [
    ['openai', 'embeddings', 'anthropic'],
    ['openai', 'embeddings', 'bedrock'],
    ['anthropic', 'embeddings', 'openai'],
  ];
  for (const [client, op, provider] of UNSUPPORTED) {
    test(`${client} ${op} → ${provider} is refused with 422`, () => {
      assert.throws(() => getTranslator(client, op, provider), (e: unknown) => e instanceof GatewayError && e.status === 422);
    });
  }
  test('every chat pair exists and reports itself', () => {
    for (const client of ['openai', 'anthropic'] as const) {
      for (const provider of ['openai', 'azure', 'anthropic', 'gemini', 'bedrock'] as const) {
        const t = getTranslator(client, 'chat', provider);
        assert.deepEqual([t.client, t.op, t.provider], [client, 'chat', provider]);
        assert.match(t.streamContentType, /^text\/event-stream/);
      }
    }
  });

  test('an unmodelled Anthropic block is refused (422) when crossing to another provider', async () => {
    const req = parseClientRequest('anthropic', 'chat', Buffer.from(JSON.stringify({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'search_result', title: 't' }] }] })));
    const t = (await import('./helpers.ts')).target('openai');
    await assert.rejects(getTranslator('anthropic', 'chat', 'openai').request(req, t), (e: unknown) => e instanceof GatewayError && e.status === 422 && e.param === 'messages[0].content[0].type');
  });
});
