// Entry point: environment → Tollgate → signals. SIGTERM/SIGINT stop accepting, let in-flight
// streams finish within TOLLGATE_DRAIN_MS, flush lineage, exit 0.
import { defaultSpoolDir, startTollgate, type TollgateOptions } from './app.ts';
import { parseTeamAdminTokens } from './admin/index.ts';
import { readSecret, readSecretList } from './security/secrets.ts';
import { ConfigError, ConfigErrors } from './config/documents.ts';
import { securityFromEnv, SecurityConfigError } from './security/index.ts';
import { createLogger, logEnvProblems, logLevel } from './telemetry/log.ts';
import { applyHeapGrowth, heapGrowingPercent, HeapConfigError } from './heap.ts';
import type { TransportKind } from './extproc/h2/transport.ts';
import { perWorkerLineage, runPrimary, workerIndex, workerMetrics, workersFromEnv, WorkersConfigError } from './workers.ts';

/** A whole number ≥ min from the environment, undefined when unset; anything else refuses to start. */
function intFromEnv(name: string, min: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

/** TOLLGATE_GRPC_TRANSPORT: `h2` (default, Tollgate's own HTTP/2 layer) or `node` (node:http2); anything else refuses to start. */
function transportFromEnv(): TransportKind | undefined {
  const raw = process.env.TOLLGATE_GRPC_TRANSPORT;
  if (raw === undefined || raw === '') return undefined;
  if (raw !== 'h2' && raw !== 'node') throw new Error(`TOLLGATE_GRPC_TRANSPORT must be h2 or node, got ${JSON.stringify(raw)}`);
  return raw;
}

/** Managed keys and delegated admins (docs/keys.md). */
function keysFromEnv(): Pick<TollgateOptions, 'keyStore' | 'keyStoreOptions' | 'teamAdminTokens' | 'adminJwt'> {
  const kind = process.env.TOLLGATE_KEY_STORE || undefined;
  if (kind !== undefined && kind !== 'config' && kind !== 'redis') throw new Error(`TOLLGATE_KEY_STORE must be config or redis, got ${JSON.stringify(kind)}`);
  const jwtSecret = readSecret(process.env, 'TOLLGATE_ADMIN_JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) throw new Error('TOLLGATE_ADMIN_JWT_SECRET must be at least 32 characters');
  return {
    ...(kind ? { keyStore: kind } : {}),
    keyStoreOptions: {
      cacheTtlMs: intFromEnv('TOLLGATE_KEY_CACHE_TTL_MS', 100),
      staleMs: intFromEnv('TOLLGATE_KEY_STALE_MS', 0),
    },
    teamAdminTokens: parseTeamAdminTokens(readSecretList(process.env, 'TOLLGATE_TEAM_ADMIN_TOKENS')?.join(',')),
    ...(jwtSecret
      ? {
          adminJwt: {
            secret: jwtSecret,
            issuer: process.env.TOLLGATE_ADMIN_JWT_ISSUER || undefined,
            audience: process.env.TOLLGATE_ADMIN_JWT_AUDIENCE || undefined,
          },
        }
      : {}),
  };
}

export async function serve(): Promise<void> {
  const log = createLogger({ level: logLevel(), base: { service: 'tollgate' } });
  for (const p of logEnvProblems()) log.warn(p);
  try {
    applyHeapGrowth(heapGrowingPercent(process.env, process.execArgv));
  } catch (err) {
    if (!(err instanceof HeapConfigError)) throw err;
    log.fatal(`refusing to start: ${err.message}`);
    process.exit(1);
  }
  const drainMs = Number(process.env.TOLLGATE_DRAIN_MS ?? 10000);
  // TOLLGATE_WORKERS > 1: this process forks the workers and serves nothing itself (service/workers.ts).
  const worker = workerIndex();
  if (worker === undefined) {
    let workers: number;
    try {
      workers = workersFromEnv(process.env);
    } catch (err) {
      if (!(err instanceof WorkersConfigError)) throw err;
      log.fatal(`refusing to start: ${err.message}`);
      process.exit(1);
    }
    if (workers > 1) {
      await runPrimary(workers, log);
      log.info('stopped');
      log.flush();
      process.exit(0);
    }
  }
  let lineageSinks = (process.env.TOLLGATE_LINEAGE ?? 'stdout').split(',').map((s) => s.trim());
  let spoolDir = process.env.TOLLGATE_SPOOL_DIR ?? defaultSpoolDir();
  if (worker !== undefined) ({ sinks: lineageSinks, spoolDir } = perWorkerLineage(lineageSinks, spoolDir, worker));
  let app;
  try {
    const security = securityFromEnv(process.env);
    app = await startTollgate({
      configDir: process.env.TOLLGATE_CONFIG ?? './policies',
      grpcAddr: process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:50051',
      httpAddr: process.env.TOLLGATE_HTTP_ADDR ?? '127.0.0.1:9464',
      redisUrl: process.env.REDIS_URL || undefined,
      redisPrefix: process.env.TOLLGATE_REDIS_PREFIX || undefined,
      redisTimeoutMs: process.env.TOLLGATE_REDIS_TIMEOUT_MS ? Number(process.env.TOLLGATE_REDIS_TIMEOUT_MS) : undefined,
      lineageSinks,
      spoolDir,
      instance: process.env.TOLLGATE_INSTANCE,
      ...(worker !== undefined ? { metricsText: (m) => workerMetrics(m.registry) } : {}),
      otlpEndpoint: process.env.TOLLGATE_OTLP_ENDPOINT || undefined,
      mode: security.mode,
      grpcAuth: security.grpcAuth,
      planKeys: security.planKeys,
      planTtlMs: security.planTtlMs,
      adminTokens: security.adminTokens,
      spendApi: security.spendApi,
      ...keysFromEnv(),
      maxStreams: intFromEnv('TOLLGATE_MAX_STREAMS', 1),
      streamIdleTimeoutMs: intFromEnv('TOLLGATE_STREAM_IDLE_TIMEOUT_MS', 0),
      grpcTransport: transportFromEnv(),
      log,
    });
  } catch (err) {
    if (err instanceof ConfigErrors) {
      for (const e of err.errors) log.fatal(e.message);
      log.fatal(`config in ${process.env.TOLLGATE_CONFIG ?? './policies'} is invalid (${err.errors.length} problem(s)); not starting`);
    } else if (err instanceof ConfigError) log.fatal(`not starting: ${err.message}`);
    else if (err instanceof SecurityConfigError) log.fatal(`refusing to start: ${err.message}`);
    else log.fatal({ err }, 'tollgate failed to start');
    process.exit(1);
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig, activeStreams: app.extproc.active(), drainMs }, 'draining');
    app
      .close(drainMs)
      .then(() => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

// `node dist/main.js` (or `tsx service/main.ts`) runs the server; the CLI imports serve() instead.
if (/(service[\\/]main\.ts|dist[\\/]main\.js)$/.test(process.argv[1] ?? '')) void serve();
