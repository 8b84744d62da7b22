// Signing the fallback plan. The router stage seals the plan it writes into dynamic metadata; the
// upstream stage opens it before any use. So a plan that Tollgate did not write (another filter
// writing the `tollgate` namespace, a forged stream) or one that outlived its request is refused,
// whichever replica serves the attempt: every replica shares TOLLGATE_PLAN_KEY.
//
// Format: `tgp1.<base64url(JSON plan with exp)>.<base64url(HMAC-SHA256(k, "tgp1." + payload))>`
// where k = HMAC-SHA256(TOLLGATE_PLAN_KEY, "tollgate fallback plan v1") (own key for this use).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'tgp1.';
const CONTEXT = 'tollgate fallback plan v1';
/** Default lifetime: Envoy's chain route `timeout` (600 s in envoy/envoy.yaml) plus a minute. */
export const DEFAULT_PLAN_TTL_MS = 660_000;
/** Clock difference tolerated between the replica that sealed and the one that opens. */
const SKEW_MS = 30_000;

export type OpenResult =
  | { ok: true; payload: unknown }
  | { ok: false; reason: 'unsigned' | 'bad_signature' | 'malformed' | 'expired' };

let processKey: Buffer | undefined;
/** The key used when none is configured: random, shared by every Tollgate in this process only. */
export function processPlanKey(): Buffer {
  return (processKey ??= randomBytes(32));
}

export interface PlanSealerOptions {
  /** Signs and verifies. */
  key: string | Buffer;
  /** Verify only (rotation: replicas still on the old key). */
  previousKeys?: (string | Buffer)[];
  ttlMs?: number;
  now?: () => number;
}

export class PlanSealer {
  private readonly signKey: Buffer;
  private readonly verifyKeys: Buffer[];
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: PlanSealerOptions) {
    this.signKey = derive(opts.key);
    this.verifyKeys = [this.signKey, ...(opts.previousKeys ?? []).map(derive)];
    this.ttlMs = opts.ttlMs ?? DEFAULT_PLAN_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The plan with its expiry (`exp`, ms since the epoch), signed. */
  seal(plan: object): string {
    const payload = Buffer.from(JSON.stringify({ ...plan, exp: this.now() + this.ttlMs })).toString('base64url');
    return `${PREFIX}${payload}.${mac(this.signKey, payload).toString('base64url')}`;
  }

  /** Verifies the signature and expiry; the payload still needs schema validation. */
  open(token: unknown): OpenResult {
    if (typeof token !== 'string' || !token.startsWith(PREFIX)) return { ok: false, reason: 'unsigned' };
    const dot = token.indexOf('.', PREFIX.length);
    if (dot < 0 || token.length > 64 * 1024) return { ok: false, reason: 'malformed' };
    const payload = token.slice(PREFIX.length, dot);
    const sig = Buffer.from(token.slice(dot + 1), 'base64url');
    let valid = false;
    for (const k of this.verifyKeys) {
      const want = mac(k, payload);
      valid = (sig.length === want.length && timingSafeEqual(sig, want)) || valid;
    }
    if (!valid) return { ok: false, reason: 'bad_signature' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const exp = (parsed as { exp?: unknown } | null)?.exp;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return { ok: false, reason: 'malformed' };
    if (this.now() > exp + SKEW_MS) return { ok: false, reason: 'expired' };
    return { ok: true, payload: parsed };
  }
}

function derive(key: string | Buffer): Buffer {
  return createHmac('sha256', key).update(CONTEXT).digest();
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(PREFIX).update(payload).digest();
}
