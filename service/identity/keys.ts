// Virtual API keys. Only SHA-256 hashes are ever stored; the secret is shown once at creation.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { VirtualKeyRecord } from '../config/types.ts';
import { sha256Hex } from '../security/sha256.ts';

export const KEY_PREFIX = 'tg-';

export function hashKey(secret: string): string {
  return sha256Hex(secret);
}

export function looksLikeVirtualKey(token: string): boolean {
  return token.startsWith(KEY_PREFIX) && token.length >= 20 && token.length <= 200;
}

export function generateKey(): { secret: string; sha256: string; id: string } {
  const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
  const sha256 = hashKey(secret);
  return { secret, sha256, id: `key-${sha256.slice(0, 12)}` };
}

/** Where virtual keys live. Config-backed today; a Redis-backed store can implement the same interface. */
export interface KeyStore {
  lookup(sha256: string): Promise<VirtualKeyRecord | undefined>;
}

export class ConfigKeyStore implements KeyStore {
  private readonly byHash: Map<string, { rec: VirtualKeyRecord; digest: Buffer }>;
  constructor(keys: VirtualKeyRecord[]) {
    // The stored hash's bytes are decoded once here, not on every request's lookup.
    this.byHash = new Map(keys.map((k) => [k.sha256, { rec: k, digest: Buffer.from(k.sha256, 'hex') }]));
  }
  async lookup(sha256: string): Promise<VirtualKeyRecord | undefined> {
    const hit = this.byHash.get(sha256);
    // The map lookup already matched; the constant-time compare keeps the check honest if a
    // future store does prefix lookups.
    if (!hit || !timingSafeEqual(hit.digest, Buffer.from(sha256, 'hex'))) return undefined;
    return hit.rec;
  }
}

/** Config keys first (no I/O), then the managed store: a config key can never be shadowed at runtime. */
export class CompositeKeyStore implements KeyStore {
  constructor(
    private readonly first: KeyStore,
    private readonly second: KeyStore,
  ) {}
  async lookup(sha256: string): Promise<VirtualKeyRecord | undefined> {
    return (await this.first.lookup(sha256)) ?? this.second.lookup(sha256);
  }
}
