// Entry points for the request path: pick a translator for (client API, operation, provider API), and parse +
// validate the client's JSON body.
import { GatewayError, type ClientApi } from '../errors.ts';
import type { ProviderApi, ProviderKind } from '../config/types.ts';
import { AnthropicCountTokensBody, AnthropicMessagesBody, OpenAIChatBody, OpenAIEmbeddingsBody, validate } from './schemas.ts';
import { isObject } from './common.ts';
import { provenOpenAIChat } from './chat-fast-check.ts';
import { OpenAIChatTranslator, type ChatCore } from './chat.ts';
import { OpenAIChatPassthroughTranslator, OpenAICore, OpenAIEmbeddingsTranslator } from './openai.ts';
import { AnthropicCore, AnthropicPassthroughTranslator } from './anthropic.ts';
import { AnthropicClientTranslator } from './anthropic-client.ts';
import { GeminiCore, GeminiEmbeddingsTranslator } from './gemini.ts';
import { BedrockCore } from './bedrock.ts';
import { ResponsesPassthroughTranslator, ResponsesTranslator } from './responses.ts';
import { ResponsesBody } from './responses-schema.ts';
import { mockTranslator } from './mock.ts';
import { BedrockAnthropicTranslator, isBedrockClaude, VertexAnthropicTranslator, VertexCore } from './anthropic-native.ts';
import { countTokensTranslator } from './count-tokens.ts';
import type { ClientRequest, Operation, Translator, TranslatorOptions } from './types.ts';

export type * from './types.ts';

function chatCore(provider: ProviderApi, opts?: TranslatorOptions): ChatCore {
  switch (provider) {
    case 'openai':
    case 'azure':
      return new OpenAICore(provider);
    case 'anthropic':
      return new AnthropicCore(opts);
    case 'gemini':
      return new GeminiCore(opts);
    case 'bedrock':
      return new BedrockCore(opts);
    case 'vertex':
      return new VertexCore(opts);
  }
}

function unsupportedPair(client: ClientApi, op: Operation, provider: ProviderKind): GatewayError {
  const what = op === 'chat' ? 'chat' : op;
  return new GatewayError(
    'unprocessable',
    `${client} ${what} requests cannot be translated for provider ${provider}`,
    { code: 'unsupported_provider' },
  );
}

/**
 * The translator for one (client API, operation, provider API) pair. Translators are stateless (per-request
 * state lives in the StreamTranslator), so callers may cache them. `opts` pins clocks/ids in tests. `upstreamModel`
 * (the deployment's) picks Bedrock's Anthropic-native InvokeModel path for Claude models; without it, Converse.
 */
export function getTranslator(client: ClientApi, op: Operation, provider: ProviderKind, opts?: TranslatorOptions, upstreamModel?: string): Translator {
  if (provider === 'mock') {
    const t = mockTranslator(client, op);
    if (!t) throw unsupportedPair(client, op, provider);
    return t;
  }
  if (op === 'chat') {
    if (client === 'openai') {
      if (provider === 'openai' || provider === 'azure') return new OpenAIChatPassthroughTranslator(provider);
      return new OpenAIChatTranslator(chatCore(provider, opts));
    }
    if (provider === 'anthropic') return new AnthropicPassthroughTranslator();
    // Anthropic-native paths: Claude on Bedrock (InvokeModel) and on Vertex keep the client's body as is.
    if (provider === 'vertex') return new VertexAnthropicTranslator();
    if (provider === 'bedrock' && isBedrockClaude(upstreamModel)) return new BedrockAnthropicTranslator(opts);
    return new AnthropicClientTranslator(chatCore(provider, opts));
  }
  if (op === 'count_tokens') {
    const t = countTokensTranslator(provider, upstreamModel, opts);
    if (t) return t;
    throw unsupportedPair(client, op, provider);
  }
  if (op === 'responses') {
    if (client !== 'openai') throw unsupportedPair(client, op, provider);
    if (provider === 'openai' || provider === 'azure') return new ResponsesPassthroughTranslator(provider);
    return new ResponsesTranslator(chatCore(provider, opts), opts);
  }
  if (client === 'openai') {
    if (provider === 'openai' || provider === 'azure') return new OpenAIEmbeddingsTranslator(provider);
    if (provider === 'gemini') return new GeminiEmbeddingsTranslator();
  }
  throw unsupportedPair(client, op, provider);
}

/** JSON.parse + schema validation. 400 `invalid_request` naming the offending field (`param`). */
export function parseClientRequest(api: ClientApi, op: Operation, raw: Buffer): ClientRequest {
  let body: unknown;
  const text = raw.toString('utf8');
  try {
    body = JSON.parse(text);
  } catch (err) {
    // Only a text JSON.parse rejects can be blank: the check waits for the error path.
    if (text.trim() === '') {
      throw new GatewayError('invalid_request', 'The request body is empty; expected a JSON object.', { code: 'invalid_json' });
    }
    const detail = err instanceof SyntaxError ? `: ${err.message}` : '';
    throw new GatewayError('invalid_request', `The request body is not valid JSON${detail}`, { code: 'invalid_json' });
  }
  if (!isObject(body)) {
    throw new GatewayError('invalid_request', 'The request body must be a JSON object.', { code: 'invalid_json' });
  }
  if (op === 'count_tokens') {
    if (api !== 'anthropic') throw new GatewayError('not_found', 'The OpenAI API has no count_tokens endpoint.', { code: 'unknown_endpoint' });
    validate(AnthropicCountTokensBody, body);
    return { api, op, model: body.model as string, stream: false, body };
  }
  if (op === 'embeddings') {
    if (api !== 'openai') throw new GatewayError('not_found', 'The Anthropic API has no embeddings endpoint.', { code: 'unknown_endpoint' });
    validate(OpenAIEmbeddingsBody, body);
    if (body.stream === true) {
      throw new GatewayError('invalid_request', "Invalid value for 'stream': embeddings cannot be streamed.", { param: 'stream' });
    }
  } else if (op === 'responses') {
    if (api !== 'openai') throw new GatewayError('not_found', 'The Anthropic API has no responses endpoint.', { code: 'unknown_endpoint' });
    validate(ResponsesBody, body);
  } else if (api === 'openai') {
    // The common shape is proven valid without zod; anything else (and every mistake) is judged by zod.
    const proven = provenOpenAIChat(body);
    if (!proven) validate(OpenAIChatBody, body);
    return { api, op, model: body.model as string, stream: body.stream === true, body, raw, rawText: text, proven };
  } else {
    validate(AnthropicMessagesBody, body);
  }
  return { api, op, model: body.model as string, stream: op !== 'embeddings' && body.stream === true, body, raw, rawText: text };
}
