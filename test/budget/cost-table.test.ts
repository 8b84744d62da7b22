// The cost table, end to end: for each provider, a response whose usage has cache reads, cache writes (Anthropic and
// Bedrock: 5-minute and 1-hour) and reasoning tokens — in that provider's own usage fields — settles the caller's USD
// budget to the exact amount the catalog prices say, and lineage records each component. Two cases cross a
// long-context tier (Gemini and Claude above 200k prompt tokens: the whole request at the tier's rates).
// Expected amounts are worked out by hand in the table (not by the code under test).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import type { ProviderApi } from '../../service/config/types.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { ReplySpec } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const model = (name: string, provider: ProviderApi, upstream: string, pricing: string, window = 128000): string => `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: ${name}}
spec:
  deployments:
  - {provider: fake-${provider}, model: ${JSON.stringify(upstream)}, region: us-east-1, contextWindow: ${window}, pricing: ${pricing}}
---
`;
const CLAUDE = '{inputPerMillion: 3, outputPerMillion: 15, cacheReadPerMillion: 0.3, cacheWrite5mPerMillion: 3.75, cacheWrite1hPerMillion: 6, longContext: {aboveInputTokens: 200000, inputPerMillion: 6, outputPerMillion: 22.5, cacheReadPerMillion: 0.6, cacheWrite5mPerMillion: 7.5, cacheWrite1hPerMillion: 12}}';
const EXTRA =
  model('priced-openai', 'openai', 'o4-mini', '{inputPerMillion: 1.25, outputPerMillion: 10, cacheReadPerMillion: 0.125}') +
  model('priced-azure', 'azure', 'gpt-5-deploy', '{inputPerMillion: 2.75, outputPerMillion: 11, cacheReadPerMillion: 1.375}') +
  model('priced-anthropic', 'anthropic', 'claude-sonnet-4-20250514', CLAUDE) +
  model('priced-vertex', 'vertex', 'claude-sonnet-4@20250514', CLAUDE, 1000000) +
  model('priced-bedrock-claude', 'bedrock', 'us.anthropic.claude-sonnet-4-20250514-v1:0', CLAUDE) +
  model('priced-bedrock-converse', 'bedrock', 'amazon.nova-pro-v1:0', '{inputPerMillion: 3, outputPerMillion: 15, cacheReadPerMillion: 0.3, cacheWrite5mPerMillion: 3.75, cacheWrite1hPerMillion: 6}') +
  model('priced-gemini', 'gemini', 'gemini-2.5-pro', '{inputPerMillion: 1.25, outputPerMillion: 10, cacheReadPerMillion: 0.3125, longContext: {aboveInputTokens: 200000, inputPerMillion: 2.5, outputPerMillion: 15, cacheReadPerMillion: 0.625}}', 1048576) +
  `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: cost-table}
spec:
  rules:
    - name: acme-usd
      when: principal.keyId == 'test-acme'
      budget: {scope: key, limit: {usd: 100}, window: day}
`;

interface Row {
  name: string;
  kind: ProviderApi;
  client: 'openai' | 'anthropic';
  stream?: boolean;
  model: string;
  usage: NonNullable<ReplySpec['usage']>;
  /** USD, computed by hand from the prices above. */
  expected: number;
  components: Partial<Record<'inputUsd' | 'cacheReadUsd' | 'cacheWrite5mUsd' | 'cacheWrite1hUsd' | 'outputUsd' | 'reasoningUsd', number>>;
  longContext?: boolean;
}

const ROWS: Row[] = [
  {
    // 2,000 uncached × 1.25 + 8,000 cached × 0.125 + 500 output × 10 + 2,500 reasoning × 10
    name: 'OpenAI: cached_tokens and reasoning_tokens',
    kind: 'openai', client: 'openai', model: 'priced-openai',
    usage: { input: 10000, cached: 8000, output: 3000, reasoning: 2500 },
    expected: 0.0335,
    components: { inputUsd: 0.0025, cacheReadUsd: 0.001, outputUsd: 0.005, reasoningUsd: 0.025 },
  },
  {
    // 2,000 × 2.75 + 8,000 × 1.375 + 1,000 × 11 + 2,000 reasoning × 11 (stream: usage from the last chunk)
    name: 'Azure OpenAI (stream): cached and reasoning tokens',
    kind: 'azure', client: 'openai', stream: true, model: 'priced-azure',
    usage: { input: 10000, cached: 8000, output: 3000, reasoning: 2000 },
    expected: 0.0495,
    components: { inputUsd: 0.0055, cacheReadUsd: 0.011, outputUsd: 0.011, reasoningUsd: 0.022 },
  },
  {
    // 12 × 3 + 20,000 read × 0.3 + 1,000 5m-write × 3.75 + 2,000 1h-write × 6 + 87 output × 15
    name: 'Anthropic: cache_read, cache_creation 5m and 1h',
    kind: 'anthropic', client: 'anthropic', model: 'priced-anthropic',
    usage: { input: 23012, cached: 20000, cacheWrite: 3000, cacheWrite1h: 2000, output: 87 },
    expected: 0.023091,
    components: { inputUsd: 0.000036, cacheReadUsd: 0.006, cacheWrite5mUsd: 0.00375, cacheWrite1hUsd: 0.012, outputUsd: 0.001305 },
  },
  {
    // Claude on Bedrock via InvokeModelWithResponseStream: the same Anthropic usage, same prices.
    name: 'Claude on Bedrock (InvokeModel stream): Anthropic usage incl. 1h writes',
    kind: 'bedrock', client: 'anthropic', stream: true, model: 'priced-bedrock-claude',
    usage: { input: 23012, cached: 20000, cacheWrite: 3000, cacheWrite1h: 2000, output: 87 },
    expected: 0.023091,
    components: { inputUsd: 0.000036, cacheReadUsd: 0.006, cacheWrite5mUsd: 0.00375, cacheWrite1hUsd: 0.012, outputUsd: 0.001305 },
  },
  {
    // Long-context tier (250,000 > 200,000): 10,000 × 6 + 200,000 × 0.6 + 30,000 × 7.5 + 10,000 × 12 + 1,000 × 22.5
    name: 'Claude on Vertex above 200k: the whole request at the long-context rates',
    kind: 'vertex', client: 'anthropic', model: 'priced-vertex',
    usage: { input: 250000, cached: 200000, cacheWrite: 40000, cacheWrite1h: 10000, output: 1000 },
    expected: 0.5475,
    components: { inputUsd: 0.06, cacheReadUsd: 0.12, cacheWrite5mUsd: 0.225, cacheWrite1hUsd: 0.12, outputUsd: 0.0225 },
    longContext: true,
  },
  {
    // Converse: 500 × 3 + 4,000 cacheRead × 0.3 + 1,000 5m × 3.75 + 500 1h (cacheDetails) × 6 + 300 × 15
    name: 'Bedrock Converse: cacheReadInputTokens, cacheWriteInputTokens with cacheDetails',
    kind: 'bedrock', client: 'openai', model: 'priced-bedrock-converse',
    usage: { input: 6000, cached: 4000, cacheWrite: 1500, cacheWrite1h: 500, output: 300 },
    expected: 0.01395,
    components: { inputUsd: 0.0015, cacheReadUsd: 0.0012, cacheWrite5mUsd: 0.00375, cacheWrite1hUsd: 0.003, outputUsd: 0.0045 },
  },
  {
    // Long-context tier (300,000 > 200,000): 50,000 × 2.5 + 250,000 cached × 0.625 + 2,000 × 15 + 3,000 thoughts × 15
    name: 'Gemini above 200k: cachedContentTokenCount and thoughtsTokenCount at the long-context rates',
    kind: 'gemini', client: 'openai', model: 'priced-gemini',
    usage: { input: 300000, cached: 250000, output: 5000, reasoning: 3000 },
    expected: 0.35625,
    components: { inputUsd: 0.125, cacheReadUsd: 0.15625, outputUsd: 0.03, reasoningUsd: 0.045 },
    longContext: true,
  },
];

const close = (a: number | undefined, b: number, what: string): void => assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} ≠ ${b}`);

describe('cost table: each provider settles the budget to the exact catalog amount', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ providers: ['openai', 'azure', 'anthropic', 'gemini', 'bedrock', 'vertex'], extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });
  const spent = async (): Promise<number> => {
    const rows = await h.tollgate.budgets.spend({ tenant: 'acme', scopeKey: 'key:test-acme' });
    return rows[0]?.usd ?? 0;
  };

  for (const r of ROWS) {
    it(`${r.name} → $${r.expected}`, async () => {
      h.fakes[r.kind]!.setNext({ type: 'reply', reply: { text: 'Priced.', usage: r.usage, id: 'cost_1' } });
      const before = await spent();
      let requestId: string | null;
      if (r.client === 'openai') {
        const c = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 });
        if (r.stream) {
          const s = await c.chat.completions.create({ model: r.model, messages: [{ role: 'user', content: 'price me' }], stream: true, stream_options: { include_usage: true } }).withResponse();
          for await (const _ of s.data);
          requestId = s.response.headers.get('x-request-id');
        } else {
          requestId = (await c.chat.completions.create({ model: r.model, messages: [{ role: 'user', content: 'price me' }] }).withResponse()).response.headers.get('x-request-id');
        }
      } else {
        const c = new Anthropic({ apiKey: KEYS.acme, baseURL: h.url, maxRetries: 0, timeout: 15000 });
        const params = { model: r.model, max_tokens: 1024, messages: [{ role: 'user' as const, content: 'price me' }] };
        if (r.stream) {
          const s = c.messages.stream(params);
          await s.finalMessage();
          requestId = (await s.withResponse()).response.headers.get('x-request-id');
        } else {
          requestId = (await c.messages.create(params).withResponse()).response.headers.get('x-request-id');
        }
      }
      await eventually(() => h.lineage.some((l) => l.requestId === requestId), 5000);
      const rec: LineageRecord = h.lineage.find((l) => l.requestId === requestId)!;
      close(rec.costUsd, r.expected, 'lineage costUsd');
      close((await spent()) - before, r.expected, 'budget charged');
      for (const [k, v] of Object.entries(r.components)) close(rec.costComponents?.[k as keyof typeof r.components], v, `costComponents.${k}`);
      assert.equal(rec.costComponents?.longContext, r.longContext, 'long-context tier');
      assert.equal(rec.tokens?.input, r.usage.input);
      assert.equal(rec.tokens?.cached, r.usage.cached);
      assert.equal(rec.tokens?.cacheWrite, r.usage.cacheWrite);
      assert.equal(rec.tokens?.cacheWrite1h, r.usage.cacheWrite1h);
      assert.equal(rec.tokens?.reasoning, r.usage.reasoning);
    });
  }
});
