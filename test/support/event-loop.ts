// How long the event loop went without a turn while some work ran: a stall is what every in-flight
// stream of the process feels.
import { performance } from 'node:perf_hooks';

/** Largest gap between event-loop turns while `work` runs (and 30 ms after, so a synchronous stall at its end shows). */
export async function maxLoopGap<T>(work: () => Promise<T> | T): Promise<{ result: T; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const tick = setInterval(() => {
    const t = performance.now();
    maxGapMs = Math.max(maxGapMs, t - last);
    last = t;
  }, 5);
  try {
    const result = await work();
    await new Promise((r) => setTimeout(r, 30));
    return { result, maxGapMs };
  } finally {
    clearInterval(tick);
  }
}
