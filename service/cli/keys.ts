// `tollgate keys create`: prints a new virtual key once and stores only its SHA-256 hash.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigErrors } from '../config/documents.ts';
import { buildCoreConfig } from '../config/loader.ts';
import { readConfigDir } from '../config/documents.ts';
import { generateKey } from '../identity/keys.ts';
import { date, parse, required, str } from './args.ts';
import { configDir } from './check.ts';
import { UsageError } from './errors.ts';

export interface CreateKeyArgs {
  dir: string;
  tenant: string;
  team?: string;
  user?: string;
  groups: string[];
  name?: string;
  expiresAt?: string;
}

export interface CreatedKey {
  id: string;
  secret: string;
  file: string;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** Validates against the current config (tenant/team must exist), then appends to `<dir>/keys.yaml`. */
export function createKey(a: CreateKeyArgs): CreatedKey {
  const core = buildCoreConfig(a.dir, readConfigDir(a.dir));
  if (!core.tenants.has(a.tenant)) throw new UsageError(`unknown tenant "${a.tenant}" (tenants in ${a.dir}: ${[...core.tenants.keys()].join(', ') || 'none'})`);
  if (a.team && !core.teams.has(`${a.tenant}/${a.team}`)) {
    const teams = [...core.teams.keys()].filter((t) => t.startsWith(`${a.tenant}/`)).map((t) => t.slice(a.tenant.length + 1));
    throw new UsageError(`unknown team "${a.team}" in tenant "${a.tenant}" (its teams: ${teams.join(', ') || 'none'})`);
  }
  const k = generateKey();
  const id = a.name ?? k.id;
  if (!/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/.test(id)) throw new UsageError(`invalid key name "${id}": lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit`);
  if (core.keys.some((x) => x.id === id)) throw new UsageError(`a key named "${id}" already exists; choose another --name`);
  const file = join(a.dir, 'keys.yaml');
  const lines = [
    '---',
    'apiVersion: tollgate.dev/v1alpha1',
    'kind: VirtualKey',
    `metadata: {name: ${yamlString(id)}}`,
    'spec:',
    `  sha256: ${k.sha256}`,
    `  tenant: ${yamlString(a.tenant)}`,
    ...(a.team ? [`  team: ${yamlString(a.team)}`] : []),
    ...(a.user ? [`  user: ${yamlString(a.user)}`] : []),
    ...(a.groups.length ? [`  groups: [${a.groups.map(yamlString).join(', ')}]`] : []),
    ...(a.expiresAt ? [`  expiresAt: ${yamlString(a.expiresAt)}`] : []),
    `  # created ${new Date().toISOString()}`,
  ];
  const prefix = existsSync(file) && !readFileSync(file, 'utf8').endsWith('\n') ? '\n' : '';
  appendFileSync(file, prefix + lines.join('\n') + '\n');
  // Re-validate the whole directory so a broken append is caught immediately.
  try {
    buildCoreConfig(a.dir, readConfigDir(a.dir));
  } catch (e) {
    if (e instanceof ConfigErrors) throw new Error(`keys.yaml no longer validates after the append:\n${e.message}`);
    throw e;
  }
  return { id, secret: k.secret, file };
}

export async function runKeys(args: string[]): Promise<number> {
  // With --server: managed keys through a running Tollgate's admin API (docs/keys.md).
  if (args.some((a) => a === '--server' || a.startsWith('--server='))) {
    const { runKeysApiCommand } = await import('./keys-api.ts');
    return runKeysApiCommand(args, { env: process.env, out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  const [sub, ...rest] = args;
  if (sub !== 'create') throw new UsageError(sub === undefined ? 'which keys command? (keys create)' : `unknown keys command "${sub}" (keys create)`);
  const p = parse(rest, {
    tenant: { type: 'string' },
    team: { type: 'string' },
    user: { type: 'string' },
    groups: { type: 'string' },
    name: { type: 'string' },
    expires: { type: 'string' },
    dir: { type: 'string' },
  });
  const tenant = required(p, 'tenant', 'the tenant the key belongs to');
  const expires = date(p, 'expires');
  const groups = str(p, 'groups');
  const k = createKey({
    dir: configDir(str(p, 'dir')),
    tenant,
    team: str(p, 'team'),
    user: str(p, 'user'),
    groups: groups ? groups.split(',').map((g) => g.trim()).filter(Boolean) : [],
    name: str(p, 'name'),
    expiresAt: expires?.toISOString(),
  });
  process.stdout.write(`created key "${k.id}" (hash stored in ${k.file}); this is the only time it is shown:\n${k.secret}\n`);
  return 0;
}
