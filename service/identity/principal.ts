// Who is calling. Identity comes only from a virtual key we can verify or from JWT claims that
// Envoy's jwt_authn verified and forwarded in metadata_context — never from client headers.
import type { CoreConfig } from '../config/loader.ts';
import type { KeyLimits } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import { hashKey, looksLikeVirtualKey, type KeyStore } from './keys.ts';

export const JWT_AUTHN_NAMESPACE = 'envoy.filters.http.jwt_authn';

export interface Principal {
  authMethod: 'key' | 'jwt';
  keyId: string;
  tenant: string;
  team: string;
  user: string;
  groups: string[];
  claims: Record<string, unknown>;
  /** Limits attached to the virtual key itself (managed keys): models, budget, rate limits. */
  keyLimits?: KeyLimits;
}

export interface Credentials {
  /** Bearer token from `authorization`, or `x-api-key`. */
  token: string | undefined;
  /** jwt_authn's `filter_metadata` namespace, already converted from Struct to plain JSON. */
  jwtNamespace: Record<string, unknown> | undefined;
}

export function extractToken(headers: ReadonlyMap<string, string>): string | undefined {
  const auth = headers.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const k = headers.get('x-api-key');
  return k && k.trim() ? k.trim() : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

export async function authenticate(
  cred: Credentials,
  core: CoreConfig,
  keys: KeyStore,
  now: Date,
): Promise<Principal> {
  if (cred.token && looksLikeVirtualKey(cred.token)) {
    const rec = await keys.lookup(hashKey(cred.token));
    if (!rec) throw new GatewayError('authentication', 'Incorrect API key provided.', { code: 'invalid_api_key' });
    if (rec.disabled) throw new GatewayError('authentication', 'This API key has been disabled.', { code: 'invalid_api_key' });
    if (rec.expiresAt && Date.parse(rec.expiresAt) <= now.getTime())
      throw new GatewayError('authentication', 'This API key has expired.', { code: 'invalid_api_key' });
    const p: Principal = { authMethod: 'key', keyId: rec.id, tenant: rec.tenant, team: rec.team ?? '', user: rec.user ?? '', groups: rec.groups, claims: {} };
    // Set only when present (no `keyLimits: undefined` key), without a spread of a temporary object.
    if (rec.limits) p.keyLimits = rec.limits;
    return p;
  }
  const payload = cred.jwtNamespace?.[core.settings.jwt.payloadKey];
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
    const claims = payload as Record<string, unknown>;
    const map = core.settings.jwt;
    const tenant = str(claims[map.tenantClaim]);
    if (!tenant || !core.tenants.has(tenant))
      throw new GatewayError('permission', `token's tenant claim "${map.tenantClaim}" names no configured tenant`, {
        code: 'unknown_tenant',
      });
    const team = str(claims[map.teamClaim]);
    if (team && !core.teams.has(`${tenant}/${team}`))
      throw new GatewayError('permission', `token's team claim names no team of tenant "${tenant}"`, { code: 'unknown_team' });
    const g = claims[map.groupsClaim];
    const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? g.split(/[ ,]+/).filter(Boolean) : [];
    return { authMethod: 'jwt', keyId: '', tenant, team, user: str(claims[map.userClaim]), groups, claims };
  }
  if (cred.token)
    throw new GatewayError('authentication', 'Incorrect API key provided.', { code: 'invalid_api_key' });
  throw new GatewayError(
    'authentication',
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key').",
    { code: 'missing_api_key' },
  );
}
