// The admin API on the HTTP port: who may call it (admin token, team admin token, HS256 JWT),
// delegated scopes, precise 4xx errors, the OpenAPI document against the router's table, and the
// console's strict CSP.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { adminRoutes, OPENAPI_PATH } from '../../service/admin/index.ts';
import { startTollgate, type Tollgate } from '../../service/app.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { testRedisUrl } from '../support/redis.ts';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const SUPPORT_ADMIN = `team-${randomBytes(16).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');

const CONFIG = `apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: globex}
spec: {}
---
apiVersion: tollgate.dev/v1alpha1
kind: Team
metadata: {name: research}
spec: {tenant: acme}
---
apiVersion: tollgate.dev/v1alpha1
kind: Team
metadata: {name: support}
spec: {tenant: acme}
`;

function jwt(claims: Record<string, unknown>, secret = JWT_SECRET, alg = 'HS256'): string {
  const head = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 600, iss: 'https://sso.example.com', ...claims })).toString('base64url');
  return `${head}.${body}.${createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')}`;
}

describe('admin API', { timeout: 30_000 }, () => {
  let t: Tollgate;
  let dir: string;
  const audit: LineageRecord[] = [];
  const call = async (method: string, path: string, token: string | undefined, body?: unknown, type = 'application/json') => {
    const r = await fetch(`http://127.0.0.1:${t.httpPort}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, any>) : {}, text };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-'));
    writeFileSync(join(dir, 'tenants.yaml'), CONFIG);
    t = await startTollgate({
      configDir: dir,
      grpcAddr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      lineageSinks: ['none'],
      log: pino({ level: 'silent' }),
      watchConfig: false,
      validateLineage: true,
      redisUrl: testRedisUrl(),
      redisPrefix: `tgadmin-${randomBytes(4).toString('hex')}:`,
      adminTokens: [ADMIN],
      teamAdminTokens: [{ scope: 'acme/support', token: SUPPORT_ADMIN }],
      adminJwt: { secret: JWT_SECRET, issuer: 'https://sso.example.com' },
    });
    const emit = t.services.lineage.emit;
    t.services.lineage.emit = (r) => {
      audit.push(r);
      emit(r);
    };
  });
  after(async () => {
    await t.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('no credential or a wrong one → 401 in the OpenAI error shape; the OpenAPI document is open', async () => {
    for (const token of [undefined, 'wrong-token-0000000000', jwt({ groups: ['tollgate-admins'] }, 'another-secret-0000000000000000000000')]) {
      const r = await call('GET', '/admin/v1/keys', token);
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, 'admin_auth_required');
      assert.match(r.headers.get('www-authenticate') ?? '', /Bearer/);
    }
    const doc = await call('GET', '/admin/v1/openapi.json', undefined);
    assert.equal(doc.status, 200);
    assert.equal(doc.json.openapi, '3.1.0');
  });

  it('precise 4xx: unknown field, bad types, unknown tenant/team, 404 key, 405 method, 404 route, 415, bad JSON', async () => {
    const cases: [string, string, unknown, number, string, string?][] = [
      ['POST', '/admin/v1/keys', { tenant: 'acme', colour: 'red' }, 400, 'invalid_field', 'colour'],
      ['POST', '/admin/v1/keys', {}, 400, 'invalid_field', 'tenant'],
      ['POST', '/admin/v1/keys', { tenant: 'acme', limits: { budget: { usd: -1 } } }, 400, 'invalid_field', 'limits.budget.usd'],
      ['POST', '/admin/v1/keys', { tenant: 'acme', limits: { rateLimit: { rpm: 1.5 } } }, 400, 'invalid_field', 'limits.rateLimit.rpm'],
      ['POST', '/admin/v1/keys', { tenant: 'acme', expiresAt: 'tomorrow' }, 400, 'invalid_field', 'expiresAt'],
      ['POST', '/admin/v1/keys', { tenant: 'initech' }, 400, 'unknown_tenant', 'tenant'],
      ['POST', '/admin/v1/keys', { tenant: 'acme', team: 'sales' }, 400, 'unknown_team', 'team'],
      ['GET', '/admin/v1/keys/key-nothere', undefined, 404, 'key_not_found', 'id'],
      ['POST', '/admin/v1/keys/key-nothere/rotate', { overlapSeconds: -5 }, 400, 'invalid_field', 'overlapSeconds'],
      ['DELETE', '/admin/v1/keys', undefined, 405, 'method_not_allowed'],
      ['GET', '/admin/v1/nothing', undefined, 404, 'unknown_route'],
      ['POST', '/admin/v1/keys', '{"tenant":', 400, 'invalid_json'],
    ];
    for (const [method, path, body, status, code, param] of cases) {
      const r = await call(method, path, ADMIN, body);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.code, code, `${method} ${path}`);
      if (param) assert.equal(r.json.error.param, param);
    }
    const wrongType = await call('POST', '/admin/v1/keys', ADMIN, 'tenant=acme', 'application/x-www-form-urlencoded');
    assert.equal(wrongType.status, 415);
  });

  it('create → get → update → list; the secret appears only in the create answer; each change is an audit event', async () => {
    const c = await call('POST', '/admin/v1/keys', ADMIN, { tenant: 'acme', team: 'research', metadata: { owner: 'ml' } });
    assert.equal(c.status, 201);
    const id = c.json.key.id as string;
    const secret = c.json.secret as string;
    assert.equal(c.json.key.secrets[0].hint, secret.slice(-4));
    assert.equal(c.json.key.sha256, undefined);
    const u = await call('PATCH', `/admin/v1/keys/${id}`, ADMIN, { limits: { models: ['gpt-4o-mini'], rateLimit: { rpm: 10 } }, expiresAt: '2030-01-01T00:00:00Z' });
    assert.equal(u.status, 200, u.text);
    assert.deepEqual(u.json.key.limits, { models: ['gpt-4o-mini'], rateLimit: { rpm: 10 } });
    assert.equal(u.json.key.expiresAt, '2030-01-01T00:00:00.000Z');
    const g = await call('GET', `/admin/v1/keys/${id}`, ADMIN);
    assert.ok(!g.text.includes(secret));
    const l = await call('GET', '/admin/v1/keys?tenant=acme', ADMIN);
    assert.ok(l.json.data.some((k: { id: string }) => k.id === id));
    const ev = audit.filter((r) => r.audit?.target === id);
    assert.deepEqual(ev.map((r) => r.audit!.action), ['key.create', 'key.update']);
    assert.equal(ev[1]!.audit!.detail!.limits, JSON.stringify({ models: ['gpt-4o-mini'], rateLimit: { rpm: 10 } }));
    assert.equal(ev[0]!.principal.tenant, 'acme');
  });

  it("a team admin manages only its team's keys", async () => {
    const research = await call('POST', '/admin/v1/keys', ADMIN, { tenant: 'acme', team: 'research' });
    const mine = await call('POST', '/admin/v1/keys', SUPPORT_ADMIN, { tenant: 'acme', team: 'support' });
    assert.equal(mine.status, 201, mine.text);
    const outside = await call('POST', '/admin/v1/keys', SUPPORT_ADMIN, { tenant: 'acme', team: 'research' });
    assert.equal(outside.status, 403);
    assert.equal(outside.json.error.code, 'outside_admin_scope');
    assert.equal((await call('POST', '/admin/v1/keys', SUPPORT_ADMIN, { tenant: 'acme' })).status, 403, 'a team admin cannot create tenant-wide keys');
    const list = await call('GET', '/admin/v1/keys', SUPPORT_ADMIN);
    assert.ok(list.json.data.length >= 1);
    assert.ok(list.json.data.every((k: { team: string }) => k.team === 'support'));
    const rid = research.json.key.id as string;
    assert.equal((await call('GET', `/admin/v1/keys/${rid}`, SUPPORT_ADMIN)).status, 404);
    assert.equal((await call('POST', `/admin/v1/keys/${rid}/revoke`, SUPPORT_ADMIN)).status, 404);
    assert.equal((await call('GET', `/admin/v1/keys/${rid}`, ADMIN)).json.key.status, 'active', 'untouched');
    assert.equal((await call('POST', '/admin/v1/explain', SUPPORT_ADMIN, { body: {} })).status, 403);
    const me = await call('GET', '/admin/v1/whoami', SUPPORT_ADMIN);
    assert.deepEqual(me.json, { role: 'team', name: 'team-admin:acme/support', tenant: 'acme', team: 'support' });
    assert.equal(audit.find((r) => r.audit?.target === mine.json.key.id)!.audit!.actor, 'team-admin:acme/support');
  });

  it('JWT group claims: tollgate-admins → admin; tollgate-team-admins → its tenant/team; wrong issuer, expired or alg=none → 401', async () => {
    const admin = await call('GET', '/admin/v1/whoami', jwt({ sub: 'ann', groups: ['tollgate-admins'] }));
    assert.deepEqual(admin.json, { role: 'admin', name: 'jwt:ann' });
    const team = await call('POST', '/admin/v1/keys', jwt({ sub: 'bo', groups: ['tollgate-team-admins'], tenant: 'acme', team: 'research' }), { tenant: 'acme', team: 'support' });
    assert.equal(team.status, 403);
    for (const bad of [
      jwt({ groups: ['tollgate-admins'], iss: 'https://evil.example.com' }),
      jwt({ groups: ['tollgate-admins'], exp: Math.floor(Date.now() / 1000) - 5 }),
      jwt({ groups: ['tollgate-admins'] }, JWT_SECRET, 'none'),
      jwt({ groups: ['users'] }),
    ])
      assert.equal((await call('GET', '/admin/v1/whoami', bad)).status, 401);
  });

  it('the OpenAPI document lists exactly the routes the router serves', () => {
    const doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    const served = adminRoutes({ keys: undefined, snapshot: () => t.services.snapshot(), lineage: undefined, spend: async () => [], now: () => new Date() })
      .map((r) => `${r.method} ${r.path}`)
      .sort();
    assert.deepEqual(documented, served);
  });

  it('the console is served with a strict CSP and no inline script', async () => {
    const r = await call('GET', '/console', undefined);
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(r.text, /style=/, 'no inline style');
    assert.equal((await call('GET', '/console/app.js', undefined)).status, 200);
    assert.equal((await call('GET', '/console/../package.json', undefined)).status, 404);
  });
});
