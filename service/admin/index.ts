// Mounts the admin API (/admin/v1/…) and the console (/console) on the telemetry HTTP server.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RouteHandler } from '../telemetry/http.ts';
import { consoleHandler } from '../console/static.ts';
import { insightRoutes, type InsightDeps } from './insights.ts';
import { keysRoutes, type KeysApiDeps } from './keys-api.ts';
import { adminRouter, type Route, type RouterDeps } from './routes.ts';

export { adminAuth, parseTeamAdminTokens, type AdminActor, type AdminAuth, type AdminJwtOptions } from './auth.ts';
export type { LineageSource } from './insights.ts';

export const OPENAPI_PATH = fileURLToPath(new URL('./openapi.json', import.meta.url));

export function adminRoutes(d: KeysApiDeps & InsightDeps): Route[] {
  const doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as unknown;
  return [
    { method: 'GET', path: '/admin/v1/openapi.json', open: true, handler: async () => ({ status: 200, body: doc }) },
    ...keysRoutes(d),
    ...insightRoutes(d),
  ];
}

export function mountAdmin(d: KeysApiDeps & InsightDeps & Omit<RouterDeps, 'routes'>): [string, RouteHandler][] {
  return [
    ['/admin/v1', adminRouter({ ...d, routes: adminRoutes(d) })],
    ['/console', consoleHandler()],
  ];
}
