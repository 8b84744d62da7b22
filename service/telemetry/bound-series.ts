// Pre-bound prom-client series for the per-request metrics. prom-client's inc()/observe() validate the label
// object, hash it and (histograms) build closures and stringify the bucket bound on every call: about a
// microsecond each, ~25 calls per request. Here each label tuple is resolved once to its prom-client hash (a
// bounded cache), and an update of a series that already exists adds to prom-client's own stored values with
// the same arithmetic prom-client uses, so /metrics prints exactly what it printed before. Anything unusual —
// the first update of a series, a series removed by reset()/remove(), a value prom-client would reject, a
// full cache — goes through prom-client's public inc()/observe(), unchanged.
//
// This reads two prom-client 15 internals (`hashMap` and its entries, `upperBounds`); test/telemetry/
// bound-series.test.ts compares the /metrics text with plain prom-client for a fixed sequence, so an upgrade
// that changes them fails there, not in production.

import type { Counter, Histogram, LabelValues } from 'prom-client';

/** Label tuples cached per metric; beyond this, updates take prom-client's own path (still counted). */
export const MAX_BOUND_SERIES = 4096;

interface CounterEntry {
  value: number;
}
interface HistogramEntry {
  sum: number;
  count: number;
  bucketValues: Record<string, number>;
}
interface MetricInternals<E> {
  hashMap: Record<string, E | undefined>;
  sortedLabelNames: readonly string[];
}
interface HistogramInternals extends MetricInternals<HistogramEntry> {
  upperBounds: readonly number[];
}

interface Bound<L extends string> {
  labels: LabelValues<L>;
  /** prom-client's key for these labels (util.js hashObject with the sorted label names). */
  hash: string;
}

/** label values (in labelNames order) → bound series, one Map level per label: no key strings to build. */
class BoundCache<L extends string> {
  private readonly root = new Map<string, unknown>();
  private size = 0;

  constructor(
    private readonly labelNames: readonly L[],
    private readonly sortedLabelNames: readonly string[],
  ) {}

  get(values: readonly string[]): Bound<L> | undefined {
    const n = this.labelNames.length;
    if (n === 0) {
      let b = this.root.get('') as Bound<L> | undefined;
      if (!b) this.root.set('', (b = { labels: {} as LabelValues<L>, hash: '' }));
      return b;
    }
    let level: Map<string, unknown> = this.root;
    for (let i = 0; i < n - 1; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (!next) {
        if (this.size >= MAX_BOUND_SERIES) return undefined;
        level.set(values[i]!, (next = new Map()));
      }
      level = next;
    }
    let b = level.get(values[n - 1]!) as Bound<L> | undefined;
    if (!b) {
      if (this.size >= MAX_BOUND_SERIES) return undefined;
      b = this.bind(values);
      level.set(values[n - 1]!, b);
      this.size++;
    }
    return b;
  }

  private bind(values: readonly string[]): Bound<L> {
    const labels: Record<string, string> = {};
    for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]!] = values[i]!;
    let hash = '';
    for (const k of this.sortedLabelNames) hash += `${k}:${labels[k]},`;
    return { labels: labels as LabelValues<L>, hash };
  }

  labelsOf(values: readonly string[]): LabelValues<L> {
    const labels: Record<string, string> = {};
    for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]!] = values[i]!;
    return labels as LabelValues<L>;
  }
}

export class BoundCounter<L extends string> {
  private readonly internals: MetricInternals<CounterEntry>;
  private readonly cache: BoundCache<L>;

  constructor(
    readonly metric: Counter<L>,
    labelNames: readonly L[],
  ) {
    this.internals = metric as unknown as MetricInternals<CounterEntry>;
    this.cache = new BoundCache(labelNames, this.internals.sortedLabelNames);
  }

  /** `values` in the order of the label names given to the constructor. */
  inc(values: readonly string[], v = 1): void {
    const b = this.cache.get(values);
    if (!b) return this.metric.inc(this.cache.labelsOf(values), v);
    const e = this.internals.hashMap[b.hash];
    // prom-client's setValue for an existing series: `value += v` (v finite and >= 0, else it throws).
    if (e !== undefined && v >= 0 && v !== Infinity) e.value += v;
    else this.metric.inc(b.labels, v);
  }
}

export class BoundHistogram<L extends string> {
  private readonly internals: HistogramInternals;
  private readonly cache: BoundCache<L>;
  private readonly bounds: readonly number[];
  /** The bucket keys of `bucketValues` (the bounds as property names), computed once. */
  private readonly keys: readonly string[];

  constructor(
    readonly metric: Histogram<L>,
    labelNames: readonly L[],
  ) {
    this.internals = metric as unknown as HistogramInternals;
    this.cache = new BoundCache(labelNames, this.internals.sortedLabelNames);
    this.bounds = this.internals.upperBounds;
    this.keys = this.bounds.map((b) => String(b));
  }

  observe(values: readonly string[], v: number): void {
    const b = this.cache.get(values);
    if (!b) return this.metric.observe(this.cache.labelsOf(values), v);
    const e = this.internals.hashMap[b.hash];
    if (e === undefined || !Number.isFinite(v)) return this.metric.observe(b.labels, v);
    // prom-client's observe for an existing series: the first bound >= v gets the count; above all, none.
    e.sum += v;
    e.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        e.bucketValues[this.keys[i]!]! += 1;
        break;
      }
    }
  }
}
