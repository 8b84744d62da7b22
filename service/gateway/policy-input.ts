// Builds the CEL context (`request`, `principal`, `tenant`, `team`, `now`) from a parsed request.
import type { Principal } from '../identity/principal.ts';
import type { PolicyInput, PolicyMessage } from '../policy/types.ts';
import type { ClientRequest } from '../providers/types.ts';
import { toOpenAIModel, type OpenAIModelObject } from '../routing/index.ts';
import type { Snapshot } from './context.ts';
import type { Endpoint } from './endpoints.ts';

/** Headers policies never see: credentials and our own routing headers. */
const HIDDEN = new Set(['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'proxy-authorization']);

export function policyHeaders(h: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of h) {
    if (k.startsWith(':') || k.startsWith('x-tollgate-') || HIDDEN.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function partText(p: unknown): string {
  if (typeof p === 'string') return p;
  if (!p || typeof p !== 'object') return '';
  const o = p as Record<string, unknown>;
  if (typeof o.text === 'string') return o.text;
  if (o.type === 'tool_result') return contentText(o.content);
  return '';
}

function contentText(c: unknown): string {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map(partText).filter(Boolean).join('\n');
  return '';
}

/** Every message's text, system prompt first (role `system`), for both client APIs. */
export function messagesOf(req: ClientRequest): PolicyMessage[] {
  const out: PolicyMessage[] = [];
  const b = req.body;
  if (req.op === 'embeddings') {
    const inp = b.input;
    const items = Array.isArray(inp) ? inp : [inp];
    for (const i of items) if (typeof i === 'string') out.push({ role: 'user', text: i });
    return out;
  }
  if (b.system !== undefined) out.push({ role: 'system', text: contentText(b.system) });
  if (Array.isArray(b.messages)) {
    for (const m of b.messages) {
      if (!m || typeof m !== 'object') continue;
      const mm = m as Record<string, unknown>;
      const role = typeof mm.role === 'string' ? mm.role : '';
      let text = contentText(mm.content);
      if (Array.isArray(mm.tool_calls)) {
        const args = mm.tool_calls
          .map((tc) => ((tc as { function?: { arguments?: unknown } }).function?.arguments))
          .filter((a): a is string => typeof a === 'string');
        if (args.length) text = [text, ...args].filter(Boolean).join('\n');
      }
      out.push({ role, text });
    }
  }
  return out;
}

export function buildPolicyInput(
  snap: Snapshot,
  ep: Extract<Endpoint, { kind: 'inference' }>,
  req: ClientRequest,
  principal: Principal,
  headers: ReadonlyMap<string, string>,
  method: string,
  path: string,
  size: number,
  now: Date,
  estimateTokens: (text: string, model: string) => number,
): PolicyInput {
  const messages = messagesOf(req);
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(req.body)) if (k !== 'messages' && k !== 'model' && k !== 'system' && k !== 'input') params[k] = v;
  const tenant = snap.core.tenants.get(principal.tenant);
  const team = principal.team ? snap.core.teams.get(`${principal.tenant}/${principal.team}`) : undefined;
  return {
    request: {
      method,
      path,
      endpoint: ep.name,
      api: ep.api,
      headers: policyHeaders(headers),
      model: req.model,
      stream: req.stream,
      params,
      messages,
      tokenEstimate: estimateTokens(messages.map((m) => m.text).join('\n'), req.model) + messages.length * 4,
      size,
      body: req.body,
    },
    principal: { ...principal },
    tenant: { name: principal.tenant, attributes: tenant?.attributes ?? {} },
    team: { name: principal.team, attributes: team?.attributes ?? {} },
    now,
  };
}

/**
 * `GET /v1/models`: exactly the models this caller's policies allow — each model is evaluated as
 * if requested, and must keep at least one deployment that passes the route constraints.
 */
export function listAllowedModels(snap: Snapshot, principal: Principal, headers: ReadonlyMap<string, string>, now: Date): OpenAIModelObject[] {
  const out: OpenAIModelObject[] = [];
  const created = Math.floor(snap.loadedAt.getTime() / 1000);
  const tenant = snap.core.tenants.get(principal.tenant);
  const team = principal.team ? snap.core.teams.get(`${principal.tenant}/${principal.team}`) : undefined;
  for (const listing of snap.catalog.listModels()) {
    const model = snap.catalog.resolve(listing.id);
    if (!model) continue;
    const body: Record<string, unknown> = { model: listing.id, messages: [] };
    const input: PolicyInput = {
      request: {
        method: 'POST',
        path: listing.kind === 'embedding' ? '/v1/embeddings' : '/v1/chat/completions',
        endpoint: listing.kind === 'embedding' ? 'embeddings' : 'chat',
        api: 'openai',
        headers: policyHeaders(headers),
        model: listing.id,
        stream: false,
        params: {},
        messages: [],
        tokenEstimate: 0,
        size: 0,
        body,
      },
      principal: { ...principal },
      tenant: { name: principal.tenant, attributes: tenant?.attributes ?? {} },
      team: { name: principal.team, attributes: team?.attributes ?? {} },
      now,
    };
    const d = snap.policy.evaluate(input);
    if (d.denied) continue;
    const anyRoute = model.entries.some((e) => d.routeCheck(e.info).ok);
    if (anyRoute) out.push(toOpenAIModel(listing, created));
  }
  return out;
}
