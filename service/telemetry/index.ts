// Public surface of the telemetry module.
export { createMetrics, recordRequestMetrics, statusLabel, operationName, OTHER, NONE } from './metrics.ts';
export type { Metrics, MetricsOptions, KnownLabels, LabelKind, Phase } from './metrics.ts';
export { RequestMetricsConsumer } from './request-metrics.ts';
export { startTelemetryServer, parseAddr } from './http.ts';
export type { TelemetryServer, TelemetryServerOptions, Readiness, RouteHandler } from './http.ts';
export { parseTraceparent, startSpan, formatTraceparent, newSpanId, newTraceId } from './tracing.ts';
export type { TraceParent, SpanContext, StartSpanOptions } from './tracing.ts';
export { OtlpSpanExporter, createOtlpExporter, spanFromLineage } from './otlp.ts';
export type { OtlpOptions, OtlpSpan } from './otlp.ts';
