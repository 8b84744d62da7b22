// End-to-end rig: fake providers + an in-process Tollgate (real gRPC on a loopback socket) + the
// Envoy stand-in in front, with a config directory written for the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startTollgate, type Tollgate, type TollgateOptions } from '../../service/app.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { hashKey } from '../../service/identity/keys.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { startFakeProvider, type FakeProvider } from './fake-providers.ts';
import { startStandin, type Standin, type StandinOptions, type StandinUpstreamExtProc } from './standin.ts';
import {
  DEPLOYMENT_ATTRIBUTE,
  ENDPOINT_DEPLOYMENT_KEY,
  ENDPOINT_METADATA_NAMESPACE,
  PLAN_NAMESPACE,
  STAGE_METADATA_KEY,
  UPSTREAM_STAGE,
} from '../../service/fallback/contract.ts';

export const KEYS = {
  acme: 'tg-test-acme-research-000000000000000001',
  acmeSupport: 'tg-test-acme-support-0000000000000000001',
  globex: 'tg-test-globex-default-00000000000000001',
  disabled: 'tg-test-disabled-key-0000000000000000001',
};

export const JWT_SECRET = 'test-jwt-secret-not-for-production';

export interface HarnessOptions {
  /** Extra YAML documents (policies, models, …) written to `extra.yaml`. */
  extraYaml?: string;
  standin?: Partial<StandinOptions>;
  tollgate?: Partial<TollgateOptions>;
  /** Providers to fake (default openai + anthropic). */
  providers?: ProviderApi[];
  maxRequestBytes?: number;
  /**
   * Fallback chain clusters for the stand-in, as envoy/envoy.yaml builds them: cluster → deployment
   * ids in priority order, each served by a fake provider, with Tollgate's upstream ext_proc filter.
   */
  chains?: Record<string, { provider: ProviderApi; deployment: string }[]>;
  /**
   * Extra Tollgate processes on the same config. Chain clusters' upstream filters then reach them
   * and the main one round-robin per stream (replicas first), as a multi-host `tollgate` cluster.
   */
  replicas?: number;
  /** Overrides for the chain clusters' upstream ext_proc filter (e.g. `localReplies`). */
  upstreamFilter?: Partial<StandinUpstreamExtProc>;
}

/** The upstream ext_proc filter of a chain cluster, as in envoy/envoy.yaml. */
export const UPSTREAM_EXTPROC: StandinUpstreamExtProc = {
  initialMetadata: { [STAGE_METADATA_KEY]: UPSTREAM_STAGE },
  requestAttributes: [DEPLOYMENT_ATTRIBUTE],
  forwardingNamespaces: [PLAN_NAMESPACE],
  mutationRules: { allowAllRouting: true },
  messageTimeoutMs: 2000,
};

export interface Harness {
  dir: string;
  baseURL: string;
  standin: Standin;
  tollgate: Tollgate;
  /** The extra processes of `replicas`. */
  replicas: Tollgate[];
  fakes: Partial<Record<ProviderApi, FakeProvider>>;
  /** Lineage records emitted so far (captured from the in-process emitter). */
  lineage: LineageRecord[];
  writeConfig(name: string, yaml: string): void;
  close(): Promise<void>;
}

const CLUSTER: Record<ProviderApi, string> = {
  openai: 'fake_openai',
  anthropic: 'fake_anthropic',
  azure: 'fake_azure',
  gemini: 'fake_gemini',
  bedrock: 'fake_bedrock',
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
  for (const k of kinds) fakes[k] = await startFakeProvider(k);
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

  const start = (instance?: string): Promise<Tollgate> =>
    startTollgate({
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
  const emit = tollgate.services.lineage.emit;
  tollgate.services.lineage.emit = (r) => {
    lineage.push(r);
    emit(r);
  };
  const replicas: Tollgate[] = [];
  for (let i = 0; i < (opts.replicas ?? 0); i++) replicas.push(await start(`replica-${i + 1}`));
  const upstreamExtProc: StandinUpstreamExtProc = {
    ...UPSTREAM_EXTPROC,
    ...(replicas.length ? { extProcAddrs: [...replicas.map((r) => `127.0.0.1:${r.grpcPort}`), `127.0.0.1:${tollgate.grpcPort}`] } : {}),
    ...opts.upstreamFilter,
  };
  const clusters: StandinOptions['clusters'] = {};
  for (const k of kinds) clusters[CLUSTER[k]] = { host: '127.0.0.1', port: fakes[k]!.port };
  const chains: NonNullable<StandinOptions['chains']> = {};
  for (const [name, members] of Object.entries(opts.chains ?? {}))
    chains[name] = {
      priorities: members.map((m) => ({
        host: '127.0.0.1',
        port: fakes[m.provider]!.port,
        metadata: { [ENDPOINT_METADATA_NAMESPACE]: { [ENDPOINT_DEPLOYMENT_KEY]: m.deployment } },
      })),
      upstreamExtProc,
    };
  const standin = await startStandin({
    extProcAddr: `127.0.0.1:${tollgate.grpcPort}`,
    clusters,
    chains,
    allowModeOverride: true,
    messageTimeoutMs: 2000,
    jwt: { secret: JWT_SECRET, payloadKey: 'jwt_payload' },
    ...opts.standin,
  });
  return {
    dir,
    baseURL: `${standin.url}/v1`,
    standin,
    tollgate,
    replicas,
    fakes,
    lineage,
    writeConfig: write,
    close: async () => {
      await standin.close();
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
