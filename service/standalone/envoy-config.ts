// The Envoy config `tollgate run` starts: the shipped envoy/envoy.yaml rendered by service/envoy/render.ts
// (one source of truth for routes, filters and ext_proc settings) with the listener where the user asked,
// Tollgate on loopback behind the shared secret, the loopback upstreams' clusters added, and the real
// provider clusters kept as shipped, so a provider credential in the environment reaches the real provider.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../envoy/provision.ts';
import { renderEnvoyConfig, type RenderCluster } from '../envoy/render.ts';

/** The CA bundle the shipped file names, and where other systems keep theirs. */
const SHIPPED_CA = '/etc/ssl/certs/ca-certificates.crt';
const CA_CANDIDATES = [SHIPPED_CA, '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem', '/etc/ssl/ca-bundle.pem'];

export interface StandaloneEnvoyOptions {
  listener: { address: string; port: number };
  tollgatePort: number;
  sharedSecret: string;
  /** Loopback clusters (plain HTTP), copied from the shipped `local_llm` cluster. */
  loopback: Record<string, { host: string; port: number }>;
  /** Another source than envoy/envoy.yaml (tests). */
  source?: string;
}

export interface StandaloneEnvoyConfig {
  yaml: string;
  /** Unset when the real provider clusters could not be kept (no system CA bundle to verify them). */
  caBundle: string | undefined;
}

export function standaloneEnvoyConfig(opts: StandaloneEnvoyOptions): StandaloneEnvoyConfig {
  let source = opts.source ?? readFileSync(join(REPO_ROOT, 'envoy', 'envoy.yaml'), 'utf8');
  const caBundle = CA_CANDIDATES.find((p) => existsSync(p));
  if (caBundle && caBundle !== SHIPPED_CA) source = source.split(SHIPPED_CA).join(caBundle);
  const clusters: Record<string, RenderCluster> = {};
  for (const [name, u] of Object.entries(opts.loopback)) clusters[name] = { host: u.host, port: u.port, template: 'local_llm' };
  const yaml = renderEnvoyConfig(source, {
    listener: opts.listener,
    admin: { address: '127.0.0.1', port: 0 },
    tollgate: [{ host: '127.0.0.1', port: opts.tollgatePort }],
    clusters,
    // Real provider clusters stay (TLS to the real hosts) unless they cannot verify anything.
    dropUnlisted: caBundle === undefined,
    sharedSecret: opts.sharedSecret,
  });
  return { yaml, caBundle };
}
