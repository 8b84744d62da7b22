// A throwaway certificate authority for tests: a CA and leaf certificates for given DNS names,
// made with the openssl CLI into a temp directory (nothing is committed). Envoy trusts the CA
// file; fake providers serve the leaves.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  caFile: string;
  /** A key + certificate for `name` (SAN DNS:name), signed by the CA. */
  leaf(name: string): { key: string; cert: string; keyFile: string; certFile: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Tollgate test CA', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  const made = new Map<string, ReturnType<TestCa['leaf']>>();
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    leaf(name) {
      const have = made.get(name);
      if (have) return have;
      const base = name.replace(/[^a-z0-9.-]/gi, '_');
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`], dir);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.crt`], dir);
      const out = {
        keyFile: join(dir, `${base}.key`),
        certFile: join(dir, `${base}.crt`),
        key: readFileSync(join(dir, `${base}.key`), 'utf8'),
        cert: readFileSync(join(dir, `${base}.crt`), 'utf8'),
      };
      made.set(name, out);
      return out;
    },
  };
}
