// `tollgate explain`: runs the real request path (the same GatewayExchange the server uses) up to
// the point where Envoy would call the provider, and prints every decision. Nothing is reserved,
// nothing is sent, no credential is printed.
import { AttemptLog } from '../fallback/attempts.ts';
import { PlanSealer, processPlanKey } from '../fallback/seal.ts';
import pino from 'pino';
import { buildSnapshot } from '../config/snapshot.ts';
import { GatewayError } from '../errors.ts';
import type { Services, Snapshot } from '../gateway/context.ts';
import { PendingOutcomes } from '../gateway/outcome.ts';
import { GatewayExchange } from '../gateway/exchange.ts';
import type { BudgetPort } from '../gateway/ports.ts';
import { redactionPort } from '../gateway/adapters.ts';
import { JWT_AUTHN_NAMESPACE } from '../identity/principal.ts';
import { RedactorCache } from '../redaction/index.ts';
import { HealthTracker } from '../routing/index.ts';
import type { BudgetSpec, RateLimitSpec } from '../budget/types.ts';
import { McpExchange } from '../mcp/exchange.ts';
import { isMcpPath } from '../mcp/route.ts';

export interface ExplainInput {
  dir: string;
  body: Buffer;
  key?: string;
  claims?: Record<string, unknown>;
  path?: string;
}

const SECRET_HEADERS = new Set(['authorization', 'x-api-key', 'api-key', 'x-goog-api-key']);

export async function explain(input: ExplainInput): Promise<Record<string, unknown>> {
  return explainSnapshot(buildSnapshot(input.dir), input);
}

/**
 * Explains a request against a given snapshot (the console's playground passes the live one). The
 * snapshot's credential map gets placeholders for unset credentials: pass a copy of a live one.
 */
export async function explainSnapshot(snap: Snapshot, input: Omit<ExplainInput, 'dir'>): Promise<Record<string, unknown>> {
  // Nothing is sent, so a provider whose credential is unset here still shows how it would route.
  const unsetCredentials: string[] = [];
  for (const p of snap.core.providers.values()) {
    if (p.credential.kind !== 'none' && !snap.core.credentials.has(p.name)) {
      snap.core.credentials.set(p.name, '<unset>');
      unsetCredentials.push(p.name);
    }
  }
  const wouldApply: { budgets: BudgetSpec[]; rateLimits: RateLimitSpec[]; estimate?: unknown } = { budgets: [], rateLimits: [] };
  const budgets: BudgetPort = {
    async admit(_id, b, l, estimate) {
      wouldApply.budgets = b;
      wouldApply.rateLimits = l;
      wouldApply.estimate = estimate;
      return { headers: {}, effects: [], handle: null };
    },
    async settle() {
      return [];
    },
  };
  const redactors = new RedactorCache({ secret: process.env.TOLLGATE_REDACTION_SECRET });
  const services: Services = {
    snapshot: () => snap,
    health: new HealthTracker(),
    budgets,
    redaction: redactionPort(redactors),
    lineage: { emit: () => undefined },
    consumers: [],
    finishing: new PendingOutcomes(() => undefined),
    log: pino({ level: 'silent' }),
    now: () => new Date(),
    instance: 'explain',
    attempts: new AttemptLog(),
    plans: new PlanSealer({ key: processPlanKey() }),
  };
  const path = input.path ?? '/v1/chat/completions';
  if (isMcpPath(path)) return explainMcp(snap, services, input, path);
  const ex = new GatewayExchange(services);
  const headers = new Map<string, string>([
    [':method', 'POST'],
    [':path', path],
    ['content-type', 'application/json'],
    ['content-length', String(input.body.length)],
  ]);
  if (input.key) headers.set('authorization', `Bearer ${input.key}`);
  const metadata: Record<string, Record<string, unknown>> = input.claims
    ? { [JWT_AUTHN_NAMESPACE]: { [snap.core.settings.jwt.payloadKey]: input.claims } }
    : {};
  const out: Record<string, unknown> = { configRevision: snap.revision, policyRevision: snap.policy.revision };
  if (unsetCredentials.length) out.warnings = unsetCredentials.map((p) => `provider "${p}" has no credential in this environment; a real request skips it (503 if no other deployment with a credential can serve the model)`);
  try {
    const h = await ex.requestHeaders({ headers, endOfStream: false, metadata, attributes: {} });
    if (h.kind === 'respond') throw new Error('unexpected immediate response on headers');
    const b = await ex.requestBody(input.body);
    if (b.kind === 'continue') {
      const mutation = b.mutation.build();
      const set: Record<string, string> = {};
      for (const s of mutation?.set_headers ?? []) {
        const k = s.header.key;
        set[k] = SECRET_HEADERS.has(k) ? '<provider credential, injected>' : (s.header.raw_value?.toString('latin1') ?? '');
      }
      out.outcome = 'forwarded';
      out.upstream = {
        headers: set,
        removedHeaders: mutation?.remove_headers ?? [],
        body: b.replaceBody ? JSON.parse(b.replaceBody.toString('utf8')) as unknown : undefined,
      };
    }
  } catch (err) {
    const e = err instanceof GatewayError ? err : new GatewayError('internal', err instanceof Error ? err.message : String(err));
    out.outcome = 'rejected';
    out.rejection = { status: e.status, code: e.code, message: e.message, param: e.param };
  }
  const state = ex.inspect();
  const d = state.decision;
  out.principal = state.principal;
  out.decision = d
    ? { id: d.id, denied: d.denied, rules: d.rules, transforms: d.transforms, labels: d.labels, dryRunDenials: d.dryRunDenials, redactionRules: d.redactions }
    : undefined;
  out.route = state.route;
  if (state.droppedCandidates.length) out.droppedCandidates = state.droppedCandidates;
  out.redactions = state.redactions;
  out.budgets = wouldApply;
  out.summary = summarize({
    forwarded: out.outcome === 'forwarded',
    rejection: out.rejection as { status: number; code: string; message: string } | undefined,
    denied: d?.denied,
    dryRun: d?.dryRunDenials ?? [],
    redactions: state.redactions.reduce((n, r) => n + r.count, 0),
    route: state.route,
    budgets: wouldApply.budgets.length,
  });
  return out;
}

/**
 * `--path /mcp/<server>`: the body is a JSON-RPC message (or batch); every message is judged by the
 * mcp* rules as the gateway would (docs/mcp.md). Nothing is sent, nothing is counted.
 */
async function explainMcp(snap: Snapshot, services: Services, input: Omit<ExplainInput, 'dir'>, path: string): Promise<Record<string, unknown>> {
  const ex = new McpExchange(services);
  const headers = new Map<string, string>([
    [':method', 'POST'],
    [':path', path],
    ['content-type', 'application/json'],
    ['content-length', String(input.body.length)],
  ]);
  if (input.key) headers.set('authorization', `Bearer ${input.key}`);
  const metadata: Record<string, Record<string, unknown>> = input.claims ? { [JWT_AUTHN_NAMESPACE]: { [snap.core.settings.jwt.payloadKey]: input.claims } } : {};
  const out: Record<string, unknown> = { configRevision: snap.revision, policyRevision: snap.policy.revision };
  // Nothing is sent: a server whose credential is unset here still shows what would be forwarded.
  for (const s of snap.core.mcpServers.values()) if (s.credential.kind !== 'none' && !snap.core.mcpCredentials.has(s.name)) snap.core.mcpCredentials.set(s.name, '<unset>');
  const secret = new Set([...SECRET_HEADERS, ...[...snap.core.mcpServers.values()].map((s) => s.credentialHeader)]);
  try {
    await ex.requestHeaders({ headers, endOfStream: false, metadata, attributes: {} });
    const b = await ex.requestBody(input.body);
    if (b.kind === 'continue') {
      const mutation = b.mutation.build();
      const set: Record<string, string> = {};
      for (const h of mutation?.set_headers ?? []) set[h.header.key] = secret.has(h.header.key) ? '<MCP server credential, injected>' : (h.header.raw_value?.toString('latin1') ?? '');
      out.outcome = 'forwarded';
      out.upstream = { headers: set, removedHeaders: mutation?.remove_headers ?? [], body: b.replaceBody ? (JSON.parse(b.replaceBody.toString('utf8')) as unknown) : 'unchanged' };
    } else {
      out.outcome = 'answered by Tollgate';
      out.response = { status: b.status, body: b.body.length ? (JSON.parse(b.body.toString('utf8')) as unknown) : undefined };
    }
  } catch (err) {
    const e = err instanceof GatewayError ? err : new GatewayError('internal', err instanceof Error ? err.message : String(err));
    out.outcome = 'rejected';
    out.rejection = { status: e.status, code: e.code, message: e.message };
  }
  const state = ex.inspect();
  out.server = state.server;
  out.principal = state.principal;
  out.calls = state.calls;
  return out;
}

export interface SummaryFacts {
  forwarded: boolean;
  rejection?: { status: number; code: string; message: string };
  denied?: { rule: string; status: number; message: string };
  dryRun: { rule: string }[];
  redactions: number;
  route?: { provider: string; upstreamModel: string; region: string };
  budgets: number;
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/** The one line `tollgate explain` starts with: ALLOW (what happens on the way) or DENY (by what). */
export function summarize(f: SummaryFacts): string {
  const dry = f.dryRun.length ? `; dry-run would deny by ${[...new Set(f.dryRun.map((x) => x.rule))].join(', ')}` : '';
  if (f.denied) return `DENY by rule ${f.denied.rule} (${f.denied.status}): ${f.denied.message}${dry}`;
  if (!f.forwarded) {
    const r = f.rejection;
    return `DENY ${r ? `(${r.status} ${r.code}): ${r.message}` : '(not forwarded)'}${dry}`;
  }
  const route = f.route ? `routed to ${f.route.provider} as ${f.route.upstreamModel}${f.route.region ? ` (${f.route.region})` : ''}` : 'no route';
  return `ALLOW, ${plural(f.redactions, 'redaction')}, ${plural(f.budgets, 'budget')}, ${route}${dry}`;
}
