// A throwaway PKI generated at test time with the openssl CLI (nothing private is committed):
// a CA, Tollgate's server certificate (localhost / 127.0.0.1), client certificates with SPIFFE
// URI SANs, and a client certificate from an unrelated CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ENVOY_ID = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway';
export const OTHER_ID = 'spiffe://cluster.local/ns/default/sa/some-workload';

export interface Pki {
  dir: string;
  /** File paths. */
  ca: string;
  serverCert: string;
  serverKey: string;
  /** PEM contents, for grpc-js client credentials. */
  pem(name: string): Buffer;
  /** Client `name` (envoy, other, rogue): its cert and key files are `${name}.crt` / `${name}.key`. */
  close(): void;
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 10_000 });
}

function ca(dir: string, name: string): void {
  ossl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-subj', `/CN=${name}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function leaf(dir: string, name: string, issuer: string, san: string, usage: 'serverAuth' | 'clientAuth'): void {
  ossl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
  ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-pki-'));
  ca(dir, 'ca');
  ca(dir, 'rogue-ca');
  leaf(dir, 'server', 'ca', 'DNS:localhost,IP:127.0.0.1', 'serverAuth');
  leaf(dir, 'envoy', 'ca', `URI:${ENVOY_ID},DNS:envoy.istio-system.svc`, 'clientAuth');
  leaf(dir, 'other', 'ca', `URI:${OTHER_ID}`, 'clientAuth');
  leaf(dir, 'rogue', 'rogue-ca', `URI:${ENVOY_ID}`, 'clientAuth');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    pem: (name) => readFileSync(join(dir, name)),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
