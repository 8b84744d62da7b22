// When a `mock` deployment may serve: only for a model none of whose real deployments has a credential.
// A model's deployments on `mock` providers are stand-ins; the config loader drops them as soon as one
// of the model's real providers has its credential (or needs none), so setting OPENAI_API_KEY & co.
// switches to the real providers with no other change, and a real provider that policy refuses or
// that fails never falls back to the mock. Decided once per config load: no cost per request.
import type { ModelConfig, ProviderConfig } from '../config/types.ts';

export interface StandInResult {
  models: ModelConfig[];
  /** Models (public names) that only the mock can serve with the credentials set now. */
  mockedModels: string[];
}

export function applyMockStandIns(models: ModelConfig[], providers: Map<string, ProviderConfig>, credentials: Map<string, string>): StandInResult {
  const mockedModels: string[] = [];
  const isMock = (provider: string): boolean => providers.get(provider)?.api === 'mock';
  const usable = (provider: string): boolean => {
    const p = providers.get(provider);
    return p !== undefined && (p.credential.kind === 'none' || credentials.has(p.name));
  };
  const out = models.map((m) => {
    if (!m.deployments.some((d) => isMock(d.provider))) return m;
    const real = m.deployments.filter((d) => !isMock(d.provider));
    if (real.length === 0 || !real.some((d) => usable(d.provider))) {
      mockedModels.push(m.name);
      return m;
    }
    return { ...m, deployments: real };
  });
  return { models: out, mockedModels };
}

/** The start-up warning for a mock provider nobody serves (`tollgate serve`: no mock upstream, no credential). */
export function unservedMockWarning(p: ProviderConfig): string {
  return `provider "${p.name}" (api: mock) is served only by \`tollgate run\` (which starts the mock upstream and sets its credential); here requests routed to it fail with 503`;
}
