// deploy/kubernetes (kustomize), checked without a cluster: rendered the way `kubectl kustomize
// --load-restrictor LoadRestrictionsNone` renders it (test/deploy/support/kustomize.ts), then every object is
// checked for what the API server and Tollgate need — and the Deployment's container is RUN: its command and
// environment, the rendered ConfigMap as its config directory and the rendered Secret's keys, answering the
// probes the Deployment declares on the port it declares.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateConfigDir } from '../../service/config/snapshot.ts';
import { REPO_ROOT } from '../../service/envoy/provision.ts';
import { execForm, parseDockerfile } from './support/dockerfile.ts';
import { containersOf, kustomize, podSpecOf, withNameHashes, type Container, type K8sObject, type Rendered } from './support/kustomize.ts';
import { freePort, run } from './support/run.ts';

const DIR = join(REPO_ROOT, 'deploy', 'kubernetes');
const EXAMPLE = readFileSync(join(DIR, 'secrets.env.example'), 'utf8');
const TEST_SECRETS: Record<string, string> = {
  TOLLGATE_GRPC_SHARED_SECRET: 'k8s-test-shared-secret-0123456789abcdef',
  TOLLGATE_PLAN_KEY: 'k8s-test-plan-key-0123456789abcdef0123456789',
  TOLLGATE_ADMIN_TOKEN: 'k8s-test-admin-token-0123456789abcdef',
  TOLLGATE_REDACTION_SECRET: 'k8s-test-redaction-secret-0123456789',
};
const filled = EXAMPLE.split('\n').map((l) => { const k = l.split('=')[0]!; return TEST_SECRETS[k] ? `${k}=${TEST_SECRETS[k]}` : l; }).join('\n');

function renderBase(secretsEnv = filled): Rendered {
  return withNameHashes(kustomize(DIR, { loadRestrictorNone: true, files: { [join(DIR, 'secrets.env')]: secretsEnv } }));
}

const objs = renderBase();
const one = (kind: string, name?: string): K8sObject => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}`);
  return found[0]!;
};
const deployment = one('Deployment');
const container: Container = containersOf(deployment)[0]!;
const envValue = (n: string) => container.env?.find((e) => e.name === n)?.value;
const portOf = (addr: string | undefined) => Number(addr?.split(':').at(-1));
const containerPort = (ref: number | string) => (typeof ref === 'number' ? ref : container.ports?.find((p) => p.name === ref)?.containerPort);
const decode = (o: K8sObject) => Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
const policyFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === 'tests' ? [] : policyFiles(join(dir, e.name))) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []));

/** The built-in `mock` provider kind (api: mock) is started only by `tollgate run`; a deployment never calls it. */
const isMock = (p: { api: string }): boolean => p.api === 'mock';

const tmp = mkdtempSync(join(tmpdir(), 'tollgate-k8s-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The rendered ConfigMap as the kubelet mounts it: one file per key. */
function mountConfigMap(cm: K8sObject, dir: string): string {
  for (const [k, v] of Object.entries(cm.data as Record<string, string>)) writeFileSync(join(dir, k), v);
  return dir;
}

describe('deploy/kubernetes', () => {
  it('renders only with secrets.env present and with the load restrictor off, as the docs say', () => {
    assert.throws(() => kustomize(DIR, { loadRestrictorNone: true }), /secrets\.env|ENOENT/);
    assert.throws(() => kustomize(DIR, { files: { [join(DIR, 'secrets.env')]: filled } }), /not in or below/);
    assert.ok(readFileSync(join(REPO_ROOT, '.gitignore'), 'utf8').split('\n').includes('/deploy/kubernetes/secrets.env'), 'secrets.env is git-ignored');
  });

  it('every object has a known kind at its current apiVersion, a name, and (namespaced) the tollgate namespace', () => {
    const API: Record<string, string> = {
      Namespace: 'v1', ServiceAccount: 'v1', ConfigMap: 'v1', Secret: 'v1', Service: 'v1',
      Deployment: 'apps/v1', PodDisruptionBudget: 'policy/v1',
    };
    for (const o of objs) {
      assert.equal(o.apiVersion, API[o.kind], `${o.kind} ${o.metadata?.name}`);
      assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'tollgate', `${o.kind} ${o.metadata.name}`);
    }
    for (const kind of Object.keys(API)) assert.ok(objs.some((o) => o.kind === kind), `a ${kind}`);
    assert.ok(objs.some((o) => o.kind === 'Namespace' && o.metadata.name === 'tollgate'));
  });

  it('selectors match the pod labels (Deployment, Services, PodDisruptionBudget)', () => {
    const spec = deployment.spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } }; replicas: number };
    const pod = spec.template.metadata.labels;
    const sub = (sel: Record<string, string>, what: string) => {
      assert.ok(Object.keys(sel).length > 0, `${what}: non-empty selector`);
      for (const [k, v] of Object.entries(sel)) assert.equal(pod[k], v, `${what} selects ${k}=${v}`);
    };
    sub(spec.selector.matchLabels, 'Deployment');
    for (const s of objs.filter((o) => o.kind === 'Service')) sub((s.spec as { selector: Record<string, string> }).selector, `Service ${s.metadata.name}`);
    const pdb = one('PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number };
    sub(pdb.selector.matchLabels, 'PodDisruptionBudget');
    // A PDB that allows no disruption blocks every node drain; one that allows all protects nothing.
    const allowed = pdb.maxUnavailable ?? spec.replicas - (pdb.minAvailable ?? spec.replicas);
    assert.ok(allowed >= 1 && allowed < spec.replicas, `the PDB lets 1..${spec.replicas - 1} pods go, not ${allowed}`);
  });

  it('the container runs `tollgate serve` as the image user, read-only, with resources and the listeners its ports and probes name', () => {
    const df = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
    const runtime = df.stages.at(-1)!;
    const entry = execForm(runtime.body.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.args);
    assert.ok(entry.includes('bin/tollgate.js'), 'the image entrypoint is the tollgate command');
    assert.equal(container.command, undefined, 'the image entrypoint is kept');
    assert.deepEqual(container.args, ['serve']);
    assert.equal(container.image, 'tollgate:0.1.0');
    const uid = Number(runtime.body.filter((i) => i.op === 'USER').at(-1)!.args.split(':')[0]);
    const pod = podSpecOf(deployment)!;
    const podSec = pod.securityContext as Record<string, unknown>;
    assert.equal(podSec.runAsNonRoot, true);
    assert.equal(podSec.runAsUser, uid, 'the Dockerfile USER');
    assert.deepEqual(podSec.seccompProfile, { type: 'RuntimeDefault' });
    assert.equal(pod.automountServiceAccountToken, false);
    assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    // Read-only root: everything Tollgate writes is a mounted volume.
    const spool = envValue('TOLLGATE_SPOOL_DIR')!;
    assert.ok(container.volumeMounts?.some((m) => spool.startsWith(m.mountPath) && !m.readOnly), `the spool ${spool} is writable`);
    const r = container.resources;
    assert.ok(r?.requests?.cpu && r.requests.memory && r.limits?.memory, 'cpu/memory requests and a memory limit');
    assert.equal(envValue('TOLLGATE_MODE'), 'production');
    assert.equal(containerPort('grpc-extproc'), portOf(envValue('TOLLGATE_GRPC_ADDR')), 'the gRPC port is where Tollgate listens');
    assert.equal(containerPort('http-metrics'), portOf(envValue('TOLLGATE_HTTP_ADDR')));
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    for (const p of [container.readinessProbe, container.livenessProbe, container.startupProbe])
      assert.equal(containerPort(p!.httpGet!.port), portOf(envValue('TOLLGATE_HTTP_ADDR')), 'probes hit the telemetry listener');
    const drainMs = Number(envValue('TOLLGATE_DRAIN_MS'));
    assert.ok((pod.terminationGracePeriodSeconds as number) * 1000 > drainMs, 'the pod is not killed mid-drain');
    assert.equal(envValue('TOLLGATE_SPEND_API'), 'off', '/v1/spend is not published');
  });

  it('the Services expose ext_proc as HTTP/2 gRPC (appProtocol grpc, name grpc-…) on the container port', () => {
    for (const s of objs.filter((o) => o.kind === 'Service')) {
      const ports = (s.spec as { ports: { name: string; port: number; targetPort: string | number; appProtocol?: string }[] }).ports;
      const grpc = ports.find((p) => p.name.startsWith('grpc-'));
      assert.ok(grpc, `${s.metadata.name}: a grpc-… port`);
      assert.equal(grpc.appProtocol, 'grpc');
      assert.equal(containerPort(grpc.targetPort), portOf(envValue('TOLLGATE_GRPC_ADDR')));
    }
    assert.equal((one('Service', 'tollgate-headless').spec as { clusterIP: string }).clusterIP, 'None');
  });

  it('the ConfigMap is every file of policies/ and loads, with the real loader, to the same config', () => {
    const cm = one('ConfigMap');
    const vol = (podSpecOf(deployment)!.volumes as { name: string; configMap?: { name: string } }[]).find((v) => v.configMap);
    assert.equal(vol?.configMap?.name, cm.metadata.name, 'the Deployment mounts the generated ConfigMap');
    assert.equal(container.volumeMounts?.find((m) => m.name === vol!.name)?.mountPath, envValue('TOLLGATE_CONFIG'));
    const files = policyFiles(join(REPO_ROOT, 'policies'));
    assert.deepEqual(Object.values(cm.data as Record<string, string>).sort(), files.map((f) => readFileSync(f, 'utf8')).sort(), `every policies/ file (${files.map((f) => relative(REPO_ROOT, f)).join(', ')}) is in the ConfigMap`);
    const mounted = mountConfigMap(cm, mkdtempSync(join(tmp, 'cm-')));
    const a = validateConfigDir(join(REPO_ROOT, 'policies'));
    const b = validateConfigDir(mounted);
    const core = (c: typeof a.core) => JSON.stringify({ settings: c.settings, providers: [...c.providers], models: c.models, tenants: [...c.tenants], teams: [...c.teams], keys: c.keys });
    assert.equal(core(b.core), core(a.core));
    assert.deepEqual(b.policy.policies, a.policy.policies);
  });

  it('the Secret carries what production needs and every provider credential the config names, loaded with envFrom', () => {
    const secret = one('Secret');
    assert.ok(container.envFrom?.some((e) => e.secretRef?.name === secret.metadata.name), 'the Deployment loads the generated Secret');
    const keys = Object.keys(decode(secret));
    for (const k of ['TOLLGATE_GRPC_SHARED_SECRET', 'TOLLGATE_PLAN_KEY', 'TOLLGATE_ADMIN_TOKEN', 'REDIS_URL']) assert.ok(keys.includes(k), k);
    // Every provider `tollgate serve` can call (the built-in mock, api: mock, exists only under `tollgate run`).
    const named = [...validateConfigDir(join(REPO_ROOT, 'policies')).core.providers.values()]
      .filter((p) => !isMock(p))
      .flatMap((p) => (p.credential.kind === 'env' ? [p.credential.name] : []));
    assert.ok(named.length >= 1);
    for (const k of named) assert.ok(keys.includes(k), `provider credential ${k}`);
    for (const e of container.env ?? []) assert.ok(!/SECRET|TOKEN|KEY/.test(e.name) || e.name === 'TOLLGATE_SPEND_API', `${e.name} is not inline in the Deployment`);
  });

  it("the container, run with the Deployment's command, environment, Secret and mounted ConfigMap, answers its probes; the example secrets refuse to start", { timeout: 90_000 }, async () => {
    const httpPort = await freePort();
    const config = mountConfigMap(one('ConfigMap'), mkdtempSync(join(tmp, 'run-')));
    const base: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    for (const e of container.env ?? []) if (e.value !== undefined) base[e.name] = e.value;
    const env = (secrets: Record<string, string>): NodeJS.ProcessEnv => ({
      ...base,
      ...secrets,
      REDIS_URL: '', // no Redis here: the in-memory store
      TOLLGATE_INSTANCE: 'tollgate-test-pod',
      TOLLGATE_CONFIG: config,
      TOLLGATE_GRPC_ADDR: '127.0.0.1:0',
      TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TOLLGATE_SPOOL_DIR: join(tmp, 'spool'),
    });
    const argv = ['bin/tollgate.js', ...container.args!];
    // The example file as shipped: Tollgate refuses its placeholders.
    const exampleSecret = renderBase(EXAMPLE).find((o) => o.kind === 'Secret')!;
    const example = await run(process.execPath, argv, { cwd: REPO_ROOT, env: env(decode(exampleSecret)), timeoutMs: 30_000 });
    assert.equal(example.code, 1, example.out);
    assert.match(example.out, /refusing to start: .*placeholder/);

    const proc = spawn(process.execPath, argv, { cwd: REPO_ROOT, env: env(decode(one('Secret'))), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    const get = async (path: string) => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(2000) })).status;
      } catch {
        return 0;
      }
    };
    try {
      let status = 0;
      for (let i = 0; i < 120 && status !== 200 && proc.exitCode === null; i++) {
        status = await get(container.startupProbe!.httpGet!.path);
        if (status !== 200) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(status, 200, `startup probe\n${out}`);
      assert.equal(await get(container.readinessProbe!.httpGet!.path), 200, 'readiness');
      assert.equal(await get(container.livenessProbe!.httpGet!.path), 200, 'liveness');
      assert.equal(await get('/v1/spend'), 404, 'the spend API is not published');
      assert.match(out, /tollgate started/);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
  });
});
