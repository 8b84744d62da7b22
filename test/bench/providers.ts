// Translation cost per request (request + response) for OpenAI → Anthropic and OpenAI → Bedrock at ~1.5 KB and
// ~30 KB bodies, and per-chunk streaming cost. Bounded: each measurement runs for at most ~300 ms.
import { chatWorkload } from './chat-workload.ts';
import { getTranslator, parseClientRequest, type Translator } from '../../service/providers/index.ts';
import { OpenAIChatTranslator } from '../../service/providers/chat.ts';
import { OpenAICore } from '../../service/providers/openai.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { anthropicReply, anthropicStream, bedrockReply, bedrockStream } from '../support/fake-providers.ts';
import { target } from '../providers/helpers.ts';
import { redactionPort } from '../../service/gateway/adapters.ts';
import { rewriteClientJson } from '../../service/gateway/text-rewrite.ts';
import { RedactorCache } from '../../service/redaction/redactor.ts';
import type { RedactionRule } from '../../service/redaction/types.ts';

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

/**
 * The body path of one request as `npm run bench -- extproc` sends it (the ~1.2 KB chat request of the acme/research
 * key, OpenAI client → OpenAI deployment, JSON answer), as the exchange drives it: parse + validate, redact with the
 * example bundle's rules (pii + secrets + a keyword list, secrets and keywords also on the response), translate the
 * request, translate the response, filter the response text. CPU µs per request (process.cpuUsage), median of 11, with the same path without forwarding the client's bytes in alternating rounds.
 */
async function slice(): Promise<string> {
  const { body: raw, response: resp } = chatWorkload();
  const custom = [{ name: 'acme_codenames', keywords: ['bluebird', 'nightjar'], caseInsensitive: true }];
  const pii = ['pii'];
  const secrets = ['secrets'];
  const codenames = ['acme_codenames'];
  // A decision builds new rule objects per request around the compiled policy's detector arrays.
  const rules = (): RedactionRule[] => [
    { source: 'data-protection/mask-pii', detectors: pii, action: 'mask', responses: false },
    { source: 'data-protection/mask-secrets', detectors: secrets, action: 'mask', responses: true },
    { source: 'data-protection/acme-codenames', detectors: codenames, action: 'mask', responses: true },
  ];
  const port = redactionPort(new RedactorCache({ secret: 'bench-secret-0123456789abcdef' }));
  const tr = getTranslator('openai', 'chat', 'openai');
  const t = target('openai');
  const headers = { 'content-type': 'application/json' };
  // `forward` false drops the received bytes, so the request takes the general (re-serializing) path: A/B of the
  // forwarded-bytes fast path (openai.ts forwardedChatBody) in one process.
  const one = async (forward = true): Promise<number> => {
    const req = parseClientRequest('openai', 'chat', raw);
    if (!forward) {
      req.raw = undefined;
      req.rawText = undefined;
    }
    const red = port.redactRequest(req.body, rules(), custom, 'acme');
    const up = await tr.request(req, t);
    const r = tr.response(200, headers, resp, req);
    const output = red.output;
    const body = output ? rewriteClientJson('openai', r.body, (s, json) => output.text(s, json), r.json) : r.body;
    return up.body.length + body.length;
  };
  for (let i = 0; i < 3000; i++) {
    await one(true);
    await one(false);
  }
  const rounds: number[] = [];
  const general: number[] = [];
  const ratios: number[] = [];
  const cpuPer = async (forward: boolean, n: number): Promise<number> => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await one(forward);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  // Short alternating rounds: on a shared machine, load drifts less within a pair than across long rounds.
  for (let k = 0; k < 11; k++) {
    const b = await cpuPer(false, 2000);
    const a = await cpuPer(true, 2000);
    rounds.push(a);
    general.push(b);
    ratios.push(a / b);
  }
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[5]!;
  return (
    `providers: request/response body path (parse+validate, redact pii+secrets+keywords, openai→openai request and response, response text filter), ${(raw.length / 1024).toFixed(1)}KB: ` +
    `${med(rounds).toFixed(1)} µs CPU/request (median of 11; min ${Math.min(...rounds).toFixed(1)}); ` +
    `without forwarding the client's bytes ${med(general).toFixed(1)} µs, ratio ${med(ratios).toFixed(3)} (median, interleaved)`
  );
}

/**
 * The exact pair the extproc/envoy benches serve (OpenAI chat client → azure-eu deployment, the chat workload's
 * request and JSON answer): parse + validate, translate the request, translate the response. CPU µs per request,
 * median of 11 interleaved rounds, against the general translator (OpenAIChatTranslator over OpenAICore, which served
 * this pair before the passthrough translator).
 */
async function azurePair(): Promise<string> {
  const { body: raw, response: resp } = chatWorkload();
  const t = target('azure');
  const headers = { 'content-type': 'application/json' };
  const pass = getTranslator('openai', 'chat', 'azure');
  const general = new OpenAIChatTranslator(new OpenAICore('azure'));
  const one = async (tr: Translator): Promise<number> => {
    const req = parseClientRequest('openai', 'chat', raw);
    return (await tr.request(req, t)).body.length + tr.response(200, headers, resp, req).body.length;
  };
  const cpuPer = async (tr: Translator, n: number): Promise<number> => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await one(tr);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  for (let i = 0; i < 3000; i++) {
    await one(pass);
    await one(general);
  }
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let k = 0; k < 11; k++) {
    const g = await cpuPer(general, 3000);
    const p = await cpuPer(pass, 3000);
    a.push(p);
    b.push(g);
    ratios.push(p / g);
  }
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[5]!;
  return (
    `providers: openai→azure chat pair (parse+validate, request, response; ${(raw.length / 1024).toFixed(1)}KB request, ${resp.length} B answer): ` +
    `${med(a).toFixed(2)} µs CPU/request; general translator ${med(b).toFixed(2)} µs; ratio ${med(ratios).toFixed(3)} (median of 11, interleaved)`
  );
}

export async function bench(): Promise<string[]> {
  const out: string[] = [await slice(), await azurePair()];
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
