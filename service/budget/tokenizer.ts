// The exact tokenizer for OpenAI-family models (o200k_base, via gpt-tokenizer). Never on the hot path and never
// awaited by a request: the server imports it at start-up, before serving (startTollgate; the import holds the
// event loop ~150–300 ms, long enough to time out other requests' Redis calls if it happened mid-traffic). Other
// callers (the CLI) import it in the background the first time an exact count would change a decision — an
// admission the heuristic's reservation refuses, or count_tokens answered locally — and use it from then on, for prompts up to MAX_EXACT_BYTES (counting runs ~1–2 ms per KB on the event loop). Until it is loaded
// the heuristic's answer stands (a refusal stays a refusal; a local count is labelled `estimate`).
//
// Fallback error bound (no tokenizer for the model's family — Gemini, Claude, Bedrock — or not loaded yet): the
// heuristic (cost.ts estimateTokens) is script-aware and lands within 0.68–1.29× of o200k_base/cl100k_base on
// English, code, JSON, CJK, Cyrillic, emoji and base64 (plain chars/4 is 0.23–1.6×: 2.7× low on CJK). Other
// vendors' tokenizers differ from o200k by up to ~±30% on the same text.

/** Counts tokens of a text. */
export type TokenCounter = (text: string) => number;

/** Largest request body counted exactly (larger ones would hold the event loop too long). */
export const MAX_EXACT_BYTES = 32 * 1024;

let counter: TokenCounter | undefined;
let loading: Promise<TokenCounter> | undefined;

/** o200k_base counter; imports the module on the first call (tests and tools may await it). */
export function o200k(): Promise<TokenCounter> {
  loading ??= import('gpt-tokenizer/encoding/o200k_base').then(
    (m) => {
      counter = (text: string) => m.countTokens(text);
      return counter;
    },
    (err: unknown) => {
      loading = undefined; // a later need tries again
      throw err;
    },
  );
  return loading;
}

/** The counter when already loaded; otherwise starts loading it in the background and returns undefined. */
export function o200kIfReady(): TokenCounter | undefined {
  if (!counter) o200k().catch(() => undefined);
  return counter;
}

/** OpenAI-family deployments (o200k_base): OpenAI's GPT-4o/4.1/5, o-series and ChatGPT models, and Azure OpenAI. */
export function usesO200k(providerApi: string, upstreamModel: string): boolean {
  if (providerApi === 'azure') return true; // Azure deployment names are free text; Azure serves OpenAI models
  return providerApi === 'openai' && /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d|chatgpt-|codex-)/i.test(upstreamModel);
}
