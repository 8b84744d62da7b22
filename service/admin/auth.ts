// Who is calling the admin API (/admin/v1/*), from `Authorization: Bearer <credential>`:
//   1. the admin credential (TOLLGATE_ADMIN_TOKEN, the same guard as /v1/spend) → full admin;
//   2. a team admin token (TOLLGATE_TEAM_ADMIN_TOKENS: `tenant[/team]=token,…`) → that tenant / team only;
//   3. an HS256 JWT signed with TOLLGATE_ADMIN_JWT_SECRET (iss/aud checked when configured): the group
//      `tollgate-admins` → full admin; `tollgate-team-admins` → the tenant/team in its claims.
// Envoy's jwt_authn does not front this port, so a JWT here is verified here, never trusted as sent.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AdminGuard } from '../security/index.ts';
import { SecretSet } from '../security/secrets.ts';

export type AdminActor =
  | { role: 'admin'; name: string }
  | { role: 'team'; name: string; tenant: string; team?: string };

export interface AdminJwtOptions {
  secret: string;
  issuer?: string;
  audience?: string;
  groupsClaim?: string;
  tenantClaim?: string;
  teamClaim?: string;
  adminGroup?: string;
  teamAdminGroup?: string;
}

export interface AdminAuthOptions {
  guard: AdminGuard;
  /** `tenant` or `tenant/team` → tokens. */
  teamTokens?: { scope: string; token: string }[];
  jwt?: AdminJwtOptions;
  now?: () => number;
}

export type AdminAuth = (req: IncomingMessage) => AdminActor | 'unauthenticated' | 'disabled';

/** `acme=tok1,acme/research=tok2` → scopes and tokens; throws on a malformed entry. */
export function parseTeamAdminTokens(raw: string | undefined): { scope: string; token: string }[] {
  if (!raw?.trim()) return [];
  return raw.split(',').map((part) => {
    const i = part.indexOf('=');
    const scope = part.slice(0, i).trim();
    const token = part.slice(i + 1).trim();
    if (i <= 0 || !/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)?$/i.test(scope) || token.length < 16)
      throw new Error('TOLLGATE_TEAM_ADMIN_TOKENS entries are `tenant[/team]=<token of 16+ characters>`, comma-separated');
    return { scope, token };
  });
}

function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** Verified claims of an HS256 JWT, or undefined (bad signature, algorithm, expiry, issuer or audience). */
export function verifyHs256(token: string, o: AdminJwtOptions, nowSec: number): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const head = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: unknown };
    if (head.alg !== 'HS256') return undefined;
    const want = createHmac('sha256', o.secret).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2]!, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    const c = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof c.exp !== 'number' || c.exp <= nowSec) return undefined;
    if (typeof c.nbf === 'number' && c.nbf > nowSec + 60) return undefined;
    if (o.issuer && c.iss !== o.issuer) return undefined;
    if (o.audience) {
      const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
      if (!aud.includes(o.audience)) return undefined;
    }
    return c;
  } catch {
    return undefined;
  }
}

export function adminAuth(o: AdminAuthOptions): AdminAuth {
  const teams = (o.teamTokens ?? []).map((t) => ({ scope: t.scope, set: new SecretSet([t.token]) }));
  const now = o.now ?? Date.now;
  return (req) => {
    const token = bearer(req);
    if (token) {
      for (const t of teams) {
        if (t.set.matches(token)) {
          const [tenant, team] = t.scope.split('/') as [string, string | undefined];
          return { role: 'team', name: `team-admin:${t.scope}`, tenant, ...(team ? { team } : {}) };
        }
      }
      if (o.jwt && token.split('.').length === 3) {
        const c = verifyHs256(token, o.jwt, Math.floor(now() / 1000));
        if (c) {
          const g = c[o.jwt.groupsClaim ?? 'groups'];
          const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? g.split(/[ ,]+/) : [];
          const who = `jwt:${typeof c.sub === 'string' ? c.sub : '?'}`;
          if (groups.includes(o.jwt.adminGroup ?? 'tollgate-admins')) return { role: 'admin', name: who };
          const tenant = c[o.jwt.tenantClaim ?? 'tenant'];
          const team = c[o.jwt.teamClaim ?? 'team'];
          if (groups.includes(o.jwt.teamAdminGroup ?? 'tollgate-team-admins') && typeof tenant === 'string' && tenant)
            return { role: 'team', name: who, tenant, ...(typeof team === 'string' && team ? { team } : {}) };
        }
      }
    }
    const v = o.guard.check(req);
    if (v === 'allowed') return { role: 'admin', name: token ? 'admin-token' : 'open-development' };
    // With team tokens or a JWT configured, the API is on even when no admin token is.
    if (v === 'disabled' && (teams.length || o.jwt)) return 'unauthenticated';
    return v;
  };
}

/** May this actor manage keys of tenant/team? */
export function canManage(a: AdminActor, tenant: string, team: string | undefined): boolean {
  if (a.role === 'admin') return true;
  if (a.tenant !== tenant) return false;
  return a.team === undefined || a.team === team;
}
