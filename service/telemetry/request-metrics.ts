// Request metrics as a consumer of each finished request's record (next to lineage and traces, never through
// them). Records are counted once per event-loop turn, in the order they came: prom-client costs about half as
// much per record in a batch as interleaved with request handling. Nothing is ever dropped: the batch holds only
// what ended during the current turn, and flush() counts it at once (shutdown, tests).
import type { Logger } from 'pino';
import type { LineageRecord } from '../lineage/record.ts';
import { recordRequestMetrics, type Metrics } from './metrics.ts';

export class RequestMetricsConsumer {
  readonly name = 'metrics';
  private pending: LineageRecord[] = [];
  private lastErrorLog = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly log?: Logger,
  ) {}

  consume(record: LineageRecord): void {
    this.pending.push(record);
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  /** Counts everything consumed so far. */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    for (const r of batch) {
      try {
        recordRequestMetrics(this.metrics, r);
      } catch (err) {
        // A bug; the rest of the batch is still counted. Logged at most every 10 s.
        const now = Date.now();
        if (now - this.lastErrorLog >= 10_000) {
          this.lastErrorLog = now;
          this.log?.error({ err, requestId: r.requestId }, 'request metrics failed for a record');
        }
      }
    }
  }
}
