// docker-compose.yml, checked without Docker: pinned image tags, every depends_on waits for a healthy service
// that has a healthcheck, no service installs packages at start-up or mounts the host's node_modules, images
// are built from real Dockerfile stages, and the wiring Envoy's config relies on (service names, ports, the
// shared secret) matches what Tollgate is given. The Envoy config itself is validated by test/envoy/validate.test.ts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { pinnedVersions, REPO_ROOT } from '../../service/envoy/provision.ts';
import { parseDockerfile } from './support/dockerfile.ts';

interface Service {
  image?: string;
  build?: { context?: string; target?: string; dockerfile?: string } | string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  ports?: string[];
}

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const words = (c: string[] | string | undefined) => (Array.isArray(c) ? c.join(' ') : (c ?? ''));

describe('docker-compose.yml', () => {
  it('every image is pinned to an exact version (no latest, no floating major), Envoy to a tested version', () => {
    for (const [name, s] of services) {
      assert.ok(s.image, `${name}: has an image name`);
      assert.match(s.image, /(@sha256:[0-9a-f]{64}|:v?\d+\.\d+\.\d+[^:@\s]*)$/, `${name}: ${s.image} is not pinned`);
      assert.doesNotMatch(s.image, /latest/, name);
    }
    const envoy = services.find(([, s]) => s.image?.startsWith('envoyproxy/envoy:'));
    assert.ok(envoy, 'an Envoy service');
    const v = /:v(\d+\.\d+\.\d+)$/.exec(envoy[1].image!)?.[1];
    assert.ok(v && pinnedVersions().pinned.includes(v), `Envoy ${envoy[1].image} is one of the tested versions ${pinnedVersions().pinned.join(', ')} (1.36 crashes: docs/envoy.md)`);
  });

  it('every depends_on waits for service_healthy, and every service depended on has a healthcheck', () => {
    let edges = 0;
    for (const [name, s] of services) {
      if (!s.depends_on) continue;
      assert.ok(!Array.isArray(s.depends_on), `${name}: depends_on uses the long form with a condition`);
      for (const [dep, cond] of Object.entries(s.depends_on)) {
        edges++;
        assert.equal(cond.condition, 'service_healthy', `${name} → ${dep}`);
        const target = compose.services[dep];
        assert.ok(target, `${name} depends on unknown service ${dep}`);
        assert.ok(target.healthcheck?.test && !target.healthcheck.disable, `${dep} has a healthcheck`);
      }
    }
    assert.ok(edges >= 3, 'envoy waits for tollgate and the providers, tollgate for redis');
  });

  it('no service installs packages when it starts, or mounts the repository (and its node_modules) into a container', () => {
    for (const [name, s] of services) {
      assert.doesNotMatch(`${words(s.command)} ${words(s.entrypoint)}`, /\bnpm (ci|install|i)\b|\byarn\b|\bpnpm\b/, `${name} installs at start-up`);
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        assert.ok(!['.', './', '..'].includes(host.replace(/\/$/, '') || '.') && !/node_modules/.test(v), `${name}: volume ${v} mounts the repository or node_modules`);
        if (host.startsWith('.')) assert.ok(existsSync(join(REPO_ROOT, host)), `${name}: ${host} exists`);
      }
    }
  });

  it('built images come from real Dockerfile stages; Tollgate runs the production stage with its HEALTHCHECK script', () => {
    const stages = new Set(dockerfile.stages.map((s) => s.name).filter(Boolean));
    const tollgate = compose.services.tollgate;
    assert.ok(tollgate && typeof tollgate.build === 'object');
    assert.equal(tollgate.build.target, dockerfile.stages.at(-1)!.name, 'tollgate runs the runtime (last) stage');
    for (const [name, s] of services) if (typeof s.build === 'object' && s.build.target) assert.ok(stages.has(s.build.target), `${name}: target ${s.build.target}`);
    const hc = words(tollgate.healthcheck?.test);
    const script = /node (\S+\.mjs)/.exec(hc)?.[1];
    assert.ok(script && existsSync(join(REPO_ROOT, script)), `tollgate healthcheck runs a script in the image: ${hc}`);
  });

  it("Envoy's config reaches Tollgate where it listens, with the secret Tollgate expects", () => {
    const envoyService = services.find(([, s]) => s.image?.startsWith('envoyproxy/envoy:'))![1];
    const mount = (envoyService.volumes ?? []).find((v) => v.endsWith(':/etc/envoy/envoy.yaml:ro') || v.includes(':/etc/envoy/envoy.yaml'));
    assert.ok(mount, 'envoy mounts its config');
    const cfg = parse(readFileSync(join(REPO_ROOT, mount.split(':')[0]!), 'utf8')) as {
      static_resources: { clusters: { name: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] };
    };
    const env = compose.services.tollgate!.environment ?? {};
    const port = Number(env.TOLLGATE_GRPC_ADDR?.split(':').at(-1));
    const tg = cfg.static_resources.clusters.find((c) => c.name === 'tollgate')!;
    const addr = tg.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address;
    assert.deepEqual([addr.address, addr.port_value], ['tollgate', port]);
    assert.match(env.TOLLGATE_GRPC_ADDR ?? '', /^0\.0\.0\.0:/, 'reachable from the Envoy container');
    const raw = readFileSync(join(REPO_ROOT, mount.split(':')[0]!), 'utf8');
    const secrets = new Set([...raw.matchAll(/key: x-tollgate-auth, value: ([^}\s]+)/g)].map((m) => m[1]));
    assert.deepEqual([...secrets], [env.TOLLGATE_GRPC_SHARED_SECRET], 'every ext_proc stream and health check carries the shared secret');
    const hosts = new Set(cfg.static_resources.clusters.flatMap((c) => c.load_assignment?.endpoints ?? []).flatMap((e) => e.lb_endpoints).map((l) => l.endpoint.address.socket_address.address));
    for (const h of hosts) assert.ok(compose.services[h], `Envoy targets ${h}, a compose service`);
    if (env.TOLLGATE_SPEND_API === 'on') assert.ok(env.TOLLGATE_ADMIN_TOKEN, 'the spend API needs an admin token');
  });
});
