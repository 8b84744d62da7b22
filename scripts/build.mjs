// npm's prepare / prestart hook (and npm test): compile service/ to dist/ (tsconfig.build.json) when
// TypeScript is installed. An install without dev dependencies (npm ci --omit=dev, a container's
// runtime stage) has no compiler: there dist/ must come from a build stage, and this only says so when it is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../', import.meta.url);
const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (!tsc) {
  // Not fatal: `npm ci --omit=dev` runs this too, before a build stage's dist/ is copied in.
  if (!existsSync(new URL('dist/cli.js', root)))
    process.stderr.write('tollgate: not building dist/: TypeScript (a dev dependency) is not installed; copy dist/ from a build or install dev dependencies\n');
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
