// npm's prepare / prestart hook (and npm test): compile service/ to dist/ (tsconfig.build.json) when
// TypeScript is installed. An install without dev dependencies (npm ci --omit=dev, a container's
// runtime stage) has no compiler: there dist/ must come from a build stage, and this only checks it is there.
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
  if (existsSync(new URL('dist/cli.js', root))) process.exit(0);
  process.stderr.write('tollgate: cannot build dist/: TypeScript is not installed (dev dependency) and there is no dist/ yet\n');
  process.exit(1);
}
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
