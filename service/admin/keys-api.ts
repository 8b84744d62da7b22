// /admin/v1/keys…: managed virtual keys (docs/keys.md). Team admins see and change only their scope.
import { GatewayError } from '../errors.ts';
import type { KeyAdmin, ManagedKeyView } from '../identity/managed-keys.ts';
import type { Snapshot } from '../gateway/context.ts';
import { canManage } from './auth.ts';
import { describeChange } from './audit.ts';
import type { Route, RouteContext } from './routes.ts';
import { parseNewKey, parseOverlap, parsePatch } from './validate.ts';

export interface KeysApiDeps {
  keys: KeyAdmin | undefined;
  snapshot: () => Snapshot;
}

function store(d: KeysApiDeps): KeyAdmin {
  if (!d.keys)
    throw new GatewayError('unavailable', 'Managed keys need Redis: set REDIS_URL (and keep TOLLGATE_KEY_STORE unset or `redis`).', { code: 'key_store_disabled', status: 501 });
  return d.keys;
}

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No managed key with id '${id}'.`, { code: 'key_not_found', param: 'id' });
}

/** A key that vanished between the scope check and the change (a concurrent revoke-and-delete) is a 404. */
function must<T>(v: T | undefined, id: string): T {
  if (v === undefined) throw notFound(id);
  return v;
}

/** The key, if the caller may manage it; a team admin gets 404 for other teams' keys (no probing). */
async function owned(d: KeysApiDeps, c: RouteContext, id: string): Promise<ManagedKeyView> {
  const k = await store(d).get(id);
  if (!k || !canManage(c.actor, k.tenant, k.team)) throw notFound(id);
  return k;
}

function checkScope(d: KeysApiDeps, c: RouteContext, tenant: string, team: string | undefined): void {
  const core = d.snapshot().core;
  if (!core.tenants.has(tenant)) throw new GatewayError('invalid_request', `tenant: unknown tenant '${tenant}'`, { code: 'unknown_tenant', param: 'tenant' });
  if (team && !core.teams.has(`${tenant}/${team}`)) throw new GatewayError('invalid_request', `team: tenant '${tenant}' has no team '${team}'`, { code: 'unknown_team', param: 'team' });
  if (!canManage(c.actor, tenant, team))
    throw new GatewayError('permission', `You may manage keys of ${c.actor.role === 'team' ? `${c.actor.tenant}${c.actor.team ? '/' + c.actor.team : ''}` : 'any team'} only.`, { code: 'outside_admin_scope' });
  if (c.actor.role === 'team' && c.actor.team && !team)
    throw new GatewayError('permission', `team: a team admin creates keys of team '${c.actor.team}' only; set team.`, { code: 'outside_admin_scope', param: 'team' });
}

export function keysRoutes(d: KeysApiDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/admin/v1/keys',
      handler: async (c) => {
        const tenant = c.query.get('tenant') ?? undefined;
        const team = c.query.get('team') ?? undefined;
        const all = await store(d).list({ tenant, team, includeRevoked: c.query.get('includeRevoked') === 'true' });
        return { status: 200, body: { data: all.filter((k) => canManage(c.actor, k.tenant, k.team)) } };
      },
    },
    {
      method: 'POST',
      path: '/admin/v1/keys',
      handler: async (c) => {
        const nk = parseNewKey(await c.body());
        checkScope(d, c, nk.tenant, nk.team);
        const { key, secret } = await store(d).create(nk, c.actor.name);
        c.audit({ action: 'key.create', target: key.id, tenant: key.tenant, team: key.team, status: 201, detail: describeChange({ name: nk.name, user: nk.user, expiresAt: nk.expiresAt, limits: nk.limits }) });
        return { status: 201, body: { key, secret } };
      },
    },
    {
      method: 'GET',
      path: '/admin/v1/keys/{id}',
      handler: async (c) => ({ status: 200, body: { key: await owned(d, c, c.params.id!) } }),
    },
    {
      method: 'PATCH',
      path: '/admin/v1/keys/{id}',
      handler: async (c) => {
        const patch = parsePatch(await c.body());
        const k = await owned(d, c, c.params.id!);
        const key = must(await store(d).update(k.id, patch), k.id);
        c.audit({ action: 'key.update', target: key.id, tenant: key.tenant, team: key.team, status: 200, detail: describeChange(patch) });
        return { status: 200, body: { key } };
      },
    },
    ...(['disable', 'enable'] as const).map(
      (verb): Route => ({
        method: 'POST',
        path: `/admin/v1/keys/{id}/${verb}`,
        handler: async (c) => {
          const k = await owned(d, c, c.params.id!);
          const key = must(await store(d).update(k.id, { status: verb === 'disable' ? 'disabled' : 'active' }), k.id);
          c.audit({ action: `key.${verb}`, target: key.id, tenant: key.tenant, team: key.team, status: 200 });
          return { status: 200, body: { key } };
        },
      }),
    ),
    {
      method: 'POST',
      path: '/admin/v1/keys/{id}/revoke',
      handler: async (c) => {
        const k = await owned(d, c, c.params.id!);
        const key = must(await store(d).revoke(k.id), k.id);
        c.audit({ action: 'key.revoke', target: key.id, tenant: key.tenant, team: key.team, status: 200 });
        return { status: 200, body: { key } };
      },
    },
    {
      method: 'POST',
      path: '/admin/v1/keys/{id}/rotate',
      handler: async (c) => {
        const overlap = parseOverlap(await c.body());
        const k = await owned(d, c, c.params.id!);
        const r = must(await store(d).rotate(k.id, overlap), k.id);
        c.audit({ action: 'key.rotate', target: k.id, tenant: k.tenant, team: k.team, status: 200, detail: { overlapSeconds: String(overlap) } });
        return { status: 200, body: r };
      },
    },
  ];
}
