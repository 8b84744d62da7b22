// `tollgate run` pieces that need no Envoy: argument parsing, the Envoy config it renders from the shipped
// envoy.yaml, the banner, and its refusals (one line, no stack trace).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import { banner, DEMO_KEY, mockedModels } from '../../service/standalone/banner.ts';
import { standaloneEnvoyConfig } from '../../service/standalone/envoy-config.ts';
import { parseRunArgs, RunUsageError } from '../../service/standalone/run.ts';

describe('tollgate run', () => {
  it('listens on 127.0.0.1:8080 by default; TOLLGATE_LISTEN_ADDR and --listen (which wins) move it; port 0 allowed', () => {
    assert.deepEqual(parseRunArgs([], {}).listen, { address: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseRunArgs([], { TOLLGATE_LISTEN_ADDR: '0.0.0.0:9000' }).listen, { address: '0.0.0.0', port: 9000 });
    assert.deepEqual(parseRunArgs(['--listen', '127.0.0.1:0'], { TOLLGATE_LISTEN_ADDR: '0.0.0.0:9000' }).listen, { address: '127.0.0.1', port: 0 });
    assert.equal(parseRunArgs(['--config', 'x'], { TOLLGATE_CONFIG: 'y' }).configDir, 'x');
    assert.equal(parseRunArgs([], { TOLLGATE_CONFIG: 'y' }).configDir, 'y');
    for (const bad of [['--listen', '8080'], ['--listen', 'host:99999'], ['--nope'], ['extra']]) assert.throws(() => parseRunArgs(bad, {}), RunUsageError, bad.join(' '));
  });

  it('renders the shipped envoy.yaml: listener, Tollgate behind the secret, loopback mock cluster, real provider clusters kept', () => {
    const { yaml } = standaloneEnvoyConfig({
      listener: { address: '127.0.0.1', port: 0 },
      tollgatePort: 45678,
      sharedSecret: 'standalone-test-secret-0123456789',
      loopback: { mock: { host: '127.0.0.1', port: 34567 } },
    });
    const cfg = parse(yaml);
    assert.deepEqual(cfg.static_resources.listeners[0].address.socket_address, { address: '127.0.0.1', port_value: 0 });
    const clusters = new Map<string, any>(cfg.static_resources.clusters.map((c: any) => [c.name, c]));
    assert.equal(clusters.get('tollgate').load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 45678);
    const mock = clusters.get('mock');
    assert.equal(mock.type, 'STATIC');
    assert.deepEqual(mock.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '127.0.0.1', port_value: 34567 });
    assert.equal(mock.transport_socket, undefined, 'plain HTTP on loopback');
    assert.ok(clusters.get('openai')?.transport_socket, 'the real OpenAI cluster stays, over TLS');
    assert.ok(clusters.has('tgc.gpt-4o-mini'));
    assert.ok(!yaml.includes('${TOLLGATE_GRPC_SHARED_SECRET}'));
    assert.ok(yaml.includes('standalone-test-secret-0123456789'));
  });

  it('banner: endpoint, demo key (only when the config has it), metrics, lineage, mocked models', () => {
    const saved = { o: process.env.OPENAI_API_KEY, a: process.env.ANTHROPIC_API_KEY, z: process.env.AZURE_OPENAI_API_KEY };
    delete process.env.OPENAI_API_KEY;
    delete process.env.AZURE_OPENAI_API_KEY;
    process.env.ANTHROPIC_API_KEY = 'sk-ant-test';
    try {
      const snapshot = buildSnapshot('policies');
      assert.deepEqual(mockedModels(snapshot), ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small']);
      const text = banner({
        gatewayUrl: 'http://127.0.0.1:8080',
        metricsUrl: 'http://127.0.0.1:9464',
        envoyAdminUrl: 'http://127.0.0.1:9901',
        envoyVersion: '1.40.0',
        envoyPid: 42,
        lineage: ['file:var/lineage.jsonl'],
        adminToken: 'tg-admin-test',
        snapshot,
      });
      assert.match(text, /LLM endpoint\s+http:\/\/127\.0\.0\.1:8080\/v1/);
      assert.match(text, new RegExp(`demo key\\s+${DEMO_KEY}`));
      assert.match(text, /metrics\s+http:\/\/127\.0\.0\.1:9464\/metrics\s+health http:\/\/127\.0\.0\.1:9464\/healthz/);
      assert.match(text, /lineage\s+var\/lineage\.jsonl/);
      assert.match(text, /console\s+http:\/\/127\.0\.0\.1:9464\/console\s+\(admin token tg-admin-test\)/);
      assert.match(text, /MCP server\s+http:\/\/127\.0\.0\.1:8080\/mcp\/demo/);
      assert.match(text, /mock provider\s+answers gpt-4o-mini, gpt-4o, text-embedding-3-small: no credential set \(OPENAI_API_KEY, AZURE_OPENAI_API_KEY\)/);
    } finally {
      for (const [k, v] of [['OPENAI_API_KEY', saved.o], ['ANTHROPIC_API_KEY', saved.a], ['AZURE_OPENAI_API_KEY', saved.z]] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('refuses a missing config directory or a bad flag in one line, without a stack trace', () => {
    const r = spawnSync(process.execPath, ['bin/tollgate.js', 'run', '--config', '/nonexistent-tollgate-config'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^tollgate run: config directory \/nonexistent-tollgate-config does not exist; not starting/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const f = spawnSync(process.execPath, ['bin/tollgate.js', 'run', '--listen', 'nope'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(f.status, 2);
    assert.match(f.stderr, /--listen \/ TOLLGATE_LISTEN_ADDR must be HOST:PORT/);
    assert.match(f.stderr, /usage: tollgate run/);
  });
});
