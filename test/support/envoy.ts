// A real Envoy in front of Tollgate for end-to-end tests: the shipped envoy/envoy.yaml rendered for
// loopback (service/envoy/render.ts), run as a child process. Which binary: TOLLGATE_TEST_ENVOY_BIN
// (set by test/run.ts for each pinned version), else ENVOY_BIN / PATH / the project cache for the
// default pinned version (service/envoy/provision.ts) — never a silent skip.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findEnvoy, REPO_ROOT, envoyVersion } from '../../service/envoy/provision.ts';
import { renderEnvoyConfig, type RenderChain, type RenderCluster, type RenderOptions, type RenderProcessingMode, type RenderRetry } from '../../service/envoy/render.ts';
import { startEnvoyProcess, type EnvoyProcess } from '../../service/envoy/process.ts';

export const SHIPPED_ENVOY_YAML = join(REPO_ROOT, 'envoy', 'envoy.yaml');

export interface EnvoyFrontOptions {
  /** Tollgate gRPC addresses (host:port); several = replicas behind the `tollgate` cluster. */
  extProcAddrs: string[];
  clusters: Record<string, RenderCluster>;
  chains?: Record<string, RenderChain>;
  messageTimeoutMs?: number;
  maxMessageTimeoutMs?: number;
  failureModeAllow?: boolean;
  allowModeOverride?: boolean;
  bufferLimitBytes?: number;
  upstreamTimeoutMs?: number;
  /** gRPC initial metadata on every ext_proc stream. */
  extProcMetadata?: Record<string, string>;
  /** The processor's shared secret, filled into the shipped `${TOLLGATE_GRPC_SHARED_SECRET}` placeholders. */
  sharedSecret?: string;
  /** The router-level ext_proc filter's processing_mode fields to replace. */
  processingMode?: RenderProcessingMode;
  /** The chain clusters' upstream ext_proc filter settings to replace. */
  upstreamExtProc?: RenderOptions['upstreamExtProc'];
  /** The chain route's retry_policy fields to replace. */
  retry?: RenderRetry;
  /** Switch on the shipped jwt_authn block with an HS256 key (JWKS kty "oct") and this issuer/audience. */
  jwt?: { secret: string; issuer: string; audiences: string[] };
  /** Another source config (default envoy/envoy.yaml). */
  source?: string;
  logLevel?: string;
  args?: string[];
}

/** One line of the shipped access log (json_format), parsed. */
export type AccessLogEntry = Record<string, string | number | null>;

export interface EnvoyFront {
  port: number;
  url: string;
  adminUrl: string;
  version: string;
  /** Access log entries written so far (Envoy writes them when a request ends). */
  accessLog: AccessLogEntry[];
  /** The rendered config, for failure messages. */
  config: string;
  /** Envoy's counters and gauges (admin /stats), by name. */
  stats(filter?: string): Promise<Record<string, number>>;
  /** Envoy's own log so far. */
  log(): string;
  close(): Promise<void>;
}

let cached: Promise<{ path: string; version: string }> | undefined;

export function testEnvoyBinary(): Promise<{ path: string; version: string }> {
  cached ??= (async () => {
    const bin = process.env.TOLLGATE_TEST_ENVOY_BIN;
    if (bin) return { path: bin, version: await envoyVersion(bin) };
    const found = await findEnvoy({ install: true });
    return { path: found.path, version: found.version };
  })();
  return cached;
}

export function hs256Jwks(secret: string): string {
  return JSON.stringify({ keys: [{ kty: 'oct', alg: 'HS256', kid: 'test', k: Buffer.from(secret).toString('base64url') }] });
}

export async function startEnvoy(opts: EnvoyFrontOptions): Promise<EnvoyFront> {
  const bin = await testEnvoyBinary();
  const source = readFileSync(opts.source ?? SHIPPED_ENVOY_YAML, 'utf8');
  const config = renderEnvoyConfig(source, {
    listener: { address: '127.0.0.1', port: 0 },
    admin: { address: '127.0.0.1', port: 0 },
    tollgate: opts.extProcAddrs.map((a) => {
      const i = a.lastIndexOf(':');
      return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
    }),
    clusters: opts.clusters,
    ...(opts.chains ? { chains: opts.chains } : {}),
    extProc: {
      ...(opts.messageTimeoutMs !== undefined ? { messageTimeoutMs: opts.messageTimeoutMs } : {}),
      ...(opts.maxMessageTimeoutMs !== undefined ? { maxMessageTimeoutMs: opts.maxMessageTimeoutMs } : {}),
      ...(opts.failureModeAllow !== undefined ? { failureModeAllow: opts.failureModeAllow } : {}),
      ...(opts.allowModeOverride !== undefined ? { allowModeOverride: opts.allowModeOverride } : {}),
      ...(opts.extProcMetadata ? { initialMetadata: opts.extProcMetadata } : {}),
      ...(opts.processingMode ? { processingMode: opts.processingMode } : {}),
    },
    ...(opts.upstreamExtProc ? { upstreamExtProc: opts.upstreamExtProc } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.bufferLimitBytes !== undefined ? { bufferLimitBytes: opts.bufferLimitBytes } : {}),
    ...(opts.upstreamTimeoutMs !== undefined ? { routeTimeoutMs: opts.upstreamTimeoutMs } : {}),
    ...(opts.sharedSecret !== undefined ? { sharedSecret: opts.sharedSecret } : {}),
    ...(opts.jwt ? { jwt: { jwks: hs256Jwks(opts.jwt.secret), issuer: opts.jwt.issuer, audiences: opts.jwt.audiences } } : {}),
  });
  const accessLog: AccessLogEntry[] = [];
  let proc: EnvoyProcess;
  try {
    proc = await startEnvoyProcess({
      bin: bin.path,
      config,
      logLevel: opts.logLevel ?? process.env.TOLLGATE_TEST_ENVOY_LOG_LEVEL ?? 'warning',
      // Access log lines are flushed every 50 ms (default 1 s), so tests can wait for them.
      args: ['--file-flush-interval-msec', '50', ...(opts.args ?? [])],
      onStdout: (l) => {
        if (!l.startsWith('{')) return;
        try {
          accessLog.push(JSON.parse(l) as AccessLogEntry);
        } catch {
          /* not an access log line */
        }
      },
      ...(process.env.TOLLGATE_TEST_ENVOY_LOG ? { onStderr: (l: string) => process.stderr.write(`[envoy] ${l}\n`) } : {}),
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- rendered config ---\n${config}`);
  }
  return {
    port: proc.port,
    url: `http://127.0.0.1:${proc.port}`,
    adminUrl: proc.adminUrl,
    version: bin.version,
    accessLog,
    config,
    async stats(filter) {
      const q = filter ? `&filter=${encodeURIComponent(filter)}` : '';
      const body = (await (await fetch(`${proc.adminUrl}/stats?format=json${q}`)).json()) as { stats: { name: string; value?: number }[] };
      const out: Record<string, number> = {};
      for (const s of body.stats) if (typeof s.value === 'number') out[s.name] = s.value;
      return out;
    },
    log: () => proc.stderr(),
    close: () => proc.stop(),
  };
}

/** ext_proc counters that mean Envoy refused or lost something Tollgate sent. */
export const EXT_PROC_TROUBLE = [
  'rejected_header_mutations',
  'spurious_msgs_received',
  'streams_failed',
  'message_timeouts',
  'failure_mode_allowed',
  'clear_route_cache_ignored',
  'clear_route_cache_disabled',
] as const;

/** Nonzero EXT_PROC_TROUBLE counters of every ext_proc filter (router-level and upstream), by stat name. */
export async function extProcTrouble(envoy: EnvoyFront): Promise<Record<string, number>> {
  const stats = await envoy.stats('ext_proc');
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(stats)) if (v > 0 && EXT_PROC_TROUBLE.some((t) => name.endsWith(`.${t}`))) out[name] = v;
  return out;
}
