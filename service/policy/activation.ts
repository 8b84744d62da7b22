// The CEL activation of one evaluation, built lazily.
//
// Building every variable as Maps up front (headers, messages, claims, attributes, mcp, the
// timestamp) cost more than evaluating a typical bundle, whose rules read a handful of fields.
// This activation snapshots the input's values when it is created, converts a part only when an
// expression first reads it, and memoizes it, so every read of one evaluation sees the same value:
// - `a.request`, `a.principal`, … (what @bufbuild/cel and whole-variable reads use) build the full
//   Map of that variable, exactly as the eager version did;
// - `a.field(root, name)` (the native fast path, for `request.model`-style selects) converts only
//   that field, the same value the Map holds under that key.
// `params` and `body` share objects with the request body, which transforms and the gateway
// mutate later; they are converted at creation (as before), so later reads cannot see mutations.
import type { PolicyInput } from './types.ts';

/** Activation key holding `now` as epoch milliseconds (not a CEL identifier, so not user-visible). */
export const NOW_MS = '@nowMs';

export function int(n: number): bigint {
  return Number.isFinite(n) ? BigInt(Math.trunc(n)) : 0n;
}

/**
 * Untrusted JSON → CEL input: objects become Maps. @bufbuild/cel converts plain objects by looking
 * at `value.constructor.name`, so a client-sent key named "constructor" would make the whole
 * object unreadable (every rule touching it errors). Maps have no such keys. Non-JSON values
 * (undefined, functions) are dropped; they cannot come from JSON.parse anyway.
 */
export function jsonToCel(v: unknown, depth = 0): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return v;
  if (depth > 64) return null;
  if (Array.isArray(v)) return v.map((x) => jsonToCel(x, depth + 1) ?? null);
  if (typeof v === 'object') {
    const m = new Map<string, unknown>();
    for (const k of Object.keys(v)) {
      const x = jsonToCel((v as Record<string, unknown>)[k], depth + 1);
      if (x !== undefined) m.set(k, x);
    }
    return m;
  }
  return undefined;
}

/** Request headers as the CEL map both activations give (string values only). */
export function headerMap(h: Record<string, string>): Map<string, string> {
  const m = new Map<string, string>();
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (typeof v === 'string') m.set(k, v);
  }
  return m;
}

/** google.protobuf.Timestamp message, which @bufbuild/cel accepts as a timestamp value. */
export function timestampOf(d: Date): unknown {
  return timestampOfMs(d.getTime());
}

function timestampOfMs(ms: number): unknown {
  const seconds = Math.floor(ms / 1000);
  return { $typeName: 'google.protobuf.Timestamp', seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

const REQUEST_FIELDS = ['method', 'path', 'endpoint', 'api', 'headers', 'model', 'canonicalModel', 'stream', 'params', 'messages', 'tokenEstimate', 'size'] as const;
const PRINCIPAL_FIELDS = ['keyId', 'tenant', 'team', 'user', 'groups', 'claims', 'authMethod'] as const;
const TENANT_FIELDS = ['name', 'attributes', 'timeZone'] as const;
const TEAM_FIELDS = ['name', 'attributes'] as const;
const MCP_FIELDS = ['server', 'method', 'tool', 'arguments', 'sessionId'] as const;

/** The variables whose fields the fast path may read through `field()`. */
export type ActivationRoot = 'request' | 'principal' | 'tenant' | 'team' | 'mcp';

type Req = PolicyInput['request'];

export class LazyActivation {
  [key: string]: unknown;
  /** Set per expression by the evaluator (a policy's computed variables, a route rule's deployment). */
  variables: unknown = undefined;
  deployment: unknown = undefined;

  // Snapshot of the input's scalar parts and the references the lazy parts are built from.
  readonly #req: Req;
  readonly #model: string;
  readonly #canonical: string;
  readonly #params: unknown;
  readonly #body: unknown;
  readonly #input: PolicyInput;
  readonly #nowMs: number;
  // Memoized conversions.
  #headers: Map<string, string> | undefined;
  #messages: Map<string, unknown>[] | undefined;
  #groups: string[] | undefined;
  #claims: unknown;
  #tenantAttrs: unknown;
  #teamAttrs: unknown;
  #mcpArgs: unknown;
  #request: Map<string, unknown> | undefined;
  #principal: Map<string, unknown> | undefined;
  #tenant: Map<string, unknown> | undefined;
  #team: Map<string, unknown> | undefined;
  #mcp: Map<string, unknown> | undefined;
  #now: unknown;

  /**
   * `withBody`: convert `request.body` (possibly large; only when some expression reads it).
   * `candidate`: a model other than the request's, sharing the converted parts of `base`.
   */
  constructor(input: PolicyInput, withBody: boolean, candidate?: { base: LazyActivation; model: string; canonical: string }) {
    const r = input.request;
    this.#input = input;
    this.#req = r;
    this.#nowMs = input.now.getTime();
    if (candidate) {
      const b = candidate.base;
      this.#model = candidate.model;
      this.#canonical = candidate.canonical || candidate.model;
      this.#params = b.#params;
      let body = b.#body;
      // `request.body.model` names the candidate too (shallow copy: other fields shared).
      if (body instanceof Map) {
        body = new Map(body as Map<string, unknown>);
        (body as Map<string, unknown>).set('model', candidate.model);
      }
      this.#body = body;
      // Parts independent of the model: reuse the base's conversions.
      this.#headers = b.#headers;
      this.#messages = b.#messages;
    } else {
      this.#model = r.model;
      this.#canonical = r.canonicalModel || r.model;
      this.#params = jsonToCel(r.params);
      this.#body = withBody ? jsonToCel(r.body) : undefined;
    }
  }

  /** The activation for a candidate model: `request.model`, `request.canonicalModel` and `request.body.model` replaced. */
  forModel(model: string, canonical: string): LazyActivation {
    // The base's lazily built parts are shared; build them now so the candidate's are the same values.
    this.#headersValue();
    this.#messagesValue();
    return new LazyActivation(this.#input, false, { base: this, model, canonical });
  }

  #headersValue(): Map<string, string> {
    return (this.#headers ??= headerMap(this.#req.headers));
  }

  #messagesValue(): Map<string, unknown>[] {
    return (this.#messages ??= this.#req.messages.map((m) => new Map<string, unknown>([['role', m.role], ['text', m.text]])));
  }

  /** One field of a top-level variable: the value its Map holds under `name` (undefined when absent). */
  field(root: ActivationRoot, name: string): unknown {
    switch (root) {
      case 'request':
        return this.#requestField(name);
      case 'principal':
        return this.#principalField(name);
      case 'tenant':
        return this.#tenantField(name);
      case 'team':
        return this.#teamField(name);
      case 'mcp':
        return this.#mcpField(name);
    }
  }

  #requestField(name: string): unknown {
    const r = this.#req;
    switch (name) {
      case 'method':
        return r.method;
      case 'path':
        return r.path;
      case 'endpoint':
        return r.endpoint;
      case 'api':
        return r.api;
      case 'headers':
        return this.#headersValue();
      case 'model':
        return this.#model;
      case 'canonicalModel':
        return this.#canonical;
      case 'stream':
        return r.stream;
      case 'params':
        return this.#params;
      case 'messages':
        return this.#messagesValue();
      case 'tokenEstimate':
        return int(r.tokenEstimate);
      case 'size':
        return int(r.size);
      case 'body':
        return this.#body;
      default:
        return undefined;
    }
  }

  #principalField(name: string): unknown {
    const p = this.#input.principal;
    switch (name) {
      case 'keyId':
        return p.keyId;
      case 'tenant':
        return p.tenant;
      case 'team':
        return p.team;
      case 'user':
        return p.user;
      case 'groups':
        return (this.#groups ??= p.groups.filter((g) => typeof g === 'string'));
      case 'claims':
        return (this.#claims ??= jsonToCel(p.claims));
      case 'authMethod':
        return p.authMethod;
      default:
        return undefined;
    }
  }

  #tenantField(name: string): unknown {
    const t = this.#input.tenant;
    switch (name) {
      case 'name':
        return t.name;
      case 'attributes':
        return (this.#tenantAttrs ??= jsonToCel(t.attributes));
      case 'timeZone':
        return t.timeZone ?? 'UTC';
      default:
        return undefined;
    }
  }

  #teamField(name: string): unknown {
    const t = this.#input.team;
    switch (name) {
      case 'name':
        return t.name;
      case 'attributes':
        return (this.#teamAttrs ??= jsonToCel(t.attributes));
      default:
        return undefined;
    }
  }

  #mcpField(name: string): unknown {
    const m = this.#input.mcp;
    switch (name) {
      case 'server':
        return m?.server ?? '';
      case 'method':
        return m?.method ?? '';
      case 'tool':
        return m?.tool ?? '';
      case 'arguments':
        return (this.#mcpArgs ??= jsonToCel(m?.arguments ?? {}));
      case 'sessionId':
        return m?.sessionId ?? '';
      default:
        return undefined;
    }
  }

  #mapOf(root: ActivationRoot, fields: readonly string[]): Map<string, unknown> {
    const m = new Map<string, unknown>();
    for (const f of fields) m.set(f, this.field(root, f));
    return m;
  }

  get request(): Map<string, unknown> {
    if (!this.#request) {
      const m = this.#mapOf('request', REQUEST_FIELDS);
      if (this.#body !== undefined) m.set('body', this.#body);
      this.#request = m;
    }
    return this.#request;
  }

  get principal(): Map<string, unknown> {
    return (this.#principal ??= this.#mapOf('principal', PRINCIPAL_FIELDS));
  }

  get tenant(): Map<string, unknown> {
    return (this.#tenant ??= this.#mapOf('tenant', TENANT_FIELDS));
  }

  get team(): Map<string, unknown> {
    return (this.#team ??= this.#mapOf('team', TEAM_FIELDS));
  }

  get mcp(): Map<string, unknown> {
    return (this.#mcp ??= this.#mapOf('mcp', MCP_FIELDS));
  }

  get now(): unknown {
    return (this.#now ??= timestampOfMs(this.#nowMs));
  }

  get [NOW_MS](): number {
    return this.#nowMs;
  }
}
