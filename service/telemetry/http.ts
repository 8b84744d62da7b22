// The telemetry HTTP server: /metrics (Prometheus text), /healthz (liveness), /readyz (readiness;
// the detail only with the admin credential) and admin routes (/v1/spend) behind the admin guard.
// Binds exactly the configured address (tests use 127.0.0.1:0).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';
import type { AdminGuard, AdminVerdict } from '../security/index.ts';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface TelemetryServerOptions {
  /** `host:port`, `[v6]:port`; port 0 picks a free one. */
  addr: string;
  metrics: Metrics;
  /** The /metrics body instead of this process's registry (TOLLGATE_WORKERS: all workers summed). */
  metricsText?: () => Promise<string>;
  readiness: () => Readiness | Promise<Readiness>;
  /** Open routes (no credential). */
  extraRoutes?: Map<string, RouteHandler>;
  /** Routes by path prefix (e.g. `/admin/v1/`, `/console`) that authenticate themselves. */
  prefixRoutes?: [string, RouteHandler][];
  /** Routes that need the admin credential. */
  adminRoutes?: Map<string, RouteHandler>;
  /** Decides admin access; unset → admin routes and /readyz detail are refused. */
  admin?: AdminGuard;
  /** Called for each refused admin request (metrics). */
  onAdminDenied?: (verdict: Exclude<AdminVerdict, 'allowed'>) => void;
}

export interface TelemetryServer {
  port: number;
  host: string;
  close(): Promise<void>;
}

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(addr.trim());
  if (!m) throw new Error(`telemetry address ${JSON.stringify(addr)} must be host:port (e.g. 127.0.0.1:9464)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`telemetry address ${JSON.stringify(addr)}: port ${port} is out of range`);
  return { host: (m[1] ?? m[2])!, port };
}

function send(res: http.ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : body);
}

export async function startTelemetryServer(opts: TelemetryServerOptions): Promise<TelemetryServer> {
  const { host, port } = parseAddr(opts.addr);
  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', false);
      else res.destroy();
    });
  });

  const adminVerdict = (req: http.IncomingMessage): AdminVerdict => opts.admin?.check(req) ?? 'disabled';

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathOnly = (req.url ?? '/').split('?')[0]!;
    const prefixed = opts.prefixRoutes?.find(([p]) => pathOnly === p || pathOnly.startsWith(p.endsWith('/') ? p : p + '/'));
    if (prefixed) {
      await prefixed[1](req, res);
      return;
    }
    const extra = opts.extraRoutes?.get(pathOnly);
    if (extra) {
      await extra(req, res);
      return;
    }
    const adminRoute = opts.adminRoutes?.get(pathOnly);
    if (adminRoute) {
      const verdict = adminVerdict(req);
      if (verdict === 'allowed') await adminRoute(req, res);
      else {
        opts.onAdminDenied?.(verdict);
        if (verdict === 'unauthenticated') res.setHeader('www-authenticate', 'Bearer realm="tollgate-admin"');
        const message = verdict === 'unauthenticated' ? 'admin credential required (Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>)' : 'admin endpoints are disabled: set TOLLGATE_ADMIN_TOKEN';
        send(res, verdict === 'unauthenticated' ? 401 : 403, 'application/json', JSON.stringify({ error: message }) + '\n', req.method === 'HEAD');
      }
      return;
    }
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    switch (pathOnly) {
      case '/metrics': {
        const body = opts.metricsText ? await opts.metricsText() : await opts.metrics.registry.metrics();
        send(res, 200, opts.metrics.registry.contentType, body, head);
        return;
      }
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
        return;
      case '/readyz': {
        let r: Readiness;
        try {
          r = await opts.readiness();
        } catch (err) {
          r = { ready: false, detail: { error: `readiness check failed: ${(err as Error).message}` } };
        }
        // Probes get the status; the detail (config errors, store state, stream counts) is for admins.
        const detail = adminVerdict(req) === 'allowed' ? r.detail : {};
        send(res, r.ready ? 200 : 503, 'application/json', JSON.stringify({ ...detail, ready: r.ready }) + '\n', head);
        return;
      }
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Scrapers use keep-alive; do not let idle sockets hold close() open.
  server.keepAliveTimeout = 5000;
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    host: address.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
