// Typed errors, and the one place they become client responses.
// Every layer throws a GatewayError; only renderError() decides what the client sees.

export type ClientApi = 'openai' | 'anthropic';
/** Whose error shape a response takes: an LLM client API, or `mcp` (JSON-RPC error objects, service/mcp). */
export type ErrorApi = ClientApi | 'mcp';

/** JSON-RPC error codes of Tollgate's own MCP errors (docs/mcp.md). */
export const MCP_ERROR_CODE: Record<ErrorKind, number> = {
  invalid_request: -32600,
  authentication: -32003,
  permission: -32001,
  not_found: -32003,
  too_large: -32600,
  unprocessable: -32602,
  rate_limit: -32002,
  internal: -32603,
  upstream: -32003,
  unavailable: -32003,
  timeout: -32003,
};

export type ErrorKind =
  | 'invalid_request' // 400
  | 'authentication' // 401
  | 'permission' // 403
  | 'not_found' // 404
  | 'too_large' // 413
  | 'unprocessable' // 422
  | 'rate_limit' // 429
  | 'internal' // 500
  | 'upstream' // 502
  | 'unavailable' // 503
  | 'timeout'; // 504

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  authentication: 401,
  permission: 403,
  not_found: 404,
  too_large: 413,
  unprocessable: 422,
  rate_limit: 429,
  internal: 500,
  upstream: 502,
  unavailable: 503,
  timeout: 504,
};

// OpenAI's `error.type` values, so SDKs map them to their exception classes.
const OPENAI_TYPE: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'invalid_request_error',
  too_large: 'invalid_request_error',
  unprocessable: 'invalid_request_error',
  rate_limit: 'rate_limit_exceeded',
  internal: 'server_error',
  upstream: 'server_error',
  unavailable: 'server_error',
  timeout: 'server_error',
};

// Anthropic's `error.type` values (https://docs.anthropic.com/en/api/errors).
const ANTHROPIC_TYPE: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  unprocessable: 'invalid_request_error',
  rate_limit: 'rate_limit_error',
  internal: 'api_error',
  upstream: 'api_error',
  unavailable: 'overloaded_error',
  timeout: 'api_error',
};

export interface GatewayErrorOptions {
  /** Machine-readable code, e.g. `invalid_api_key`, `model_not_found`, `policy_denied`. */
  code?: string;
  /** The offending request field, e.g. `messages[0].role`. */
  param?: string;
  /** Extra response headers (e.g. `retry-after`, `x-ratelimit-*`). */
  headers?: Record<string, string>;
  /** Overrides the status implied by the kind (e.g. a policy that denies with 451). */
  status?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly param: string | undefined;
  readonly headers: Record<string, string>;
  readonly status: number;

  constructor(kind: ErrorKind, message: string, opts: GatewayErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.kind = kind;
    this.code = opts.code ?? kind;
    this.param = opts.param;
    this.headers = opts.headers ?? {};
    this.status = opts.status ?? STATUS[kind];
  }
}

export interface RenderedError {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

// ---- credentials in provider text ----------------------------------------------------------
// A provider error can quote what it received (some echo request headers): its text is scrubbed
// before it becomes a client body, a log line or lineage. Known values are the configured provider
// credentials (registered by every config load); patterns catch credential-shaped text.

const knownSecrets = new Set<string>();
const MAX_KNOWN_SECRETS = 4096;
/** Shorter values are not scrubbed by value (they would match ordinary words); patterns still apply. */
const MIN_SECRET_LENGTH = 8;
export const SCRUBBED = '[redacted]';

/** Registers credential values to scrub from provider text (AWS `AKID:SECRET[:TOKEN]`: each part too). */
export function registerSecrets(values: Iterable<string>): void {
  for (const v of values) {
    for (const part of [v, ...v.split(':')]) {
      if (part.length >= MIN_SECRET_LENGTH && knownSecrets.size < MAX_KNOWN_SECRETS) knownSecrets.add(part);
    }
  }
}

const SECRET_PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // Echoed headers: `Authorization: Bearer …`, `"x-api-key": "…"`, `api-key=…`.
  [/\b(authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|x-amz-security-token|cookie|set-cookie)(["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|aws4-hmac-sha256)\s+)?[^\s"',;}]+/gi, `$1$2${SCRUBBED}`],
  // A token after Bearer/Basic: 8+ token characters with a digit or symbol (not an ordinary word).
  [/\b(bearer|basic)\s+(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${SCRUBBED}`],
  [/\b(Credential|Signature)=[^\s,"']+/g, `$1=${SCRUBBED}`],
  [/\bsk-[A-Za-z0-9_-]{8,}/g, SCRUBBED], // OpenAI, Anthropic (sk-ant-…)
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, SCRUBBED], // AWS access key ids
  [/\bAIza[0-9A-Za-z_-]{30,}/g, SCRUBBED], // Google API keys
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, SCRUBBED], // JWTs
];

function scrubKnown(text: string): string {
  let out = text;
  for (const s of knownSecrets) if (out.includes(s)) out = out.split(s).join(SCRUBBED);
  return out;
}

/** Text from a provider, safe to show: credentials removed (known values and credential-shaped text). */
export function scrubSecrets(text: string): string {
  let out = scrubKnown(text);
  for (const [re, sub] of SECRET_PATTERNS) out = out.replace(re, sub);
  return out;
}

/** Any thrown value → the client API's error shape. Unknown errors become a 500 that reveals nothing. */
export function renderError(err: unknown, api: ErrorApi): RenderedError {
  const e =
    err instanceof GatewayError
      ? err
      : new GatewayError('internal', 'internal error in the gateway', { code: 'internal_error' });
  const headers: Record<string, string> = { 'content-type': 'application/json', ...e.headers };
  // Provider text was scrubbed where it entered (providers/common.ts upstreamError); a configured
  // credential never leaves in any message, whoever built it.
  const message = knownSecrets.size ? scrubKnown(e.message) : e.message;
  let payload: unknown;
  if (api === 'anthropic') {
    payload = { type: 'error', error: { type: ANTHROPIC_TYPE[e.kind], message } };
  } else if (api === 'mcp') {
    // JSON-RPC 2.0 error object; the HTTP status still says what happened (401, 404, 429, …).
    payload = { jsonrpc: '2.0', id: null, error: { code: MCP_ERROR_CODE[e.kind], message, data: { type: e.kind, code: e.code } } };
  } else {
    payload = {
      error: { message, type: OPENAI_TYPE[e.kind], param: e.param ?? null, code: e.code },
    };
  }
  return { status: e.status, headers, body: Buffer.from(JSON.stringify(payload)) };
}

export function statusOfKind(kind: ErrorKind): number {
  return STATUS[kind];
}

function kindOfStatus(status: number): ErrorKind {
  const found = (Object.entries(STATUS) as [ErrorKind, number][]).find(([, s]) => s === status);
  if (found) return found[0];
  return status >= 500 ? 'internal' : 'invalid_request';
}

/**
 * Envoy's own error reply for a request Tollgate never saw (a filter before ext_proc, e.g. jwt_authn
 * refusing a token), rewritten into a JSON error both SDKs read: Anthropic's envelope
 * (`type: "error"`) with OpenAI's fields inside (`message`, `type`, `code`, `param`). The client API
 * is unknown here (no request headers reached Tollgate), so the body satisfies both.
 */
export function renderLocalReply(status: number, envoyText: string): RenderedError {
  const kind = kindOfStatus(status);
  const text = envoyText.replace(/\s+/g, ' ').trim().slice(0, 300);
  const message = text ? `${text} (refused by the gateway before policy evaluation)` : 'refused by the gateway before policy evaluation';
  const code = kind === 'authentication' ? 'invalid_api_key' : 'gateway_refused';
  const payload = { type: 'error', error: { type: ANTHROPIC_TYPE[kind], message, code, param: null } };
  return { status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(payload)) };
}
