// `tollgate check [DIR]`: read, validate and compile a config directory.
import { buildSnapshot } from '../config/snapshot.ts';
import { existing, parse } from './args.ts';

/** The config directory: the given one, else $TOLLGATE_CONFIG, else ./policies; it must exist. */
export function configDir(given: string | undefined, what = 'config directory'): string {
  const fromEnv = given === undefined && process.env.TOLLGATE_CONFIG ? process.env.TOLLGATE_CONFIG : undefined;
  const dir = given ?? fromEnv ?? './policies';
  existing(dir, ['directory'], fromEnv ? `${what} (from TOLLGATE_CONFIG)` : what);
  return dir;
}

export async function runCheck(args: string[]): Promise<number> {
  const p = parse(args, {}, 1);
  const dir = configDir(p.positionals[0]);
  const snap = buildSnapshot(dir);
  for (const w of snap.core.warnings) process.stdout.write(`warning: ${w}\n`);
  const c = snap.core;
  process.stdout.write(
    `ok: ${dir} revision ${snap.revision}: ${c.providers.size} providers, ${c.models.length} models, ${c.tenants.size} tenants, ${c.keys.length} keys, ${snap.policy.policies.length} policies\n`,
  );
  return 0;
}
