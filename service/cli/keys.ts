// `tollgate keys create`: prints a new virtual key once and stores only its SHA-256 hash.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigErrors } from '../config/documents.ts';
import { buildCoreConfig } from '../config/loader.ts';
import { readConfigDir } from '../config/documents.ts';
import { generateKey } from '../identity/keys.ts';

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
  if (!core.tenants.has(a.tenant)) throw new Error(`unknown tenant "${a.tenant}"`);
  if (a.team && !core.teams.has(`${a.tenant}/${a.team}`)) throw new Error(`unknown team "${a.team}" in tenant "${a.tenant}"`);
  const k = generateKey();
  const id = a.name ?? k.id;
  if (!/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/.test(id)) throw new Error(`invalid key name "${id}"`);
  if (core.keys.some((x) => x.id === id)) throw new Error(`a key named "${id}" already exists`);
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
