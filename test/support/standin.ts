// The Envoy stand-in is gone: every end-to-end suite runs through a real Envoy, and what the
// stand-in asserted about Envoy is now checked on the real thing by test/e2e/envoy-contract.test.ts
// and test/e2e/envoy-chain-contract.test.ts (docs/envoy.md, "Where the stand-in was wrong").
// Only this type name is left, because budget, policy-reload and redaction-restore e2e suites still
// import it; once they import RenderCluster from service/envoy/render.ts, delete this file.
export type { RenderCluster as StandinCluster } from '../../service/envoy/render.ts';
