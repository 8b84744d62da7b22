// The CEL context: declared types of every variable (for the checker), how a PolicyInput becomes
// an activation (Maps: ~2.7x faster lookups than plain objects in @bufbuild/cel), a builder that
// derives the request part from the HTTP request, and synthetic samples for load-time checks.
import { T, type Ty } from './checker.ts';
import { int, jsonToCel, LazyActivation, timestampOf } from './activation.ts';
export { jsonToCel, timestampOf };
import type { DeploymentInfo, PolicyInput, PolicyMessage } from './types.ts';

const attrs = T.map(T.string, T.dyn);

export const REQUEST_T = T.record('request', {
  method: T.string,
  path: T.string,
  endpoint: T.string,
  api: T.string,
  headers: T.map(T.string, T.string),
  model: T.string,
  canonicalModel: T.string,
  stream: T.bool,
  params: T.map(T.string, T.dyn),
  messages: T.list(T.record('message', { role: T.string, text: T.string })),
  tokenEstimate: T.int,
  size: T.int,
  body: T.map(T.string, T.dyn),
});

export const PRINCIPAL_T = T.record('principal', {
  keyId: T.string,
  tenant: T.string,
  team: T.string,
  user: T.string,
  groups: T.list(T.string),
  claims: T.map(T.string, T.dyn),
  authMethod: T.string,
});

export const TENANT_T = T.record('tenant', { name: T.string, attributes: attrs, timeZone: T.string });
export const TEAM_T = T.record('team', { name: T.string, attributes: attrs });

/** The `mcp` variable: one JSON-RPC message to an MCP server (docs/mcp.md). Empty strings and map on LLM requests. */
export const MCP_T = T.record('mcp', {
  server: T.string,
  method: T.string,
  tool: T.string,
  arguments: T.map(T.string, T.dyn),
  sessionId: T.string,
});

export const DEPLOYMENT_T = T.record('deployment', {
  id: T.string,
  model: T.string,
  provider: T.string,
  providerApi: T.string,
  region: T.string,
  selfHosted: T.bool,
  dataRetention: T.bool,
  inputPricePerM: T.double,
  outputPricePerM: T.double,
  contextWindow: T.int,
});

/** Variables visible to an expression; `variables` holds the policy's earlier-declared variables. */
export function declaredVars(variables: ReadonlyMap<string, Ty>, withDeployment: boolean): Map<string, Ty> {
  const m = new Map<string, Ty>([
    ['request', REQUEST_T],
    ['principal', PRINCIPAL_T],
    ['tenant', TENANT_T],
    ['team', TEAM_T],
    ['mcp', MCP_T],
    ['now', T.timestamp],
    ['variables', T.record('variables', Object.fromEntries(variables))],
  ]);
  if (withDeployment) m.set('deployment', DEPLOYMENT_T);
  return m;
}

/**
 * The activation for one evaluation (without `variables`/`deployment`), built lazily
 * (./activation.ts). `withBody` converts `request.body` (possibly large); it is only needed when
 * some expression reads it.
 */
export function baseActivation(input: PolicyInput, withBody = true): LazyActivation {
  return new LazyActivation(input, withBody);
}

// Route rules judge the same few deployments on every request: their CEL values are built once per
// DeploymentInfo object (routing's catalog makes them at config load and never mutates them; a
// reload makes new ones, and the WeakMap lets the old ones go). CEL never mutates a value.
const deploymentValues = new WeakMap<DeploymentInfo, Map<string, unknown>>();

export function cachedDeploymentValue(d: DeploymentInfo): Map<string, unknown> {
  let v = deploymentValues.get(d);
  if (!v) {
    v = deploymentValue(d);
    deploymentValues.set(d, v);
  }
  return v;
}

export function deploymentValue(d: DeploymentInfo): Map<string, unknown> {
  return new Map<string, unknown>([
    ['id', d.id],
    ['model', d.model],
    ['provider', d.provider],
    ['providerApi', d.providerApi],
    ['region', d.region],
    ['selfHosted', d.selfHosted],
    ['dataRetention', d.dataRetention],
    ['inputPricePerM', d.inputPricePerM],
    ['outputPricePerM', d.outputPricePerM],
    ['contextWindow', int(d.contextWindow)],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Building the request part of a PolicyInput from an HTTP request.

const ENDPOINTS: [RegExp, string][] = [
  [/\/chat\/completions$/, 'chat'],
  [/\/messages$/, 'messages'],
  [/\/embeddings$/, 'embeddings'],
  [/\/responses$/, 'responses'],
  [/\/models(\/[^/]*)?$/, 'models'],
  [/\/completions$/, 'completions'],
];

// The last path's answer: the gateway sees a handful of paths (one per API), each request a new string of one of
// them; comparing it with the last one is cheaper than the regexes.
let lastPath = '';
let lastEndpoint = 'other';

export function endpointOf(path: string): string {
  if (path === lastPath) return lastEndpoint;
  const e = matchEndpoint(path);
  lastPath = path;
  lastEndpoint = e;
  return e;
}

/** endpointOf without the one-entry memo. */
export function matchEndpoint(path: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  for (const [re, name] of ENDPOINTS) if (re.test(p)) return name;
  return 'other';
}

// Headers a policy must never see: credentials and Tollgate's internal ones.
const HIDDEN_HEADERS = new Set(['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie']);

export function policyHeaders(headers: Record<string, string> | ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  // The gateway hands in its header Map as is (no intermediate object per request); forEach with `out` as
  // `this`: no [key, value] entry array per header and no closure per call.
  if (headers instanceof Map) headers.forEach(addToPolicyHeaders, out);
  else for (const k of Object.keys(headers)) addPolicyHeader(out, k, (headers as Record<string, string>)[k] as string);
  return out;
}

function addToPolicyHeaders(this: Record<string, string>, v: string, k: string): void {
  addPolicyHeader(this, k, v);
}

function addPolicyHeader(out: Record<string, string>, k: string, v: string): void {
  if (k.charCodeAt(0) === 58 /* ':' pseudo-header */) return;
  const key = k.toLowerCase();
  if (HIDDEN_HEADERS.has(key) || key.startsWith('x-tollgate-')) return;
  out[key] = v;
}

function partsText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    else if (part && typeof part === 'object') {
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') texts.push(p.text);
      // Anthropic tool_result blocks carry text in `content`.
      else if (p.type === 'tool_result') texts.push(partsText(p.content));
    }
  }
  return texts.join('\n');
}

/** Every message's text, system prompt first (Anthropic's top-level `system` included). */
export function messagesOf(body: Record<string, unknown>, api: 'openai' | 'anthropic'): PolicyMessage[] {
  const out: PolicyMessage[] = [];
  if (api === 'anthropic' && body.system !== undefined) out.push({ role: 'system', text: partsText(body.system) });
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      if (!m || typeof m !== 'object') continue;
      const msg = m as Record<string, unknown>;
      let text = partsText(msg.content);
      // Tool-call arguments are model-bound text too (OpenAI).
      if (Array.isArray(msg.tool_calls)) {
        for (const tc of msg.tool_calls) {
          const args = (tc as { function?: { arguments?: unknown } })?.function?.arguments;
          if (typeof args === 'string') text += (text ? '\n' : '') + args;
        }
      }
      out.push({ role: typeof msg.role === 'string' ? msg.role : '', text });
    }
  }
  // Responses API: `instructions` is the system prompt.
  if (typeof body.instructions === 'string') out.push({ role: 'system', text: body.instructions });
  if (body.input !== undefined) {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    for (const i of inputs) {
      if (typeof i === 'string') out.push({ role: 'user', text: i });
      else if (i && typeof i === 'object') {
        const item = i as Record<string, unknown>;
        // Responses input items: messages, function calls (arguments) and their outputs (role `tool`, as in chat).
        if (item.type === 'function_call') out.push({ role: 'assistant', text: typeof item.arguments === 'string' ? item.arguments : '' });
        else if (item.type === 'function_call_output') out.push({ role: 'tool', text: partsText(item.output) });
        else if (item.type === undefined || item.type === 'message') out.push({ role: typeof item.role === 'string' ? item.role : 'user', text: partsText(item.content) });
      }
    }
  }
  if (typeof body.prompt === 'string') out.push({ role: 'user', text: body.prompt });
  return out;
}

const NON_PARAMS = new Set(['model', 'messages', 'stream', 'system', 'input', 'prompt', 'instructions']);

/** Rough token count (~4 characters per token, plus a little per message). */
export function estimateTokens(messages: PolicyMessage[]): number {
  let chars = 0;
  for (const m of messages) chars += m.text.length;
  return Math.ceil(chars / 4) + messages.length * 4;
}

export interface RequestFacts {
  method: string;
  path: string;
  api: 'openai' | 'anthropic';
  headers: Record<string, string> | ReadonlyMap<string, string>;
  body: Record<string, unknown>;
  /** Body size in bytes (defaults to the JSON length of `body`). */
  size?: number;
}

/** Builds `PolicyInput.request` from the HTTP facts. The body object is shared, not copied. */
export function buildRequestInput(f: RequestFacts): PolicyInput['request'] {
  const params: Record<string, unknown> = {};
  const body = f.body;
  for (const k of Object.keys(body)) if (!NON_PARAMS.has(k)) params[k] = body[k];
  const messages = messagesOf(f.body, f.api);
  return {
    // The gateway's method is 'POST' for every request reaching here: no new string for it.
    method: f.method === 'POST' ? 'POST' : f.method.toUpperCase(),
    path: f.path,
    endpoint: endpointOf(f.path),
    api: f.api,
    headers: policyHeaders(f.headers),
    model: typeof f.body.model === 'string' ? f.body.model : '',
    stream: f.body.stream === true,
    params,
    messages,
    tokenEstimate: estimateTokens(messages),
    size: f.size ?? Buffer.byteLength(JSON.stringify(f.body)),
    body: f.body,
  };
}

// ---------------------------------------------------------------------------------------------
// Synthetic samples for load-time evaluation: realistic values of every documented type, varied
// so that conditions take different branches.

export function sampleInputs(now: Date): PolicyInput[] {
  const openai = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: [{ type: 'text', text: 'Summarise this: jane@example.com paid with 4111 1111 1111 1111' }] },
    ],
    temperature: 0.7,
    max_tokens: 256,
    top_p: 1,
    user: 'u-123',
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
    metadata: { project: 'demo' },
  };
  const anthropic = {
    model: 'claude-3-5-sonnet-latest',
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'hello' }],
    max_tokens: 1024,
    stream: true,
    metadata: { user_id: 'u-9' },
  };
  const embeddings = { model: 'text-embedding-3-small', input: ['a', 'b'] };
  const principal = (tenant: string, team: string, user: string, groups: string[], authMethod: 'key' | 'jwt') => ({
    keyId: `key-${tenant}`,
    tenant,
    team,
    user,
    groups,
    claims: authMethod === 'jwt' ? { sub: user, email: `${user}@example.com`, groups, iss: 'https://idp.example.com', exp: 1893456000 } : {},
    authMethod,
  });
  return [
    {
      request: buildRequestInput({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers: { 'user-agent': 'openai-node', 'x-forwarded-for': '10.1.2.3', 'x-request-id': 'r-1' }, body: openai }),
      principal: principal('acme', 'research', 'alice', ['admins', 'ml'], 'jwt'),
      tenant: { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu', regions: ['eu-west-1'], maxTokens: 8192 } },
      team: { name: 'research', attributes: { costCenter: 'cc-1', budgetUsd: 500 } },
      now,
    },
    {
      request: buildRequestInput({ method: 'POST', path: '/v1/messages', api: 'anthropic', headers: { 'anthropic-version': '2023-06-01' }, body: anthropic }),
      principal: principal('globex', 'default', '', [], 'key'),
      tenant: { name: 'globex', attributes: { tier: 'free', residency: 'any' } },
      team: { name: 'default', attributes: {} },
      now: new Date(now.getTime() + 13 * 3600_000),
    },
    {
      request: buildRequestInput({ method: 'POST', path: '/v1/embeddings', api: 'openai', headers: {}, body: embeddings }),
      principal: principal('initech', 'ops', 'bob', ['ops'], 'key'),
      tenant: { name: 'initech', attributes: {} },
      team: { name: 'ops', attributes: {} },
      now: new Date(now.getTime() + 5 * 86400_000),
    },
    {
      // An MCP tool call (service/mcp): `request` is the HTTP POST to /mcp/<server>.
      request: buildRequestInput({ method: 'POST', path: '/mcp/github', api: 'openai', headers: { 'mcp-session-id': 's-1' }, body: {} }),
      principal: principal('acme', 'research', 'alice', ['eng'], 'key'),
      tenant: { name: 'acme', attributes: { tier: 'enterprise' } },
      team: { name: 'research', attributes: {} },
      mcp: { server: 'github', method: 'tools/call', tool: 'create_issue', arguments: { repo: 'acme/app', title: 'Bug', labels: ['p1'], count: 2 }, sessionId: 's-1' },
      now,
    },
  ];
}

export const SAMPLE_DEPLOYMENTS: DeploymentInfo[] = [
  { id: 'gpt-4o/0', model: 'gpt-4o', provider: 'openai', providerApi: 'openai', region: 'us-east-1', selfHosted: false, dataRetention: true, inputPricePerM: 2.5, outputPricePerM: 10, contextWindow: 128000 },
  { id: 'gpt-4o/1', model: 'gpt-4o', provider: 'azure-eu', providerApi: 'azure', region: 'eu-west-1', selfHosted: false, dataRetention: false, inputPricePerM: 2.5, outputPricePerM: 10, contextWindow: 128000 },
  { id: 'llama/0', model: 'llama-3.1-70b', provider: 'vllm-local', providerApi: 'openai', region: 'self-hosted', selfHosted: true, dataRetention: false, inputPricePerM: 0, outputPricePerM: 0, contextWindow: 32768 },
];
