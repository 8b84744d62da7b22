// The model catalog: public names, aliases and wildcard models → deployments on providers.
//
// Lookup order for a requested name: exact model name, then alias, then wildcard.
// Wildcard rule: a model whose name ends in a single `*` (e.g. `ollama/*`, or `*` alone as a
// catch-all) matches any requested name that starts with the text before the `*` and has a
// non-empty rest (the "suffix"): `ollama/llama3:8b` → suffix `llama3:8b`. The longest matching
// prefix wins. Each deployment of a wildcard model must have `*` in its upstream model; the `*`
// is replaced by the suffix (`model: "*"` passes the suffix through unchanged,
// `model: "accounts/acme/models/*"` prefixes it). Suffixes are restricted to
// [A-Za-z0-9._:+/-] (no `..`, `//` or leading `/`, ≤ 200 chars) because some providers (Azure,
// Bedrock) put the model in the URL path.
//
// Client-chosen names: any name a client sends (`model`, `models[i]`) that is not a configured
// name or alias must match MODEL_NAME_RE — the same characters, no `@`, no spaces — so a name
// cannot carry an email address (or other free text) to a provider, lineage or logs.
import { ConfigError, ConfigErrors } from '../config/documents.ts';
import type { DeploymentConfig, ModelConfig, ProviderConfig } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import type { DeploymentInfo, RoutingStrategy } from './types.ts';

/** One deployment with its provider and the (frozen) policy view, precomputed at build. */
export interface CatalogEntry {
  deployment: DeploymentConfig;
  provider: ProviderConfig;
  info: DeploymentInfo;
}

export interface ResolvedModel {
  /** Concrete model config: canonical for names/aliases, a per-suffix copy for wildcards. */
  model: ModelConfig;
  /** How the requested name matched. */
  via: 'name' | 'alias' | 'wildcard';
  strategy: RoutingStrategy;
  entries: readonly CatalogEntry[];
}

export interface ModelListing {
  /** Public id (model name, or alias when includeAliases). */
  id: string;
  /** Set when `id` is an alias. */
  aliasOf?: string;
  kind: 'chat' | 'embedding';
  wildcard: boolean;
  /** Distinct provider names, in deployment priority order. */
  providers: string[];
  /** Largest context window among the deployments. */
  contextWindow: number;
  model: ModelConfig;
}

export interface ListModelsFilter {
  kind?: 'chat' | 'embedding';
  /** The lead's policy filter: only models the caller may use. */
  include?: (m: ModelConfig) => boolean;
  /** Also list aliases as their own ids (default false). */
  includeAliases?: boolean;
  /** Also list wildcard patterns like `ollama/*` (default false: they are not callable ids). */
  includeWildcards?: boolean;
}

/** OpenAI `GET /v1/models` list item. */
export interface OpenAIModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

interface CompiledModel {
  model: ModelConfig;
  strategy: RoutingStrategy;
  entries: readonly CatalogEntry[];
}

interface WildcardModel extends CompiledModel {
  prefix: string;
}

const SUFFIX_RE = /^[A-Za-z0-9._:+-][A-Za-z0-9._:+/-]*$/;
const MAX_SUFFIX = 200;
/** The characters of a client-chosen model name (see the header comment). */
export const MODEL_NAME_RE = /^[A-Za-z0-9._:+-][A-Za-z0-9._:+/-]{0,255}$/;
export const MODEL_NAME_CHARS = 'letters, digits and . _ : + / -';
// Bounded: suffixes come from clients.
const WILDCARD_CACHE_MAX = 1024;

export function modelNotFound(name: string, param = 'model'): GatewayError {
  return new GatewayError('not_found', `model '${name}' does not exist or you do not have access to it`, {
    code: 'model_not_found',
    param,
  });
}

function makeInfo(model: string, d: DeploymentConfig, p: ProviderConfig): DeploymentInfo {
  return Object.freeze({
    id: d.id,
    model,
    provider: p.name,
    providerApi: p.api,
    region: d.region,
    selfHosted: p.selfHosted,
    dataRetention: p.dataRetention,
    inputPricePerM: d.inputPricePerM,
    outputPricePerM: d.outputPricePerM,
    contextWindow: d.contextWindow,
  });
}

export class Catalog {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  // Exact names and aliases resolve to one ResolvedModel each, built here (never mutated), not one
  // object per request (a request resolves its model twice: policy input and route()).
  private readonly byName = new Map<string, ResolvedModel>();
  private readonly byAlias = new Map<string, ResolvedModel>();
  /** Longest prefix first. */
  private readonly wildcards: WildcardModel[] = [];
  private readonly ordered: CompiledModel[] = [];
  private readonly wildcardCache = new Map<string, ResolvedModel>();

  /** Throws ConfigErrors listing every problem (duplicate names/aliases/ids, unknown providers, bad wildcards). */
  constructor(models: readonly ModelConfig[], providers: readonly ProviderConfig[]) {
    const errors: ConfigError[] = [];
    const provs = new Map<string, ProviderConfig>();
    for (const p of providers) {
      if (provs.has(p.name.toLowerCase())) errors.push(new ConfigError(`provider '${p.name}' is defined twice`));
      provs.set(p.name.toLowerCase(), p);
    }
    this.providers = provs;

    const taken = new Map<string, string>(); // name or alias → what defined it
    const ids = new Set<string>();
    for (const m of models) {
      const where = `model '${m.name}'`;
      const star = m.name.indexOf('*');
      const wildcard = star >= 0;
      if (wildcard && (star !== m.name.length - 1 || m.name.indexOf('*', star + 1) >= 0)) {
        errors.push(new ConfigError(`${where}: a wildcard model name must have exactly one '*', at the end`));
        continue;
      }
      for (const n of [m.name, ...m.aliases]) {
        const prev = taken.get(n);
        if (prev) errors.push(new ConfigError(`${where}: name '${n}' is already used by ${prev}`));
        else taken.set(n, where);
      }
      for (const a of m.aliases) {
        if (a.includes('*')) errors.push(new ConfigError(`${where}: alias '${a}' may not contain '*'`));
      }
      if (wildcard && m.aliases.length > 0) errors.push(new ConfigError(`${where}: a wildcard model cannot have aliases`));
      if (m.deployments.length === 0) errors.push(new ConfigError(`${where}: needs at least one deployment`));
      const strategy: RoutingStrategy = m.strategy ?? 'priority';
      const entries: CatalogEntry[] = [];
      for (const d of m.deployments) {
        if (ids.has(d.id)) errors.push(new ConfigError(`${where}: deployment id '${d.id}' is not unique`));
        ids.add(d.id);
        const p = provs.get(d.provider.toLowerCase());
        if (!p) {
          errors.push(new ConfigError(`${where}: deployment '${d.id}' uses unknown provider '${d.provider}'`));
          continue;
        }
        if (wildcard && !d.upstreamModel.includes('*')) {
          errors.push(
            new ConfigError(
              `${where}: deployment '${d.id}' of a wildcard model needs '*' in its upstream model (e.g. "*"), got '${d.upstreamModel}'`,
            ),
          );
        }
        if (!(d.weight >= 0) || !Number.isFinite(d.weight)) {
          errors.push(new ConfigError(`${where}: deployment '${d.id}' weight must be a finite number ≥ 0`));
        }
        if (!(d.contextWindow > 0)) {
          errors.push(new ConfigError(`${where}: deployment '${d.id}' contextWindow must be > 0`));
        }
        if (!(d.inputPricePerM >= 0) || !(d.outputPricePerM >= 0)) {
          errors.push(new ConfigError(`${where}: deployment '${d.id}' prices must be ≥ 0`));
        }
        entries.push({ deployment: d, provider: p, info: makeInfo(m.name, d, p) });
      }
      const compiled: CompiledModel = { model: m, strategy, entries };
      this.ordered.push(compiled);
      if (wildcard) {
        this.wildcards.push({ ...compiled, prefix: m.name.slice(0, -1) });
      } else {
        this.byName.set(m.name, { model: m, via: 'name', strategy, entries });
        const viaAlias: ResolvedModel = { model: m, via: 'alias', strategy, entries };
        for (const a of m.aliases) this.byAlias.set(a, viaAlias);
      }
    }
    if (errors.length > 0) throw new ConfigErrors(errors);
    this.wildcards.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** Name → model, or undefined. Throws invalid_request for a wildcard match with an unsafe suffix. */
  resolve(name: string, param = 'model'): ResolvedModel | undefined {
    const exact = this.byName.get(name);
    if (exact) return exact;
    const alias = this.byAlias.get(name);
    if (alias) return alias;
    const cached = this.wildcardCache.get(name);
    if (cached) return cached;
    for (const w of this.wildcards) {
      if (name.length <= w.prefix.length || !name.startsWith(w.prefix)) continue;
      const suffix = name.slice(w.prefix.length);
      if (
        suffix.length > MAX_SUFFIX ||
        !SUFFIX_RE.test(suffix) ||
        suffix.includes('..') ||
        suffix.includes('//')
      ) {
        throw new GatewayError(
          'invalid_request',
          `the name in '${param}' is not valid for '${w.model.name}': the part matched by '*' may only contain ${MODEL_NAME_CHARS} (no '..' or '//')`,
          { code: 'invalid_model', param },
        );
      }
      const resolved = this.concretize(w, name, suffix);
      if (this.wildcardCache.size >= WILDCARD_CACHE_MAX) this.wildcardCache.clear();
      this.wildcardCache.set(name, resolved);
      return resolved;
    }
    return undefined;
  }

  /** Whether a client may send this name: a configured name or alias, or one of MODEL_NAME_RE's characters. */
  acceptsName(name: string): boolean {
    return this.byName.has(name) || this.byAlias.has(name) || MODEL_NAME_RE.test(name);
  }

  /** A configured model name or alias (operator text), as opposed to a wildcard match or unknown name. */
  isConfiguredName(name: string): boolean {
    return this.byName.has(name) || this.byAlias.has(name);
  }

  /** Like resolve() but unknown → GatewayError not_found (`model_not_found`). */
  lookup(name: string, param = 'model'): ResolvedModel {
    const r = this.resolve(name, param);
    if (!r) throw modelNotFound(name, param);
    return r;
  }

  /** Models for `GET /v1/models`, in config order. */
  listModels(filter: ListModelsFilter = {}): ModelListing[] {
    const out: ModelListing[] = [];
    for (const c of this.ordered) {
      const wildcard = c.model.name.endsWith('*');
      if (wildcard && !filter.includeWildcards) continue;
      if (filter.kind && c.model.kind !== filter.kind) continue;
      if (filter.include && !filter.include(c.model)) continue;
      const byPriority = [...c.entries].sort((a, b) => a.deployment.priority - b.deployment.priority);
      const providers = [...new Set(byPriority.map((e) => e.provider.name))];
      const contextWindow = Math.max(0, ...c.entries.map((e) => e.deployment.contextWindow));
      const base = { kind: c.model.kind, wildcard, providers, contextWindow, model: c.model };
      out.push({ id: c.model.name, ...base });
      if (filter.includeAliases) for (const a of c.model.aliases) out.push({ id: a, aliasOf: c.model.name, ...base });
    }
    return out;
  }

  /** All models (config order), e.g. for `tollgate check`. */
  models(): ModelConfig[] {
    return this.ordered.map((c) => c.model);
  }

  private concretize(w: WildcardModel, name: string, suffix: string): ResolvedModel {
    const entries: CatalogEntry[] = w.entries.map((e) => {
      const deployment: DeploymentConfig = { ...e.deployment, upstreamModel: e.deployment.upstreamModel.replace('*', suffix) };
      return { deployment, provider: e.provider, info: makeInfo(name, deployment, e.provider) };
    });
    const model: ModelConfig = { ...w.model, name, aliases: [], deployments: entries.map((e) => e.deployment) };
    return { model, via: 'wildcard', strategy: w.strategy, entries };
  }
}

/** Listing → OpenAI `GET /v1/models` item. `owned_by` is the primary provider's name. */
export function toOpenAIModel(l: ModelListing, created = 0): OpenAIModelObject {
  return { id: l.id, object: 'model', created, owned_by: l.providers[0] ?? 'tollgate' };
}
