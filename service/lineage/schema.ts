// Validates lineage JSON against THE schema: proto/tollgate/lineage/v1/lineage.proto, loaded with protobufjs.
// Two checks: (1) a strict walk of the JSON over the reflected message types, applying the proto3 JSON mapping
// rules and the schema's own `(required)` / `(pattern)` field options; (2) a binary round trip
// (fromObject → encode → decode → toObject) whose result must equal the input, field for field.
// Records of every schema version this code understands validate (version 1: rule outcomes folded into
// RULE_RESULT_MATCHED), each against its own version's rules.

import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';
import { LINEAGE_SCHEMA_VERSION } from './record.ts';

export const LINEAGE_PROTO_PATH = fileURLToPath(
  new URL('../../proto/tollgate/lineage/v1/lineage.proto', import.meta.url),
);
export const LINEAGE_RECORD_TYPE = 'tollgate.lineage.v1.LineageRecord';

let cachedRoot: protobuf.Root | undefined;

/** The loaded, resolved protobufjs Root for the lineage schema (cached). */
export function lineageRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const require = createRequire(import.meta.url);
  const pbDir = path.dirname(require.resolve('protobufjs/package.json'));
  const root = new protobuf.Root();
  // timestamp.proto is built into protobufjs ("common"); descriptor.proto ships as a file in the package.
  root.resolvePath = (origin: string, target: string): string => {
    if (target === 'google/protobuf/descriptor.proto') return path.join(pbDir, target);
    if (target.startsWith('google/protobuf/')) return target;
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync(LINEAGE_PROTO_PATH, { keepCase: false });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

export function lineageRecordType(): protobuf.Type {
  return lineageRoot().lookupType(LINEAGE_RECORD_TYPE);
}

const TIMESTAMP = 'google.protobuf.Timestamp';
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const INT32_TYPES = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32_TYPES = new Set(['uint32', 'fixed32']);
const INT64_TYPES = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64_TYPES = new Set(['uint64', 'fixed64']);
const FLOAT_TYPES = new Set(['double', 'float']);
const SPECIAL_FLOATS = new Set(['NaN', 'Infinity', '-Infinity']);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fieldOption(f: protobuf.Field, name: string): unknown {
  return f.options?.[`(${name})`] ?? f.options?.[`(tollgate.lineage.v1.${name})`];
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** Field lookup by JSON name (lowerCamelCase) or original proto name, as proto3 JSON parsers must accept both. */
function fieldByJsonKey(t: protobuf.Type, key: string): protobuf.Field | undefined {
  const direct = t.fields[key];
  if (direct) return direct;
  for (const f of t.fieldsArray) if (snake(f.name) === key) return f;
  return undefined;
}

/** Timestamp string → {seconds, nanos}; undefined if not RFC 3339 or out of the Timestamp range. */
export function parseRfc3339(s: string): { seconds: number; nanos: number } | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 59)
    return undefined;
  let ms = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(se));
  if (new Date(ms).getUTCDate() !== day) return undefined; // e.g. Feb 30
  if (zone !== 'Z') {
    const sign = zone![0] === '-' ? -1 : 1;
    ms -= sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6))) * 60_000;
  }
  const seconds = Math.floor(ms / 1000);
  // Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
  if (seconds < -62135596800 || seconds > 253402300799) return undefined;
  const nanos = frac ? Number(frac.slice(1).padEnd(9, '0')) : 0;
  return { seconds, nanos };
}

function formatTimestamp(seconds: number, nanos: number): string {
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return nanos === 0 ? `${base}Z` : `${base}.${String(nanos).padStart(9, '0')}Z`;
}

function isDefault(f: protobuf.Field, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (f.repeated) return Array.isArray(v) && v.length === 0;
  if (f.map) return isObject(v) && Object.keys(v).length === 0;
  if (f.resolvedType instanceof protobuf.Enum) {
    return v === 0 || (typeof v === 'string' && f.resolvedType.values[v] === 0);
  }
  if (f.resolvedType instanceof protobuf.Type) return false; // presence
  switch (typeof v) {
    case 'string':
      return v === '' || ((INT64_TYPES.has(f.type) || UINT64_TYPES.has(f.type)) && /^-?0+$/.test(v));
    case 'number':
      return v === 0;
    case 'boolean':
      return v === false;
    default:
      return false;
  }
}

const patternCache = new Map<string, RegExp>();
function patternRegExp(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})$`);
    patternCache.set(pattern, re);
  }
  return re;
}

class Walker {
  readonly problems: string[] = [];

  message(t: protobuf.Type, v: unknown, at: string): void {
    if (!isObject(v)) {
      this.problems.push(`${at || '(record)'}: expected a JSON object for ${t.name}, got ${kind(v)}`);
      return;
    }
    const seen = new Set<protobuf.Field>();
    for (const [key, val] of Object.entries(v)) {
      const f = fieldByJsonKey(t, key);
      const p = at ? `${at}.${key}` : key;
      if (!f) {
        this.problems.push(`${p}: unknown field for ${t.name}`);
        continue;
      }
      if (seen.has(f)) {
        this.problems.push(`${p}: field ${f.name} given twice`);
        continue;
      }
      seen.add(f);
      if (val === null) continue; // proto3 JSON: null means "default"
      this.field(f, val, p);
    }
    for (const f of t.fieldsArray) {
      if (fieldOption(f, 'required') !== true) continue;
      const key = f.name in v ? f.name : snake(f.name);
      if (isDefault(f, v[key])) {
        this.problems.push(`${at ? at + '.' : ''}${f.name}: required field is missing or empty`);
      }
    }
  }

  field(f: protobuf.Field, v: unknown, at: string): void {
    if (f.map) {
      if (!isObject(v)) {
        this.problems.push(`${at}: expected a JSON object (map), got ${kind(v)}`);
        return;
      }
      for (const [k, item] of Object.entries(v)) this.single(f, item, `${at}[${JSON.stringify(k)}]`);
      return;
    }
    if (f.repeated) {
      if (!Array.isArray(v)) {
        this.problems.push(`${at}: expected a JSON array, got ${kind(v)}`);
        return;
      }
      v.forEach((item, i) => {
        if (item === null) this.problems.push(`${at}[${i}]: null is not allowed in a repeated field`);
        else this.single(f, item, `${at}[${i}]`);
      });
      return;
    }
    this.single(f, v, at);
  }

  single(f: protobuf.Field, v: unknown, at: string): void {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (rt.fullName === '.' + TIMESTAMP) {
        if (typeof v !== 'string' || !parseRfc3339(v))
          this.problems.push(`${at}: expected an RFC 3339 timestamp string, got ${show(v)}`);
      } else {
        this.message(rt, v, at);
      }
      return;
    }
    if (rt instanceof protobuf.Enum) {
      if (typeof v !== 'string') {
        this.problems.push(`${at}: expected an enum name of ${rt.name} (string), got ${kind(v)}`);
      } else if (!(v in rt.values)) {
        this.problems.push(`${at}: ${JSON.stringify(v)} is not a value of ${rt.name}`);
      }
      return;
    }
    const type = f.type;
    if (type === 'string') {
      if (typeof v !== 'string') {
        this.problems.push(`${at}: expected a string, got ${kind(v)}`);
        return;
      }
      const pattern = fieldOption(f, 'pattern');
      if (typeof pattern === 'string' && v !== '' && !patternRegExp(pattern).test(v)) {
        this.problems.push(`${at}: ${JSON.stringify(v)} does not match /${pattern}/`);
      }
    } else if (type === 'bool') {
      if (typeof v !== 'boolean') this.problems.push(`${at}: expected true or false, got ${kind(v)}`);
    } else if (INT32_TYPES.has(type) || UINT32_TYPES.has(type)) {
      const min = UINT32_TYPES.has(type) ? 0 : -(2 ** 31);
      const max = UINT32_TYPES.has(type) ? 2 ** 32 - 1 : 2 ** 31 - 1;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        this.problems.push(`${at}: expected a ${type} number, got ${show(v)}`);
      }
    } else if (INT64_TYPES.has(type) || UINT64_TYPES.has(type)) {
      // The mapping prints 64-bit integers as decimal strings (JS numbers lose precision past 2^53).
      if (typeof v !== 'string' || !/^-?\d+$/.test(v)) {
        this.problems.push(`${at}: expected a ${type} as a decimal string, got ${show(v)}`);
        return;
      }
      const n = BigInt(v);
      const [min, max] = UINT64_TYPES.has(type) ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
      if (n < min || n > max) this.problems.push(`${at}: ${v} is out of range for ${type}`);
    } else if (FLOAT_TYPES.has(type)) {
      if (!(typeof v === 'number' || (typeof v === 'string' && SPECIAL_FLOATS.has(v)))) {
        this.problems.push(`${at}: expected a number, got ${show(v)}`);
      }
    } else if (type === 'bytes') {
      if (typeof v !== 'string' || !BASE64.test(v)) this.problems.push(`${at}: expected base64 bytes, got ${show(v)}`);
    } else {
      this.problems.push(`${at}: unsupported field type ${type}`);
    }
  }
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return kind(v);
}

// ---- round trip ----

/** proto3 JSON → the plain-object form protobufjs' fromObject takes (Timestamps as {seconds, nanos}). */
function toPbObject(t: protobuf.Type, v: Json): Json {
  const out: Json = {};
  for (const [key, val] of Object.entries(v)) {
    const f = fieldByJsonKey(t, key);
    if (!f || val === null) continue;
    const conv = (x: unknown): unknown => {
      const rt = f.resolvedType;
      if (rt instanceof protobuf.Type) {
        if (rt.fullName === '.' + TIMESTAMP) return parseRfc3339(x as string);
        return toPbObject(rt, x as Json);
      }
      if (FLOAT_TYPES.has(f.type) && typeof x === 'string') return Number(x);
      return x;
    };
    if (f.map) out[f.name] = Object.fromEntries(Object.entries(val as Json).map(([k, x]) => [k, conv(x)]));
    else if (f.repeated) out[f.name] = (val as unknown[]).map(conv);
    else out[f.name] = conv(val);
  }
  return out;
}

/** Canonical comparable form: JSON names, defaults dropped (unless the field tracks presence), values normalised. */
function canon(t: protobuf.Type, v: Json): Json {
  const out: Json = {};
  for (const [key, val] of Object.entries(v)) {
    const f = fieldByJsonKey(t, key);
    if (!f) continue;
    const presence = f.partOf !== null && f.partOf !== undefined; // proto3 `optional`
    if (!presence && isDefault(f, val)) continue;
    if (val === null || val === undefined) continue;
    const conv = (x: unknown): unknown => {
      const rt = f.resolvedType;
      if (rt instanceof protobuf.Type) {
        if (rt.fullName === '.' + TIMESTAMP) {
          if (typeof x === 'string') {
            const p = parseRfc3339(x);
            return p ? formatTimestamp(p.seconds, p.nanos) : x;
          }
          const o = x as { seconds?: unknown; nanos?: unknown };
          return formatTimestamp(Number(o.seconds ?? 0), Number(o.nanos ?? 0));
        }
        return canon(rt, x as Json);
      }
      if (INT64_TYPES.has(f.type) || UINT64_TYPES.has(f.type)) return BigInt(String(x)).toString();
      if (FLOAT_TYPES.has(f.type)) {
        const n = Number(x);
        return f.type === 'float' ? Math.fround(n) : n;
      }
      return x;
    };
    if (f.map) out[f.name] = Object.fromEntries(Object.entries(val as Json).map(([k, x]) => [k, conv(x)]));
    else if (f.repeated) out[f.name] = (val as unknown[]).map(conv);
    else out[f.name] = conv(val);
  }
  return out;
}

function diff(a: unknown, b: unknown, at: string, out: string[]): void {
  if (Object.is(a, b)) return;
  if (isObject(a) && isObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) diff(a[k], b[k], at ? `${at}.${k}` : k, out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diff(x, b[i], `${at}[${i}]`, out));
    return;
  }
  out.push(`${at}: does not survive a protobuf round trip (${JSON.stringify(a)} became ${JSON.stringify(b)})`);
}

function roundTrip(t: protobuf.Type, json: Json): string[] {
  const problems: string[] = [];
  try {
    const msg = t.fromObject(toPbObject(t, json));
    const verifyError = t.verify(msg);
    if (verifyError) return [`protobuf verify: ${verifyError}`];
    const back = t.toObject(t.decode(t.encode(msg).finish()), {
      longs: String,
      enums: String,
      defaults: false,
      arrays: false,
      objects: false,
      oneofs: false,
    }) as Json;
    diff(canon(t, json), canon(t, back), '', problems);
  } catch (e) {
    problems.push(`protobuf round trip failed: ${(e as Error).message}`);
  }
  return problems;
}

/** Rule outcomes only one schema version may hold (the enum carries both for reading old records). */
const V1_ONLY_RULE_RESULTS = new Set(['RULE_RESULT_MATCHED']);
const V2_RULE_RESULTS = new Set(['RULE_RESULT_ALLOW', 'RULE_RESULT_DENY', 'RULE_RESULT_WOULD_DENY', 'RULE_RESULT_APPLIED']);

function ruleOutcomeProblems(rec: Json, version: number): string[] {
  const policy = rec.policy;
  const rules = isObject(policy) && Array.isArray(policy.rules) ? policy.rules : [];
  const out: string[] = [];
  rules.forEach((r, i) => {
    const o = isObject(r) ? r.outcome : undefined;
    if (typeof o !== 'string') return;
    const wrong = version >= 2 ? V1_ONLY_RULE_RESULTS.has(o) : V2_RULE_RESULTS.has(o);
    if (wrong) out.push(`policy.rules[${i}].outcome: ${o} is not a rule outcome of schema version ${version}`);
  });
  return out;
}

/**
 * Checks a lineage record in proto3 JSON form against the schema. Returns a list of problems, each starting with
 * the JSON path (`principal.authMethod: …`); an empty list means the record is valid.
 */
export function validateLineageRecord(json: unknown): string[] {
  const t = lineageRecordType();
  const w = new Walker();
  w.message(t, json, '');
  if (w.problems.length > 0) return w.problems;
  const rec = json as Json;
  const problems: string[] = [];
  const version = rec.schemaVersion;
  if (typeof version === 'number' && version > LINEAGE_SCHEMA_VERSION) {
    problems.push(`schemaVersion: ${version} is newer than this validator understands (${LINEAGE_SCHEMA_VERSION})`);
  } else if (typeof version === 'number') {
    problems.push(...ruleOutcomeProblems(rec, version));
  }
  const start = parseRfc3339(String(rec.startTime));
  const end = parseRfc3339(String(rec.endTime));
  if (start && end && (end.seconds < start.seconds || (end.seconds === start.seconds && end.nanos < start.nanos))) {
    problems.push('endTime: is before startTime');
  }
  return problems.concat(roundTrip(t, rec));
}
