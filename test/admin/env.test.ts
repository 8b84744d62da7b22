// `npm start` (service/main.ts) wires the managed-key and admin settings from the environment:
// REDIS_URL → managed keys on, TOLLGATE_TEAM_ADMIN_TOKENS_FILE (one entry per line), TOLLGATE_ADMIN_JWT_SECRET.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../bench/extproc-load.ts';
import { testRedisUrl } from '../support/redis.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const TEAM_A = `team-a-${randomBytes(16).toString('hex')}`;
const TEAM_B = `team-b-${randomBytes(16).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');

function jwt(claims: Record<string, unknown>): string {
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 600, aud: 'tollgate-admin', ...claims })).toString('base64url');
  return `${head}.${body}.${createHmac('sha256', JWT_SECRET).update(`${head}.${body}`).digest('base64url')}`;
}

describe('admin settings from the environment (service/main.ts)', { timeout: 60_000 }, () => {
  let child: ChildProcess;
  let base: string;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-env-'));
    writeFileSync(join(dir, 'team-admins'), `acme/research=${TEAM_A}\nglobex=${TEAM_B}\n`);
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        TOLLGATE_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
        TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
        TOLLGATE_CONFIG: './policies',
        TOLLGATE_LINEAGE: 'none',
        TOLLGATE_SPOOL_DIR: join(dir, 'spool'),
        TOLLGATE_LOG_LEVEL: 'warn',
        REDIS_URL: testRedisUrl(),
        TOLLGATE_REDIS_PREFIX: `tgenv-${randomBytes(4).toString('hex')}:`,
        TOLLGATE_ADMIN_TOKEN: ADMIN,
        TOLLGATE_TEAM_ADMIN_TOKENS_FILE: join(dir, 'team-admins'),
        TOLLGATE_ADMIN_JWT_SECRET: JWT_SECRET,
        TOLLGATE_ADMIN_JWT_AUDIENCE: 'tollgate-admin',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const end = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > end) throw new Error('tollgate did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    child?.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  const whoami = async (token: string) => {
    const r = await fetch(`${base}/admin/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('the admin token, both team admin entries of the file, and an admin JWT with the right audience', async () => {
    assert.equal((await whoami(ADMIN)).body.role, 'admin');
    assert.deepEqual((await whoami(TEAM_A)).body, { role: 'team', name: 'team-admin:acme/research', tenant: 'acme', team: 'research' });
    assert.deepEqual((await whoami(TEAM_B)).body, { role: 'team', name: 'team-admin:globex', tenant: 'globex' });
    assert.deepEqual((await whoami(jwt({ sub: 'ops', groups: ['tollgate-admins'] }))).body, { role: 'admin', name: 'jwt:ops' });
    assert.equal((await whoami(jwt({ sub: 'ops', groups: ['tollgate-admins'], aud: 'other' }))).status, 401);
  });

  it('managed keys are on (REDIS_URL): a team admin creates a key in its team', async () => {
    const r = await fetch(`${base}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEAM_A}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'acme', team: 'research' }),
    });
    assert.equal(r.status, 201);
    assert.match(((await r.json()) as { secret: string }).secret, /^tg-/);
  });
});
