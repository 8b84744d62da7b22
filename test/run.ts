// `npm test`'s runner: provisions what the tests need, then runs them.
//  1. Envoy: every pinned version (envoy/versions.json), found or installed by service/envoy/provision.ts
//     (ENVOY_BIN set → only that binary).
//  2. Redis: a private redis-server from PATH on a free loopback port (TEST_REDIS_URL for every test).
//  3. Unit and integration tests once; the end-to-end suites (test/e2e) once per Envoy version.
// Arguments narrow the run: `npm test -- test/e2e/core.test.ts` (files), `--envoy 1.40.0`.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { findEnvoy, pinnedVersions, REPO_ROOT, EnvoyUnavailableError, type EnvoyBinary } from '../service/envoy/provision.ts';
import { PrivateRedis } from './lineage/redis-server.ts';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith('.test.ts')) out.push(relative(REPO_ROOT, p));
  }
  return out.sort();
}

function runNodeTests(files: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function envoys(only: string | undefined): Promise<EnvoyBinary[]> {
  if (process.env.ENVOY_BIN) return [await findEnvoy()];
  const versions = only ? [only] : pinnedVersions().pinned;
  const out: EnvoyBinary[] = [];
  for (const version of versions) out.push(await findEnvoy({ version, log: (l) => console.log(l) }));
  return out;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const envoyArg = args.indexOf('--envoy');
  const only = envoyArg >= 0 ? args[envoyArg + 1] : undefined;
  const picked = args.filter((a, i) => a.endsWith('.test.ts') && i !== envoyArg + 1);
  const all = picked.length ? picked : testFiles(join(REPO_ROOT, 'test'));
  const e2e = all.filter((f) => f.startsWith('test/e2e/'));
  const rest = all.filter((f) => !f.startsWith('test/e2e/'));

  let bins: EnvoyBinary[] = [];
  try {
    bins = await envoys(only);
  } catch (err) {
    if (err instanceof EnvoyUnavailableError) {
      console.error(`\nnpm test needs Envoy: ${err.message}`);
      return 1;
    }
    throw err;
  }
  for (const b of bins) console.log(`envoy ${b.version}: ${b.path} (${b.source})`);

  let redis: PrivateRedis;
  try {
    redis = await PrivateRedis.start();
  } catch (err) {
    console.error(`\nnpm test needs redis-server on PATH (Debian: apt-get install -y redis-server): ${(err as Error).message}`);
    return 1;
  }
  console.log(`redis: ${redis.url} (private, for this run)`);
  const env = {
    TEST_REDIS_URL: redis.url,
    TOLLGATE_TEST_ENVOY_VERSIONS: bins.map((b) => `${b.version}=${b.path}`).join(','),
  };
  const failed: string[] = [];
  try {
    if (rest.length) {
      console.log(`\n== unit and integration tests (${rest.length} files) ==`);
      if ((await runNodeTests(rest, env)) !== 0) failed.push('unit and integration tests');
    }
    for (const b of bins) {
      if (!e2e.length) break;
      console.log(`\n== end-to-end tests through Envoy ${b.version} (${e2e.length} files) ==`);
      if ((await runNodeTests(e2e, { ...env, TOLLGATE_TEST_ENVOY_BIN: b.path })) !== 0) failed.push(`end-to-end through Envoy ${b.version}`);
    }
  } finally {
    await redis.stop();
  }
  console.log(failed.length ? `\nFAILED: ${failed.join('; ')}` : `\nall passed (Envoy ${bins.map((b) => b.version).join(', ')})`);
  return failed.length ? 1 : 0;
}

process.exitCode = await main();
