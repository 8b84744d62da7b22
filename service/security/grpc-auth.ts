// Peer authentication for the ext_proc gRPC port. Two mechanisms, usable together:
//  - mTLS: clients must present a certificate signed by TOLLGATE_GRPC_TLS_CA whose URI/DNS SAN is in
//    the allow-list (Envoy: transport_socket with an UpstreamTlsContext on the `tollgate` cluster);
//  - a shared secret Envoy sends as gRPC initial metadata `x-tollgate-auth`
//    (grpc_service.initial_metadata on both ext_proc filters).
// Checks run in a server interceptor on the call's metadata, before the handler starts: a refused
// stream never reaches a Processor, so none of its messages is read.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { PeerAllowList } from './peer-identity.ts';
import { SecretSet } from './secrets.ts';
import { SecurityConfigError } from './mode.ts';

/** gRPC metadata key carrying the shared secret (Envoy: grpc_service.initial_metadata). */
export const AUTH_METADATA_KEY = 'x-tollgate-auth';
const HEALTH_SERVICE_PREFIX = '/grpc.health.v1.Health/';

export interface GrpcTlsOptions {
  certFile: string;
  keyFile: string;
  /** CA bundle for client certificates: set → mTLS (a client certificate signed by it is required). */
  caFile?: string;
  /** How often the files are re-read, so rotated certificates apply without a restart (default 60 s). */
  refreshMs?: number;
}

export interface GrpcAuthOptions {
  /** Accepted values of `x-tollgate-auth`; several during a rotation. */
  sharedSecrets?: string[];
  tls?: GrpcTlsOptions;
  /** mTLS: client certificate identities allowed (URI SANs with `://`, else DNS SANs); `*` = any the CA signed. */
  allowedPeers?: string[];
  /**
   * `open` (default): grpc.health.v1.Health answers without the secret or an allowed identity (it
   * tells only SERVING / NOT_SERVING; the TLS handshake still applies). `authenticated`: like ext_proc.
   */
  health?: 'open' | 'authenticated';
}

export type AuthFailure = 'missing_secret' | 'wrong_secret' | 'no_peer_certificate' | 'peer_not_allowed';

export interface GrpcAuth {
  credentials: grpc.ServerCredentials;
  interceptors: grpc.ServerInterceptor[];
  /** Something authenticates the peer: a shared secret, or mTLS. */
  authenticated: boolean;
  /** For the start-up log; never contains a secret. */
  summary: string;
  /** Resolves once TLS material is loaded (immediately without TLS). */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Called for every refused stream (metrics, throttled logging). */
export type DeniedHook = (reason: AuthFailure, method: string, peer: string) => void;

export function buildGrpcAuth(opts: GrpcAuthOptions | undefined, onDenied?: DeniedHook): GrpcAuth {
  const secrets = opts?.sharedSecrets?.length ? new SecretSet(opts.sharedSecrets) : undefined;
  const tls = opts?.tls;
  const mtls = Boolean(tls?.caFile);
  if (opts?.allowedPeers?.length && !mtls)
    throw new SecurityConfigError('TOLLGATE_GRPC_ALLOWED_PEERS needs mTLS (TOLLGATE_GRPC_TLS_CERT, _KEY and _CA)');
  if (mtls && !opts?.allowedPeers?.length)
    throw new SecurityConfigError(
      'mTLS needs TOLLGATE_GRPC_ALLOWED_PEERS: in a mesh the CA signs every workload, so list the Envoy identities (or `*` to accept any certificate the CA signed)',
    );
  const peers = mtls ? new PeerAllowList(opts!.allowedPeers!) : undefined;
  const openHealth = (opts?.health ?? 'open') === 'open';

  const material = tls ? loadTls(tls) : undefined;
  const interceptors: grpc.ServerInterceptor[] = [];
  if (secrets || peers) interceptors.push(authInterceptor({ secrets, peers, openHealth, onDenied }));

  const parts: string[] = [];
  if (tls) parts.push(mtls ? `mTLS (${peers!.allowsAny ? 'any certificate the CA signed' : `${opts!.allowedPeers!.length} allowed identities`})` : 'TLS without client certificates');
  if (secrets) parts.push(`shared secret in ${AUTH_METADATA_KEY} (${secrets.size} accepted)`);
  if (!secrets && !mtls) parts.push('NO peer authentication');
  if ((secrets || mtls) && openHealth) parts.push('health service open');

  return {
    credentials: material?.credentials ?? grpc.ServerCredentials.createInsecure(),
    interceptors,
    authenticated: Boolean(secrets) || mtls,
    summary: parts.join(', '),
    ready: material?.ready ?? (() => Promise.resolve()),
    close: material?.close ?? (() => undefined),
  };
}

function authInterceptor(o: { secrets?: SecretSet; peers?: PeerAllowList; openHealth: boolean; onDenied?: DeniedHook }): grpc.ServerInterceptor {
  return (method, call) => {
    if (o.openHealth && method.path.startsWith(HEALTH_SERVICE_PREFIX)) return new grpc.ServerInterceptingCall(call);
    const deny = (reason: AuthFailure, code: grpc.status, details: string): void => {
      o.onDenied?.(reason, method.path, call.getPeer());
      call.sendStatus({ code, details });
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((md, next) => {
        if (o.peers) {
          const cert = call.getAuthContext().sslPeerCertificate;
          if (!cert || Object.keys(cert).length === 0) return deny('no_peer_certificate', grpc.status.UNAUTHENTICATED, 'client certificate required');
          if (!o.peers.allows(cert)) return deny('peer_not_allowed', grpc.status.PERMISSION_DENIED, 'client certificate identity is not allowed');
        }
        if (o.secrets) {
          const presented = md.get(AUTH_METADATA_KEY);
          if (presented.length === 0) return deny('missing_secret', grpc.status.UNAUTHENTICATED, `missing ${AUTH_METADATA_KEY} metadata`);
          if (presented.length !== 1 || !o.secrets.matches(presented[0])) return deny('wrong_secret', grpc.status.UNAUTHENTICATED, `wrong ${AUTH_METADATA_KEY} metadata`);
          // The handler never needs it; keep it out of anything downstream of here.
          md.remove(AUTH_METADATA_KEY);
        }
        next(md);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, new grpc.ResponderBuilder().withStart((next) => next(listener)).build());
  };
}

interface TlsMaterial {
  credentials: grpc.ServerCredentials;
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
}

function loadTls(t: GrpcTlsOptions): TlsMaterial {
  // Fail at start-up on unreadable or mismatched files, not on the first handshake.
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SecurityConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const cert = read('TOLLGATE_GRPC_TLS_CERT', t.certFile);
  const key = read('TOLLGATE_GRPC_TLS_KEY', t.keyFile);
  const ca = t.caFile ? read('TOLLGATE_GRPC_TLS_CA', t.caFile) : undefined;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw new SecurityConfigError(`TOLLGATE_GRPC_TLS_*: ${(err as Error).message}`);
  }
  if (!t.caFile) {
    return {
      credentials: grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false),
      ready: () => Promise.resolve(),
      close: () => undefined,
    };
  }
  // mTLS: re-read the files periodically (cert-manager / SPIRE rotate short-lived certificates).
  // One provider serves both the identity and the CA.
  const provider = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: t.certFile,
    privateKeyFile: t.keyFile,
    caCertificateFile: t.caFile,
    refreshIntervalMs: t.refreshMs ?? 60_000,
  });
  let loaded = false;
  const waiters: (() => void)[] = [];
  const onIdentity: grpc.experimental.IdentityCertificateUpdateListener = (u) => {
    if (!u || loaded) return;
    loaded = true;
    for (const w of waiters.splice(0)) w();
  };
  return {
    credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true),
    ready: (timeoutMs = 5000) =>
      new Promise<void>((resolve, reject) => {
        provider.addIdentityCertificateListener(onIdentity);
        if (loaded) return resolve();
        const timer = setTimeout(() => reject(new SecurityConfigError('TLS certificates did not load in time')), timeoutMs);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    close: () => provider.removeIdentityCertificateListener(onIdentity),
  };
}
