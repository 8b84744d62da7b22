// Translation cost per request (request + response) for OpenAI → Anthropic and OpenAI → Bedrock at ~1.5 KB and
// ~30 KB bodies, and per-chunk streaming cost. Bounded: each measurement runs for at most ~300 ms.
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { anthropicReply, anthropicStream, bedrockReply, bedrockStream } from '../support/fake-providers.ts';
import { target } from '../providers/helpers.ts';

const BUDGET_NS = 300_000_000n;

async function measure(fn: () => unknown | Promise<unknown>): Promise<{ p50: number; p99: number; n: number }> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() - start < BUDGET_NS && samples.length < 20000) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)]!, p99: samples[Math.floor(samples.length * 0.99)]!, n: samples.length };
}

function body(targetBytes: number): Buffer {
  const messages: Array<Record<string, unknown>> = [{ role: 'system', content: 'You are a helpful assistant that answers concisely and cites sources.' }];
  let i = 0;
  const line = 'The quarterly report shows revenue growth in three regions, with costs flat year over year. ';
  while (JSON.stringify(messages).length < targetBytes - 300) {
    messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: `${line}${line.slice(0, (i * 13) % line.length)}` });
    i++;
  }
  messages.push({ role: 'user', content: 'Summarize the discussion.' });
  return Buffer.from(
    JSON.stringify({
      model: 'smart',
      messages,
      max_tokens: 512,
      temperature: 0.2,
      tools: [{ type: 'function', function: { name: 'search', description: 'Search docs', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
    }),
  );
}

function replyText(bytes: number): string {
  const words = 'Revenue grew in three regions while costs held flat, according to the report. ';
  return words.repeat(Math.max(1, Math.ceil(bytes / words.length))).slice(0, bytes);
}

const fmt = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)}ms` : `${n.toFixed(1)}µs`);

export async function bench(): Promise<string[]> {
  const out: string[] = [];
  const opts = { now: () => 1_700_000_000, newId: (p: string) => `${p}bench` };
  for (const provider of ['anthropic', 'bedrock'] as ProviderApi[]) {
    for (const size of [1500, 30000]) {
      const raw = body(size);
      const tr = getTranslator('openai', 'chat', provider, opts);
      const t = target(provider);
      const req = parseClientRequest('openai', 'chat', raw);
      const resp = Buffer.from(JSON.stringify(provider === 'anthropic' ? anthropicReply({ text: replyText(size) }) : bedrockReply({ text: replyText(size) })));
      const rq = await measure(() => tr.request(req, t));
      const rs = await measure(() => tr.response(200, { 'content-type': 'application/json' }, resp, req));
      const parse = await measure(() => parseClientRequest('openai', 'chat', raw));
      out.push(
        `providers: openai→${provider} ${(raw.length / 1024).toFixed(1)}KB request p50 ${fmt(rq.p50)} p99 ${fmt(rq.p99)}` +
          `${provider === 'bedrock' ? ' (incl. SigV4)' : ''}; ${(resp.length / 1024).toFixed(1)}KB response p50 ${fmt(rs.p50)} p99 ${fmt(rs.p99)}; ` +
          `parseClientRequest p50 ${fmt(parse.p50)}`,
      );
    }
  }
  for (const provider of ['anthropic', 'bedrock'] as ProviderApi[]) {
    const reply = { text: replyText(4000) };
    const chunks = provider === 'anthropic' ? anthropicStream(reply).map((s) => Buffer.from(s)) : bedrockStream(reply);
    const tr = getTranslator('openai', 'chat', provider, opts);
    const req = parseClientRequest('openai', 'chat', Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'));
    const whole = await measure(() => {
      const st = tr.stream(req);
      for (const c of chunks) st.push(c);
      st.end();
    });
    const perChunk = whole.p50 / chunks.length;
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    out.push(
      `providers: openai→${provider} stream ${chunks.length} events (${(bytes / 1024).toFixed(1)}KB) p50 ${fmt(whole.p50)} → ${fmt(perChunk)}/event; ` +
        `throughput ${(bytes / (whole.p50 / 1e6) / 1e6).toFixed(1)} MB/s`,
    );
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await bench()) console.log(line);
}
