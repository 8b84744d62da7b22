// W3C trace context from Envoy's `traceparent`.
export { parseTraceparent } from '../telemetry/trace.ts';
export type { TraceContext } from '../telemetry/trace.ts';
