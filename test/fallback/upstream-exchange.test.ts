// The upstream stage without gRPC: one UpstreamExchange per Envoy attempt, fed what Envoy's
// upstream ext_proc filter sends (attribute, forwarded plan, shared header map, client body).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { GatewayError } from '../../service/errors.ts';
import type { MutationBuilder } from '../../service/extproc/mutations.ts';
import type { RequestDecision } from '../../service/extproc/processor.ts';
import { AttemptLog } from '../../service/fallback/attempts.ts';
import { DEPLOYMENT_ATTRIBUTE, PLAN_KEY, PLAN_NAMESPACE, SERVED_HEADER } from '../../service/fallback/contract.ts';
import type { FallbackPlan } from '../../service/fallback/plan.ts';
import { PlanSealer } from '../../service/fallback/seal.ts';
import type { Snapshot } from '../../service/gateway/context.ts';
import { PROVIDER_REQUEST_HEADERS, UpstreamExchange } from '../../service/gateway/upstream-exchange.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import { HealthTracker } from '../../service/routing/index.ts';

const APIS: ProviderApi[] = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock'];
const CREDS: Record<ProviderApi, string> = {
  openai: 'sk-openai-secret',
  azure: 'azure-secret',
  anthropic: 'sk-ant-secret',
  gemini: 'gemini-secret',
  bedrock: 'AKIDTEST:bedrock-secret',
  vertex: 'ya29.vertex-token',
};

function configYaml(): string {
  const docs: string[] = [];
  for (const api of APIS) {
    process.env[`TG_FB_${api.toUpperCase()}`] = CREDS[api];
    docs.push(`apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: p-${api}}
spec: {api: ${api}, cluster: c_${api}, host: ${api}.example.test, credential: {env: TG_FB_${api.toUpperCase()}}${api === 'bedrock' ? ', region: us-east-1' : ''}${api === 'azure' ? ', apiVersion: "2024-10-21", basePath: /openai' : ''}}
`);
  }
  docs.push(`apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: resilient}
spec:
  deployments:
${APIS.map((a) => `  - {id: d-${a}, provider: p-${a}, model: up-${a}, region: us-east-1}`).join('\n')}
  fallbackChains:
  - {cluster: tgc.resilient, deployments: [${APIS.map((a) => `d-${a}`).join(', ')}]}
`);
  docs.push(`apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
`);
  return docs.join('---\n');
}

let dir = '';
let snap: Snapshot;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-fallback-'));
  writeFileSync(join(dir, 'config.yaml'), configYaml());
  snap = buildSnapshot(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function plan(over: Partial<FallbackPlan> = {}): FallbackPlan {
  return {
    v: 1,
    api: 'openai',
    op: 'chat',
    requestId: 'req-0000000001',
    model: 'resilient',
    stream: false,
    cluster: 'tgc.resilient',
    deployments: APIS.map((a) => `d-${a}`),
    clientHeaders: {},
    ...over,
  };
}

const BODY = Buffer.from(JSON.stringify({ model: 'resilient', messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 }));

/** Applies a header mutation the way Envoy does (removes, then sets) to the shared header map. */
function apply(h: Map<string, string>, m: MutationBuilder): void {
  const built = m.build();
  for (const k of built?.remove_headers ?? []) h.delete(k);
  for (const s of built?.set_headers ?? []) h.set(s.header.key, Buffer.from(s.header.raw_value!).toString('latin1'));
}

// The replicas' shared TOLLGATE_PLAN_KEY, and a clock the expiry cases move.
const PLAN_KEY_A = 'test-plan-key-A-0123456789abcdef0123456789';
let clock = Date.parse('2026-01-01T00:00:00Z');
const sealer = (key: string, previousKeys: string[] = []) => new PlanSealer({ key, previousKeys, ttlMs: 60_000, now: () => clock });
const SEALER = sealer(PLAN_KEY_A);
/** What the router stage writes: the plan sealed with the shared key. */
const sealed = (p: unknown): string => SEALER.seal(p as object);

function svc(health = new HealthTracker(), attempts = new AttemptLog(), plans = SEALER) {
  return { snapshot: () => snap, health, attempts, plans };
}

async function attempt(
  headers: Map<string, string>,
  deployment: unknown,
  opts: { plan?: unknown; body?: Buffer; services?: ReturnType<typeof svc> } = {},
): Promise<{ ex: UpstreamExchange; body: RequestDecision }> {
  const ex = new UpstreamExchange(opts.services ?? svc());
  const metadata: Record<string, Record<string, unknown>> = opts.plan === null ? {} : { [PLAN_NAMESPACE]: { request_id: 'x', [PLAN_KEY]: sealed(opts.plan ?? plan()) } };
  const h = await ex.requestHeaders({ headers, endOfStream: false, metadata, attributes: deployment === undefined ? {} : { [DEPLOYMENT_ATTRIBUTE]: deployment } });
  assert.equal(h.kind, 'continue');
  if (h.kind === 'continue') apply(headers, h.mutation);
  const body = await ex.requestBody(opts.body ?? BODY);
  if (body.kind === 'continue') apply(headers, body.mutation);
  return { ex, body };
}

function routerHeaders(): Map<string, string> {
  return new Map([
    [':method', 'POST'],
    [':path', '/v1/chat/completions'],
    [':authority', 'gateway.internal'],
    ['content-type', 'application/json'],
    ['content-length', String(BODY.length)],
    ['x-tollgate-cluster', 'tgc.resilient'],
    ['x-request-id', 'req-0000000001'],
  ]);
}

describe('upstream stage: translates each attempt for the deployment it reached', () => {
  const expected: Record<ProviderApi, { path: RegExp; auth: [string, RegExp] }> = {
    openai: { path: /^\/chat\/completions$/, auth: ['authorization', /^Bearer sk-openai-secret$/] },
    azure: { path: /^\/openai\/deployments\/up-azure\/chat\/completions\?api-version=2024-10-21$/, auth: ['api-key', /^azure-secret$/] },
    anthropic: { path: /^\/messages$|^\/v1\/messages$/, auth: ['x-api-key', /^sk-ant-secret$/] },
    gemini: { path: /models\/up-gemini:generateContent$/, auth: ['x-goog-api-key', /^gemini-secret$/] },
    bedrock: { path: /^\/model\/up-bedrock\/converse$/, auth: ['authorization', /^AWS4-HMAC-SHA256 Credential=AKIDTEST\//] },
    vertex: { path: /\/publishers\/anthropic\/models\/up-vertex:rawPredict$/, auth: ['authorization', /^Bearer ya29\.vertex-token$/] },
  };
  for (const api of APIS) {
    it(`→ ${api}: path, host, credential, content-length and the provider's body`, async () => {
      const h = routerHeaders();
      const { body } = await attempt(h, `d-${api}`);
      assert.equal(body.kind, 'continue');
      if (body.kind !== 'continue') return;
      const sent = body.replaceBody!;
      assert.match(h.get(':path')!, expected[api].path);
      assert.equal(h.get(':authority'), `${api}.example.test`);
      assert.match(h.get(expected[api].auth[0]) ?? '', expected[api].auth[1]);
      assert.equal(h.get('content-length'), String(sent.length));
      const json = JSON.parse(sent.toString('utf8')) as Record<string, unknown>;
      if (api === 'anthropic') assert.equal(json.model, 'up-anthropic');
      if (api === 'openai') assert.equal(json.model, 'up-openai');
      if (api === 'gemini' || api === 'bedrock') assert.equal(JSON.stringify(json).includes('hello'), true);
      assert.equal(body.clearRouteCache, undefined, 'clear_route_cache is ignored upstream (E2); never ask for it');
    });
  }

  it("scrubs the previous attempt's credential from the shared header map", async () => {
    const h = routerHeaders();
    await attempt(h, 'd-bedrock');
    assert.ok(h.get('x-amz-date'));
    h.set('x-envoy-attempt-count', '2');
    await attempt(h, 'd-anthropic');
    assert.equal(h.get('x-api-key'), 'sk-ant-secret');
    for (const k of ['authorization', 'x-amz-date', 'x-amz-content-sha256', 'api-key', 'x-goog-api-key']) assert.equal(h.has(k), false, `${k} left over`);
    h.set('x-envoy-attempt-count', '3');
    await attempt(h, 'd-openai');
    assert.equal(h.get('authorization'), 'Bearer sk-openai-secret');
    assert.equal(h.has('x-api-key'), false);
    assert.equal(h.has('anthropic-version'), false);
  });

  it('every translator sets only headers the stage knows how to scrub', async () => {
    const known = new Set(PROVIDER_REQUEST_HEADERS);
    for (const client of ['openai', 'anthropic'] as const)
      for (const api of APIS) {
        const entry = snap.catalog.resolve('resilient')!.entries.find((e) => e.provider.api === api)!;
        const body = client === 'openai' ? BODY : Buffer.from(JSON.stringify({ model: 'resilient', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
        const req = parseClientRequest(client, 'chat', body);
        req.headers = { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'x' };
        for (const stream of [false, true]) {
          req.stream = stream;
          const out = await getTranslator(client, 'chat', api).request(req, { provider: entry.provider, deployment: entry.deployment, credential: CREDS[api] });
          for (const k of Object.keys(out.headers)) assert.ok(known.has(k) || k.startsWith('x-amz-'), `${client}→${api} sets '${k}', which a later attempt would not remove`);
        }
      }
  });

  it('carries the client API and client headers from the plan (Anthropic client → Anthropic passthrough)', async () => {
    const h = routerHeaders();
    const body = Buffer.from(JSON.stringify({ model: 'resilient', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
    const { body: d } = await attempt(h, 'd-anthropic', { plan: plan({ api: 'anthropic', clientHeaders: { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'tools-2024' } }), body });
    assert.equal(d.kind, 'continue');
    assert.equal(h.get('anthropic-beta'), 'tools-2024');
    assert.equal(h.get('x-api-key'), 'sk-ant-secret');
  });
});

describe('upstream stage: fails closed', () => {
  async function failure(deployment: unknown, p: unknown, raw = false): Promise<GatewayError> {
    const ex = new UpstreamExchange(svc());
    if (p !== null && !raw) p = sealed(p);
    const metadata: Record<string, Record<string, unknown>> = p === null ? {} : { [PLAN_NAMESPACE]: { [PLAN_KEY]: p } };
    try {
      await ex.requestHeaders({ headers: routerHeaders(), endOfStream: false, metadata, attributes: deployment === undefined ? {} : { [DEPLOYMENT_ATTRIBUTE]: deployment } });
    } catch (e) {
      assert.ok(e instanceof GatewayError);
      return e;
    }
    assert.fail('expected the attempt to be refused');
  }
  const cases: [string, unknown, unknown, number, string][] = [
    ['no plan (router stage bypassed, e.g. failure_mode_allow)', 'd-openai', null, 500, 'fallback_plan_missing'],
    ['a malformed plan', 'd-openai', { ...plan(), deployments: 'd-openai' }, 500, 'fallback_plan_invalid'],
    ['a plan with unknown fields', 'd-openai', { ...plan(), extra: 1 }, 500, 'fallback_plan_invalid'],
    ['an endpoint without deployment metadata', undefined, plan(), 500, 'fallback_endpoint_unlabelled'],
    ['a deployment the plan does not allow (residency drift)', 'd-gemini', plan({ deployments: ['d-openai', 'd-anthropic'] }), 503, 'fallback_deployment_not_allowed'],
    ['a deployment this replica does not know', 'd-nope', plan({ deployments: ['d-nope'] }), 503, 'fallback_deployment_unknown'],
  ];
  for (const [name, dep, p, status, code] of cases)
    it(`${name} → ${status} ${code}`, async () => {
      const e = await failure(dep, p);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
    });

  // The plan is sealed (HMAC-SHA256 + expiry) by the router stage; anything else is refused before
  // the plan is used, so no credential is injected for it.
  const tamper = (token: string, edit: (json: Record<string, unknown>) => void): string => {
    const [prefix, payload, sig] = token.split('.');
    const json = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    edit(json);
    return `${prefix}.${Buffer.from(JSON.stringify(json)).toString('base64url')}.${sig}`;
  };
  const forged: [string, () => unknown, string][] = [
    ['an unsigned plan object (the pre-signing format, or a forged stream)', () => plan(), 'fallback_plan_invalid'],
    ['a plan signed with another key', () => sealer('some-other-key-0123456789abcdef0123456789').seal(plan()), 'fallback_plan_invalid'],
    ['a tampered plan (deployment list widened, signature kept)', () => tamper(sealed(plan({ deployments: ['d-openai'] })), (j) => (j.deployments = ['d-openai', 'd-gemini'])), 'fallback_plan_invalid'],
    ['a tampered plan (expiry extended, signature kept)', () => tamper(sealed(plan()), (j) => (j.exp = (j.exp as number) + 3_600_000)), 'fallback_plan_invalid'],
    ['a plan with its signature cut off', () => sealed(plan()).replace(/\.[^.]*$/, '.'), 'fallback_plan_invalid'],
    ['an expired plan', () => sealed(plan()), 'fallback_plan_expired'],
  ];
  for (const [name, make, code] of forged)
    it(`${name} → 500 ${code}`, async () => {
      const token = make();
      const saved = clock;
      if (code === 'fallback_plan_expired') clock += 60_000 + 31_000; // past TTL and the 30 s skew
      try {
        const e = await failure('d-openai', token, true);
        assert.equal(e.status, 500);
        assert.equal(e.code, code);
      } finally {
        clock = saved;
      }
    });

  it('accepts a plan within its TTL and the clock skew, and one sealed with a previous key (rotation)', async () => {
    const rotated = svc(undefined, undefined, sealer('new-plan-key-0123456789abcdef0123456789', [PLAN_KEY_A]));
    const token = sealed(plan());
    const saved = clock;
    clock += 60_000 + 29_000;
    try {
      for (const services of [svc(), rotated]) {
        const ex = new UpstreamExchange(services);
        const d = await ex.requestHeaders({ headers: routerHeaders(), endOfStream: false, metadata: { [PLAN_NAMESPACE]: { [PLAN_KEY]: token } }, attributes: { [DEPLOYMENT_ATTRIBUTE]: 'd-openai' } });
        assert.equal(d.kind, 'continue');
      }
    } finally {
      clock = saved;
    }
  });
});

describe('upstream stage: response headers', () => {
  it('marks the served deployment and attempt, and ends the exchange (response body NONE)', async () => {
    const attempts = new AttemptLog();
    const health = new HealthTracker();
    const h = routerHeaders();
    h.set('x-envoy-attempt-count', '2');
    const { ex } = await attempt(h, 'd-azure', { services: svc(health, attempts) });
    const d = await ex.responseHeaders(200, new Map([[':status', '200']]));
    assert.equal(d.final, true);
    const built = d.mutation.build()!;
    assert.deepEqual(
      built.set_headers!.map((s) => [s.header.key, Buffer.from(s.header.raw_value!).toString()]),
      [[SERVED_HEADER, 'd-azure;attempt=2']],
    );
    assert.equal(built.set_headers!.some((s) => s.header.key === ':status' || s.header.key === 'retry-after'), false);
    assert.equal(health.snapshot()['d-azure']?.consecutiveFailures ?? 0, 0);
    assert.deepEqual(attempts.take('req-0000000001').map((a) => [a.attempt, a.deployment, a.status]), [[2, 'd-azure', 200]]);
  });

  it('a failed attempt counts against the deployment (429 retry-after ejects it) and is kept for lineage', async () => {
    const attempts = new AttemptLog();
    const health = new HealthTracker();
    const { ex } = await attempt(routerHeaders(), 'd-openai', { services: svc(health, attempts) });
    await ex.responseHeaders(429, new Map([[':status', '429'], ['retry-after', '30']]));
    ex.end('completed');
    assert.equal(health.availability('d-openai').kind, 'ejected');
    assert.deepEqual(attempts.take('req-0000000001').map((a) => [a.attempt, a.status, a.errorClass]), [[1, 429, 'http_429']]);
  });

  it('an attempt that got no answer (reset, per-try timeout) is recorded as status 0', async () => {
    const attempts = new AttemptLog();
    const { ex } = await attempt(routerHeaders(), 'd-openai', { services: svc(new HealthTracker(), attempts) });
    ex.end('aborted');
    assert.deepEqual(attempts.take('req-0000000001').map((a) => [a.status, a.errorClass]), [[0, 'no_response']]);
  });
});

describe('AttemptLog', () => {
  it('is bounded and forgets old entries', () => {
    let t = 0;
    const log = new AttemptLog(3, 1000, () => t);
    for (let i = 0; i < 5; i++) log.record(`r${i}`, { attempt: 1, provider: 'p', deployment: 'd', status: 503, latencyMs: 1 });
    assert.equal(log.size, 3);
    assert.deepEqual(log.take('r0'), []);
    assert.equal(log.take('r4').length, 1);
    log.record('old', { attempt: 1, provider: 'p', deployment: 'd', status: 503, latencyMs: 1 });
    t = 2000;
    assert.deepEqual(log.take('old'), [], 'expired');
  });
});
