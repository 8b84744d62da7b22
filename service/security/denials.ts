// Refused ext_proc calls are logged at most once per interval, with a count of the ones in
// between: someone hammering the port must not flood the log (the metric counts every one).
import type { Logger } from 'pino';

export function throttledDenials(log: Logger, intervalMs = 10_000, now: () => number = Date.now): { note(reason: string, method: string, peer: string): void } {
  let last = -Infinity;
  let suppressed = 0;
  return {
    note: (reason, method, peer) => {
      const t = now();
      if (t - last < intervalMs) {
        suppressed++;
        return;
      }
      log.warn({ reason, method, peer, suppressed }, 'ext_proc call refused: peer not authenticated');
      last = t;
      suppressed = 0;
    },
  };
}
