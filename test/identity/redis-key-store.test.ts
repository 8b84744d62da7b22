// The Redis key store beyond the shared conformance: changes reach other replicas' caches through
// pub/sub within a second, rotation overlaps, revoke, and the fail mode when Redis goes away.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { generateKey, hashKey } from '../../service/identity/keys.ts';
import { RedisKeyStore, type RedisKeyStoreOptions } from '../../service/identity/redis-key-store.ts';
import { testRedisUrl } from '../support/redis.ts';

const REDIS_URL = testRedisUrl();
const stores: RedisKeyStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

async function open(prefix: string, o: Partial<RedisKeyStoreOptions> = {}, url = REDIS_URL): Promise<RedisKeyStore> {
  const s = new RedisKeyStore({ url, prefix, cacheTtlMs: 60_000, ...o });
  stores.push(s);
  assert.ok(await s.ready(3000));
  return s;
}

async function within(ms: number, pred: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

/** A TCP proxy to Redis that the test can cut. */
async function proxy(): Promise<{ url: string; cut(): Promise<void> }> {
  const target = new URL(REDIS_URL);
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    sockets.add(c).add(up);
    c.pipe(up).pipe(c);
    const end = () => (c.destroy(), up.destroy());
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () =>
      new Promise<void>((r) => {
        srv.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

describe('RedisKeyStore across replicas', () => {
  it('a disable / update / revoke on one replica reaches the other cache within a second', async () => {
    const prefix = `tgtest-${randomBytes(4).toString('hex')}:`;
    const a = await open(prefix);
    const b = await open(prefix);
    const { key, secret } = await a.create({ tenant: 'acme', team: 'research', groups: [] }, 'test');
    const h = hashKey(secret);
    assert.equal((await b.lookup(h))?.disabled, false); // now cached on b for 60 s
    await a.update(key.id, { status: 'disabled' });
    const ms = await within(1000, async () => (await b.lookup(h))?.disabled === true);
    assert.ok(ms < 1000, `disable seen after ${ms} ms`);
    await a.update(key.id, { status: 'active', limits: { models: ['gpt-4o-mini'], budget: { usd: 5, window: 'day' } } });
    await within(1000, async () => (await b.lookup(h))?.limits?.budget?.usd === 5);
    await a.revoke(key.id);
    await within(1000, async () => (await b.lookup(h)) === undefined);
    assert.equal((await a.get(key.id))?.status, 'revoked');
  });

  it('a key created on one replica works on another that had just been asked for it (negative cache evicted)', async () => {
    const prefix = `tgtest-${randomBytes(4).toString('hex')}:`;
    const a = await open(prefix);
    const b = await open(prefix, { negativeTtlMs: 60_000 });
    // b cannot know the hash in advance; but a rotated key's new hash is published as well: create, then look up at once.
    const { secret } = await a.create({ tenant: 'acme', groups: [] }, 'test');
    assert.equal((await b.lookup(hashKey(secret)))?.tenant, 'acme');
    const unknown = generateKey();
    assert.equal(await b.lookup(unknown.sha256), undefined);
  });

  it('rotate: the new secret works at once, the old one until the overlap ends, then it is refused as expired', async () => {
    const prefix = `tgtest-${randomBytes(4).toString('hex')}:`;
    const a = await open(prefix);
    const b = await open(prefix);
    const { key, secret: oldSecret } = await a.create({ tenant: 'acme', groups: [] }, 'test');
    assert.ok(await b.lookup(hashKey(oldSecret)));
    const r = await a.rotate(key.id, 1);
    assert.ok(r);
    assert.notEqual(r.secret, oldSecret);
    assert.equal(r.key.secrets.length, 2);
    const fresh = await b.lookup(hashKey(r.secret));
    assert.equal(fresh?.id, key.id);
    assert.equal(fresh?.expiresAt, undefined);
    const old = await within(1000, async () => (await b.lookup(hashKey(oldSecret)))?.expiresAt !== undefined);
    assert.ok(old < 1000);
    const rec = await b.lookup(hashKey(oldSecret));
    const until = Date.parse(rec!.expiresAt!);
    assert.ok(until > Date.now() - 50 && until <= Date.now() + 1000, 'old secret valid until now + overlap');
  });

  it('while its subscription is down a replica asks Redis on every lookup (no stale answer from the cache)', async () => {
    const prefix = `tgtest-${randomBytes(4).toString('hex')}:`;
    const a = await open(prefix);
    const b = await open(prefix);
    const { key, secret } = await a.create({ tenant: 'acme', groups: [] }, 'test');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await b.lookup(hashKey(secret)))?.disabled, false); // cached for 60 s
    (b as unknown as { sub: { disconnect(): void } }).sub.disconnect(); // invalidations can no longer arrive
    await a.update(key.id, { status: 'disabled' });
    assert.equal((await b.lookup(hashKey(secret)))?.disabled, true);
  });

  it('rotating a revoked key is a 409', async () => {
    const a = await open(`tgtest-${randomBytes(4).toString('hex')}:`);
    const { key } = await a.create({ tenant: 'acme', groups: [] }, 'test');
    await a.revoke(key.id);
    await assert.rejects(a.rotate(key.id, 0), (e: unknown) => e instanceof GatewayError && e.status === 409 && e.code === 'key_revoked');
  });
});

describe('RedisKeyStore when Redis is down', () => {
  it('a cached key keeps working (no round trip) until staleMs; an unknown key fails closed with 503', async () => {
    const prefix = `tgtest-${randomBytes(4).toString('hex')}:`;
    const admin = await open(prefix);
    const p = await proxy();
    const seen: string[] = [];
    const s = await open(prefix, { cacheTtlMs: 50, staleMs: 700, onLookup: (r) => seen.push(r) }, p.url);
    const { secret } = await admin.create({ tenant: 'acme', groups: [] }, 'test');
    await new Promise((r) => setTimeout(r, 100)); // the create's own invalidation has passed
    assert.equal((await s.lookup(hashKey(secret)))?.tenant, 'acme');
    assert.equal((await s.lookup(hashKey(secret)))?.tenant, 'acme');
    assert.deepEqual(seen, ['redis', 'cache'], 'the second lookup needs no round trip');
    await p.cut();
    await new Promise((r) => setTimeout(r, 100)); // past the cache TTL: a refetch fails, the stale entry answers
    assert.equal((await s.lookup(hashKey(secret)))?.tenant, 'acme');
    await assert.rejects(s.lookup(generateKey().sha256), (e: unknown) => e instanceof GatewayError && e.status === 503 && e.code === 'key_store_unavailable');
    await new Promise((r) => setTimeout(r, 700)); // past staleMs: refused too
    await assert.rejects(s.lookup(hashKey(secret)), (e: unknown) => e instanceof GatewayError && e.status === 503);
    assert.deepEqual(seen, ['redis', 'cache', 'stale', 'unavailable', 'unavailable']);
  });
});
