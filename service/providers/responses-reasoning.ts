// Responses `reasoning.effort` → each provider's thinking budget, applied to the provider body a core built:
//   Anthropic  `thinking: {type: enabled, budget_tokens}`
//   Bedrock    `additionalModelRequestFields.thinking` (Claude models only; other Bedrock models → 422)
//   Gemini     `generationConfig.thinkingConfig.thinkingBudget`
// The budget is bounded by the output limit (Anthropic/Bedrock: budget < max_tokens, both counting thinking).
import type { ProviderApi } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import { DEFAULT_MAX_TOKENS, isObject, notSupported, type Json } from './common.ts';
import type { ReasoningEffort } from './responses-request.ts';

/** Thinking tokens per effort. Anthropic's minimum budget is 1024. */
export const THINKING_BUDGET: Record<ReasoningEffort, number> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 };
const ANTHROPIC_MIN_BUDGET = 1024;

function claudeThinking(body: Json, effort: ReasoningEffort, provider: ProviderApi, explicitMax: boolean, maxOf: () => number, setMax: (n: number) => void): Json {
  // Claude with thinking: no forced tool (JSON mode rides on one), temperature only 1.
  const tc = provider === 'anthropic' ? body.tool_choice : (body.toolConfig as Json | undefined)?.toolChoice;
  if (isObject(tc) && (tc.type === 'any' || tc.type === 'tool' || tc.any !== undefined || tc.tool !== undefined)) {
    throw notSupported('reasoning.effort', provider, "Claude cannot think while a tool is forced (tool_choice 'required', a named function, or text.format JSON)");
  }
  const temp = provider === 'anthropic' ? body.temperature : (body.inferenceConfig as Json | undefined)?.temperature;
  if (typeof temp === 'number' && temp !== 1) throw notSupported('temperature', provider, 'Claude with reasoning only accepts temperature 1');
  let budget = THINKING_BUDGET[effort];
  if (explicitMax) {
    // max_output_tokens covers reasoning and answer: the budget must leave room for an answer.
    const max = maxOf();
    if (max <= ANTHROPIC_MIN_BUDGET) {
      throw new GatewayError('unprocessable', `max_output_tokens must be above ${ANTHROPIC_MIN_BUDGET} for reasoning on provider ${provider}`, {
        param: 'max_output_tokens',
        code: 'unsupported_parameter',
      });
    }
    budget = Math.max(ANTHROPIC_MIN_BUDGET, Math.min(budget, max - Math.min(1024, Math.floor(max / 4))));
  } else {
    setMax(budget + DEFAULT_MAX_TOKENS);
  }
  return { type: 'enabled', budget_tokens: budget };
}

/** Whether a Bedrock model id is a Claude model (foundation id or inference profile, e.g. `us.anthropic.claude-…`). */
export function isBedrockClaude(upstreamModel: string): boolean {
  return /(^|[.:/])anthropic\.claude/.test(upstreamModel);
}

/** Adds the provider's thinking configuration to a translated body (in place). */
export function applyReasoning(provider: ProviderApi, body: Json, effort: ReasoningEffort, explicitMax: boolean, upstreamModel: string): void {
  switch (provider) {
    case 'anthropic': {
      body.thinking = claudeThinking(body, effort, provider, explicitMax, () => Number(body.max_tokens), (n) => (body.max_tokens = n));
      return;
    }
    case 'bedrock': {
      if (!isBedrockClaude(upstreamModel)) throw notSupported('reasoning.effort', provider, `model ${upstreamModel} has no reasoning setting in Converse`);
      const inf = (isObject(body.inferenceConfig) ? body.inferenceConfig : (body.inferenceConfig = {})) as Json;
      const thinking = claudeThinking(body, effort, provider, explicitMax, () => Number(inf.maxTokens), (n) => (inf.maxTokens = n));
      const extra = (isObject(body.additionalModelRequestFields) ? body.additionalModelRequestFields : (body.additionalModelRequestFields = {})) as Json;
      extra.thinking = thinking;
      return;
    }
    case 'gemini': {
      const gc = (isObject(body.generationConfig) ? body.generationConfig : (body.generationConfig = {})) as Json;
      gc.thinkingConfig = { thinkingBudget: THINKING_BUDGET[effort] };
      return;
    }
    default:
      return; // OpenAI/Azure take `reasoning` as is (passthrough)
  }
}
