// Which client API endpoint a request is for. Anything else is refused before authentication
// work is wasted on it.
import type { ClientApi } from '../errors.ts';
import type { Operation } from '../providers/types.ts';

export type Endpoint =
  | { kind: 'inference'; name: 'chat' | 'messages' | 'embeddings' | 'responses' | 'count_tokens'; api: ClientApi; op: Operation }
  /** `id`: `GET /v1/models/{id}` (retrieve); absent for the list. */
  | { kind: 'models'; api: ClientApi; id?: string };

const ROUTES: Record<string, { method: string; endpoint: Endpoint }> = {
  '/v1/chat/completions': { method: 'POST', endpoint: { kind: 'inference', name: 'chat', api: 'openai', op: 'chat' } },
  '/v1/responses': { method: 'POST', endpoint: { kind: 'inference', name: 'responses', api: 'openai', op: 'responses' } },
  '/v1/embeddings': { method: 'POST', endpoint: { kind: 'inference', name: 'embeddings', api: 'openai', op: 'embeddings' } },
  '/v1/messages': { method: 'POST', endpoint: { kind: 'inference', name: 'messages', api: 'anthropic', op: 'chat' } },
  '/v1/models': { method: 'GET', endpoint: { kind: 'models', api: 'openai' } },
  '/v1/messages/count_tokens': { method: 'POST', endpoint: { kind: 'inference', name: 'count_tokens', api: 'anthropic', op: 'count_tokens' } },
};

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  const p = q >= 0 ? path.slice(0, q) : path;
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** The route for a path, whatever the method (so a wrong method can get a 405). */
export function matchEndpoint(path: string): { method: string; endpoint: Endpoint } | undefined {
  const p = pathOnly(path);
  const exact = ROUTES[p];
  if (exact) return exact;
  if (p.startsWith(MODEL_PREFIX) && p.length > MODEL_PREFIX.length) {
    const id = decodePathId(p.slice(MODEL_PREFIX.length));
    if (id !== undefined) return { method: 'GET', endpoint: { kind: 'models', api: 'openai', id } };
  }
  return undefined;
}

const MODEL_PREFIX = '/v1/models/';

/** The model id of `/v1/models/{id}` (SDKs percent-encode it; ids may contain `/`). Undefined when malformed. */
function decodePathId(raw: string): string | undefined {
  try {
    const id = decodeURIComponent(raw);
    return id === '' || /[\x00-\x1f]/.test(id) ? undefined : id;
  } catch {
    return undefined;
  }
}

/** Client API implied by a path, for error shapes before the endpoint is known to be valid. */
export function apiForPath(path: string): ClientApi {
  return pathOnly(path).startsWith('/v1/messages') ? 'anthropic' : 'openai';
}

/** MCP servers' endpoints, `/mcp/<server>` (POST JSON-RPC, GET SSE stream, DELETE session): handled by service/mcp. */
export const MCP_PREFIX = '/mcp/';

export function isMcpPath(path: string): boolean {
  return pathOnly(path).startsWith(MCP_PREFIX);
}
