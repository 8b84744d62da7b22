// Managed virtual keys: the records the Redis key store keeps and the admin API shows. Only hashes
// of secrets are stored; a secret is returned once, by create and rotate.
import type { KeyLimits } from '../config/types.ts';

export type KeyStatus = 'active' | 'disabled' | 'revoked';

/** One secret of a key: the current one, or a rotated one that stays valid until `validUntil`. */
export interface KeySecretHash {
  sha256: string;
  /** Last four characters of the secret, to tell keys apart in a list. */
  hint: string;
  createdAt: string;
  /** Set on a rotated-out secret: it stops working at this instant. */
  validUntil?: string;
}

export interface ManagedKey {
  id: string;
  name?: string;
  tenant: string;
  team?: string;
  user?: string;
  groups: string[];
  status: KeyStatus;
  expiresAt?: string;
  limits?: KeyLimits;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  createdBy?: string;
  hashes: KeySecretHash[];
}

/** What the admin API returns: everything but the hashes (the hints stay). */
export interface ManagedKeyView extends Omit<ManagedKey, 'hashes'> {
  secrets: { hint: string; createdAt: string; validUntil?: string }[];
}

export interface NewKey {
  name?: string;
  tenant: string;
  team?: string;
  user?: string;
  groups?: string[];
  expiresAt?: string;
  limits?: KeyLimits;
  metadata?: Record<string, string>;
}

/** Fields `update` may change; `null` clears an optional one. */
export interface KeyPatch {
  name?: string | null;
  user?: string | null;
  groups?: string[];
  expiresAt?: string | null;
  limits?: KeyLimits | null;
  metadata?: Record<string, string>;
  status?: 'active' | 'disabled';
}

export interface KeyFilter {
  tenant?: string;
  team?: string;
  includeRevoked?: boolean;
}

/** Managing keys (the Redis store implements it; config keys are read-only). */
export interface KeyAdmin {
  create(k: NewKey, actor: string): Promise<{ key: ManagedKeyView; secret: string }>;
  list(f?: KeyFilter): Promise<ManagedKeyView[]>;
  get(id: string): Promise<ManagedKeyView | undefined>;
  update(id: string, patch: KeyPatch): Promise<ManagedKeyView | undefined>;
  revoke(id: string): Promise<ManagedKeyView | undefined>;
  /** A new secret; the previous ones stay valid for `overlapSeconds` (0 = stop now). */
  rotate(id: string, overlapSeconds: number): Promise<{ key: ManagedKeyView; secret: string } | undefined>;
}

export function viewOf(k: ManagedKey): ManagedKeyView {
  const { hashes, ...rest } = k;
  return { ...rest, secrets: hashes.map((h) => ({ hint: h.hint, createdAt: h.createdAt, ...(h.validUntil ? { validUntil: h.validUntil } : {}) })) };
}
