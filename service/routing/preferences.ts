// Validation of the OpenRouter-compatible request fields `models` and `provider`.
// Unknown or unsupported fields are rejected (400) rather than ignored: a client that asks for
// zero data retention or a quantization must not silently get something else.
import { GatewayError } from '../errors.ts';
import type { ProviderPreferences } from './types.ts';

export const MAX_FALLBACK_MODELS = 10;
const MAX_PROVIDER_LIST = 64;

function bad(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { code: 'invalid_request', param });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `models` → string[] as sent (undefined/null → undefined); the router drops duplicates. */
export function parseModels(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw bad('models', "'models' must be an array of model names");
  if (raw.length > MAX_FALLBACK_MODELS) {
    throw bad('models', `'models' may list at most ${MAX_FALLBACK_MODELS} models, got ${raw.length}`);
  }
  const out: string[] = [];
  raw.forEach((m, i) => {
    if (typeof m !== 'string' || m.length === 0) throw bad(`models[${i}]`, `'models[${i}]' must be a non-empty string`);
    out.push(m);
  });
  return out;
}

/** Lower-case provider names (a Set or the catalog's provider Map). */
export interface KnownProviders {
  has(name: string): boolean;
}

function stringList(raw: unknown, field: string, knownProviders: KnownProviders | undefined): string[] {
  const param = `provider.${field}`;
  if (!Array.isArray(raw)) throw bad(param, `'${param}' must be an array of provider names`);
  if (raw.length > MAX_PROVIDER_LIST) throw bad(param, `'${param}' may list at most ${MAX_PROVIDER_LIST} providers`);
  const out: string[] = [];
  raw.forEach((v, i) => {
    if (typeof v !== 'string' || v.length === 0) throw bad(`${param}[${i}]`, `'${param}[${i}]' must be a non-empty string`);
    const name = v.toLowerCase();
    if (knownProviders && !knownProviders.has(name)) {
      throw bad(`${param}[${i}]`, `'${param}[${i}]': unknown provider '${v.slice(0, 100)}'`);
    }
    if (!out.includes(name)) out.push(name);
  });
  return out;
}

function oneOf<T extends string>(raw: unknown, field: string, allowed: readonly T[]): T {
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
  throw bad(`provider.${field}`, `'provider.${field}' must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

function bool(raw: unknown, field: string): boolean {
  if (typeof raw !== 'boolean') throw bad(`provider.${field}`, `'provider.${field}' must be a boolean`);
  return raw;
}

function price(raw: unknown, field: string): number {
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0) {
    throw bad(`provider.max_price.${field}`, `'provider.max_price.${field}' must be a number ≥ 0 (USD per million tokens)`);
  }
  return raw;
}

/**
 * `provider` → ProviderPreferences (undefined/null → undefined). Provider names are lower-cased and,
 * when `knownProviders` (lower-case names) is given, must exist. Null fields count as absent.
 */
export function parseProviderPreferences(
  raw: unknown,
  knownProviders?: KnownProviders,
): ProviderPreferences | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) throw bad('provider', "'provider' must be an object");
  const out: ProviderPreferences = {};
  for (const [key, v] of Object.entries(raw)) {
    if (v === null || v === undefined) continue;
    switch (key) {
      case 'order':
      case 'only':
      case 'ignore':
        out[key] = stringList(v, key, knownProviders);
        break;
      case 'sort':
        out.sort = oneOf(v, key, ['price', 'latency', 'throughput'] as const);
        break;
      case 'data_collection':
        out.data_collection = oneOf(v, key, ['allow', 'deny'] as const);
        break;
      case 'allow_fallbacks':
        out.allow_fallbacks = bool(v, key);
        break;
      case 'zdr':
        out.zdr = bool(v, key);
        break;
      case 'max_price': {
        if (!isPlainObject(v)) throw bad('provider.max_price', "'provider.max_price' must be an object");
        const mp: { prompt?: number; completion?: number } = {};
        for (const [k, pv] of Object.entries(v)) {
          if (pv === null || pv === undefined) continue;
          if (k === 'prompt' || k === 'completion') mp[k] = price(pv, k);
          else throw bad(`provider.max_price.${k}`, `'provider.max_price.${k}' is not supported (only 'prompt' and 'completion')`);
        }
        out.max_price = mp;
        break;
      }
      // Accepted only in their "no constraint" form: we have no data to honour them.
      case 'require_parameters':
      case 'enforce_distillable_text':
        if (bool(v, key)) throw bad(`provider.${key}`, `'provider.${key}: true' is not supported by this gateway`);
        break;
      case 'quantizations':
        if (!Array.isArray(v)) throw bad(`provider.${key}`, `'provider.${key}' must be an array`);
        if (v.length > 0) throw bad(`provider.${key}`, `'provider.${key}' is not supported by this gateway`);
        break;
      default:
        throw bad(`provider.${key.slice(0, 100)}`, `unknown field 'provider.${key.slice(0, 100)}'`);
    }
  }
  return out;
}
