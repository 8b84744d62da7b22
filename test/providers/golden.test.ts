// Golden streaming tests: captured-style upstream streams (test/golden/<pair>/<name>.upstream, written by
// test/golden/make-upstreams.py) are fed one byte at a time, in random chunk sizes and all at once; the client
// bytes must equal <name>.expected exactly (ids and `created` are pinned through TranslatorOptions).
// The expected client streams are then consumed by the official OpenAI / Anthropic SDKs.
// Regenerate expectations after a deliberate change with: GOLDEN_UPDATE=1 node --import tsx --test test/providers/golden.test.ts
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import type { ClientApi } from '../../service/errors.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { Usage } from '../../service/providers/types.ts';
import { freshOptions, splitEvery, splitRandom } from './helpers.ts';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');
const UPDATE = process.env.GOLDEN_UPDATE === '1';

interface Case {
  client: ClientApi;
  /** `responses` for the Responses API (OpenAI client); chat when absent. */
  op?: 'chat' | 'responses';
  provider: ProviderApi;
  request: Record<string, unknown>;
  usage: Usage | null;
  finishReason: string | null;
  /** The deployment's upstream model, where it picks the path (Claude on Bedrock → InvokeModel). */
  upstreamModel?: string;
  /** Passthrough pairs: the client sees exactly the upstream bytes. */
  expectedIsUpstream?: boolean;
  /** Same client output as another case (e.g. CRLF vs LF framing of the same stream). */
  sameExpectedAs?: string;
}

interface Golden {
  pair: string;
  name: string;
  c: Case;
  upstream: Buffer;
  expectedPath: string;
}

function load(): Golden[] {
  const out: Golden[] = [];
  for (const pair of readdirSync(GOLDEN, { withFileTypes: true })) {
    if (!pair.isDirectory()) continue;
    for (const f of readdirSync(join(GOLDEN, pair.name))) {
      if (!f.endsWith('.case.json')) continue;
      const name = f.slice(0, -'.case.json'.length);
      const dir = join(GOLDEN, pair.name);
      const c = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Case;
      const expectedName = c.sameExpectedAs ?? name;
      out.push({ pair: pair.name, name, c, upstream: readFileSync(join(dir, `${name}.upstream`)), expectedPath: join(dir, `${expectedName}.expected`) });
    }
  }
  return out.sort((a, b) => `${a.pair}/${a.name}`.localeCompare(`${b.pair}/${b.name}`));
}

function translate(g: Golden, chunks: Buffer[]): { out: string; usage: Usage | undefined; finish: string | undefined } {
  const op = g.c.op ?? 'chat';
  const tr = getTranslator(g.c.client, op, g.c.provider, freshOptions(), g.c.upstreamModel);
  const req = parseClientRequest(g.c.client, op, Buffer.from(JSON.stringify(g.c.request)));
  const st = tr.stream(req);
  const parts: Buffer[] = [];
  for (const c of chunks) parts.push(st.push(c));
  parts.push(st.end());
  return { out: Buffer.concat(parts).toString('utf8'), usage: st.usage(), finish: st.finishReason() };
}

const GOLDENS = load();

describe('golden streams', () => {
  test('golden files exist for every translator pair that streams', () => {
    const pairs = new Set(GOLDENS.map((g) => g.pair));
    for (const p of ['openai-openai', 'openai-azure', 'openai-anthropic', 'openai-gemini', 'openai-bedrock', 'anthropic-anthropic', 'anthropic-openai', 'anthropic-gemini', 'anthropic-bedrock', 'responses-openai', 'responses-azure', 'responses-anthropic', 'responses-gemini', 'responses-bedrock', 'anthropic-bedrock-invoke']) {
      assert.ok(pairs.has(p), `missing golden pair ${p}`);
    }
  });

  for (const g of GOLDENS) {
    test(`${g.pair}/${g.name}`, () => {
      const whole = translate(g, [g.upstream]);
      if (UPDATE && !g.c.expectedIsUpstream && !g.c.sameExpectedAs) writeFileSync(g.expectedPath, whole.out);
      const expected = g.c.expectedIsUpstream ? g.upstream.toString('utf8') : readFileSync(g.expectedPath, 'utf8');
      assert.equal(whole.out, expected, 'all at once');
      assert.equal(translate(g, splitEvery(g.upstream, 1)).out, expected, 'one byte at a time');
      for (let seed = 1; seed <= 12; seed++) {
        assert.equal(translate(g, splitRandom(g.upstream, seed * 7919, 64)).out, expected, `random chunks, seed ${seed}`);
      }
      assert.deepEqual(whole.usage, g.c.usage ?? undefined, 'usage');
      assert.equal(whole.finish, g.c.finishReason ?? undefined, 'finish reason');
    });
  }
});

// ---------------------------------------------------------------- the official SDKs accept the output

let current: Buffer = Buffer.alloc(0);
const server: Server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    // Several writes, so the SDK's own SSE parser also sees split events.
    const parts = splitRandom(current, 5, 200);
    for (const p of parts) res.write(p);
    res.end();
  });
});
const listening = new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
after(() => new Promise<void>((r) => server.close(() => r())));

describe('official SDKs consume the golden client streams', () => {
  for (const g of GOLDENS) {
    const expected = (): Buffer => (g.c.expectedIsUpstream ? g.upstream : existsSync(g.expectedPath) ? readFileSync(g.expectedPath) : Buffer.alloc(0));
    const failing = g.c.finishReason === null;
    test(`${g.c.client} SDK: ${g.pair}/${g.name}${failing ? ' (raises the provider error)' : ''}`, async () => {
      const port = await listening;
      current = expected();
      if (g.c.op === 'responses') {
        const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test', maxRetries: 0 });
        const stream = client.responses.stream({ ...(g.c.request as object), model: 'x' } as unknown as Parameters<typeof client.responses.stream>[0]);
        if (failing) {
          await assert.rejects(stream.finalResponse());
          return;
        }
        const final = await stream.finalResponse();
        assert.equal(final.usage?.input_tokens, g.c.usage!.inputTokens);
        assert.equal(final.usage?.output_tokens, g.c.usage!.outputTokens);
        const calls = final.output.filter((o) => o.type === 'function_call');
        if (g.c.finishReason === 'tool_calls') assert.ok(calls.length > 0 && calls.every((c) => c.type === 'function_call' && typeof JSON.parse(c.arguments) === 'object'));
        else assert.ok(final.output_text.length > 0);
      } else if (g.c.client === 'openai') {
        const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test', maxRetries: 0 });
        const run = async (): Promise<{ text: string; tools: string[]; finish: string | null }> => {
          const stream = client.chat.completions.stream({ ...(g.c.request as object), model: 'x' } as unknown as Parameters<typeof client.chat.completions.stream>[0]);
          const final = await stream.finalChatCompletion();
          const choice = final.choices[0]!;
          return { text: choice.message.content ?? '', tools: (choice.message.tool_calls ?? []).map((t) => (t.type === 'function' ? t.function.name : '')), finish: choice.finish_reason };
        };
        if (failing) {
          await assert.rejects(run(), /Overloaded|Too many tokens/);
          return;
        }
        const r = await run();
        assert.equal(r.finish, g.c.finishReason);
        if (r.finish === 'tool_calls') assert.ok(r.tools.length > 0);
        else assert.ok(r.text.length > 0);
      } else {
        const client = new Anthropic({ baseURL: `http://127.0.0.1:${port}`, apiKey: 'sk-ant-test', maxRetries: 0 });
        const stream = client.messages.stream({ ...(g.c.request as object), model: 'x' } as unknown as Parameters<typeof client.messages.stream>[0]);
        if (failing) {
          await assert.rejects(stream.finalMessage(), /Overloaded|Too many tokens/);
          return;
        }
        const msg = await stream.finalMessage();
        if (g.c.upstreamModel) {
          // Anthropic-native path: the thinking block (with its signature) reaches the SDK intact.
          const thinking = msg.content.find((b) => b.type === 'thinking');
          assert.ok(thinking && thinking.type === 'thinking' && thinking.thinking.length > 0 && thinking.signature.length > 0, JSON.stringify(msg.content));
        }
        assert.equal(msg.stop_reason, g.c.finishReason);
        assert.equal(msg.usage.output_tokens, g.c.usage!.outputTokens);
        assert.equal(msg.usage.input_tokens + (msg.usage.cache_read_input_tokens ?? 0) + (msg.usage.cache_creation_input_tokens ?? 0), g.c.usage!.inputTokens);
        if (msg.stop_reason === 'tool_use') {
          const tool = msg.content.find((b) => b.type === 'tool_use');
          assert.ok(tool && tool.type === 'tool_use' && typeof tool.input === 'object');
        }
      }
    });
  }
});
