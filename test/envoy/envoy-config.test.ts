// envoy/envoy.yaml against Envoy's v3 protos (Envoy itself cannot run here).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateEnvoyMessage } from '../support/envoy-schema.ts';

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

describe('envoy/envoy.yaml', () => {
  const config = parse(readFileSync('envoy/envoy.yaml', 'utf8')) as Record<string, unknown>;

  it('matches the v3 Bootstrap schema: known fields, enums and typed_config types only', () => {
    assert.deepEqual(validateEnvoyMessage(BOOTSTRAP, config), []);
  });

  it('the docker-compose variant also matches the schema', () => {
    const compose = parse(readFileSync('envoy/envoy.compose.yaml', 'utf8')) as Record<string, unknown>;
    assert.deepEqual(validateEnvoyMessage(BOOTSTRAP, compose), []);
  });

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

  it('rejects what Envoy would reject (the checker is not a rubber stamp)', () => {
    const cases: [string, unknown, RegExp][] = [
      ['unknown field', { static_resources: { listenerz: [] } }, /unknown field/],
      ['unknown typed_config', { static_resources: { listeners: [{ name: 'l', filter_chains: [{ filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.nope.v3.Nope' } }] }] }] } }, /unknown @type/],
      ['bad enum', { static_resources: { clusters: [{ name: 'c', type: 'SOMETIMES_DNS' }] } }, /unknown DiscoveryType/],
      ['bad duration', { static_resources: { clusters: [{ name: 'c', connect_timeout: 5 }] } }, /duration/],
      ['unknown field inside typed_config', {
        static_resources: { listeners: [{ name: 'l', filter_chains: [{ filters: [{ name: 'hcm', typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: 's', http_filterz: [] } }] }] }] },
      }, /http_filterz: unknown field/],
    ];
    for (const [name, cfg, re] of cases) {
      const problems = validateEnvoyMessage(BOOTSTRAP, cfg);
      assert.ok(problems.some((p) => re.test(p)), `${name}: ${JSON.stringify(problems)}`);
    }
  });
});
