// Per-caller memo of caller-constant expression values (CExpr.callerConstant, decided at compile time).
//
// Most expressions of a typical bundle read only who is calling (principal.*, tenant.attributes,
// team.attributes, …); their values are the same for every request of one caller. One cache lives
// in one bundle (a config reload builds a new bundle, hence a new cache). An entry is found by the
// caller's key id and used only while its scalar fields and groups are equal by value (a managed key
// changed in the key store replaces the entry) and while the tenant's and team's attribute objects are the very ones it was filled
// from (config snapshots never mutate them; a reload replaces them). Callers with JWT claims are
// not cached (their claims differ per token). Only primitive successful values are stored: errors
// are evaluated again every time, and no object is shared between requests.
import type { PolicyInput } from './types.ts';

/** Distinct callers remembered per bundle; the oldest is dropped beyond that. */
export const CALLER_CACHE_MAX = 1024;

/** Budget / rate-limit scopes whose key depends on the caller alone (evaluate.ts scopeKey). */
export type CallerScope = 'key' | 'user' | 'team' | 'tenant';

/** One caller: the fields it was filled for (compared on every lookup) and what was computed for it. */
export class CallerEntry {
  /** By CExpr.callerSlot; `undefined` = not computed yet (no CEL value is undefined). */
  readonly values: unknown[];
  // Scope keys (`key:<id>`, …) of this caller, built once: a budget's bucket key is the same string on every request.
  keyScope: string | undefined;
  userScope: string | undefined;
  teamScope: string | undefined;
  tenantScope: string | undefined;

  constructor(
    slots: number,
    readonly authMethod: string,
    readonly keyId: string,
    readonly tenant: string,
    readonly team: string,
    readonly user: string,
    readonly groups: readonly string[],
    readonly tenantName: string,
    readonly timeZone: string,
    readonly teamName: string,
    readonly tenantAttrs: unknown,
    readonly teamAttrs: unknown,
  ) {
    this.values = new Array<unknown>(slots);
  }
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** A copy of `groups` when every element is a string; undefined otherwise (not cached). */
function stringList(groups: unknown): string[] | undefined {
  if (!Array.isArray(groups)) return undefined;
  for (const g of groups) if (typeof g !== 'string') return undefined;
  return groups.slice() as string[];
}

function sameList(a: readonly string[], b: unknown): boolean {
  if (!Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class CallerCache {
  // Found by key id, then every scalar field, the groups and the attribute objects are compared: no
  // composite string key is built (and hashed) per request. Callers sharing a key id take turns in
  // one entry (a miss, never a wrong value).
  private readonly entries = new Map<string, CallerEntry>();

  constructor(private readonly slots: number) {}

  /** This request's caller's entry (values filled as expressions run), or undefined: do not cache. */
  entryFor(input: PolicyInput): CallerEntry | undefined {
    const p = input.principal;
    const claims: unknown = p.claims;
    // Only a caller without claims (virtual keys: `{}`) is cached; anything else is not a plain empty object.
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || hasOwnKeys(claims)) return undefined;
    const t = input.tenant;
    const tm = input.team;
    const authMethod: unknown = p.authMethod;
    const keyId: unknown = p.keyId;
    const tenant: unknown = p.tenant;
    const team: unknown = p.team;
    const user: unknown = p.user;
    const tenantName: unknown = t.name;
    const timeZone: unknown = t.timeZone ?? 'UTC';
    const teamName: unknown = tm.name;
    if (typeof authMethod !== 'string' || typeof keyId !== 'string' || typeof tenant !== 'string' || typeof team !== 'string' || typeof user !== 'string') return undefined;
    if (typeof tenantName !== 'string' || typeof timeZone !== 'string' || typeof teamName !== 'string') return undefined;
    const e = this.entries.get(keyId);
    if (
      e !== undefined &&
      e.authMethod === authMethod &&
      e.tenant === tenant &&
      e.team === team &&
      e.user === user &&
      e.tenantName === tenantName &&
      e.timeZone === timeZone &&
      e.teamName === teamName &&
      e.tenantAttrs === t.attributes &&
      e.teamAttrs === tm.attributes &&
      sameList(e.groups, p.groups)
    )
      return e;
    const groups = stringList(p.groups);
    if (groups === undefined) return undefined;
    if (e) this.entries.delete(keyId);
    else if (this.entries.size >= CALLER_CACHE_MAX) this.entries.delete(this.entries.keys().next().value as string);
    const fresh = new CallerEntry(this.slots, authMethod, keyId, tenant, team, user, groups, tenantName, timeZone, teamName, t.attributes, tm.attributes);
    this.entries.set(keyId, fresh);
    return fresh;
  }

  /** The value slots for this request's caller, or undefined: do not cache. */
  valuesFor(input: PolicyInput): unknown[] | undefined {
    return this.entryFor(input)?.values;
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
