// The request path without gRPC: one GatewayExchange driven through all four phases in-process,
// with the example policies (limits raised) — separates Tollgate's own logic from transport cost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { median } from './noise.ts';
import { benchBundle } from './bench-bundle.ts';
import { startTollgate } from '../../service/app.ts';
import { GatewayExchange } from '../../service/gateway/exchange.ts';
import { decodeRequest, encodeResponse } from '../../service/extproc/codec.ts';
import type { ProcessingRequest } from '../../service/extproc/messages.ts';
import { Processor } from '../../service/extproc/processor.ts';
import { extProcService } from '../../service/extproc/proto.ts';

/** Bytes allocated and GC pause time per request, from V8's heap statistics and perf_hooks' gc entries. */
async function gcPerRequest(f: () => Promise<void>, k: number): Promise<{ allocatedKb: number; gcUs: number; count: number }> {
  const { PerformanceObserver } = await import('node:perf_hooks');
  const v8 = await import('node:v8');
  let gcMs = 0;
  let count = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      count++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  // Allocation ≈ the sum of used-heap growth between requests (a collection inside a request hides a
  // little of it): a rough figure to compare runs, not an exact count.
  const before = v8.getHeapStatistics();
  let allocated = 0;
  let last = before.used_heap_size;
  for (let i = 0; i < k; i++) {
    await f();
    const u = v8.getHeapStatistics().used_heap_size;
    if (u >= last) allocated += u - last;
    last = u;
    if (i % 32 === 31) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 10));
  obs.disconnect();
  return { allocatedKb: allocated / k / 1024, gcUs: (gcMs * 1000) / k, count };
}

export async function bench(): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'tg-bench-ex-'));
  const dir = benchBundle(tmp);
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
  // The same request as Envoy sends it (wire bytes), for the full per-request glue: decode → Processor →
  // GatewayExchange → reply → encode. What the server does minus the gRPC transport.
  const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });
  const svcDef = extProcService().Process!;
  const wires = ([
    { request_headers: { headers: { headers: [...headers].map(([k, v]) => hv(k, v)) }, end_of_stream: false } },
    { request_body: { body, end_of_stream: true } },
    { response_headers: { headers: { headers: [hv(':status', '200'), hv('content-type', 'application/json')] }, end_of_stream: false } },
    { response_body: { body: resp, end_of_stream: true } },
  ] as ProcessingRequest[]).map((m) => svcDef.requestSerialize(m) as Buffer);
  let replyBytes = 0;
  const full = async (): Promise<void> => {
    const p = new Processor(new GatewayExchange(tg.services));
    for (const w of wires) {
      // As the server drives it: a phase that answered at once is not awaited.
      const r = p.handleNow(decodeRequest(w));
      const reply = r instanceof Promise ? await r : r;
      if (reply) replyBytes += encodeResponse(reply).length;
    }
    if (!p.finished) throw new Error('bench exchange did not finish');
  };
  try {
    for (let i = 0; i < 3000; i++) {
      await full();
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
    // Exchange alone vs the full glue, interleaved rounds (CPU per request, lineage drain included in both).
    const cpuOf = async (f: () => Promise<void>, k: number): Promise<number> => {
      const t0 = process.cpuUsage();
      for (let i = 0; i < k; i++) {
        await f();
        if (i % 32 === 31) await new Promise((r) => setImmediate(r));
      }
      await tg.lineage.flush();
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / k;
    };
    const k = Math.max(500, Math.floor(n / 5));
    const ex: number[] = [];
    const gl: number[] = [];
    for (let round = 0; round < 5; round++) {
      ex.push(await cpuOf(one, k));
      gl.push(await cpuOf(full, k));
    }
    const gc = await gcPerRequest(full, k);
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.floor(q * times.length)]!.toFixed(0);
    return [
      `exchange (all four phases in-process, no gRPC, ${body.length} B request, example policies): p50 ${p(0.5)} µs p99 ${p(0.99)} µs`,
      `exchange CPU per request: ${((c1.user + c1.system) / n).toFixed(0)} µs while running (request path + the lineage drain to JSONL as it keeps up), ${((c2.user + c2.system) / n).toFixed(0)} µs after the final flush`,
      `glue (decode → Processor → exchange → encode, ${(replyBytes / ((3000 + 5 * k + k) * 4)).toFixed(0)} B/reply): CPU per request ${median(gl).toFixed(0)} µs vs exchange alone ${median(ex).toFixed(0)} µs (medians of 5 interleaved rounds; difference = Processor + codec ≈ ${(median(gl) - median(ex)).toFixed(0)} µs)`,
      `glue heap allocation ≈ ${gc.allocatedKb.toFixed(1)} KB per request, GC ${gc.gcUs.toFixed(0)} µs per request (${gc.count} collections over ${k} requests)`,
    ];
  } finally {
    await tg.close(100);
    process.env = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
}
