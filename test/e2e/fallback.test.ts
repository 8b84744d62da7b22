// Cross-provider fallback inside one request, the Envoy way: official SDK → real Envoy (the shipped
// chain route's retry policy with previous_priorities, a chain cluster built from the shipped one: one
// priority per deployment and Tollgate's upstream ext_proc filter, one Process stream per attempt) →
// Tollgate's two stages → fakes.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { SERVED_HEADER } from '../../service/fallback/contract.ts';
import { KEYS, accessLogFor, eventually, startHarness, type Harness } from '../support/harness.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';

const CHAIN = 'tgc.resilient';
const OPENAI_DEP = 'resilient/fake-openai/0';
const ANTHROPIC_DEP = 'resilient/fake-anthropic/1';
const AZURE_DEP = 'resilient/fake-azure/2';

// Prices differ so the lineage shows which deployment was charged.
const MODEL_YAML = `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: resilient}
spec:
  deployments:
  - {provider: fake-openai, model: gpt-4o-mini-2024-07-18, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
  - {provider: fake-anthropic, model: claude-3-5-sonnet-20241022, region: us-east-1, pricing: {inputPerMillion: 3, outputPerMillion: 15}, priority: 1}
  - {provider: fake-azure, model: my-gpt4o-deployment, region: eu-west-1, pricing: {inputPerMillion: 2, outputPerMillion: 4}, priority: 2}
  fallbackChains:
  - {cluster: ${CHAIN}, deployments: [${OPENAI_DEP}, ${ANTHROPIC_DEP}]}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: contact-pseudonyms}
spec:
  rules:
  - name: emails
    redact: {detectors: [email], action: pseudonymize}
  - name: tight-usd
    when: "'x-budget-case' in request.headers"
    budget: {scope: key, limit: {usd: 0.01}, window: day}
`;

/** The fallback rig: fakes for `providers`, the model above, one chain cluster as Envoy has it. */
function startChainHarness(
  chain: { provider: 'openai' | 'anthropic' | 'azure'; deployment: string }[],
  opts: { providers?: ('openai' | 'anthropic' | 'azure')[]; replicas?: number; modelYaml?: string } = {},
): Promise<Harness> {
  return startHarness({
    providers: opts.providers ?? ['openai', 'anthropic', 'azure'],
    extraYaml: opts.modelYaml ?? MODEL_YAML,
    chains: { [CHAIN]: chain },
    replicas: opts.replicas,
  });
}

function lastRecord(h: Harness, requestId: string): LineageRecord | undefined {
  return h.lineage.find((r) => r.requestId === requestId);
}

describe('in-request fallback across providers', () => {
  let h: Harness;
  let client: OpenAI;
  before(async () => {
    h = await startChainHarness([
      { provider: 'openai', deployment: OPENAI_DEP },
      { provider: 'anthropic', deployment: ANTHROPIC_DEP },
    ]);
    client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 10_000 });
  });
  after(() => h.close());
  beforeEach(() => {
    for (const f of Object.values(h.fakes)) f!.requests.length = 0;
    h.tollgate.services.health.retain([]);
  });

  it('OpenAI 503 → Anthropic answers; the client gets an OpenAI answer; each provider got its own format and key', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 503, message: 'overloaded' });
    const { data, response } = await client.chat.completions
      .create({ model: 'resilient', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], max_tokens: 50 })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.ok(data.choices[0]!.message.content);
    assert.equal(response.headers.get('x-tollgate-provider'), 'fake-anthropic');
    assert.equal(response.headers.get(SERVED_HEADER), null, 'internal header stripped');

    const [o] = h.fakes.openai!.requests;
    const [a] = h.fakes.anthropic!.requests;
    assert.ok(o && a, 'both providers were tried, once each');
    assert.equal(h.fakes.openai!.requests.length, 1);
    assert.equal(o.path, '/v1/chat/completions');
    assert.equal(o.headers.authorization, `Bearer ${h.fakes.openai!.apiKey}`);
    assert.equal(a.path, '/v1/messages');
    assert.equal(a.headers['x-api-key'], h.fakes.anthropic!.apiKey);
    assert.equal(a.headers.authorization, undefined, "attempt 1's OpenAI key must not reach Anthropic");
    assert.equal(a.headers['x-envoy-attempt-count'], '2');
    assert.equal((a.json as { system?: unknown }).system, 'be brief', 'translated to Anthropic Messages');
    assert.equal((a.json as { model?: unknown }).model, 'claude-3-5-sonnet-20241022');
    assert.notEqual(a.headers.authorization, o.headers.authorization);

    const rid = response.headers.get('x-request-id')!;
    await eventually(() => lastRecord(h, rid) !== undefined);
    const rec = lastRecord(h, rid)!;
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.served?.deployment, ANTHROPIC_DEP);
    assert.equal(rec.served?.cluster, CHAIN);
    assert.deepEqual(rec.attempts?.map((x) => [x.deployment, x.status]), [[OPENAI_DEP, 503], [ANTHROPIC_DEP, 200]]);
    const u = data.usage!;
    assert.ok(Math.abs(rec.costUsd! - (u.prompt_tokens * 3 + u.completion_tokens * 15) / 1e6) < 1e-12, 'charged at the serving deployment’s price');
  });

  it('a 429 with retry-after falls back and ejects the primary: the next request goes straight to the fallback', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 429, retryAfter: 30 });
    const first = await client.chat.completions.create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 }).withResponse();
    assert.equal(first.response.headers.get('x-tollgate-provider'), 'fake-anthropic');
    assert.equal(h.tollgate.services.health.availability(OPENAI_DEP).kind, 'ejected');

    h.fakes.anthropic!.requests.length = 0;
    h.fakes.openai!.requests.length = 0;
    const second = await client.chat.completions.create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 }).withResponse();
    assert.equal(second.response.headers.get('x-tollgate-provider'), 'fake-anthropic');
    assert.equal(h.fakes.openai!.requests.length, 0, 'the ejected primary is not tried again during its cool-down');
    const log = await accessLogFor(h, second.response.headers.get('x-request-id')!);
    assert.equal(log.upstream_cluster, 'fake_anthropic', 'routing no longer agrees with the chain: single-cluster path');
  });

  it('a reset before any response byte falls back, streaming included', async () => {
    h.fakes.openai!.setNext({ type: 'reset' });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'resilient', messages: [{ role: 'user', content: 'stream please' }], max_tokens: 30, stream: true })
      .withResponse();
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(text.length > 0);
    assert.equal(finish, 'stop');
    const [a] = h.fakes.anthropic!.requests;
    assert.equal((a!.json as { stream?: unknown }).stream, true);
    assert.equal(h.fakes.openai!.requests.length, 1);
    const log = await accessLogFor(h, response.headers.get('x-request-id')!);
    assert.equal(log.attempts, 2, JSON.stringify(log));
    assert.equal(log.upstream_cluster, CHAIN);
  });

  it('every attempt fails → the last error in the client API’s shape; nothing charged', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 503 });
    h.fakes.anthropic!.setNext({ type: 'error', status: 529, message: 'Overloaded' });
    h.fakes.openai!.setNext({ type: 'error', status: 500 });
    const err = await client.chat.completions
      .create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.ok(err.status >= 500, String(err.status));
    assert.equal(typeof (err.error as { message?: unknown }).message, 'string', 'OpenAI error body');
    // num_retries 2: three attempts; previous_priorities walks 0, 1, then resets to 0.
    assert.equal(h.fakes.openai!.requests.length, 2);
    assert.equal(h.fakes.anthropic!.requests.length, 1);
    const rid = err.headers?.get?.('x-request-id') ?? (err.headers as Record<string, string> | undefined)?.['x-request-id'];
    assert.ok(rid);
    await eventually(() => lastRecord(h, rid!) !== undefined);
    const rec = lastRecord(h, rid!)!;
    assert.equal(rec.outcome, 'provider_error');
    assert.deepEqual(rec.attempts?.map((x) => x.status), [503, 529, 500]);
    assert.equal(rec.costUsd ?? 0, 0);
  });

  it('redaction holds on every attempt: no provider in the chain sees the raw value', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 500 });
    const res = await client.chat.completions.create({ model: 'resilient', messages: [{ role: 'user', content: 'mail alice.smith@example.com the report' }], max_tokens: 20 });
    assert.ok(res.choices[0]!.message.content);
    const sent = [h.fakes.openai!.requests[0]!, h.fakes.anthropic!.requests[0]!].map((r) => r.body.toString('utf8'));
    for (const b of sent) assert.equal(b.includes('alice.smith@example.com'), false, b);
    const token = (b: string): string | undefined => /mail (\S+) the report/.exec(b)?.[1];
    assert.ok(token(sent[0]!));
    assert.equal(token(sent[0]!), token(sent[1]!), 'the same pseudonym on both attempts (one redaction, before the chain)');
  });

  it('the budget reserves for the most expensive chain member, and settles at the one that served', async () => {
    const ask = (model: string, max_tokens: number) =>
      client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens }, { headers: { 'x-budget-case': 'chain' } })
        .withResponse()
        .then((r) => r, (e: unknown) => e);
    // 1,000 output tokens: $0.002 on OpenAI but $0.015 if Anthropic ends up serving; $0.01 left.
    const refused = await ask('resilient', 1000);
    assert.ok(refused instanceof OpenAI.RateLimitError, String(refused));
    assert.equal(h.fakes.openai!.requests.length + h.fakes.anthropic!.requests.length, 0);
    // The same request on a model without a chain fits.
    const single = await ask('gpt-4o-mini', 1000);
    assert.ok(!(single instanceof Error), String(single));
    // 500 tokens fit even at Anthropic's price; OpenAI serves and the charge is OpenAI's.
    const fits = await client.chat.completions
      .create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 500 }, { headers: { 'x-budget-case': 'chain' } })
      .withResponse();
    const rid = fits.response.headers.get('x-request-id')!;
    await eventually(() => lastRecord(h, rid) !== undefined);
    const rec = lastRecord(h, rid)!;
    const u = fits.data.usage!;
    assert.equal(rec.served?.deployment, OPENAI_DEP);
    assert.ok(Math.abs(rec.costUsd! - (u.prompt_tokens * 1 + u.completion_tokens * 2) / 1e6) < 1e-12);
    const spent = rec.budgets?.find((b) => b.name.endsWith('tight-usd'));
    assert.ok(spent, JSON.stringify(rec.budgets));
  });

  it('Anthropic SDK clients fall back too (OpenAI-compatible → Anthropic passthrough)', async () => {
    const anthropic = new Anthropic({ apiKey: KEYS.acme, baseURL: h.url, maxRetries: 0, timeout: 10_000, defaultHeaders: { 'anthropic-version': '2023-06-01' } });
    h.fakes.openai!.setNext({ type: 'error', status: 502 });
    const msg = await anthropic.messages.create({ model: 'resilient', max_tokens: 30, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    const [o] = h.fakes.openai!.requests;
    assert.ok(Array.isArray((o!.json as { messages?: unknown }).messages), 'attempt 1 went out as Chat Completions');
    const [a] = h.fakes.anthropic!.requests;
    assert.equal(a!.headers['anthropic-version'], '2023-06-01', "the client's anthropic-version, carried in the plan");
    assert.equal(a!.headers.authorization, undefined);
  });

  it('models without a chain keep the single-cluster path: a 503 is the answer, not retried', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 503 });
    const err = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 503);
    assert.equal(h.fakes.openai!.requests.length, 1);
    const rid = err.headers?.get?.('x-request-id') ?? '';
    const log = await accessLogFor(h, rid);
    assert.equal(log.upstream_cluster, 'fake_openai');
    assert.equal(log.attempts, 1);
  });

  it('no retry after a 4xx: the client’s own mistake is not a provider failure', async () => {
    h.fakes.openai!.setNext({ type: 'error', status: 400, message: 'bad request' });
    const err = await client.chat.completions
      .create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    assert.equal(h.fakes.anthropic!.requests.length, 0);
  });
});

describe('fallback fails closed when Envoy and Tollgate disagree', () => {
  // Envoy's chain drifted: priority 1 is the Azure deployment, which Tollgate's chain never listed.
  const DRIFTED = [
    { provider: 'openai' as const, deployment: OPENAI_DEP },
    { provider: 'azure' as const, deployment: AZURE_DEP },
  ];
  const ask = (h: Harness) =>
    new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 10_000 }).chat.completions
      .create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 })
      .then((r) => r, (e: unknown) => e);

  it('an attempt Tollgate did not plan is refused by the upstream stage: the client gets the 503 (no retry), the unplanned provider never gets the prompt', async () => {
    const h = await startChainHarness(DRIFTED);
    try {
      h.fakes.openai!.setNext({ type: 'error', status: 503 });
      const started = Date.now();
      const err = await ask(h);
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 503);
      assert.match(String((err.error as { message?: unknown }).message), /not allowed for this request/);
      assert.equal(h.fakes.azure!.requests.length, 0, 'the unplanned deployment never received the prompt');
      assert.equal(h.fakes.openai!.requests.length, 1, 'a local reply from the upstream filter is not retried');
      assert.ok(Date.now() - started < 5000, 'no stall to the per-try timeout');
      const log = await accessLogFor(h, err.headers?.get?.('x-request-id') ?? '');
      assert.equal(log.attempts, 2, JSON.stringify(log));
    } finally {
      await h.close();
    }
  });
});

describe('attempts may land on any Tollgate replica', () => {
  let h: Harness;
  before(async () => {
    h = await startChainHarness(
      [
        { provider: 'openai', deployment: OPENAI_DEP },
        { provider: 'anthropic', deployment: ANTHROPIC_DEP },
      ],
      { providers: ['openai', 'anthropic'], replicas: 1, modelYaml: MODEL_YAML.replace(/\n  - \{provider: fake-azure.*\n/, '\n') },
    );
  });
  after(() => h.close());

  it('attempts spread over two Tollgate processes (Envoy round-robins every Process stream): still correct, each attempt counted once', async () => {
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 10_000 });
    const all = [h.tollgate, ...h.replicas];
    const metrics = async (t: { httpPort: number }): Promise<string> => (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
    const count = (text: string, provider: string, status: string): number => {
      const m = new RegExp(`^tollgate_fallback_attempts_total\\{[^}]*provider="${provider}"[^}]*status="${status}"[^}]*\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const total = async (provider: string, status: string): Promise<number> => (await Promise.all(all.map(metrics))).reduce((n, t) => n + count(t, provider, status), 0);
    const rounds = 4;
    for (let i = 0; i < rounds; i++) {
      for (const t of all) t.services.health.retain([]);
      h.fakes.openai!.setNext({ type: 'error', status: 503 });
      const { data, response } = await client.chat.completions.create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 }).withResponse();
      assert.ok(data.choices[0]!.message.content);
      assert.equal(response.headers.get('x-tollgate-provider'), 'fake-anthropic');
      assert.equal(h.fakes.anthropic!.requests.at(-1)!.headers.authorization, undefined);
      const rid = response.headers.get('x-request-id')!;
      await eventually(() => lastRecord(h, rid) !== undefined);
      const rec = lastRecord(h, rid)!;
      assert.equal(rec.served?.deployment, ANTHROPIC_DEP);
      // The router-stage process knows an attempt it ran itself; one another process ran is `not_observed`.
      assert.equal(rec.attempts?.length, 2, JSON.stringify(rec.attempts));
      assert.ok([OPENAI_DEP, null].includes(rec.attempts![0]!.deployment ?? null));
      assert.deepEqual([rec.attempts![1]!.deployment, rec.attempts![1]!.status], [ANTHROPIC_DEP, 200]);
    }
    // Each attempt is counted exactly once, by whichever process's upstream stage ran it.
    assert.equal(await total('fake-openai', '503'), rounds);
    assert.equal(await total('fake-anthropic', '200'), rounds);
  });
});
