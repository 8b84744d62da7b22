// Peer authentication for the ext_proc gRPC port. Two mechanisms, usable together:
//  - mTLS: clients must present a certificate signed by TOLLGATE_GRPC_TLS_CA whose URI/DNS SAN is in
//    the allow-list (Envoy: transport_socket with an UpstreamTlsContext on the `tollgate` cluster);
//  - a shared secret Envoy sends as gRPC initial metadata `x-tollgate-auth`
//    (grpc_service.initial_metadata on both ext_proc filters).
// The transport (extproc/h2/transport.ts) calls check() with each new stream's request headers,
// before any handler runs: a refused stream never reaches a Processor, so none of its messages is read.
import { readFileSync } from 'node:fs';
import type { SecureServerOptions } from 'node:http2';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { HEALTH_SERVICE_PREFIX } from '../extproc/h2/health.ts';
import { Status, type StatusCode } from '../extproc/h2/status.ts';
import type { PeerSession, RequestHeaders } from '../extproc/h2/stream.ts';
import { PeerAllowList } from './peer-identity.ts';
import { SecretSet } from './secrets.ts';
import { SecurityConfigError } from './mode.ts';

/** gRPC metadata key carrying the shared secret (Envoy: grpc_service.initial_metadata). */
export const AUTH_METADATA_KEY = 'x-tollgate-auth';

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

/** Why a new stream is refused: the gRPC status it ends with. */
export interface StreamRefusal {
  code: StatusCode;
  detail: string;
}

/** TLS for the ext_proc port (node:http2 secure server). */
export interface GrpcTlsServer {
  /** Options for http2.createSecureServer: certificate, key, and the client certificate policy. */
  options: SecureServerOptions;
  /** Registers the server for rotated material: called with new context options when the files change. */
  onReload(apply: (ctx: SecureContextOptions) => void): void;
}

export interface GrpcAuth {
  /** Unset: plaintext. */
  tls?: GrpcTlsServer;
  /** The refusal for a new stream to `path` with these request headers on this session, or undefined to serve it. */
  check(path: string, headers: RequestHeaders, session: PeerSession): StreamRefusal | undefined;
  /** Something authenticates the peer: a shared secret, or mTLS. */
  authenticated: boolean;
  /** For the start-up log; never contains a secret. */
  summary: string;
  /** Resolves once TLS material is loaded (immediately: it is read at build time). */
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

  const material = tls ? loadTls(tls, mtls) : undefined;
  const check = secrets || peers ? streamCheck({ secrets, peers, openHealth, onDenied }) : () => undefined;

  const parts: string[] = [];
  if (tls) parts.push(mtls ? `mTLS (${peers!.allowsAny ? 'any certificate the CA signed' : `${opts!.allowedPeers!.length} allowed identities`})` : 'TLS without client certificates');
  if (secrets) parts.push(`shared secret in ${AUTH_METADATA_KEY} (${secrets.size} accepted)`);
  if (!secrets && !mtls) parts.push('NO peer authentication');
  if ((secrets || mtls) && openHealth) parts.push('health service open');

  return {
    ...(material ? { tls: material.server } : {}),
    check,
    authenticated: Boolean(secrets) || mtls,
    summary: parts.join(', '),
    ready: () => Promise.resolve(),
    close: material?.close ?? (() => undefined),
  };
}

/** The peer as grpc-js reported it (`address:port`), for the denial hook. */
function peerOf(session: PeerSession): string {
  const s = session.socket;
  const addr = s?.remoteAddress ?? 'unknown';
  return `${addr.includes(':') ? `[${addr}]` : addr}:${s?.remotePort ?? 0}`;
}

function streamCheck(o: { secrets?: SecretSet; peers?: PeerAllowList; openHealth: boolean; onDenied?: DeniedHook }): GrpcAuth['check'] {
  // The peer certificate cannot change within a session: decide once per session.
  const peerVerdicts = new WeakMap<PeerSession, StreamRefusal & { reason: AuthFailure } | null>();
  const peerVerdict = (session: PeerSession): (StreamRefusal & { reason: AuthFailure }) | null => {
    let v = peerVerdicts.get(session);
    if (v !== undefined) return v;
    const cert = (session.socket as TLSSocket).getPeerCertificate?.();
    if (!cert || Object.keys(cert).length === 0) v = { reason: 'no_peer_certificate', code: Status.UNAUTHENTICATED, detail: 'client certificate required' };
    else if (!o.peers!.allows(cert)) v = { reason: 'peer_not_allowed', code: Status.PERMISSION_DENIED, detail: 'client certificate identity is not allowed' };
    else v = null;
    peerVerdicts.set(session, v);
    return v;
  };
  const deny = (reason: AuthFailure, code: StatusCode, detail: string, path: string, session: PeerSession): StreamRefusal => {
    o.onDenied?.(reason, path, peerOf(session));
    return { code, detail };
  };
  return (path, headers, session) => {
    if (o.openHealth && path.startsWith(HEALTH_SERVICE_PREFIX)) return undefined;
    if (o.peers) {
      const v = peerVerdict(session);
      if (v) return deny(v.reason, v.code, v.detail, path, session);
    }
    if (o.secrets) {
      const presented = headers[AUTH_METADATA_KEY];
      if (presented === undefined) return deny('missing_secret', Status.UNAUTHENTICATED, `missing ${AUTH_METADATA_KEY} metadata`, path, session);
      if (typeof presented !== 'string' || !o.secrets.matches(presented)) return deny('wrong_secret', Status.UNAUTHENTICATED, `wrong ${AUTH_METADATA_KEY} metadata`, path, session);
      // The handler never needs it; keep it out of anything downstream of here.
      delete headers[AUTH_METADATA_KEY];
    }
    return undefined;
  };
}

interface TlsMaterial {
  server: GrpcTlsServer;
  close(): void;
}

interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

function readTlsFiles(t: GrpcTlsOptions): TlsFiles {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SecurityConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const files: TlsFiles = { cert: read('TOLLGATE_GRPC_TLS_CERT', t.certFile), key: read('TOLLGATE_GRPC_TLS_KEY', t.keyFile) };
  if (t.caFile) files.ca = read('TOLLGATE_GRPC_TLS_CA', t.caFile);
  try {
    createSecureContext(files);
  } catch (err) {
    throw new SecurityConfigError(`TOLLGATE_GRPC_TLS_*: ${(err as Error).message}`);
  }
  return files;
}

const sameFiles = (a: TlsFiles, b: TlsFiles): boolean => a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca && b.ca ? a.ca.equals(b.ca) : a.ca === b.ca);

function loadTls(t: GrpcTlsOptions, mtls: boolean): TlsMaterial {
  // Fail at start-up on unreadable or mismatched files, not on the first handshake.
  let current = readTlsFiles(t);
  const appliers: ((ctx: SecureContextOptions) => void)[] = [];
  // Re-read the files periodically (cert-manager / SPIRE rotate short-lived certificates); new
  // connections get the new material. A file that is unreadable or does not match its key mid-rotation
  // keeps the last good material until the next read.
  const timer = setInterval(() => {
    let next: TlsFiles;
    try {
      next = readTlsFiles(t);
    } catch {
      return;
    }
    if (sameFiles(current, next)) return;
    current = next;
    for (const apply of appliers) apply(next);
  }, t.refreshMs ?? 60_000);
  timer.unref();
  return {
    server: {
      options: { ...current, requestCert: mtls, rejectUnauthorized: mtls, ALPNProtocols: ['h2'] },
      onReload: (apply) => void appliers.push(apply),
    },
    close: () => clearInterval(timer),
  };
}
