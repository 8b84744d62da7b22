// npm's prepare / prestart hook (and npm test): compile service/ to dist/ (tsconfig.build.json) when
// TypeScript is installed. An install without dev dependencies (npm ci --omit=dev, a container's
// runtime stage) has no compiler: there dist/ must come from a build stage, and this only says so when it is missing.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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
if (r.status !== 0) process.exit(r.status ?? 1);

// Files the compiled code reads next to itself (new URL('./x', import.meta.url)): the admin API's OpenAPI
// document and the console's static files. Documentation (*.md) and TypeScript-only files stay behind.
const ASSET = /\.(json|html|css|js|svg|png)$/;
const src = fileURLToPath(new URL('service/', root));
const out = fileURLToPath(new URL('dist/', root));
function copyAssets(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copyAssets(p);
    else if (ASSET.test(e.name)) cpSync(p, join(out, relative(src, p)));
  }
}
copyAssets(src);
process.exit(0);
