// Budgets, quotas and rate limits end to end (in-process budget store): the official OpenAI SDK →
// real Envoy → Tollgate (policies attach budgets / rate limits) → fake providers. What a client
// sees (429 RateLimitError in OpenAI shape, retry-after, x-ratelimit-* / x-tollgate-budget-*), what
// is charged afterwards (/v1/spend and the budget manager), and that nothing stays reserved.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError, RateLimitError } from 'openai';
import type { SpendRow } from '../../service/budget/index.ts';
import { hashKey } from '../../service/identity/keys.ts';
import { eventually, startHarness, type Harness } from '../support/harness.ts';
import type { RenderCluster } from '../../service/envoy/render.ts';

/** /v1/spend is published only with TOLLGATE_SPEND_API=on and an admin token. */
const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef';

// ---------------------------------------------------------------- local helpers

/** Virtual keys this file adds (metadata.name is the key id: scope `key:<name>`). */
const K = {
  hierR1: 'tg-e2e-budget-hier-research-1-00000000001',
  hierR2: 'tg-e2e-budget-hier-research-2-00000000001',
  hierS1: 'tg-e2e-budget-hier-support-1-000000000001',
  usd: 'tg-e2e-budget-usd-key-0000000000000000001',
  tokens: 'tg-e2e-budget-tokens-key-00000000000000001',
  never: 'tg-e2e-budget-never-key-000000000000000001',
  rpm: 'tg-e2e-budget-rpm-key-0000000000000000001',
  rpmOther: 'tg-e2e-budget-rpm-other-00000000000000001',
  par: 'tg-e2e-budget-parallel-key-000000000000001',
  rec: 'tg-e2e-budget-reconcile-key-00000000000001',
};

interface Gate {
  /** Resolves when the upstream request arrived and the first chunks were written. */
  started: Promise<void>;
  release(): void;
}

/** An OpenAI-compatible upstream that streams the first chunks, then waits for `release()`. */
interface GatedProvider {
  port: number;
  requests: number;
  /** Arms the next request: it is held after its first content chunk. */
  hold(): Gate;
  close(): Promise<void>;
}

async function startGatedProvider(usage: { input: number; output: number }): Promise<GatedProvider> {
  const gates: Array<{ started: () => void; wait: Promise<void> }> = [];
  const sockets = new Set<Socket>();
  const base = { id: 'chatcmpl-gated', object: 'chat.completion.chunk', created: 1700000000, model: 'slow-upstream' };
  const chunk = (delta: object, finish: string | null = null): string =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null })}\n\n`;
  const p: GatedProvider = {
    port: 0,
    requests: 0,
    hold() {
      let started!: () => void;
      let release!: () => void;
      const s = new Promise<void>((r) => (started = r));
      const wait = new Promise<void>((r) => (release = r));
      gates.push({ started, wait });
      return { started: s, release };
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    p.requests++;
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { stream?: boolean; stream_options?: { include_usage?: boolean } };
    const usageObj = { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output };
    if (!body.stream) {
      const b = JSON.stringify({
        id: 'chatcmpl-gated',
        object: 'chat.completion',
        created: 1700000000,
        model: 'slow-upstream',
        choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, logprobs: null, finish_reason: 'stop' }],
        usage: usageObj,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(b)) });
      res.end(b);
      return;
    }
    const gate = gates.shift();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(chunk({ role: 'assistant', content: '' }));
    res.write(chunk({ content: 'first ' }));
    gate?.started();
    if (gate) await gate.wait;
    if (res.destroyed) return;
    for (const w of ['second ', 'third']) res.write(chunk({ content: w }));
    res.write(chunk({}, 'stop'));
    if (body.stream_options?.include_usage) res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: usageObj })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.port = (server.address() as AddressInfo).port;
  return p;
}

const doc = (kind: string, name: string, spec: string): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n---\n`;

function extraYaml(gatedPort: number): string {
  const keys: Array<[string, string, string, string]> = [
    // name, secret, tenant, team
    ['hier-r1', K.hierR1, 'e2e-hier', 'e2e-hier-research'],
    ['hier-r2', K.hierR2, 'e2e-hier', 'e2e-hier-research'],
    ['hier-s1', K.hierS1, 'e2e-hier', 'e2e-hier-support'],
    ['usd-key', K.usd, 'e2e-usd', 'e2e-usd-team'],
    ['tokens-key', K.tokens, 'e2e-tokens', 'e2e-tokens-team'],
    ['never-key', K.never, 'e2e-tokens', 'e2e-tokens-team'],
    ['rpm-key', K.rpm, 'e2e-rpm', 'e2e-rpm-team'],
    ['rpm-other', K.rpmOther, 'e2e-rpm', 'e2e-rpm-team'],
    ['par-key', K.par, 'e2e-par', 'e2e-par-team'],
    ['rec-key', K.rec, 'e2e-rec', 'e2e-rec-team'],
  ];
  const tenants = [...new Set(keys.map((k) => k[2]))];
  const teams = [...new Map(keys.map((k) => [k[3], k[2]]))];
  let y = '';
  for (const t of tenants) y += doc('Tenant', t, '{}');
  for (const [team, tenant] of teams) y += doc('Team', team, `{tenant: ${tenant}}`);
  for (const [name, secret, tenant, team] of keys) y += doc('VirtualKey', name, `{sha256: ${hashKey(secret)}, tenant: ${tenant}, team: ${team}, user: ${name}}`);
  y += doc('Provider', 'gated', `{api: openai, cluster: gated, host: "127.0.0.1:${gatedPort}", basePath: /v1, credential: {none: true}}`);
  y += doc('Model', 'slow-model', '{deployments: [{provider: gated, model: slow-upstream, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}]}');
  y += `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: e2e-budgets}
spec:
  rules:
    # hierarchical: key ≤ 2, team ≤ 3, tenant ≤ 4 requests a day
    - name: hier-key
      when: principal.tenant == 'e2e-hier'
      budget: {scope: key, limit: {requests: 2}, window: day}
    - name: hier-team
      when: principal.tenant == 'e2e-hier'
      budget: {scope: team, limit: {requests: 3}, window: day}
    - name: hier-tenant
      when: principal.tenant == 'e2e-hier'
      budget: {scope: tenant, limit: {requests: 4}, window: day}
    # USD per key
    - name: usd-key
      when: principal.tenant == 'e2e-usd'
      budget: {scope: key, limit: {usd: 0.0001}, window: day}
    # tokens per key, and a total-token cap that one big request can never fit
    - name: out-tokens
      when: principal.keyId == 'tokens-key'
      budget: {scope: key, limit: {outputTokens: 30}, window: {rollingSeconds: 3600}}
    - name: total-tokens
      when: principal.keyId == 'never-key'
      budget: {scope: key, limit: {totalTokens: 1000}, window: month}
    # rate limits
    - name: rpm
      when: principal.tenant == 'e2e-rpm'
      rateLimit: {scope: key, rpm: 3}
    - name: parallel
      when: principal.tenant == 'e2e-par'
      rateLimit: {scope: key, maxParallel: 1}
    # reconciliation: a roomy USD budget per team and tenant
    - name: rec-team
      when: principal.tenant == 'e2e-rec'
      budget: {scope: team, limit: {usd: 10}, window: month}
    - name: rec-tenant
      when: principal.tenant == 'e2e-rec'
      budget: {scope: tenant, limit: {usd: 100, requests: 1000}, window: day}
`;
  return y;
}

const HI: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

function rateLimited(e: unknown): RateLimitError {
  assert.ok(e instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${String(e)}`);
  assert.equal(e.status, 429);
  return e;
}

async function expect429(p: Promise<unknown>): Promise<RateLimitError> {
  try {
    await p;
  } catch (e) {
    return rateLimited(e);
  }
  assert.fail('expected a 429');
}

// ---------------------------------------------------------------- tests

describe('e2e budgets and rate limits (memory store)', { timeout: 120_000 }, () => {
  let h: Harness;
  let gated: GatedProvider;
  const clusters: Record<string, RenderCluster> = {};
  const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15_000 });
  const spend = (tenant: string, scope?: string): Promise<SpendRow[]> => h.tollgate.budgets.spend({ tenant, scopeKey: scope });
  const one = async (tenant: string, scope: string): Promise<SpendRow> => {
    const rows = await spend(tenant, scope);
    assert.equal(rows.length, 1, `one counter for ${scope}: ${JSON.stringify(rows)}`);
    return rows[0]!;
  };
  const lineageOf = async (requestId: string | null) => {
    assert.ok(requestId);
    await eventually(() => h.lineage.some((l) => l.requestId === requestId), 5000);
    return h.lineage.find((l) => l.requestId === requestId)!;
  };

  before(async () => {
    gated = await startGatedProvider({ input: 40, output: 30 });
    // An extra Envoy cluster for the gated provider; the harness adds the fakes' own clusters.
    clusters.gated = { host: '127.0.0.1', port: gated.port };
    h = await startHarness({ extraYaml: extraYaml(gated.port), envoy: { clusters }, tollgate: { spendApi: true, adminTokens: [ADMIN_TOKEN] } });
    // (fake provider clusters come from the harness)
    // (fake provider clusters come from the harness)
  });
  after(async () => {
    await h?.close();
    await gated?.close();
  });

  it('hierarchical key → team → tenant request budgets: a request must fit every one, the tightest names itself', async () => {
    const steps: Array<{ key: string; ok: boolean; deniedBy?: string; scope?: string }> = [
      { key: K.hierR1, ok: true },
      { key: K.hierR1, ok: true },
      { key: K.hierR1, ok: false, deniedBy: 'e2e-budgets/hier-key', scope: 'key:hier-r1' }, // key 2/2
      { key: K.hierR2, ok: true }, // team research now 3/3
      { key: K.hierR2, ok: false, deniedBy: 'e2e-budgets/hier-team', scope: 'team:e2e-hier/e2e-hier-research' },
      { key: K.hierS1, ok: true }, // tenant now 4/4
      { key: K.hierS1, ok: false, deniedBy: 'e2e-budgets/hier-tenant', scope: 'tenant:e2e-hier' }, // its key has 1 left, its team 2
    ];
    for (const [i, s] of steps.entries()) {
      const before = h.fakes.openai!.requests.length;
      if (s.ok) {
        const { response } = await client(s.key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 16 }).withResponse();
        assert.equal(response.status, 200, `step ${i}`);
        assert.equal(h.fakes.openai!.requests.length, before + 1);
        continue;
      }
      const e = await expect429(client(s.key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 16 }));
      assert.equal(e.code, 'budget_exceeded', `step ${i}`);
      assert.equal(e.type, 'rate_limit_exceeded'); // OpenAI's own 429s use this string (as type or code)
      assert.equal((e.error as { param?: unknown }).param, null);
      assert.match(e.message, new RegExp(`Budget "${s.deniedBy}" \\(${s.scope!.replace(/[/]/g, '\\/')}\\) exceeded`));
      assert.equal(e.headers.get('x-tollgate-budget-name'), s.deniedBy);
      // A calendar day budget: retry when the window resets (in whole seconds, ≤ one day).
      const ra = Number(e.headers.get('retry-after'));
      assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 86_400, `retry-after ${ra}`);
      assert.equal(h.fakes.openai!.requests.length, before, 'a denied request never reaches the provider');
    }
    // Each level counted exactly the admitted requests (denials reserve nothing).
    const used: Record<string, number> = {
      'key:hier-r1': 2,
      'key:hier-r2': 1,
      'key:hier-s1': 1,
      'team:e2e-hier/e2e-hier-research': 3,
      'team:e2e-hier/e2e-hier-support': 1,
      'tenant:e2e-hier': 4,
    };
    for (const [scope, n] of Object.entries(used)) {
      const r = await one('e2e-hier', scope);
      assert.equal(r.requests, n, scope);
      assert.equal(r.inFlight, 0, scope);
    }
  });

  it('USD budget per key: admitted responses carry the budget headers; over budget → 429 with the remaining amount', async () => {
    const c = client(K.usd);
    const seen: string[] = [];
    let admitted = 0;
    // Each request reserves about $0.000028 (prompt estimate × $1/M + 10 × $2/M) and is charged
    // $0.000026 (12 in × $1/M + 7 out × $2/M) by the fake provider's usage.
    for (let i = 0; i < 6; i++) {
      try {
        const { response } = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 10 }).withResponse();
        admitted++;
        assert.equal(response.headers.get('x-tollgate-budget-name'), 'e2e-budgets/usd-key');
        assert.equal(response.headers.get('x-tollgate-budget-limit-usd'), '0.0001');
        const reset = response.headers.get('x-tollgate-budget-reset');
        assert.ok(reset && Date.parse(reset) > Date.now(), `reset ${reset}`);
        seen.push(response.headers.get('x-tollgate-budget-remaining-usd')!);
      } catch (e) {
        const err = rateLimited(e);
        assert.equal(err.code, 'budget_exceeded');
        assert.equal(err.headers.get('x-tollgate-budget-name'), 'e2e-budgets/usd-key');
        assert.equal(err.headers.get('x-tollgate-budget-limit-usd'), '0.0001');
        // Remaining is the limit minus what was actually charged: 0.0001 − 3 × 0.000026.
        assert.equal(err.headers.get('x-tollgate-budget-remaining-usd'), '0.000022');
        assert.ok(Number(err.headers.get('retry-after')) >= 1);
        assert.match(err.message, /Budget "e2e-budgets\/usd-key" \(key:usd-key\) exceeded: this request needs up to \$0\.0000\d+, \$0\.000022 of \$0\.0001 remain; the window resets at \d{4}-/);
        // Lineage records the refusal and the budget that caused it.
        const rec = await lineageOf(err.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'budget_exceeded');
        assert.ok(rec.budgets?.some((b) => b.name === 'e2e-budgets/usd-key' && b.exceeded === true), JSON.stringify(rec.budgets));
        break;
      }
    }
    assert.equal(admitted, 3, `admitted ${admitted}, remaining headers ${seen.join(' ')}`);
    // Remaining shown at admission = limit − charged so far − this request's hold: strictly falling.
    const nums = seen.map(Number);
    for (let i = 1; i < nums.length; i++) assert.ok(nums[i]! < nums[i - 1]!, `remaining falls: ${seen.join(' ')}`);
    const r = await one('e2e-usd', 'key:usd-key');
    assert.equal(r.requests, 3);
    assert.ok(Math.abs(r.usd - 3 * 0.000026) < 1e-12, `charged ${r.usd}`);
    assert.equal(r.reservedUsd, 0);
  });

  it('token budget: charged at actual output tokens (not at max_tokens), so a third request still fits', async () => {
    // outputTokens ≤ 30; each request holds max_tokens = 12 and is charged 7 (the provider's usage).
    // Charging holds would admit 2; charging actual usage admits 3 (21 + 12 = 33 > 30 stops the 4th).
    const c = client(K.tokens);
    let admitted = 0;
    for (let i = 0; i < 5; i++) {
      try {
        await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 12 });
        admitted++;
      } catch (e) {
        const err = rateLimited(e);
        assert.equal(err.code, 'budget_exceeded');
        assert.match(err.message, /needs up to 12 output tokens, 9 output tokens of 30 output tokens remain/);
        // Rolling window: retry when enough old usage leaves it (≤ 1 h + one bucket).
        const ra = Number(err.headers.get('retry-after'));
        assert.ok(ra >= 1 && ra <= 3600 + 60, `retry-after ${ra}`);
        break;
      }
    }
    assert.equal(admitted, 3);
    const r = await one('e2e-tokens', 'key:tokens-key');
    assert.equal(r.outputTokens, 21);
    assert.equal(r.inputTokens, 36);
  });

  it('a request larger than the whole limit is refused with request_exceeds_limit (no retry-after: it can never fit)', async () => {
    const before = h.fakes.openai!.requests.length;
    const e = await expect429(client(K.never).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 2000 }));
    assert.equal(e.code, 'request_exceeds_limit');
    assert.match(e.message, /can never admit this request: it needs up to \d+ tokens but the limit is 1000 tokens\. Lower max_tokens/);
    assert.equal(e.headers.get('retry-after'), null);
    assert.equal(h.fakes.openai!.requests.length, before);
    // A small one passes.
    await client(K.never).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 100 });
  });

  it('rpm: x-ratelimit-* headers count down, the 4th request in a minute is a 429 with retry-after; other keys are unaffected', async () => {
    const c = client(K.rpm);
    for (let i = 0; i < 3; i++) {
      const { response } = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 8 }).withResponse();
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(2 - i));
    }
    const e = await expect429(c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 8 }));
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.headers.get('x-ratelimit-limit-requests'), '3');
    assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(e.headers.get('x-tollgate-budget-name'), 'e2e-budgets/rpm');
    const ra = Number(e.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 61, `retry-after ${ra}`);
    assert.match(e.message, /Rate limit "e2e-budgets\/rpm" \(key:rpm-key\) exceeded: .* of 3 requests per minute remain/);
    // A denied request did not count against the window: the other key of the tenant has its own 3.
    const { response } = await client(K.rpmOther).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 8 }).withResponse();
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '2');
    const r = await one('e2e-rpm', 'key:rpm-key');
    assert.equal(r.requests, 3);
  });

  it('maxParallel 1: while a slow stream is open a second request is refused; after it finishes one is admitted', async () => {
    const c = client(K.par);
    const gate = gated.hold();
    const stream = await c.chat.completions.create({ model: 'slow-model', messages: HI, stream: true, max_tokens: 50 });
    const it1 = stream[Symbol.asyncIterator]();
    const first = await it1.next();
    assert.equal(first.done, false);
    await gate.started;
    const r0 = await one('e2e-par', 'key:par-key');
    assert.equal(r0.inFlight, 1, 'the open stream holds the only slot');

    const e = await expect429(c.chat.completions.create({ model: 'slow-model', messages: HI, max_tokens: 50 }));
    assert.equal(e.code, 'concurrency_limit_exceeded');
    assert.equal(e.headers.get('retry-after'), '1');
    assert.equal(e.headers.get('x-tollgate-budget-name'), 'e2e-budgets/parallel');
    assert.match(e.message, /Concurrency limit "e2e-budgets\/parallel" \(key:par-key\) reached: 1 requests in flight, maximum 1/);
    assert.equal(gated.requests, 1, 'the refused request never reached the provider');

    gate.release();
    let text = (first.value as OpenAI.ChatCompletionChunk).choices[0]?.delta?.content ?? '';
    for (let n = await it1.next(); !n.done; n = await it1.next()) text += n.value.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'first second third');
    // The slot is freed when the stream's end is processed (asynchronously after the last byte).
    await eventually(() => h.lineage.some((l) => l.principal.keyId === 'par-key' && l.outcome === 'success'), 5000);
    const res = await c.chat.completions.create({ model: 'slow-model', messages: HI, max_tokens: 50 });
    assert.equal(res.choices[0]!.message.content, 'done');
    assert.equal(gated.requests, 2);
    const r = await one('e2e-par', 'key:par-key');
    assert.equal(r.inFlight, 0);
  });

  describe('reconciliation: the charge is the provider-reported usage × the deployment price', () => {
    it('non-stream: team and tenant counters are charged exactly, nothing stays reserved; /v1/spend agrees', async () => {
      const before = await one('e2e-rec', 'tenant:e2e-rec').catch(() => undefined);
      h.fakes.openai!.setNext({ type: 'reply', reply: { usage: { input: 1234, output: 567 } } });
      const { data, response } = await client(K.rec).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 1000 }).withResponse();
      assert.equal(data.usage!.prompt_tokens, 1234);
      // $1/M in, $2/M out: 1234e-6 + 1134e-6.
      const usd = 0.002368;
      const rec = await lineageOf(response.headers.get('x-request-id'));
      assert.ok(Math.abs((rec.costUsd ?? 0) - usd) < 1e-12, `lineage cost ${rec.costUsd}`);
      const team = await one('e2e-rec', 'team:e2e-rec/e2e-rec-team');
      const tenant = await one('e2e-rec', 'tenant:e2e-rec');
      for (const row of [team, tenant]) {
        assert.ok(Math.abs(row.usd - (before?.usd ?? 0) - usd) < 1e-12, `${row.scopeKey} usd ${row.usd}`);
        assert.equal(row.inputTokens - (before?.inputTokens ?? 0), 1234);
        assert.equal(row.outputTokens - (before?.outputTokens ?? 0), 567);
        assert.equal(row.reservedUsd, 0);
        assert.equal(row.inFlight, 0);
      }
      // The lineage budget effects say what was charged.
      const eff = rec.budgets?.find((b) => b.name === 'e2e-budgets/rec-team' && b.unit === 'usd');
      assert.ok(eff, JSON.stringify(rec.budgets));
      assert.ok(Math.abs((eff.charged ?? 0) - usd) < 1e-12, JSON.stringify(eff));
      // The HTTP endpoint `tollgate spend` reads shows the same numbers.
      const res = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/v1/spend?tenant=e2e-rec&scope=tenant:e2e-rec`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.status, 200);
      const json = (await res.json()) as { rows: SpendRow[] };
      assert.equal(json.rows.length, 1);
      assert.equal(json.rows[0]!.usd, tenant.usd);
      assert.equal(json.rows[0]!.requests, tenant.requests);
      assert.equal(json.rows[0]!.limits['e2e-budgets/rec-tenant:usd'], 100);
    });

    it('stream (OpenAI SDK, include_usage): charged from the usage chunk; the client sees that usage', async () => {
      const before = await one('e2e-rec', 'tenant:e2e-rec');
      h.fakes.openai!.setNext({ type: 'reply', reply: { usage: { input: 321, output: 123 }, text: 'a streamed answer of a few words' } });
      const stream = await client(K.rec).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, stream_options: { include_usage: true }, max_tokens: 500 });
      let usage: OpenAI.CompletionUsage | null | undefined;
      let text = '';
      for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? '';
        if (c.usage) usage = c.usage;
      }
      assert.equal(text, 'a streamed answer of a few words');
      assert.equal(usage?.prompt_tokens, 321);
      assert.equal(usage?.completion_tokens, 123);
      const usd = (321 * 1 + 123 * 2) / 1e6;
      await eventually(() => h.lineage.filter((l) => l.principal.keyId === 'rec-key').length >= 2, 5000);
      const after = await one('e2e-rec', 'tenant:e2e-rec');
      assert.ok(Math.abs(after.usd - before.usd - usd) < 1e-12, `charged ${after.usd - before.usd}, want ${usd}`);
      assert.equal(after.inputTokens - before.inputTokens, 321);
      assert.equal(after.outputTokens - before.outputTokens, 123);
      assert.equal(after.requests - before.requests, 1);
      assert.equal(after.reservedUsd, 0);
      assert.equal(after.inFlight, 0);
    });

    it('stream without include_usage from the client: Tollgate asks upstream for usage and still charges it', async () => {
      const before = await one('e2e-rec', 'tenant:e2e-rec');
      h.fakes.openai!.setNext({ type: 'reply', reply: { usage: { input: 50, output: 25 } } });
      const stream = await client(K.rec).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, max_tokens: 100 });
      let sawUsage = false;
      for await (const c of stream) if (c.usage) sawUsage = true;
      assert.equal(sawUsage, false, 'the client did not ask for usage, so it gets no usage chunk');
      await eventually(() => h.lineage.filter((l) => l.principal.keyId === 'rec-key').length >= 3, 5000);
      const after = await one('e2e-rec', 'tenant:e2e-rec');
      assert.ok(Math.abs(after.usd - before.usd - 100e-6) < 1e-12, `charged ${after.usd - before.usd}`);
      assert.equal(after.inFlight, 0);
    });

    it('a stream the client aborts mid-way leaves nothing reserved, and charges at most its hold', async () => {
      // The gated upstream sends a first chunk and then waits; the client aborts after that chunk.
      const tenantBefore = await one('e2e-rec', 'tenant:e2e-rec');
      const lineageBefore = h.lineage.length;
      const gate = gated.hold();
      const ac = new AbortController();
      const stream = await client(K.rec).chat.completions.create(
        { model: 'slow-model', messages: HI, stream: true, stream_options: { include_usage: true }, max_tokens: 200 },
        { signal: ac.signal },
      );
      const it1 = stream[Symbol.asyncIterator]();
      const first = await it1.next();
      assert.equal(first.done, false);
      await gate.started;
      const mid = await one('e2e-rec', 'tenant:e2e-rec');
      assert.equal(mid.inFlight, 1, 'held while streaming');
      assert.ok(mid.reservedUsd > 0);
      ac.abort();
      // The SDK ends an aborted stream quietly (chunks already parsed may still be handed out).
      let rest = '';
      for (let n = await it1.next(); !n.done; n = await it1.next()) rest += n.value.choices[0]?.delta?.content ?? '';
      assert.ok(!rest.includes('third'), 'nothing after the abort');
      // Envoy resets the ext_proc stream when the client goes away: Tollgate ends the exchange as
      // aborted while the upstream is still mid-stream (the gate is released only afterwards).
      await eventually(() => h.lineage.slice(lineageBefore).some((l) => l.principal.keyId === 'rec-key' && l.outcome === 'aborted'), 10_000);
      gate.release();
      const rec = h.lineage.slice(lineageBefore).find((l) => l.principal.keyId === 'rec-key' && l.outcome === 'aborted')!;
      const after = await one('e2e-rec', 'tenant:e2e-rec');
      assert.equal(after.inFlight, 0, 'the hold is gone');
      assert.equal(after.reservedUsd, 0);
      const charged = after.usd - tenantBefore.usd;
      assert.ok(charged >= 0 && charged <= mid.reservedUsd + 1e-12, `charged ${charged}, hold was ${mid.reservedUsd}`);
      // Whatever was charged is what lineage says it charged.
      const eff = rec.budgets?.find((b) => b.name === 'e2e-budgets/rec-tenant' && b.unit === 'usd');
      assert.ok(eff, JSON.stringify(rec.budgets));
      assert.ok(Math.abs((eff.charged ?? 0) - charged) < 1e-12, `lineage charged ${eff.charged}, counter ${charged}`);
      // Either released (0, not counted) or the consumed part committed (counted, estimated tokens).
      if (charged === 0) assert.equal(after.requests, tenantBefore.requests);
      else {
        assert.equal(after.requests, tenantBefore.requests + 1);
        assert.equal(rec.tokens?.estimated, true, JSON.stringify(rec.tokens));
      }
      process.stdout.write(`# aborted stream: charged $${charged.toFixed(9)} (hold was $${mid.reservedUsd.toFixed(9)})\n`);
    });
  });
});
