// Lineage and observability, end to end: the official OpenAI SDK → real Envoy → Tollgate (real gRPC) →
// fake providers. Every outcome must leave exactly one complete, schema-valid lineage record; Envoy dynamic
// metadata, /metrics and `tollgate lineage` must agree with the traffic; and no secret or raw PII may appear
// in anything Tollgate writes (logs, lineage, metrics, dynamic metadata).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { LineageRecord, Outcome } from '../../service/lineage/record.ts';
import { toProtoJson } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../support/fake-providers.ts';
import { JWT_SECRET, KEYS, eventually, signJwt, startHarness, type Harness } from '../support/harness.ts';
import { parsePromText, sampleValue, type Sample } from '../telemetry/promtext.ts';
import { memoryLogger } from '../support/memory-log.ts';

const run = promisify(execFile);
const SLOW_KEY_ENV = 'TG_TEST_SLOW_OPENAI_KEY';
const SLOW_CREDENTIAL = 'test-slow-openai-credential-7f3a';
const SLOW_ANTHROPIC_KEY_ENV = 'TG_TEST_SLOW_ANTHROPIC_KEY';
const SLOW_ANTHROPIC_CREDENTIAL = 'test-slow-anthropic-credential-91c2';
const LONG_REPLY = { text: Array.from({ length: 120 }, (_, i) => `word${i}`).join(' '), usage: { input: 20, output: 120 } };

// ── policies and an extra slow provider, added to the harness config ─────────────────────────────────────
function extraYaml(slow: FakeProvider, slowAnthropic: FakeProvider): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: lineage-e2e}
spec:
  rules:
    - name: forbidden-topic
      deny:
        expression: request.messages.exists(m, m.text.contains('forbidden-topic'))
        reason: forbidden_topic
        message: this topic is not allowed here
    - name: mask-pii
      redact:
        detectors: [email, credit_card]
        action: mask
    - name: acme-monthly
      when: principal.tenant == 'acme'
      budget:
        scope: tenant
        limit: {usd: 100}
        window: month
    - name: globex-one-request
      when: principal.tenant == 'globex'
      budget:
        scope: key
        limit: {requests: 1}
        window: {rollingSeconds: 86400}
    - name: tiny-spender
      when: principal.authMethod == 'jwt' && principal.user == 'tiny-spender'
      budget:
        scope: user
        limit: {usd: 0.000001}
        window: day
    - name: support-rpm
      when: principal.team == 'support'
      rateLimit:
        scope: key
        rpm: 1
    - name: labels
      label:
        team: principal.team
---
apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: slow-openai}
spec:
  api: openai
  cluster: slow_openai
  host: ${slow.host}
  basePath: ${JSON.stringify(slow.basePath)}
  credential: {env: ${SLOW_KEY_ENV}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: slow-gpt}
spec:
  deployments:
  - {provider: slow-openai, model: slow-gpt-upstream, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: slow-anthropic}
spec:
  api: anthropic
  cluster: slow_anthropic
  host: ${slowAnthropic.host}
  basePath: ${JSON.stringify(slowAnthropic.basePath)}
  apiVersion: "2023-06-01"
  credential: {env: ${SLOW_ANTHROPIC_KEY_ENV}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: slow-claude}
spec:
  deployments:
  - {provider: slow-anthropic, model: slow-claude-upstream, region: us-east-1, pricing: {inputPerMillion: 3, outputPerMillion: 15}}
`;
}


interface Started {
  h: Harness;
  slow: FakeProvider;
  slowAnthropic: FakeProvider;
  logs: () => string;
  dir: string;
  lineageFile: string;
  close(): Promise<void>;
}

async function start(): Promise<Started> {
  const slow = await startFakeProvider('openai', { apiKey: SLOW_CREDENTIAL, writeDelayMs: 40, reply: LONG_REPLY });
  const slowAnthropic = await startFakeProvider('anthropic', { apiKey: SLOW_ANTHROPIC_CREDENTIAL, writeDelayMs: 40, reply: LONG_REPLY });
  process.env[SLOW_KEY_ENV] = SLOW_CREDENTIAL;
  process.env[SLOW_ANTHROPIC_KEY_ENV] = SLOW_ANTHROPIC_CREDENTIAL;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lineage-e2e-'));
  const lineageFile = join(dir, 'lineage.jsonl');
  const { log, text } = memoryLogger();
  const clusters = {
    slow_openai: { host: '127.0.0.1', port: slow.port },
    slow_anthropic: { host: '127.0.0.1', port: slowAnthropic.port },
  };
  const h = await startHarness({
    extraYaml: extraYaml(slow, slowAnthropic),
    envoy: { clusters, messageTimeoutMs: 5000 },
    tollgate: { log, lineageSinks: ['stdout', `file:${lineageFile}`] },
  });
  return {
    h,
    slow,
    slowAnthropic,
    logs: text,
    dir,
    lineageFile,
    close: async () => {
      await h.close();
      await slow.close();
      await slowAnthropic.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const client = (h: Harness, key = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 20000 });

interface Ids {
  requestId: string;
  traceId: string;
  parentSpanId: string;
  headers: Record<string, string>;
}

function ids(tag: string): Ids {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  const requestId = `lin-${tag}-${randomBytes(6).toString('hex')}`;
  return { requestId, traceId, parentSpanId, headers: { 'x-request-id': requestId, traceparent: `00-${traceId}-${parentSpanId}-01` } };
}

/**
 * Waits for the record of the request sent with x-request-id `requestId` (kept as the record's
 * `request.clientRequestId`; the record id is Tollgate's own), gives a possible duplicate time to
 * show up, and returns the only one.
 */
async function onlyRecord(h: Harness, requestId: string): Promise<LineageRecord> {
  await eventually(() => h.lineage.some((r) => r.request.clientRequestId === requestId), 10000);
  await h.tollgate.lineage.flush();
  await new Promise((r) => setTimeout(r, 150));
  const all = h.lineage.filter((r) => r.request.clientRequestId === requestId);
  assert.equal(all.length, 1, `exactly one lineage record for ${requestId}, got ${all.length}`);
  return all[0]!;
}

/** Schema validity and the fields every record must have, whatever the outcome. */
function assertComplete(r: LineageRecord, id: Ids, opts: { parsed?: boolean } = {}): void {
  const json = toProtoJson(r);
  assert.deepEqual(validateLineageRecord(json), [], `record matches lineage.proto: ${JSON.stringify(json)}`);
  assert.equal(r.request.clientRequestId, id.requestId, "the client's x-request-id is kept as an attribute");
  assert.match(r.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "the record id is Tollgate's own");
  assert.match(r.decisionId, /^\S{8,}$/);
  assert.ok(r.startTime.getTime() <= r.endTime.getTime(), 'startTime <= endTime');
  assert.ok(r.endTime.getTime() - Date.now() < 5000, 'endTime is now-ish');
  assert.equal(r.request.endpoint, '/v1/chat/completions');
  assert.equal(r.request.method, 'POST');
  assert.equal(r.request.clientApi, 'openai');
  assert.ok((r.request.requestBytes ?? 0) > 0);
  // Content is kept as a digest of the request body once it parsed.
  if (opts.parsed !== false) assert.match(r.content?.promptSha256 ?? '', /^[0-9a-f]{64}$/);
  assert.ok(r.latency && typeof r.latency.totalMs === 'number' && r.latency.totalMs >= 0, 'total latency recorded');
  assert.ok(r.gatewayInstance, 'gateway instance recorded');
  assert.equal(r.principal.authMethod === 'none', false, 'authenticated principal');
  // The caller's trace continues through Tollgate.
  assert.equal(r.trace?.traceId, id.traceId, 'trace id of the caller is carried');
  assert.equal(r.trace?.parentSpanId, id.parentSpanId, "the caller's span is Tollgate's parent");
  assert.match(r.trace?.spanId ?? '', /^[0-9a-f]{16}$/);
  assert.notEqual(r.trace?.spanId, id.parentSpanId);
  assert.equal(r.trace?.sampled, true);
}

/** What the provider received for the request of record `r` (Tollgate sends its own id upstream). */
function providerRequest(f: FakeProvider, r: LineageRecord): RecordedRequest | undefined {
  return f.requests.find((q) => q.headers['x-request-id'] === r.requestId);
}

/** The upstream got a traceparent in the same trace, naming Tollgate's span as parent. */
function assertUpstreamTrace(f: FakeProvider, r: LineageRecord, id: Ids): void {
  const up = providerRequest(f, r);
  assert.ok(up, 'the provider received the request (found by x-request-id)');
  assert.equal(up.headers.traceparent, `00-${id.traceId}-${r.trace!.spanId}-01`, 'upstream traceparent: same trace, Tollgate span as parent');
}

function assertAcmePrincipal(r: LineageRecord): void {
  assert.equal(r.principal.authMethod, 'virtual_key');
  assert.equal(r.principal.keyId, 'test-acme');
  assert.equal(r.principal.tenant, 'acme');
  assert.equal(r.principal.team, 'research');
  assert.equal(r.principal.user, 'alice');
}

async function expectApiError(p: Promise<unknown>, status: number): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `an API error, got ${String(e)}`);
    assert.equal(e.status, status, `HTTP ${status}: ${e.message}`);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

const approx = (a: number | undefined, b: number, what: string): void => {
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} ≈ ${b}`);
};

describe('e2e lineage: exactly one complete record per outcome', { timeout: 180000 }, () => {
  let s: Started;
  let h: Harness;
  const seen: { requestId: string; outcome: Outcome }[] = [];
  before(async () => {
    s = await start();
    h = s.h;
  });
  after(async () => {
    await s?.close();
  });

  it('success, non-stream: principal, served, tokens, cost, decision id, revision, budget charge, trace', async () => {
    const id = ids('ok');
    const { data, response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] }, { headers: id.headers })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    const r = await onlyRecord(h, id.requestId);
    assert.equal(response.headers.get('x-request-id'), r.requestId, "the client gets Tollgate's id back");
    assertComplete(r, id);
    assertAcmePrincipal(r);
    assert.equal(r.outcome, 'success');
    assert.equal(r.statusCode, 200);
    assert.equal(r.errorClass, undefined);
    assert.deepEqual(
      { provider: r.served?.provider, model: r.served?.model, upstreamModel: r.served?.upstreamModel, cluster: r.served?.cluster, region: r.served?.region },
      { provider: 'fake-openai', model: 'gpt-4o-mini', upstreamModel: 'gpt-4o-mini-2024-07-18', cluster: 'fake_openai', region: 'us-east-1' },
    );
    assert.equal(r.attempts?.length, 1);
    assert.equal(r.attempts![0]!.status, 200);
    assert.equal(r.request.requestedModel, 'gpt-4o-mini');
    assert.equal(r.request.stream, false);
    assert.ok((r.request.responseBytes ?? 0) > 0);
    assert.match(r.content?.responseSha256 ?? '', /^[0-9a-f]{64}$/);
    // Tokens the provider reported (fake default usage 12/7) and the cost at the deployment's prices (1 / 2 per 1M).
    assert.equal(data.usage?.prompt_tokens, 12);
    assert.deepEqual({ input: r.tokens?.input, output: r.tokens?.output }, { input: 12, output: 7 });
    approx(r.costUsd, (12 * 1 + 7 * 2) / 1e6, 'costUsd');
    // Decision: the id the client saw, the active policy bundle revision, the rules that applied.
    assert.equal(response.headers.get('x-tollgate-decision-id'), r.decisionId);
    assert.equal(r.policy?.bundleRevision, h.tollgate.holder.snapshot().policy.revision);
    assert.ok(r.policy?.rules?.some((x) => x.policy === 'lineage-e2e' && x.rule === 'acme-monthly' && x.outcome === 'applied'), JSON.stringify(r.policy?.rules));
    assert.equal(r.policy?.labels?.team, 'research');
    // Budget effects: reserved at admission, charged what the request cost, remaining after the charge.
    const b = r.budgets?.find((x) => x.name === 'lineage-e2e/acme-monthly');
    assert.ok(b, `budget effect recorded: ${JSON.stringify(r.budgets)}`);
    assert.equal(b.unit, 'usd');
    assert.equal(b.scopeKey, 'tenant:acme');
    assert.equal(b.limit, 100);
    assert.equal(b.enforcement, 'hard');
    assert.ok((b.reserved ?? 0) >= (r.costUsd ?? 0), 'the reservation covered the cost');
    approx(b.charged, r.costUsd!, 'charged = cost');
    assert.ok(b.remaining !== undefined && b.remaining <= 100 - r.costUsd! + 1e-9 && b.remaining > 99, `remaining ${b.remaining}`);
    assertUpstreamTrace(h.fakes.openai!, r, id);
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('success, stream (OpenAI SDK → Anthropic): usage from the stream, one record after the last chunk', async () => {
    const id = ids('stream');
    const stream = await client(h).chat.completions.create(
      { model: 'claude-sonnet', messages: [{ role: 'user', content: 'Count to three' }], stream: true, stream_options: { include_usage: true } },
      { headers: id.headers },
    );
    let usage: OpenAI.CompletionUsage | undefined | null;
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.ok(text.length > 0);
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id);
    assertAcmePrincipal(r);
    assert.equal(r.outcome, 'success');
    assert.equal(r.statusCode, 200);
    assert.equal(r.request.stream, true);
    assert.equal(r.served?.provider, 'fake-anthropic');
    assert.equal(r.served?.upstreamModel, 'claude-3-5-sonnet-20241022');
    assert.deepEqual({ input: r.tokens?.input, output: r.tokens?.output }, { input: usage!.prompt_tokens, output: usage!.completion_tokens });
    approx(r.costUsd, (12 * 3 + 7 * 15) / 1e6, 'costUsd at claude-sonnet prices');
    const b = r.budgets?.find((x) => x.name === 'lineage-e2e/acme-monthly');
    approx(b?.charged, r.costUsd!, 'stream charged = cost');
    assertUpstreamTrace(h.fakes.anthropic!, r, id);
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('content.responseSha256 is the SHA-256 of exactly the bytes the client received (whole body and stream)', async () => {
    const cases = [
      { tag: 'sha-whole', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] } },
      { tag: 'sha-stream', body: { model: 'claude-sonnet', messages: [{ role: 'user', content: 'Count to three' }], stream: true } },
    ];
    for (const c of cases) {
      const id = ids(c.tag);
      const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { ...id.headers, authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json' },
        body: JSON.stringify(c.body),
        signal: AbortSignal.timeout(20000),
      });
      const got = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, got.toString());
      const r = await onlyRecord(h, id.requestId);
      assert.equal(r.request.responseBytes, got.length, c.tag);
      assert.equal(r.content?.responseSha256, createHash('sha256').update(got).digest('hex'), c.tag);
      if (c.body.stream) assert.match(got.toString(), /data: \[DONE\]\n\n$/);
      seen.push({ requestId: id.requestId, outcome: r.outcome });
    }
  });

  it('policy deny: 403 with the rule message; record names the denying rule, no provider, nothing charged', async () => {
    const id = ids('deny');
    const before = h.fakes.openai!.requests.length;
    const e = await expectApiError(
      client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tell me about forbidden-topic' }] }, { headers: id.headers }),
      403,
    );
    assert.match(e.message, /this topic is not allowed here/);
    assert.equal(h.fakes.openai!.requests.length, before, 'the provider was not called');
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id);
    assertAcmePrincipal(r);
    assert.equal(r.outcome, 'denied');
    assert.equal(r.statusCode, 403);
    assert.equal(r.errorCode, 'forbidden_topic');
    assert.equal(r.served, undefined);
    assert.equal(r.attempts, undefined);
    assert.equal(r.tokens, undefined);
    assert.equal(r.costUsd, undefined);
    assert.equal(r.policy?.bundleRevision, h.tollgate.holder.snapshot().policy.revision);
    const rule = r.policy?.rules?.find((x) => x.rule === 'forbidden-topic');
    assert.equal(rule?.outcome, 'deny', JSON.stringify(r.policy?.rules));
    assert.equal(rule?.kind, 'deny');
    assert.deepEqual(r.budgets ?? [], [], 'a denied request reserves and charges nothing');
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('budget exhausted: 429 budget_exceeded; the first request charged one request, the second none', async () => {
    const first = ids('budget-1');
    await client(h, KEYS.globex).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one' }] }, { headers: first.headers });
    const r1 = await onlyRecord(h, first.requestId);
    const b1 = r1.budgets?.find((x) => x.name === 'lineage-e2e/globex-one-request');
    assert.deepEqual(
      { unit: b1?.unit, limit: b1?.limit, reserved: b1?.reserved, charged: b1?.charged, remaining: b1?.remaining, scopeKey: b1?.scopeKey },
      { unit: 'requests', limit: 1, reserved: 1, charged: 1, remaining: 0, scopeKey: 'key:test-globex' },
    );
    seen.push({ requestId: first.requestId, outcome: r1.outcome });

    const id = ids('budget-2');
    const before = h.fakes.openai!.requests.length;
    const e = await expectApiError(
      client(h, KEYS.globex).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'two' }] }, { headers: id.headers }),
      429,
    );
    assert.ok(Number(e.headers?.get('retry-after')) > 0, 'retry-after');
    assert.equal(h.fakes.openai!.requests.length, before, 'the provider was not called');
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id);
    assert.deepEqual([r.principal.tenant, r.principal.keyId, r.principal.user], ['globex', 'test-globex', 'carol']);
    assert.equal(r.outcome, 'budget_exceeded');
    assert.equal(r.statusCode, 429);
    assert.equal(r.errorCode, 'budget_exceeded');
    assert.equal(r.tokens, undefined);
    assert.ok(r.policy?.rules?.some((x) => x.rule === 'globex-one-request'), 'the budget rule is in the decision');
    assert.equal((r.budgets ?? []).reduce((n, x) => n + (x.charged ?? 0), 0), 0, 'nothing charged');
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('budget that can never admit the request (tiny USD limit): 429, outcome budget_exceeded (not rate_limited)', async () => {
    const id = ids('budget-tiny');
    const token = signJwt({ sub: 'tiny-spender', tenant: 'acme', team: 'research' });
    const e = await expectApiError(
      new OpenAI({ apiKey: token, baseURL: h.baseURL, maxRetries: 0 }).chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        { headers: id.headers },
      ),
      429,
    );
    assert.match(e.message, /Budget "lineage-e2e\/tiny-spender"/);
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id);
    assert.equal(r.principal.authMethod, 'jwt');
    assert.equal(r.principal.user, 'tiny-spender');
    assert.equal(r.statusCode, 429);
    assert.equal(r.outcome, 'budget_exceeded', `a budget stopped it: errorCode ${r.errorCode}`);
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('rate limit: the second request of the minute gets 429 rate_limited', async () => {
    const first = ids('rate-1');
    await client(h, KEYS.acmeSupport).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one' }] }, { headers: first.headers });
    const r1 = await onlyRecord(h, first.requestId);
    assert.equal(r1.outcome, 'success');
    seen.push({ requestId: first.requestId, outcome: r1.outcome });
    const id = ids('rate-2');
    const e = await expectApiError(
      client(h, KEYS.acmeSupport).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'two' }] }, { headers: id.headers }),
      429,
    );
    assert.ok(Number(e.headers?.get('retry-after')) > 0, 'retry-after');
    assert.equal(e.headers?.get('x-ratelimit-limit-requests'), '1');
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id);
    assert.deepEqual([r.principal.tenant, r.principal.team, r.principal.user], ['acme', 'support', 'bob']);
    assert.equal(r.outcome, 'rate_limited');
    assert.equal(r.statusCode, 429);
    assert.equal(r.errorCode, 'rate_limit_exceeded');
    assert.equal(r.attempts, undefined, 'no upstream attempt');
    assert.equal(r.tokens, undefined);
    assert.equal(providerRequest(h.fakes.openai!, r), undefined, 'the provider was not called');
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('client error (malformed JSON): 400; record has the principal and the error, no provider', async () => {
    const id = ids('malformed');
    const res = await fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json', ...id.headers },
      body: '{"model":"gpt-4o-mini","messages":[',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { type: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    const r = await onlyRecord(h, id.requestId);
    assertComplete(r, id, { parsed: false });
    assertAcmePrincipal(r);
    assert.equal(r.outcome, 'client_error');
    assert.equal(r.statusCode, 400);
    assert.equal(r.errorClass, 'invalid_request');
    assert.equal(r.served, undefined);
    assert.equal(r.tokens, undefined);
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  it('unauthenticated (unknown virtual key): 401; one record with no principal, no policy, no provider', async () => {
    const id = ids('unauth');
    const e = await expectApiError(
      client(h, 'tg-test-no-such-key-000000000000000000077').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: id.headers }),
      401,
    );
    assert.equal(e.code, 'invalid_api_key');
    const r = await onlyRecord(h, id.requestId);
    assert.deepEqual(validateLineageRecord(toProtoJson(r)), []);
    assert.equal(r.outcome, 'client_error');
    assert.equal(r.statusCode, 401);
    assert.equal(r.errorClass, 'authentication');
    assert.equal(r.errorCode, 'invalid_api_key');
    assert.deepEqual(r.principal, { authMethod: 'none' });
    assert.equal(r.policy, undefined, 'no policy was evaluated');
    assert.equal(r.served, undefined);
    assert.equal(r.trace?.traceId, id.traceId);
    seen.push({ requestId: id.requestId, outcome: r.outcome });
  });

  /** Streams `model` and aborts with an AbortController after three content chunks. */
  async function streamAndAbort(model: string, id: Ids): Promise<void> {
    const ac = new AbortController();
    const stream = await client(h).chat.completions.create(
      { model, messages: [{ role: 'user', content: 'a long answer please' }], stream: true },
      { headers: id.headers, signal: ac.signal },
    );
    let chunks = 0;
    let finish: string | null | undefined;
    // The SDK ends the iteration quietly when its own signal aborts it.
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content) chunks++;
      finish = c.choices[0]?.finish_reason ?? finish;
      if (chunks === 3) ac.abort();
    }
    assert.equal(chunks, 3, 'aborted after three content chunks');
    assert.equal(finish, undefined, 'the answer was cut short');
  }

  // OpenAI streams report usage only at the end: the aborted stream is charged an estimate. Anthropic reports
  // input tokens in message_start, before any text: those are recorded and charged as reported.
  const aborts = [
    { model: 'slow-gpt', provider: 'slow-openai', fake: () => s.slow, estimated: true, input: undefined, inPrice: 1, outPrice: 2 },
    { model: 'slow-claude', provider: 'slow-anthropic', fake: () => s.slowAnthropic, estimated: false, input: LONG_REPLY.usage.input, inPrice: 3, outPrice: 15 },
  ];
  for (const a of aborts) {
    it(`client abort mid-stream (${a.model}, AbortController): one record, outcome aborted, the usage so far charged`, async () => {
      const id = ids(`abort-${a.model}`);
      await streamAndAbort(a.model, id);
      const r = await onlyRecord(h, id.requestId);
      assertComplete(r, id);
      assertAcmePrincipal(r);
      assert.equal(r.outcome, 'aborted');
      assert.equal(r.errorClass, 'aborted');
      assert.equal(r.statusCode, 200, 'the status that went downstream before the abort');
      assert.equal(r.served?.provider, a.provider);
      assert.equal(r.attempts?.[0]?.errorClass, 'aborted');
      assert.equal(r.request.stream, true);
      const t = r.tokens;
      assert.ok(t && t.input > 0, `tokens recorded: ${JSON.stringify(t)}`);
      if (a.input !== undefined) assert.equal(t.input, a.input, 'input tokens as the provider reported them');
      assert.equal(t.estimated === true, a.estimated, `estimated flag: ${JSON.stringify(t)}`);
      // Anthropic's message_start reports 1 output token; the full count only comes with message_delta.
      if (!a.estimated) assert.equal(t.output, 1, 'output tokens reported so far');
      approx(r.costUsd, (t.input * a.inPrice + t.output * a.outPrice) / 1e6, 'cost of the usage so far');
      const b = r.budgets?.find((x) => x.name === 'lineage-e2e/acme-monthly');
      approx(b?.charged, r.costUsd!, 'the budget is charged what the aborted stream cost');
      assertUpstreamTrace(a.fake(), r, id);
      seen.push({ requestId: id.requestId, outcome: r.outcome });
      // The upstream stream is not drained in the background into a second record.
      await new Promise((res) => setTimeout(res, 500));
      assert.equal(h.lineage.filter((x) => x.request.clientRequestId === id.requestId).length, 1);
    });
  }

  it('without a traceparent Tollgate starts the trace and propagates it upstream', async () => {
    const requestId = `lin-notrace-${randomBytes(6).toString('hex')}`;
    await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'no trace' }] }, { headers: { 'x-request-id': requestId } });
    const r = await onlyRecord(h, requestId);
    assert.deepEqual(validateLineageRecord(toProtoJson(r)), []);
    assert.match(r.trace?.traceId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(r.trace?.parentSpanId, undefined, 'Tollgate is the root span');
    const up = providerRequest(h.fakes.openai!, r);
    assert.equal(up?.headers.traceparent, `00-${r.trace!.traceId}-${r.trace!.spanId}-01`);
    seen.push({ requestId, outcome: r.outcome });
  });

  it('Envoy dynamic metadata (namespace tollgate) carries decision id, tenant, model, provider, tokens, cost', async () => {
    const id = ids('md');
    const { response } = await client(h)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'metadata' }] }, { headers: id.headers })
      .withResponse();
    const r = await onlyRecord(h, id.requestId);
    // What Envoy's access log (the shipped json_format) printed from Tollgate's dynamic metadata.
    await eventually(() => h.envoy.accessLog.some((e) => e.tollgate_decision === r.decisionId));
    const md = h.envoy.accessLog.findLast((e) => e.tollgate_decision === r.decisionId)!;
    assert.equal(md.tollgate_decision, response.headers.get('x-tollgate-decision-id'));
    assert.equal(md.tollgate_policy_revision, r.policy?.bundleRevision);
    assert.equal(md.tollgate_tenant, 'acme');
    assert.equal(md.tollgate_team, 'research');
    assert.equal(md.tollgate_key, 'test-acme');
    assert.equal(md.tollgate_model, 'gpt-4o-mini');
    assert.equal(md.tollgate_provider, 'fake-openai');
    assert.equal(md.tollgate_upstream_model, 'gpt-4o-mini-2024-07-18');
    assert.equal(md.tollgate_input_tokens, r.tokens?.input);
    assert.equal(md.tollgate_output_tokens, r.tokens?.output);
    approx(md.tollgate_cost_usd as number, r.costUsd!, 'metadata cost_usd');
  });

  const providerErrors: { status: number; clientStatus: number }[] = [
    { status: 500, clientStatus: 502 },
    { status: 429, clientStatus: 429 },
  ];
  // Last traffic of this suite: a provider 429 makes passive health skip the deployment for its retry-after.
  for (const pe of providerErrors) {
    it(`provider error ${pe.status}: outcome provider_error, the attempt's status, reservation released`, async () => {
      const id = ids(`provider-${pe.status}`);
      h.fakes.openai!.setNext({ type: 'error', status: pe.status, retryAfter: 1 });
      const e = await expectApiError(
        client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: id.headers }),
        pe.clientStatus,
      );
      if (pe.status === 429) assert.ok(Number(e.headers?.get('retry-after')) >= 1, "the provider's retry-after reaches the client");
      const r = await onlyRecord(h, id.requestId);
      assertComplete(r, id);
      assertAcmePrincipal(r);
      assert.equal(r.outcome, 'provider_error');
      assert.equal(r.statusCode, pe.clientStatus);
      assert.equal(r.served?.provider, 'fake-openai');
      assert.equal(r.attempts?.length, 1);
      assert.equal(r.attempts![0]!.status, pe.status);
      assert.equal(r.attempts![0]!.errorClass, `http_${pe.status}`);
      assert.equal(r.tokens, undefined);
      const b = r.budgets?.find((x) => x.name === 'lineage-e2e/acme-monthly');
      assert.ok(b, 'the reservation appears in the record');
      assert.equal(b.charged ?? 0, 0, 'a failed upstream call is not charged');
      assertUpstreamTrace(h.fakes.openai!, r, id);
      seen.push({ requestId: id.requestId, outcome: r.outcome });
    });
  }

  it('the JSONL sink holds each record exactly once; `tollgate lineage --file` reads them back', async () => {
    await h.tollgate.lineage.flush();
    const lines = readFileSync(s.lineageFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const byId = new Map<string, number>();
    for (const l of lines) {
      const j = JSON.parse(l) as { requestId: string; request: { clientRequestId?: string } };
      assert.deepEqual(validateLineageRecord(j), [], 'every line of the sink matches the schema');
      const cid = j.request.clientRequestId ?? '';
      byId.set(cid, (byId.get(cid) ?? 0) + 1);
    }
    assert.ok(seen.length >= 10, `outcomes covered so far: ${seen.length}`);
    for (const x of seen) assert.equal(byId.get(x.requestId), 1, `${x.requestId} (${x.outcome}) written once`);
    assert.equal(lines.length, h.lineage.length, 'one line per emitted record');

    const seenDenied = seen.find((x) => x.outcome === 'denied')!;
    const target = h.lineage.find((r) => r.request.clientRequestId === seenDenied.requestId)!;
    const one = await run(process.execPath, ['bin/tollgate.js', 'lineage', '--file', s.lineageFile, '--request-id', target.requestId], { cwd: process.cwd(), timeout: 60000 });
    const got = one.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(got.length, 1, one.stdout + one.stderr);
    assert.deepEqual(got[0], toProtoJson(target), 'the CLI prints the stored record');

    const acme = await run(process.execPath, ['bin/tollgate.js', 'lineage', '--file', s.lineageFile, '--tenant', 'globex', '--limit', '5'], { cwd: process.cwd(), timeout: 60000 });
    const globex = acme.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { request: { clientRequestId: string }; principal: { tenant: string }; outcome: string });
    assert.deepEqual(
      globex.map((g) => [g.request.clientRequestId, g.outcome]),
      seen.filter((x) => x.requestId.includes('budget-')).map((x) => [x.requestId, `OUTCOME_${x.outcome.toUpperCase()}`]).filter((x) => !x[0]!.includes('tiny')).reverse(),
      'tenant filter, newest first',
    );
  });
});

describe('e2e observability: /metrics matches the traffic; nothing secret or personal leaks', { timeout: 180000 }, () => {
  let s: Started;
  let h: Harness;
  before(async () => {
    s = await start();
    h = s.h;
  });
  after(async () => {
    await s?.close();
  });

  const scrape = async (): Promise<{ text: string; samples: Sample[] }> => {
    const res = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    return { text, samples: parsePromText(text) };
  };

  it('request, token and cost counters by tenant/model/provider/status match what was sent', async () => {
    const acme = client(h);
    // 3 × gpt-4o-mini OK (12/7 tokens each), 2 × claude-sonnet stream OK (12/7), 1 deny, 1 provider 500, 1 globex OK.
    for (let i = 0; i < 3; i++) await acme.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `m${i}` }] });
    for (let i = 0; i < 2; i++) {
      const st = await acme.chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: `s${i}` }], stream: true });
      for await (const _ of st) void _;
    }
    await expectApiError(acme.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'forbidden-topic' }] }), 403);
    h.fakes.openai!.setNext({ type: 'error', status: 500 });
    await expectApiError(acme.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), 502);
    await client(h, KEYS.globex).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'g' }] });
    await eventually(() => h.lineage.length >= 8, 10000);
    await h.tollgate.lineage.flush();
    const { samples } = await scrape();

    const req = (labels: Record<string, string>) => sampleValue(samples, 'tollgate_requests_total', labels);
    assert.equal(req({ tenant: 'acme', model: 'gpt-4o-mini', provider: 'fake-openai', decision: 'success', status: '200' }), 3);
    assert.equal(req({ tenant: 'acme', model: 'claude-sonnet', provider: 'fake-anthropic', decision: 'success', status: '200' }), 2);
    assert.equal(req({ tenant: 'acme', model: 'gpt-4o-mini', provider: 'none', decision: 'denied', status: '403' }), 1);
    assert.equal(req({ tenant: 'acme', model: 'gpt-4o-mini', provider: 'fake-openai', decision: 'provider_error', status: '502' }), 1);
    assert.equal(req({ tenant: 'globex', model: 'gpt-4o-mini', provider: 'fake-openai', decision: 'success', status: '200' }), 1);
    const total = samples.filter((x) => x.name === 'tollgate_requests_total').reduce((n, x) => n + x.value, 0);
    assert.equal(total, 8, 'every request counted exactly once');

    const tok = (tenant: string, model: string, provider: string, type: string) => sampleValue(samples, 'tollgate_tokens_total', { tenant, model, provider, type });
    assert.equal(tok('acme', 'gpt-4o-mini', 'fake-openai', 'input'), 36);
    assert.equal(tok('acme', 'gpt-4o-mini', 'fake-openai', 'output'), 21);
    assert.equal(tok('acme', 'claude-sonnet', 'fake-anthropic', 'input'), 24);
    assert.equal(tok('acme', 'claude-sonnet', 'fake-anthropic', 'output'), 14);
    assert.equal(tok('globex', 'gpt-4o-mini', 'fake-openai', 'input'), 12);
    const cost = sampleValue(samples, 'tollgate_cost_usd_total', { tenant: 'acme', model: 'gpt-4o-mini', provider: 'fake-openai' });
    approx(cost, (3 * (12 + 14)) / 1e6, 'cost counter');
    assert.equal(sampleValue(samples, 'tollgate_upstream_attempts_total', { provider: 'fake-openai', status: '500' }), 1);
    assert.equal(sampleValue(samples, 'tollgate_lineage_records_emitted_total'), 8);
    for (const sink of ['stdout', 'file']) assert.equal(sampleValue(samples, 'tollgate_lineage_records_written_total', { sink }), 8, `${sink} sink wrote all`);
    assert.equal(samples.filter((x) => x.name === 'tollgate_lineage_records_dropped_total').reduce((n, x) => n + x.value, 0), 0, 'nothing lost');
    assert.equal(sampleValue(samples, 'tollgate_config_info', { revision: h.tollgate.holder.snapshot().revision }), 1);
  });

  it('a hard budget denial names the exceeded budget in lineage and counts in tollgate_budget_exceeded_total', async () => {
    // The previous test spent globex's one request of the day.
    const requestId = `lin-budget-metric-${randomBytes(6).toString('hex')}`;
    await expectApiError(client(h, KEYS.globex).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }] }, { headers: { 'x-request-id': requestId } }), 429);
    const r = await onlyRecord(h, requestId);
    assert.equal(r.outcome, 'budget_exceeded');
    const b = r.budgets?.find((x) => x.name === 'lineage-e2e/globex-one-request');
    assert.ok(b, `the exceeded budget is in the record: ${JSON.stringify(r.budgets)}`);
    assert.deepEqual(
      { exceeded: b.exceeded, enforcement: b.enforcement, unit: b.unit, limit: b.limit, remaining: b.remaining, charged: b.charged ?? 0 },
      { exceeded: true, enforcement: 'hard', unit: 'requests', limit: 1, remaining: 0, charged: 0 },
    );
    const { samples } = await scrape();
    assert.equal(sampleValue(samples, 'tollgate_budget_exceeded_total', { budget: 'lineage-e2e/globex-one-request', tenant: 'globex' }), 1);
  });

  it('no secret and no raw PII in logs, lineage (all sinks), /metrics or dynamic metadata', async () => {
    const email = 'jane.doe.lineage@example.com';
    const card = '4111 1111 1111 1111';
    const openaiCred = h.fakes.openai!.credential!;
    const anthropicCred = h.fakes.anthropic!.credential!;
    const secrets = [KEYS.acme, KEYS.globex, openaiCred, anthropicCred, SLOW_CREDENTIAL, SLOW_ANTHROPIC_CREDENTIAL, email, card, card.replace(/ /g, ''), JWT_SECRET];
    const content = `My email is ${email}, card ${card}. My key is ${KEYS.acme} and the upstream key is ${openaiCred}.`;
    const id = ids('pii');
    await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { headers: id.headers });
    const st = await client(h).chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content }], stream: true });
    for await (const _ of st) void _;
    await expectApiError(client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `forbidden-topic ${content}` }] }), 403);
    h.fakes.openai!.setNext({ type: 'error', status: 500, message: `upstream echo ${content}` });
    await expectApiError(client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }), 502);
    const bad = await fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json' },
      body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${content}"}`,
    });
    assert.equal(bad.status, 400);
    // An unknown key that looks like a secret is not echoed either.
    const unknownKey = 'tg-test-unknown-key-00000000000000000042';
    secrets.push(unknownKey);
    await expectApiError(client(h, unknownKey).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }), 401);
    await eventually(() => h.lineage.length >= 15, 10000);
    await h.tollgate.lineage.flush();

    // The request was redacted before it left: the provider saw masks, and lineage counts them (no values).
    const r = await onlyRecord(h, id.requestId);
    const up = providerRequest(h.fakes.openai!, r)!;
    const upText = up.body.toString('utf8');
    assert.ok(!upText.includes(email) && !upText.includes(card), 'the provider never saw the raw PII');
    const counted = new Map((r.redactions ?? []).map((x) => [x.detector, x.count]));
    assert.equal(counted.get('email'), 1, JSON.stringify(r.redactions));
    assert.equal(counted.get('credit_card'), 1, JSON.stringify(r.redactions));

    const outputs: Record<string, string> = {
      logs: s.logs(),
      lineageRecords: h.lineage.map((x) => JSON.stringify(toProtoJson(x))).join('\n'),
      lineageFile: readFileSync(s.lineageFile, 'utf8'),
      metrics: (await scrape()).text,
      envoyAccessLog: JSON.stringify(h.envoy.accessLog),
    };
    assert.ok(outputs.logs!.includes('"msg":"lineage"'), 'the stdout sink wrote lineage into the captured log');
    assert.ok(outputs.lineageFile!.includes(id.requestId));
    for (const [where, text] of Object.entries(outputs)) {
      assert.ok(text.length > 0, `${where} captured`);
      for (const secret of secrets) assert.ok(!text.includes(secret), `${where} must not contain ${JSON.stringify(secret)}`);
    }
    assert.ok(!/lineage record does not match the schema/.test(outputs.logs!), 'the emitter validated every record');
  });
});
