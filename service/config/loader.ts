// Config directory → one immutable Snapshot. Validates everything up front and reports every
// problem with file:line:col; a reload that fails keeps the previous snapshot (see holder.ts).
import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import {
  ConfigDocument,
  ConfigError,
  ConfigErrors,
  readConfigDir,
  type SourcePos,
} from './documents.ts';
import { readRegularFile } from './files.ts';
import { applyMockStandIns, unservedMockWarning } from '../providers/mock-stand-in.ts';
import {
  gatewaySpec,
  mcpServerSpec,
  modelSpec,
  providerSpec,
  teamSpec,
  tenantSpec,
  virtualKeySpec,
} from './schema.ts';
import type {
  CredentialSource,
  DeploymentConfig,
  DetailedPrices,
  GatewaySettings,
  McpServerConfig,
  ModelConfig,
  ProviderConfig,
  TeamConfig,
  TenantConfig,
  VirtualKeyRecord,
} from './types.ts';

export const CORE_KINDS = ['Gateway', 'Provider', 'Model', 'Tenant', 'Team', 'VirtualKey', 'McpServer'] as const;

export interface CoreConfig {
  dir: string;
  settings: GatewaySettings;
  providers: Map<string, ProviderConfig>;
  models: ModelConfig[];
  tenants: Map<string, TenantConfig>;
  teams: Map<string, TeamConfig>;
  keys: VirtualKeyRecord[];
  /** Resolved provider secrets by provider name; absent when the source is missing. */
  credentials: Map<string, string>;
  /** MCP servers by name (service/mcp). */
  mcpServers: Map<string, McpServerConfig>;
  /** Resolved MCP server secrets by server name; absent when the source is missing or `none`. */
  mcpCredentials: Map<string, string>;
  /** Human-readable warnings (e.g. a provider credential that is not set). */
  warnings: string[];
  /** Documents of other kinds (Policy, PolicyTest, …), for their own compilers. */
  otherDocs: ConfigDocument[];
  /** Content hash of every document. */
  revision: string;
}

function parseSpec<T extends z.ZodType>(
  schema: T,
  doc: ConfigDocument,
  errors: ConfigError[],
): z.infer<T> | undefined {
  const res = schema.safeParse(doc.spec ?? {});
  if (res.success) return res.data;
  for (const issue of res.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const where = path.length ? `spec.${path.join('.')}` : 'spec';
    errors.push(new ConfigError(`${doc.kind} "${doc.name}": ${where}: ${issue.message}`, doc.specPos(path)));
  }
  return undefined;
}

const CREDENTIAL_FILE_MAX_BYTES = 64 * 1024;

type PricingSpec = z.infer<typeof modelSpec>['deployments'][number]['pricing'];

/** The optional price components of a deployment (`prices` is absent when none is configured). */
function detailedPrices(p: PricingSpec): Pick<DeploymentConfig, 'prices'> {
  const out: DetailedPrices = {};
  if (p.cacheReadPerMillion !== undefined) out.cacheReadPerM = p.cacheReadPerMillion;
  if (p.cacheWrite5mPerMillion !== undefined) out.cacheWrite5mPerM = p.cacheWrite5mPerMillion;
  if (p.cacheWrite1hPerMillion !== undefined) out.cacheWrite1hPerM = p.cacheWrite1hPerMillion;
  if (p.reasoningPerMillion !== undefined) out.reasoningPerM = p.reasoningPerMillion;
  const lc = p.longContext;
  if (lc) {
    out.longContext = { aboveInputTokens: lc.aboveInputTokens, inputPerM: lc.inputPerMillion, outputPerM: lc.outputPerMillion };
    if (lc.cacheReadPerMillion !== undefined) out.longContext.cacheReadPerM = lc.cacheReadPerMillion;
    if (lc.cacheWrite5mPerMillion !== undefined) out.longContext.cacheWrite5mPerM = lc.cacheWrite5mPerMillion;
    if (lc.cacheWrite1hPerMillion !== undefined) out.longContext.cacheWrite1hPerM = lc.cacheWrite1hPerMillion;
    if (lc.reasoningPerMillion !== undefined) out.longContext.reasoningPerM = lc.reasoningPerMillion;
  }
  return Object.keys(out).length > 0 ? { prices: out } : {};
}

function resolveCredential(src: CredentialSource, baseDir: string): string | undefined {
  if (src.kind === 'none') return undefined;
  if (src.kind === 'env') {
    const v = process.env[src.name];
    return v && v.length ? v : undefined;
  }
  const p = isAbsolute(src.path) ? src.path : resolve(baseDir, src.path);
  try {
    // A secret file is small; never block on a FIFO or read a huge file here.
    const v = readRegularFile(p, CREDENTIAL_FILE_MAX_BYTES).trim();
    return v.length ? v : undefined;
  } catch {
    return undefined;
  }
}

export function loadCoreConfig(dir: string): CoreConfig {
  const docs = readConfigDir(dir);
  return buildCoreConfig(dir, docs);
}

export function buildCoreConfig(dir: string, docs: ConfigDocument[]): CoreConfig {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const seen = new Map<string, ConfigDocument>();
  const otherDocs: ConfigDocument[] = [];
  let settings: GatewaySettings | undefined;
  const providers = new Map<string, ProviderConfig>();
  const models: ModelConfig[] = [];
  const tenants = new Map<string, TenantConfig>();
  const teams = new Map<string, TeamConfig>();
  const keys: VirtualKeyRecord[] = [];
  const mcpServers = new Map<string, McpServerConfig>();
  const hash = createHash('sha256');

  for (const doc of docs) {
    hash.update(doc.file).update('\0').update(JSON.stringify(doc.value)).update('\0');
    if (!(CORE_KINDS as readonly string[]).includes(doc.kind)) {
      otherDocs.push(doc);
      continue;
    }
    if (!doc.name) {
      errors.push(doc.error(`${doc.kind}: metadata.name is required`, ['metadata']));
      continue;
    }
    const id = `${doc.kind}/${doc.name}`;
    const prev = seen.get(id);
    if (prev) {
      const p = prev.pos(['metadata', 'name']);
      errors.push(doc.error(`duplicate ${id} (first defined at ${p.file}:${p.line})`, ['metadata', 'name']));
      continue;
    }
    seen.set(id, doc);

    switch (doc.kind) {
      case 'Gateway': {
        const s = parseSpec(gatewaySpec, doc, errors);
        if (s) settings = s;
        break;
      }
      case 'Provider': {
        const s = parseSpec(providerSpec, doc, errors);
        if (!s) break;
        const credential: CredentialSource =
          'env' in s.credential
            ? { kind: 'env', name: s.credential.env }
            : 'file' in s.credential
              ? { kind: 'file', path: s.credential.file }
              : { kind: 'none' };
        providers.set(doc.name, {
          name: doc.name,
          api: s.api,
          cluster: s.cluster,
          host: s.host,
          basePath: s.basePath.replace(/\/+$/, ''),
          credential,
          apiVersion: s.apiVersion,
          region: s.region,
          dataRetention: s.dataRetention,
          selfHosted: s.selfHosted,
        });
        if (s.api === 'bedrock' && !s.region) errors.push(doc.error('bedrock providers need spec.region', ['spec']));
        if (s.api === 'vertex' && !/^\/v1(beta1)?\/projects\/[^/]+\/locations\/[^/]+$/.test(s.basePath.replace(/\/+$/, '')))
          errors.push(doc.error('vertex providers need spec.basePath /v1/projects/<project>/locations/<region>', ['spec', 'basePath']));
        break;
      }
      case 'Model': {
        const s = parseSpec(modelSpec, doc, errors);
        if (!s) break;
        models.push({
          name: doc.name,
          aliases: s.aliases,
          kind: s.kind,
          strategy: s.strategy,
          deployments: s.deployments.map((d, i) => ({
            id: d.id ?? `${doc.name}/${d.provider}/${i}`,
            provider: d.provider,
            upstreamModel: d.model,
            region: d.region,
            inputPricePerM: d.pricing.inputPerMillion,
            outputPricePerM: d.pricing.outputPerMillion,
            ...detailedPrices(d.pricing),
            contextWindow: d.contextWindow,
            weight: d.weight,
            priority: d.priority,
          })),
          fallbackChains: s.fallbackChains,
        });
        break;
      }
      case 'Tenant': {
        const s = parseSpec(tenantSpec, doc, errors);
        if (!s) break;
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: s.timeZone });
        } catch {
          errors.push(doc.error(`unknown time zone "${s.timeZone}"`, ['spec', 'timeZone']));
        }
        tenants.set(doc.name, { name: doc.name, attributes: s.attributes, timeZone: s.timeZone });
        break;
      }
      case 'Team': {
        const s = parseSpec(teamSpec, doc, errors);
        if (s) teams.set(`${s.tenant}/${doc.name}`, { name: doc.name, tenant: s.tenant, attributes: s.attributes });
        break;
      }
      case 'McpServer': {
        const s = parseSpec(mcpServerSpec, doc, errors);
        if (!s) break;
        if (!/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/.test(doc.name)) {
          errors.push(doc.error('McpServer: metadata.name must be lower-case letters, digits, ".", "_", "-" (it is the URL path /mcp/<name>)', ['metadata', 'name']));
          break;
        }
        const credential: CredentialSource =
          'env' in s.credential ? { kind: 'env', name: s.credential.env } : 'file' in s.credential ? { kind: 'file', path: s.credential.file } : { kind: 'none' };
        mcpServers.set(doc.name, { name: doc.name, cluster: s.cluster, host: s.host, path: s.path, credential, credentialHeader: s.credentialHeader, credentialPrefix: s.credentialPrefix });
        break;
      }
      case 'VirtualKey': {
        const s = parseSpec(virtualKeySpec, doc, errors);
        if (s)
          keys.push({
            id: doc.name,
            sha256: s.sha256,
            tenant: s.tenant,
            team: s.team,
            user: s.user,
            groups: s.groups,
            disabled: s.disabled,
            expiresAt: s.expiresAt,
          });
        break;
      }
    }
  }

  // Cross references, reported at the referring field. Indexed by name: configs have tens of
  // thousands of keys, and a scan per document would be quadratic.
  const chainClusters = new Map<string, string>();
  const modelByName = new Map(models.map((m) => [m.name, m]));
  const teamByName = new Map<string, TeamConfig>();
  for (const t of teams.values()) if (!teamByName.has(t.name)) teamByName.set(t.name, t);
  const keyById = new Map(keys.map((k) => [k.id, k]));
  for (const doc of docs) {
    if (doc.kind === 'Model') {
      const m = modelByName.get(doc.name);
      m?.deployments.forEach((d, i) => {
        if (!providers.has(d.provider))
          errors.push(new ConfigError(`Model "${m.name}": unknown provider "${d.provider}"`, doc.specPos(['deployments', i, 'provider'])));
      });
      m?.fallbackChains.forEach((c, i) => {
        const at = (...p: (string | number)[]): SourcePos => doc.specPos(['fallbackChains', i, ...p]);
        const seen = new Set<string>();
        c.deployments.forEach((id, j) => {
          if (!m.deployments.some((d) => d.id === id))
            errors.push(new ConfigError(`Model "${m.name}": fallback chain "${c.cluster}" names unknown deployment "${id}" (ids: ${m.deployments.map((d) => d.id).join(', ')})`, at('deployments', j)));
          if (seen.has(id)) errors.push(new ConfigError(`Model "${m.name}": fallback chain "${c.cluster}" lists deployment "${id}" twice`, at('deployments', j)));
          seen.add(id);
        });
        const owner = chainClusters.get(c.cluster);
        if (owner) errors.push(new ConfigError(`Model "${m.name}": fallback chain cluster "${c.cluster}" is already used by model "${owner}"`, at('cluster')));
        chainClusters.set(c.cluster, m.name);
        for (const p of providers.values())
          if (p.cluster === c.cluster)
            errors.push(new ConfigError(`Model "${m.name}": fallback chain cluster "${c.cluster}" is provider "${p.name}"'s cluster; a chain needs its own cluster`, at('cluster')));
      });
    }
    if (doc.kind === 'Team') {
      const t = teamByName.get(doc.name);
      if (t && !tenants.has(t.tenant))
        errors.push(new ConfigError(`Team "${t.name}": unknown tenant "${t.tenant}"`, doc.specPos(['tenant'])));
    }
    if (doc.kind === 'VirtualKey') {
      const k = keyById.get(doc.name);
      if (!k) continue;
      if (!tenants.has(k.tenant))
        errors.push(new ConfigError(`VirtualKey "${k.id}": unknown tenant "${k.tenant}"`, doc.specPos(['tenant'])));
      if (k.team && !teams.has(`${k.tenant}/${k.team}`))
        errors.push(new ConfigError(`VirtualKey "${k.id}": unknown team "${k.team}" in tenant "${k.tenant}"`, doc.specPos(['team'])));
    }
  }
  const names = new Map<string, string>();
  for (const m of models) {
    for (const n of [m.name, ...m.aliases]) {
      const prev = names.get(n);
      if (prev && prev !== m.name) errors.push(new ConfigError(`model name or alias "${n}" used by both "${prev}" and "${m.name}"`));
      names.set(n, m.name);
    }
  }
  const keyHashes = new Set<string>();
  for (const k of keys) {
    if (keyHashes.has(k.sha256)) errors.push(new ConfigError(`VirtualKey "${k.id}": the same key hash appears twice`));
    keyHashes.add(k.sha256);
  }

  if (errors.length) throw new ConfigErrors(errors);

  const credentials = new Map<string, string>();
  for (const p of providers.values()) {
    const v = resolveCredential(p.credential, dir);
    if (v !== undefined) credentials.set(p.name, v);
    else if (p.api === 'mock') warnings.push(unservedMockWarning(p));
    else if (p.credential.kind !== 'none')
      warnings.push(
        `provider "${p.name}": credential ${p.credential.kind === 'env' ? `env ${p.credential.name}` : `file ${p.credential.path}`} is not set; requests routed to it fail with 503`,
      );
  }

  // Deployments on `mock` providers stand in only for models with no credentialled real provider.
  const standIns = applyMockStandIns(models, providers, credentials);
  const mockServed = [...providers.values()].some((p) => p.api === 'mock' && credentials.has(p.name));
  if (standIns.mockedModels.length && mockServed)
    warnings.push(`no real provider credential for ${standIns.mockedModels.join(', ')}: the mock provider answers them`);

  const mcpCredentials = new Map<string, string>();
  for (const m of mcpServers.values()) {
    const v = resolveCredential(m.credential, dir);
    if (v !== undefined) mcpCredentials.set(m.name, v);
    else if (m.credential.kind !== 'none')
      warnings.push(`MCP server "${m.name}": credential ${m.credential.kind === 'env' ? `env ${m.credential.name}` : `file ${m.credential.path}`} is not set; calls to it fail with 503`);
  }

  return {
    dir,
    settings: settings ?? gatewaySpec.parse({}),
    mcpServers,
    mcpCredentials,
    providers,
    models: standIns.models,
    tenants,
    teams,
    keys,
    credentials,
    warnings,
    otherDocs,
    revision: hash.digest('hex').slice(0, 16),
  };
}
