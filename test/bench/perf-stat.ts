// Instructions retired by a process over a window, with `perf stat -e instructions -p <pid>`: a figure
// other load on the machine barely moves. Unavailable in many VMs (no PMU): then undefined.
import { spawn, spawnSync } from 'node:child_process';

let supported: boolean | undefined;

export function perfSupported(): boolean {
  if (supported === undefined) {
    const r = spawnSync('perf', ['stat', '-x', ',', '-e', 'instructions:u', 'true'], { encoding: 'utf8' });
    supported = r.status === 0 && /^\d+,/m.test(r.stderr ?? '');
  }
  return supported;
}

/** Starts counting the process's user+kernel instructions; stop() resolves to the count. */
export function perfInstructions(pid: number): { stop(): Promise<number | undefined> } | undefined {
  if (!perfSupported()) return undefined;
  const p = spawn('perf', ['stat', '-x', ',', '-e', 'instructions', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    stop: () =>
      new Promise((resolve) => {
        p.once('exit', () => {
          const m = /^(\d+),/m.exec(err);
          resolve(m ? Number(m[1]) : undefined);
        });
        p.kill('SIGINT');
      }),
  };
}
