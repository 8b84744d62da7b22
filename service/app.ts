// Assembles a running Tollgate: config holder, long-lived services, the ext_proc gRPC server and the
// telemetry HTTP server. main.ts calls it with settings from the environment; tests call it directly.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { BudgetManager, createBudgetStore, RedisStore, type BudgetStore } from './budget/index.ts';
import { budgetPort, redactionPort } from './gateway/adapters.ts';
import { ConfigHolder } from './config/holder.ts';
import type { Services } from './gateway/context.ts';
import { GatewayExchange } from './gateway/exchange.ts';
import { DispatchExchange } from './mcp/dispatch.ts';
import { McpExchange } from './mcp/exchange.ts';
import { UpstreamExchange, type UpstreamServices } from './gateway/upstream-exchange.ts';
import { AttemptLog } from './fallback/attempts.ts';
import { PendingOutcomes } from './gateway/outcome.ts';
import type { LineagePort, OutcomeConsumer, RedactionPort } from './gateway/ports.ts';
import type { TransportKind } from './extproc/h2/transport.ts';
import { messageCapFor, startExtProcServer, type ExtProcServer } from './extproc/server.ts';
import { LineageEmitter } from './lineage/emitter.ts';
import type { LineageRecord } from './lineage/record.ts';
import type { LineageSink } from './lineage/sinks.ts';
import { FileSink, StdoutSink } from './lineage/sinks.ts';
import { RedisSink } from './lineage/redis-sink.ts';
import { BUILTIN_DETECTOR_NAMES, RedactorCache } from './redaction/index.ts';
import { createOtlpExporter } from './telemetry/otlp.ts';
import { HealthTracker } from './routing/index.ts';
import { startTelemetryServer, type TelemetryServer } from './telemetry/http.ts';
import { PlanSealer, processPlanKey } from './fallback/seal.ts';
import { adminGuard, buildGrpcAuth, checkPosture, modeFromEnv, throttledDenials, type GrpcAuthOptions, type RunMode } from './security/index.ts';
import { createMetrics, statusLabel, type Metrics } from './telemetry/metrics.ts';
import { adminAuth, mountAdmin, type AdminJwtOptions, type LineageSource } from './admin/index.ts';
import { CompositeKeyStore } from './identity/keys.ts';
import { RedisKeyStore, type RedisKeyStoreOptions } from './identity/redis-key-store.ts';
import type { Snapshot } from './gateway/context.ts';
import { RequestMetricsConsumer } from './telemetry/request-metrics.ts';
import { o200k } from './budget/tokenizer.ts';

export interface TollgateOptions {
  configDir: string;
  grpcAddr: string;
  httpAddr: string;
  /** Unset → in-process budget store (the embedded default). */
  redisUrl?: string;
  /** Key prefix for budget state in Redis (default `tg`): separates gateways sharing one Redis. */
  redisPrefix?: string;
  /** Per-command Redis timeout for budgets, ms (default 150): past it, the budget's onStoreError mode decides. */
  redisTimeoutMs?: number;
  /** Builds the /metrics body from this process's metrics (TOLLGATE_WORKERS: summed over workers, service/workers.ts). */
  metricsText?: (metrics: Metrics) => () => Promise<string>;
  /** Lineage sinks: `stdout`, `file:<path>`, `redis`, or `none`. */
  lineageSinks?: string[];
  /** Durable spool for lineage sinks. */
  spoolDir?: string;
  log?: Logger;
  now?: () => Date;
  /** Watch the config directory and hot-reload it (default true). */
  watchConfig?: boolean;
  instance?: string;
  /** Secret for keyed-hash redaction (per-tenant keys are derived from it). */
  redactionSecret?: string;
  /** OTLP/HTTP JSON endpoint for one span per request (optional). */
  otlpEndpoint?: string;
  /** Validate every lineage record against the proto schema (tests). */
  validateLineage?: boolean;
  /**
   * `production` refuses to start without ext_proc peer authentication and a plan key. Unset: from
   * TOLLGATE_MODE / NODE_ENV (service/security/mode.ts), else `development`.
   */
  mode?: RunMode;
  /**
   * Who may open ext_proc streams: a shared secret in gRPC metadata `x-tollgate-auth` and/or mTLS.
   * Unset: nobody is checked — allowed only on a loopback grpcAddr outside production (docs/security.md).
   */
  grpcAuth?: GrpcAuthOptions;
  /** Keys sealing the fallback plan, the same on every replica: the first signs, all verify. Unset: per-process random key (not in production). */
  planKeys?: (string | Buffer)[];
  /** Fallback plan lifetime, ms (default 660 000: the chain route's 600 s timeout plus a minute). */
  planTtlMs?: number;
  /** Bearer tokens for /v1/spend and /readyz detail. Unset: /readyz detail open on a loopback httpAddr outside production, else refused; /v1/spend always needs one. */
  adminTokens?: string[];
  /** Publish /v1/spend (TOLLGATE_SPEND_API=on). Default off: the path answers 404. Needs adminTokens. */
  spendApi?: boolean;
  /** Lineage emitter queue bounds (defaults: 200,000 records in memory, drained every 50 ms). */
  lineageQueue?: { maxInMemory?: number; flushIntervalMs?: number };
  /**
   * Managed virtual keys (docs/keys.md): `redis` (the default when redisUrl is set) keeps keys in Redis
   * next to the config keys, manageable through /admin/v1/keys; `config` = config files only.
   */
  keyStore?: 'config' | 'redis';
  /** Cache and fail-mode tuning of the Redis key store. */
  keyStoreOptions?: Omit<RedisKeyStoreOptions, 'url'>;
  /** Delegated admins: `tenant` or `tenant/team` → token (TOLLGATE_TEAM_ADMIN_TOKENS). */
  teamAdminTokens?: { scope: string; token: string }[];
  /** Admin JWTs verified on the HTTP port (TOLLGATE_ADMIN_JWT_SECRET …). */
  adminJwt?: AdminJwtOptions;
  /** Concurrent ext_proc streams; one more is refused with RESOURCE_EXHAUSTED (default 4096). */
  maxStreams?: number;
  /** An ext_proc stream with no message for this long ends as aborted (default 660 000 ms; 0 = never). */
  streamIdleTimeoutMs?: number;
  /** The ext_proc port's HTTP/2 implementation (TOLLGATE_GRPC_TRANSPORT; default 'h2', Tollgate's own). */
  grpcTransport?: TransportKind;
}

export interface Tollgate {
  grpcPort: number;
  httpPort: number;
  holder: ConfigHolder;
  services: Services;
  metrics: Metrics;
  lineage: LineageEmitter;
  budgets: BudgetManager;
  extproc: ExtProcServer;
  telemetry: TelemetryServer;
  /** Drain streams within `graceMs`, flush lineage, close stores and servers. */
  close(graceMs?: number): Promise<void>;
}

function makeSinks(specs: string[], redisUrl: string | undefined, log: Logger): LineageSink[] {
  const sinks: LineageSink[] = [];
  for (const s of specs) {
    if (s === 'none' || s === '') continue;
    if (s === 'stdout') sinks.push(new StdoutSink({ logger: log.child({}, { level: 'info' }) }));
    else if (s.startsWith('file:')) sinks.push(new FileSink({ path: s.slice(5) }));
    else if (s === 'redis') {
      if (!redisUrl) throw new Error('lineage sink "redis" needs REDIS_URL');
      sinks.push(new RedisSink({ url: redisUrl }));
    } else throw new Error(`unknown lineage sink "${s}" (use stdout, file:<path>, redis, none)`);
  }
  return sinks;
}

/** Where the console reads lineage back: the Redis stream or the JSONL file of the configured sinks. */
function lineageSource(specs: string[], redisUrl: string | undefined): LineageSource | undefined {
  if (specs.includes('redis') && redisUrl) return { source: 'redis', redis: redisUrl };
  const file = specs.find((s) => s.startsWith('file:'));
  return file ? { source: 'file', path: file.slice(5) } : undefined;
}

export async function startTollgate(opts: TollgateOptions): Promise<Tollgate> {
  const log = opts.log ?? pino({ level: process.env.TOLLGATE_LOG_LEVEL ?? 'info' });
  const now = opts.now ?? (() => new Date());
  const metrics = createMetrics();
  // Security first: a refused configuration must not open anything.
  const mode = opts.mode ?? modeFromEnv(process.env);
  const deniedLog = throttledDenials(log.child({ component: 'extproc' }));
  const grpcAuth = buildGrpcAuth(opts.grpcAuth, (reason, method, peer) => {
    metrics.authFailures.inc({ surface: 'grpc', reason });
    deniedLog.note(reason, method, peer);
  });
  const posture = checkPosture({
    mode,
    grpcAddr: opts.grpcAddr,
    httpAddr: opts.httpAddr,
    grpcAuthenticated: grpcAuth.authenticated,
    sharedSecrets: opts.grpcAuth?.sharedSecrets ?? [],
    mtlsAnyPeer: Boolean(opts.grpcAuth?.tls?.caFile) && (opts.grpcAuth?.allowedPeers ?? []).includes('*'),
    planKeys: opts.planKeys ?? [],
    adminTokens: opts.adminTokens ?? [],
    spendApi: opts.spendApi ?? false,
  });
  for (const w of posture.warnings) log.warn(w);
  // The exact tokenizer (budget/tokenizer.ts) loads now, before anything is served: importing it holds the
  // event loop ~150–300 ms, which mid-traffic would time out other requests' Redis budget calls (fail closed).
  await o200k().catch((err: unknown) => log.warn({ err }, 'o200k tokenizer unavailable: token estimates use the heuristic'));
  const [planKey, ...previousPlanKeys] = opts.planKeys?.length ? opts.planKeys : [processPlanKey()];
  const plans = new PlanSealer({ key: planKey!, previousKeys: previousPlanKeys, ttlMs: opts.planTtlMs });
  const health = new HealthTracker({ now: () => now().getTime() });

  let extprocRef: ExtProcServer | undefined;
  const holder = new ConfigHolder(opts.configDir, {
    health,
    onReload: (ok, detail) => {
      metrics.recordConfigReload(ok, ok ? detail : undefined);
      if (ok) {
        publishLabels();
        // Body limits may have changed: the transport's message cap follows them for new streams.
        extprocRef?.setMaxMessageBytes(messageCapFor(holder.snapshot().core.settings));
        log.info({ revision: detail }, 'config reloaded');
      }
      else log.error({ error: detail }, 'config reload failed; keeping the last good config');
    },
  });
  const publishLabels = (): void => {
    const snap = holder.snapshot();
    metrics.setKnownLabels({
      tenants: snap.core.tenants.keys(),
      models: snap.core.models.flatMap((m) => [m.name, ...m.aliases]),
      providers: snap.core.providers.keys(),
      policies: snap.policy.policies,
      detectors: BUILTIN_DETECTOR_NAMES,
      mcpServers: snap.core.mcpServers.keys(),
    });
  };
  publishLabels();
  metrics.recordConfigReload(true, holder.snapshot().revision);
  for (const w of holder.snapshot().core.warnings) log.warn(w);
  if (opts.watchConfig !== false) holder.watch();

  const otlp = createOtlpExporter(opts.otlpEndpoint ? { endpoint: opts.otlpEndpoint } : undefined);
  const store: BudgetStore = createBudgetStore({
    redisUrl: opts.redisUrl,
    prefix: opts.redisPrefix,
    commandTimeoutMs: opts.redisTimeoutMs,
    logger: log.child({ component: 'budget' }),
  });
  const budgets = new BudgetManager(store, { logger: log.child({ component: 'budget' }) });
  if (store instanceof RedisStore) {
    // failClosed budgets deny until Redis answers: give it a moment at start-up, but never block on it.
    if (!(await store.ready(2000))) log.warn('budget store: Redis not reachable yet; budgets follow their onStoreError mode until it is');
  }
  const lineage = await LineageEmitter.open({
    sinks: makeSinks(opts.lineageSinks ?? ['stdout'], opts.redisUrl, log),
    spoolDir: opts.spoolDir,
    metrics,
    logger: log.child({ component: 'lineage' }),
    validate: opts.validateLineage,
    ...opts.lineageQueue,
  });
  const secret = opts.redactionSecret ?? process.env.TOLLGATE_REDACTION_SECRET;
  if (!secret) log.warn('TOLLGATE_REDACTION_SECRET is not set: `hash` redaction uses a per-process key, so hashes change on restart');
  const redactors = new RedactorCache({ secret: secret ?? randomBytes(32) });

  // Managed keys: config keys first (no I/O), then Redis (cached; invalidated over pub/sub).
  const keyStoreKind = opts.keyStore ?? (opts.redisUrl ? 'redis' : 'config');
  if (keyStoreKind === 'redis' && !opts.redisUrl) throw new Error('the redis key store needs REDIS_URL');
  const managedKeys =
    keyStoreKind === 'redis' ? new RedisKeyStore({
          url: opts.redisUrl!,
          prefix: opts.redisPrefix,
          onLookup: (result) => metrics.keyLookups.inc({ result }),
          ...opts.keyStoreOptions,
        }) : undefined;
  if (managedKeys && !(await managedKeys.ready(2000))) log.warn('key store: Redis not reachable yet; managed keys are refused (503) until it is');
  const withKeys = new WeakMap<Snapshot, Snapshot>();
  const liveSnapshot = (): Snapshot => {
    const snap = holder.snapshot();
    if (!managedKeys) return snap;
    let s = withKeys.get(snap);
    if (!s) withKeys.set(snap, (s = { ...snap, keys: new CompositeKeyStore(snap.keys, managedKeys) }));
    return s;
  };

  const redaction: RedactionPort = redactionPort(redactors);
  const lineagePort: LineagePort = { emit: (r: LineageRecord) => lineage.emit(r) };
  // Metrics and traces consume each finished request's record next to lineage, not through it.
  const requestMetrics = new RequestMetricsConsumer(metrics, log.child({ component: 'metrics' }));
  const consumers: OutcomeConsumer[] = [requestMetrics];
  if (otlp) consumers.push({ name: 'traces', consume: (r) => otlp.observe(r) });
  const services: Services = {
    snapshot: liveSnapshot,
    health,
    budgets: budgetPort(budgets),
    redaction,
    lineage: lineagePort,
    consumers,
    finishing: new PendingOutcomes((err) => log.error({ err }, 'recording a finished request failed')),
    log,
    now,
    instance: opts.instance ?? hostname(),
    attempts: new AttemptLog(),
    plans,
  };

  const upstreamServices: UpstreamServices = {
    ...services,
    countAttempt: (provider, status) => metrics.chainAttempts.inc({ provider: metrics.label('provider', provider), status: statusLabel(status) }),
  };
  const extproc = await startExtProcServer(opts.grpcAddr, {
    newExchange: (stage) =>
      stage === 'upstream' ? new UpstreamExchange(upstreamServices) : new DispatchExchange(() => new GatewayExchange(services), () => new McpExchange(services)),
    log: log.child({ component: 'extproc' }),
    onProtocolError: () => metrics.extprocProtocolErrors.inc(),
    auth: grpcAuth,
    maxStreams: opts.maxStreams,
    idleTimeoutMs: opts.streamIdleTimeoutMs,
    ...(opts.grpcTransport ? { transport: opts.grpcTransport } : {}),
    limits: () => holder.snapshot().core.settings,
    onStreamCut: (reason) => metrics.extprocStreamsCut.inc({ reason }),
  });
  extprocRef = extproc;
  await grpcAuth.ready().catch(async (err: unknown) => {
    await extproc.drain(0);
    grpcAuth.close();
    throw err;
  });

  const telemetry = await startTelemetryServer({
    addr: opts.httpAddr,
    metrics,
    ...(opts.metricsText ? { metricsText: opts.metricsText(metrics) } : {}),
    readiness: () => {
      const reload = holder.reloadStatus();
      const lh = lineage.health();
      const budgetHealth = budgets.health();
      return {
        ready: lh.ok,
        detail: {
          config: reload,
          budgetStore: budgetHealth,
          lineage: lh,
          activeStreams: extproc.active(),
        },
      };
    },
    admin: adminGuard({ tokens: opts.adminTokens, openWithoutToken: posture.adminOpenWithoutToken }),
    onAdminDenied: (verdict) => metrics.authFailures.inc({ surface: 'admin', reason: verdict }),
    prefixRoutes: mountAdmin({
      keys: managedKeys,
      snapshot: liveSnapshot,
      lineage: lineageSource(opts.lineageSinks ?? ['stdout'], opts.redisUrl),
      spend: (q) => budgets.spend(q),
      now,
      instance: services.instance,
      emit: (r) => services.lineage.emit(r),
      auth: adminAuth({
        guard: adminGuard({ tokens: opts.adminTokens, openWithoutToken: posture.adminOpenWithoutToken }),
        teamTokens: opts.teamAdminTokens,
        jwt: opts.adminJwt,
      }),
      onDenied: (verdict) => metrics.authFailures.inc({ surface: 'admin', reason: verdict }),
    }),
    // Not published unless asked for (TOLLGATE_SPEND_API=on, which start-up refuses without an admin token).
    extraRoutes: opts.spendApi ? undefined : new Map([['/v1/spend', spendApiOff]]),
    adminRoutes: !opts.spendApi ? undefined : new Map([
      [
        '/v1/spend',
        async (req, res) => {
          const url = new URL(req.url ?? '/', 'http://x');
          const rows = await budgets.spend({
            tenant: url.searchParams.get('tenant') ?? undefined,
            scopeKey: url.searchParams.get('scope') ?? undefined,
          });
          const body = JSON.stringify({ rows });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        },
      ],
    ]),
  });

  log.info(
    {
      grpc: `${opts.grpcAddr.replace(/:\d+$/, '')}:${extproc.port}`,
      http: `${telemetry.host}:${telemetry.port}`,
      revision: holder.snapshot().revision,
      budgetStore: opts.redisUrl ? 'redis' : 'memory',
      mode,
      grpcAuth: grpcAuth.summary,
    },
    'tollgate started',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcPort: extproc.port,
    httpPort: telemetry.port,
    holder,
    services,
    metrics,
    lineage,
    budgets,
    extproc,
    telemetry,
    close: (graceMs = 10000) =>
      (closing ??= (async () => {
        holder.close();
        await extproc.drain(graceMs);
        // Every stream has ended by now (the drain cuts what is left at its deadline); their records are
        // published once their budgets settle. Wait for that, bounded, before lineage stops accepting.
        if (!(await services.finishing.idle(FINISHING_TIMEOUT_MS)))
          log.error({ pending: services.finishing.size }, 'shutdown: requests still settling; their lineage records will be counted as dropped');
        requestMetrics.flush();
        await lineage.close(Math.min(graceMs, 5000));
        await otlp?.close();
        await telemetry.close();
        await store.close?.();
        await managedKeys?.close();
        grpcAuth.close();
      })()),
  };
}

/** /v1/spend while TOLLGATE_SPEND_API is off: not there, and says how to publish it. */
function spendApiOff(_req: IncomingMessage, res: ServerResponse): void {
  const body = `${JSON.stringify({ error: '/v1/spend is not published: set TOLLGATE_SPEND_API=on and TOLLGATE_ADMIN_TOKEN' })}\n`;
  res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** How long a graceful shutdown waits for ended requests to settle their budgets and publish their record. */
const FINISHING_TIMEOUT_MS = 3000;

export function defaultSpoolDir(): string {
  return join(process.cwd(), 'var', 'spool');
}
