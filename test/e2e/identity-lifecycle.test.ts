// Identity from Envoy-verified JWT claims, and the process lifecycle: SIGTERM drains in-flight
// streams and exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { freePort } from '../bench/extproc-load.ts';
import { startFakeProvider } from '../support/fake-providers.ts';
import { JWT_SECRET, KEYS, eventually, signJwt, startHarness, type Harness } from '../support/harness.ts';
import { startEnvoy } from '../support/envoy.ts';

describe('identity from jwt_authn claims', { timeout: 60000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('claims forwarded in metadata_context authenticate the caller; tenant/team/user come from the mapped claims', async () => {
    const token = signJwt({ sub: 'sso-user-42', tenant: 'acme', team: 'support', groups: ['a', 'b'] }, JWT_SECRET);
    const client = new OpenAI({ apiKey: token, baseURL: h.baseURL, maxRetries: 0 });
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const rid = response.headers.get('x-request-id');
    await eventually(() => h.lineage.some((l) => l.requestId === rid));
    const rec = h.lineage.find((l) => l.requestId === rid)!;
    assert.equal(rec.principal.authMethod, 'jwt');
    assert.equal(rec.principal.tenant, 'acme');
    assert.equal(rec.principal.team, 'support');
    assert.equal(rec.principal.user, 'sso-user-42');
    assert.equal(h.fakes.openai!.requests.at(-1)!.headers.authorization, `Bearer ${h.fakes.openai!.credential}`);
  });

  it('a token whose tenant claim names no tenant → 403', async () => {
    const token = signJwt({ sub: 'x', tenant: 'initech' }, JWT_SECRET);
    const client = new OpenAI({ apiKey: token, baseURL: h.baseURL, maxRetries: 0 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.PermissionDeniedError);
  });

  it('an expired token, or one for another audience, is stopped by jwt_authn', async () => {
    // jwt_authn's answers: 401 for an expired token, 403 for a token minted for another audience.
    const cases: [Record<string, unknown>, typeof OpenAI.AuthenticationError | typeof OpenAI.PermissionDeniedError][] = [
      [{ tenant: 'acme', exp: Math.floor(Date.now() / 1000) - 600 /* past jwt_authn's 60 s clock skew */ }, OpenAI.AuthenticationError],
      [{ tenant: 'acme', aud: 'another-app' }, OpenAI.PermissionDeniedError],
    ];
    for (const [claims, cls] of cases) {
      const client = new OpenAI({ apiKey: signJwt(claims), baseURL: h.baseURL, maxRetries: 0 });
      await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof cls, JSON.stringify(claims));
    }
    assert.equal(h.fakes.openai!.requests.filter((r) => r.headers.authorization?.includes('eyJ')).length, 0, 'no token reaches the provider');
  });

  it('virtual keys and SSO tokens side by side: the OpenAI SDK with a tg- key, the Anthropic-style x-api-key, and a JWT', async () => {
    const viaKey = new OpenAI({ apiKey: KEYS.globex, baseURL: h.baseURL, maxRetries: 0 });
    await viaKey.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const xApiKey = await fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'x-api-key': KEYS.acme, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(xApiKey.status, 200);
    const viaJwt = new OpenAI({ apiKey: signJwt({ sub: 'u1', tenant: 'acme', team: 'research' }), baseURL: h.baseURL, maxRetries: 0 });
    await viaJwt.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    // An unknown tg- key is not a JWT: jwt_authn lets it by, Tollgate refuses it in its own words.
    const bad = new OpenAI({ apiKey: 'tg-not-a-real-key-000000000000000000000', baseURL: h.baseURL, maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError && /Incorrect API key/.test(e.message));
  });

  it('a forged token is stopped by jwt_authn; unverified claims never reach Tollgate', async () => {
    const token = signJwt({ sub: 'x', tenant: 'acme' }, 'not-the-secret');
    const client = new OpenAI({ apiKey: token, baseURL: h.baseURL, maxRetries: 0 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  });
});

describe('process lifecycle', { timeout: 90000 }, () => {
  it('SIGTERM: the in-flight stream finishes, new requests are refused, exit code 0', async () => {
    const fake = await startFakeProvider('openai', { writeDelayMs: 150, apiKey: null }); // self-hosted vLLM: no credential
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
      env: {
        ...process.env,
        TOLLGATE_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
        TOLLGATE_CONFIG: './policies',
        TOLLGATE_LINEAGE: 'none',
        TOLLGATE_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'tg-spool-')),
        TOLLGATE_LOG_LEVEL: 'warn',
        TOLLGATE_DRAIN_MS: '20000',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const envoy = await startEnvoy({
      extProcAddrs: [`127.0.0.1:${grpcPort}`],
      clusters: { local_llm: { host: '127.0.0.1', port: fake.port } },
      allowModeOverride: true,
      messageTimeoutMs: 5000,
    });
    try {
      await eventually(() => {
        void fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => (ready = r.ok)).catch(() => undefined);
        return ready;
      }, 30000);
      const client = new OpenAI({ apiKey: 'tg-demo-globex-default-0000000000000001', baseURL: `${envoy.url}/v1`, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'llama-3.1-8b', messages: [{ role: 'user', content: 'a slow answer please' }], stream: true });
      const it = stream[Symbol.asyncIterator]();
      const first = await it.next();
      assert.ok(!first.done);
      child.kill('SIGTERM');
      let text = first.value.choices[0]?.delta?.content ?? '';
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        text += n.value.choices[0]?.delta?.content ?? '';
      }
      assert.ok(text.length > 0, 'the in-flight stream completed');
      assert.equal(await exited, 0, stderr);
      const after = await fetch(`${envoy.url}/v1/models`, { headers: { authorization: 'Bearer tg-demo-globex-default-0000000000000001' } });
      assert.equal(after.status, 500, 'Tollgate is gone: Envoy fails closed (failure_mode_allow: false)');
    } finally {
      child.kill('SIGKILL');
      await envoy.close();
      await fake.close();
    }
  });
});

let ready = false;
