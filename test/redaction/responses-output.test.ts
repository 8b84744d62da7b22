// Output filters over Responses API answers: pseudonym surrogates split across deltas (and across SSE chunks, down
// to one byte) are restored; the `.done` events and the final response carry exactly the filtered deltas; held text
// is flushed as one more delta before `.done`; sequence numbers stay 0, 1, 2, …; non-streamed `output` items too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Restorer } from '../../service/redaction/index.ts';
import { ResponsesSseRewriter, rewriteResponsesJson } from '../../service/gateway/responses-rewrite.ts';
import { openAIResponsesReply, openAIResponsesStream } from '../support/fake-providers.ts';
import { splitEvery, splitRandom, viewResponsesStream } from '../providers/helpers.ts';

const SURROGATE = 'EMAIL_7F3KQ9PX';
const ORIGINAL = 'jane@corp.com';

function restorer(): Restorer {
  const r = new Restorer();
  r.add(SURROGATE, ORIGINAL);
  return r;
}

function rewrite(chunks: Buffer[]): string {
  const r = restorer();
  const rw = new ResponsesSseRewriter((json) => [r.stream({ json })]);
  const out = chunks.map((c, i) => rw.push(c, i === chunks.length - 1));
  return Buffer.concat(out).toString('utf8');
}

test('stream: a surrogate split across text deltas and tool arguments is restored; done events match the deltas', () => {
  // The fake splits text into words: the surrogate's tail sits in the last delta, which the restorer must hold.
  const reply = { text: `Write to ${SURROGATE}`, toolCalls: [{ id: 'call_1', name: 'send', args: { to: SURROGATE } }] };
  const upstream = Buffer.from(openAIResponsesStream(reply).join(''));
  for (const chunks of [[upstream], splitEvery(upstream, 1), ...[1, 2, 3].map((s) => splitRandom(upstream, s * 31, 50))]) {
    const out = rewrite(chunks);
    assert.ok(!out.includes(SURROGATE), out);
    const v = viewResponsesStream(out); // checks sequence numbers, done == deltas, final response == streamed text
    assert.equal(v.text, `Write to ${ORIGINAL}`);
    assert.deepEqual(v.toolCalls.map((t) => t.args), [{ to: ORIGINAL }]);
    assert.equal(v.terminal, 'response.completed');
  }
});

test('non-stream: output message text and function call arguments are restored', () => {
  const body = Buffer.from(JSON.stringify(openAIResponsesReply({ text: `Hi ${SURROGATE}`, toolCalls: [{ id: 'c', name: 'send', args: { to: SURROGATE } }] })));
  const r = restorer();
  const filter = (t: string, json: boolean): string => {
    const st = r.stream({ json });
    return st.push(t) + st.end();
  };
  const out = JSON.parse(rewriteResponsesJson(body, filter).toString()) as { output: Array<Record<string, any>> };
  assert.equal(out.output[0]!.content[0].text, `Hi ${ORIGINAL}`);
  assert.deepEqual(JSON.parse(out.output[1]!.arguments), { to: ORIGINAL });
});
