// Config directory → one immutable Snapshot. `validateConfigDir` does everything that can fail (read,
// parse, schema, cross references, policy compilation with sample evaluation); `assembleSnapshot`
// only builds the runtime objects. A hot reload runs the first part in a worker thread
// (config/reload.ts) and the cheap second part on the main one (config/holder.ts).
import type { Snapshot } from '../gateway/context.ts';
import { ConfigKeyStore } from '../identity/keys.ts';
import { registerSecrets } from '../errors.ts';
import { compilePolicies, type PolicyBundle } from '../policy/index.ts';
import { Catalog, Router, type HealthTracker } from '../routing/index.ts';
import { ConfigError, ConfigErrors, readConfigDir, type ConfigDocument } from './documents.ts';
import { buildCoreConfig, CORE_KINDS, type CoreConfig } from './loader.ts';

export interface BuildOptions {
  health?: HealthTracker;
  now?: () => Date;
}

const KNOWN_KINDS = `${CORE_KINDS.join(', ')}, Policy, PolicyTest`;

/**
 * Reads and validates a config directory; throws ConfigErrors (every problem, file:line:col) or
 * ConfigError. A directory with nothing to enforce (no documents, or only PolicyTests) is refused:
 * accepting it would drop every guardrail at once.
 */
export function validateConfigDir(dir: string, opts: { now?: () => Date } = {}): { core: CoreConfig; policy: PolicyBundle } {
  const docs = readConfigDir(dir);
  if (!docs.some((d) => d.kind !== 'PolicyTest'))
    throw new ConfigError(`config directory ${dir} has no configuration documents (no *.yaml / *.yml with Gateway, Provider, Model, Tenant, Team, VirtualKey or Policy); refusing an empty config`);
  const core = buildCoreConfig(dir, docs);
  const unknown = core.otherDocs.filter((d) => d.kind !== 'Policy' && d.kind !== 'PolicyTest');
  if (unknown.length) throw new ConfigErrors(unknown.map((d) => d.error(`unknown kind "${d.kind}" (expected ${KNOWN_KINDS})`, ['kind'])));
  const policy = compilePolicies(policyDocs(core.otherDocs), { now: opts.now });
  return { core, policy };
}

export function policyDocs(docs: ConfigDocument[]): ConfigDocument[] {
  return docs.filter((d) => d.kind === 'Policy');
}

/** Runtime objects around a validated config. */
export function assembleSnapshot(core: CoreConfig, policy: PolicyBundle, opts: BuildOptions = {}): Snapshot {
  // Provider errors that echo a credential are scrubbed of it before anyone sees them. Here, on the
  // serving thread (a hot reload validates in a worker, whose registry nobody reads).
  registerSecrets(core.credentials.values());
  registerSecrets(core.mcpCredentials.values());
  const catalog = new Catalog(core.models, [...core.providers.values()]);
  const router = new Router({ catalog, health: opts.health });
  return {
    revision: core.revision,
    core,
    policy,
    catalog,
    router,
    keys: new ConfigKeyStore(core.keys),
    loadedAt: opts.now?.() ?? new Date(),
  };
}

/** Reads, validates and compiles a config directory on this thread (start-up, CLI, tests). */
export function buildSnapshot(dir: string, opts: BuildOptions = {}): Snapshot {
  const { core, policy } = validateConfigDir(dir, opts);
  return assembleSnapshot(core, policy, opts);
}
