// One finished request, one record, several consumers. The exchange builds the record once and hands it to
// lineage (audit), request metrics and traces, each on its own: a full lineage queue, a sink outage or a failing
// exporter loses (and counts) only what that consumer would have kept, never another consumer's view.
import type { Logger } from 'pino';
import type { LineageRecord } from '../lineage/record.ts';
import type { LineagePort, OutcomeConsumer } from './ports.ts';

const LOG_EVERY_MS = 10_000;
const lastLogged = new Map<string, number>();

function failed(log: Logger, consumer: string, err: unknown, requestId: string): void {
  // A throwing consumer is a bug: log it, but not once per request.
  const now = Date.now();
  if (now - (lastLogged.get(consumer) ?? 0) < LOG_EVERY_MS) return;
  lastLogged.set(consumer, now);
  log.error({ err, consumer, requestId }, 'request outcome consumer failed');
}

/** Hands `record` to lineage and to every other consumer, independently of each other. Never throws. */
export function publishOutcome(record: LineageRecord, lineage: LineagePort, consumers: readonly OutcomeConsumer[], log: Logger): void {
  try {
    lineage.emit(record);
  } catch (err) {
    failed(log, 'lineage', err, record.requestId);
  }
  for (const c of consumers) {
    try {
      c.consume(record);
    } catch (err) {
      failed(log, c.name, err, record.requestId);
    }
  }
}

/**
 * Requests that have ended but whose record is not published yet (the budget settle runs in between). A
 * graceful shutdown waits for them before it closes lineage, so no ended request loses its record there.
 */
export class PendingOutcomes {
  private readonly pending = new Set<Promise<void>>();

  /** `onError`: what to do with a tracked task that failed (a bug: the record was never built). */
  constructor(private readonly onError: (err: unknown) => void) {}

  track(p: Promise<void>): void {
    const tracked: Promise<void> = p
      .catch((err: unknown) => {
        try {
          this.onError(err);
        } catch {
          // reporting must not break shutdown
        }
      })
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Resolves true once nothing is pending (including work tracked meanwhile), false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, left)));
      await Promise.race([Promise.all(this.pending), timeout]);
      clearTimeout(timer);
    }
    return true;
  }
}
