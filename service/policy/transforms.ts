// Request-body transforms a policy can apply, for both client APIs (OpenAI chat/completions and
// embeddings; Anthropic messages with its top-level `system`). They mutate the body in place.
import type { PolicyInput } from './types.ts';

export interface TransformSpec {
  /** Cap on the completion length (max_tokens / max_completion_tokens). */
  maxTokens?: number;
  /** Set the provider-visible end-user id to the principal. */
  forceUser?: boolean;
  /** Text added before any existing system prompt. */
  prependSystem?: string;
  /** Top-level parameters to set (static values). */
  set?: Record<string, unknown>;
  /** Top-level parameters to delete. */
  remove?: string[];
}

/** Body fields transforms may not set or remove: they decide routing and content. */
export const PROTECTED_FIELDS = new Set(['model', 'messages', 'system', 'stream', 'input', 'prompt', 'instructions']);

const GENERATING = new Set(['chat', 'messages', 'completions', 'responses']);

/** The end-user id sent upstream: the principal's user, else its key id. */
export function principalId(p: PolicyInput['principal']): string {
  return p.user || (p.keyId ? `key:${p.keyId}` : `tenant:${p.tenant}`);
}

/** Applies `t` to `input.request.body`; returns what changed (for the decision record). */
export function applyTransform(t: TransformSpec, input: PolicyInput): string[] {
  const req = input.request;
  const body = req.body;
  const changes: string[] = [];
  const generating = GENERATING.has(req.endpoint);

  if (t.maxTokens !== undefined && generating) {
    // OpenAI reasoning models use max_completion_tokens; cap whichever fields the client sent.
    let capped = false;
    for (const field of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
      const v = body[field];
      if (v === undefined || v === null) continue;
      capped = true;
      if (typeof v !== 'number' || v > t.maxTokens) {
        body[field] = t.maxTokens;
        changes.push(`${field}=${t.maxTokens}`);
      }
    }
    if (!capped) {
      // The Responses API names its limit max_output_tokens.
      const field = req.endpoint === 'responses' ? 'max_output_tokens' : 'max_tokens';
      body[field] = t.maxTokens;
      changes.push(`${field}=${t.maxTokens}`);
    }
  }

  if (t.forceUser && generating) {
    const id = principalId(input.principal);
    if (req.api === 'anthropic') {
      const md = body.metadata && typeof body.metadata === 'object' && !Array.isArray(body.metadata) ? (body.metadata as Record<string, unknown>) : {};
      md.user_id = id;
      body.metadata = md;
      changes.push('metadata.user_id');
    } else {
      body.user = id;
      changes.push('user');
    }
  } else if (t.forceUser && req.endpoint === 'embeddings' && req.api === 'openai') {
    body.user = principalId(input.principal);
    changes.push('user');
  }

  if (t.prependSystem !== undefined && generating) {
    const text = t.prependSystem;
    if (req.endpoint === 'responses') {
      // Responses API: the system prompt is `instructions`.
      const ins = body.instructions;
      body.instructions = typeof ins === 'string' && ins !== '' ? `${text}\n\n${ins}` : text;
    } else if (req.api === 'anthropic') {
      const sys = body.system;
      if (typeof sys === 'string' && sys !== '') body.system = `${text}\n\n${sys}`;
      else if (Array.isArray(sys)) body.system = [{ type: 'text', text }, ...sys];
      else body.system = text;
    } else if (Array.isArray(body.messages)) {
      body.messages = [{ role: 'system', content: text }, ...body.messages];
    } else if (typeof body.prompt === 'string') {
      body.prompt = `${text}\n\n${body.prompt}`;
    }
    changes.push('system');
  }

  if (t.set) {
    for (const [k, v] of Object.entries(t.set)) {
      body[k] = structuredClone(v);
      req.params[k] = body[k];
      changes.push(`set ${k}`);
    }
  }
  if (t.remove) {
    for (const k of t.remove) {
      if (k in body) {
        delete body[k];
        delete req.params[k];
        changes.push(`remove ${k}`);
      }
    }
  }
  return changes;
}
