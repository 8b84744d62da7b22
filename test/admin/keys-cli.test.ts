// `tollgate keys … --server URL` drives the admin API of a running Tollgate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startTollgate, type Tollgate } from '../../service/app.ts';
import { runKeysApiCommand } from '../../service/cli/keys-api.ts';
import { hashKey } from '../../service/identity/keys.ts';
import { testRedisUrl } from '../support/redis.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN = `admin-${randomBytes(16).toString('hex')}`;

describe('tollgate keys --server', { timeout: 60_000 }, () => {
  let t: Tollgate;
  let dir: string;
  let server: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    writeFileSync(
      join(dir, 'tenants.yaml'),
      'apiVersion: tollgate.dev/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {}\n---\napiVersion: tollgate.dev/v1alpha1\nkind: Team\nmetadata: {name: research}\nspec: {tenant: acme}\n',
    );
    t = await startTollgate({
      configDir: dir,
      grpcAddr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      lineageSinks: ['none'],
      log: pino({ level: 'silent' }),
      watchConfig: false,
      redisUrl: testRedisUrl(),
      redisPrefix: `tgcli-${randomBytes(4).toString('hex')}:`,
      adminTokens: [ADMIN],
    });
    server = `http://127.0.0.1:${t.httpPort}`;
  });
  after(async () => {
    await t.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(args: string[], env: NodeJS.ProcessEnv = { TOLLGATE_ADMIN_TOKEN: ADMIN }): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runKeysApiCommand(args, { env, out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  }

  it('the CLI binary creates a key through the API: JSON, then the secret on its own line', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'service/cli.ts', 'keys', 'create', '--server', server, '--tenant', 'acme', '--team', 'research', '--models', 'gpt-4o-mini', '--budget-usd', '5', '--budget-window', 'day', '--meta', 'owner=ml'],
      { cwd: ROOT, env: { ...process.env, TOLLGATE_ADMIN_TOKEN: ADMIN }, timeout: 30_000 },
    );
    const secret = stdout.trim().split('\n').at(-1)!;
    assert.match(secret, /^tg-/);
    assert.match(stderr, /only time the secret is shown/);
    const rec = await t.services.snapshot().keys.lookup(hashKey(secret));
    assert.deepEqual(rec?.limits, { models: ['gpt-4o-mini'], budget: { usd: 5, window: 'day' } });
  });

  it('list, update, disable, rotate, revoke', async () => {
    const c = await run(['create', '--server', server, '--tenant', 'acme', '--name', 'ops']);
    assert.equal(c.code, 0, c.err);
    const id = (JSON.parse(c.out.slice(0, c.out.lastIndexOf('}') + 1)) as { key: { id: string } }).key.id;
    const l = await run(['list', '--server', server, '--tenant', 'acme']);
    assert.ok((JSON.parse(l.out) as { data: { id: string }[] }).data.some((k) => k.id === id));
    const u = await run(['update', id, '--server', server, '--rpm', '30']);
    assert.deepEqual((JSON.parse(u.out) as { key: { limits: unknown } }).key.limits, { rateLimit: { rpm: 30 } });
    assert.equal((JSON.parse((await run(['disable', id, '--server', server])).out) as { key: { status: string } }).key.status, 'disabled');
    const r = await run(['rotate', id, '--server', server, '--overlap', '60']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out.trim().split('\n').at(-1)!, /^tg-/);
    assert.equal((JSON.parse((await run(['revoke', id, '--server', server])).out) as { key: { status: string } }).key.status, 'revoked');
  });

  it('errors: no token → exit 1 with a hint; API 4xx message shown; missing id → usage, exit 2', async () => {
    const noToken = await run(['list', '--server', server], {});
    assert.equal(noToken.code, 1);
    assert.match(noToken.err, /401 .*set TOLLGATE_ADMIN_TOKEN/);
    const bad = await run(['create', '--server', server, '--tenant', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /400 tenant: unknown tenant 'nope'/);
    assert.equal((await run(['disable', '--server', server])).code, 2);
  });
});
