// Streamed answers are rewritten event by event (output redaction, pseudonym restoration). Envoy hands the
// body over in arbitrary chunks: a multi-byte UTF-8 character (CJK, emoji, accents) can be split across two
// chunks and must come out whole, for Chat/Messages SSE and for Responses SSE alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseTextRewriter } from '../../service/gateway/text-rewrite.ts';
import { ResponsesSseRewriter } from '../../service/gateway/responses-rewrite.ts';
import { openAIResponsesStream } from '../support/fake-providers.ts';
import { splitEvery, viewResponsesStream } from '../providers/helpers.ts';

const TEXT = '東京の天気は☀️、気温は23°Cです';

function run(push: (b: Buffer, last: boolean) => Buffer, upstream: Buffer): string {
  const chunks = splitEvery(upstream, 1);
  return Buffer.concat(chunks.map((c, i) => push(c, i === chunks.length - 1))).toString('utf8');
}

test('chat SSE split one byte at a time: every character arrives whole', () => {
  const events = [...TEXT].map((ch, i) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: ch } : { content: ch }, finish_reason: null }] })}\n\n`);
  events.push(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`, 'data: [DONE]\n\n');
  const rw = new SseTextRewriter('openai', () => []);
  const out = run((b, last) => rw.push(b, last), Buffer.from(events.join('')));
  assert.ok(!out.includes('\uFFFD'), 'no replacement characters');
  let text = '';
  for (const block of out.split('\n\n')) {
    const data = block.replace(/^data: /, '');
    if (!data || data === '[DONE]') continue;
    text += (JSON.parse(data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '';
  }
  assert.equal(text, TEXT);
});

test('Responses SSE split one byte at a time: every character arrives whole', () => {
  const rw = new ResponsesSseRewriter(() => []);
  const out = run((b, last) => rw.push(b, last), Buffer.from(openAIResponsesStream({ text: TEXT, toolCalls: [] }).join('')));
  assert.ok(!out.includes('\uFFFD'), 'no replacement characters');
  assert.equal(viewResponsesStream(out).text, TEXT);
});
