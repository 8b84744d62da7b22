// What budgets charge, end to end through the official SDKs (memory store): the reservation covers
// everything the provider bills (n choices, tool definitions), an answer without usage is still
// charged and counted, implausible or broken usage is validated (and flagged in lineage and
// metrics), and a provider error that echoes the gateway's credential reaches the client scrubbed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import type { SpendRow } from '../../service/budget/index.ts';
import { hashKey } from '../../service/identity/keys.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { eventually, startHarness, type Harness } from '../support/harness.ts';
import { PrivateRedis } from '../lineage/redis-server.ts';

const K = {
  n4: 'tg-e2e-billing-n4-key-00000000000000000001',
  tools: 'tg-e2e-billing-tools-key-0000000000000001',
  nousage: 'tg-e2e-billing-nousage-key-00000000000001',
  nostream: 'tg-e2e-billing-nostream-key-0000000000001',
  anthEmpty: 'tg-e2e-billing-anth-empty-key-00000000001',
  poison: 'tg-e2e-billing-poison-key-000000000000001',
};

const doc = (kind: string, name: string, spec: string): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n---\n`;

function extraYaml(): string {
  let y = doc('Tenant', 'e2e-billing', '{}') + doc('Team', 'e2e-billing-team', '{tenant: e2e-billing}');
  const names: Record<keyof typeof K, string> = { n4: 'n4', tools: 'tools', nousage: 'nousage', nostream: 'nostream', anthEmpty: 'anth-empty', poison: 'poison' };
  for (const [k, name] of Object.entries(names)) y += doc('VirtualKey', name, `{sha256: ${hashKey(K[k as keyof typeof K])}, tenant: e2e-billing, team: e2e-billing-team, user: ${name}}`);
  const rule = (name: string, key: string, limit: string): string =>
    `    - name: ${name}\n      when: principal.keyId == '${key}'\n      budget: {scope: key, limit: ${limit}, window: day}\n`;
  y += `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: e2e-billing}
spec:
  rules:
${rule('n4', 'n4', '{usd: 0.01}')}${rule('tools', 'tools', '{inputTokens: 60000}')}${rule('nousage', 'nousage', '{requests: 3}')}${rule('nostream', 'nostream', '{requests: 2}')}${rule('anth-empty', 'anth-empty', '{requests: 2}')}${rule('poison', 'poison', '{usd: 1, requests: 100}')}`;
  return y;
}

const HI: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

/** An OpenAI completion as a provider that reports no usage (or the given raw usage JSON text) sends it. */
function completionBody(usageJson?: string): string {
  const base = `{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this answer carries no usage block."},"logprobs":null,"finish_reason":"stop"}]`;
  return usageJson === undefined ? `${base}}` : `${base},"usage":${usageJson}}`;
}

for (const store of ['memory', 'redis'] as const) describe(`e2e: what budgets reserve and charge (${store} store)`, { timeout: 120_000 }, () => {
  let h: Harness;
  let redis: PrivateRedis | undefined;
  const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15_000 });
  const row = async (key: string): Promise<SpendRow> => {
    const rows = await h.tollgate.budgets.spend({ tenant: 'e2e-billing', scopeKey: `key:${key}` });
    assert.equal(rows.length, 1, JSON.stringify(rows));
    return rows[0]!;
  };
  const lineageOf = async (requestId: string | null): Promise<LineageRecord> => {
    assert.ok(requestId);
    await eventually(() => h.lineage.some((l) => l.requestId === requestId), 5000);
    return h.lineage.find((l) => l.requestId === requestId)!;
  };
  /** Fires `n` requests at once; returns how many were admitted and how many were refused by the budget. */
  const burst = async (n: number, send: () => Promise<unknown>): Promise<{ ok: number; refused: number }> => {
    const res = await Promise.allSettled(Array.from({ length: n }, send));
    let ok = 0;
    let refused = 0;
    for (const r of res) {
      if (r.status === 'fulfilled') ok++;
      else {
        assert.ok(r.reason instanceof OpenAI.RateLimitError, String(r.reason));
        assert.equal(r.reason.code, 'budget_exceeded');
        refused++;
      }
    }
    return { ok, refused };
  };

  before(async () => {
    // A private Redis; a roomy command timeout so a busy test machine does not trip failClosed.
    if (store === 'redis') redis = await PrivateRedis.start();
    const tollgate = redis ? { redisUrl: redis.url, redisTimeoutMs: 2000 } : undefined;
    h = await startHarness({ extraYaml: extraYaml(), maxRequestBytes: 1_000_000, tollgate });
    if (redis) await eventually(() => h.tollgate.budgets.health() === 'ok', 10_000);
  });
  after(async () => {
    h?.fakes.openai?.setDefault(undefined);
    h?.fakes.anthropic?.setDefault(undefined);
    await h?.close();
    await redis?.stop();
  });

  it('10 concurrent n=4 requests against a hard USD budget: the reservation is max_tokens × n, total charged ≤ limit', async () => {
    // Each answer bills 4 choices × 500 tokens (the fake reports it, as OpenAI does for n=4 at the
    // limit), held upstream 400 ms so all ten overlap. $0.01 fits two: 2 × (2000 × $2/M + prompt).
    h.fakes.openai!.setDefault({ type: 'reply', reply: { usage: { input: 9, output: 2000 } }, delayMs: 400 });
    try {
      const { ok, refused } = await burst(10, () => client(K.n4).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, n: 4, max_tokens: 500 }));
      const r = await row('n4');
      process.stdout.write(`# ${store}: n=4 burst: ${ok} admitted, ${refused} refused, charged $${r.usd} of $0.01\n`);
      assert.ok(r.usd <= 0.01, `charged $${r.usd} > $0.01 limit`);
      assert.equal(ok, 2);
      assert.equal(r.requests, 2);
      assert.equal(r.inFlight, 0);
    } finally {
      h.fakes.openai!.setDefault(undefined);
    }
  });

  it('8 concurrent requests carrying 100 KB of tool definitions: tools are prompt tokens in the reservation, total charged ≤ limit', async () => {
    const tools: OpenAI.ChatCompletionTool[] = Array.from({ length: 40 }, (_, i) => ({
      type: 'function',
      function: {
        name: `crm_lookup_${i}`,
        description: 'Looks up a customer record in the CRM by its identifier and returns the account, its open tickets, billing status and the assigned owner. Use it before answering any account question. '.repeat(12),
        parameters: { type: 'object', properties: { customer_id: { type: 'string', description: 'The CRM identifier, e.g. C-000123' }, include_tickets: { type: 'boolean' } }, required: ['customer_id'] },
      },
    }));
    const bytes = JSON.stringify(tools).length;
    assert.ok(bytes > 95_000, String(bytes));
    // The provider bills the tool definitions as prompt (English prose in JSON: ~4.5 bytes a token).
    const billed = Math.round(bytes / 4.5);
    h.fakes.openai!.setDefault({ type: 'reply', reply: { usage: { input: billed, output: 5 } }, delayMs: 400 });
    try {
      const { ok } = await burst(8, () => client(K.tools).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, tools, max_tokens: 16 }));
      const r = await row('tools');
      process.stdout.write(`# ${store}: 100 KB tools burst: ${ok} admitted, charged ${r.inputTokens} input tokens of 60000\n`);
      assert.ok(r.inputTokens <= 60_000, `charged ${r.inputTokens} input tokens > 60000`);
      assert.ok(ok >= 1 && ok <= 2, `admitted ${ok}`);
      assert.equal(r.inputTokens, ok * billed);
    } finally {
      h.fakes.openai!.setDefault(undefined);
    }
  });

  it('answers without usage (JSON without usage, a stream without a usage chunk, Anthropic `usage: {}`) are charged an estimate and counted', async () => {
    // Non-stream, no usage: a {requests: 3} budget admits 3 of 6.
    h.fakes.openai!.setDefault({ type: 'raw', status: 200, body: completionBody() });
    let ok = 0;
    let lastId: string | null = null;
    for (let i = 0; i < 6; i++) {
      try {
        const { response } = await client(K.nousage).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 50 }).withResponse();
        ok++;
        lastId = response.headers.get('x-request-id');
      } catch (e) {
        assert.ok(e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded', String(e));
      }
    }
    assert.equal(ok, 3);
    const r = await row('nousage');
    assert.equal(r.requests, 3);
    assert.ok(r.usd > 0 && r.outputTokens > 0 && r.inputTokens > 0, JSON.stringify(r));
    const rec = await lineageOf(lastId);
    assert.equal(rec.tokens?.anomaly, 'missing');
    assert.equal(rec.tokens?.estimated, true);
    assert.ok((rec.costUsd ?? 0) > 0);

    // Stream without a usage chunk: {requests: 2} admits 2 of 3.
    const chunk = (delta: object, finish: string | null = null): string =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const sse = chunk({ role: 'assistant', content: '' }) + chunk({ content: 'streamed without usage' }) + chunk({}, 'stop') + 'data: [DONE]\n\n';
    h.fakes.openai!.setDefault({ type: 'raw', status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse });
    ok = 0;
    for (let i = 0; i < 3; i++) {
      try {
        const stream = await client(K.nostream).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, max_tokens: 50 });
        let text = '';
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
        assert.equal(text, 'streamed without usage');
        ok++;
      } catch (e) {
        assert.ok(e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded', String(e));
      }
      // The charge lands when the stream's end is processed (just after the last byte).
      await eventually(() => h.lineage.filter((l) => l.principal.keyId === 'nostream').length === i + 1, 5000);
    }
    assert.equal(ok, 2);
    const rs = await row('nostream');
    assert.equal(rs.requests, 2);
    assert.ok(rs.usd > 0);
    h.fakes.openai!.setDefault(undefined);

    // Anthropic answer with `usage: {}`: counts, charged an estimate.
    const msg = { id: 'msg_x', type: 'message', role: 'assistant', model: 'claude-3-5-sonnet-20241022', content: [{ type: 'text', text: 'no usage here' }], stop_reason: 'end_turn', stop_sequence: null, usage: {} };
    h.fakes.anthropic!.setDefault({ type: 'raw', status: 200, body: JSON.stringify(msg) });
    const anthropic = new Anthropic({ apiKey: K.anthEmpty, baseURL: h.baseURL.replace(/\/v1$/, ''), maxRetries: 0, timeout: 15_000 });
    ok = 0;
    for (let i = 0; i < 3; i++) {
      try {
        await anthropic.messages.create({ model: 'claude-sonnet', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
        ok++;
      } catch (e) {
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
      }
    }
    h.fakes.anthropic!.setDefault(undefined);
    assert.equal(ok, 2);
    const ra = await row('anth-empty');
    assert.equal(ra.requests, 2);
    assert.ok(ra.usd > 0);
  });

  it('provider usage is validated: 1e400 and 1e15 are clamped to the plausible maximum, negative counts charge the reservation; flagged in lineage and metrics', async () => {
    const c = client(K.poison);
    const send = async (usageJson: string): Promise<LineageRecord> => {
      h.fakes.openai!.setNext({ type: 'raw', status: 200, body: completionBody(usageJson) });
      const { response } = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 16 }).withResponse();
      return lineageOf(response.headers.get('x-request-id'));
    };
    // 1e400 parses as Infinity: clamped to the deployment's context window (128000), not Infinity.
    const inf = await send('{"prompt_tokens":1e400,"completion_tokens":5,"total_tokens":1e400}');
    assert.equal(inf.tokens?.input, 128_000);
    assert.equal(inf.tokens?.output, 5);
    assert.equal(inf.tokens?.anomaly, 'clamped');
    let r = await row('poison');
    assert.ok(Math.abs(r.usd - (128_000 * 1 + 5 * 2) / 1e6) < 1e-12, `charged ${r.usd}`);
    // 1e15 completion tokens for max_tokens 16: clamped to 16 ($0.000032), not $2,000,000,000.
    const huge = await send('{"prompt_tokens":9,"completion_tokens":1e15,"total_tokens":1e15}');
    assert.equal(huge.tokens?.output, 16);
    assert.equal(huge.tokens?.anomaly, 'clamped');
    const before = await row('poison');
    assert.ok(before.usd < 0.2, `charged ${before.usd}`);
    // A negative count does not refund anything: the reservation's count is charged instead.
    const neg = await send('{"prompt_tokens":-100000,"completion_tokens":-3,"total_tokens":-100003}');
    assert.equal(neg.tokens?.anomaly, 'invalid');
    assert.ok((neg.tokens?.input ?? 0) > 0 && neg.tokens?.output === 16, JSON.stringify(neg.tokens));
    r = await row('poison');
    assert.ok(r.inputTokens > before.inputTokens && r.outputTokens > before.outputTokens && r.usd > before.usd, JSON.stringify({ before, r }));
    assert.equal(r.requests, 3);
    // The counter is not poisoned: a normal request is admitted and charged normally.
    const ok = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 16 });
    assert.equal(ok.usage?.prompt_tokens, 12);
    assert.equal((await row('poison')).requests, 4);
    // Metrics are recorded from lineage, off the request path: poll briefly.
    const deadline = Date.now() + 5000;
    let metrics = '';
    for (;;) {
      metrics = await (await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/metrics`)).text();
      if (/anomaly="invalid"\} 1/.test(metrics) || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const lines = metrics.split('\n').filter((l) => l.startsWith('tollgate_usage_anomalies_total{'));
    assert.ok(lines.includes('tollgate_usage_anomalies_total{provider="fake-openai",anomaly="clamped"} 2'), lines.join('\n'));
    assert.ok(lines.includes('tollgate_usage_anomalies_total{provider="fake-openai",anomaly="invalid"} 1'), lines.join('\n'));
  });

  it('a provider error echoing the gateway credential reaches the client (OpenAI and Anthropic SDKs) and lineage scrubbed', async () => {
    const openaiKey = h.fakes.openai!.apiKey!;
    const anthropicKey = h.fakes.anthropic!.apiKey!;
    h.fakes.openai!.setNext({
      type: 'raw',
      status: 400,
      body: JSON.stringify({ error: { message: `Invalid request. Headers received: {"authorization": "Bearer ${openaiKey}"}; key ${openaiKey}`, type: 'invalid_request_error', code: openaiKey, param: null } }),
    });
    let requestId: string | null = null;
    try {
      await client(K.poison).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 16 });
      assert.fail('expected a 400');
    } catch (e) {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.ok(!JSON.stringify(e.error).includes(openaiKey) && !e.message.includes(openaiKey), e.message);
      assert.match(e.message, /Invalid request\. Headers received: .*\[redacted\]/);
      requestId = e.headers.get('x-request-id');
    }
    const rec = await lineageOf(requestId);
    assert.ok(!JSON.stringify(rec).includes(openaiKey), JSON.stringify(rec));
    assert.equal(rec.statusCode, 400);

    h.fakes.anthropic!.setNext({
      type: 'raw',
      status: 500,
      body: JSON.stringify({ type: 'error', error: { type: 'api_error', message: `upstream saw x-api-key: ${anthropicKey}` } }),
    });
    const anthropic = new Anthropic({ apiKey: K.poison, baseURL: h.baseURL.replace(/\/v1$/, ''), maxRetries: 0, timeout: 15_000 });
    try {
      await anthropic.messages.create({ model: 'claude-sonnet', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.ok(!JSON.stringify(e.error).includes(anthropicKey) && !e.message.includes(anthropicKey), e.message);
      assert.match(e.message, /x-api-key: \[redacted\]/);
    }
  });
});
