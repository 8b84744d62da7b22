// The contract between Envoy's two ext_proc filters and Tollgate's two stages for in-request
// fallback (docs/design/provider-fallback.md). envoy/envoy.yaml and the tests use these names.

/** gRPC initial metadata (`grpc_service.initial_metadata`) the upstream ext_proc filter sends. */
export const STAGE_METADATA_KEY = 'x-tollgate-stage';
export const UPSTREAM_STAGE = 'upstream';

/** Endpoint metadata namespace and key naming the deployment an endpoint serves. */
export const ENDPOINT_METADATA_NAMESPACE = 'tollgate';
export const ENDPOINT_DEPLOYMENT_KEY = 'deployment';

/** ext_proc `request_attributes` entry the upstream filter evaluates for each attempt. */
export const DEPLOYMENT_ATTRIBUTE = `xds.upstream_host_metadata.filter_metadata['${ENDPOINT_METADATA_NAMESPACE}']['${ENDPOINT_DEPLOYMENT_KEY}']`;

/**
 * Dynamic metadata namespace the router stage writes (receiving_namespaces) and the upstream
 * filter forwards (forwarding_namespaces); the plan is the `plan` key in it.
 */
export const PLAN_NAMESPACE = 'tollgate';
export const PLAN_KEY = 'plan';

/** Response header the upstream stage adds: `<deployment id>;attempt=<n>`; the router stage strips it. */
export const SERVED_HEADER = 'x-tollgate-served';
