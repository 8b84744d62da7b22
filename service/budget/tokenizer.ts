// The exact tokenizer for OpenAI-family models (o200k_base, via gpt-tokenizer), loaded on first use only: loading
// takes ~0.7 s and counting ~2 ms per KB, too slow for every request. The request path uses the run-based
// heuristic (cost.ts) and calls this only where an exact count changes a decision: an admission that the
// heuristic's reservation would refuse (exchange.ts), and count_tokens answered locally.
//
// Fallback error bound (no tokenizer for the model's family, e.g. Gemini or Bedrock non-Claude models): the
// heuristic (cost.ts estimateTokens) is script-aware and lands within 0.68–1.29× of o200k_base/cl100k_base on
// English, code, JSON, CJK, Cyrillic, emoji and base64 (plain chars/4 is 0.23–1.6×, 2.7× low on CJK). Other
// vendors' tokenizers differ from o200k by up to ~±30% on the same text.

/** Counts tokens of a text. */
export type TokenCounter = (text: string) => number;

let loading: Promise<TokenCounter> | undefined;

/** o200k_base counter; the module is imported once, on the first call. */
export function o200k(): Promise<TokenCounter> {
  loading ??= import('gpt-tokenizer/encoding/o200k_base').then((m) => (text: string) => m.countTokens(text));
  return loading;
}

/** OpenAI-family models (o200k_base): OpenAI and Azure OpenAI deployments of GPT-4o/4.1/5, o-series and ChatGPT models. */
export function usesO200k(providerApi: string, upstreamModel: string): boolean {
  if (providerApi !== 'openai' && providerApi !== 'azure') return false;
  return /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d|chatgpt-|codex-)/i.test(upstreamModel) || providerApi === 'azure';
}
