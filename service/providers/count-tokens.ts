// `POST /v1/messages/count_tokens` (Anthropic clients) → the provider's own token counter:
//   anthropic → POST {base}/messages/count_tokens                                   → {input_tokens}
//   bedrock   → POST /model/{id}/count-tokens {input:{invokeModel:{body:<base64>}}} → {inputTokens} (Claude models)
//   vertex    → POST {base}/publishers/anthropic/models/count-tokens:rawPredict     → {input_tokens}
// Every other provider has no counter for an Anthropic body: the gateway counts locally (gateway/count-local.ts).
// The client always gets Anthropic's answer shape, `{"input_tokens": N}`.
import { GatewayError } from '../errors.ts';
import type { ProviderApi, ProviderKind } from '../config/types.ts';
import { AnthropicCountTokensBody, validate } from './schemas.ts';
import { basePathOf, decodeBody, defaultOptions, isObject, JSON_CT, parseJson, SSE_CT, upstreamError, type Json } from './common.ts';
import { anthropicHeaders } from './anthropic.ts';
import { BEDROCK_ANTHROPIC_VERSION, isBedrockClaude } from './anthropic-native.ts';
import { signBedrock } from './bedrock.ts';
import { errorResponse } from './chat.ts';
import type { ClientRequest, StreamTranslator, TranslatedResponse, Translator, TranslatorOptions, UpstreamRequest, UpstreamTarget } from './types.ts';

/** Fields that only steer generation: not part of the prompt, refused by Anthropic's count endpoint. */
const OUTPUT_ONLY = ['max_tokens', 'stream', 'temperature', 'top_p', 'top_k', 'stop_sequences', 'metadata', 'service_tier'];

function promptOnly(req: ClientRequest): Json {
  const body: Json = { ...validate(AnthropicCountTokensBody, req.body) };
  for (const k of OUTPUT_ONLY) delete body[k];
  return body;
}

/** Whether `provider` (serving `upstreamModel`) has a token counter for an Anthropic body. */
export function hasCountTokensEndpoint(provider: ProviderKind, upstreamModel: string | undefined): boolean {
  return provider === 'anthropic' || provider === 'vertex' || (provider === 'bedrock' && isBedrockClaude(upstreamModel));
}

abstract class CountTokensTranslator implements Translator {
  readonly client = 'anthropic' as const;
  abstract readonly provider: ProviderApi;
  readonly op = 'count_tokens' as const;
  readonly streamContentType = SSE_CT;
  abstract request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest>;
  /** The provider's count from its 2xx JSON answer. */
  protected abstract count(answer: unknown): unknown;

  response(status: number, headers: Record<string, string>, body: Buffer): TranslatedResponse {
    try {
      if (status < 200 || status >= 300) throw upstreamError(this.provider, status, headers, body);
      const n = this.count(parseJson(decodeBody(headers, body)));
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
        throw new GatewayError('upstream', 'upstream response is not a token count', { code: 'upstream_protocol' });
      }
      return { status, headers: { 'content-type': JSON_CT }, body: Buffer.from(JSON.stringify({ input_tokens: n })) };
    } catch (err) {
      return errorResponse(err, 'anthropic');
    }
  }

  stream(): StreamTranslator {
    throw new GatewayError('internal', 'count_tokens does not stream');
  }
}

class AnthropicCountTokens extends CountTokensTranslator {
  readonly provider = 'anthropic' as const;

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const body = { ...promptOnly(req), model: target.deployment.upstreamModel };
    return { path: `${basePathOf(target.provider)}/messages/count_tokens`, headers: anthropicHeaders(target, req.headers), body: Buffer.from(JSON.stringify(body)) };
  }

  protected count(a: unknown): unknown {
    return isObject(a) ? a.input_tokens : undefined;
  }
}

class VertexCountTokens extends CountTokensTranslator {
  readonly provider = 'vertex' as const;

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    if (!target.credential) throw new GatewayError('internal', `provider ${target.provider.name} has no Vertex AI access token`, { code: 'provider_credential_invalid' });
    // Vertex's counter names the model in the body (the path is the fixed `count-tokens` model).
    const body = { ...promptOnly(req), model: target.deployment.upstreamModel };
    const headers: Record<string, string> = { 'content-type': JSON_CT, 'accept-encoding': 'identity', authorization: `Bearer ${target.credential}` };
    const beta = req.headers?.['anthropic-beta'];
    if (beta) headers['anthropic-beta'] = beta;
    return { path: `${basePathOf(target.provider)}/publishers/anthropic/models/count-tokens:rawPredict`, headers, body: Buffer.from(JSON.stringify(body)) };
  }

  protected count(a: unknown): unknown {
    return isObject(a) ? a.input_tokens : undefined;
  }
}

class BedrockCountTokens extends CountTokensTranslator {
  readonly provider = 'bedrock' as const;
  private readonly opts: Required<TranslatorOptions>;

  constructor(opts?: TranslatorOptions) {
    super();
    this.opts = defaultOptions(opts);
  }

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const prompt = promptOnly(req);
    delete prompt.model; // InvokeModel takes the model in the path
    // The wrapped body is an InvokeModel body, which needs max_tokens (above a thinking budget); it does not
    // change the prompt's count.
    const thinking = isObject(prompt.thinking) && typeof prompt.thinking.budget_tokens === 'number' ? prompt.thinking.budget_tokens : 0;
    const invoke = { anthropic_version: target.provider.apiVersion ?? BEDROCK_ANTHROPIC_VERSION, max_tokens: thinking + 1, ...prompt };
    const payload = Buffer.from(JSON.stringify({ input: { invokeModel: { body: Buffer.from(JSON.stringify(invoke)).toString('base64') } } }));
    const path = `${basePathOf(target.provider)}/model/${encodeURIComponent(target.deployment.upstreamModel)}/count-tokens`;
    const headers = await signBedrock(target, path, payload, new Date(this.opts.now() * 1000));
    headers.accept = JSON_CT;
    headers['accept-encoding'] = 'identity';
    return { path, headers, body: payload };
  }

  protected count(a: unknown): unknown {
    return isObject(a) ? a.inputTokens : undefined;
  }
}

/** The count_tokens translator for a provider with a counter; undefined when the gateway must count locally. */
export function countTokensTranslator(provider: ProviderApi, upstreamModel: string | undefined, opts?: TranslatorOptions): Translator | undefined {
  if (!hasCountTokensEndpoint(provider, upstreamModel)) return undefined;
  if (provider === 'anthropic') return new AnthropicCountTokens();
  if (provider === 'vertex') return new VertexCountTokens();
  return new BedrockCountTokens(opts);
}
