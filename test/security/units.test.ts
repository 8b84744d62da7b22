// The small pieces: loopback addresses, SAN parsing and matching, secrets from env/files, run mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { isLoopbackAddr, modeFromEnv, parseSubjectAltNames, PeerAllowList, securityFromEnv } from '../../service/security/index.ts';
import { SecretSet } from '../../service/security/secrets.ts';

describe('security units', () => {
  it('loopback listen addresses', () => {
    for (const a of ['127.0.0.1:50051', '127.1.2.3:0', 'localhost:1', '[::1]:50051', 'unix:/run/tollgate.sock', 'dns:localhost:1'])
      assert.equal(isLoopbackAddr(a), true, a);
    for (const a of ['0.0.0.0:50051', '[::]:50051', '10.0.0.5:50051', 'tollgate:50051', '192.0.2.1:0', 'garbage'])
      assert.equal(isLoopbackAddr(a), false, a);
  });

  it('SAN parsing: URI and DNS entries; a quoted value cannot smuggle in a second name', () => {
    assert.deepEqual(parseSubjectAltNames('URI:spiffe://td/ns/a/sa/b, DNS:Envoy.Example, IP Address:10.0.0.1'), { uris: ['spiffe://td/ns/a/sa/b'], dns: ['envoy.example'] });
    assert.deepEqual(parseSubjectAltNames('DNS:"evil.example, URI:spiffe://td/ns/a/sa/b"'), { uris: [], dns: ['evil.example, uri:spiffe://td/ns/a/sa/b'] });
    assert.deepEqual(parseSubjectAltNames(undefined), { uris: [], dns: [] });
  });

  it('allow-list: exact URI, case-insensitive DNS, `*`, and no certificate → refused', () => {
    const cert = (san: string) => ({ subjectaltname: san }) as PeerCertificate;
    const l = new PeerAllowList(['spiffe://td/ns/istio-system/sa/gw', 'envoy.internal']);
    assert.equal(l.allows(cert('URI:spiffe://td/ns/istio-system/sa/gw')), true);
    assert.equal(l.allows(cert('URI:spiffe://td/ns/istio-system/sa/gw2')), false);
    assert.equal(l.allows(cert('URI:spiffe://td/ns/istio-system/sa/gw/x')), false);
    assert.equal(l.allows(cert('DNS:ENVOY.internal')), true);
    assert.equal(l.allows(cert('DNS:spiffe://td/ns/istio-system/sa/gw')), false);
    assert.equal(l.allows(undefined), false);
    assert.equal(l.allows({} as PeerCertificate), false);
    assert.equal(new PeerAllowList(['*']).allows(cert('URI:anything')), true);
  });

  it('secret set: any configured value matches, nothing else does', () => {
    const s = new SecretSet(['alpha-secret-000000', 'beta-secret-0000000']);
    assert.equal(s.matches('alpha-secret-000000'), true);
    assert.equal(s.matches('beta-secret-0000000'), true);
    for (const x of ['alpha-secret-00000', 'alpha-secret-0000000', '', undefined]) assert.equal(s.matches(x), false, String(x));
  });

  it('env: secrets from NAME or NAME_FILE (one per line), not both; mode from TOLLGATE_MODE or NODE_ENV', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-sec-'));
    try {
      const f = join(dir, 'secret');
      writeFileSync(f, 'current-secret-0000000000\nprevious-secret-000000000\n');
      const s = securityFromEnv({ TOLLGATE_GRPC_SHARED_SECRET_FILE: f, TOLLGATE_ADMIN_TOKEN: ' token-0000000000000000 \n', TOLLGATE_PLAN_KEY_FILE: f });
      assert.deepEqual(s.grpcAuth, { sharedSecrets: ['current-secret-0000000000', 'previous-secret-000000000'] });
      assert.deepEqual(s.adminTokens, ['token-0000000000000000']);
      assert.deepEqual(s.planKeys, ['current-secret-0000000000', 'previous-secret-000000000']);
      assert.throws(() => securityFromEnv({ TOLLGATE_ADMIN_TOKEN: 'x', TOLLGATE_ADMIN_TOKEN_FILE: f }), /not both/);
      assert.throws(() => securityFromEnv({ TOLLGATE_GRPC_TLS_CERT: f }), /together/);
      assert.throws(() => securityFromEnv({ TOLLGATE_GRPC_HEALTH_AUTH: 'maybe' }), /open/);
      assert.equal(securityFromEnv({}).spendApi, false);
      assert.equal(securityFromEnv({ TOLLGATE_SPEND_API: 'on' }).spendApi, true);
      assert.equal(securityFromEnv({ TOLLGATE_SPEND_API: 'off' }).spendApi, false);
      assert.throws(() => securityFromEnv({ TOLLGATE_SPEND_API: 'yes' }), /TOLLGATE_SPEND_API must be "on" or "off"/);
      assert.deepEqual(
        securityFromEnv({ TOLLGATE_GRPC_TLS_CERT: 'c', TOLLGATE_GRPC_TLS_KEY: 'k', TOLLGATE_GRPC_TLS_CA: 'ca', TOLLGATE_GRPC_ALLOWED_PEERS: 'spiffe://a/b, dns.example ', TOLLGATE_GRPC_HEALTH_AUTH: 'authenticated' }).grpcAuth,
        { tls: { certFile: 'c', keyFile: 'k', caFile: 'ca' }, allowedPeers: ['spiffe://a/b', 'dns.example'], health: 'authenticated' },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(modeFromEnv({}), 'development');
    assert.equal(modeFromEnv({ NODE_ENV: 'production' }), 'production');
    assert.equal(modeFromEnv({ NODE_ENV: 'production', TOLLGATE_MODE: 'development' }), 'development');
    assert.equal(modeFromEnv({ TOLLGATE_MODE: 'production' }), 'production');
    assert.throws(() => modeFromEnv({ TOLLGATE_MODE: 'prod' }), /TOLLGATE_MODE/);
  });
});
