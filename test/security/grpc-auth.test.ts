// ext_proc peer authentication with real grpc-js clients: a shared secret in gRPC metadata
// (x-tollgate-auth) and mTLS with allowed peer identities. A refused stream gets UNAUTHENTICATED /
// PERMISSION_DENIED before any message reaches an Exchange.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { MutationBuilder } from '../../service/extproc/mutations.ts';
import type { Exchange } from '../../service/extproc/processor.ts';
import { processOnce } from './process-once.ts';
import { EXTPROC_SERVICE_NAME, startExtProcServer, type ExtProcServer } from '../../service/extproc/server.ts';
import { AUTH_METADATA_KEY, buildGrpcAuth, type AuthFailure, type GrpcAuthOptions } from '../../service/security/index.ts';
import { ENVOY_ID, makePki, type Pki } from './pki.ts';
import type { TransportKind } from '../../service/extproc/h2/transport.ts';

const SECRET = 'test-shared-secret-0123456789abcdef';

/** Counts what reaches the service: exchanges created and messages handled. */
function counting() {
  const seen = { exchanges: 0, messages: 0 };
  const ex = (): Exchange => {
    seen.exchanges++;
    return {
      clientApi: () => 'openai',
      requestHeaders: async () => {
        seen.messages++;
        return { kind: 'continue', mutation: new MutationBuilder() };
      },
      requestBody: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
      responseHeaders: async () => ({ mutation: new MutationBuilder(), stream: false }),
      responseBody: async () => ({}),
      responseChunk: async () => ({}),
      end: () => undefined,
    };
  };
  return { seen, ex };
}

interface Server {
  srv: ExtProcServer;
  seen: { exchanges: number; messages: number };
  denied: AuthFailure[];
  close(): Promise<void>;
}

async function serve(transport: TransportKind, opts: GrpcAuthOptions): Promise<Server> {
  const denied: AuthFailure[] = [];
  const auth = buildGrpcAuth(opts, (reason) => denied.push(reason));
  const { seen, ex } = counting();
  const srv = await startExtProcServer('127.0.0.1:0', { newExchange: ex, log: pino({ level: 'silent' }), auth, transport });
  await auth.ready();
  return {
    srv,
    seen,
    denied,
    close: async () => {
      await srv.drain(100);
      auth.close();
    },
  };
}


function health(target: string, creds: grpc.ChannelCredentials, md: Record<string, string> = {}): Promise<{ code: number; serving?: boolean }> {
  return new Promise((resolve) => {
    const c = new grpc.Client(target, creds);
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(md)) metadata.set(k, v);
    const req = Buffer.concat([Buffer.from([0x0a, EXTPROC_SERVICE_NAME.length]), Buffer.from(EXTPROC_SERVICE_NAME)]);
    c.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, req, metadata, { deadline: Date.now() + 5000 }, (err, res) => {
      c.close();
      resolve(err ? { code: err.code } : { code: 0, serving: res![1] === 1 });
    });
  });
}

const insecure = grpc.credentials.createInsecure();

// Both HTTP/2 layers (ours and node:http2) must authenticate alike, TLS included.
for (const kind of ['h2', 'node'] as const) {
describe(`ext_proc shared secret (x-tollgate-auth), ${kind} transport`, { timeout: 30_000 }, () => {
  let s: Server;
  before(async () => (s = await serve(kind, { sharedSecrets: [SECRET, 'previous-secret-0123456789abcdef'] })));
  after(() => s.close());
  const target = () => `127.0.0.1:${s.srv.port}`;

  it('no credential → UNAUTHENTICATED, and no message reaches an exchange', async () => {
    const r = await processOnce(target(), insecure);
    assert.equal(r.code, grpc.status.UNAUTHENTICATED);
    assert.equal(r.replies, 0);
    assert.deepEqual(s.seen, { exchanges: 0, messages: 0 });
    assert.equal(s.denied.at(-1), 'missing_secret');
  });

  it('wrong secret → UNAUTHENTICATED (also a prefix of the right one, and an empty value)', async () => {
    for (const wrong of ['wrong-secret-0123456789abcdef0000', SECRET.slice(0, -1), '']) {
      const r = await processOnce(target(), insecure, { [AUTH_METADATA_KEY]: wrong });
      assert.equal(r.code, grpc.status.UNAUTHENTICATED, wrong);
    }
    assert.deepEqual(s.seen, { exchanges: 0, messages: 0 });
    assert.equal(s.denied.at(-1), 'wrong_secret');
  });

  it('right secret (current or previous, during a rotation) → the stream is served', async () => {
    for (const secret of [SECRET, 'previous-secret-0123456789abcdef']) {
      const r = await processOnce(target(), insecure, { [AUTH_METADATA_KEY]: secret });
      assert.equal(r.code, grpc.status.OK);
      assert.equal(r.replies, 1);
    }
    assert.equal(s.seen.exchanges, 2);
  });

  it('the health service stays open by default (Envoy grpc_health_check, kubelet probes)', async () => {
    assert.deepEqual(await health(target(), insecure), { code: 0, serving: true });
  });

  it('health: authenticated → the health service needs the secret too', async () => {
    const strict = await serve(kind, { sharedSecrets: [SECRET], health: 'authenticated' });
    try {
      const t = `127.0.0.1:${strict.srv.port}`;
      assert.equal((await health(t, insecure)).code, grpc.status.UNAUTHENTICATED);
      assert.deepEqual(await health(t, insecure, { [AUTH_METADATA_KEY]: SECRET }), { code: 0, serving: true });
    } finally {
      await strict.close();
    }
  });
});

describe(`ext_proc mTLS with allowed peer identities, ${kind} transport`, { timeout: 60_000 }, () => {
  let pki: Pki;
  let s: Server;
  before(async () => {
    pki = makePki();
    s = await serve(kind, { tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca }, allowedPeers: [ENVOY_ID] });
  });
  after(async () => {
    await s.close();
    pki.close();
  });
  // The server certificate names localhost; 127.0.0.1 is in its IP SANs too.
  const target = () => `localhost:${s.srv.port}`;
  const client = (name: string) => grpc.credentials.createSsl(pki.pem('ca.crt'), pki.pem(`${name}.key`), pki.pem(`${name}.crt`));

  it('a client certificate with an allowed identity (URI SAN) → served', async () => {
    const r = await processOnce(target(), client('envoy'));
    assert.equal(r.code, grpc.status.OK);
    assert.equal(r.replies, 1);
  });

  it('a certificate from the same CA with another identity → PERMISSION_DENIED before any message', async () => {
    const before = { ...s.seen };
    const r = await processOnce(target(), client('other'));
    assert.equal(r.code, grpc.status.PERMISSION_DENIED);
    assert.equal(r.replies, 0);
    assert.deepEqual(s.seen, before);
    assert.equal(s.denied.at(-1), 'peer_not_allowed');
  });

  it('no client certificate, or one from another CA → the TLS handshake fails (UNAVAILABLE)', async () => {
    const before = { ...s.seen };
    const noCert = await processOnce(target(), grpc.credentials.createSsl(pki.pem('ca.crt')));
    assert.equal(noCert.code, grpc.status.UNAVAILABLE);
    const rogue = await processOnce(target(), client('rogue'));
    assert.equal(rogue.code, grpc.status.UNAVAILABLE);
    const plaintext = await processOnce(target(), insecure);
    assert.equal(plaintext.code, grpc.status.UNAVAILABLE);
    assert.deepEqual(s.seen, before);
  });

  it('a DNS SAN can be allowed too; mTLS and the shared secret combine (both required)', async () => {
    const both = await serve(kind, { tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca }, allowedPeers: ['envoy.istio-system.svc'], sharedSecrets: [SECRET] });
    try {
      const t = `localhost:${both.srv.port}`;
      assert.equal((await processOnce(t, client('envoy'))).code, grpc.status.UNAUTHENTICATED);
      assert.equal((await processOnce(t, client('envoy'), { [AUTH_METADATA_KEY]: SECRET })).code, grpc.status.OK);
      assert.equal((await processOnce(t, client('other'), { [AUTH_METADATA_KEY]: SECRET })).code, grpc.status.PERMISSION_DENIED);
    } finally {
      await both.close();
    }
  });

  it('re-reads the CA and certificate files: a rotated CA applies without a restart', async () => {
    const ca = join(pki.dir, 'rotating-ca.crt');
    copyFileSync(pki.ca, ca);
    const rot = await serve(kind, { tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: ca, refreshMs: 100 }, allowedPeers: [ENVOY_ID] });
    try {
      const t = `localhost:${rot.srv.port}`;
      assert.equal((await processOnce(t, client('envoy'))).code, grpc.status.OK);
      assert.equal((await processOnce(t, client('rogue'))).code, grpc.status.UNAVAILABLE);
      copyFileSync(join(pki.dir, 'rogue-ca.crt'), ca);
      const deadline = Date.now() + 5000;
      while ((await processOnce(t, client('rogue'))).code !== grpc.status.OK) {
        assert.ok(Date.now() < deadline, 'the rotated CA was not picked up');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal((await processOnce(t, client('envoy'))).code, grpc.status.UNAVAILABLE);
    } finally {
      await rot.close();
    }
  });

  it('refuses mTLS without an allow-list, and an allow-list without mTLS', () => {
    assert.throws(() => buildGrpcAuth({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca } }), /ALLOWED_PEERS/);
    assert.throws(() => buildGrpcAuth({ sharedSecrets: [SECRET], allowedPeers: [ENVOY_ID] }), /needs mTLS/);
  });
});
}
