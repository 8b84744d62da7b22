// End-to-end rig: fake providers + an in-process Tollgate (real gRPC on a loopback socket) + a real
// Envoy in front (the shipped envoy/envoy.yaml rendered for loopback, test/support/envoy.ts), with a
// config directory written for the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startTollgate, type Tollgate, type TollgateOptions } from '../../service/app.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { hashKey } from '../../service/identity/keys.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { startFakeProvider, type FakeProvider } from './fake-providers.ts';
import { startEnvoy, type EnvoyFront, type EnvoyFrontOptions } from './envoy.ts';
import { createHmac, randomBytes } from 'node:crypto';

export const KEYS = {
  acme: 'tg-test-acme-research-000000000000000001',
  acmeSupport: 'tg-test-acme-support-0000000000000000001',
  globex: 'tg-test-globex-default-00000000000000001',
  disabled: 'tg-test-disabled-key-0000000000000000001',
};

export const JWT_SECRET = 'test-jwt-secret-not-for-production';
/** The issuer and audience of the shipped jwt_authn block (envoy/envoy.yaml). */
export const JWT_ISSUER = 'https://sso.example.com';
export const JWT_AUDIENCE = 'llm-gateway';

/**
 * An HS256 JWT as the SSO provider would issue it (iss/aud of the shipped jwt_authn block, valid for
 * an hour unless `exp` is given); Envoy's jwt_authn verifies it against the test JWKS.
 */
export function signJwt(claims: Record<string, unknown>, secret = JWT_SECRET): string {
  const payload = { iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'test' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Options for the real Envoy in front; `clusters` are added to the fake providers' clusters. */
export type HarnessEnvoyOptions = Partial<Omit<EnvoyFrontOptions, 'extProcAddrs' | 'clusters' | 'chains'>> & {
  clusters?: EnvoyFrontOptions['clusters'];
};

export interface HarnessOptions {
  /** Extra YAML documents (policies, models, …) written to `extra.yaml`. */
  extraYaml?: string;
  envoy?: HarnessEnvoyOptions;
  tollgate?: Partial<TollgateOptions>;
  /** Providers to fake (default openai + anthropic). */
  providers?: ProviderApi[];
  maxRequestBytes?: number;
  /**
   * Fallback chain clusters, built from the shipped chain cluster (envoy/envoy.yaml): cluster →
   * deployment ids in priority order, each served by a fake provider, with Tollgate's upstream
   * ext_proc filter.
   */
  chains?: Record<string, { provider: ProviderApi; deployment: string }[]>;
  /**
   * Extra Tollgate processes on the same config, behind the `tollgate` cluster with the main one
   * (Envoy round-robins Process streams over them, router-level and upstream alike).
   */
  replicas?: number;
  /** Serve these fake providers over HTTPS with certificates from a test CA (SNI/SAN checked by Envoy). */
  tls?: Partial<Record<ProviderApi, { hostname: string; caFile: string; key: string; cert: string }>>;
}

export interface Harness {
  dir: string;
  baseURL: string;
  /** Envoy's listener, e.g. http://127.0.0.1:PORT (the Anthropic SDK's baseURL). */
  url: string;
  envoy: EnvoyFront;
  tollgate: Tollgate;
  /** The extra processes of `replicas`. */
  replicas: Tollgate[];
  fakes: Partial<Record<ProviderApi, FakeProvider>>;
  /** Lineage records emitted so far (captured from the in-process emitter). */
  lineage: LineageRecord[];
  writeConfig(name: string, yaml: string): void;
  close(): Promise<void>;
}

/** The shipped cluster each fake's cluster copies (TLS, SNI and protocol options as shipped). */
const TEMPLATE: Record<ProviderApi, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  azure: 'azure_eu',
  gemini: 'openai',
  bedrock: 'openai',
  vertex: 'openai',
};

const CLUSTER: Record<ProviderApi, string> = {
  openai: 'fake_openai',
  anthropic: 'fake_anthropic',
  azure: 'fake_azure',
  gemini: 'fake_gemini',
  bedrock: 'fake_bedrock',
  vertex: 'fake_vertex',
};

function providerYaml(kind: ProviderApi, f: FakeProvider): string {
  const env = `TG_TEST_${kind.toUpperCase()}_KEY`;
  if (f.credential) process.env[env] = f.credential;
  const extra: Record<ProviderApi, string> = {
    openai: '',
    anthropic: '  apiVersion: "2023-06-01"\n',
    azure: '  apiVersion: "2024-10-21"\n',
    gemini: '',
    bedrock: `  region: ${JSON.stringify(process.env.TG_TEST_BEDROCK_REGION ?? 'us-east-1')}\n`,
    vertex: '',
  };
  return `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: fake-${kind}}
spec:
  api: ${kind}
  cluster: ${CLUSTER[kind]}
  host: ${f.host}
  basePath: ${JSON.stringify(f.basePath)}
  credential: {env: ${env}}
${extra[kind]}---
`;
}

function modelsYaml(kinds: ProviderApi[]): string {
  const m: string[] = [];
  const add = (name: string, provider: ProviderApi, upstream: string, kind = 'chat', prices = '{inputPerMillion: 1, outputPerMillion: 2}') => {
    if (!kinds.includes(provider)) return;
    m.push(`apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: ${JSON.stringify(name)}}
spec:
  kind: ${kind}
  deployments:
  - {provider: fake-${provider}, model: ${JSON.stringify(upstream)}, region: us-east-1, pricing: ${prices}}
---
`);
  };
  add('gpt-4o-mini', 'openai', 'gpt-4o-mini-2024-07-18');
  add('claude-sonnet', 'anthropic', 'claude-3-5-sonnet-20241022', 'chat', '{inputPerMillion: 3, outputPerMillion: 15}');
  add('azure-gpt', 'azure', 'my-gpt4o-deployment');
  add('gemini-flash', 'gemini', 'gemini-2.0-flash');
  add('bedrock-claude', 'bedrock', 'anthropic.claude-3-5-sonnet-20241022-v2:0');
  add('vertex-claude', 'vertex', 'claude-sonnet-4@20250514', 'chat', '{inputPerMillion: 3, outputPerMillion: 15}');
  add('text-embedding-3-small', 'openai', 'text-embedding-3-small', 'embedding', '{inputPerMillion: 0.02, outputPerMillion: 0}');
  return m.join('');
}

const TENANTS = `apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {attributes: {tier: enterprise}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: globex}
spec: {attributes: {tier: free}}
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
---
apiVersion: tollgate.dev/v1alpha1
kind: Team
metadata: {name: default}
spec: {tenant: globex}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-acme}
spec: {sha256: ${hashKey(KEYS.acme)}, tenant: acme, team: research, user: alice, groups: [eng]}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-acme-support}
spec: {sha256: ${hashKey(KEYS.acmeSupport)}, tenant: acme, team: support, user: bob}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-globex}
spec: {sha256: ${hashKey(KEYS.globex)}, tenant: globex, team: default, user: carol}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: test-disabled}
spec: {sha256: ${hashKey(KEYS.disabled)}, tenant: acme, disabled: true}
`;

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const kinds = opts.providers ?? ['openai', 'anthropic'];
  const fakes: Partial<Record<ProviderApi, FakeProvider>> = {};
  for (const k of kinds) {
    const tls = opts.tls?.[k];
    fakes[k] = await startFakeProvider(k, tls ? { tls } : {});
  }
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  const write = (name: string, yaml: string) => writeFileSync(join(dir, name), yaml);
  write(
    'gateway.yaml',
    `apiVersion: tollgate.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {maxRequestBytes: ${opts.maxRequestBytes ?? 262144}}
`,
  );
  write('providers.yaml', kinds.map((k) => providerYaml(k, fakes[k]!)).join(''));
  write('models.yaml', modelsYaml(kinds));
  write('tenants.yaml', TENANTS);
  if (opts.extraYaml) write('extra.yaml', opts.extraYaml);

  // Envoy authenticates to Tollgate as in production: the shared secret on every ext_proc stream
  // (rendered into the shipped envoy.yaml), and one plan key for every Tollgate process.
  const sharedSecret = `test-${randomBytes(16).toString('hex')}`;
  const planKey = randomBytes(32);
  const start = (instance?: string): Promise<Tollgate> =>
    startTollgate({
      grpcAuth: { sharedSecrets: [sharedSecret] },
      planKeys: [planKey],
      configDir: dir,
      grpcAddr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      lineageSinks: ['none'],
      log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      watchConfig: false,
      validateLineage: true,
      ...(instance ? { instance } : {}),
      ...opts.tollgate,
    });
  const tollgate = await start();
  const lineage: LineageRecord[] = [];
  const capture = (t: Tollgate): void => {
    const emit = t.services.lineage.emit;
    t.services.lineage.emit = (r) => {
      lineage.push(r);
      emit(r);
    };
  };
  capture(tollgate);
  const replicas: Tollgate[] = [];
  for (let i = 0; i < (opts.replicas ?? 0); i++) {
    const r = await start(`replica-${i + 1}`);
    capture(r);
    replicas.push(r);
  }
  const upstream = (k: ProviderApi) => {
    const tls = opts.tls?.[k];
    return { host: '127.0.0.1', port: fakes[k]!.port, ...(tls ? { tls: { caFile: tls.caFile, sni: tls.hostname } } : {}) };
  };
  const clusters: EnvoyFrontOptions['clusters'] = {};
  for (const k of kinds) clusters[CLUSTER[k]] = { ...upstream(k), template: TEMPLATE[k] };
  Object.assign(clusters, opts.envoy?.clusters);
  const chains: NonNullable<EnvoyFrontOptions['chains']> = {};
  for (const [name, members] of Object.entries(opts.chains ?? {}))
    chains[name] = { priorities: members.map((m) => ({ ...upstream(m.provider), deployment: m.deployment })) };
  const { clusters: _extra, ...envoyOpts } = opts.envoy ?? {};
  let envoy: EnvoyFront;
  try {
    envoy = await startEnvoy({
      extProcAddrs: [tollgate, ...replicas].map((t) => `127.0.0.1:${t.grpcPort}`),
      clusters,
      chains,
      allowModeOverride: true,
      messageTimeoutMs: 2000,
      jwt: { secret: JWT_SECRET, issuer: JWT_ISSUER, audiences: [JWT_AUDIENCE] },
      sharedSecret,
      ...envoyOpts,
    });
  } catch (err) {
    await tollgate.close(100);
    for (const r of replicas) await r.close(100);
    for (const f of Object.values(fakes)) await f?.close();
    throw err;
  }
  return {
    dir,
    baseURL: `${envoy.url}/v1`,
    url: envoy.url,
    envoy,
    tollgate,
    replicas,
    fakes,
    lineage,
    writeConfig: write,
    close: async () => {
      await envoy.close();
      await tollgate.close(1000);
      for (const r of replicas) await r.close(1000);
      for (const f of Object.values(fakes)) await f?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `pred` holds (lineage is written after the response completes). */
export async function eventually(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Envoy's access log entry for a request (waits for it: Envoy logs when the stream ends). */
export async function accessLogFor(h: Harness, requestId: string, ms = 3000): Promise<import('./envoy.ts').AccessLogEntry> {
  await eventually(() => h.envoy.accessLog.some((e) => e.request_id === requestId), ms);
  return h.envoy.accessLog.findLast((e) => e.request_id === requestId)!;
}
