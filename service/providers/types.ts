// Public contract of the translation layer. Translators take and return plain values: no gRPC, no I/O
// (except SigV4 signing, which is why request() is async).
import type { ClientApi, GatewayError } from '../errors.ts';
import type { ProviderApi, ProviderConfig, DeploymentConfig } from '../config/types.ts';

/** `responses`: the OpenAI Responses API (`POST /v1/responses`). `count_tokens`: Anthropic's
 * `POST /v1/messages/count_tokens` (prompt tokens only; nothing is generated). */
export type Operation = 'chat' | 'embeddings' | 'responses' | 'count_tokens';

export interface ClientRequest {
  /** The API the client speaks: 'openai' | 'anthropic'. */
  api: ClientApi;
  op: Operation;
  /** As the client sent it. */
  model: string;
  stream: boolean;
  /** Validated JSON; policies/redaction may have mutated it before translation. */
  body: Record<string, unknown>;
  /**
   * The body as received, set by parseClientRequest: its bytes (never mutated afterwards) and their UTF-8 text.
   * A translator may forward these bytes where `body` still serializes to exactly `rawText` (json-match.ts).
   */
  raw?: Buffer;
  rawText?: string;
  /**
   * Set by parseClientRequest for an OpenAI chat body it proved valid as parsed (chat-fast-check.ts). Says nothing
   * about edits made since; a translator may rely on it only while `body` still serializes to `rawText`.
   */
  proven?: boolean;
  /**
   * Optional client request headers (lower-case names). Only `anthropic-version` and `anthropic-beta` are read,
   * for Anthropic → Anthropic passthrough. Never forwarded wholesale.
   */
  headers?: Record<string, string>;
}

export interface UpstreamTarget {
  provider: ProviderConfig;
  /** deployment.upstreamModel replaces `model`. */
  deployment: DeploymentConfig;
  /** Resolved secret. Bedrock: "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]". */
  credential: string | undefined;
}

export interface UpstreamRequest {
  /** Full path incl. provider.basePath and query, e.g. /v1/chat/completions. */
  path: string;
  /** Lower-case names: auth header(s), content-type, accept-encoding, anthropic-version, … (never `host`). */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Token usage. `inputTokens` counts ALL prompt tokens, cached ones included (OpenAI's `prompt_tokens` convention);
 * `cachedInputTokens` is the subset read from the provider's prompt cache, `cacheCreationInputTokens` the subset
 * written to it (Anthropic/Bedrock bill these differently). `reasoningTokens` is a subset of `outputTokens`.
 */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  reasoningTokens?: number;
  cacheCreationInputTokens?: number;
  /** The part of `cacheCreationInputTokens` written with Anthropic's 1-hour TTL (the rest is 5-minute). */
  cacheCreation1hInputTokens?: number;
  /** True when the provider reported no counts and these are estimates (Gemini embeddings). */
  estimated?: boolean;
}

export interface TranslatedResponse {
  /** Status for the client (provider errors mapped to the client API's statuses). */
  status: number;
  /** At least content-type. */
  headers: Record<string, string>;
  /** Client API shape (success, or the client API's error shape). */
  body: Buffer;
  /**
   * When set, `body` is exactly the UTF-8 of JSON.stringify(json) (jsonResponse): a text filter may edit this value
   * instead of parsing `body` again. Nothing else may change it.
   */
  json?: unknown;
  usage?: Usage;
  finishReason?: string;
}

export interface StreamTranslator {
  /** One upstream body chunk, ARBITRARY boundaries (events split/coalesced); returns client bytes (may be empty). */
  push(chunk: Buffer): Buffer;
  /** Upstream finished; flush, e.g. OpenAI `data: [DONE]\n\n`. */
  end(): Buffer;
  usage(): Usage | undefined;
  finishReason(): string | undefined;
  /**
   * Set once the stream has failed: an upstream in-stream error (Anthropic `error` event, Bedrock exception frame,
   * OpenAI/Gemini `{"error":…}`), a stream that ended before the provider's end marker, or an untranslatable event.
   * The client already got it as an error event (the HTTP status was 200); callers use it for the request's outcome.
   */
  error?(): GatewayError | undefined;
}

export interface Translator {
  readonly client: ClientApi;
  readonly provider: ProviderApi;
  readonly op: Operation;
  /** Content type the client should see for a streamed response. */
  readonly streamContentType: string;
  request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest>;
  /** Never throws: a malformed upstream body becomes a 502 in the client's error shape. */
  response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse;
  /** Only used when upstream status is 2xx and streaming. */
  stream(req: ClientRequest): StreamTranslator;
}

/** Injectable sources of non-determinism (tests pin them so golden files are byte-stable). */
export interface TranslatorOptions {
  /** Unix seconds, for `created` fields the provider does not supply. */
  now?: () => number;
  /** Ids the provider does not supply (Bedrock responses, Gemini tool calls). */
  newId?: (prefix: string) => string;
}
