// How far V8 lets the old generation grow past its live size before the next full collection: a knob that trades
// CPU for flat RSS (#17). V8's own growth factor is dynamic (up to ~4x the live size when collections look cheap):
// under steady load the heap climbs from ~70 MB to ~200 MB between full collections and RSS swings between ~240 and
// ~400 MB (5-minute soak at 500 req/s). With 30% the heap stays within ~60–85 MB and RSS within ±5%, but a full
// collection then comes every second or so near saturation, and its marking costs about half again as much CPU
// per request there (at 500 req/s, ~40% of saturation, no measurable cost; README "Memory"). So the default leaves V8 alone; operators with a tight memory limit can set it. The flag
// is read by V8 at every full collection, so setting it at startup is enough.
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT_ENV = 'TOLLGATE_HEAP_GROWING_PERCENT';
export const DEFAULT_HEAP_GROWING_PERCENT = 0;
const FLAG = '--heap-growing-percent';

export class HeapConfigError extends Error {}

/**
 * The growth to apply: the env var, else the default (0: V8's own dynamic growth). Undefined when the
 * process was started with V8's flag itself (`node --heap-growing-percent=N`): that explicit choice stands.
 */
export function heapGrowingPercent(env: NodeJS.ProcessEnv, execArgv: readonly string[]): number | undefined {
  if (execArgv.some((a) => a === FLAG || a.startsWith(`${FLAG}=`) || a === '--heap_growing_percent' || a.startsWith('--heap_growing_percent='))) return undefined;
  const raw = env[HEAP_GROWING_PERCENT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_HEAP_GROWING_PERCENT;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= 1000)) {
    throw new HeapConfigError(`${HEAP_GROWING_PERCENT_ENV} must be a whole number from 0 (V8's own growth) to 1000, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Sets V8's old-generation growth for this process (nothing for undefined or 0). */
export function applyHeapGrowth(percent: number | undefined): void {
  if (percent !== undefined && percent > 0) v8.setFlagsFromString(`${FLAG}=${percent}`);
}
