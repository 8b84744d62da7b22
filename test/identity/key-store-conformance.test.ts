// One behaviour for every KeyStore: the config store (policies/keys.yaml) and the Redis store (managed
// keys) are seeded with the same keys and must authenticate them identically.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { CoreConfig } from '../../service/config/loader.ts';
import type { VirtualKeyRecord } from '../../service/config/types.ts';
import { GatewayError } from '../../service/errors.ts';
import { CompositeKeyStore, ConfigKeyStore, generateKey, hashKey, type KeyStore } from '../../service/identity/keys.ts';
import { authenticate } from '../../service/identity/principal.ts';
import { RedisKeyStore } from '../../service/identity/redis-key-store.ts';
import { testRedisUrl } from '../support/redis.ts';

const REDIS_URL = testRedisUrl();

interface Seed {
  tenant: string;
  team?: string;
  user?: string;
  groups: string[];
  disabled?: boolean;
  expiresAt?: string;
}

/** Builds a store holding `seeds`; returns each seed's secret (same order). */
type Factory = (seeds: Seed[]) => Promise<{ store: KeyStore; secrets: string[]; close(): Promise<void> }>;

const configFactory: Factory = async (seeds) => {
  const secrets = seeds.map(() => generateKey().secret);
  const recs: VirtualKeyRecord[] = seeds.map((s, i) => ({
    id: `cfg-${i}`,
    sha256: hashKey(secrets[i]!),
    tenant: s.tenant,
    team: s.team,
    user: s.user,
    groups: s.groups,
    disabled: s.disabled ?? false,
    expiresAt: s.expiresAt,
  }));
  return { store: new ConfigKeyStore(recs), secrets, close: async () => undefined };
};

const redisFactory: Factory = async (seeds) => {
  const store = new RedisKeyStore({ url: REDIS_URL, prefix: `tgtest-${randomBytes(4).toString('hex')}:` });
  assert.ok(await store.ready(3000), 'redis key store connects');
  const secrets: string[] = [];
  for (const s of seeds) {
    const { key, secret } = await store.create({ tenant: s.tenant, team: s.team, user: s.user, groups: s.groups, expiresAt: s.expiresAt }, 'test');
    if (s.disabled) await store.update(key.id, { status: 'disabled' });
    secrets.push(secret);
  }
  return { store, secrets, close: () => store.close() };
};

// Only the key path of authenticate() reads nothing from the core config.
const CORE = { settings: { jwt: { payloadKey: 'jwt_payload' } }, tenants: new Map(), teams: new Map() } as unknown as CoreConfig;
const NOW = new Date('2026-06-01T00:00:00Z');

async function outcome(store: KeyStore, token: string): Promise<string> {
  try {
    const p = await authenticate({ token, jwtNamespace: undefined }, CORE, store, NOW);
    return `ok ${p.tenant}/${p.team}/${p.user} [${p.groups.join(',')}]`;
  } catch (e) {
    assert.ok(e instanceof GatewayError);
    return `${e.status} ${e.message}`;
  }
}

const SEEDS: Seed[] = [
  { tenant: 'acme', team: 'research', user: 'alice', groups: ['eng', 'ml'] },
  { tenant: 'globex', groups: [] },
  { tenant: 'acme', team: 'support', groups: [], disabled: true },
  { tenant: 'acme', team: 'support', groups: [], expiresAt: '2026-01-01T00:00:00.000Z' },
  { tenant: 'acme', team: 'support', user: 'later', groups: [], expiresAt: '2027-01-01T00:00:00.000Z' },
];

for (const [name, factory] of [
  ['config', configFactory],
  ['redis', redisFactory],
] as const) {
  describe(`KeyStore conformance: ${name}`, () => {
    const closers: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of closers) await c();
    });
    const seeded = async () => {
      const s = await factory(SEEDS);
      closers.push(s.close);
      return s;
    };

    it('a known key authenticates as its tenant, team, user and groups', async () => {
      const { store, secrets } = await seeded();
      assert.equal(await outcome(store, secrets[0]!), 'ok acme/research/alice [eng,ml]');
      assert.equal(await outcome(store, secrets[1]!), 'ok globex// []');
    });

    it('an unknown key is refused with 401, and lookup() answers undefined', async () => {
      const { store } = await seeded();
      const other = generateKey();
      assert.equal(await store.lookup(other.sha256), undefined);
      assert.equal(await outcome(store, other.secret), '401 Incorrect API key provided.');
    });

    it('a disabled key is refused as disabled', async () => {
      const { store, secrets } = await seeded();
      assert.equal(await outcome(store, secrets[2]!), '401 This API key has been disabled.');
    });

    it('an expired key is refused as expired; one expiring later works', async () => {
      const { store, secrets } = await seeded();
      assert.equal(await outcome(store, secrets[3]!), '401 This API key has expired.');
      assert.equal(await outcome(store, secrets[4]!), 'ok acme/support/later []');
    });

    it('lookup is by the SHA-256 of the secret only: a near miss finds nothing', async () => {
      const { store, secrets } = await seeded();
      const s = secrets[0]!;
      const flipped = s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A');
      assert.equal(await store.lookup(hashKey(flipped)), undefined);
      assert.equal((await store.lookup(hashKey(s)))?.tenant, 'acme');
    });

    it('behind the composite store (config first) it answers the same', async () => {
      const { store, secrets } = await seeded();
      const composite = new CompositeKeyStore(new ConfigKeyStore([]), store);
      assert.equal(await outcome(composite, secrets[0]!), 'ok acme/research/alice [eng,ml]');
      assert.equal(await outcome(composite, secrets[2]!), '401 This API key has been disabled.');
    });
  });
}
