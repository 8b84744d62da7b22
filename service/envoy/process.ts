// Runs Envoy as a child process: writes the config, starts it, waits until the admin endpoint says
// LIVE and the listener is bound, and stops it with SIGTERM (SIGKILL after a grace period).
// Envoy's stdout (the access log) is parsed line by line; stderr is kept for error messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EnvoyProcessOptions {
  bin: string;
  /** Rendered config (YAML). */
  config: string;
  /** Envoy --log-level (default warning). */
  logLevel?: string;
  /** Extra arguments, e.g. ['--component-log-level', 'ext_proc:debug']. */
  args?: string[];
  /** How long to wait for readiness (default 20 s). */
  readyTimeoutMs?: number;
  /** Called with every stdout line (access log). */
  onStdout?: (line: string) => void;
  /** Called with every stderr line (Envoy's own log). */
  onStderr?: (line: string) => void;
}

export interface EnvoyProcess {
  child: ChildProcess;
  adminUrl: string;
  /** The first listener's bound port. */
  port: number;
  /** Envoy's stderr so far (its own log), for failure messages. */
  stderr(): string;
  stop(graceMs?: number): Promise<void>;
}

function lines(stream: NodeJS.ReadableStream, each: (l: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      each(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startEnvoyProcess(opts: EnvoyProcessOptions): Promise<EnvoyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-envoy-'));
  const cfgPath = join(dir, 'envoy.yaml');
  const adminPath = join(dir, 'admin-address');
  writeFileSync(cfgPath, opts.config);
  const child = spawn(
    opts.bin,
    [
      '-c', cfgPath,
      '--admin-address-path', adminPath,
      '--disable-hot-restart',
      '--concurrency', '1',
      '--log-level', opts.logLevel ?? 'warning',
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  lines(child.stdout!, (l) => opts.onStdout?.(l));
  lines(child.stderr!, (l) => {
    if (err.length < 200_000) err += `${l}\n`;
    opts.onStderr?.(l);
  });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = code ?? (signal ? -1 : null);
      resolve();
    }),
  );
  const stop = async (graceMs = 5000): Promise<void> => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  try {
    let adminUrl = '';
    for (;;) {
      if (exited !== undefined) throw new Error(`envoy exited (${exited}) before it was ready:\n${err.slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`envoy not ready within ${opts.readyTimeoutMs ?? 20_000} ms:\n${err.slice(-4000)}`);
      if (!adminUrl) {
        try {
          const a = readFileSync(adminPath, 'utf8').trim();
          if (a) adminUrl = `http://${a}`;
        } catch {
          /* not written yet */
        }
      }
      if (adminUrl) {
        const ready = await fetch(`${adminUrl}/ready`).then((r) => r.status === 200, () => false);
        if (ready) {
          const listeners = (await fetch(`${adminUrl}/listeners?format=json`).then((r) => r.json())) as {
            listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[];
          };
          const port = listeners.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
          if (port) return { child, adminUrl, port, stderr: () => err, stop };
        }
      }
      await sleep(25);
    }
  } catch (e) {
    await stop(1000);
    throw e;
  }
}
