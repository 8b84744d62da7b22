// Cost and token estimates for admission (the reservation is the *maximum* cost; commit charges
// what the provider reports).
//
// Token estimate: a run-based heuristic, not a real tokenizer. js-tiktoken was measured here:
// 1.4 s to load o200k_base, ~0.8 MB/s encode (17 ms for a 13 KB prompt) — too slow for the request
// path. The heuristic, calibrated against o200k_base and cl100k_base on English, code, JSON,
// Chinese, Japanese, Russian, German, digits, emoji and base64, lands within 0.68–1.29× of the
// larger of the two (base64 lowest, JSON highest); plain chars/4 was 0.23–1.6×. Exact counts arrive
// with the response and are what gets charged.

import type { UsageEstimate } from './plan.ts';
import type { DetailedPrices } from '../config/types.ts';

export interface Prices {
  /** USD per 1M input tokens. */
  inputPricePerM: number;
  /** USD per 1M output tokens. */
  outputPricePerM: number;
}

/** USD for the given token counts. */
export function estimateCost(tokensIn: number, tokensOut: number, prices: Prices): number {
  return (tokensIn * prices.inputPricePerM + tokensOut * prices.outputPricePerM) / 1_000_000;
}

/**
 * The reservation for one request: prompt tokens + the most it may generate, priced at the
 * deployment's rates. `maxOutputTokens` is the request's max_tokens (or the model's default cap).
 */
export function estimateRequest(promptTokens: number, maxOutputTokens: number, prices: Prices): UsageEstimate {
  const i = Math.max(0, Math.ceil(promptTokens));
  const o = Math.max(0, Math.ceil(maxOutputTokens));
  return { usd: estimateCost(i, o, prices), inputTokens: i, outputTokens: o };
}

/** A deployment's prices as configured (config/types.ts DeploymentConfig). */
export interface DeploymentPrices extends Prices {
  prices?: DetailedPrices;
}

/** What one request cost, by billed token kind (USD). Components sum to `totalUsd`. */
export interface CostComponents {
  /** Prompt tokens neither read from nor written to a cache. */
  inputUsd: number;
  cacheReadUsd: number;
  cacheWrite5mUsd: number;
  cacheWrite1hUsd: number;
  /** Output tokens other than reasoning. */
  outputUsd: number;
  reasoningUsd: number;
  totalUsd: number;
  /** Priced at the long-context tier (prompt above its threshold). */
  longContext: boolean;
}

/** Token counts as translators report them (inputTokens includes cache reads and writes; output includes reasoning). */
export interface BilledUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  cacheCreationInputTokens?: number;
  cacheCreation1hInputTokens?: number;
  reasoningTokens?: number;
}

interface Rates {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  reasoning: number;
}

interface PriceTable {
  /** What the table was built from: a deployment changed in place gets a new table. */
  inputPricePerM: number;
  outputPricePerM: number;
  prices: DetailedPrices | undefined;
  base: Rates;
  /** Dearest per-token rates a reservation charges (reservationCost). */
  reserveIn: number;
  reserveOut: number;
  long: { above: number; rates: Rates; reserveIn: number; reserveOut: number } | undefined;
}

// Rates per deployment, worked out once: the request path prices every request several times (reservation,
// metadata, settle, lineage). Keyed by the deployment object, so a config reload (new objects) starts afresh and
// dropped deployments are collected with their tables.
const tables = new WeakMap<DeploymentPrices, PriceTable>();

function tableOf(d: DeploymentPrices): PriceTable {
  const t = tables.get(d);
  if (t && t.inputPricePerM === d.inputPricePerM && t.outputPricePerM === d.outputPricePerM && t.prices === d.prices) return t;
  const built = buildTable(d);
  tables.set(d, built);
  return built;
}

/**
 * The per-1M rates for a request with `inputTokens` prompt tokens. Unset component prices fall back to what the
 * base prices alone would charge (input price for cache reads/writes, output price for reasoning); in the long-context
 * tier, unset ones scale the base component by the tier's input (or output) ratio.
 */
function buildTable(d: DeploymentPrices): PriceTable {
  const p = d.prices ?? {};
  const base: Rates = {
    input: d.inputPricePerM,
    output: d.outputPricePerM,
    cacheRead: p.cacheReadPerM ?? d.inputPricePerM,
    cacheWrite5m: p.cacheWrite5mPerM ?? d.inputPricePerM,
    cacheWrite1h: p.cacheWrite1hPerM ?? p.cacheWrite5mPerM ?? d.inputPricePerM,
    reasoning: p.reasoningPerM ?? d.outputPricePerM,
  };
  // A cache write can cost more than input: only configured cache-write prices count towards the dearest input rate.
  const reserveIn = (r: Rates): number => Math.max(r.input, p.cacheWrite5mPerM !== undefined ? r.cacheWrite5m : 0, p.cacheWrite1hPerM !== undefined ? r.cacheWrite1h : 0);
  const lc = p.longContext;
  let long: PriceTable['long'];
  if (lc) {
    const inRatio = base.input > 0 ? lc.inputPerM / base.input : 1;
    const outRatio = base.output > 0 ? lc.outputPerM / base.output : 1;
    const rates: Rates = {
      input: lc.inputPerM,
      output: lc.outputPerM,
      cacheRead: lc.cacheReadPerM ?? base.cacheRead * inRatio,
      cacheWrite5m: lc.cacheWrite5mPerM ?? base.cacheWrite5m * inRatio,
      cacheWrite1h: lc.cacheWrite1hPerM ?? base.cacheWrite1h * inRatio,
      reasoning: lc.reasoningPerM ?? base.reasoning * outRatio,
    };
    long = { above: lc.aboveInputTokens, rates, reserveIn: reserveIn(rates), reserveOut: Math.max(rates.output, rates.reasoning) };
  }
  return {
    inputPricePerM: d.inputPricePerM,
    outputPricePerM: d.outputPricePerM,
    prices: d.prices,
    base,
    reserveIn: reserveIn(base),
    reserveOut: Math.max(base.output, base.reasoning),
    long,
  };
}

/**
 * The exact cost of a finished request from the provider's reported usage: each billed token kind at its
 * catalog price. Subsets are clamped so no token is priced twice (reads + writes ≤ input, reasoning ≤ output).
 */
export function costOfUsage(u: BilledUsage, d: DeploymentPrices): CostComponents {
  const input = Math.max(0, u.inputTokens);
  const output = Math.max(0, u.outputTokens);
  const read = Math.min(Math.max(0, u.cachedInputTokens ?? 0), input);
  const write = Math.min(Math.max(0, u.cacheCreationInputTokens ?? 0), input - read);
  const write1h = Math.min(Math.max(0, u.cacheCreation1hInputTokens ?? 0), write);
  const reasoning = Math.min(Math.max(0, u.reasoningTokens ?? 0), output);
  const t = tableOf(d);
  // `!(x <= above)`: a NaN count prices at the long-context tier, as it always has.
  const longContext = t.long !== undefined && !(input <= t.long.above);
  const r = longContext ? t.long!.rates : t.base;
  const inputUsd = ((input - read - write) * r.input) / 1e6;
  const cacheReadUsd = (read * r.cacheRead) / 1e6;
  const cacheWrite5mUsd = ((write - write1h) * r.cacheWrite5m) / 1e6;
  const cacheWrite1hUsd = (write1h * r.cacheWrite1h) / 1e6;
  const outputUsd = ((output - reasoning) * r.output) / 1e6;
  const reasoningUsd = (reasoning * r.reasoning) / 1e6;
  const totalUsd = inputUsd + cacheReadUsd + cacheWrite5mUsd + cacheWrite1hUsd + outputUsd + reasoningUsd;
  return { inputUsd, cacheReadUsd, cacheWrite5mUsd, cacheWrite1hUsd, outputUsd, reasoningUsd, totalUsd, longContext };
}

/**
 * The most a request with these counts can cost before the answer says how its prompt was billed: every prompt
 * token at the dearest input-side rate (a cache write can cost more than input), every output token at the dearer
 * of output and reasoning, at the long-context tier when the prompt is above its threshold.
 */
export function reservationCost(inputTokens: number, outputTokens: number, d: DeploymentPrices): number {
  const t = tableOf(d);
  const tier = t.long !== undefined && !(inputTokens <= t.long.above) ? t.long : t;
  return (inputTokens * tier.reserveIn + outputTokens * tier.reserveOut) / 1e6;
}

// ASCII character classes for estimateTokens (a table lookup is ~1.5× faster than comparisons).
const OTHER = 0; // control characters other than \t \n \r: start a punctuation run
const LETTER = 1;
const DIGIT = 2;
const SPACE = 3;
const PUNCT = 4;
const ASCII_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  ASCII_CLASS[c] =
    (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? LETTER : c >= 48 && c <= 57 ? DIGIT : c === 32 || c === 9 || c === 10 || c === 13 ? SPACE : c > 32 ? PUNCT : OTHER;
}

/** Roughly the tokens a GPT-family BPE tokenizer (o200k/cl100k) produces for `text`. */
export function estimateTokens(text: string): number {
  let n = 0;
  const len = text.length;
  let i = 0;
  while (i < len) {
    const c = text.charCodeAt(i);
    if (c < 128) {
      const start = i;
      const k = ASCII_CLASS[c];
      i++;
      if (k === LETTER) {
        // A word: ~1 token per 6 letters; case changes (camelCase, base64) split tokens.
        let transitions = 0;
        let prev = c;
        while (i < len) {
          const d = text.charCodeAt(i);
          if (d >= 128 || ASCII_CLASS[d] !== LETTER) break;
          if (prev >= 97 && d <= 90) transitions++;
          prev = d;
          i++;
        }
        const l = i - start;
        n += Math.ceil(l / 6) + (l > 12 ? 1 : 0) + transitions * 0.7;
      } else if (k === DIGIT) {
        while (i < len) {
          const d = text.charCodeAt(i);
          if (d < 48 || d > 57) break;
          i++;
        }
        n += Math.ceil((i - start) / 3); // numbers split in groups of up to three digits
      } else if (k === SPACE) {
        while (i < len) {
          const d = text.charCodeAt(i);
          if (d >= 128 || ASCII_CLASS[d] !== SPACE) break;
          i++;
        }
        if (i - start > 1) n += 1; // single spaces merge into the next word
      } else {
        while (i < len) {
          const d = text.charCodeAt(i);
          if (d >= 128 || ASCII_CLASS[d] !== PUNCT) break;
          i++;
        }
        n += Math.ceil((i - start) / 2);
      }
      continue;
    }
    if (c < 0x300) n += 0.6; // Latin-1 / extended Latin
    else if (c < 0x2000) n += 0.45; // Greek, Cyrillic, Hebrew, Arabic, Indic…
    else if (c < 0x2e80) n += 1; // symbols, punctuation
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 2.5; // astral plane (emoji): several byte-level tokens
      i++;
    } else n += 1.2; // CJK, kana, Hangul
    i++;
  }
  return Math.ceil(n);
}

/**
 * Prompt tokens of a chat request: content estimate + per-message framing (OpenAI counts ~3 tokens
 * per message plus 3 for the reply primer).
 */
export function estimateChatTokens(messages: ReadonlyArray<{ role?: string; content?: unknown; name?: string }>): number {
  let n = 3;
  for (const m of messages) {
    n += 3;
    if (m.role) n += 1;
    if (m.name) n += estimateTokens(m.name) + 1;
    n += contentTokens(m.content);
  }
  return n;
}

function contentTokens(content: unknown): number {
  if (typeof content === 'string') return estimateTokens(content);
  if (Array.isArray(content)) {
    let n = 0;
    for (const part of content) {
      if (part && typeof part === 'object') {
        const p = part as { type?: unknown; text?: unknown };
        if (typeof p.text === 'string') n += estimateTokens(p.text);
        // Images and other media: providers bill by size; reserve a typical high-detail image.
        else if (p.type === 'image_url' || p.type === 'image' || p.type === 'input_image') n += 1105;
        else n += estimateTokens(JSON.stringify(part));
      }
    }
    return n;
  }
  if (content === null || content === undefined) return 0;
  return estimateTokens(JSON.stringify(content));
}
