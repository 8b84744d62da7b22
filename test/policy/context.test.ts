// How the request part of the CEL context is derived from an HTTP request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRequestInput, endpointOf } from '../../service/policy/index.ts';

describe('buildRequestInput', () => {
  it('OpenAI chat: text parts joined, tool-call arguments included, params without model/messages/stream', () => {
    const body = {
      model: 'gpt-4o',
      stream: true,
      temperature: 0.3,
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'data:...' } }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: '1', type: 'function', function: { name: 'f', arguments: '{"q":1}' } }] },
      ],
    };
    const r = buildRequestInput({ method: 'post', path: '/v1/chat/completions', api: 'openai', headers: { 'User-Agent': 'x', Authorization: 'Bearer s' }, body });
    assert.equal(r.method, 'POST');
    assert.equal(r.endpoint, 'chat');
    assert.equal(r.model, 'gpt-4o');
    assert.equal(r.stream, true);
    assert.deepEqual(r.params, { temperature: 0.3 });
    assert.deepEqual(r.messages, [
      { role: 'system', text: 'sys' },
      { role: 'user', text: 'a\nb' },
      { role: 'assistant', text: '{"q":1}' },
    ]);
    assert.deepEqual(r.headers, { 'user-agent': 'x' });
    assert.equal(r.size, Buffer.byteLength(JSON.stringify(body)));
    assert.ok(r.tokenEstimate > 0);
    assert.equal(r.body, body, 'the body object is shared so transforms mutate the real request');
  });

  it('Anthropic: top-level system first, tool_result text included', () => {
    const body = {
      model: 'claude',
      max_tokens: 10,
      system: [{ type: 'text', text: 'be nice' }],
      messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'result' }] }, { type: 'text', text: 'q' }] }],
    };
    const r = buildRequestInput({ method: 'POST', path: '/v1/messages', api: 'anthropic', headers: {}, body });
    assert.equal(r.endpoint, 'messages');
    assert.deepEqual(r.messages, [
      { role: 'system', text: 'be nice' },
      { role: 'user', text: 'result\nq' },
    ]);
    assert.deepEqual(r.params, { max_tokens: 10 });
  });

  it('embeddings input becomes user messages', () => {
    const r = buildRequestInput({ method: 'POST', path: '/v1/embeddings', api: 'openai', headers: {}, body: { model: 'e', input: ['x', 'y'] } });
    assert.equal(r.endpoint, 'embeddings');
    assert.deepEqual(r.messages, [
      { role: 'user', text: 'x' },
      { role: 'user', text: 'y' },
    ]);
  });

  const endpoints: [string, string][] = [
    ['/v1/chat/completions', 'chat'],
    ['/openai/deployments/x/chat/completions?api-version=1', 'chat'],
    ['/v1/messages', 'messages'],
    ['/v1/embeddings', 'embeddings'],
    ['/v1/models', 'models'],
    ['/v1/models/gpt-4o', 'models'],
    ['/v1/completions', 'completions'],
    ['/v1/files', 'other'],
  ];
  for (const [path, ep] of endpoints) it(`endpoint of ${path} is ${ep}`, () => assert.equal(endpointOf(path), ep));
});
