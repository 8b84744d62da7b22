// Exact prompt counts only where they change a decision: admission reserves the run-based heuristic's prompt count;
// when that reservation would be refused and the model is OpenAI-family (o200k_base), the prompt is counted exactly
// (gpt-tokenizer, loaded lazily) and admission retried. CJK is where the heuristic is furthest off (1.2 tokens per
// character vs ~0.7 for o200k), so a CJK prompt under an input-token budget shows the difference. The tokenizer
// loads in the background on the first refusal, so at most that first request is refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { estimateTokens } from '../../service/budget/cost.ts';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';

const LIMIT = 600;
const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: small-input-budget}
spec:
  rules:
    - name: acme-input
      when: principal.keyId == 'test-acme'
      budget: {scope: key, limit: {inputTokens: ${LIMIT}}, window: day}
`;
// ~560 CJK characters.
const CJK = '東京タワーは港区芝公園にある総合電波塔です。'.repeat(25);

describe('e2e: exact o200k count near a budget limit', { timeout: 60000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['openai', 'anthropic'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });

  it('the heuristic alone would refuse; the exact count fits: an OpenAI model is admitted, a non-OpenAI model is refused', async () => {
    assert.ok(estimateTokens(CJK) > LIMIT, `heuristic ${estimateTokens(CJK)} must exceed the limit`);
    assert.ok(countTokens(CJK) + 20 < LIMIT, `exact ${countTokens(CJK)} must fit`);
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });
    // No tokenizer for Claude: the heuristic's reservation stands and the budget refuses it; nothing is sent.
    const n = h.fakes.anthropic!.requests.length;
    await assert.rejects(client.chat.completions.create({ model: 'claude-sonnet', max_tokens: 16, messages: [{ role: 'user', content: CJK }] }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.equal(err.code, 'request_exceeds_limit', 'the heuristic reservation can never fit the limit');
      return true;
    });
    assert.equal(h.fakes.anthropic!.requests.length, n);
    // The first refusal near the limit starts loading the tokenizer (never awaited by a request); once it is
    // loaded the exact count admits the request.
    const deadline = Date.now() + 10000;
    let refusals = 0;
    for (;;) {
      try {
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: CJK }] });
        assert.equal(r.choices[0]!.message.content, 'Hello from the fake provider.');
        break;
      } catch (err) {
        assert.ok(err instanceof OpenAI.RateLimitError && err.code === 'request_exceeds_limit', String(err));
        refusals++;
        assert.ok(Date.now() < deadline, `still refused after ${refusals} tries`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.ok(refusals <= 1, `at most the first request is refused (${refusals})`);
  });
});
