// OpenAI client ← OpenAI-shaped provider, buffered answers: response() builds its result in place (no spread
// temporaries). It must equal what jsonResponse(status, completion, { usage?, finishReason? }) gives — the same body
// bytes, and `usage` / `finishReason` present only when the provider reported them (never as undefined keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getTranslator } from '../../service/providers/index.ts';
import { reportedUsage } from '../../service/providers/chat.ts';
import { jsonResponse } from '../../service/providers/common.ts';
import type { ClientRequest, TranslatedResponse } from '../../service/providers/types.ts';
import { seeded } from '../support/seeded.ts';

function req(): ClientRequest {
  return { api: 'openai', op: 'chat', model: 'm', stream: false, body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } };
}

/** The general construction the translator used to return (spread of the optional fields). */
function reference(status: number, text: string): TranslatedResponse {
  const completion = JSON.parse(text) as { choices: Array<{ finish_reason?: string }>; usage?: never };
  const usage = reportedUsage(completion);
  const finish = completion.choices[0]?.finish_reason;
  return jsonResponse(status, completion, { ...(usage ? { usage } : {}), ...(finish ? { finishReason: finish } : {}) });
}

/** Varied completions: with and without usage (and its details), finish reasons, choices, content escapes. */
function completions(n: number): string[] {
  const rnd = seeded(17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const choices = Array.from({ length: pick([0, 1, 1, 2]) }, (_, index) => {
      const c: Record<string, unknown> = { index, message: { role: 'assistant', content: pick(['Done.', 'line\n"quoted"\ttab ☃ 😀', '', null]) } };
      const finish = pick(['stop', 'length', 'tool_calls', '', undefined, null]);
      if (finish !== undefined) c.finish_reason = finish;
      return c;
    });
    const v: Record<string, unknown> = { id: `chatcmpl-${i}`, object: 'chat.completion', created: i, model: 'gpt-x', choices };
    const u = pick(['none', 'plain', 'details', 'bad']);
    if (u === 'plain') v.usage = { prompt_tokens: i, completion_tokens: 3, total_tokens: i + 3 };
    else if (u === 'details') v.usage = { prompt_tokens: 10 + i, completion_tokens: 5, total_tokens: 15 + i, prompt_tokens_details: { cached_tokens: i % 4 }, completion_tokens_details: { reasoning_tokens: i % 3 } };
    else if (u === 'bad') v.usage = { completion_tokens: 2 };
    out.push(pick([true, false]) ? JSON.stringify(v, null, 2) : JSON.stringify(v));
  }
  return out;
}

for (const provider of ['openai', 'azure'] as const) {
  test(`openai client ← ${provider}: a buffered answer translates exactly as jsonResponse with the optional usage/finishReason`, () => {
    const tr = getTranslator('openai', 'chat', provider);
    let withUsage = 0;
    let withoutFinish = 0;
    for (const text of completions(300)) {
      const got = tr.response(200, { 'content-type': 'application/json' }, Buffer.from(text), req());
      const want = reference(200, text);
      assert.deepStrictEqual(got, want, text);
      assert.deepStrictEqual(Object.keys(got), Object.keys(want), 'no extra (undefined) keys');
      if (got.usage) withUsage++;
      if (!('finishReason' in got)) withoutFinish++;
    }
    // Both branches of each optional field were exercised.
    assert.ok(withUsage > 50 && withUsage < 250, `usage present in ${withUsage} of 300`);
    assert.ok(withoutFinish > 50 && withoutFinish < 250, `finishReason absent in ${withoutFinish} of 300`);
  });
}
