// `GET /v1/models` and `GET /v1/models/{id}` in the shape each SDK expects. Tollgate answers these itself (no
// upstream), from the caller's policy-filtered model list (policy-input.ts).
//   OpenAI:    list {object:"list", data:[{id, object:"model", created, owned_by}]}; retrieve = one such object.
//   Anthropic: list {data:[{type:"model", id, display_name, created_at}], has_more, first_id, last_id} (one page:
//              `limit`, `after_id` and `before_id` are honoured); retrieve = one such object.
// The Anthropic shape is chosen when the request carries `anthropic-version` (every Anthropic SDK sends it).
import type { ClientApi } from '../errors.ts';
import type { OpenAIModelObject } from '../routing/index.ts';

export interface AnthropicModelObject {
  type: 'model';
  id: string;
  display_name: string;
  created_at: string;
}

/** The client API a models request speaks (its error shape too). */
export function modelsApi(headers: ReadonlyMap<string, string>): ClientApi {
  return headers.has('anthropic-version') ? 'anthropic' : 'openai';
}

function anthropicModel(m: OpenAIModelObject): AnthropicModelObject {
  return { type: 'model', id: m.id, display_name: m.id, created_at: new Date(m.created * 1000).toISOString() };
}

/** Anthropic's page: after_id / before_id cursors (ids), limit 1..1000 (default 20, as Anthropic's API). */
function anthropicPage(models: OpenAIModelObject[], query: URLSearchParams): Record<string, unknown> {
  let list = models;
  const after = query.get('after_id');
  const before = query.get('before_id');
  if (after) {
    const i = list.findIndex((m) => m.id === after);
    list = i >= 0 ? list.slice(i + 1) : [];
  } else if (before) {
    const i = list.findIndex((m) => m.id === before);
    list = i >= 0 ? list.slice(0, i) : [];
  }
  const n = Number(query.get('limit') ?? '20');
  const limit = Number.isInteger(n) && n >= 1 ? Math.min(n, 1000) : 20;
  const page = before ? list.slice(Math.max(0, list.length - limit)) : list.slice(0, limit);
  const data = page.map(anthropicModel);
  return { data, has_more: page.length < list.length, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

/** The list body for `api`. `path` may carry the Anthropic paging query. */
export function modelsListBody(api: ClientApi, models: OpenAIModelObject[], path: string): Buffer {
  if (api === 'openai') return Buffer.from(JSON.stringify({ object: 'list', data: models }));
  const q = path.indexOf('?');
  return Buffer.from(JSON.stringify(anthropicPage(models, new URLSearchParams(q >= 0 ? path.slice(q + 1) : ''))));
}

/** One model for `api`. */
export function modelBody(api: ClientApi, model: OpenAIModelObject): Buffer {
  return Buffer.from(JSON.stringify(api === 'openai' ? model : anthropicModel(model)));
}
