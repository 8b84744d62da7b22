// The admin API's router: a table of (method, path template) → handler. The OpenAPI document
// (openapi.json) is checked against this table by test/admin/openapi.test.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';
import type { LineageRecord } from '../lineage/record.ts';
import type { AdminActor, AdminAuth } from './auth.ts';
import { auditRecord, type AuditEvent } from './audit.ts';
import { readJson, sendError, sendJson } from './http-util.ts';

export interface RouteContext {
  actor: AdminActor;
  params: Record<string, string>;
  query: URLSearchParams;
  body(): Promise<Record<string, unknown>>;
  audit(e: Omit<AuditEvent, 'actor' | 'method' | 'path'>): void;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH';
  /** `/admin/v1/keys/{id}` */
  path: string;
  /** Reachable without a credential (the OpenAPI document). */
  open?: boolean;
  handler(c: RouteContext): Promise<{ status: number; body: unknown }>;
}

export interface RouterDeps {
  routes: Route[];
  auth: AdminAuth;
  emit: (r: LineageRecord) => void;
  instance: string;
  now: () => Date;
  onDenied?: (verdict: 'unauthenticated' | 'disabled' | 'forbidden') => void;
}

function match(template: string, path: string): Record<string, string> | undefined {
  const t = template.split('/');
  const p = path.split('/');
  if (t.length !== p.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const seg = t[i]!;
    if (seg.startsWith('{')) {
      let v: string;
      try {
        v = decodeURIComponent(p[i]!);
      } catch {
        return undefined;
      }
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(v)) return undefined;
      params[seg.slice(1, -1)] = v;
    } else if (seg !== p[i]) return undefined;
  }
  return params;
}

export function adminRouter(d: RouterDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    try {
      const candidates = d.routes.map((r) => ({ r, params: match(r.path, path) })).filter((x) => x.params);
      if (!candidates.length) throw new GatewayError('not_found', `No admin route ${path}; see /admin/v1/openapi.json.`, { code: 'unknown_route' });
      const hit = candidates.find((x) => x.r.method === method);
      if (!hit) {
        const allow = [...new Set(candidates.map((x) => x.r.method))].join(', ');
        throw new GatewayError('invalid_request', `Method ${method} is not allowed on ${path}; use ${allow}.`, { code: 'method_not_allowed', status: 405, headers: { allow } });
      }
      let actor: AdminActor = { role: 'admin', name: 'anonymous' };
      if (!hit.r.open) {
        const v = d.auth(req);
        if (v === 'unauthenticated' || v === 'disabled') {
          d.onDenied?.(v);
          throw v === 'unauthenticated'
            ? new GatewayError('authentication', 'Admin credential required: Authorization: Bearer <TOLLGATE_ADMIN_TOKEN, a team admin token or an admin JWT>.', { code: 'admin_auth_required', headers: { 'www-authenticate': 'Bearer realm="tollgate-admin"' } })
            : new GatewayError('permission', 'The admin API is disabled: set TOLLGATE_ADMIN_TOKEN.', { code: 'admin_disabled' });
        }
        actor = v;
      }
      const c: RouteContext = {
        actor,
        params: hit.params!,
        query: url.searchParams,
        body: () => readJson(req),
        audit: (e) => d.emit(auditRecord({ ...e, actor, method, path }, d.instance, d.now())),
      };
      const out = await hit.r.handler(c);
      sendJson(res, out.status, out.body, req.method === 'HEAD');
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'outside_admin_scope') d.onDenied?.('forbidden');
      sendError(res, err);
    }
  };
}
