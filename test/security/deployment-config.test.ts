// The shipped deployment files agree with Tollgate's peer authentication: both ext_proc filters and
// the health check send x-tollgate-auth, the compose secret matches, and nothing of Tollgate's is
// published beyond this host's loopback.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { AUTH_METADATA_KEY, checkPosture, securityFromEnv } from '../../service/security/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test-only walk over Envoy YAML, as test/envoy does
type Y = any;
const load = (f: string): Y => YAML.parse(readFileSync(`${ROOT}${f}`, 'utf8'));

/** Every ext_proc filter (router-level and clusters' upstream filters) that talks to the tollgate cluster. */
function extProcFilters(cfg: Y): { at: string; grpc: Y }[] {
  const out: { at: string; grpc: Y }[] = [];
  const isExtProc = (f: Y) => String(f?.typed_config?.['@type'] ?? '').endsWith('ext_proc.v3.ExternalProcessor');
  for (const l of cfg.static_resources.listeners)
    for (const fc of l.filter_chains)
      for (const nf of fc.filters)
        for (const hf of nf.typed_config?.http_filters ?? []) if (isExtProc(hf)) out.push({ at: `listener ${l.name} ${hf.name}`, grpc: hf.typed_config.grpc_service });
  for (const c of cfg.static_resources.clusters)
    for (const hf of c.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']?.http_filters ?? [])
      if (isExtProc(hf)) out.push({ at: `cluster ${c.name} ${hf.name}`, grpc: hf.typed_config.grpc_service });
  return out;
}

function secretsOf(cfg: Y): { filters: Map<string, string | undefined>; health: string | undefined } {
  const filters = new Map<string, string | undefined>();
  for (const f of extProcFilters(cfg)) filters.set(f.at, (f.grpc.initial_metadata ?? []).find((h: Y) => h.key === AUTH_METADATA_KEY)?.value);
  const tollgate = cfg.static_resources.clusters.find((c: Y) => c.name === 'tollgate');
  const hc = tollgate.health_checks[0].grpc_health_check;
  return { filters, health: (hc.initial_metadata ?? []).find((h: Y) => h.header?.key === AUTH_METADATA_KEY)?.header.value };
}

describe('deployment files and ext_proc peer authentication', () => {
  for (const [file, expected] of [
    ['envoy/envoy.yaml', '${TOLLGATE_GRPC_SHARED_SECRET}'],
    ['envoy/envoy.compose.yaml', undefined],
  ] as const)
    it(`${file}: both ext_proc filters (router-level and upstream) and the health check send the same ${AUTH_METADATA_KEY}`, () => {
      const { filters, health } = secretsOf(load(file));
      assert.ok(filters.size >= 2, `expected the router-level and an upstream ext_proc, found ${[...filters.keys()].join(', ')}`);
      const values = new Set(filters.values());
      assert.equal(values.size, 1, `different or missing secrets: ${JSON.stringify([...filters])}`);
      const [value] = values;
      assert.ok(value, `no ${AUTH_METADATA_KEY}: ${JSON.stringify([...filters])}`);
      assert.equal(health, value, 'the health check sends the same secret');
      if (expected) assert.equal(value, expected);
    });

  it('docker-compose: the secret matches envoy.compose.yaml, passes the start-up checks, and only loopback ports are published for Tollgate', () => {
    const compose = load('docker-compose.yml');
    const tg = compose.services.tollgate;
    const env = Object.fromEntries(Object.entries<string>(tg.environment).map(([k, v]) => [k, String(v)]));
    const { filters } = secretsOf(load('envoy/envoy.compose.yaml'));
    assert.equal([...filters.values()][0], env.TOLLGATE_GRPC_SHARED_SECRET);
    const s = securityFromEnv(env);
    // What startTollgate checks first; the listener is inside the compose network (not loopback).
    assert.doesNotThrow(() =>
      checkPosture({
        mode: s.mode,
        grpcAddr: env.TOLLGATE_GRPC_ADDR!,
        httpAddr: env.TOLLGATE_HTTP_ADDR!,
        grpcAuthenticated: Boolean(s.grpcAuth?.sharedSecrets?.length),
        sharedSecrets: s.grpcAuth?.sharedSecrets ?? [],
        mtlsAnyPeer: false,
        planKeys: s.planKeys ?? [],
        adminTokens: s.adminTokens ?? [],
      }),
    );
    for (const p of (tg.ports ?? []) as string[]) assert.match(String(p), /^127\.0\.0\.1:/, `tollgate publishes ${p} beyond loopback`);
    assert.ok(!((tg.ports ?? []) as string[]).some((p) => /:50051$/.test(String(p))), 'the ext_proc port is not published');
  });
});
