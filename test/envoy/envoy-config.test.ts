// envoy/envoy.yaml and envoy/envoy.compose.yaml against what Tollgate needs of them (fail-closed
// ext_proc wiring, routes) and against Tollgate's example config (policies/, which both load): the
// fallback chain clusters must match Model.fallbackChains. Whether Envoy accepts the files at all is
// test/envoy/validate.test.ts (`envoy --mode validate`, every pinned version).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { CoreConfig } from '../../service/config/loader.ts';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import {
  DEPLOYMENT_ATTRIBUTE,
  ENDPOINT_DEPLOYMENT_KEY,
  ENDPOINT_METADATA_NAMESPACE,
  PLAN_NAMESPACE,
  STAGE_METADATA_KEY,
  UPSTREAM_STAGE,
} from '../../service/fallback/contract.ts';

const TYPE = 'type.googleapis.com/';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const EXT_PROC = 'envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';
const UPSTREAM_CODEC = 'envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec';
const UPSTREAM_TLS = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
const PREVIOUS_PRIORITIES_CONFIG = 'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

/**
 * How a chain cluster's endpoints reach the providers.
 * - `tls`: each priority selects its own transport_socket_matches entry, with the same SNI as the
 *   provider's own cluster (envoy.yaml: real providers over TLS).
 * - `plain`: no TLS anywhere, like the provider clusters (envoy.compose.yaml: plain-HTTP fakes).
 */
type ChainTransport = 'tls' | 'plain';
interface EnvoyFile {
  file: string;
  label: string;
  transport: ChainTransport;
}
const ENVOY_FILES: EnvoyFile[] = [
  { file: 'envoy/envoy.yaml', label: 'envoy.yaml', transport: 'tls' },
  { file: 'envoy/envoy.compose.yaml', label: 'envoy.compose.yaml', transport: 'plain' },
];

// Parsed YAML: the shape is checked by validateEnvoyMessage, not by TypeScript.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Y = any;

const typeOf = (typed: Y): string | undefined => (typeof typed?.['@type'] === 'string' ? typed['@type'].slice(TYPE.length) : undefined);
const hcmOf = (config: Y): Y => config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const clustersOf = (config: Y): Y[] => config.static_resources?.clusters ?? [];
const clusterNamed = (config: Y, name: string): Y | undefined => clustersOf(config).find((c) => c.name === name);
const upstreamFiltersOf = (cluster: Y): Y[] | undefined => cluster?.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS]?.http_filters;
const routerExtProcOf = (config: Y): Y => hcmOf(config).http_filters.find((f: Y) => typeOf(f.typed_config) === EXT_PROC)?.typed_config;
/** A chain cluster is recognised by its upstream ext_proc announcing Tollgate's upstream stage. */
const isTollgateUpstreamStage = (filter: Y): boolean =>
  typeOf(filter?.typed_config) === EXT_PROC &&
  (filter.typed_config.grpc_service?.initial_metadata ?? []).some((h: Y) => h.key === STAGE_METADATA_KEY && h.value === UPSTREAM_STAGE);


/** Envoy's route matching, for the match features envoy.yaml uses (prefix/path + exact/prefix header matchers). */
function selectRoute(config: Y, path: string, headers: Record<string, string>): Y | undefined {
  const vhost = hcmOf(config).route_config.virtual_hosts.find((v: Y) => v.domains.includes('*'));
  return vhost?.routes.find((r: Y) => {
    const m = r.match;
    if (m.prefix !== undefined && !path.startsWith(m.prefix)) return false;
    if (m.path !== undefined && path !== m.path) return false;
    for (const h of m.headers ?? []) {
      const v = headers[h.name];
      const sm = h.string_match;
      if (!sm && h.present_match === undefined) throw new Error(`selectRoute: unsupported header matcher ${JSON.stringify(h)}`);
      let ok = sm
        ? v !== undefined && (sm.exact === undefined || v === sm.exact) && (sm.prefix === undefined || v.startsWith(sm.prefix))
        : (v !== undefined) === h.present_match;
      if (h.invert_match) ok = !ok;
      if (!ok) return false;
    }
    return true;
  })?.route;
}

/** The transport_socket_matches entry Envoy picks for an endpoint: the first whose `match` entries all equal the endpoint's. */
function matchedTransportSocket(cluster: Y, lbEndpoint: Y): Y | undefined {
  const md = lbEndpoint.metadata?.filter_metadata?.['envoy.transport_socket_match'] ?? {};
  return (cluster.transport_socket_matches ?? []).find((m: Y) => Object.entries<unknown>(m.match ?? {}).every(([k, v]) => md[k] === v))?.transport_socket;
}

const socketAddress = (lbEndpoint: Y): string => {
  const a = lbEndpoint.endpoint?.address?.socket_address;
  return `${lbEndpoint.endpoint?.hostname ?? ''}@${a?.address}:${a?.port_value}`;
};
const sniOf = (socket: Y): string | undefined => (typeOf(socket?.typed_config) === UPSTREAM_TLS ? (socket.typed_config.sni ?? '') : undefined);

/**
 * Every Model fallback chain against an Envoy config, and every chain cluster in it against the
 * Models; provider clusters must keep the retry-free route. `label` names the file in messages.
 * Returns the problems (empty when the two agree).
 */
function chainProblems(config: Y, core: CoreConfig, transport: ChainTransport, label: string): string[] {
  const problems: string[] = [];
  const routerExtProc = routerExtProcOf(config);
  const tollgateCluster = routerExtProc?.grpc_service?.envoy_grpc?.cluster_name;
  if (!(routerExtProc?.metadata_options?.receiving_namespaces?.untyped ?? []).includes(PLAN_NAMESPACE))
    problems.push(`router-level ext_proc must receive dynamic metadata namespace ${PLAN_NAMESPACE} (the plan)`);
  const vhost = hcmOf(config).route_config.virtual_hosts.find((v: Y) => v.domains.includes('*'));
  const chains = core.models.flatMap((m) => m.fallbackChains.map((c) => ({ model: m, chain: c })));
  if (chains.length && vhost?.include_request_attempt_count !== true)
    problems.push('virtual host must set include_request_attempt_count (the upstream stage reads x-envoy-attempt-count)');

  for (const { model, chain } of chains) {
    const at = `Model ${model.name} chain ${chain.cluster}`;
    const cluster = clusterNamed(config, chain.cluster);
    if (!cluster) {
      problems.push(`${at}: ${label} has no cluster ${chain.cluster}`);
      continue;
    }

    // Priorities, in order, carry exactly the chain's deployments.
    const byPriority = new Map<number, Y[]>();
    for (const lle of cluster.load_assignment?.endpoints ?? []) {
      const p = lle.priority ?? 0;
      byPriority.set(p, [...(byPriority.get(p) ?? []), ...(lle.lb_endpoints ?? [])]);
    }
    const priorities = [...byPriority.keys()].sort((a, b) => a - b);
    if (priorities.join() !== chain.deployments.map((_, i) => i).join())
      problems.push(`${at}: priorities are [${priorities}], expected 0..${chain.deployments.length - 1} (one per deployment)`);
    const found = priorities.map((p) => [...new Set(byPriority.get(p)!.map((e: Y) => e.metadata?.filter_metadata?.[ENDPOINT_METADATA_NAMESPACE]?.[ENDPOINT_DEPLOYMENT_KEY]))]);
    if (JSON.stringify(found) !== JSON.stringify(chain.deployments.map((d) => [d])))
      problems.push(`${at}: priorities carry deployments ${JSON.stringify(found)}, the chain is ${JSON.stringify(chain.deployments)}`);

    // Each endpoint: the provider cluster's address, and a transport socket as `transport` says.
    for (const p of priorities)
      for (const e of byPriority.get(p)!) {
        const id = e.metadata?.filter_metadata?.[ENDPOINT_METADATA_NAMESPACE]?.[ENDPOINT_DEPLOYMENT_KEY];
        const dep = model.deployments.find((d) => d.id === id);
        const provider = dep && core.providers.get(dep.provider);
        if (!provider) {
          problems.push(`${at}: priority ${p} endpoint names deployment ${JSON.stringify(id)}, not one of ${model.name}'s`);
          continue;
        }
        const own = clusterNamed(config, provider.cluster);
        if (!own) {
          problems.push(`${at}: provider ${provider.name}'s cluster ${provider.cluster} is missing from ${label}`);
          continue;
        }
        const ownAddresses = (own.load_assignment?.endpoints ?? []).flatMap((l: Y) => l.lb_endpoints ?? []).map(socketAddress);
        if (!ownAddresses.includes(socketAddress(e)))
          problems.push(`${at}: ${id} endpoint ${socketAddress(e)} is not cluster ${provider.cluster}'s (${ownAddresses.join(', ')})`);
        const matched = matchedTransportSocket(cluster, e);
        if (transport === 'tls') {
          if (!matched) problems.push(`${at}: ${id} endpoint selects no transport_socket_matches entry (envoy.transport_socket_match metadata)`);
          else if (sniOf(matched) !== sniOf(own.transport_socket) || (sniOf(matched) !== undefined && sniOf(matched) !== provider.host))
            problems.push(`${at}: ${id} endpoint gets SNI ${sniOf(matched)}, provider ${provider.name} needs ${sniOf(own.transport_socket) ?? 'plain text'} (host ${provider.host})`);
        } else {
          // The socket Envoy uses: the matched entry, else the cluster's default (absent: raw_buffer).
          const socket = matched ?? cluster.transport_socket;
          if (sniOf(socket) !== undefined) problems.push(`${at}: ${id} endpoint gets TLS (SNI ${sniOf(socket) || 'none'}), ${label} expects plain sockets`);
          if (sniOf(own.transport_socket) !== undefined)
            problems.push(`${at}: provider cluster ${provider.cluster} uses TLS (SNI ${sniOf(own.transport_socket) || 'none'}), ${label} expects plain sockets`);
        }
      }

    // SNI is per request with auto_sni (design E8): a chain must not use it.
    const upstreamOpts = cluster.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS]?.upstream_http_protocol_options;
    if (upstreamOpts?.auto_sni || upstreamOpts?.auto_san_validation) problems.push(`${at}: auto_sni/auto_san_validation would reuse attempt 1's name on a fallback`);

    // The upstream stage, then the codec.
    const filters = upstreamFiltersOf(cluster) ?? [];
    const stage = filters[0]?.typed_config;
    if (!isTollgateUpstreamStage(filters[0])) {
      problems.push(`${at}: the first upstream http_filter must be ext_proc with initial_metadata ${STAGE_METADATA_KEY}: ${UPSTREAM_STAGE}`);
    } else {
      if (stage.grpc_service?.envoy_grpc?.cluster_name !== tollgateCluster)
        problems.push(`${at}: upstream ext_proc talks to ${stage.grpc_service?.envoy_grpc?.cluster_name}, the router-level one to ${tollgateCluster}`);
      if (!(stage.request_attributes ?? []).includes(DEPLOYMENT_ATTRIBUTE)) problems.push(`${at}: upstream ext_proc request_attributes lack ${DEPLOYMENT_ATTRIBUTE}`);
      if (!(stage.metadata_options?.forwarding_namespaces?.untyped ?? []).includes(PLAN_NAMESPACE))
        problems.push(`${at}: upstream ext_proc must forward metadata namespace ${PLAN_NAMESPACE}`);
      if (stage.failure_mode_allow !== false) problems.push(`${at}: upstream ext_proc must fail closed`);
      if (stage.mutation_rules?.allow_all_routing !== true) problems.push(`${at}: upstream ext_proc sets :authority, needs mutation_rules.allow_all_routing`);
      if (stage.processing_mode?.request_body_mode !== 'BUFFERED') problems.push(`${at}: upstream ext_proc translates the body, needs request_body_mode BUFFERED`);
    }
    if (typeOf(filters.at(-1)?.typed_config) !== UPSTREAM_CODEC) problems.push(`${at}: upstream_codec must be the last upstream http_filter`);

    // The route Envoy picks once Tollgate names this cluster retries across its priorities.
    const route = selectRoute(config, '/v1/chat/completions', { [core.settings.clusterHeader]: chain.cluster });
    if (route?.cluster_header !== core.settings.clusterHeader) {
      problems.push(`${at}: no route sends ${core.settings.clusterHeader}: ${chain.cluster} by cluster_header`);
      continue;
    }
    const rp = route.retry_policy;
    if (!rp) {
      problems.push(`${at}: its route has no retry_policy`);
      continue;
    }
    if (rp.retry_priority?.name !== PREVIOUS_PRIORITIES || typeOf(rp.retry_priority?.typed_config) !== PREVIOUS_PRIORITIES_CONFIG || rp.retry_priority.typed_config.update_frequency !== 1)
      problems.push(`${at}: its route needs retry_priority ${PREVIOUS_PRIORITIES} with update_frequency 1 (each retry to the next priority)`);
    const on = String(rp.retry_on ?? '').split(',');
    for (const cond of ['5xx', 'reset', 'connect-failure', 'refused-stream', 'retriable-status-codes'])
      if (!on.includes(cond)) problems.push(`${at}: its route's retry_on lacks ${cond}`);
    if (!(rp.retriable_status_codes ?? []).includes(429)) problems.push(`${at}: its route does not retry 429`);
    if (!((rp.num_retries ?? 1) >= chain.deployments.length - 1))
      problems.push(`${at}: num_retries ${rp.num_retries ?? 1} cannot reach all ${chain.deployments.length} deployments`);
  }

  // The single-cluster path: a provider's own cluster gets a route by cluster_header, without retries.
  for (const provider of core.providers.values()) {
    const route = selectRoute(config, '/v1/chat/completions', { [core.settings.clusterHeader]: provider.cluster });
    if (route?.cluster_header !== core.settings.clusterHeader)
      problems.push(`provider ${provider.name}: no route sends ${core.settings.clusterHeader}: ${provider.cluster} by cluster_header`);
    else if (route.retry_policy) problems.push(`provider ${provider.name}: the route for cluster ${provider.cluster} has a retry_policy (only chain clusters retry)`);
  }

  // A chain cluster no Model declares (e.g. a chain removed from models.yaml only).
  const declared = new Set(chains.map((c) => c.chain.cluster));
  for (const c of clustersOf(config))
    if ((upstreamFiltersOf(c) ?? []).some(isTollgateUpstreamStage) && !declared.has(c.name))
      problems.push(`cluster ${c.name} runs Tollgate's upstream stage but no Model declares it as a fallbackChains cluster`);
  return problems;
}

const readEnvoy = (file = 'envoy/envoy.yaml'): Y => parse(readFileSync(file, 'utf8'));
const clone = <T>(v: T): T => structuredClone(v);

describe('envoy/envoy.yaml', () => {
  const config = readEnvoy() as Record<string, unknown>;

  it('wires ext_proc the way Tollgate needs it', () => {
    const text = JSON.stringify(config);
    const hcm = (config as any).static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const filters = hcm.http_filters as { name: string; typed_config: Record<string, any> }[];
    const ext = filters.find((f) => f.name === 'envoy.filters.http.ext_proc')!.typed_config;
    assert.equal(ext.failure_mode_allow, false, 'fail closed');
    assert.equal(ext.allow_mode_override, true, 'SSE needs mode_override');
    assert.equal(ext.processing_mode.request_body_mode, 'BUFFERED', 'body-based routing needs BUFFERED');
    assert.deepEqual(ext.metadata_options.receiving_namespaces.untyped, ['tollgate']);
    assert.equal(filters.at(-1)!.name, 'envoy.filters.http.router', 'router is last');
    const route = hcm.route_config.virtual_hosts[0].routes[0].route;
    assert.equal(route.cluster_header, 'x-tollgate-cluster');
    assert.equal(route.host_rewrite_header, 'x-tollgate-host');
    const clusters = new Set((config as any).static_resources.clusters.map((c: { name: string }) => c.name));
    for (const c of ['tollgate', 'openai', 'anthropic', 'local_llm']) assert.ok(clusters.has(c), `cluster ${c}`);
    assert.match(text, /DYNAMIC_METADATA\(tollgate:decision_id\)/);
  });

  it('the single-cluster path (a provider cluster) keeps today\'s route: no retries, in both files', () => {
    for (const { file } of ENVOY_FILES)
      for (const cluster of ['openai', 'anthropic', 'azure_eu', 'local_llm']) {
        const route = selectRoute(readEnvoy(file), '/v1/chat/completions', { 'x-tollgate-cluster': cluster });
        assert.equal(route?.cluster_header, 'x-tollgate-cluster', `${file} ${cluster}`);
        assert.equal(route?.retry_policy, undefined, `${file} ${cluster}`);
      }
  });
});

describe('envoy/envoy.yaml and envoy/envoy.compose.yaml agree with policies/ (Model.fallbackChains)', () => {
  const core = buildSnapshot('policies').core;
  const tmp = mkdtempSync(join(tmpdir(), 'tg-envoy-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** policies/ with models.yaml edited, loaded the way `tollgate check` loads a directory (once per name). */
  const edited = new Map<string, CoreConfig>();
  const withModels = (name: string, edit: (yaml: string) => string): CoreConfig => {
    const known = edited.get(name);
    if (known) return known;
    const dir = join(tmp, name);
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'models.yaml');
    const before = readFileSync(file, 'utf8');
    const after = edit(before);
    assert.notEqual(after, before, `${name}: the edit applies`);
    writeFileSync(file, after);
    const loaded = buildSnapshot(dir).core;
    edited.set(name, loaded);
    return loaded;
  };

  it('the example config declares at least one chain', () => {
    assert.ok(core.models.some((m) => m.fallbackChains.length > 0));
  });

  for (const { file, label, transport } of ENVOY_FILES) {
    describe(`${label} (${transport} sockets)`, () => {
      const config = readEnvoy(file);
      const problemsOf = (c: Y, k: CoreConfig = core): string[] => chainProblems(c, k, transport, label);

      it('every chain has its cluster, priorities, endpoints, upstream stage and retry policy', () => {
        assert.deepEqual(problemsOf(config), []);
      });

      it(`fails when models.yaml changes and ${label} does not`, () => {
        const cases: [string, (y: string) => string, RegExp][] = [
          ['chain order swapped', (y) => y.replace('deployments: [gpt-4o-mini/openai/0, gpt-4o-mini/azure-eu/1]', 'deployments: [gpt-4o-mini/azure-eu/1, gpt-4o-mini/openai/0]'), /priorities carry deployments/],
          ['chain renamed', (y) => y.replace('cluster: tgc.gpt-4o-mini,', 'cluster: tgc.gpt-4o-mini.eu,'), /no cluster tgc\.gpt-4o-mini\.eu/],
          ['chain added to another model', (y) => y.replace(
            '{provider: mock, model: gpt-4o, region: local, pricing: {inputPerMillion: 2.5, outputPerMillion: 10}, contextWindow: 128000, priority: 9}\n',
            '{provider: mock, model: gpt-4o, region: local, pricing: {inputPerMillion: 2.5, outputPerMillion: 10}, contextWindow: 128000, priority: 9}\n  fallbackChains: [{cluster: tgc.gpt-4o, deployments: [gpt-4o/openai/0, gpt-4o/azure-eu/1]}]\n'), /no cluster tgc\.gpt-4o\b/],
          ['chain removed', (y) => y.replace(/\n  fallbackChains:\n  - \{cluster: tgc\.gpt-4o-mini,.*\}\n/, '\n'), /tgc\.gpt-4o-mini runs Tollgate's upstream stage but no Model declares it/],
          ['deployment moved to another provider', (y) => y.replace('- {provider: openai, model: gpt-4o-mini,', '- {provider: anthropic, model: gpt-4o-mini,').replaceAll('gpt-4o-mini/openai/0', 'gpt-4o-mini/anthropic/0'), /priorities carry deployments/],
        ];
        for (const [name, edit, re] of cases) {
          const problems = problemsOf(config, withModels(name.replace(/\W+/g, '-'), edit));
          assert.ok(problems.some((p) => re.test(p)), `${name}: ${JSON.stringify(problems)}`);
        }
      });

      it(`fails when ${label} drifts from the contract, the provider clusters or its socket kind`, () => {
        const chain = core.models.flatMap((m) => m.fallbackChains)[0]!;
        const cluster = (c: Y): Y => clusterNamed(c, chain.cluster);
        const stage = (c: Y): Y => upstreamFiltersOf(cluster(c))![0].typed_config;
        const endpoint = (c: Y, p: number): Y => cluster(c).load_assignment.endpoints.find((l: Y) => (l.priority ?? 0) === p).lb_endpoints[0];
        const route = (c: Y): Y => selectRoute(c, '/v1/chat/completions', { [core.settings.clusterHeader]: chain.cluster });
        const routes = (c: Y): Y[] => hcmOf(c).route_config.virtual_hosts[0].routes;
        const tls = (sni?: string): Y => ({
          name: 'envoy.transport_sockets.tls',
          typed_config: { '@type': TYPE + UPSTREAM_TLS, ...(sni ? { sni } : {}), common_tls_context: {} },
        });
        const common: [string, (c: Y) => void, RegExp][] = [
          ['attribute changed', (c) => { stage(c).request_attributes = ["xds.upstream_host_metadata.filter_metadata['tollgate']['backend']"]; }, /request_attributes lack/],
          ['initial metadata dropped', (c) => { stage(c).grpc_service.initial_metadata = []; }, /first upstream http_filter must be ext_proc with initial_metadata/],
          ['forwarding namespace dropped', (c) => { stage(c).metadata_options.forwarding_namespaces.untyped = ['envoy.filters.http.jwt_authn']; }, /must forward metadata namespace/],
          ['other gRPC cluster', (c) => { stage(c).grpc_service.envoy_grpc.cluster_name = 'elsewhere'; }, /upstream ext_proc talks to elsewhere/],
          ['upstream stage fails open', (c) => { stage(c).failure_mode_allow = true; }, /must fail closed/],
          ['codec not last', (c) => upstreamFiltersOf(cluster(c))!.reverse(), /first upstream http_filter|upstream_codec must be the last/],
          ['endpoint metadata key renamed', (c) => { const md = endpoint(c, 1).metadata.filter_metadata; md[ENDPOINT_METADATA_NAMESPACE] = { backend: md[ENDPOINT_METADATA_NAMESPACE][ENDPOINT_DEPLOYMENT_KEY] }; }, /priorities carry deployments/],
          ['priorities swapped', (c) => { const l = cluster(c).load_assignment.endpoints; [l[0].priority, l[1].priority] = [l[1].priority, l[0].priority]; }, /priorities carry deployments/],
          ['endpoint address differs from the provider cluster', (c) => { endpoint(c, 1).endpoint.address.socket_address.port_value = 8443; }, /is not cluster azure_eu's/],
          ['auto_sni', (c) => { cluster(c).typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].upstream_http_protocol_options = { auto_sni: true }; }, /auto_sni/],
          ['no previous_priorities', (c) => { delete route(c).retry_policy.retry_priority; }, /retry_priority envoy\.retry_priorities\.previous_priorities/],
          ['no retry policy', (c) => { delete route(c).retry_policy; }, /has no retry_policy/],
          ['chain route removed', (c) => { hcmOf(c).route_config.virtual_hosts[0].routes = routes(c).filter((r) => !r.route?.retry_policy); }, /has no retry_policy/],
          ['429 not retried', (c) => { route(c).retry_policy.retriable_status_codes = [503]; }, /does not retry 429/],
          ['chain route catches provider clusters too', (c) => { delete routes(c).find((r) => r.route?.retry_policy).match.headers; }, /route for cluster openai has a retry_policy/],
          ['plain route removed', (c) => { hcmOf(c).route_config.virtual_hosts[0].routes = routes(c).filter((r) => r.route?.retry_policy); }, /no route sends x-tollgate-cluster: openai/],
          ['no attempt count', (c) => { delete hcmOf(c).route_config.virtual_hosts[0].include_request_attempt_count; }, /include_request_attempt_count/],
          ['router stage does not receive tollgate', (c) => { routerExtProcOf(c).metadata_options.receiving_namespaces.untyped = []; }, /router-level ext_proc must receive/],
          ['cluster missing', (c) => { c.static_resources.clusters = clustersOf(c).filter((x) => x.name !== chain.cluster); }, new RegExp(`${label.replaceAll('.', '\\.')} has no cluster`)],
        ];
        const perTransport: Record<ChainTransport, [string, (c: Y) => void, RegExp][]> = {
          tls: [
            ['transport socket match missing', (c) => { delete endpoint(c, 0).metadata.filter_metadata['envoy.transport_socket_match']; }, /selects no transport_socket_matches entry/],
            ['wrong SNI', (c) => { endpoint(c, 1).metadata.filter_metadata['envoy.transport_socket_match'] = { provider: 'openai' }; }, /gets SNI api\.openai\.com/],
          ],
          plain: [
            ['TLS default socket', (c) => { cluster(c).transport_socket = tls(); }, /openai\/0 endpoint gets TLS \(SNI none\)/],
            ['TLS socket matched for one endpoint', (c) => {
              cluster(c).transport_socket_matches = [{ name: 'azure_eu', match: { provider: 'azure-eu' }, transport_socket: tls('tollgate-demo.openai.azure.com') }];
              endpoint(c, 1).metadata.filter_metadata['envoy.transport_socket_match'] = { provider: 'azure-eu' };
            }, /azure-eu\/1 endpoint gets TLS \(SNI tollgate-demo\.openai\.azure\.com\)/],
            ['provider cluster moved to TLS', (c) => { clusterNamed(c, 'openai').transport_socket = tls('api.openai.com'); }, /provider cluster openai uses TLS/],
          ],
        };
        for (const [name, edit, re] of [...common, ...perTransport[transport]]) {
          const broken = clone(config);
          edit(broken);
          const problems = problemsOf(broken);
          assert.ok(problems.some((p) => re.test(p)), `${name}: ${JSON.stringify(problems)}`);
        }
      });
    });
  }
});
