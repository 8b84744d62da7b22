// Runs the real bin (node bin/tollgate.js …) in the repository, with a clean environment for the CLI's variables.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function tollgate(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const e: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_LOG_LEVEL: 'silent', ...env };
  for (const k of ['TOLLGATE_CONFIG', 'REDIS_URL', 'TOLLGATE_LINEAGE_FILE', 'TOLLGATE_DEBUG', 'TOLLGATE_ADMIN_TOKEN', 'TOLLGATE_HTTP_ADDR']) if (!(k in env)) delete e[k];
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/tollgate.js'), ...args], { cwd: ROOT, env: e, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

