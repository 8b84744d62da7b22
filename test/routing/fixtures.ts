// Shared fixtures for routing tests: providers, models, a seeded RNG and a manual clock.
import type { DeploymentConfig, ModelConfig, ProviderConfig } from '../../service/config/types.ts';
import type { RouteCheck } from '../../service/routing/types.ts';
export { seeded } from '../support/seeded.ts';

export function provider(name: string, over: Partial<ProviderConfig> = {}): ProviderConfig {
  return {
    name,
    api: 'openai',
    cluster: `${name}-cluster`,
    host: `${name}.example`,
    basePath: '/v1',
    credential: { kind: 'none' },
    dataRetention: false,
    selfHosted: false,
    ...over,
  };
}

export function dep(id: string, providerName: string, over: Partial<DeploymentConfig> = {}): DeploymentConfig {
  return {
    id,
    provider: providerName,
    upstreamModel: 'm',
    region: 'us-east-1',
    inputPricePerM: 1,
    outputPricePerM: 2,
    contextWindow: 128_000,
    weight: 1,
    priority: 0,
    ...over,
  };
}

export function model(name: string, deployments: DeploymentConfig[], over: Partial<ModelConfig> = {}): ModelConfig {
  return { name, aliases: [], kind: 'chat', strategy: 'priority', deployments, fallbackChains: [], ...over };
}

export const PROVIDERS: ProviderConfig[] = [
  provider('openai', { dataRetention: true }),
  provider('azure-eu', { api: 'azure' }),
  provider('azure-us', { api: 'azure' }),
  provider('anthropic', { api: 'anthropic' }),
  provider('bedrock', { api: 'bedrock', region: 'eu-central-1' }),
  provider('ollama', { selfHosted: true }),
  provider('vllm', { selfHosted: true }),
];


export class Clock {
  t = Date.UTC(2025, 0, 1);
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export const allowAll: RouteCheck = () => ({ ok: true });

/** Residency constraint as a policy would express it. */
export const euOnly: RouteCheck = (d) =>
  d.region.startsWith('eu-') ? { ok: true } : { ok: false, rule: 'residency/eu-only', message: 'tenant acme requires EU data residency' };
