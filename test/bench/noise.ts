// How much else was running while a bench round ran: the machine's busy CPU (/proc/stat) minus what
// the bench's own processes used (/proc/<pid>/stat), and the hypervisor's steal. Both benches print
// it per round and warn when it is high, because then their absolute numbers (not their ratios) are off.
import { readdirSync, readFileSync } from 'node:fs';

const HZ = 100;

interface Sample {
  at: number;
  busy: number;
  steal: number;
  own: number;
}

/** user+nice+system+irq+softirq and steal of all CPUs, in seconds. */
function machine(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return { busy: (user + nice + system + irq + softirq) / HZ, steal: steal / HZ };
}

/** CPU seconds (user + system) of a process, all threads; 0 once it is gone. */
export function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return 0;
  }
}

/** Direct children of a process (e.g. node:cluster workers), from /proc; none once it is gone. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
  } catch {
    // gone, or no children files: none known
  }
  return out;
}

/**
 * CPU seconds of a process and its direct children: a Tollgate primary with TOLLGATE_WORKERS > 1 does
 * no request work itself, its workers do (a process' own /proc stat leaves live children out).
 */
export function treeCpuOf(pid: number): number {
  return childPids(pid).reduce((sum, c) => sum + cpuOf(c), cpuOf(pid));
}

/** Resident set size of a process and its direct children, MB. */
export function treeRssMb(pid: number): number {
  return childPids(pid).reduce((sum, c) => sum + rssMb(c), rssMb(pid));
}

/** Resident set size of a process, MB. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export class NoiseMeter {
  private s0: Sample;
  constructor(private readonly pids: () => number[]) {
    this.s0 = this.sample();
  }
  private sample(): Sample {
    const m = machine();
    const own = this.pids().reduce((a, p) => a + treeCpuOf(p), 0) + cpuOf(process.pid);
    return { at: performance.now(), busy: m.busy, steal: m.steal, own };
  }
  /** Cores' worth of foreign CPU and of steal since construction (or the last call). */
  read(): { foreignCores: number; stealCores: number; loadavg: string } {
    const s1 = this.sample();
    const secs = (s1.at - this.s0.at) / 1000;
    const out = {
      foreignCores: Math.max(0, (s1.busy - this.s0.busy - (s1.own - this.s0.own)) / secs),
      stealCores: (s1.steal - this.s0.steal) / secs,
      loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    };
    this.s0 = s1;
    return out;
  }
}

/** Threshold above which a round is flagged: another process used this many cores meanwhile. */
export const NOISY_CORES = 0.15;

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "median (min–max)" of per-round values. */
export function spread(xs: number[], digits = 2): string {
  const s = xs.filter((x) => Number.isFinite(x));
  if (!s.length) return 'n/a';
  return `${median(s).toFixed(digits)} (${Math.min(...s).toFixed(digits)}–${Math.max(...s).toFixed(digits)}, ${s.length} rounds)`;
}

/**
 * `perf stat` instruction counting for a pid over a window, when the kernel exposes the PMU (often not
 * in VMs). Returns a stop() that resolves to the instruction count, or undefined when unsupported.
 */
export { perfInstructions } from './perf-stat.ts';

/**
 * The soak's verdict on RSS samples taken every 10 s (the first three are warm-up): the range, the largest
 * deviation from the median (the goal "flat ±10%" reads as: every sample within 10% of the level), and the
 * trend — the last third's median against the first third's, which shows growth a sawtooth of GCs can hide.
 */
export function rssVerdict(rss: number[]): string {
  const settled = rss.slice(Math.min(3, rss.length - 1));
  const lo = Math.min(...settled);
  const hi = Math.max(...settled);
  const level = median(settled);
  const dev = Math.max(hi - level, level - lo) / level;
  const third = Math.max(1, Math.floor(settled.length / 3));
  const trend = median(settled.slice(-third)) / median(settled.slice(0, third)) - 1;
  const pctS = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  return `RSS after warm-up: ${lo.toFixed(0)}–${hi.toFixed(0)} MB, median ${level.toFixed(0)} MB; largest deviation ±${(dev * 100).toFixed(1)}% (goal ≤ ±10%); last third vs first third ${pctS(trend)}`;
}
