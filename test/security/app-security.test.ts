// Start-up posture, the admin credential and the `tollgate spend` CLI, on a real startTollgate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { startTollgate, type TollgateOptions } from '../../service/app.ts';
import { processOnce } from './process-once.ts';
import { AUTH_METADATA_KEY, SecurityConfigError } from '../../service/security/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'app-test-shared-secret-0123456789abcdef';
const PLAN_KEY = 'app-test-plan-key-0123456789abcdef0123456789';
const ADMIN = 'app-test-admin-token-0123456789abcdef';

const base = (over: Partial<TollgateOptions> = {}): TollgateOptions => ({
  configDir: `${ROOT}policies`,
  grpcAddr: '127.0.0.1:0',
  httpAddr: '127.0.0.1:0',
  lineageSinks: ['none'],
  watchConfig: false,
  log: pino({ level: 'silent' }),
  mode: 'development',
  ...over,
});

async function refused(over: Partial<TollgateOptions>, message: RegExp): Promise<void> {
  await assert.rejects(
    startTollgate(base(over)).then(async (t) => {
      await t.close(100);
      return t;
    }),
    (err: unknown) => err instanceof SecurityConfigError && message.test(err.message),
  );
}


describe('start-up posture', { timeout: 30_000 }, () => {
  it('refuses a non-loopback ext_proc listener without peer authentication, even outside production', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: nothing would be bound even if it were tried.
    await refused({ grpcAddr: '192.0.2.1:0' }, /not loopback and has no peer authentication/);
  });

  it('production refuses an unauthenticated ext_proc port (even on loopback) and a missing plan key', async () => {
    await refused({ mode: 'production' }, /production mode: the ext_proc port has no peer authentication/);
    await refused({ mode: 'production', grpcAuth: { sharedSecrets: [SECRET] } }, /TOLLGATE_PLAN_KEY/);
  });

  it('refuses weak or placeholder secrets', async () => {
    await refused({ grpcAuth: { sharedSecrets: ['short'] } }, /at least 16 bytes/);
    await refused({ grpcAuth: { sharedSecrets: ['${TOLLGATE_GRPC_SHARED_SECRET}'] } }, /placeholder/);
    await refused({ planKeys: ['too-short-plan-key'] }, /TOLLGATE_PLAN_KEY must be at least 32 bytes/);
  });

  it('`tollgate serve` reads the mode and credentials from the environment and exits 1 when refused', async () => {
    const serve = (env: Record<string, string>) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        const e: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_GRPC_ADDR: '127.0.0.1:0', TOLLGATE_HTTP_ADDR: '127.0.0.1:0', TOLLGATE_LINEAGE: 'none', TOLLGATE_CONFIG: `${ROOT}policies`, ...env };
        for (const k of ['NODE_ENV', 'TOLLGATE_GRPC_SHARED_SECRET', 'TOLLGATE_GRPC_SHARED_SECRET_FILE', 'TOLLGATE_PLAN_KEY', 'TOLLGATE_PLAN_KEY_FILE']) if (!(k in env)) delete e[k];
        execFile(process.execPath, [`${ROOT}bin/tollgate.js`, 'serve'], { env: e, timeout: 20_000 }, (err, out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: out + stderr }),
        );
      });
    const prod = await serve({ TOLLGATE_MODE: 'production' });
    assert.equal(prod.code, 1);
    assert.match(prod.out, /refusing to start: production mode: the ext_proc port has no peer authentication/);
    const nodeEnv = await serve({ NODE_ENV: 'production', TOLLGATE_GRPC_SHARED_SECRET: SECRET });
    assert.equal(nodeEnv.code, 1);
    assert.match(nodeEnv.out, /refusing to start: production mode: set TOLLGATE_PLAN_KEY/);
  });

  it('production with a shared secret and a plan key: starts, and serves only streams carrying the secret', async () => {
    const t = await startTollgate(base({ mode: 'production', grpcAuth: { sharedSecrets: [SECRET] }, planKeys: [PLAN_KEY], adminTokens: [ADMIN] }));
    try {
      const once = async (md: Record<string, string>) => {
        const r = await processOnce(`127.0.0.1:${t.grpcPort}`, grpc.credentials.createInsecure(), md, { authorization: 'Bearer tg-demo-acme-research-0000000000000001' });
        return { code: r.code, replies: r.replies };
      };
      assert.deepEqual(await once({}), { code: grpc.status.UNAUTHENTICATED, replies: 0 });
      assert.deepEqual(await once({ [AUTH_METADATA_KEY]: SECRET }), { code: grpc.status.OK, replies: 1 });
      const metrics = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
      assert.match(metrics, /tollgate_auth_failures_total\{surface="grpc",reason="missing_secret"\} 1/);
    } finally {
      await t.close(100);
    }
  });
});

describe('admin endpoints', { timeout: 30_000 }, () => {
  const get = async (port: number, path: string, token?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.text(), auth: res.headers.get('www-authenticate') };
  };

  it('TOLLGATE_SPEND_API=on with TOLLGATE_ADMIN_TOKEN: /v1/spend needs it, /readyz shows detail only with it, /metrics and /healthz stay open', async () => {
    const t = await startTollgate(base({ adminTokens: [ADMIN], spendApi: true }));
    try {
      const p = t.httpPort;
      const none = await get(p, '/v1/spend?tenant=acme');
      assert.equal(none.status, 401);
      assert.match(none.auth ?? '', /^Bearer/);
      assert.doesNotMatch(none.body, /rows/);
      assert.equal((await get(p, '/v1/spend', 'wrong-token-0123456789abcdef')).status, 401);
      const ok = await get(p, '/v1/spend?tenant=acme', ADMIN);
      assert.equal(ok.status, 200);
      assert.ok(Array.isArray((JSON.parse(ok.body) as { rows: unknown }).rows));

      assert.deepEqual(JSON.parse((await get(p, '/readyz')).body), { ready: true });
      const detail = JSON.parse((await get(p, '/readyz', ADMIN)).body) as Record<string, unknown>;
      assert.equal(detail.ready, true);
      assert.ok(detail.config && detail.budgetStore && detail.lineage, JSON.stringify(detail));

      assert.equal((await get(p, '/healthz')).status, 200);
      assert.equal((await get(p, '/metrics')).status, 200);
      assert.match((await get(p, '/metrics')).body, /tollgate_auth_failures_total\{surface="admin",reason="unauthenticated"\} 2/);
    } finally {
      await t.close(100);
    }
  });

  it('production without a token: /v1/spend is not published (404) and /readyz is status only', async () => {
    const t = await startTollgate(base({ mode: 'production', grpcAuth: { sharedSecrets: [SECRET] }, planKeys: [PLAN_KEY] }));
    try {
      const spend = await get(t.httpPort, '/v1/spend');
      assert.equal(spend.status, 404);
      assert.doesNotMatch(spend.body, /rows/);
      assert.deepEqual(JSON.parse((await get(t.httpPort, '/readyz')).body), { ready: true });
    } finally {
      await t.close(100);
    }
  });

  it('by default /v1/spend is not published, even with an admin token, and even in development on loopback', async () => {
    for (const over of [{}, { adminTokens: [ADMIN] }] as Partial<TollgateOptions>[]) {
      const t = await startTollgate(base(over));
      try {
        for (const token of [undefined, ADMIN]) {
          const r = await get(t.httpPort, '/v1/spend?tenant=acme', token);
          assert.equal(r.status, 404, JSON.stringify(over));
          assert.doesNotMatch(r.body, /rows/);
          assert.match(r.body, /TOLLGATE_SPEND_API=on/);
        }
        // /readyz detail keeps its development-on-loopback behaviour (open without a token).
        if (!over.adminTokens) assert.ok('config' in (JSON.parse((await get(t.httpPort, '/readyz')).body) as object));
      } finally {
        await t.close(100);
      }
    }
  });

  it('TOLLGATE_SPEND_API=on without an admin token refuses to start, in development on loopback too', async () => {
    await refused({ spendApi: true }, /TOLLGATE_SPEND_API=on needs TOLLGATE_ADMIN_TOKEN/);
    await refused({ spendApi: true, mode: 'production', grpcAuth: { sharedSecrets: [SECRET] }, planKeys: [PLAN_KEY] }, /TOLLGATE_SPEND_API=on needs TOLLGATE_ADMIN_TOKEN/);
  });

  it('`tollgate spend` sends TOLLGATE_ADMIN_TOKEN; without it the CLI exits 1 naming the variable', async () => {
    const t = await startTollgate(base({ adminTokens: [ADMIN], spendApi: true }));
    const cli = (env: Record<string, string>) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        const e: NodeJS.ProcessEnv = { ...process.env, ...env };
        if (!('TOLLGATE_ADMIN_TOKEN' in env)) delete e.TOLLGATE_ADMIN_TOKEN;
        delete e.TOLLGATE_ADMIN_TOKEN_FILE;
        execFile(process.execPath, [`${ROOT}bin/tollgate.js`, 'spend', '--json', '--url', `http://127.0.0.1:${t.httpPort}`], { env: e, timeout: 20_000 }, (err, out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: stderr }),
        );
      });
    try {
      const ok = await cli({ TOLLGATE_ADMIN_TOKEN: ADMIN });
      assert.equal(ok.code, 0, ok.err);
      assert.ok(Array.isArray(JSON.parse(ok.out)));
      const no = await cli({});
      assert.equal(no.code, 1);
      assert.match(no.err, /401.*TOLLGATE_ADMIN_TOKEN/);
    } finally {
      await t.close(100);
    }
  });
});
