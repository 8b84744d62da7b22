// Checks an Envoy config (as parsed YAML) against Envoy's v3 protos from @grpc/grpc-js-xds:
// every field must exist, every enum value must be known, every typed_config must resolve to a
// loaded type, at most one member per oneof. The nearest thing to `envoy --mode validate` here.
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { protoIncludeDirs } from '../../service/extproc/proto.ts';

const EXTENSION_PROTOS = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  // In-request fallback (docs/design/provider-fallback.md): the route's retry_priority and the
  // chain cluster's upstream filter chain (ext_proc, loaded above, then the codec).
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/filters/http/upstream_codec/v3/upstream_codec.proto',
  'envoy/type/v3/http_status.proto',
];

let root: protobuf.Root | undefined;

export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const dirs = protoIncludeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      try {
        require_exists(p);
        return p;
      } catch {
        /* next include dir */
      }
    }
    return target;
  };
  r.loadSync(EXTENSION_PROTOS, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

import { statSync } from 'node:fs';
function require_exists(p: string): void {
  if (!statSync(p).isFile()) throw new Error('not a file');
}

const SCALARS: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  bool: (v) => typeof v === 'boolean',
  bytes: (v) => typeof v === 'string',
  double: (v) => typeof v === 'number',
  float: (v) => typeof v === 'number',
  int32: isInt,
  uint32: (v) => isInt(v) && (v as number) >= 0,
  sint32: isInt,
  fixed32: isInt,
  sfixed32: isInt,
  int64: (v) => isInt(v) || (typeof v === 'string' && /^-?\d+$/.test(v)),
  uint64: (v) => (isInt(v) && (v as number) >= 0) || (typeof v === 'string' && /^\d+$/.test(v)),
  sint64: isInt,
  fixed64: isInt,
  sfixed64: isInt,
};
function isInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v);
}

const WRAPPERS: Record<string, string> = {
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.StringValue': 'string',
};

/** Returns a list of problems (empty when valid). `path` names where each problem is. */
export function validateEnvoyMessage(typeName: string, value: unknown, path = '$'): string[] {
  const r = envoyRoot();
  const type = r.lookupType(typeName);
  return checkMessage(r, type, value, path);
}

function checkMessage(r: protobuf.Root, type: protobuf.Type, value: unknown, path: string): string[] {
  const full = type.fullName.replace(/^\./, '');
  if (full === 'google.protobuf.Struct' || full === 'google.protobuf.Value' || full === 'google.protobuf.ListValue') return [];
  if (full === 'google.protobuf.Duration')
    return typeof value === 'string' && /^-?\d+(\.\d+)?s$/.test(value) ? [] : [`${path}: expected a duration like "2s", got ${JSON.stringify(value)}`];
  if (full in WRAPPERS) {
    const ok = SCALARS[WRAPPERS[full]!]!(value);
    return ok ? [] : [`${path}: expected ${WRAPPERS[full]}, got ${JSON.stringify(value)}`];
  }
  if (full === 'google.protobuf.Any') {
    if (!value || typeof value !== 'object') return [`${path}: expected an Any object`];
    const at = (value as Record<string, unknown>)['@type'];
    if (typeof at !== 'string' || !at.startsWith('type.googleapis.com/')) return [`${path}: typed_config needs "@type": type.googleapis.com/<type>`];
    const inner = at.slice('type.googleapis.com/'.length);
    let t: protobuf.Type;
    try {
      t = r.lookupType(inner);
    } catch {
      return [`${path}: unknown @type ${inner}`];
    }
    const rest = { ...(value as Record<string, unknown>) };
    delete rest['@type'];
    return checkMessage(r, t, rest, path);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected a ${full} object`];
  const problems: string[] = [];
  const byName = new Map<string, protobuf.Field>();
  for (const f of type.fieldsArray) {
    byName.set(f.name, f);
    const json = f.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    byName.set(json, f);
  }
  const seenOneof = new Map<string, string>();
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const f = byName.get(k);
    const p = `${path}.${k}`;
    if (!f) {
      problems.push(`${p}: unknown field of ${full}`);
      continue;
    }
    if (f.partOf) {
      const prev = seenOneof.get(f.partOf.name);
      if (prev) problems.push(`${p}: oneof ${f.partOf.name} already set by ${prev}`);
      seenOneof.set(f.partOf.name, k);
    }
    f.resolve();
    if (f.map) {
      if (!v || typeof v !== 'object') {
        problems.push(`${p}: expected a map`);
        continue;
      }
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) problems.push(...checkValue(r, f, mv, `${p}.${mk}`));
      continue;
    }
    if (f.repeated) {
      if (!Array.isArray(v)) {
        problems.push(`${p}: expected a list`);
        continue;
      }
      v.forEach((item, i) => problems.push(...checkValue(r, f, item, `${p}[${i}]`)));
      continue;
    }
    problems.push(...checkValue(r, f, v, p));
  }
  return problems;
}

function checkValue(r: protobuf.Root, f: protobuf.Field, v: unknown, path: string): string[] {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string' && v in rt.values) return [];
    if (typeof v === 'number' && Object.values(rt.values).includes(v)) return [];
    return [`${path}: unknown ${rt.name} value ${JSON.stringify(v)}`];
  }
  if (rt instanceof protobuf.Type) return checkMessage(r, rt, v, path);
  const check = SCALARS[f.type];
  if (!check) return [`${path}: unsupported field type ${f.type}`];
  return check(v) ? [] : [`${path}: expected ${f.type}, got ${JSON.stringify(v)}`];
}
