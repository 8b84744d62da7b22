// Routing: model catalog, candidate filtering, selection strategies, passive health.
export { Catalog, modelNotFound, toOpenAIModel } from './catalog.ts';
export type { CatalogEntry, ListModelsFilter, ModelListing, OpenAIModelObject, ResolvedModel } from './catalog.ts';
export { HealthTracker, isFailure, parseRetryAfter } from './health.ts';
export type { Availability, DeploymentHealthView, HealthOptions, HealthTransition, LatencyStats } from './health.ts';
export { MAX_FALLBACK_MODELS, parseModels, parseProviderPreferences } from './preferences.ts';
export { Router, deploymentInfo } from './router.ts';
export type { RouterOptions } from './router.ts';
export { ROUTING_STRATEGIES } from './types.ts';
export type {
  Candidate,
  DeploymentInfo,
  Exclusion,
  HealthObservation,
  ModelCheck,
  ModelCheckResult,
  PolicyDrop,
  ProviderPreferences,
  RouteCheck,
  RouteCheckResult,
  RouteInput,
  RouteResult,
  RoutingStrategy,
} from './types.ts';
