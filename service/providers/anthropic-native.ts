// Anthropic Messages clients → Claude on AWS Bedrock (InvokeModel / InvokeModelWithResponseStream) and on Google
// Vertex AI (:rawPredict / :streamRawPredict), in Anthropic's own body: no pivot through the OpenAI chat shape, so
// `thinking`, `cache_control`, `anthropic-beta`, tool use and every stream event reach the client intact.
// Also OpenAI chat clients → Claude on Vertex (VertexCore: the Anthropic core with Vertex's path, auth and version).
import { GatewayError } from '../errors.ts';
import type { OpenAIChatBody } from './schemas.ts';
import { AnthropicMessagesBody, validate } from './schemas.ts';
import type { SseEvent } from './sse.ts';
import { EventStreamDecoder } from './eventstream.ts';
import { basePathOf, defaultOptions, isObject, JSON_CT, SSE_CT, upstreamError, type Json } from './common.ts';
import {
  AnthropicCore,
  AnthropicPassthroughStream,
  anthropicMessageResponse,
  toAnthropicBody,
  type AnthropicEventSource,
  type AnthropicToOpenAIStream,
} from './anthropic.ts';
import { signBedrock, BEDROCK_EXCEPTION_STATUS } from './bedrock.ts';
import type { ChatCompletion, ChatCore, CoreContext } from './chat.ts';
import type {
  ClientRequest,
  StreamTranslator,
  TranslatedResponse,
  Translator,
  TranslatorOptions,
  UpstreamRequest,
  UpstreamTarget,
} from './types.ts';

/** `anthropic_version` Bedrock's Anthropic body needs (provider.apiVersion overrides). */
export const BEDROCK_ANTHROPIC_VERSION = 'bedrock-2023-05-31';
/** `anthropic_version` Vertex's Anthropic body needs (provider.apiVersion overrides). */
export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

/**
 * Bedrock model ids served with the Anthropic body: `anthropic.claude-…`, cross-region inference profiles
 * (`us.anthropic.claude-…`, `global.anthropic.claude-…`) and their ARNs. Other Bedrock models go through Converse.
 */
export function isBedrockClaude(upstreamModel: string | undefined): boolean {
  return upstreamModel !== undefined && /(^|[.:/])anthropic\.claude/.test(upstreamModel);
}

/** The client's `anthropic-beta` header as the body field Bedrock reads (comma-separated → list). */
function betaList(headers: Record<string, string> | undefined): string[] | undefined {
  const v = headers?.['anthropic-beta'];
  if (!v) return undefined;
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return list.length > 0 ? list : undefined;
}

/** The client's Anthropic body for a provider that takes the model in the path and the version in the body. */
function nativeBody(req: ClientRequest, version: string, keepStream: boolean): Json {
  const body: Json = { ...validate(AnthropicMessagesBody, req.body) };
  delete body.model;
  if (!keepStream) delete body.stream;
  return { anthropic_version: version, ...body };
}

function vertexModelPath(target: UpstreamTarget, method: string): string {
  // Vertex model ids carry a version after `@` (claude-sonnet-4@20250514); kept literal, everything else encoded.
  const model = encodeURIComponent(target.deployment.upstreamModel).replace(/%40/g, '@');
  return `${basePathOf(target.provider)}/publishers/anthropic/models/${model}:${method}`;
}

function vertexHeaders(target: UpstreamTarget): Record<string, string> {
  if (!target.credential) {
    throw new GatewayError('internal', `provider ${target.provider.name} has no Vertex AI access token`, { code: 'provider_credential_invalid' });
  }
  return { 'content-type': JSON_CT, 'accept-encoding': 'identity', authorization: `Bearer ${target.credential}` };
}

/**
 * InvokeModelWithResponseStream frames → Anthropic events. Each `chunk` event's payload is `{"bytes":"<base64>"}`
 * holding one Anthropic stream event's JSON, which is relayed as the provider wrote it. An exception frame ends
 * the stream with that error (mapped like Bedrock's HTTP errors).
 */
export class BedrockAnthropicEvents implements AnthropicEventSource {
  private readonly decoder = new EventStreamDecoder();

  push(chunk: Buffer): Array<SseEvent & { failure?: GatewayError }> {
    const out: Array<SseEvent & { failure?: GatewayError }> = [];
    for (const msg of this.decoder.push(chunk)) {
      const type = msg.headers[':message-type'];
      if (type === 'exception' || type === 'error') {
        const kind = String(msg.headers[':exception-type'] ?? msg.headers[':error-code'] ?? 'internalServerException');
        out.push({ event: 'error', data: '', failure: upstreamError('bedrock', BEDROCK_EXCEPTION_STATUS[kind] ?? 500, { 'x-amzn-errortype': kind }, msg.payload) });
        break;
      }
      if (msg.headers[':event-type'] !== 'chunk') continue;
      let payload: unknown;
      try {
        payload = JSON.parse(msg.payload.toString('utf8'));
      } catch {
        payload = undefined;
      }
      if (!isObject(payload) || typeof payload.bytes !== 'string') {
        throw new GatewayError('upstream', 'Bedrock stream chunk without base64 `bytes`', { code: 'upstream_protocol' });
      }
      const data = Buffer.from(payload.bytes, 'base64').toString('utf8');
      let name: string | undefined;
      try {
        const ev: unknown = JSON.parse(data);
        if (isObject(ev) && typeof ev.type === 'string') name = ev.type;
      } catch {
        name = undefined; // relayed verbatim; the passthrough stream reports what it cannot read
      }
      out.push({ event: name, data });
    }
    return out;
  }

  end(): SseEvent[] {
    if (this.decoder.pending) throw new GatewayError('upstream', 'upstream stream ended in the middle of an event', { code: 'upstream_incomplete' });
    return [];
  }
}

/** Anthropic client → Claude on Bedrock: InvokeModel / InvokeModelWithResponseStream, SigV4-signed. */
export class BedrockAnthropicTranslator implements Translator {
  readonly client = 'anthropic' as const;
  readonly provider = 'bedrock' as const;
  readonly op = 'chat' as const;
  readonly streamContentType = SSE_CT;
  private readonly opts: Required<TranslatorOptions>;

  constructor(opts?: TranslatorOptions) {
    this.opts = defaultOptions(opts);
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const body = nativeBody(req, target.provider.apiVersion ?? BEDROCK_ANTHROPIC_VERSION, false);
    const beta = betaList(req.headers);
    if (beta) body.anthropic_beta = beta;
    const payload = Buffer.from(JSON.stringify(body));
    const op = req.stream ? 'invoke-with-response-stream' : 'invoke';
    const path = `${basePathOf(target.provider)}/model/${encodeURIComponent(target.deployment.upstreamModel)}/${op}`;
    const headers = await signBedrock(target, path, payload, new Date(this.opts.now() * 1000));
    headers.accept = req.stream ? 'application/vnd.amazon.eventstream' : JSON_CT;
    headers['accept-encoding'] = 'identity';
    return { path, headers, body: payload };
  }

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    return anthropicMessageResponse('bedrock', status, headers, body);
  }

  stream(): StreamTranslator {
    return new AnthropicPassthroughStream(new BedrockAnthropicEvents(), 'bedrock');
  }
}

/** Anthropic client → Claude on Vertex AI: :rawPredict / :streamRawPredict with an OAuth bearer token. */
export class VertexAnthropicTranslator implements Translator {
  readonly client = 'anthropic' as const;
  readonly provider = 'vertex' as const;
  readonly op = 'chat' as const;
  readonly streamContentType = SSE_CT;

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const body = nativeBody(req, target.provider.apiVersion ?? VERTEX_ANTHROPIC_VERSION, true);
    const headers = vertexHeaders(target);
    const beta = req.headers?.['anthropic-beta'];
    if (beta) headers['anthropic-beta'] = beta;
    if (req.stream) headers.accept = 'text/event-stream';
    return { path: vertexModelPath(target, req.stream ? 'streamRawPredict' : 'rawPredict'), headers, body: Buffer.from(JSON.stringify(body)) };
  }

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    return anthropicMessageResponse('vertex', status, headers, body);
  }

  stream(): StreamTranslator {
    return new AnthropicPassthroughStream(undefined, 'vertex');
  }
}

/** OpenAI chat → Claude on Vertex: the Anthropic core's body and answers, Vertex's path, auth and version. */
export class VertexCore implements ChatCore {
  readonly provider = 'vertex' as const;
  private readonly inner: AnthropicCore;

  constructor(opts?: TranslatorOptions) {
    this.inner = new AnthropicCore(opts);
  }

  async request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest> {
    const out = { anthropic_version: target.provider.apiVersion ?? VERTEX_ANTHROPIC_VERSION, ...toAnthropicBody(body, ctx.stream, 'vertex') };
    const headers = vertexHeaders(target);
    if (ctx.stream) headers.accept = 'text/event-stream';
    return { path: vertexModelPath(target, ctx.stream ? 'streamRawPredict' : 'rawPredict'), headers, body: Buffer.from(JSON.stringify(out)) };
  }

  parse(body: unknown, ctx: CoreContext, requestBody: OpenAIChatBody): ChatCompletion {
    return this.inner.parse(body, ctx, requestBody);
  }

  stream(ctx: CoreContext, requestBody: OpenAIChatBody): AnthropicToOpenAIStream {
    return this.inner.stream(ctx, requestBody);
  }
}
