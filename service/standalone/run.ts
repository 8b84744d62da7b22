// `tollgate run` (npm start): a gateway on one machine, like `aigw run`. Starts the loopback upstreams
// (the mock provider, upstreams.ts), Tollgate on loopback (ext_proc behind a per-process shared secret),
// and a real Envoy in front (service/envoy/provision.ts finds or installs it; the shipped envoy.yaml
// rendered by envoy-config.ts), then prints a banner. SIGINT/SIGTERM stop Envoy, drain Tollgate, close
// the upstreams; if Envoy dies on its own, Tollgate is stopped too. `tollgate serve` stays ext_proc only.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultSpoolDir, startTollgate, type Tollgate } from '../app.ts';
import { ConfigError, ConfigErrors } from '../config/documents.ts';
import { buildSnapshot } from '../config/snapshot.ts';
import type { Snapshot } from '../gateway/context.ts';
import { EnvoyUnavailableError, findEnvoy } from '../envoy/provision.ts';
import { startEnvoyProcess, type EnvoyProcess } from '../envoy/process.ts';
import { SecurityConfigError } from '../security/index.ts';
import { banner } from './banner.ts';
import { standaloneEnvoyConfig } from './envoy-config.ts';
import { readSecretList } from '../security/secrets.ts';
import { closeUpstreams, startLoopbackUpstreams, type LoopbackUpstream } from './upstreams.ts';

export const RUN_USAGE = `usage: tollgate run [--listen HOST:PORT] [--config DIR]

Runs the gateway on this machine: Envoy on HOST:PORT (default 127.0.0.1:8080, env TOLLGATE_LISTEN_ADDR;
port 0 picks a free one) in front of Tollgate, on the config in DIR (default TOLLGATE_CONFIG or ./policies).
with the demo MCP server at /mcp/demo. Models with no provider credential are answered by the built-in
mock provider. Ctrl-C stops everything.
`;

export class RunUsageError extends Error {
  override readonly name = 'RunUsageError';
}

export interface RunArgs {
  listen: { address: string; port: number };
  configDir: string;
  help: boolean;
}

export function parseRunArgs(args: string[], env: NodeJS.ProcessEnv): RunArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { listen: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new RunUsageError((err as Error).message);
  }
  const listen = values.listen ?? env.TOLLGATE_LISTEN_ADDR ?? '127.0.0.1:8080';
  const m = /^\[?([^\]]+)\]?:(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new RunUsageError(`--listen / TOLLGATE_LISTEN_ADDR must be HOST:PORT (e.g. 127.0.0.1:8080), got ${JSON.stringify(listen)}`);
  return { listen: { address: m[1]!, port }, configDir: values.config ?? env.TOLLGATE_CONFIG ?? './policies', help: values.help === true };
}

/** Runs until a signal; resolves with the exit code. */
export async function runStandalone(args: string[]): Promise<number> {
  let opts: RunArgs;
  try {
    opts = parseRunArgs(args, process.env);
  } catch (err) {
    if (!(err instanceof RunUsageError)) throw err;
    process.stderr.write(`tollgate run: ${err.message}\n\n${RUN_USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const log = pino({ level: process.env.TOLLGATE_LOG_LEVEL ?? 'warn', base: { service: 'tollgate' } }, pino.destination(2));
  const say = (line: string) => process.stderr.write(`tollgate run: ${line}\n`);

  let first: Snapshot;
  try {
    first = buildSnapshot(opts.configDir);
  } catch (err) {
    if (err instanceof ConfigError) {
      say(`${err.message}; not starting (--config DIR names the config directory)`);
      return 1;
    }
    if (!(err instanceof ConfigErrors)) throw err;
    for (const e of err.errors) process.stderr.write(`${e.message}\n`);
    say(`config in ${opts.configDir} is invalid (${err.errors.length} problem(s)); not starting`);
    return 1;
  }

  let envoyBin;
  try {
    envoyBin = await findEnvoy({ install: true, log: say });
  } catch (err) {
    if (!(err instanceof EnvoyUnavailableError)) throw err;
    say(err.message);
    return 1;
  }

  const upstreams: LoopbackUpstream[] = await startLoopbackUpstreams({
    snapshot: first,
    setEnv: (name, value) => {
      process.env[name] = value;
    },
  });
  const lineageSinks = (process.env.TOLLGATE_LINEAGE ?? 'file:var/lineage.jsonl').split(',').map((s) => s.trim());
  const sharedSecret = randomBytes(24).toString('hex');
  // The admin API and console need a credential here too: TOLLGATE_ADMIN_TOKEN(_FILE), else a fresh one
  // for this process, printed in the banner (the way a notebook server prints its token).
  const givenAdmin = readSecretList(process.env, 'TOLLGATE_ADMIN_TOKEN') ?? [];
  const adminToken = givenAdmin.length ? undefined : `tg-admin-${randomBytes(18).toString('hex')}`;
  const adminTokens = adminToken ? [adminToken] : givenAdmin;
  let app: Tollgate;
  try {
    app = await startTollgate({
      configDir: opts.configDir,
      grpcAddr: '127.0.0.1:0',
      httpAddr: process.env.TOLLGATE_HTTP_ADDR ?? '127.0.0.1:9464',
      redisUrl: process.env.REDIS_URL || undefined,
      lineageSinks,
      spoolDir: process.env.TOLLGATE_SPOOL_DIR ?? defaultSpoolDir(),
      otlpEndpoint: process.env.TOLLGATE_OTLP_ENDPOINT || undefined,
      grpcAuth: { sharedSecrets: [sharedSecret] },
      adminTokens,
      planKeys: [randomBytes(32)],
      log,
    });
  } catch (err) {
    await closeUpstreams(upstreams);
    if (err instanceof ConfigErrors) for (const e of err.errors) process.stderr.write(`${e.message}\n`);
    else if (err instanceof SecurityConfigError) say(`refusing to start: ${err.message}`);
    else {
      const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (another process has that port: set TOLLGATE_HTTP_ADDR, e.g. 127.0.0.1:0)' : '';
      say(`Tollgate failed to start: ${(err as Error).message}${busy}`);
    }
    return 1;
  }

  const loopback = Object.assign({}, ...upstreams.map((u) => u.clusters)) as Record<string, { host: string; port: number }>;
  const rendered = standaloneEnvoyConfig({ listener: opts.listen, tollgatePort: app.grpcPort, sharedSecret, loopback });
  let envoy: EnvoyProcess;
  try {
    envoy = await startEnvoyProcess({
      bin: envoyBin.path,
      config: rendered.yaml,
      logLevel: process.env.TOLLGATE_ENVOY_LOG_LEVEL ?? 'warning',
      // Envoy's access log (one JSON line per request) is this command's stdout.
      onStdout: (l) => process.stdout.write(`${l}\n`),
      onStderr: (l) => process.stderr.write(`[envoy] ${l}\n`),
    });
  } catch (err) {
    say(`Envoy did not start: ${(err as Error).message}`);
    await app.close(0);
    await closeUpstreams(upstreams);
    return 1;
  }

  const host = opts.listen.address.includes(':') ? `[${opts.listen.address}]` : opts.listen.address;
  process.stdout.write(
    banner({
      gatewayUrl: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${envoy.port}`,
      metricsUrl: `http://${app.telemetry.host}:${app.httpPort}`,
      envoyAdminUrl: envoy.adminUrl,
      envoyVersion: envoyBin.version,
      envoyPid: envoy.child.pid,
      lineage: lineageSinks,
      adminToken: adminToken ?? '(TOLLGATE_ADMIN_TOKEN)',
      snapshot: app.holder.snapshot(),
      ...(rendered.caBundle ? {} : { realProvidersOff: 'off: no system CA bundle to verify them (only the mock answers)' }),
    }),
  );

  const drainMs = Number(process.env.TOLLGATE_DRAIN_MS ?? 10000);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      say(`${why}: stopping Envoy and Tollgate`);
      void (async () => {
        await envoy.stop(5000).catch(() => undefined);
        await app.close(drainMs).catch((err: unknown) => log.error({ err }, 'error while stopping Tollgate'));
        await closeUpstreams(upstreams);
        log.flush();
        resolve(code);
      })();
    };
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
    process.on('SIGINT', () => stop('SIGINT', 0));
    process.on('SIGTERM', () => stop('SIGTERM', 0));
    envoy.child.on('exit', (code, signal) => stop(`Envoy exited on its own (${signal ?? `code ${code}`})`, 1));
  });
}
