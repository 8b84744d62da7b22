// Managed keys through real Envoy and two Tollgate processes sharing one Redis: created via the admin
// API → works → disabled → 401 within a second on every replica → enabled → rotated: the new secret
// works, the old one until the overlap ends, then 401 everywhere. Plus the key's own model list and
// budget, and the audit events each change leaves in lineage.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { eventually, startHarness, type Harness } from '../support/harness.ts';
import { testRedisUrl } from '../support/redis.ts';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;

describe('managed key lifecycle across two replicas', { timeout: 90_000 }, () => {
  let h: Harness;
  let api: (port: number, method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;
  before(async () => {
    h = await startHarness({
      replicas: 1,
      tollgate: { redisUrl: testRedisUrl(), redisPrefix: `tge2e-${randomBytes(4).toString('hex')}:`, adminTokens: [ADMIN] },
    });
    api = async (port, method, path, body) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
  });
  after(async () => {
    await h.close();
  });

  const instances = () => [h.tollgate.services.instance, ...h.replicas.map((r) => r.services.instance)];

  /** One chat call; its status and the replica that decided it (from lineage). */
  async function call(secret: string, model = 'gpt-4o-mini'): Promise<{ status: number; instance: string; code?: string; message?: string }> {
    const r = await fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }),
    });
    const rid = r.headers.get('x-request-id');
    const body = (await r.json()) as { error?: { code?: string; message?: string } };
    let rec: LineageRecord | undefined;
    if (rid) {
      await eventually(() => h.lineage.some((l) => l.requestId === rid));
      rec = h.lineage.find((l) => l.requestId === rid);
    }
    return { status: r.status, instance: rec?.gatewayInstance ?? '?', code: body.error?.code, message: body.error?.message };
  }

  /** Calls until every replica has answered at least once; returns all answers. */
  async function onEveryReplica(secret: string, model?: string): Promise<{ status: number; instance: string; code?: string; message?: string }[]> {
    const out: Awaited<ReturnType<typeof call>>[] = [];
    for (let i = 0; i < 20 && !instances().every((n) => out.some((o) => o.instance === n)); i++) out.push(await call(secret, model));
    assert.deepEqual(new Set(out.map((o) => o.instance)), new Set(instances()), 'both replicas answered');
    return out;
  }

  it('create → works on both → disabled: 401 within a second on both → enabled → rotated with overlap', async () => {
    assert.equal(instances().length, 2);
    const port = h.tollgate.httpPort;
    const otherPort = h.replicas[0]!.httpPort;
    const created = await api(port, 'POST', '/admin/v1/keys', { tenant: 'acme', team: 'research', user: 'dana', name: 'ci bot', metadata: { ticket: 'OPS-1' } });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const secret = created.json.secret as string;
    const id = (created.json.key as { id: string }).id;
    assert.match(secret, /^tg-/);
    assert.ok(!JSON.stringify((await api(otherPort, 'GET', `/admin/v1/keys/${id}`)).json).includes(secret), 'the secret is shown once');

    // Works through Envoy on both replicas, with the OpenAI SDK too; lineage names the managed key.
    const sdk = new OpenAI({ apiKey: secret, baseURL: h.baseURL, maxRetries: 0 });
    const done = await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
    assert.ok(done.choices[0]?.message);
    for (const o of await onEveryReplica(secret)) assert.equal(o.status, 200);
    assert.ok(h.lineage.some((l) => l.principal.keyId === id && l.principal.user === 'dana' && l.statusCode === 200));

    // Disabled through the OTHER replica's API: both replicas refuse it within a second.
    const t0 = Date.now();
    assert.equal((await api(otherPort, 'POST', `/admin/v1/keys/${id}/disable`)).status, 200);
    const seen = new Map<string, number>();
    while (seen.size < 2) {
      const o = await call(secret);
      if (o.status === 401) {
        if (!seen.has(o.instance)) seen.set(o.instance, Date.now() - t0);
        assert.equal(o.message, 'This API key has been disabled.');
      } else assert.ok(Date.now() - t0 < 1000, `still ${o.status} on ${o.instance} after ${Date.now() - t0} ms`);
      assert.ok(Date.now() - t0 < 3000, 'gave up waiting');
    }
    for (const [inst, ms] of seen) assert.ok(ms < 1000, `${inst} refused it after ${ms} ms`);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
    for (const o of await onEveryReplica(secret)) assert.equal(o.status, 401, `${o.instance}: ${o.status}`);
    assert.equal(h.fakes.openai!.requests.filter((r) => r.headers.authorization?.includes(secret)).length, 0, 'the virtual key never reaches the provider');

    // Enabled again, then rotated with a 2 s overlap.
    assert.equal((await api(port, 'POST', `/admin/v1/keys/${id}/enable`)).status, 200);
    await eventually(() => true);
    for (const o of await onEveryReplica(secret)) assert.equal(o.status, 200);
    const rotated = await api(port, 'POST', `/admin/v1/keys/${id}/rotate`, { overlapSeconds: 2 });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.json));
    const fresh = rotated.json.secret as string;
    const rotatedAt = Date.now();
    for (const o of await onEveryReplica(fresh)) assert.equal(o.status, 200, 'new secret works');
    for (const o of await onEveryReplica(secret)) {
      if (Date.now() - rotatedAt < 1800) assert.equal(o.status, 200, 'old secret works during the overlap');
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - rotatedAt))));
    for (const o of await onEveryReplica(secret)) {
      assert.equal(o.status, 401, `old secret after the overlap on ${o.instance}`);
      assert.equal(o.message, 'This API key has expired.');
    }
    for (const o of await onEveryReplica(fresh)) assert.equal(o.status, 200, 'new secret still works');

    // Every change left an audit event in lineage (actor, action, target; never the secret).
    const audits = h.lineage.filter((l) => l.audit?.target === id).map((l) => l.audit!.action);
    assert.deepEqual(audits, ['key.create', 'key.disable', 'key.enable', 'key.rotate']);
    const all = JSON.stringify(h.lineage.filter((l) => l.audit));
    assert.ok(!all.includes(secret) && !all.includes(fresh), 'no secret in audit events');
    assert.equal(h.lineage.find((l) => l.audit?.action === 'key.create' && l.audit.target === id)!.audit!.actor, 'admin-token');

    // The hot path answers from each replica's cache: ten more requests, (almost) no Redis round trips.
    const lookups = async () => {
      let cache = 0;
      let redis = 0;
      for (const t of [h.tollgate, ...h.replicas]) {
        const m = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
        cache += Number(/tollgate_key_store_lookups_total\{result="cache"\} (\d+)/.exec(m)?.[1] ?? 0);
        redis += Number(/tollgate_key_store_lookups_total\{result="redis"\} (\d+)/.exec(m)?.[1] ?? 0);
      }
      return { cache, redis };
    };
    const before = await lookups();
    for (let i = 0; i < 10; i++) assert.equal((await call(fresh)).status, 200);
    const later = await lookups();
    assert.ok(later.cache - before.cache >= 8, `cache answers: ${later.cache - before.cache}`);
    assert.ok(later.redis - before.redis <= 2, `fetches: ${later.redis - before.redis} (at most one safety-net refresh per replica)`);
  });

  it("the key's own model list and budget are enforced through Envoy", async () => {
    const created = await api(h.tollgate.httpPort, 'POST', '/admin/v1/keys', {
      tenant: 'acme',
      team: 'research',
      limits: { models: ['gpt-4o-mini'], budget: { usd: 0.00001, window: 'day' } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const secret = created.json.secret as string;
    const other = await call(secret, 'claude-sonnet');
    assert.equal(other.status, 403);
    assert.equal(other.code, 'model_not_allowed_for_key');
    // The fake bills 12 in × $1/M + 7 out × $2/M = $0.000026 per call: the first is admitted (its
    // reservation fits), the next finds the $0.00001 day budget spent.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(secret)).status);
    assert.ok(statuses.includes(429), `budget enforced: ${statuses.join(',')}`);
  });
});
