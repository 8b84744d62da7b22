// What a Tollgate may start with, decided once at start-up from the run mode and the listeners.
// Refusals throw SecurityConfigError (main.ts exits 1); accepted weaknesses come back as warnings.
import { isLoopbackAddr } from './addresses.ts';
import { checkSecretStrength } from './secrets.ts';
import { SecurityConfigError, type RunMode } from './mode.ts';

export interface PostureInput {
  mode: RunMode;
  grpcAddr: string;
  httpAddr: string;
  /** A shared secret or mTLS authenticates the ext_proc peer. */
  grpcAuthenticated: boolean;
  sharedSecrets: readonly string[];
  mtlsAnyPeer: boolean;
  planKeys: readonly (string | Buffer)[];
  adminTokens: readonly string[];
  /** /v1/spend is published (TOLLGATE_SPEND_API=on); it then needs an admin token. */
  spendApi?: boolean;
}

export interface Posture {
  /** /readyz detail answers without a token (development, loopback listener, no token set). /v1/spend never does. */
  adminOpenWithoutToken: boolean;
  warnings: string[];
}

const HOW = 'set TOLLGATE_GRPC_SHARED_SECRET (Envoy sends it as grpc_service.initial_metadata x-tollgate-auth) or mTLS (TOLLGATE_GRPC_TLS_CERT/_KEY/_CA + TOLLGATE_GRPC_ALLOWED_PEERS); docs/security.md';

export function checkPosture(i: PostureInput): Posture {
  const prod = i.mode === 'production';
  const warnings: string[] = [];
  for (const s of i.sharedSecrets) checkSecretStrength('TOLLGATE_GRPC_SHARED_SECRET', s);
  for (const k of i.planKeys) if (typeof k === 'string') checkSecretStrength('TOLLGATE_PLAN_KEY', k, 32);
  for (const t of i.adminTokens) checkSecretStrength('TOLLGATE_ADMIN_TOKEN', t);

  if (!i.grpcAuthenticated) {
    if (prod) throw new SecurityConfigError(`production mode: the ext_proc port has no peer authentication; ${HOW}`);
    if (!isLoopbackAddr(i.grpcAddr))
      throw new SecurityConfigError(
        `the ext_proc port ${i.grpcAddr} is not loopback and has no peer authentication: whoever reaches it could forge caller identities and obtain provider credentials. Bind 127.0.0.1 or ${HOW}`,
      );
    warnings.push(
      `SECURITY: the ext_proc port ${i.grpcAddr} has NO peer authentication. Any local process can act as Envoy: forge jwt_authn claims for any tenant and obtain provider credentials. Allowed on loopback outside production only; ${HOW}`,
    );
  } else if (i.mtlsAnyPeer) warnings.push('SECURITY: TOLLGATE_GRPC_ALLOWED_PEERS=* accepts any client certificate the CA signed; list the Envoy identities instead');

  if (i.planKeys.length === 0) {
    if (prod) throw new SecurityConfigError('production mode: set TOLLGATE_PLAN_KEY (or _FILE), the same on every replica: it signs the fallback plan');
    warnings.push('TOLLGATE_PLAN_KEY is not set: fallback plans are signed with a per-process key, so an attempt served by another replica is refused (set it on every replica)');
  }

  // Spend per tenant, team and key is business data: published only on request, and only with a credential.
  if (i.spendApi && i.adminTokens.length === 0)
    throw new SecurityConfigError('TOLLGATE_SPEND_API=on needs TOLLGATE_ADMIN_TOKEN (or _FILE): /v1/spend is never served without a credential');
  const adminOpenWithoutToken = i.adminTokens.length === 0 && !prod && isLoopbackAddr(i.httpAddr);
  if (adminOpenWithoutToken)
    warnings.push(`SECURITY: /readyz detail on ${i.httpAddr} needs no credential (development mode, loopback, no TOLLGATE_ADMIN_TOKEN)`);
  else if (i.adminTokens.length === 0) warnings.push('TOLLGATE_ADMIN_TOKEN is not set: /readyz shows status only');
  return { adminOpenWithoutToken, warnings };
}
