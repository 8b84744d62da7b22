// Per-caller memo of caller-constant expression values (CExpr.callerConstant, decided at compile time).
//
// Most expressions of a typical bundle read only who is calling (principal.*, tenant.attributes,
// team.attributes, …); their values are the same for every request of one caller. One cache lives
// in one bundle (a config reload builds a new bundle, hence a new cache). An entry is found by the
// caller's scalar fields (by value: a managed key changed in the key store yields a different key)
// and is used only while the tenant's and team's attribute objects are the very ones it was filled
// from (config snapshots never mutate them; a reload replaces them). Callers with JWT claims are
// not cached (their claims differ per token). Only primitive successful values are stored: errors
// are evaluated again every time, and no object is shared between requests.
import type { PolicyInput } from './types.ts';

/** Distinct callers remembered per bundle; the oldest is dropped beyond that. */
export const CALLER_CACHE_MAX = 1024;

interface Entry {
  tenantAttrs: unknown;
  teamAttrs: unknown;
  /** By CExpr.callerSlot; `undefined` = not computed yet (no CEL value is undefined). */
  values: unknown[];
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/**
 * The caller's scalar fields as one string, each length-prefixed (unambiguous whatever characters a
 * field holds; cheaper than JSON.stringify). undefined when a field is not a string (not cached).
 */
function callerKey(authMethod: unknown, keyId: unknown, tenant: unknown, team: unknown, user: unknown, groups: unknown, tenantName: unknown, timeZone: unknown, teamName: unknown): string | undefined {
  if (typeof authMethod !== 'string' || typeof keyId !== 'string' || typeof tenant !== 'string' || typeof team !== 'string' || typeof user !== 'string') return undefined;
  if (typeof tenantName !== 'string' || typeof timeZone !== 'string' || typeof teamName !== 'string' || !Array.isArray(groups)) return undefined;
  let k = `${authMethod.length}:${authMethod}${keyId.length}:${keyId}${tenant.length}:${tenant}${team.length}:${team}${user.length}:${user}${tenantName.length}:${tenantName}${timeZone.length}:${timeZone}${teamName.length}:${teamName}${groups.length}`;
  for (const g of groups) {
    if (typeof g !== 'string') return undefined;
    k += `:${g.length}:${g}`;
  }
  return k;
}

export class CallerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly slots: number) {}

  /** The value slots for this request's caller (filled as expressions run), or undefined: do not cache. */
  valuesFor(input: PolicyInput): unknown[] | undefined {
    const p = input.principal;
    const claims: unknown = p.claims;
    // Only a caller without claims (virtual keys: `{}`) is cached; anything else is not a plain empty object.
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || hasOwnKeys(claims)) return undefined;
    const t = input.tenant;
    const tm = input.team;
    const key = callerKey(p.authMethod, p.keyId, p.tenant, p.team, p.user, p.groups, t.name, t.timeZone ?? 'UTC', tm.name);
    if (key === undefined) return undefined;
    let e = this.entries.get(key);
    if (e && e.tenantAttrs === t.attributes && e.teamAttrs === tm.attributes) return e.values;
    if (e) this.entries.delete(key);
    else if (this.entries.size >= CALLER_CACHE_MAX) this.entries.delete(this.entries.keys().next().value as string);
    e = { tenantAttrs: t.attributes, teamAttrs: tm.attributes, values: new Array<unknown>(this.slots) };
    this.entries.set(key, e);
    return e.values;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Values safe to hand to another request: immutable primitives only. */
export function cacheable(v: unknown): boolean {
  const t = typeof v;
  return t === 'boolean' || t === 'string' || t === 'number' || t === 'bigint' || v === null;
}
