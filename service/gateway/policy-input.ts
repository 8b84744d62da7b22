// Builds the CEL context (`request`, `principal`, `tenant`, `team`, `now`) for a request, and the
// policy-filtered model list for GET /v1/models.
import type { Principal } from '../identity/principal.ts';
import { buildRequestInput } from '../policy/index.ts';
import type { PolicyInput } from '../policy/types.ts';
import type { ClientApi } from '../errors.ts';
import { toOpenAIModel, type OpenAIModelObject, type ResolvedModel } from '../routing/index.ts';
import type { Snapshot } from './context.ts';

/**
 * Attributes of a tenant/team without any. One shared object (never mutated) rather than `{}` per
 * request: the policy engine's per-caller cache is valid while the attribute objects are the same.
 */
const NO_ATTRIBUTES: Record<string, unknown> = Object.freeze({});

export function principalContext(snap: Snapshot, principal: Principal): Pick<PolicyInput, 'principal' | 'tenant' | 'team'> {
  return { principal: { ...principal }, tenant: tenantContext(snap, principal), team: teamContext(snap, principal) };
}

function tenantContext(snap: Snapshot, principal: Principal): PolicyInput['tenant'] {
  const tenant = snap.core.tenants.get(principal.tenant);
  return { name: principal.tenant, attributes: tenant?.attributes ?? NO_ATTRIBUTES, timeZone: tenant?.timeZone ?? 'UTC' };
}

function teamContext(snap: Snapshot, principal: Principal): PolicyInput['team'] {
  const team = principal.team ? findTeam(snap.core.teams, principal.tenant, principal.team) : undefined;
  return { name: principal.team, attributes: team?.attributes ?? NO_ATTRIBUTES };
}

type Teams = Snapshot['core']['teams'];
type Team = Teams extends ReadonlyMap<string, infer T> ? T : never;

/** Distinct (tenant, team) pairs remembered per config; the memo starts over beyond that. */
export const TEAM_MEMO_MAX = 4096;

/**
 * `teams.get(`${tenant}/${team}`)`, remembered by tenant then team. Why: the principal's tenant and team strings are
 * the key record's own (hash already computed), while the joined key is a new string each request that must be
 * flattened and hashed before the lookup. One memo per teams Map (a config's, never mutated after load; a reload
 * makes a new one and the WeakMap lets the old go); it stores the flat lookup's answer, misses included, so it
 * agrees with it for any names.
 */
const teamMemos = new WeakMap<Teams, { size: number; teams: number; byTenant: Map<string, Map<string, Team | undefined>> }>();

export function findTeam(teams: Teams, tenant: string, team: string): Team | undefined {
  let memo = teamMemos.get(teams);
  // (A changed number of teams starts over too: belt and braces, config snapshots are not mutated.)
  if (memo === undefined || memo.size >= TEAM_MEMO_MAX || memo.teams !== teams.size) {
    memo = { size: 0, teams: teams.size, byTenant: new Map() };
    teamMemos.set(teams, memo);
  }
  let byTeam = memo.byTenant.get(tenant);
  if (byTeam === undefined) memo.byTenant.set(tenant, (byTeam = new Map()));
  const hit = byTeam.get(team);
  if (hit !== undefined || byTeam.has(team)) return hit;
  const found = teams.get(`${tenant}/${team}`);
  byTeam.set(team, found);
  memo.size++;
  return found;
}

export function buildPolicyInput(
  snap: Snapshot,
  api: ClientApi,
  body: Record<string, unknown>,
  principal: Principal,
  headers: ReadonlyMap<string, string>,
  method: string,
  path: string,
  size: number,
  now: Date,
): PolicyInput {
  const request = buildRequestInput({ method, path, api, headers, body, size });
  // Model rules must see through aliases, or an alias would bypass a deny-list.
  const canonical = request.model ? snap.catalog.resolve(request.model)?.model.name : undefined;
  if (canonical && canonical !== request.model) request.canonicalModel = canonical;
  // The same object as `{ request, ...principalContext(), now }`, without the intermediate one.
  return { request, principal: { ...principal }, tenant: tenantContext(snap, principal), team: teamContext(snap, principal), now };
}

/**
 * `GET /v1/models`: exactly the models this caller's policies allow — each model is evaluated as
 * if requested, and must keep at least one deployment that passes the route constraints.
 */
export function listAllowedModels(snap: Snapshot, principal: Principal, headers: ReadonlyMap<string, string>, now: Date): OpenAIModelObject[] {
  const out: OpenAIModelObject[] = [];
  const created = Math.floor(snap.loadedAt.getTime() / 1000);
  const who = principalContext(snap, principal);
  const hdrs = Object.fromEntries(headers);
  for (const listing of snap.catalog.listModels()) {
    const model = snap.catalog.resolve(listing.id);
    if (model && mayUse(snap, who, hdrs, now, listing.id, model)) out.push(toOpenAIModel(listing, created));
  }
  return out;
}

/**
 * `GET /v1/models/{id}`: the model as the list would show it, when the caller may use it under that name (an alias
 * or a wildcard match is judged as requested, seeing through to the canonical model); undefined otherwise.
 */
export function findAllowedModel(snap: Snapshot, principal: Principal, headers: ReadonlyMap<string, string>, now: Date, id: string): OpenAIModelObject | undefined {
  if (!snap.catalog.acceptsName(id)) return undefined;
  let model: ResolvedModel | undefined;
  try {
    model = snap.catalog.resolve(id);
  } catch {
    return undefined; // a wildcard suffix with characters no request could use
  }
  if (!model || !mayUse(snap, principalContext(snap, principal), Object.fromEntries(headers), now, id, model)) return undefined;
  const primary = [...model.entries].sort((a, b) => a.deployment.priority - b.deployment.priority)[0];
  return { id, object: 'model', created: Math.floor(snap.loadedAt.getTime() / 1000), owned_by: primary?.provider.name ?? 'tollgate' };
}

function mayUse(
  snap: Snapshot,
  who: Pick<PolicyInput, 'principal' | 'tenant' | 'team'>,
  hdrs: Record<string, string>,
  now: Date,
  name: string,
  model: ResolvedModel,
): boolean {
  const embedding = model.model.kind === 'embedding';
  const body: Record<string, unknown> = embedding ? { model: name, input: '' } : { model: name, messages: [] };
  const path = embedding ? '/v1/embeddings' : '/v1/chat/completions';
  const request = buildRequestInput({ method: 'POST', path, api: 'openai', headers: hdrs, body, size: 0 });
  if (model.model.name !== name && model.via === 'alias') request.canonicalModel = model.model.name;
  const d = snap.policy.evaluate({ request, ...who, now }, { listing: true });
  if (d.denied) return false;
  return model.entries.some((e) => d.routeCheck(e.info).ok);
}
