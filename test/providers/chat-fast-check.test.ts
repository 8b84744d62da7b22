// The hand-written proof of validity (chat-fast-check.ts) against zod, the validator of record: whenever the proof
// says "valid", zod must agree AND produce a body equal to the input key for key in the same order (so the bytes
// sent upstream are those of zod's copy). Invalid bodies must never be proven; they reach zod and its messages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { provenOpenAIChat } from '../../service/providers/chat-fast-check.ts';
import { OpenAIChatBody } from '../../service/providers/schemas.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import { openAIBody } from '../../service/providers/chat.ts';
import { target } from './helpers.ts';

type Body = Record<string, unknown>;
const user = { role: 'user', content: 'hi' };

/** Bodies the proof must accept (the common shape). */
const PROVEN: Array<[string, Body]> = [
  ['minimal', { model: 'm', messages: [user] }],
  ['bench workload', { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 's' }, user, { role: 'assistant', content: 'a' }, user], max_tokens: 256, temperature: 0.2 }],
  ['all scalar params in order', { model: 'm', messages: [user], stream: true, stream_options: { include_usage: true }, max_tokens: 1, max_completion_tokens: 9, temperature: 2, top_p: 1, top_k: 0, n: 128, stop: ['a', 'b'], presence_penalty: -2, frequency_penalty: 2, logprobs: false, top_logprobs: 20, seed: -5, parallel_tool_calls: true, user: 'u', reasoning_effort: 'minimal' }],
  ['nulls for nullish params', { model: 'm', messages: [user], stream: null, stream_options: null, max_tokens: null, temperature: null, stop: null, user: null, reasoning_effort: null }],
  ['stop as a string', { model: 'm', messages: [user], stop: 'x' }],
  ['function tools and a tool_choice string', { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: 'search', description: 'Search docs', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, strict: true } }, { type: 'function', function: { name: 'g', strict: null }, x_extra: 1 }], tool_choice: 'auto', parallel_tool_calls: false }],
  ['empty stream_options', { model: 'm', messages: [user], stream_options: {} }],
  ['undeclared keys after declared ones', { model: 'm', messages: [user], max_tokens: 5, models: ['a', 'b'], provider: { order: ['x'] }, chat_template_kwargs: { a: 1 } }],
  ['every common role', { model: 'm', messages: [{ role: 'developer', content: 'd', name: 'n' }, { role: 'system', content: 's' }, { role: 'user', content: 'u', name: 'bob' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', content: 'r', tool_call_id: 'c1' }, { role: 'assistant', refusal: 'no' }] }],
  ['assistant without content', { model: 'm', messages: [user, { role: 'assistant', tool_calls: [] }] }],
  ['undeclared keys inside messages', { model: 'm', messages: [{ role: 'user', content: 'hi', x_custom: 1 }, { role: 'assistant', content: 'a', name: 'x', reasoning_content: 'r' }] }],
];

/** Valid bodies the proof must leave to zod (shapes it does not handle, or zod would reorder the keys). */
const UNPROVEN_VALID: Array<[string, Body]> = [
  ['keys out of schema order', { messages: [user], model: 'm' }],
  ['temperature before max_tokens', { model: 'm', messages: [user], temperature: 1, max_tokens: 5 }],
  ['undeclared key before a declared one', { model: 'm', extra: 1, messages: [user] }],
  ['message keys out of order', { model: 'm', messages: [{ content: 'hi', role: 'user' }] }],
  ['tool_call keys out of order', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ type: 'function', id: 'c', function: { name: 'f', arguments: '' } }] }] }],
  ['content parts', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }],
  ['tool keys out of order', { model: 'm', messages: [user], tools: [{ function: { name: 'f' }, type: 'function' }] }],
  ['tool function keys out of order', { model: 'm', messages: [user], tools: [{ type: 'function', function: { parameters: {}, name: 'f' } }] }],
  ['tool_choice object', { model: 'm', messages: [user], tool_choice: { type: 'function', function: { name: 'f' } } }],
  ['response_format', { model: 'm', messages: [user], response_format: { type: 'json_object' } }],
  ['logit_bias', { model: 'm', messages: [user], logit_bias: { '1': 2 } }],
  ['function role', { model: 'm', messages: [{ role: 'function', content: null, name: 'f' }] }],
  ['stream_options with another key', { model: 'm', messages: [user], stream_options: { include_usage: true, extra: 1 } }],
  ['integer-like undeclared key (enumerated first)', { model: 'm', messages: [user], 7: 'x' }],
];

/** Invalid bodies: never proven; zod rejects them. */
const INVALID: Array<[string, Body]> = [
  ['no model', { messages: [user] }],
  ['empty model', { model: '', messages: [user] }],
  ['model a number', { model: 5, messages: [user] }],
  ['no messages', { model: 'm' }],
  ['empty messages', { model: 'm', messages: [] }],
  ['messages not an array', { model: 'm', messages: user }],
  ['message null', { model: 'm', messages: [null] }],
  ['unknown role', { model: 'm', messages: [{ role: 'wizard', content: 'x' }] }],
  ['missing role', { model: 'm', messages: [{ content: 'x' }] }],
  ['user content a number', { model: 'm', messages: [{ role: 'user', content: 5 }] }],
  ['user content missing', { model: 'm', messages: [{ role: 'user' }] }],
  ['user content null', { model: 'm', messages: [{ role: 'user', content: null }] }],
  ['user name a number', { model: 'm', messages: [{ role: 'user', content: 'x', name: 1 }] }],
  ['tool without tool_call_id', { model: 'm', messages: [{ role: 'tool', content: 'x' }] }],
  ['assistant content a number', { model: 'm', messages: [{ role: 'assistant', content: 1 }] }],
  ['assistant refusal a number', { model: 'm', messages: [{ role: 'assistant', refusal: 1 }] }],
  ['tool call without id', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '' } }] }] }],
  ['tool call arguments an object', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: {} } }] }] }],
  ['tool call of another type', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'custom', function: { name: 'f', arguments: '' } }] }] }],
  ['temperature 3', { model: 'm', messages: [user], temperature: 3 }],
  ['temperature a string', { model: 'm', messages: [user], temperature: 'hot' }],
  ['top_p above 1', { model: 'm', messages: [user], top_p: 1.5 }],
  ['max_tokens 0', { model: 'm', messages: [user], max_tokens: 0 }],
  ['max_tokens 1.5', { model: 'm', messages: [user], max_tokens: 1.5 }],
  ['max_tokens beyond safe integers', { model: 'm', messages: [user], max_tokens: 2 ** 60 }],
  ['n 0', { model: 'm', messages: [user], n: 0 }],
  ['n 129', { model: 'm', messages: [user], n: 129 }],
  ['top_k negative', { model: 'm', messages: [user], top_k: -1 }],
  ['top_logprobs 21', { model: 'm', messages: [user], top_logprobs: 21 }],
  ['seed 1.5', { model: 'm', messages: [user], seed: 1.5 }],
  ['stream a string', { model: 'm', messages: [user], stream: 'yes' }],
  ['stream_options.include_usage a string', { model: 'm', messages: [user], stream_options: { include_usage: 'yes' } }],
  ['stop with 17 entries', { model: 'm', messages: [user], stop: Array.from({ length: 17 }, () => 'x') }],
  ['stop entries not strings', { model: 'm', messages: [user], stop: [1] }],
  ['presence_penalty -3', { model: 'm', messages: [user], presence_penalty: -3 }],
  ['user a number', { model: 'm', messages: [user], user: 7 }],
  ['reasoning_effort unknown', { model: 'm', messages: [user], reasoning_effort: 'max' }],
  ['logprobs a string', { model: 'm', messages: [user], logprobs: 'yes' }],
  ['tool of another type', { model: 'm', messages: [user], tools: [{ type: 'custom', function: { name: 'f' } }] }],
  ['tool with an empty name', { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: '' } }] }],
  ['tool description a number', { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: 'f', description: 1 } }] }],
  ['tool parameters an array', { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: 'f', parameters: [] } }] }],
  ['tool strict a string', { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: 'f', strict: 'yes' } }] }],
  ['tools not an array', { model: 'm', messages: [user], tools: { type: 'function' } }],
  ['tool_choice unknown string', { model: 'm', messages: [user], tool_choice: 'always' }],
  ['sparse messages', { model: 'm', messages: [user, , user] as unknown[] }],
];

function zodView(body: Body): { ok: boolean; json?: string } {
  const r = OpenAIChatBody.safeParse(body);
  return r.success ? { ok: true, json: JSON.stringify(r.data) } : { ok: false };
}

describe('provenOpenAIChat agrees with zod', () => {
  for (const [name, body] of PROVEN) {
    test(`proves: ${name} (zod agrees, same bytes and key order)`, () => {
      assert.equal(provenOpenAIChat(body), true);
      const z = zodView(body);
      assert.equal(z.ok, true);
      assert.equal(JSON.stringify(body), z.json);
      const data = OpenAIChatBody.parse(body) as Body;
      assert.deepEqual(Object.keys(data), Object.keys(body));
      assert.deepEqual(data, body);
    });
  }
  for (const [name, body] of UNPROVEN_VALID) {
    test(`leaves to zod: ${name}`, () => {
      assert.equal(provenOpenAIChat(body), false);
      assert.equal(zodView(body).ok, true);
    });
  }
  for (const [name, body] of INVALID) {
    test(`never proves an invalid body: ${name}`, () => {
      assert.equal(provenOpenAIChat(body), false);
      assert.equal(zodView(body).ok, false);
    });
  }

  test('a `__proto__` key is never proven (zod would drop it)', () => {
    const top = JSON.parse('{"model":"m","messages":[{"role":"user","content":"hi"}],"__proto__":{"x":1}}') as Body;
    const inner = JSON.parse('{"model":"m","messages":[{"role":"user","content":"hi","__proto__":{"x":1}}]}') as Body;
    assert.equal(provenOpenAIChat(top), false);
    assert.equal(provenOpenAIChat(inner), false);
  });

  test('a `__proto__` key in tool parameters is never proven (zod drops it)', () => {
    const body = JSON.parse('{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"__proto__":{"x":1},"type":"object"}}}]}') as Body;
    assert.equal(provenOpenAIChat(body), false);
    assert.notEqual(JSON.stringify(OpenAIChatBody.parse(body)), JSON.stringify(body));
  });

  test('objects whose keys for…in would not list as Object.keys does are never proven', () => {
    // The proof walks keys with for…in: an enumerable key on Object.prototype (a polluted runtime) would be visited
    // as if the body held it, and a class instance or null-prototype object is not what JSON.parse builds.
    const proto = Object.prototype as Record<string, unknown>;
    proto.temperature = 1;
    try {
      assert.equal(provenOpenAIChat({ model: 'm', messages: [user] }), false);
    } finally {
      delete proto.temperature;
    }
    assert.equal(provenOpenAIChat({ model: 'm', messages: [user] }), true);
    const bare = Object.assign(Object.create(null) as Body, { role: 'user', content: 'hi' });
    assert.equal(provenOpenAIChat({ model: 'm', messages: [bare] }), false);
    assert.equal(provenOpenAIChat(Object.assign(Object.create({ stream: true }) as Body, { model: 'm', messages: [user] })), false);
  });

  test('an undefined value is never proven', () => {
    assert.equal(provenOpenAIChat({ model: 'm', messages: [user], temperature: undefined }), false);
  });

  test('generated variants: proven implies zod accepts with identical output', () => {
    // Deterministic pseudo-random bodies: shuffled key orders, values valid or not, undeclared keys.
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const values: Record<string, unknown[]> = {
      model: ['m', '', 5],
      messages: [[user], [], [{ role: 'assistant', content: null }], [{ content: 'x', role: 'user' }], [{ role: 'tool', content: 'x', tool_call_id: 'c' }]],
      stream: [true, false, null, 'x'],
      max_tokens: [1, 0, null, 2.5, 1e6],
      temperature: [0, 2, 2.1, null, -0.1],
      stop: ['x', ['a'], [], [1], null],
      n: [1, 128, 129, 0],
      seed: [0, -1, 1.5],
      user: ['u', null, 1],
      tools: [[{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], [{ type: 'function', function: { name: '' } }], [{ function: { name: 'f' }, type: 'function' }], null],
      tool_choice: ['auto', 'required', 'always', null],
      extra_field: [1, 'x', { a: 1 }],
    };
    const keys = Object.keys(values);
    let proven = 0;
    for (let i = 0; i < 3000; i++) {
      const body: Body = {};
      const chosen = keys.filter((k) => k === 'model' || k === 'messages' || rnd(3) > 0);
      if (rnd(3) === 0) for (let j = chosen.length - 1; j > 0; j--) {
        const k = rnd(j + 1);
        [chosen[j], chosen[k]] = [chosen[k]!, chosen[j]!];
      }
      for (const k of chosen) body[k] = pick(values[k]!);
      if (!provenOpenAIChat(body)) continue;
      proven++;
      const z = zodView(body);
      assert.equal(z.ok, true, JSON.stringify(body));
      assert.equal(JSON.stringify(body), z.json);
    }
    assert.ok(proven > 20, `only ${proven} variants proven`);
  });
});

describe('validation happens once on the common path', () => {
  test('parseClientRequest and the OpenAI translator skip zod for a proven body, and send the same bytes', async () => {
    const raw = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'system', content: 's' }, user], max_tokens: 9, x_extra: { a: [1] } }));
    const req = parseClientRequest('openai', 'chat', raw);
    const original = OpenAIChatBody.safeParse;
    let calls = 0;
    OpenAIChatBody.safeParse = ((v: unknown) => {
      calls++;
      return original.call(OpenAIChatBody, v);
    }) as typeof original;
    try {
      const again = parseClientRequest('openai', 'chat', raw);
      assert.equal(openAIBody(again, true), again.body);
      const up = await getTranslator('openai', 'chat', 'openai').request(again, target('openai'));
      assert.equal(calls, 0);
      // The reference path: zod's copy, spread with the upstream model, as the translator always did.
      const ref = { ...(original.call(OpenAIChatBody, req.body).data as Body), model: target('openai').deployment.upstreamModel };
      assert.equal(up.body.toString(), JSON.stringify(ref));
    } finally {
      OpenAIChatBody.safeParse = original;
    }
  });

  test('an unusual body still goes through zod (and its error messages)', () => {
    assert.throws(() => parseClientRequest('openai', 'chat', Buffer.from('{"messages":[{"role":"user","content":"x"}],"model":5}')), /Invalid type for 'model'/);
  });
});
