// Optional OTLP/HTTP (JSON encoding) span export: one SERVER span per request, built from its record, named
// and attributed after the OTel GenAI conventions. Batched and POSTed off the hot path; best effort (a failed
// export is counted and dropped, never retried into memory growth).
//
// A consumer of each finished request's record in its own right (app.ts wires `observe` next to lineage and
// metrics): what the lineage pipeline drops never costs a span.

import type { Logger } from 'pino';
import type { LineageRecord } from '../lineage/record.ts';
import type { Metrics } from './metrics.ts';
import { operationName } from './metrics.ts';

export interface OtlpOptions {
  /** Collector base URL (`http://collector:4318`) or the full traces URL (`…/v1/traces`). */
  endpoint: string;
  headers?: Record<string, string>;
  serviceName?: string;
  serviceVersion?: string;
  serviceInstanceId?: string;
  /** Spans per request. Default 512. */
  batchSize?: number;
  /** Default 1000 ms. */
  flushIntervalMs?: number;
  /** Spans held while the collector is slow; beyond this new spans are dropped. Default 4096. */
  maxQueue?: number;
  /** Per export request. Default 5000 ms. */
  timeoutMs?: number;
  metrics?: Metrics;
  logger?: Logger;
}

type AnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
export interface OtlpAttribute {
  key: string;
  value: AnyValue;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpAttribute[];
  status: { code: number; message?: string };
}

const SPAN_KIND_SERVER = 2;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

function nanos(d: Date): string {
  return (BigInt(d.getTime()) * 1_000_000n).toString();
}

function attrs(pairs: [string, string | number | boolean | undefined][]): OtlpAttribute[] {
  const out: OtlpAttribute[] = [];
  for (const [key, v] of pairs) {
    if (v === undefined || v === '') continue;
    if (typeof v === 'string') out.push({ key, value: { stringValue: v } });
    else if (typeof v === 'boolean') out.push({ key, value: { boolValue: v } });
    else if (Number.isInteger(v)) out.push({ key, value: { intValue: String(v) } });
    else if (Number.isFinite(v)) out.push({ key, value: { doubleValue: v } });
  }
  return out;
}

/** The span for one request; undefined when the record carries no trace ids. No user ids or key ids. */
export function spanFromLineage(r: LineageRecord): OtlpSpan | undefined {
  const t = r.trace;
  if (!t) return undefined;
  const op = operationName(r.request.endpoint);
  const model = r.request.requestedModel;
  const failed = r.outcome !== 'success';
  const span: OtlpSpan = {
    traceId: t.traceId,
    spanId: t.spanId,
    name: op === 'other' ? `tollgate ${r.request.endpoint}` : model ? `${op} ${model}` : op,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: nanos(r.startTime),
    endTimeUnixNano: nanos(r.endTime),
    attributes: attrs([
      ['gen_ai.operation.name', op],
      ['gen_ai.provider.name', r.served?.provider],
      ['gen_ai.request.model', model],
      ['gen_ai.response.model', r.served?.upstreamModel],
      ['gen_ai.usage.input_tokens', r.tokens?.input],
      ['gen_ai.usage.output_tokens', r.tokens?.output],
      ['http.request.method', r.request.method],
      ['url.path', r.request.endpoint],
      ['http.response.status_code', r.statusCode],
      ['error.type', failed ? (r.errorClass ?? r.outcome) : undefined],
      ['tollgate.request_id', r.requestId],
      ['tollgate.decision_id', r.decisionId],
      ['tollgate.tenant', r.principal.tenant],
      ['tollgate.team', r.principal.team],
      ['tollgate.outcome', r.outcome],
      ['tollgate.deployment', r.served?.deployment],
      ['tollgate.cost_usd', r.costUsd],
      ['tollgate.policy.bundle_revision', r.policy?.bundleRevision],
    ]),
    status: failed ? { code: STATUS_ERROR, message: r.errorCode ?? r.outcome } : { code: STATUS_UNSET },
  };
  if (t.parentSpanId) span.parentSpanId = t.parentSpanId;
  return span;
}

export class OtlpSpanExporter {
  readonly url: string;
  private readonly opts: OtlpOptions;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly resource: { attributes: OtlpAttribute[] };
  private queue: OtlpSpan[] = [];
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastErrorLog = 0;

  constructor(opts: OtlpOptions) {
    let url: URL;
    try {
      url = new URL(opts.endpoint);
    } catch {
      throw new Error(`otlp.endpoint ${JSON.stringify(opts.endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`otlp.endpoint must be http(s), got ${url.protocol}`);
    }
    this.url = url.pathname.endsWith('/v1/traces')
      ? url.toString()
      : new URL(url.pathname.replace(/\/$/, '') + '/v1/traces', url).toString();
    this.opts = opts;
    this.batchSize = opts.batchSize ?? 512;
    this.maxQueue = opts.maxQueue ?? 4096;
    this.resource = {
      attributes: attrs([
        ['service.name', opts.serviceName ?? 'tollgate'],
        ['service.version', opts.serviceVersion],
        ['service.instance.id', opts.serviceInstanceId],
      ]),
    };
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Exports a span for each sampled record. Never throws. */
  observe(record: LineageRecord): void {
    if (!record.trace?.sampled) return;
    const span = spanFromLineage(record);
    if (span) this.enqueue(span);
  }

  enqueue(span: OtlpSpan): void {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.opts.metrics?.otlpSpansDropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.batchSize && !this.inflight) setImmediate(() => void this.flush());
  }

  /** Exports everything queued (one request at a time). */
  async flush(): Promise<void> {
    while (this.inflight) await this.inflight;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      this.inflight = this.post(batch);
      try {
        await this.inflight;
      } finally {
        this.inflight = undefined;
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
  }

  private async post(spans: OtlpSpan[]): Promise<void> {
    const body = JSON.stringify({
      resourceSpans: [
        { resource: this.resource, scopeSpans: [{ scope: { name: 'tollgate' }, spans }] },
      ],
    });
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.opts.headers },
        body,
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`collector answered HTTP ${res.status}`);
      this.opts.metrics?.otlpSpansExported.inc(spans.length);
    } catch (err) {
      this.opts.metrics?.otlpSpansDropped.inc({ reason: 'export_error' }, spans.length);
      const now = Date.now();
      if (now - this.lastErrorLog > 10_000) {
        this.lastErrorLog = now;
        this.opts.logger?.warn({ err: (err as Error).message, spans: spans.length }, 'OTLP span export failed');
      }
    }
  }
}

/** `otlp.endpoint` unset → no exporter. */
export function createOtlpExporter(opts: Partial<OtlpOptions> | undefined): OtlpSpanExporter | undefined {
  if (!opts?.endpoint) return undefined;
  return new OtlpSpanExporter({ ...opts, endpoint: opts.endpoint });
}
