// W3C Trace Context (https://www.w3.org/TR/trace-context/): parse the caller's `traceparent`, give Tollgate its
// own span, and format the header to propagate upstream. The ids land in the lineage record (`trace`).

import { randomBytes } from 'node:crypto';

export interface TraceParent {
  version: string;
  traceId: string;
  parentSpanId: string;
  flags: number;
  sampled: boolean;
}

export interface SpanContext {
  traceId: string;
  /** Tollgate's own span id. */
  spanId: string;
  /** The caller's span id; undefined when Tollgate started the trace. */
  parentSpanId?: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Parses a `traceparent` header. Returns undefined when it is absent or invalid (then a new trace is started):
 * wrong lengths, non-lowercase-hex, version `ff`, all-zero trace or span id, or extra fields on version 00.
 * Versions above 00 are parsed by their 00 prefix, as the spec asks.
 */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (header === undefined) return undefined;
  const v = header.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' && v.length !== 55) return undefined;
  if (version !== '00' && v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const parentSpanId = v.slice(36, 52);
  const flagsHex = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentSpanId) || !HEX.test(flagsHex)) return undefined;
  if (traceId === ZERO_TRACE || parentSpanId === ZERO_SPAN) return undefined;
  const flags = parseInt(flagsHex, 16);
  return { version, traceId, parentSpanId, flags, sampled: (flags & 1) === 1 };
}

// One randomBytes call per 256 ids instead of one per id: the syscall and Buffer dominated
// per-request tracing cost. Ids are not secrets; uniqueness is all W3C asks for.
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolPos = POOL_SIZE;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolPos + bytes > pool.length) {
      pool = randomBytes(POOL_SIZE);
      poolPos = 0;
    }
    const h = pool.toString('hex', poolPos, poolPos + bytes);
    poolPos += bytes;
    if (!/^0+$/.test(h)) return h;
  }
}

export function newTraceId(): string {
  return randomHex(16);
}

export function newSpanId(): string {
  return randomHex(8);
}

export interface StartSpanOptions {
  /** Sampling for traces Tollgate starts itself (0..1). Default 1. Incoming traces keep the caller's decision. */
  sampleRatio?: number;
}

/** Continues the caller's trace (or starts one) with a fresh span id for Tollgate. */
export function startSpan(traceparent: string | undefined, opts: StartSpanOptions = {}): SpanContext {
  const parent = parseTraceparent(traceparent);
  if (parent) {
    return { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.parentSpanId, sampled: parent.sampled };
  }
  const ratio = opts.sampleRatio ?? 1;
  return { traceId: newTraceId(), spanId: newSpanId(), sampled: ratio >= 1 || Math.random() < ratio };
}

/** The `traceparent` to send upstream, naming Tollgate's span as the parent. */
export function formatTraceparent(ctx: SpanContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
}
