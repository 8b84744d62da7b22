// `envoy --mode validate` on every Envoy config the project ships, for every pinned Envoy version:
// the files as shipped, with their optional (commented) blocks switched on, and as the test suites
// render them. A deliberately broken config must fail, so the check is not a rubber stamp.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { findEnvoy, pinnedVersions, REPO_ROOT } from '../../service/envoy/provision.ts';
import { renderEnvoyConfig, uncommentBlocks } from '../../service/envoy/render.ts';
import { hs256Jwks } from '../support/envoy.ts';
import { parse, stringify } from 'yaml';

const run = promisify(execFile);
const ENVOY_DIR = join(REPO_ROOT, 'envoy');
const SHIPPED = readdirSync(ENVOY_DIR).filter((f) => f.endsWith('.yaml')).sort();

/** The binaries under test: TOLLGATE_TEST_ENVOY_VERSIONS from test/run.ts ("1.40.0=/path,…"), else each pinned version. */
async function binaries(): Promise<{ version: string; path: string }[]> {
  const given = process.env.TOLLGATE_TEST_ENVOY_VERSIONS;
  if (given) return given.split(',').map((kv) => ({ version: kv.slice(0, kv.indexOf('=')), path: kv.slice(kv.indexOf('=') + 1) }));
  return Promise.all(pinnedVersions().pinned.map((version) => findEnvoy({ version })));
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function validate(bin: string, name: string, yaml: string): Promise<{ ok: boolean; out: string }> {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  try {
    const { stdout, stderr } = await run(bin, ['--mode', 'validate', '-c', file, '--log-level', 'warning'], { timeout: 60_000 });
    return { ok: true, out: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The configs to check, by label: shipped files, optional blocks on, and test renderings. */
function configs(): [string, string][] {
  const out: [string, string][] = [];
  for (const f of SHIPPED) out.push([`${f} as shipped`, readFileSync(join(ENVOY_DIR, f), 'utf8')]);
  const main = readFileSync(join(ENVOY_DIR, 'envoy.yaml'), 'utf8');
  out.push(['envoy.yaml with jwt_authn and sso_jwks uncommented', uncommentBlocks(main, ['jwt_authn', 'sso_jwks'])]);
  out.push([
    'envoy.yaml rendered as the e2e harness renders it (loopback, jwt_authn, TLS and plaintext providers, chains)',
    renderEnvoyConfig(main, {
      listener: { address: '127.0.0.1', port: 0 },
      admin: { address: '127.0.0.1', port: 0 },
      tollgate: [{ host: '127.0.0.1', port: 50051 }, { host: '127.0.0.1', port: 50052 }],
      clusters: {
        openai: { host: '127.0.0.1', port: 8443, tls: { caFile: '/etc/ssl/certs/ca-certificates.crt', sni: 'api.openai.com' } },
        fake_anthropic: { host: '127.0.0.1', port: 9000, template: 'anthropic' },
      },
      chains: {
        'tgc.plain': { priorities: [{ host: '127.0.0.1', port: 9001, deployment: 'a' }, { host: '127.0.0.1', port: 9002, deployment: 'b' }] },
        'tgc.tls': {
          priorities: [
            { host: '127.0.0.1', port: 9003, deployment: 'a', tls: { caFile: '/etc/ssl/certs/ca-certificates.crt', sni: 'a.example' } },
            { host: '127.0.0.1', port: 9004, deployment: 'b', tls: { caFile: '/etc/ssl/certs/ca-certificates.crt', sni: 'b.example' } },
          ],
        },
      },
      extProc: { messageTimeoutMs: 5000, initialMetadata: { 'x-test': '1' } },
      jwt: { jwks: hs256Jwks('secret'), issuer: 'https://sso.example.com', audiences: ['llm-gateway'] },
    }),
  ]);
  return out;
}

/** The chain cluster's default (fail-closed) TLS socket removed: auto_config then lacks ALPN on it. */
function withoutChainDefaultTls(source: string): string {
  const doc = parse(source) as { static_resources: { clusters: Record<string, unknown>[] } };
  const chain = doc.static_resources.clusters.find((c) => String(c.name).startsWith('tgc.'));
  assert.ok(chain && chain.transport_socket, 'the shipped chain cluster has a default transport_socket');
  delete chain.transport_socket;
  return stringify(doc);
}

describe('envoy --mode validate', { timeout: 300_000 }, () => {
  it('every shipped config (and its optional blocks, and its test renderings) is valid on every pinned Envoy', async () => {
    const bins = await binaries();
    assert.ok(bins.length >= 1);
    for (const b of bins)
      for (const [label, yaml] of configs()) {
        const r = await validate(b.path, 'config.yaml', yaml);
        assert.ok(r.ok && /OK/.test(r.out), `Envoy ${b.version}: ${label}:\n${r.out.slice(-3000)}`);
      }
  });

  it('a broken config fails validation, with Envoy naming the problem', async () => {
    const main = readFileSync(join(ENVOY_DIR, 'envoy.yaml'), 'utf8');
    const broken: [string, string, RegExp][] = [
      ['unknown field', main.replace('per_connection_buffer_limit_bytes:', 'per_connection_buffer_limit_bytez:'), /per_connection_buffer_limit_bytez/],
      ['upstream codec not last in a chain cluster', main.replace(/\n        # The codec must be the last upstream filter[^\n]*\n        - name: envoy\.filters\.http\.upstream_codec\n          typed_config:\n            "@type": [^\n]*\n/, '\n'), /codec|terminal|last/i],
      ['chain cluster with auto_config but a plaintext default socket (no ALPN)', withoutChainDefaultTls(main), /ALPN|alpn/],
    ];
    for (const [label, yaml] of broken) assert.notEqual(yaml, main, `${label}: the mutation applied`);
    for (const b of await binaries())
      for (const [label, yaml, why] of broken) {
        const r = await validate(b.path, 'broken.yaml', yaml);
        assert.equal(r.ok, false, `Envoy ${b.version} accepted: ${label}`);
        assert.match(r.out, why, `Envoy ${b.version}: ${label}`);
      }
  });
});
