// A/B CPU comparison inside one process: `BENCH_BASE_SRC=<another checkout>` names a second copy of the
// sources (e.g. the previous commit, exported with `git archive`); its modules are imported next to this
// checkout's, and blocks of the same work alternate between the two (A, B, B, A, …). Reports the median
// CPU per operation of each and their ratio: noise from other processes hits both alike.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from './noise.ts';

/** The other checkout's root, or undefined when no A/B comparison was asked for. */
export function baseSource(): string | undefined {
  const s = process.env.BENCH_BASE_SRC;
  return s ? s : undefined;
}

/** Imports `rel` (e.g. 'service/policy/index.ts') from the other checkout, typed as this checkout's module. */
export async function importBase<T>(rel: string, _same: T): Promise<T> {
  const root = baseSource();
  if (!root) throw new Error('BENCH_BASE_SRC is not set');
  return (await import(pathToFileURL(join(root, rel)).href)) as T;
}

export interface AbResult {
  newUs: number;
  baseUs: number;
  line: string;
}

/** Median CPU µs per call of `run(i)` for the new and the base implementation, blocks interleaved. */
export function abCpu(label: string, fresh: (i: number) => void, base: (i: number) => void, opsPerBlock: number, rounds = 10): AbResult {
  const cpu = (f: (i: number) => void): number => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < opsPerBlock; i++) f(i);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / opsPerBlock;
  };
  cpu(fresh);
  cpu(base);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2) {
      b.push(cpu(base));
      a.push(cpu(fresh));
    } else {
      a.push(cpu(fresh));
      b.push(cpu(base));
    }
  }
  const newUs = median(a);
  const baseUs = median(b);
  return { newUs, baseUs, line: `A/B ${label}: this checkout ${newUs.toFixed(2)}µs vs base ${baseUs.toFixed(2)}µs CPU per op (ratio ${(newUs / baseUs).toFixed(2)}; median of ${rounds} interleaved blocks)` };
}

/**
 * Rough heap allocation per call (sum of used-heap growth between calls; a collection inside a call hides a
 * little of it) for the new and the base implementation, median of interleaved blocks.
 */
export async function abAlloc(label: string, fresh: (i: number) => void, base: (i: number) => void, opsPerBlock = 2000, rounds = 6): Promise<string> {
  const v8 = await import('node:v8');
  const bytes = (f: (i: number) => void): number => {
    let total = 0;
    let last = v8.getHeapStatistics().used_heap_size;
    for (let i = 0; i < opsPerBlock; i++) {
      f(i);
      const u = v8.getHeapStatistics().used_heap_size;
      if (u >= last) total += u - last;
      last = u;
    }
    return total / opsPerBlock;
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2) {
      b.push(bytes(base));
      a.push(bytes(fresh));
    } else {
      a.push(bytes(fresh));
      b.push(bytes(base));
    }
  }
  return `A/B ${label}: this checkout ≈${Math.round(median(a))} B vs base ≈${Math.round(median(b))} B heap allocated per op`;
}
