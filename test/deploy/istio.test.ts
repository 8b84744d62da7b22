// deploy/istio, checked without a cluster: the kustomize overlay renders; its ConfigMap (providers pointed at
// Istio's clusters) loads with the real loader; every provider has its ServiceEntry + DestinationRule; the
// EnvoyFilter carries exactly envoy/envoy.yaml's ext_proc filter, cluster_header routes and fallback chain,
// only on supported gateways (Istio 1.29+); and the gateway config it implies — its patches applied the way
// Istio applies them to an Istio-like ingress gateway config built from the rendered Gateway, VirtualService,
// ServiceEntries and DestinationRules — passes `envoy --mode validate` on every pinned Envoy, while a broken
// patch does not.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { validateConfigDir } from '../../service/config/snapshot.ts';
import { findEnvoy, pinnedVersions, REPO_ROOT } from '../../service/envoy/provision.ts';
import { kustomize, withNameHashes, type K8sObject } from './support/kustomize.ts';

// Envoy and Istio config trees, walked by shape (the tests assert each step).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const execFileP = promisify(execFile);
const DIR = join(REPO_ROOT, 'deploy', 'istio');
const K8S = join(REPO_ROOT, 'deploy', 'kubernetes');
const SECRET = 'istio-test-shared-secret-0123456789abcdef';
const secretsEnv = readFileSync(join(K8S, 'secrets.env.example'), 'utf8').replace(/\$\{REPLACE_ME\}/g, 'istio-test-value-0123456789abcdef0123');
const objs = withNameHashes(kustomize(DIR, { loadRestrictorNone: true, files: { [join(K8S, 'secrets.env')]: secretsEnv } }));
const ofKind = (kind: string) => objs.filter((o) => o.kind === kind);
const one = (kind: string): K8sObject & Json => {
  const f = ofKind(kind);
  assert.equal(f.length, 1, `one ${kind}`);
  return f[0]! as K8sObject & Json;
};
const envoyFilter = one('EnvoyFilter');
const patches = envoyFilter.spec.configPatches as Json[];
const shipped = parse(readFileSync(join(REPO_ROOT, 'envoy', 'envoy.yaml'), 'utf8')) as Json;
const shippedHcm = shipped.static_resources.listeners[0].filter_chains[0].filters[0].typed_config as Json;

const tollgateService = ofKind('Service').find((s) => s.metadata.name === 'tollgate')! as K8sObject & Json;
const grpcPort = (tollgateService.spec.ports as Json[]).find((p) => String(p.name).startsWith('grpc-'))!.port as number;
const TOLLGATE_CLUSTER = `outbound|${grpcPort}||tollgate.${tollgateService.metadata.namespace}.svc.cluster.local`;

/** The config Tollgate loads in the mesh: the merged ConfigMap as mounted. */
const tmp = mkdtempSync(join(tmpdir(), 'tollgate-istio-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const configDir = mkdtempSync(join(tmp, 'cm-'));
for (const [k, v] of Object.entries(one('ConfigMap').data as Record<string, string>)) writeFileSync(join(configDir, k), v);
const meshConfig = validateConfigDir(configDir);

/** What Istio builds for the LLM Gateway's listener from the Gateway, VirtualService, ServiceEntries and DestinationRules. */
function istioGatewayConfig(): Json {
  const gw = one('Gateway');
  const server = gw.spec.servers[0] as Json;
  const vs = one('VirtualService');
  const vsRoutes = (vs.spec.http as Json[]).map((h) => ({
    name: h.name,
    match: { prefix: '/' },
    direct_response: { status: h.directResponse.status, body: { inline_string: h.directResponse.body.string } },
  }));
  const clusters: Json[] = [
    {
      name: TOLLGATE_CLUSTER,
      type: 'STRICT_DNS',
      connect_timeout: '10s',
      typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } },
      load_assignment: { cluster_name: TOLLGATE_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: grpcPort } } } }] }] },
    },
  ];
  for (const se of ofKind('ServiceEntry') as Json[])
    for (const host of se.spec.hosts as string[])
      for (const port of se.spec.ports as Json[]) {
        const name = `outbound|${port.number}||${host}`;
        const dr = (ofKind('DestinationRule') as Json[]).find((d) => d.spec.host === host);
        const tls = (dr?.spec.trafficPolicy?.portLevelSettings as Json[] | undefined)?.find((p) => p.port.number === port.number)?.tls as Json | undefined;
        const c: Json = {
          name,
          type: se.spec.resolution === 'DNS' ? 'STRICT_DNS' : 'STATIC',
          connect_timeout: '10s',
          load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port.targetPort ?? port.number } } } }] }] },
        };
        if (tls?.mode === 'SIMPLE')
          c.transport_socket = {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              sni: tls.sni,
              common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' } } },
            },
          };
        clusters.push(c);
      }
  return {
    static_resources: {
      listeners: [
        {
          // Istio binds the gateway pod's port 8080 for the Service's port 80 (the unprivileged gateway).
          name: '0.0.0.0_8080',
          address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'outbound_0.0.0.0_8080',
                    route_config: {
                      name: 'http.8080',
                      virtual_hosts: (server.hosts as string[]).map((h) => ({ name: `${h}:${server.port.number}`, domains: [h === '*' ? '*' : h], routes: structuredClone(vsRoutes) })),
                    },
                    http_filters: [
                      { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } },
                      { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
}

/** Istio's EnvoyFilter semantics for the operations the shipped filter uses; a patch that matches nothing throws. */
function applyPatches(config: Json, ps: Json[]): Json {
  const out = structuredClone(config);
  for (const p of ps) {
    const value = structuredClone(p.patch.value);
    switch (`${p.applyTo} ${p.patch.operation}`) {
      case 'HTTP_FILTER INSERT_BEFORE': {
        let n = 0;
        for (const l of out.static_resources.listeners as Json[]) {
          if (p.match.listener?.portNumber !== undefined && l.address.socket_address.port_value !== p.match.listener.portNumber) continue;
          for (const fc of l.filter_chains as Json[])
            for (const f of fc.filters as Json[]) {
              if (f.name !== p.match.listener.filterChain.filter.name) continue;
              const filters = f.typed_config.http_filters as Json[];
              const i = filters.findIndex((h) => h.name === p.match.listener.filterChain.filter.subFilter.name);
              if (i >= 0) (filters.splice(i, 0, value), n++);
            }
        }
        assert.ok(n > 0, 'the HTTP_FILTER patch matches the gateway listener');
        break;
      }
      case 'HTTP_ROUTE INSERT_FIRST': {
        let n = 0;
        for (const l of out.static_resources.listeners as Json[])
          for (const fc of l.filter_chains as Json[])
            for (const f of fc.filters as Json[])
              for (const vh of (f.typed_config.route_config?.virtual_hosts ?? []) as Json[])
                if (vh.name === p.match.routeConfiguration.vhost.name) ((vh.routes as Json[]).unshift(structuredClone(value)), n++);
        assert.ok(n > 0, `the HTTP_ROUTE patch matches virtual host ${p.match.routeConfiguration.vhost.name}`);
        break;
      }
      case 'CLUSTER ADD':
        (out.static_resources.clusters as Json[]).push(value);
        break;
      default:
        assert.fail(`unsupported patch ${p.applyTo} ${p.patch.operation}`);
    }
  }
  return out;
}

/** As `envsubst '$TOLLGATE_GRPC_SHARED_SECRET'` does in the documented apply command. */
const substituted = (ps: Json[]): Json[] => JSON.parse(JSON.stringify(ps).replaceAll('${TOLLGATE_GRPC_SHARED_SECRET}', SECRET)) as Json[];

async function binaries(): Promise<{ version: string; path: string }[]> {
  const given = process.env.TOLLGATE_TEST_ENVOY_VERSIONS;
  if (given) return given.split(',').map((kv) => ({ version: kv.slice(0, kv.indexOf('=')), path: kv.slice(kv.indexOf('=') + 1) }));
  return Promise.all(pinnedVersions().pinned.map((version) => findEnvoy({ version })));
}

async function validate(bin: string, config: Json): Promise<{ ok: boolean; out: string }> {
  const file = join(tmp, `gateway-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(config));
  try {
    const { stdout, stderr } = await execFileP(bin, ['--mode', 'validate', '-c', file, '--log-level', 'warning'], { timeout: 60_000 });
    return { ok: true, out: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The built-in `mock` provider kind (api: mock) runs only under `tollgate run`: no mesh upstream, no cluster. */
const isMock = (p: { api: string }): boolean => p.api === 'mock';
const meshProviders = () => [...meshConfig.core.providers].filter(([, p]) => !isMock(p));

const strip = (x: Json, drop: string[]): Json => Object.fromEntries(Object.entries(x).filter(([k]) => !drop.includes(k)));

describe('deploy/istio', () => {
  it('renders on top of deploy/kubernetes with current Istio APIs; mesh resources live where the gateway does', () => {
    const API: Record<string, string> = {
      EnvoyFilter: 'networking.istio.io/v1alpha3', Gateway: 'networking.istio.io/v1', VirtualService: 'networking.istio.io/v1',
      ServiceEntry: 'networking.istio.io/v1', DestinationRule: 'networking.istio.io/v1',
      PeerAuthentication: 'security.istio.io/v1', AuthorizationPolicy: 'security.istio.io/v1',
    };
    for (const [kind, api] of Object.entries(API)) {
      assert.ok(ofKind(kind).length >= 1, kind);
      for (const o of ofKind(kind)) assert.equal(o.apiVersion, api, `${kind} ${o.metadata.name}`);
    }
    assert.ok(ofKind('Deployment').length === 1, 'the base is included');
    for (const k of ['EnvoyFilter', 'Gateway', 'VirtualService', 'ServiceEntry', 'DestinationRule']) for (const o of ofKind(k)) assert.equal(o.metadata.namespace, 'istio-system', `${k} ${o.metadata.name}`);
    const gwSelector = one('Gateway').spec.selector as Json;
    assert.deepEqual(envoyFilter.spec.workloadSelector.labels, gwSelector, 'the EnvoyFilter patches the gateway the Gateway runs on');
    assert.deepEqual(one('VirtualService').spec.gateways, [one('Gateway').metadata.name]);
    const allow = one('AuthorizationPolicy').spec as Json;
    assert.ok(allow.rules.some((r: Json) => r.to?.some((t: Json) => t.operation.ports.includes(String(grpcPort))) && r.from?.some((f: Json) => f.source.principals.some((p: string) => p.includes('/ns/istio-system/')))), 'only the ingress gateway reaches the ext_proc port');
  });

  it("the mesh ConfigMap differs from policies/ only in the providers' clusters, and loads with the real loader", () => {
    const repo = validateConfigDir(join(REPO_ROOT, 'policies'));
    assert.deepEqual([...meshConfig.core.providers.keys()], [...repo.core.providers.keys()]);
    for (const [name, p] of repo.core.providers) {
      const m = meshConfig.core.providers.get(name)!;
      assert.deepEqual(strip(m as Json, ['cluster']), strip(p as Json, ['cluster']), `provider ${name}: only the cluster differs`);
      if (!isMock(m)) assert.match(m.cluster, /^outbound\|\d+\|\|/, `provider ${name} names an Istio cluster`);
    }
    assert.equal(JSON.stringify(meshConfig.core.models), JSON.stringify(repo.core.models));
    assert.deepEqual(meshConfig.policy.policies, repo.policy.policies);
  });

  it('every provider has a ServiceEntry for its host and a DestinationRule (TLS origination with the provider SNI unless self-hosted)', () => {
    for (const [name, p] of meshProviders()) {
      const m = /^outbound\|(\d+)\|\|(.+)$/.exec(p.cluster)!;
      const [port, host] = [Number(m[1]), m[2]!];
      assert.equal(host, p.host, `provider ${name}: the cluster is its host's`);
      const se = (ofKind('ServiceEntry') as Json[]).find((s) => s.spec.hosts.includes(host));
      assert.ok(se, `ServiceEntry for ${host}`);
      assert.deepEqual(se.spec.exportTo, ['.'], 'visible to the gateway namespace only');
      const sePort = (se.spec.ports as Json[]).find((x) => x.number === port);
      assert.ok(sePort && sePort.protocol === 'HTTP', `ServiceEntry ${host} port ${port} is HTTP (the gateway routes it)`);
      const dr = (ofKind('DestinationRule') as Json[]).find((d) => d.spec.host === host);
      assert.ok(dr, `DestinationRule for ${host}`);
      const tls = (dr.spec.trafficPolicy.portLevelSettings as Json[]).find((s) => s.port.number === port)?.tls as Json;
      if (p.selfHosted) assert.equal(tls?.mode, 'DISABLE');
      else {
        assert.deepEqual(tls, { mode: 'SIMPLE', sni: host }, `${host}: TLS to the provider`);
        assert.equal(sePort.targetPort, 443);
      }
    }
  });

  it("the EnvoyFilter carries envoy.yaml's ext_proc filter (before the router), cluster_header routes and fallback chain, pointed at Tollgate's Service", () => {
    const [filter, ...rest] = patches;
    assert.equal(filter!.applyTo, 'HTTP_FILTER');
    assert.equal(filter!.patch.operation, 'INSERT_BEFORE');
    assert.equal(filter!.match.listener.filterChain.filter.subFilter.name, 'envoy.filters.http.router');
    const expected = structuredClone(shippedHcm.http_filters.find((f: Json) => f.name === 'envoy.filters.http.ext_proc'));
    expected.typed_config.grpc_service.envoy_grpc.cluster_name = TOLLGATE_CLUSTER;
    assert.deepEqual(filter!.patch.value, expected);
    assert.equal(filter!.patch.value.typed_config.failure_mode_allow, false, 'fails closed');

    const gateway = applyPatches(istioGatewayConfig(), patches);
    const routes = gateway.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes as Json[];
    const shippedRoutes = (shippedHcm.route_config.virtual_hosts[0].routes as Json[]).filter((r) => r.route?.cluster_header);
    assert.deepEqual(routes.slice(0, shippedRoutes.length).map((r) => strip(r, ['name'])), shippedRoutes, 'the same routes, in the same order, before the VirtualService 404');
    assert.ok(routes.at(-1)!.direct_response, 'the VirtualService 404 stays last');
    const filters = gateway.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters as Json[];
    assert.deepEqual(filters.slice(-2).map((f) => f.name), ['envoy.filters.http.ext_proc', 'envoy.filters.http.router']);

    const chains = rest.filter((p) => p.applyTo === 'CLUSTER');
    for (const c of chains) {
      const orig = structuredClone((shipped.static_resources.clusters as Json[]).find((x) => x.name === c.patch.value.name));
      assert.ok(orig, `chain cluster ${c.patch.value.name} is in envoy.yaml`);
      orig.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name = TOLLGATE_CLUSTER;
      assert.deepEqual(c.patch.value, orig);
    }
    // Every cluster the mesh config can name exists in the gateway.
    const names = new Set((gateway.static_resources.clusters as Json[]).map((c) => c.name));
    for (const [, p] of meshProviders()) assert.ok(names.has(p.cluster), `cluster ${p.cluster}`);
    for (const m of meshConfig.core.models) for (const ch of m.fallbackChains ?? []) assert.ok(names.has(ch.cluster), `chain cluster ${ch.cluster}`);
    assert.ok(JSON.stringify(patches).includes('${TOLLGATE_GRPC_SHARED_SECRET}') && /^TOLLGATE_GRPC_SHARED_SECRET=/m.test(secretsEnv), 'the documented envsubst fills the shared secret from secrets.env');
  });

  it('every patch applies only to gateways of Istio 1.29+ (Envoy 1.37+), all or none, so an older gateway fails closed', () => {
    const versions = new Set(patches.map((p) => p.match.proxy?.proxyVersion as string | undefined));
    assert.equal(versions.size, 1, 'one proxyVersion on every patch: the filter never applies without its routes, or the reverse');
    const re = new RegExp([...versions][0]!);
    for (const v of ['1.29.0', '1.29.3', '1.30.0', '1.31.1', '1.45.0']) assert.ok(re.test(v), v);
    for (const v of ['1.28.2', '1.2.0', '1.9.9', '1.20.1', '1.27.0', '2.0.0']) assert.ok(!re.test(v), v);
    for (const p of patches) assert.equal(p.match.context, 'GATEWAY', 'never a sidecar');
    assert.ok(Math.min(...pinnedVersions().pinned.map((v) => Number(v.split('.')[1]))) >= 37, 'the Envoy versions validated are all 1.37+');
  });

  it('the gateway config the EnvoyFilter implies passes `envoy --mode validate` on every pinned Envoy; a broken patch fails', { timeout: 240_000 }, async () => {
    const good = applyPatches(istioGatewayConfig(), substituted(patches));
    const broken = structuredClone(patches);
    broken[0]!.patch.value.typed_config.processing_mode.request_body_mode = 'BUFFERED_PARTIALLY_MAYBE';
    const bad = applyPatches(istioGatewayConfig(), substituted(broken));
    for (const b of await binaries()) {
      const r = await validate(b.path, good);
      assert.ok(r.ok && /OK/.test(r.out), `Envoy ${b.version}:\n${r.out.slice(-3000)}`);
      const x = await validate(b.path, bad);
      assert.equal(x.ok, false, `Envoy ${b.version} accepted a broken ext_proc patch`);
      assert.match(x.out, /BUFFERED_PARTIALLY_MAYBE|request_body_mode/);
    }
  });
});

