import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateChatTokens, estimateCost, estimateRequest, estimateTokens } from '../../service/budget/cost.ts';

test('estimateCost prices per million tokens', () => {
  const cases: Array<[number, number, number, number, number]> = [
    [1_000_000, 0, 2.5, 10, 2.5],
    [0, 1_000_000, 2.5, 10, 10],
    [1000, 500, 0.15, 0.6, 0.00045],
    [0, 0, 5, 15, 0],
  ];
  for (const [i, o, pi, po, want] of cases) {
    assert.ok(Math.abs(estimateCost(i, o, { inputPricePerM: pi, outputPricePerM: po }) - want) < 1e-12, `${i}/${o}`);
  }
});

test('estimateRequest reserves prompt + max output at the deployment price', () => {
  assert.deepEqual(estimateRequest(1200.2, 800, { inputPricePerM: 3, outputPricePerM: 15 }), {
    usd: (1201 * 3 + 800 * 15) / 1e6,
    inputTokens: 1201,
    outputTokens: 800,
  });
});

test('estimateTokens stays within the calibrated band of real GPT tokenizer counts', () => {
  // Reference counts: o200k_base / cl100k_base (the larger), measured with tiktoken.
  const cases: Array<[string, string, number]> = [
    ['english', 'Tollgate is a policy engine for LLM API traffic that plugs into an existing Envoy data plane through the external processing filter. Envoy terminates the client connection and streams each request to Tollgate over gRPC; Tollgate decides, rewrites and accounts.'.repeat(5), 266],
    ['chinese', '人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。'.repeat(5), 305],
    ['russian', 'Искусственный интеллект — это область информатики, которая занимается созданием интеллектуальных машин, способных выполнять задачи.'.repeat(5), 275],
    ['numbers', '3.14159265358979 2.71828182845904 1.41421356237309 1234567890 0987654321 '.repeat(5), 170],
  ];
  for (const [what, text, real] of cases) {
    const est = estimateTokens(text);
    assert.ok(est >= real * 0.65 && est <= real * 1.35, `${what}: estimate ${est} vs real ${real}`);
  }
  assert.equal(estimateTokens(''), 0);
});

test('estimateChatTokens adds message framing and handles content parts', () => {
  const plain = estimateChatTokens([{ role: 'user', content: 'hello world' }]);
  assert.equal(plain, 3 + 3 + 1 + estimateTokens('hello world'));
  const parts = estimateChatTokens([
    { role: 'user', content: [{ type: 'text', text: 'hello world' }, { type: 'image_url', image_url: { url: 'data:...' } }] },
  ]);
  assert.equal(parts, plain + 1105);
  assert.equal(estimateChatTokens([{ role: 'assistant', content: null }]), 7);
});
