// Helpers shared by every translator: upstream error mapping, JSON bodies, data URLs, parameter checks.
import { gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { GatewayError, scrubSecrets, type ErrorKind } from '../errors.ts';
import type { ProviderApi, ProviderConfig } from '../config/types.ts';
import type { TranslatedResponse, TranslatorOptions } from './types.ts';

export const JSON_CT = 'application/json';
export const SSE_CT = 'text/event-stream; charset=utf-8';
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';
/** Anthropic requires max_tokens; used when an OpenAI client sends neither max_tokens nor max_completion_tokens. */
export const DEFAULT_MAX_TOKENS = 4096;
/** Azure `api-version` when the provider config names none (latest GA data-plane version at time of writing). */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function header(headers: Record<string, string>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  // Called per response with a name that is usually absent (content-encoding): no entries arrays, and no
  // toLowerCase copy of keys that cannot match (names are ASCII; only U+0130 changes length when lower-cased, into
  // non-ASCII, so a match always has the name's length).
  for (const k in headers) if (k.length === name.length && Object.hasOwn(headers, k) && k.toLowerCase() === name) return headers[k];
  return undefined;
}

/** Undo content-encoding the upstream applied despite `accept-encoding: identity`. */
export function decodeBody(headers: Record<string, string>, body: Buffer): Buffer {
  const enc = header(headers, 'content-encoding')?.trim().toLowerCase();
  if (!enc || enc === 'identity') return body;
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return gunzipSync(body);
    if (enc === 'deflate') return inflateSync(body);
    if (enc === 'br') return brotliDecompressSync(body);
  } catch (cause) {
    throw new GatewayError('upstream', `upstream response body is not valid ${enc}`, { code: 'upstream_protocol', cause });
  }
  throw new GatewayError('upstream', `upstream used unsupported content-encoding '${enc}'`, { code: 'upstream_protocol' });
}

export function parseJson(body: Buffer | string, what = 'upstream response'): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (cause) {
    throw new GatewayError('upstream', `${what} is not valid JSON`, { code: 'upstream_protocol', cause });
  }
}

export function jsonResponse(status: number, value: unknown, extra?: Partial<TranslatedResponse>): TranslatedResponse {
  const out: TranslatedResponse = { status, headers: { 'content-type': JSON_CT }, body: Buffer.from(JSON.stringify(value)), json: value };
  // Most callers pass no extra: no spread copy then.
  return extra ? { ...out, ...extra } : out;
}

export function notSupported(param: string, provider: ProviderApi | string, why?: string): GatewayError {
  return new GatewayError(
    'unprocessable',
    `parameter '${param}' is not supported by provider ${provider}${why ? `: ${why}` : ''}`,
    { param, code: 'unsupported_parameter' },
  );
}

export function invalid(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param, code: 'invalid_request' });
}

/** A cross-provider body whose messages left nothing to send (only system turns, or only empty ones). */
export function noConversation(provider: ProviderApi): GatewayError {
  return new GatewayError('unprocessable', `provider ${provider} needs at least one user or assistant message`, {
    param: 'messages',
    code: 'unsupported_parameter',
  });
}

/** Fail closed on fields a cross-provider translator does not know: it cannot tell whether dropping them is safe. */
export function rejectUnknown(body: Json, known: ReadonlySet<string>, provider: ProviderApi): void {
  for (const key of Object.keys(body)) {
    if (!known.has(key) && body[key] !== undefined) throw notSupported(key, provider);
  }
}

export interface DataUrl {
  mediaType: string;
  /** base64 payload. */
  data: string;
}

export function parseDataUrl(url: string): DataUrl | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  if (comma === -1) return undefined;
  const meta = url.slice(5, comma).split(';');
  const mediaType = (meta[0] || 'text/plain').toLowerCase();
  const isBase64 = meta.slice(1).some((m) => m.toLowerCase() === 'base64');
  const payload = url.slice(comma + 1);
  const data = isBase64 ? payload : Buffer.from(decodeURIComponent(payload), 'utf8').toString('base64');
  return { mediaType, data };
}

/** OpenAI tool-call `arguments` (a JSON string) → the object Anthropic/Gemini/Bedrock want. */
export function parseToolArguments(args: string, param: string): Json {
  if (args.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw invalid(param, `Invalid value for '${param}': tool call arguments must be a JSON object string.`);
  }
  if (!isObject(v)) throw invalid(param, `Invalid value for '${param}': tool call arguments must be a JSON object.`);
  return v;
}

/** A token count field of a provider's usage object; absent or malformed counts as 0. */
export function tokenCount(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** The provider's base path without a trailing slash, ready for `${base}/…`. */
export function basePathOf(provider: ProviderConfig): string {
  const p = provider.basePath;
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

export function contentText(content: string | ReadonlyArray<{ type: string; text?: string }> | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  let out = '';
  for (const p of content) if (p.type === 'text' && typeof p.text === 'string') out += p.text;
  return out;
}

export function defaultOptions(opts: TranslatorOptions = {}): Required<TranslatorOptions> {
  return {
    now: opts.now ?? (() => Math.floor(Date.now() / 1000)),
    newId: opts.newId ?? ((prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`),
  };
}

// ---------------------------------------------------------------- upstream errors

/**
 * Provider status → what the client sees. Provider 401/403 mean the GATEWAY's credential is bad: passing them
 * through would tell the client its own key is wrong, so they become 502 (and the provider's message, which may
 * quote part of the key, is not echoed). 5xx become 502/503/504; 529 (Anthropic "overloaded") becomes 503.
 */
function kindForStatus(status: number): ErrorKind {
  if (status === 400) return 'invalid_request';
  if (status === 401 || status === 403) return 'upstream';
  if (status === 404) return 'not_found';
  if (status === 408) return 'timeout';
  if (status === 413) return 'too_large';
  if (status === 422) return 'unprocessable';
  if (status === 429) return 'rate_limit';
  if (status === 503 || status === 529) return 'unavailable';
  if (status === 504) return 'timeout';
  if (status >= 500) return 'upstream';
  return 'invalid_request';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Non-2xx upstream answer → GatewayError in the gateway's vocabulary (rendered later in the client's API shape). */
export function upstreamError(
  provider: ProviderApi,
  status: number,
  headers: Record<string, string>,
  rawBody: Buffer,
): GatewayError {
  const kind = kindForStatus(status);
  let message: string | undefined;
  let code: string | undefined;
  let param: string | undefined;
  let body: unknown;
  try {
    body = JSON.parse(decodeBody(headers, rawBody).toString('utf8'));
  } catch {
    body = undefined;
  }
  if (Array.isArray(body) && body.length > 0) body = body[0]; // Gemini sometimes wraps errors in an array
  if (isObject(body)) {
    const e = body.error;
    if (isObject(e)) {
      message = str(e.message);
      code = str(e.code) ?? str(e.status) ?? str(e.type);
      param = str(e.param);
    } else if (typeof e === 'string') {
      message = e; // Ollama, some OpenAI-compatible servers
    }
    message ??= str(body.message) ?? str(body.Message) ?? str(body.detail); // Bedrock, vLLM, FastAPI
    code ??= str(body.code) ?? str(body.type);
  }
  const amznType = header(headers, 'x-amzn-errortype');
  if (amznType) code = amznType.split(':')[0];

  const out: Record<string, string> = {};
  const retryAfter = header(headers, 'retry-after');
  const retryAfterMs = header(headers, 'retry-after-ms');
  if (retryAfter && /^\d+$/.test(retryAfter.trim())) out['retry-after'] = retryAfter.trim();
  else if (retryAfterMs && /^\d+(\.\d+)?$/.test(retryAfterMs.trim())) {
    out['retry-after'] = String(Math.max(1, Math.ceil(Number(retryAfterMs) / 1000)));
  }

  if (status === 401 || status === 403) {
    return new GatewayError('upstream', `provider ${provider} rejected the gateway's credentials (HTTP ${status})`, {
      code: 'upstream_auth_failed',
      headers: out,
    });
  }
  // The provider's own words help the client (e.g. a context-length error), but they are untrusted:
  // credentials it may echo are scrubbed, the length is bounded, and code/param must look like one.
  const text = message !== undefined ? safeProviderText(message) : `provider ${provider} returned HTTP ${status}`;
  return new GatewayError(kind, text, {
    code: code !== undefined && safeToken(code, SAFE_CODE) ? code : `upstream_${status}`,
    param: param !== undefined && safeToken(param, SAFE_PARAM) ? param : undefined,
    headers: out,
  });
}

const SAFE_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const SAFE_PARAM = /^[A-Za-z0-9_.[\]-]{1,128}$/;
const MAX_PROVIDER_MESSAGE = 1000;

/** A code or param shown as is: shaped like one and not a credential. */
function safeToken(v: string, shape: RegExp): boolean {
  return shape.test(v) && scrubSecrets(v) === v;
}

function safeProviderText(message: string): string {
  const m = scrubSecrets(message);
  return m.length > MAX_PROVIDER_MESSAGE ? `${m.slice(0, MAX_PROVIDER_MESSAGE)}…` : m;
}
