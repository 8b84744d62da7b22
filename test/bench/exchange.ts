// The request path without gRPC: one GatewayExchange driven through all four phases in-process,
// with the example policies (limits raised) — separates Tollgate's own logic from transport cost.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startTollgate } from '../../service/app.ts';
import { GatewayExchange } from '../../service/gateway/exchange.ts';

export async function bench(): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'tg-bench-ex-'));
  const dir = join(tmp, 'policies');
  cpSync('policies', dir, { recursive: true });
  for (const f of readdirSync(join(dir, 'policies'))) {
    const p = join(dir, 'policies', f);
    writeFileSync(p, readFileSync(p, 'utf8').replace(/\b(rpm|tpm|maxParallel): \d+/g, '$1: 100000000').replace(/usd: [\d.]+/g, 'usd: 1000000000'));
  }
  const saved = { ...process.env };
  Object.assign(process.env, { OPENAI_API_KEY: 'bench', ANTHROPIC_API_KEY: 'bench', AZURE_OPENAI_API_KEY: 'bench' });
  const tg = await startTollgate({
    configDir: dir,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    lineageSinks: [`file:${join(tmp, 'lineage.jsonl')}`],
    spoolDir: join(tmp, 'spool'),
    log: pino({ level: 'silent' }),
    watchConfig: false,
    redactionSecret: 'bench-secret-0123456789abcdef',
  });
  const body = Buffer.from(
    JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are a helpful assistant for the research team.' },
        { role: 'user', content: 'Summarise the following notes for the weekly report. '.repeat(20) },
      ],
      max_tokens: 256,
    }),
  );
  const resp = Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini-eu',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Done.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 300, completion_tokens: 5, total_tokens: 305 },
    }),
  );
  const headers = new Map([
    [':method', 'POST'],
    [':path', '/v1/chat/completions'],
    ['content-type', 'application/json'],
    ['authorization', 'Bearer tg-demo-acme-research-0000000000000001'],
  ]);
  const one = async (): Promise<void> => {
    const ex = new GatewayExchange(tg.services);
    await ex.requestHeaders({ headers, endOfStream: false, metadata: {}, attributes: {} });
    const r = await ex.requestBody(body);
    if (r.kind !== 'continue') throw new Error(`bench request rejected: ${r.body.toString()}`);
    r.mutation.build();
    (await ex.responseHeaders(200, new Map([['content-type', 'application/json']]), false)).mutation.build();
    await ex.responseBody(resp);
    ex.end('completed');
  };
  try {
    for (let i = 0; i < 3000; i++) {
      await one();
      if (i % 32 === 31) await new Promise((r) => setImmediate(r));
    }
    await tg.lineage.flush();
    const n = Number(process.env.BENCH_EXCHANGE_N ?? 10000);
    const times: number[] = [];
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await one();
      times.push(Number(process.hrtime.bigint() - t) / 1000);
      // A server turns its event loop between requests; without this the lineage sink's I/O never
      // runs and records pile into the disk spool, which no real deployment does.
      if (i % 32 === 31) await new Promise((r) => setImmediate(r));
    }
    const c1 = process.cpuUsage(c0);
    await tg.lineage.flush();
    const c2 = process.cpuUsage(c0);
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.floor(q * times.length)]!.toFixed(0);
    return [
      `exchange (all four phases in-process, no gRPC, ${body.length} B request, example policies): p50 ${p(0.5)} µs p99 ${p(0.99)} µs`,
      `exchange CPU per request: ${((c1.user + c1.system) / n).toFixed(0)} µs while running (request path + the lineage drain to JSONL as it keeps up), ${((c2.user + c2.system) / n).toFixed(0)} µs after the final flush`,
    ];
  } finally {
    await tg.close(100);
    process.env = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
}
