// The production build: `tsc -p tsconfig.build.json` gives plain JavaScript with source maps that runs
// with no TypeScript loader (no tsx, no `.ts` import left), finds the repository's files (envoy/,
// proto/, policies/) from dist/, and runs the config reload worker from emitted JS. Built into a
// scratch copy (symlinks to the repository's files), so the repository's own dist/ is never touched.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../service/envoy/provision.ts';
import { testEnvoyBinary } from '../support/envoy.ts';

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}

describe('npm run build (tsconfig.build.json)', () => {
  const root = mkdtempSync(join(tmpdir(), 'tollgate-build-'));
  const dist = join(root, 'dist');
  let envoyBin = '';

  before(async () => {
    for (const f of ['service', 'envoy', 'proto', 'policies', 'node_modules', 'tsconfig.json', 'tsconfig.build.json', 'package.json'])
      symlinkSync(join(REPO_ROOT, f), join(root, f));
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist, '--tsBuildInfoFile', join(dist, '.tsbuildinfo')], {
      cwd: root,
      encoding: 'utf8',
      timeout: 240_000,
    });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}\n${r.stderr}`);
    envoyBin = (await testEnvoyBinary()).path;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('emits JavaScript with source maps and no TypeScript import left', () => {
    const files = jsFiles(dist);
    for (const f of ['cli.js', 'main.js', 'app.js', 'standalone/run.js', 'config/reload-worker.js']) assert.ok(existsSync(join(dist, f)), `dist/${f}`);
    for (const f of files) {
      assert.ok(existsSync(`${f}.map`), `${f}.map`);
      const text = readFileSync(f, 'utf8');
      assert.doesNotMatch(text, /from ["']tsx|import\(["']tsx|from ["']\.{1,2}\/[^"']*\.ts["']|import\(["']\.{1,2}\/[^"']*\.ts["']\)/, f);
    }
  });

  it('runs the CLI from dist/ with plain node: check, test and envoy find the repository files', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [join(dist, 'cli.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ENVOY_BIN: envoyBin } });
    const check = run(['check', 'policies']);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /^ok: policies revision/m);
    const tests = run(['test', 'policies']);
    assert.equal(tests.status, 0, tests.stdout + tests.stderr);
    assert.match(tests.stdout, /\d+ passed, 0 failed/);
    const envoy = run(['envoy']);
    assert.equal(envoy.status, 0, envoy.stderr);
    assert.match(envoy.stdout, /^\d+\.\d+\.\d+\t\S+\t\(ENVOY_BIN\)$/m);
  });

  it('reloads config in a worker running the emitted reload-worker.js', async () => {
    const mod = (await import(pathToFileURL(join(dist, 'config', 'reload.js')).href)) as typeof import('../../service/config/reload.ts');
    const load = mod.loadCoreInWorker(join(root, 'policies'), { now: new Date(), maxHeapMb: 256, timeoutMs: 60_000 });
    const core = await load.result;
    assert.ok(core.models.length > 0);
  });
});
