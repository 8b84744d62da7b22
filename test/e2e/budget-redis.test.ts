// Budgets through Redis, end to end: the OpenAI SDK → real Envoy → Tollgate with a RedisStore.
//  1. The shared Redis (127.0.0.1:6379): over-budget 429s and exact reconciliation, with counters
//     that must not collide with other runs. Tollgate offers no key-prefix option (app.ts passes no
//     `prefix` to createBudgetStore, so every key is `tg:{<tenant>}:…`): this file uses a tenant
//     name unique to the run and deletes only `tg:{<that tenant>}:*` afterwards.
//  2. A PRIVATE redis-server (random port) killed mid-run and restarted: failClosed (503
//     budget_store_unavailable), failOpen (admitted, flagged) and local (per-replica share) modes,
//     no crash, and recovery (local spend replayed into Redis) when it returns.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI, { APIError, RateLimitError } from 'openai';
import type { SpendRow } from '../../service/budget/index.ts';
import { hashKey } from '../../service/identity/keys.ts';
import { eventually, startHarness, type Harness } from '../support/harness.ts';
import { PrivateRedis } from '../lineage/redis-server.ts';
import { testRedisUrl } from '../support/redis.ts';

const SHARED_REDIS = testRedisUrl();
/** /v1/spend is published only with TOLLGATE_SPEND_API=on and an admin token. */
const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef';
const HI: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

const doc = (kind: string, name: string, spec: string): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n---\n`;

/** Tenant + team + keys (key id = `<tenant>-<suffix>`), secrets derived from the tenant. */
function principals(tenant: string, suffixes: string[]): { yaml: string; keys: Record<string, string> } {
  let yaml = doc('Tenant', tenant, '{}') + doc('Team', `${tenant}-team`, `{tenant: ${tenant}}`);
  const keys: Record<string, string> = {};
  for (const s of suffixes) {
    const secret = `tg-${tenant}-${s}-secret-0000000000`;
    keys[s] = secret;
    yaml += doc('VirtualKey', `${tenant}-${s}`, `{sha256: ${hashKey(secret)}, tenant: ${tenant}, team: ${tenant}-team, user: ${s}}`);
  }
  return { yaml, keys };
}

async function keysMatching(url: string, pattern: string): Promise<string[]> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  } finally {
    await r.quit();
  }
}

async function deleteKeys(url: string, pattern: string): Promise<number> {
  const keys = await keysMatching(url, pattern);
  if (keys.length === 0) return 0;
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await r.del(...keys);
  } finally {
    await r.quit();
  }
}

async function expectStatus(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    return e;
  }
  assert.fail('expected an error response');
}

describe('e2e budgets on the shared Redis', { timeout: 120_000 }, () => {
  const tenant = `e2e-budget-${randomBytes(4).toString('hex')}`;
  const { yaml, keys } = principals(tenant, ['usd', 'rec']);
  let h: Harness;
  const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15_000 });
  const row = async (scope: string): Promise<SpendRow> => {
    const rows = await h.tollgate.budgets.spend({ tenant, scopeKey: scope });
    assert.equal(rows.length, 1, JSON.stringify(rows));
    return rows[0]!;
  };

  before(async () => {
    h = await startHarness({
      tollgate: { redisUrl: SHARED_REDIS, spendApi: true, adminTokens: [ADMIN_TOKEN] },
      extraYaml:
        yaml +
        `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: redis-budgets}
spec:
  rules:
    - name: key-usd
      when: principal.keyId == '${tenant}-usd'
      budget: {scope: key, limit: {usd: 0.0001}, window: day}
    - name: tenant-month
      when: principal.tenant == '${tenant}'
      budget: {scope: tenant, limit: {usd: 50, requests: 10000}, window: month}
    - name: team-rpm
      when: principal.tenant == '${tenant}'
      rateLimit: {scope: team, rpm: 1000, maxParallel: 50}
`,
    });
    assert.equal(h.tollgate.budgets.health(), 'ok', 'connected to the shared Redis');
  });
  after(async () => {
    await h?.close();
    await deleteKeys(SHARED_REDIS, `tg:{${tenant}}:*`);
  });

  it('USD budget per key is enforced from Redis: 3 admitted with headers, then 429 with the remaining amount', async () => {
    const c = client(keys.usd!);
    let admitted = 0;
    for (let i = 0; i < 5; i++) {
      try {
        const { response } = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 10 }).withResponse();
        admitted++;
        assert.equal(response.headers.get('x-tollgate-budget-name'), 'redis-budgets/key-usd');
        assert.equal(response.headers.get('x-tollgate-budget-limit-usd'), '0.0001');
        assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1000');
        assert.equal(response.headers.get('x-tollgate-budget-degraded'), null);
      } catch (e) {
        assert.ok(e instanceof OpenAI.RateLimitError, String(e));
        assert.equal(e.code, 'budget_exceeded');
        assert.equal(e.headers.get('x-tollgate-budget-remaining-usd'), '0.000022');
        assert.ok(Number(e.headers.get('retry-after')) >= 1);
        break;
      }
    }
    assert.equal(admitted, 3);
    const r = await row(`key:${tenant}-usd`);
    assert.equal(r.requests, 3);
    assert.ok(Math.abs(r.usd - 3 * 0.000026) < 1e-12, String(r.usd));
    assert.equal(r.inFlight, 0);
    // The counters really live in Redis, under the default prefix and the tenant's hash tag.
    const stored = await keysMatching(SHARED_REDIS, `tg:{${tenant}}:c:*`);
    assert.ok(stored.some((k) => k.includes(`key:${tenant}-usd`)), stored.join(' '));
  });

  it('reconciliation through Redis: non-stream and stream are charged usage × price, nothing stays reserved', async () => {
    const before = await row(`tenant:${tenant}`);
    h.fakes.openai!.setNext({ type: 'reply', reply: { usage: { input: 1000, output: 400 } } });
    await client(keys.rec!).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 1000 });
    h.fakes.openai!.setNext({ type: 'reply', reply: { usage: { input: 2000, output: 100 } } });
    const stream = await client(keys.rec!).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, stream: true, stream_options: { include_usage: true }, max_tokens: 1000 });
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage;
    assert.equal(usage?.prompt_tokens, 2000);
    // Settles run after the response; wait until both are in.
    let after = before;
    await eventually(() => {
      // A read that times out on a loaded machine (150 ms command timeout) is simply retried.
      void row(`tenant:${tenant}`).then(
        (r) => (after = r),
        () => undefined,
      );
      return after.requests === before.requests + 2 && after.inFlight === 0;
    }, 5000);
    const usd = (1000 + 800 + 2000 + 200) / 1e6;
    assert.ok(Math.abs(after.usd - before.usd - usd) < 1e-12, `charged ${after.usd - before.usd}, want ${usd}`);
    assert.equal(after.inputTokens - before.inputTokens, 3000);
    assert.equal(after.outputTokens - before.outputTokens, 500);
    assert.equal(after.reservedUsd, 0);
    // The same numbers over HTTP (what `tollgate spend` reads).
    const res = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/v1/spend?tenant=${tenant}&scope=tenant:${tenant}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const json = (await res.json()) as { rows: SpendRow[] };
    assert.equal(json.rows[0]!.usd, after.usd);
  });
});

describe('e2e budgets when a private Redis dies mid-run', { timeout: 180_000 }, () => {
  const tenant = `e2e-outage-${randomBytes(3).toString('hex')}`;
  const { yaml, keys } = principals(tenant, ['closed', 'open', 'local']);
  let redis: PrivateRedis;
  let h: Harness;
  const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15_000 });
  const ask = (key: string) => client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: HI, max_tokens: 10 }).withResponse();
  const readyz = async (): Promise<{ status: number; budgetStore: string }> => {
    const res = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/readyz`);
    const j = (await res.json()) as { budgetStore?: string };
    return { status: res.status, budgetStore: j.budgetStore ?? '?' };
  };

  before(async () => {
    redis = await PrivateRedis.start();
    h = await startHarness({
      tollgate: { redisUrl: redis.url },
      extraYaml:
        yaml +
        `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: outage}
spec:
  rules:
    - name: closed
      when: principal.keyId == '${tenant}-closed'
      budget: {scope: key, limit: {usd: 10}, window: day, onStoreError: failClosed}
    - name: open
      when: principal.keyId == '${tenant}-open'
      budget: {scope: key, limit: {usd: 10}, window: day, onStoreError: failOpen}
    - name: local
      when: principal.keyId == '${tenant}-local'
      budget: {scope: key, limit: {requests: 4}, window: day, onStoreError: local}
`,
    });
  });
  after(async () => {
    await h?.close();
    await redis?.stop();
  });

  it('before, during and after the outage: failClosed 503, failOpen admitted and flagged, local enforces its share; recovery replays', async () => {
    // Healthy: every mode admits, none is degraded; the local key uses 1 of its 4 requests.
    for (const k of ['closed', 'open', 'local']) {
      const { response } = await ask(keys[k]!);
      assert.equal(response.status, 200, k);
      assert.equal(response.headers.get('x-tollgate-budget-degraded'), null, k);
    }
    await eventually(() => h.tollgate.budgets.health() === 'ok', 5000);
    assert.equal((await readyz()).budgetStore, 'ok');

    await redis.stop();
    const lineageBefore = h.lineage.length;

    // failClosed: 503 in OpenAI shape, retry-after 1; the provider is never called.
    const calls = h.fakes.openai!.requests.length;
    const e = await expectStatus(ask(keys.closed!));
    assert.equal(e.status, 503);
    assert.equal(e.code, 'budget_store_unavailable');
    assert.equal(e.headers?.get('retry-after'), '1');
    assert.match(e.message, /budget store is unavailable and "outage\/closed" is configured to fail closed/);
    assert.equal(h.fakes.openai!.requests.length, calls);

    // failOpen: admitted, flagged in a header and in lineage.
    const open = await ask(keys.open!);
    assert.equal(open.response.status, 200);
    assert.equal(open.response.headers.get('x-tollgate-budget-degraded'), 'failOpen');
    // Nothing was checked, so no remaining amount is claimed.
    assert.equal(open.response.headers.get('x-tollgate-budget-remaining-usd'), null);
    const rid = open.response.headers.get('x-request-id');
    await eventually(() => h.lineage.some((l) => l.requestId === rid), 5000);
    const rec = h.lineage.find((l) => l.requestId === rid)!;
    assert.ok(rec.budgets?.some((b) => b.name === 'outage/open' && b.failOpen === true), JSON.stringify(rec.budgets));
    const open2 = await ask(keys.open!);
    assert.equal(open2.response.headers.get('x-tollgate-budget-degraded'), 'failOpen');

    // local: this replica (the only one heartbeating) enforces limit − last known used = 4 − 1 = 3.
    let localAdmitted = 0;
    for (let i = 0; i < 5; i++) {
      try {
        const r = await ask(keys.local!);
        assert.equal(r.response.headers.get('x-tollgate-budget-degraded'), 'local');
        localAdmitted++;
      } catch (err) {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal(err.code, 'budget_exceeded');
        break;
      }
    }
    assert.equal(localAdmitted, 3, 'local share = 4 − 1 known used');
    const down = await readyz();
    assert.equal(down.budgetStore, 'degraded');
    // The outage-time requests were all recorded (no crash, lineage still flowing).
    await eventually(() => h.lineage.length - lineageBefore >= 1 + 2 + 4, 5000);

    // Redis returns (empty: it had no persistence). The local journal is replayed into it.
    await redis.startProcess();
    await eventually(() => h.tollgate.budgets.health() === 'ok', 20_000);
    assert.equal((await readyz()).budgetStore, 'ok');
    const { response } = await ask(keys.closed!);
    assert.equal(response.status, 200, 'failClosed admits again');
    assert.equal(response.headers.get('x-tollgate-budget-degraded'), null);
    const spend = async (suffix: string) => (await h.tollgate.budgets.spend({ tenant, scopeKey: `key:${tenant}-${suffix}` }))[0];
    // Replayed: 2 failOpen requests and 3 local ones, charged at their actual usage ($0.000026 each).
    const o = await spend('open');
    assert.equal(o?.requests, 2);
    assert.ok(Math.abs(o!.usd - 2 * 0.000026) < 1e-12, String(o?.usd));
    const l = await spend('local');
    assert.equal(l?.requests, 3);
    assert.equal(l?.inFlight, 0);
    const c = await spend('closed');
    assert.equal(c?.requests, 1, 'only the post-recovery request (the pre-outage one died with Redis)');
  });
});
