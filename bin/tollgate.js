#!/usr/bin/env node
// The `tollgate` command: runs the compiled CLI, dist/cli.js (`npm run build`; npm install/ci and
// npm start build it). Serving needs no dev dependency.
// In a source checkout where dist/ is missing or older than service/ (TypeScript edited since the last
// build) and the dev dependency tsx is installed, it runs service/cli.ts through tsx instead: a stale
// build is never what runs.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const dist = new URL('dist/cli.js', root);
const source = new URL('service/cli.ts', root);

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts') || e.name.endsWith('.mjs')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function builtAt() {
  for (const f of ['dist/.tsbuildinfo', 'dist/cli.js']) {
    const u = new URL(f, root);
    if (existsSync(u)) return statSync(u).mtimeMs;
  }
  return 0;
}

async function fromSource() {
  if (!existsSync(source)) return false;
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    return false; // no dev dependencies: the build is all there is
  }
  register();
  await import(source.href);
  return true;
}

const stale = !existsSync(dist) || (existsSync(source) && newestMtime(fileURLToPath(new URL('service', root))) > builtAt());
if (!(stale && (await fromSource()))) {
  if (!existsSync(dist)) {
    process.stderr.write('tollgate: dist/cli.js is missing; run `npm run build` first (npm install and npm start do it)\n');
    process.exit(1);
  }
  await import(dist.href);
}
