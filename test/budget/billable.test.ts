import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateBillable, MEDIA_TOKENS } from '../../service/budget/billable.ts';
import { estimateTokens } from '../../service/budget/cost.ts';

const HI = [{ role: 'user', content: 'hi' }];

test('output reservation is the output limit × n (OpenAI), capped at 128 choices; Anthropic has no n', () => {
  assert.equal(estimateBillable('openai', 'chat', { messages: HI }, 50).outputTokens, 50);
  assert.equal(estimateBillable('openai', 'chat', { messages: HI, n: 4 }, 50).outputTokens, 200);
  assert.equal(estimateBillable('openai', 'chat', { messages: HI, n: 4 }, 50).choices, 4);
  assert.equal(estimateBillable('openai', 'chat', { messages: HI, n: 1000 }, 10).outputTokens, 1280);
  assert.equal(estimateBillable('openai', 'chat', { messages: HI, n: 'x' }, 10).outputTokens, 10);
  assert.equal(estimateBillable('anthropic', 'chat', { messages: HI, n: 4 }, 50).outputTokens, 50);
  assert.equal(estimateBillable('openai', 'embeddings', { input: 'x', n: 4 }, 50).outputTokens, 0);
});

test('tool definitions, function definitions, JSON schemas and tool_choice are prompt tokens', () => {
  const base = estimateBillable('openai', 'chat', { messages: HI }, 10).inputTokens;
  const tools = Array.from({ length: 50 }, (_, i) => ({
    type: 'function',
    function: { name: `lookup_${i}`, description: 'Looks a customer up by id and returns the account record. '.repeat(10), parameters: { type: 'object', properties: { id: { type: 'string' } } } },
  }));
  const withTools = estimateBillable('openai', 'chat', { messages: HI, tools, tool_choice: 'auto' }, 10).inputTokens;
  assert.ok(withTools - base >= estimateTokens(JSON.stringify(tools)), `${withTools} vs ${base}`);
  const schema = { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'object', properties: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`field_${i}`, { type: 'string', description: 'a field' }])) } } };
  const withSchema = estimateBillable('openai', 'chat', { messages: HI, response_format: schema }, 10).inputTokens;
  assert.ok(withSchema - base >= estimateTokens(JSON.stringify(schema)));
  const anthropicTools = [{ name: 'lookup', description: 'x '.repeat(500), input_schema: { type: 'object' } }];
  const a = estimateBillable('anthropic', 'chat', { messages: HI, tools: anthropicTools, system: 'Be brief. '.repeat(100) }, 10).inputTokens;
  assert.ok(a >= estimateTokens(JSON.stringify(anthropicTools)) + estimateTokens('Be brief. '.repeat(100)));
});

test('images and other media are reserved at MEDIA_TOKENS each, without reading their (base64) bytes', () => {
  const big = `data:image/png;base64,${'A'.repeat(500_000)}`;
  const openai = estimateBillable('openai', 'chat', {
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: big } }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] }],
  }, 10);
  assert.equal(openai.media, 2);
  assert.ok(openai.inputTokens >= 2 * MEDIA_TOKENS && openai.inputTokens < 2 * MEDIA_TOKENS + 50, String(openai.inputTokens));
  const anthropic = estimateBillable('anthropic', 'chat', {
    messages: [
      { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(100_000) } }, { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'hello there' } }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: { id: 'abc' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'found' }, { type: 'image', source: { type: 'url', url: 'https://x' } }] }] },
    ],
  }, 10);
  assert.equal(anthropic.media, 2);
  assert.ok(anthropic.inputTokens >= 2 * MEDIA_TOKENS + estimateTokens('hello there'));
});

test('message text, tool calls and embeddings inputs (strings and token arrays) are counted', () => {
  const msgs = [
    { role: 'system', content: 'You are terse.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris and its surroundings"}' } }] },
    { role: 'tool', tool_call_id: 'c', content: 'sunny and 24 degrees' },
  ];
  const e = estimateBillable('openai', 'chat', { messages: msgs }, 0).inputTokens;
  const parts = ['You are terse.', 'get_weather', '{"city":"Paris and its surroundings"}', 'sunny and 24 degrees'].reduce((n, t) => n + estimateTokens(t), 0);
  assert.equal(e, 3 + 3 * 4 + parts);
  assert.equal(estimateBillable('openai', 'embeddings', { input: [[1, 2, 3], [4, 5]] }, 0).inputTokens, 5);
  assert.equal(estimateBillable('openai', 'embeddings', { input: [1, 2, 3, 4] }, 0).inputTokens, 4);
  assert.equal(estimateBillable('openai', 'embeddings', { input: ['hello world', 'again'] }, 0).inputTokens, estimateTokens('hello world') + estimateTokens('again'));
});
