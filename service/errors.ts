// Typed errors, and the one place they become client responses.
// Every layer throws a GatewayError; only renderError() decides what the client sees.

export type ClientApi = 'openai' | 'anthropic';

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

/** Any thrown value → the client API's error shape. Unknown errors become a 500 that reveals nothing. */
export function renderError(err: unknown, api: ClientApi): RenderedError {
  const e =
    err instanceof GatewayError
      ? err
      : new GatewayError('internal', 'internal error in the gateway', { code: 'internal_error' });
  const headers: Record<string, string> = { 'content-type': 'application/json', ...e.headers };
  let payload: unknown;
  if (api === 'anthropic') {
    payload = { type: 'error', error: { type: ANTHROPIC_TYPE[e.kind], message: e.message } };
  } else {
    payload = {
      error: { message: e.message, type: OPENAI_TYPE[e.kind], param: e.param ?? null, code: e.code },
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
