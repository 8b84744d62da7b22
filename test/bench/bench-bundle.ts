// The example policy bundle as every bench serves it.
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Copies the example bundle into `tmp` with limits raised (one key sends thousands of requests a second); returns its directory. */
export function benchBundle(tmp: string): string {
  const configDir = join(tmp, 'policies');
  cpSync('policies', configDir, { recursive: true });
  for (const f of readdirSync(join(configDir, 'policies'))) {
    const file = join(configDir, 'policies', f);
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace(/\b(rpm|tpm|maxParallel): \d+/g, '$1: 100000000')
        .replace(/usd: [\d.]+/g, 'usd: 1000000000'),
    );
  }
  return configDir;
}
