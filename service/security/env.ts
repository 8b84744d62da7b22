// Environment → security options (README "Security" table, docs/security.md).
import type { GrpcAuthOptions } from './grpc-auth.ts';
import { modeFromEnv, SecurityConfigError, type RunMode } from './mode.ts';
import { readSecretList } from './secrets.ts';

export interface SecuritySettings {
  mode: RunMode;
  grpcAuth?: GrpcAuthOptions;
  /** First signs, the rest only verify (rotation). */
  planKeys?: string[];
  planTtlMs?: number;
  adminTokens?: string[];
  /** TOLLGATE_SPEND_API=on publishes /v1/spend (admin credential required). Default off. */
  spendApi?: boolean;
}

export function securityFromEnv(env: NodeJS.ProcessEnv): SecuritySettings {
  const sharedSecrets = readSecretList(env, 'TOLLGATE_GRPC_SHARED_SECRET');
  const cert = env.TOLLGATE_GRPC_TLS_CERT || undefined;
  const key = env.TOLLGATE_GRPC_TLS_KEY || undefined;
  const ca = env.TOLLGATE_GRPC_TLS_CA || undefined;
  if (Boolean(cert) !== Boolean(key)) throw new SecurityConfigError('set TOLLGATE_GRPC_TLS_CERT and TOLLGATE_GRPC_TLS_KEY together');
  if (ca && !cert) throw new SecurityConfigError('TOLLGATE_GRPC_TLS_CA needs TOLLGATE_GRPC_TLS_CERT and TOLLGATE_GRPC_TLS_KEY (the server certificate)');
  const allowedPeers = env.TOLLGATE_GRPC_ALLOWED_PEERS?.split(',').map((s) => s.trim()).filter(Boolean);
  const health = env.TOLLGATE_GRPC_HEALTH_AUTH?.trim();
  if (health && health !== 'open' && health !== 'authenticated')
    throw new SecurityConfigError(`TOLLGATE_GRPC_HEALTH_AUTH must be "open" or "authenticated", not ${JSON.stringify(health)}`);
  const grpcAuth: GrpcAuthOptions = {
    ...(sharedSecrets ? { sharedSecrets } : {}),
    ...(cert && key ? { tls: { certFile: cert, keyFile: key, ...(ca ? { caFile: ca } : {}), ...(env.TOLLGATE_GRPC_TLS_REFRESH_MS ? { refreshMs: positive(env, 'TOLLGATE_GRPC_TLS_REFRESH_MS') } : {}) } } : {}),
    ...(allowedPeers?.length ? { allowedPeers } : {}),
    ...(health ? { health: health as 'open' | 'authenticated' } : {}),
  };
  return {
    mode: modeFromEnv(env),
    ...(Object.keys(grpcAuth).length ? { grpcAuth } : {}),
    planKeys: readSecretList(env, 'TOLLGATE_PLAN_KEY'),
    planTtlMs: env.TOLLGATE_PLAN_TTL_MS ? positive(env, 'TOLLGATE_PLAN_TTL_MS') : undefined,
    adminTokens: readSecretList(env, 'TOLLGATE_ADMIN_TOKEN'),
    spendApi: onOff(env, 'TOLLGATE_SPEND_API'),
  };
}

function onOff(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'off') return false;
  if (v === 'on') return true;
  throw new SecurityConfigError(`${name} must be "on" or "off", not ${JSON.stringify(env[name])}`);
}

function positive(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!Number.isInteger(n) || n <= 0) throw new SecurityConfigError(`${name} must be a positive integer (milliseconds)`);
  return n;
}
