// Virtual keys managed at runtime, in Redis, shared by every replica (docs/keys.md).
//
// Layout (prefix default `tg:`):  <p>keys:rec:<id> → JSON ManagedKey,  <p>keys:hash:<sha256> → id,
// <p>keys:ids → set of ids. Every change publishes the affected hashes on <p>keys:changed.
//
// Hot path: lookup() answers from a per-process cache (no Redis round trip on a hit). An entry lives
// `cacheTtlMs` (safety net); a change on any replica evicts it everywhere via pub/sub, well within a
// second. Unknown hashes are cached negatively for `negativeTtlMs` (evicted by create/rotate too).
// While the subscription is down (no invalidation can arrive) every lookup asks Redis.
// Redis down: a cached entry keeps answering until it is `staleMs` old; anything else fails closed
// (GatewayError `unavailable`, 503) — an unknown key is never let in.
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { VirtualKeyRecord } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import { generateKey, type KeyStore } from './keys.ts';
import { viewOf, type KeyAdmin, type KeyFilter, type KeyPatch, type ManagedKey, type ManagedKeyView, type NewKey } from './managed-keys.ts';

export interface RedisKeyStoreOptions {
  url: string;
  /** Key prefix (default `tg:`), shared with the budget store's convention. */
  prefix?: string;
  /** Safety-net lifetime of a cache entry, ms (default 5000). */
  cacheTtlMs?: number;
  /** Lifetime of a "no such key" entry, ms (default 1000). */
  negativeTtlMs?: number;
  /** Redis unreachable: cached keys keep working until their entry is this old, ms (default 60 000). */
  staleMs?: number;
  /** Per-command timeout, ms (default 250). */
  commandTimeoutMs?: number;
  /** Cache entries at most (default 100 000; the oldest go first). */
  maxEntries?: number;
  now?: () => number;
  /** How each lookup was answered (metrics); lookups joining an in-flight fetch are not counted again. */
  onLookup?: (result: LookupResult) => void;
}

export type LookupResult = 'cache' | 'redis' | 'stale' | 'unavailable';

interface Entry {
  rec: VirtualKeyRecord | undefined;
  at: number;
}

const CAS_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end`;

function redisOptions(timeoutMs: number): RedisOptions {
  return {
    commandTimeout: timeoutMs,
    connectTimeout: 1000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 50),
    lazyConnect: false,
  };
}

/** The record authentication sees for one secret of a managed key (undefined: revoked / rotated away). */
export function recordFor(k: ManagedKey, sha256: string, now: number): VirtualKeyRecord | undefined {
  if (k.status === 'revoked') return undefined;
  const h = k.hashes.find((x) => x.sha256 === sha256);
  if (!h) return undefined;
  // A rotated-out secret "expires" at the end of its overlap; the key's own expiry may come first.
  let expiresAt = k.expiresAt;
  if (h.validUntil && (!expiresAt || Date.parse(h.validUntil) < Date.parse(expiresAt))) expiresAt = h.validUntil;
  if (h.validUntil && Date.parse(h.validUntil) + 3_600_000 < now) return undefined; // long gone: unknown
  return {
    id: k.id,
    sha256,
    tenant: k.tenant,
    ...(k.team ? { team: k.team } : {}),
    ...(k.user ? { user: k.user } : {}),
    groups: k.groups,
    disabled: k.status === 'disabled',
    ...(expiresAt ? { expiresAt } : {}),
    ...(k.limits ? { limits: k.limits } : {}),
  };
}

export class RedisKeyStore implements KeyStore, KeyAdmin {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly p: string;
  private readonly channel: string;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<VirtualKeyRecord | undefined>>();
  private readonly ttl: number;
  private readonly negTtl: number;
  private readonly stale: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private subscribedOnce = false;
  private readonly onLookup: (r: LookupResult) => void;

  constructor(opts: RedisKeyStoreOptions) {
    const o = redisOptions(opts.commandTimeoutMs ?? 250);
    this.redis = new Redis(opts.url, o);
    this.sub = new Redis(opts.url, { ...o, commandTimeout: undefined });
    this.redis.on('error', () => undefined); // surfaced by the command that fails
    this.sub.on('error', () => undefined);
    this.p = `${opts.prefix ?? 'tg:'}keys:`;
    this.channel = `${this.p}changed`;
    this.ttl = opts.cacheTtlMs ?? 5000;
    this.negTtl = opts.negativeTtlMs ?? 1000;
    this.stale = opts.staleMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.now = opts.now ?? Date.now;
    this.onLookup = opts.onLookup ?? (() => undefined);
    this.sub.on('message', (_ch: string, msg: string) => this.onInvalidate(msg));
    // (Re)subscribe on every connect; after a reconnect we may have missed changes: drop the cache.
    this.sub.on('ready', () => {
      if (this.subscribedOnce) this.cache.clear();
      this.subscribedOnce = true;
      void this.sub.subscribe(this.channel).catch(() => undefined);
    });
  }

  /** Resolves true once both connections are up (bounded wait). */
  async ready(ms = 2000): Promise<boolean> {
    const up = (r: Redis) => (r.status === 'ready' ? Promise.resolve() : new Promise<void>((res) => r.once('ready', () => res())));
    const subscribed = new Promise<void>((res) => {
      const check = () => (this.subscribedOnce ? res() : setTimeout(check, 10));
      check();
    });
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((res) => (t = setTimeout(() => res(false), ms)));
    const ok = await Promise.race([Promise.all([up(this.redis), up(this.sub), subscribed]).then(() => true), timeout]);
    clearTimeout(t);
    return ok;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.sub.disconnect();
  }

  private onInvalidate(msg: string): void {
    try {
      const m = JSON.parse(msg) as { hashes?: unknown };
      if (Array.isArray(m.hashes)) for (const h of m.hashes) if (typeof h === 'string') this.cache.delete(h);
    } catch {
      this.cache.clear();
    }
  }

  // ── hot path ──────────────────────────────────────────────────────────────
  async lookup(sha256: string): Promise<VirtualKeyRecord | undefined> {
    const now = this.now();
    const e = this.cache.get(sha256);
    // Without a live subscription no invalidation can arrive: every lookup asks Redis (the entry stays as the fail-mode fallback).
    if (e && now - e.at < (e.rec ? this.ttl : this.negTtl) && this.sub.status === 'ready') {
      this.onLookup('cache');
      return e.rec;
    }
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.fetch(sha256, e).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async fetch(sha256: string, prev: Entry | undefined): Promise<VirtualKeyRecord | undefined> {
    let rec: VirtualKeyRecord | undefined;
    try {
      const id = await this.redis.get(this.p + 'hash:' + sha256);
      const k = id ? await this.read(id) : undefined;
      rec = k ? recordFor(k, sha256, this.now()) : undefined;
    } catch (err) {
      // Fail mode: a key we knew keeps working for a bounded time; anything else is refused.
      if (prev?.rec && this.now() - prev.at < this.stale) {
        this.onLookup('stale');
        return prev.rec;
      }
      this.onLookup('unavailable');
      throw new GatewayError('unavailable', 'The key store is unreachable; try again shortly.', { code: 'key_store_unavailable', cause: err });
    }
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(sha256, { rec, at: this.now() });
    this.onLookup('redis');
    return rec;
  }

  // ── admin ─────────────────────────────────────────────────────────────────
  private async read(id: string): Promise<ManagedKey | undefined> {
    const raw = await this.redis.get(this.p + 'rec:' + id);
    return raw ? (JSON.parse(raw) as ManagedKey) : undefined;
  }

  private async publish(hashes: string[]): Promise<void> {
    for (const h of hashes) this.cache.delete(h);
    await this.redis.publish(this.channel, JSON.stringify({ hashes }));
  }

  async create(k: NewKey, actor: string): Promise<{ key: ManagedKeyView; secret: string }> {
    const g = generateKey();
    const at = new Date(this.now()).toISOString();
    const id = `key-${randomBytes(6).toString('hex')}`;
    const rec: ManagedKey = {
      id,
      ...(k.name ? { name: k.name } : {}),
      tenant: k.tenant,
      ...(k.team ? { team: k.team } : {}),
      ...(k.user ? { user: k.user } : {}),
      groups: k.groups ?? [],
      status: 'active',
      ...(k.expiresAt ? { expiresAt: k.expiresAt } : {}),
      ...(k.limits ? { limits: k.limits } : {}),
      metadata: k.metadata ?? {},
      createdAt: at,
      updatedAt: at,
      createdBy: actor,
      hashes: [{ sha256: g.sha256, hint: g.secret.slice(-4), createdAt: at }],
    };
    const ok = await this.redis.set(this.p + 'rec:' + id, JSON.stringify(rec), 'NX');
    if (ok !== 'OK') throw new GatewayError('invalid_request', `key id ${id} already exists`, { code: 'key_exists', status: 409 });
    await this.redis.multi().set(this.p + 'hash:' + g.sha256, id).sadd(this.p + 'ids', id).exec();
    await this.publish([g.sha256]);
    return { key: viewOf(rec), secret: g.secret };
  }

  async list(f: KeyFilter = {}): Promise<ManagedKeyView[]> {
    const ids = (await this.redis.smembers(this.p + 'ids')).sort();
    if (!ids.length) return [];
    const raws = await this.redis.mget(ids.map((i) => this.p + 'rec:' + i));
    const out: ManagedKeyView[] = [];
    for (const raw of raws) {
      if (!raw) continue;
      const k = JSON.parse(raw) as ManagedKey;
      if (f.tenant && k.tenant !== f.tenant) continue;
      if (f.team && k.team !== f.team) continue;
      if (!f.includeRevoked && k.status === 'revoked') continue;
      out.push(viewOf(k));
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<ManagedKeyView | undefined> {
    const k = await this.read(id);
    return k ? viewOf(k) : undefined;
  }

  /** Read-modify-write with compare-and-set (concurrent admins never lose each other's change). */
  private async mutate(id: string, fn: (k: ManagedKey) => ManagedKey): Promise<{ before: ManagedKey; after: ManagedKey } | undefined> {
    for (let i = 0; i < 10; i++) {
      const raw = await this.redis.get(this.p + 'rec:' + id);
      if (!raw) return undefined;
      const before = JSON.parse(raw) as ManagedKey;
      const after = { ...fn(structuredClone(before)), updatedAt: new Date(this.now()).toISOString() };
      const ok = await this.redis.eval(CAS_LUA, 1, this.p + 'rec:' + id, raw, JSON.stringify(after));
      if (ok === 1) return { before, after };
    }
    throw new GatewayError('invalid_request', `key ${id} is being changed concurrently; retry`, { code: 'concurrent_update', status: 409 });
  }

  async update(id: string, patch: KeyPatch): Promise<ManagedKeyView | undefined> {
    const r = await this.mutate(id, (k) => {
      if (k.status === 'revoked') throw new GatewayError('invalid_request', `key ${id} is revoked and cannot change`, { code: 'key_revoked', status: 409 });
      if (patch.status) k.status = patch.status;
      if (patch.name !== undefined) (patch.name === null ? delete k.name : (k.name = patch.name));
      if (patch.user !== undefined) (patch.user === null ? delete k.user : (k.user = patch.user));
      if (patch.groups) k.groups = patch.groups;
      if (patch.expiresAt !== undefined) (patch.expiresAt === null ? delete k.expiresAt : (k.expiresAt = patch.expiresAt));
      if (patch.limits !== undefined) (patch.limits === null ? delete k.limits : (k.limits = patch.limits));
      if (patch.metadata) k.metadata = patch.metadata;
      return k;
    });
    if (!r) return undefined;
    await this.publish(r.after.hashes.map((h) => h.sha256));
    return viewOf(r.after);
  }

  async revoke(id: string): Promise<ManagedKeyView | undefined> {
    const r = await this.mutate(id, (k) => ({ ...k, status: 'revoked', hashes: [] }));
    if (!r) return undefined;
    const gone = r.before.hashes.map((h) => h.sha256);
    if (gone.length) await this.redis.del(...gone.map((h) => this.p + 'hash:' + h));
    await this.publish(gone);
    return viewOf(r.after);
  }

  async rotate(id: string, overlapSeconds: number): Promise<{ key: ManagedKeyView; secret: string } | undefined> {
    const g = generateKey();
    const now = this.now();
    const at = new Date(now).toISOString();
    const until = new Date(now + overlapSeconds * 1000).toISOString();
    const r = await this.mutate(id, (k) => {
      if (k.status === 'revoked') throw new GatewayError('invalid_request', `key ${id} is revoked; create a new one`, { code: 'key_revoked', status: 409 });
      const old = k.hashes
        .map((h) => ({ ...h, validUntil: h.validUntil && h.validUntil < until ? h.validUntil : until }))
        .filter((h) => Date.parse(h.validUntil) > now - 3_600_000);
      k.hashes = [{ sha256: g.sha256, hint: g.secret.slice(-4), createdAt: at }, ...old];
      return k;
    });
    if (!r) return undefined;
    const m = this.redis.multi().set(this.p + 'hash:' + g.sha256, id);
    // Old secrets' index entries go an hour after their overlap ends (lookups refuse them from validUntil on).
    for (const h of r.after.hashes.slice(1)) m.pexpireat(this.p + 'hash:' + h.sha256, Date.parse(h.validUntil!) + 3_600_000);
    for (const h of r.before.hashes) if (!r.after.hashes.some((x) => x.sha256 === h.sha256)) m.del(this.p + 'hash:' + h.sha256);
    await m.exec();
    await this.publish([g.sha256, ...r.before.hashes.map((h) => h.sha256)]);
    return { key: viewOf(r.after), secret: g.secret };
  }
}
