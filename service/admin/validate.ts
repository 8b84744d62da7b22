// Admin API input → typed values, with a precise 400 naming the field for anything else.
import type { KeyLimits } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import type { KeyPatch, NewKey } from '../identity/managed-keys.ts';

type Obj = Record<string, unknown>;

function bad(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', `${param}: ${message}`, { code: 'invalid_field', param });
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:@\/-]{0,63}$/;
const WINDOWS = ['minute', 'hour', 'day', 'month'] as const;

function known(o: Obj, fields: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!fields.includes(k)) throw bad(where ? `${where}.${k}` : k, `unknown field (expected one of ${fields.join(', ')})`);
}

function text(o: Obj, k: string, re = NAME): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !re.test(v)) throw bad(k, `must be a string matching ${re}`);
  return v;
}

function strings(o: Obj, k: string): string[] | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 100 || !v.every((x) => typeof x === 'string' && NAME.test(x))) throw bad(k, 'must be a list of up to 100 names');
  return v as string[];
}

function time(o: Obj, k: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || Number.isNaN(Date.parse(v)) || !/^\d{4}-\d{2}-\d{2}T/.test(v)) throw bad(k, 'must be an RFC 3339 time, e.g. 2026-12-31T00:00:00Z');
  return new Date(v).toISOString();
}

function metadata(o: Obj): Record<string, string> | undefined {
  const v = o.metadata;
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('metadata', 'must be an object of strings');
  const e = Object.entries(v as Obj);
  if (e.length > 32) throw bad('metadata', 'at most 32 entries');
  for (const [k, x] of e) if (typeof x !== 'string' || x.length > 256 || !/^[A-Za-z0-9._-]{1,64}$/.test(k)) throw bad(`metadata.${k}`, 'keys are names, values strings of ≤ 256 characters');
  return v as Record<string, string>;
}

function positive(v: unknown, param: string, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) throw bad(param, `must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

export function parseLimits(v: unknown): KeyLimits {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('limits', 'must be an object');
  const o = v as Obj;
  known(o, ['models', 'budget', 'rateLimit'], 'limits');
  const out: KeyLimits = {};
  if (o.models !== undefined) {
    if (!Array.isArray(o.models) || !o.models.every((m) => typeof m === 'string' && m.length > 0 && m.length <= 128)) throw bad('limits.models', 'must be a list of model names');
    out.models = o.models as string[];
  }
  if (o.budget !== undefined) {
    const b = o.budget as Obj;
    if (b === null || typeof b !== 'object') throw bad('limits.budget', 'must be {usd, window}');
    known(b, ['usd', 'window'], 'limits.budget');
    const window = b.window ?? 'month';
    if (!WINDOWS.includes(window as (typeof WINDOWS)[number])) throw bad('limits.budget.window', `must be one of ${WINDOWS.join(', ')}`);
    out.budget = { usd: positive(b.usd, 'limits.budget.usd', false), window: window as (typeof WINDOWS)[number] };
  }
  if (o.rateLimit !== undefined) {
    const r = o.rateLimit as Obj;
    if (r === null || typeof r !== 'object') throw bad('limits.rateLimit', 'must be {rpm?, tpm?}');
    known(r, ['rpm', 'tpm'], 'limits.rateLimit');
    if (r.rpm === undefined && r.tpm === undefined) throw bad('limits.rateLimit', 'set rpm and/or tpm');
    out.rateLimit = {
      ...(r.rpm !== undefined ? { rpm: positive(r.rpm, 'limits.rateLimit.rpm', true) } : {}),
      ...(r.tpm !== undefined ? { tpm: positive(r.tpm, 'limits.rateLimit.tpm', true) } : {}),
    };
  }
  return out;
}

export function parseNewKey(o: Obj): NewKey {
  known(o, ['name', 'tenant', 'team', 'user', 'groups', 'expiresAt', 'limits', 'metadata'], '');
  const tenant = text(o, 'tenant');
  if (!tenant) throw bad('tenant', 'is required');
  const expiresAt = time(o, 'expiresAt');
  return {
    tenant,
    ...(o.name !== undefined ? { name: text(o, 'name')! } : {}),
    ...(o.team !== undefined ? { team: text(o, 'team')! } : {}),
    ...(o.user !== undefined ? { user: text(o, 'user')! } : {}),
    groups: strings(o, 'groups') ?? [],
    ...(expiresAt ? { expiresAt } : {}),
    ...(o.limits !== undefined ? { limits: parseLimits(o.limits) } : {}),
    metadata: metadata(o) ?? {},
  };
}

export function parsePatch(o: Obj): KeyPatch {
  known(o, ['name', 'user', 'groups', 'expiresAt', 'limits', 'metadata'], '');
  if (!Object.keys(o).length) throw bad('body', 'nothing to change');
  const p: KeyPatch = {};
  if (o.name !== undefined) p.name = o.name === null ? null : text(o, 'name')!;
  if (o.user !== undefined) p.user = o.user === null ? null : text(o, 'user')!;
  if (o.groups !== undefined) p.groups = strings(o, 'groups')!;
  if (o.expiresAt !== undefined) p.expiresAt = o.expiresAt === null ? null : time(o, 'expiresAt')!;
  if (o.limits !== undefined) p.limits = o.limits === null ? null : parseLimits(o.limits);
  if (o.metadata !== undefined) p.metadata = metadata(o)!;
  return p;
}

export function parseOverlap(o: Obj): number {
  known(o, ['overlapSeconds'], '');
  const v = o.overlapSeconds ?? 3600;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 30 * 86400) throw bad('overlapSeconds', 'must be a whole number of seconds between 0 and 2592000 (30 days)');
  return v;
}
