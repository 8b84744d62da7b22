// rewriteClientJson with the translator's value (TranslatedResponse.json) must give the bytes of the reference
// path (parse the body, filter, re-serialize), and hand back the very same body when no text changed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientApi } from '../../service/errors.ts';
import { rewriteClientJson, type TextFilter } from '../../service/gateway/text-rewrite.ts';
import { jsonResponse } from '../../service/providers/common.ts';

const mask: TextFilter = (t, json) => t.replace(/secret-\w+/g, json ? '[SECRET_1]' : '[SECRET]');
const restore: TextFilter = (t) => t.replace(/PERSON_1/g, 'Jane Doe');
const none: TextFilter = (t) => t;

type V = Record<string, unknown>;
const completion = (content: unknown, toolCalls?: unknown[]): V => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content, ...(toolCalls ? { tool_calls: toolCalls } : {}) }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
});
const call = (args: string): V => ({ id: 'c1', type: 'function', function: { name: 'f', arguments: args } });
const message = (blocks: unknown[]): V => ({ id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: blocks, stop_reason: 'end_turn' });

const CASES: Array<[string, ClientApi, () => V, TextFilter]> = [
  ['openai text, masked', 'openai', () => completion('the key is secret-abc, ok'), mask],
  ['openai text, restored', 'openai', () => completion('Hello PERSON_1 \u2028 "quoted" \ud800'), restore],
  ['openai text, unchanged', 'openai', () => completion('nothing to see'), mask],
  ['openai null content with tool calls', 'openai', () => completion(null, [call('{"q":"secret-x","n":1}'), call('not json secret-y')]), mask],
  ['openai two choices', 'openai', () => ({ ...completion('a secret-1'), choices: [{ index: 0, message: { role: 'assistant', content: 'a secret-1' } }, { index: 1, message: { role: 'assistant', content: 'b' } }] }), mask],
  ['anthropic text and tool_use', 'anthropic', () => message([{ type: 'text', text: 'PERSON_1 here' }, { type: 'tool_use', id: 't', name: 'f', input: { who: 'PERSON_1', deep: [{ x: 'PERSON_1' }] } }]), restore],
  ['anthropic unchanged', 'anthropic', () => message([{ type: 'text', text: 'plain' }]), restore],
  ['numbers, unicode keys and -0 survive', 'openai', () => ({ ...completion('secret-z'), extra: { 'é': -0, big: 1e21, small: 5e-7, '10': 'ten' } }), mask],
];

describe('rewriteClientJson with the translated value', () => {
  for (const [name, api, make, fn] of CASES) {
    test(`${name}: same bytes as parsing the body again`, () => {
      const reference = rewriteClientJson(api, jsonResponse(200, make()).body, fn);
      const tr = jsonResponse(200, make());
      const fast = rewriteClientJson(api, tr.body, fn, tr.json);
      assert.equal(fast.toString('utf8'), reference.toString('utf8'));
    });
  }

  test('nothing changed: the body itself comes back, not a copy', () => {
    const tr = jsonResponse(200, completion('nothing to see'));
    assert.equal(rewriteClientJson('openai', tr.body, none, tr.json), tr.body);
    assert.equal(rewriteClientJson('openai', tr.body, mask, tr.json), tr.body);
  });

  test('a message object shared by two choices is filtered once per choice, as in its parsed copies', () => {
    let calls = 0;
    const counting: TextFilter = (t) => {
      calls++;
      return `<${t}>`;
    };
    const shared = { role: 'assistant', content: 'x' };
    const value = { ...completion('x'), choices: [{ index: 0, message: shared }, { index: 1, message: shared }] };
    const tr = jsonResponse(200, value);
    const out = JSON.parse(rewriteClientJson('openai', tr.body, counting, tr.json).toString()) as { choices: Array<{ message: { content: string } }> };
    assert.deepEqual(out.choices.map((c) => c.message.content), ['<x>', '<x>']);
    assert.equal(calls, 2);
  });

  test('a body without its value is parsed and re-serialized as before', () => {
    const pretty = Buffer.from(JSON.stringify(completion('nothing'), null, 2));
    assert.equal(rewriteClientJson('openai', pretty, none).toString(), JSON.stringify(completion('nothing')));
    assert.equal(rewriteClientJson('openai', Buffer.from('not json'), mask).toString(), 'not json');
  });
});
