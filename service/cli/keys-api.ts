// `tollgate keys <list|get|create|update|disable|enable|revoke|rotate> --server URL`: managed keys
// through a running Tollgate's admin API (docs/keys.md). The bearer token comes from the environment
// (TOLLGATE_ADMIN_TOKEN or _FILE), never from the command line.
import { parseArgs } from 'node:util';
import { readSecret } from '../security/secrets.ts';

export const KEYS_API_USAGE = `tollgate keys <command> --server URL   (token: TOLLGATE_ADMIN_TOKEN or TOLLGATE_ADMIN_TOKEN_FILE)
  list [--tenant T] [--team TEAM] [--all]
  get ID
  create --tenant T [--team TEAM] [--user U] [--groups a,b] [--name N] [--expires ISO] [limits] [--meta k=v ...]
  update ID [--name N] [--user U] [--groups a,b] [--expires ISO|none] [limits] [--no-limits] [--meta k=v ...]
  disable ID | enable ID | revoke ID
  rotate ID [--overlap SECONDS]        (default 3600: the old secret keeps working that long)
limits: [--models m1,m2] [--budget-usd N [--budget-window day|month|hour|minute]] [--rpm N] [--tpm N]
`;

export interface KeysApiIo {
  env: NodeJS.ProcessEnv;
  out(s: string): void;
  err(s: string): void;
  fetch?: typeof fetch;
}

const OPTIONS = {
  server: { type: 'string' },
  tenant: { type: 'string' },
  team: { type: 'string' },
  user: { type: 'string' },
  groups: { type: 'string' },
  name: { type: 'string' },
  expires: { type: 'string' },
  models: { type: 'string' },
  'budget-usd': { type: 'string' },
  'budget-window': { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  meta: { type: 'string', multiple: true },
  'no-limits': { type: 'boolean' },
  overlap: { type: 'string' },
  all: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

function limitsOf(v: Values): Record<string, unknown> | undefined {
  const l: Record<string, unknown> = {};
  if (v.models) l.models = v.models.split(',').map((s) => s.trim()).filter(Boolean);
  const usd = num(v['budget-usd'], '--budget-usd');
  if (usd !== undefined) l.budget = { usd, window: v['budget-window'] ?? 'month' };
  const rpm = num(v.rpm, '--rpm');
  const tpm = num(v.tpm, '--tpm');
  if (rpm !== undefined || tpm !== undefined) l.rateLimit = { ...(rpm !== undefined ? { rpm } : {}), ...(tpm !== undefined ? { tpm } : {}) };
  return Object.keys(l).length ? l : undefined;
}

function metaOf(v: Values): Record<string, string> | undefined {
  if (!v.meta?.length) return undefined;
  const m: Record<string, string> = {};
  for (const kv of v.meta) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--meta takes key=value, got ${JSON.stringify(kv)}`);
    m[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return m;
}

/** Runs one keys command against the server; returns the exit code. */
export async function runKeysApiCommand(args: string[], io: KeysApiIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    io.err(`${(e as Error).message}\n${KEYS_API_USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [cmd, id] = positionals;
  if (!v.server || !cmd) {
    io.err(KEYS_API_USAGE);
    return 2;
  }
  const token = readSecret(io.env, 'TOLLGATE_ADMIN_TOKEN');
  const base = v.server.replace(/\/+$/, '');
  const needsId = ['get', 'update', 'disable', 'enable', 'revoke', 'rotate'];
  if (needsId.includes(cmd) && !id) {
    io.err(`keys ${cmd} needs a key id\n${KEYS_API_USAGE}`);
    return 2;
  }
  let method = 'GET';
  let path: string;
  let body: Record<string, unknown> | undefined;
  try {
    const enc = encodeURIComponent(id ?? '');
    switch (cmd) {
      case 'list': {
        const q = new URLSearchParams();
        if (v.tenant) q.set('tenant', v.tenant);
        if (v.team) q.set('team', v.team);
        if (v.all) q.set('includeRevoked', 'true');
        path = `/admin/v1/keys${q.size ? `?${q}` : ''}`;
        break;
      }
      case 'get':
        path = `/admin/v1/keys/${enc}`;
        break;
      case 'create': {
        if (!v.tenant) throw new Error('keys create needs --tenant');
        method = 'POST';
        path = '/admin/v1/keys';
        const limits = limitsOf(v);
        const metadata = metaOf(v);
        body = {
          tenant: v.tenant,
          ...(v.team ? { team: v.team } : {}),
          ...(v.user ? { user: v.user } : {}),
          ...(v.name ? { name: v.name } : {}),
          ...(v.groups ? { groups: v.groups.split(',').map((g) => g.trim()).filter(Boolean) } : {}),
          ...(v.expires ? { expiresAt: v.expires } : {}),
          ...(limits ? { limits } : {}),
          ...(metadata ? { metadata } : {}),
        };
        break;
      }
      case 'update': {
        method = 'PATCH';
        path = `/admin/v1/keys/${enc}`;
        const limits = limitsOf(v);
        const metadata = metaOf(v);
        body = {
          ...(v.name !== undefined ? { name: v.name } : {}),
          ...(v.user !== undefined ? { user: v.user } : {}),
          ...(v.groups !== undefined ? { groups: v.groups.split(',').map((g) => g.trim()).filter(Boolean) } : {}),
          ...(v.expires !== undefined ? { expiresAt: v.expires === 'none' ? null : v.expires } : {}),
          ...(v['no-limits'] ? { limits: null } : limits ? { limits } : {}),
          ...(metadata ? { metadata } : {}),
        };
        break;
      }
      case 'disable':
      case 'enable':
      case 'revoke':
        method = 'POST';
        path = `/admin/v1/keys/${enc}/${cmd}`;
        break;
      case 'rotate':
        method = 'POST';
        path = `/admin/v1/keys/${enc}/rotate`;
        body = { overlapSeconds: num(v.overlap, '--overlap') ?? 3600 };
        break;
      default:
        io.err(`unknown keys command "${cmd}"\n${KEYS_API_USAGE}`);
        return 2;
    }
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    return 2;
  }
  const f = io.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    io.err(`cannot reach ${base}: ${(e as Error).message}\n`);
    return 1;
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { message?: string; param?: string | null }; secret?: string; key?: { id?: string } };
  if (!res.ok) {
    const hint = res.status === 401 && !token ? ' (set TOLLGATE_ADMIN_TOKEN)' : '';
    io.err(`${method} ${path}: ${res.status} ${json.error?.message ?? res.statusText}${hint}\n`);
    return 1;
  }
  if (json.secret) {
    const { secret, ...rest } = json;
    io.out(`${JSON.stringify(rest, null, 2)}\n`);
    io.err(`key "${json.key?.id}": this is the only time the secret is shown:\n`);
    io.out(`${secret}\n`);
  } else io.out(`${JSON.stringify(json, null, 2)}\n`);
  return 0;
}
