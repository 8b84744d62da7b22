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
