// Read-only views for the console, from the lineage sink (service/lineage/query.ts): spend over time,
// recent requests with their decision, budgets and how close each is to its limit, admin audit
// events, and the explain playground over the live bundle. Team admins see their tenant/team only.
import { explainSnapshot } from '../cli/explain.ts';
import { GatewayError } from '../errors.ts';
import type { Snapshot } from '../gateway/context.ts';
import { queryLineage, type LineageQuery } from '../lineage/query.ts';
import type { LineageRecord } from '../lineage/record.ts';
import type { SpendQuery, SpendRow } from '../budget/store.ts';
import type { AdminActor } from './auth.ts';
import { canManage } from './auth.ts';
import type { Route } from './routes.ts';

export type LineageSource = { source: 'redis'; redis: string; streamKey?: string } | { source: 'file'; path: string };

export interface InsightDeps {
  lineage: LineageSource | undefined;
  snapshot: () => Snapshot;
  spend: (q?: SpendQuery) => Promise<SpendRow[]>;
  now: () => Date;
}

const GROUPS = ['tenant', 'team', 'key', 'model'] as const;
type Group = (typeof GROUPS)[number];

function int(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new GatewayError('invalid_request', `${name}: must be a whole number between ${min} and ${max}`, { code: 'invalid_query', param: name });
  return v;
}

async function records(d: InsightDeps, actor: AdminActor, since: Date, limit: number): Promise<LineageRecord[]> {
  if (!d.lineage)
    throw new GatewayError('unavailable', 'No queryable lineage sink: set TOLLGATE_LINEAGE to include `redis` or `file:<path>`.', { code: 'lineage_unavailable', status: 501 });
  const q: LineageQuery = { ...d.lineage, since, limit, maxScan: 50_000, ...(actor.role === 'team' ? { tenant: actor.tenant } : {}) };
  const r = await queryLineage(q);
  return r.records.filter((x) => actor.role === 'admin' || canManage(actor, x.principal.tenant ?? '', x.principal.team));
}

function groupOf(r: LineageRecord, by: Group): string {
  const p = r.principal;
  if (by === 'tenant') return p.tenant || '(none)';
  if (by === 'team') return p.tenant ? `${p.tenant}/${p.team || '-'}` : '(none)';
  if (by === 'key') return p.keyId || (p.authMethod === 'jwt' ? `jwt:${p.user || '?'}` : '(none)');
  return r.served?.model || r.request.requestedModel || '(none)';
}

function summary(r: LineageRecord): Record<string, unknown> {
  return {
    requestId: r.requestId,
    time: r.startTime.toISOString(),
    tenant: r.principal.tenant,
    team: r.principal.team,
    keyId: r.principal.keyId,
    endpoint: r.request.endpoint,
    model: r.request.requestedModel,
    status: r.statusCode,
    outcome: r.outcome,
    errorCode: r.errorCode,
    route: r.served ? { provider: r.served.provider, model: r.served.model, deployment: r.served.deployment } : undefined,
    rules: (r.policy?.rules ?? []).filter((x) => x.outcome !== 'not_matched' && x.outcome !== 'skipped').map((x) => ({ policy: x.policy, rule: x.rule, outcome: x.outcome })),
    redactions: (r.redactions ?? []).map((x) => ({ detector: x.detector, direction: x.direction, count: x.count })),
    costUsd: r.costUsd ?? 0,
    tokens: r.tokens ? { input: r.tokens.input, output: r.tokens.output } : undefined,
  };
}

export function insightRoutes(d: InsightDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/admin/v1/whoami',
      handler: async (c) => ({ status: 200, body: c.actor }),
    },
    {
      method: 'GET',
      path: '/admin/v1/tenants',
      handler: async (c) => {
        const core = d.snapshot().core;
        const data = [...core.tenants.keys()]
          .map((t) => ({ name: t, teams: [...core.teams.values()].filter((x) => x.tenant === t && canManage(c.actor, t, x.name)).map((x) => x.name) }))
          .filter((t) => c.actor.role === 'admin' || (c.actor.tenant === t.name && t.teams.length > 0));
        const models = d.snapshot().core.models.map((m) => m.name);
        return { status: 200, body: { data, models } };
      },
    },
    {
      method: 'GET',
      path: '/admin/v1/requests',
      handler: async (c) => {
        const limit = int(c.query, 'limit', 50, 1, 500);
        const hours = int(c.query, 'hours', 24, 1, 24 * 31);
        const recs = await records(d, c.actor, new Date(d.now().getTime() - hours * 3_600_000), limit * 4);
        return { status: 200, body: { data: recs.filter((r) => !r.audit).slice(0, limit).map(summary) } };
      },
    },
    {
      method: 'GET',
      path: '/admin/v1/audit',
      handler: async (c) => {
        const limit = int(c.query, 'limit', 50, 1, 500);
        const recs = await records(d, c.actor, new Date(d.now().getTime() - 31 * 86_400_000), 10_000);
        const data = recs.filter((r) => r.audit).slice(0, limit).map((r) => ({ time: r.startTime.toISOString(), ...r.audit, tenant: r.principal.tenant, team: r.principal.team }));
        return { status: 200, body: { data } };
      },
    },
    {
      method: 'GET',
      path: '/admin/v1/spend',
      handler: async (c) => {
        const by = (c.query.get('by') ?? 'tenant') as Group;
        if (!GROUPS.includes(by)) throw new GatewayError('invalid_request', `by: must be one of ${GROUPS.join(', ')}`, { code: 'invalid_query', param: 'by' });
        const hours = int(c.query, 'hours', 24, 1, 24 * 31);
        const buckets = int(c.query, 'buckets', 24, 1, 200);
        const end = d.now().getTime();
        const start = end - hours * 3_600_000;
        const step = (end - start) / buckets;
        const recs = await records(d, c.actor, new Date(start), 100_000);
        const series = new Map<string, { usd: number[]; requests: number }>();
        for (const r of recs) {
          if (r.audit) continue;
          const i = Math.min(buckets - 1, Math.max(0, Math.floor((r.startTime.getTime() - start) / step)));
          const name = groupOf(r, by);
          let s = series.get(name);
          if (!s) series.set(name, (s = { usd: new Array<number>(buckets).fill(0), requests: 0 }));
          s.usd[i]! += r.costUsd ?? 0;
          s.requests++;
        }
        const out = [...series.entries()]
          .map(([name, s]) => ({ name, totalUsd: s.usd.reduce((a, b) => a + b, 0), requests: s.requests, usd: s.usd }))
          .sort((a, b) => b.totalUsd - a.totalUsd || a.name.localeCompare(b.name));
        return { status: 200, body: { by, start: new Date(start).toISOString(), end: new Date(end).toISOString(), bucketSeconds: step / 1000, series: out } };
      },
    },
    {
      method: 'GET',
      path: '/admin/v1/budgets',
      handler: async (c) => {
        // The latest effect of each budget (name × scope × unit) tells its limit and what remains.
        const recs = await records(d, c.actor, new Date(d.now().getTime() - 31 * 86_400_000), 5000);
        const seen = new Map<string, Record<string, unknown>>();
        for (const r of recs) {
          for (const b of r.budgets ?? []) {
            const id = `${b.name}|${b.scopeKey ?? ''}|${b.unit}`;
            if (seen.has(id) || b.limit === undefined || b.remaining === undefined) continue;
            const used = Math.max(0, b.limit - b.remaining);
            seen.set(id, { name: b.name, scopeKey: b.scopeKey, unit: b.unit, limit: b.limit, used, ratio: b.limit > 0 ? used / b.limit : 1, enforcement: b.enforcement, at: r.endTime.toISOString(), tenant: r.principal.tenant });
          }
        }
        const counters = c.actor.role === 'admin' ? await d.spend() : await d.spend({ tenant: c.actor.tenant });
        const data = [...seen.values()].sort((a, b) => (b.ratio as number) - (a.ratio as number));
        return { status: 200, body: { data, counters } };
      },
    },
    {
      method: 'POST',
      path: '/admin/v1/explain',
      handler: async (c) => {
        if (c.actor.role !== 'admin') throw new GatewayError('permission', 'The explain playground is for admins (it shows every policy).', { code: 'outside_admin_scope' });
        const b = await c.body();
        const path = b.path ?? '/v1/chat/completions';
        if (typeof path !== 'string' || !/^\/v1\/[a-z/]+$/.test(path)) throw new GatewayError('invalid_request', 'path: an API path such as /v1/chat/completions', { code: 'invalid_field', param: 'path' });
        if (b.body === null || typeof b.body !== 'object' || Array.isArray(b.body)) throw new GatewayError('invalid_request', 'body: the request body to explain, as a JSON object', { code: 'invalid_field', param: 'body' });
        if (b.key !== undefined && typeof b.key !== 'string') throw new GatewayError('invalid_request', 'key: a virtual key', { code: 'invalid_field', param: 'key' });
        if (b.claims !== undefined && (b.claims === null || typeof b.claims !== 'object' || Array.isArray(b.claims)))
          throw new GatewayError('invalid_request', 'claims: JWT claims as a JSON object', { code: 'invalid_field', param: 'claims' });
        const live = d.snapshot();
        // A copy whose credentials are placeholders: nothing the playground prints can hold a real one.
        const credentials = new Map([...live.core.credentials.keys()].map((k) => [k, '<credential>']));
        const snap: Snapshot = { ...live, core: { ...live.core, credentials } };
        const out = await explainSnapshot(snap, {
          body: Buffer.from(JSON.stringify(b.body)),
          path,
          ...(typeof b.key === 'string' ? { key: b.key } : {}),
          ...(b.claims ? { claims: b.claims as Record<string, unknown> } : {}),
        });
        return { status: 200, body: out };
      },
    },
  ];
}
