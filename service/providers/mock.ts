// The built-in `mock` provider kind (like LiteLLM's mock_response): a stand-in upstream that answers in
// the client's own API, so requests get real answers with no provider credential. It speaks OpenAI chat
// and embeddings (Bearer credential) and Anthropic Messages (x-api-key); `tollgate run` starts the
// server (service/standalone/mock-upstream.ts). Requests to it take the same path as to any provider:
// policies, redaction, routing, budgets, translation, lineage.
import type { ClientApi } from '../errors.ts';
import { AnthropicPassthroughTranslator } from './anthropic.ts';
import { OpenAIChatTranslator } from './chat.ts';
import { OpenAICore, OpenAIEmbeddingsTranslator } from './openai.ts';
import type { Operation, Translator } from './types.ts';

/** The translator for a request served by a `mock` provider, or undefined when the mock has no such endpoint. */
export function mockTranslator(client: ClientApi, op: Operation): Translator | undefined {
  if (op === 'chat') return client === 'openai' ? new OpenAIChatTranslator(new OpenAICore('openai')) : new AnthropicPassthroughTranslator();
  if (client === 'openai') return new OpenAIEmbeddingsTranslator('openai');
  return undefined;
}
