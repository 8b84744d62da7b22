// Public surface of the lineage module.
export {
  LINEAGE_SCHEMA_VERSION,
  MAX_REDACTION_LOCATIONS,
  toProtoJson,
  fromProtoJson,
  isOutcome,
  ruleResult,
  contentSha256,
} from './record.ts';
export type {
  LineageRecord,
  LineageRecordJson,
  Outcome,
  AuthMethod,
  LineageClientApi,
  RuleResult,
  LegacyRuleResult,
  Direction,
  TraceIds,
  Principal,
  RequestInfo,
  ServedBy,
  Attempt,
  RuleOutcome,
  DryRunDeny,
  PolicyEvaluation,
  RedactionCount,
  BudgetEffect,
  TokenUsage,
  Latencies,
  ContentDigest,
} from './record.ts';
export { validateLineageRecord, lineageRoot, lineageRecordType, LINEAGE_PROTO_PATH, LINEAGE_RECORD_TYPE } from './schema.ts';
export { LineageEmitter } from './emitter.ts';
export type { LineageEmitterOptions, LineageHealth, SinkHealth } from './emitter.ts';
export { StdoutSink, FileSink, rotatedFiles } from './sinks.ts';
export type { LineageSink, SinkEntry, WriteResult, StdoutSinkOptions, FileSinkOptions } from './sinks.ts';
export { RedisSink } from './redis-sink.ts';
export type { RedisSinkOptions } from './redis-sink.ts';
export { Spool, DEFAULT_SPOOL_OPTIONS } from './spool.ts';
export type { SpoolOptions, OverflowPolicy, FsyncPolicy } from './spool.ts';
export { queryLineage } from './query.ts';
export type { LineageQuery, LineageQueryResult } from './query.ts';
