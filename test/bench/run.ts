// `npm run bench`: end-to-end ext_proc throughput/latency for Tollgate vs a do-nothing echo
// processor (same gRPC stack), then each module's micro-benchmarks. Numbers are for comparing
// run to run on the same machine, not absolute truths.
import { chatWorkload } from './chat-workload.ts';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { ProcessingRequest } from '../../service/extproc/messages.ts';
import { benchBundle } from './bench-bundle.ts';
import { median, NoiseMeter, NOISY_CORES, perfInstructions, rssMb, rssVerdict, spread } from './noise.ts';
import { freePort, pct, probe, runLoad, startChild, stopChild, PHASES, type Exchange4, type LoadResult } from './extproc-load.ts';

// The first round's warm-up: under load V8's compiler threads still take 15–30% of a process's CPU for the
// first ~5 s (JIT), which a 2 s warm-up left inside round 1's figures. BENCH_WARMUP_MS overrides it.
const FIRST_WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 6000);

const hdr = (kv: [string, string][]) => ({ headers: kv.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

/** A ~1.5 KB chat request from the demo acme/research key, as Envoy would deliver it. */
function workload(): Exchange4 {
  const { body, response } = chatWorkload();
  const rh: ProcessingRequest = {
    request: 'request_headers',
    request_headers: {
      headers: hdr([
        [':method', 'POST'],
        [':path', '/v1/chat/completions'],
        [':authority', 'llm.internal'],
        [':scheme', 'https'],
        ['content-type', 'application/json'],
        ['content-length', String(body.length)],
        ['authorization', 'Bearer tg-demo-acme-research-0000000000000001'],
        ['x-request-id', '0d6c2f5e-bench-4a1b-9a3e-000000000001'],
      ]),
      end_of_stream: false,
    },
  };
  return {
    request_headers: rh,
    request_body: { request: 'request_body', request_body: { body, end_of_stream: true } },
    response_headers: {
      request: 'response_headers',
      response_headers: { headers: hdr([[':status', '200'], ['content-type', 'application/json'], ['content-length', String(response.length)]]), end_of_stream: false },
    },
    response_body: { request: 'response_body', response_body: { body: response, end_of_stream: true } },
  };
}

function fmt(r: LoadResult): string[] {
  const lines = [
    `  ${r.requests} requests in ${r.seconds.toFixed(1)} s at concurrency ${r.concurrency}: ${r.rps.toFixed(0)} req/s, ${r.errors} errors`,
    `  service CPU per request: ${r.cpuPerRequestUs.toFixed(0)} µs`,
  ];
  if (r.firstError) lines.push(`  first error: ${r.firstError}`);
  for (const p of [...PHASES, 'total'] as const) {
    const xs = r.phaseUs[p];
    lines.push(`  ${p.padEnd(17)} p50 ${pct(xs, 50).toFixed(0).padStart(6)} µs  p90 ${pct(xs, 90).toFixed(0).padStart(6)} µs  p99 ${pct(xs, 99).toFixed(0).padStart(6)} µs`);
  }
  return lines;
}

/** A gauge or counter's value from Prometheus text (summed over labels). */
function metric(text: string, name: string): number {
  let sum = NaN;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/**
 * `--soak N`: Tollgate alone at saturation (closed loop), or at a fixed BENCH_RATE req/s, for N seconds; every 10 s its throughput, CPU per
 * request, RSS, V8 heap and the lineage records held in memory, so growth per request shows.
 */
async function soak(addr: string, pid: number, httpPort: number, msgs: Exchange4, concurrency: number, secs: number, pids: () => number[]): Promise<void> {
  const rate = Number(process.env.BENCH_RATE ?? 0) || undefined;
  console.log(`soak: tollgate ${rate ? `at a fixed ${rate} req/s` : 'at saturation'} (concurrency ${concurrency}) for ${secs} s`);
  const rss: number[] = [];
  const meter = new NoiseMeter(pids);
  for (let s = 0; s < secs; s += 10) {
    const res = await runLoad(addr, pid, msgs, { concurrency, warmupMs: s === 0 ? 1000 : 0, durationMs: Math.min(10, secs - s) * 1000, rate });
    const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text(), () => '');
    const m = rssMb(pid);
    rss.push(m);
    const n = meter.read();
    console.log(
      `  t=${String(s + 10).padStart(4)} s  ${res.rps.toFixed(0).padStart(5)} req/s  CPU/request ${res.cpuPerRequestUs.toFixed(0).padStart(5)} µs  RSS ${m.toFixed(0).padStart(4)} MB  heap ${(metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(0).padStart(4)} MB  lineage in memory ${metric(text, 'tollgate_lineage_queue_depth')}${n.foreignCores > NOISY_CORES ? `  (other load ${n.foreignCores.toFixed(2)} cores)` : ''}`,
    );
  }
  console.log(`  ${rssVerdict(rss)}`);
}

async function extprocBench(): Promise<void> {
  const soakIdx = process.argv.indexOf('--soak');
  const soakSecs = soakIdx >= 0 ? Number(process.argv[soakIdx + 1] ?? 300) : 0;
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const durationMs = Number(process.env.BENCH_SECONDS ?? 4) * 1000;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
  const msgs = workload();
  const cores = cpus().length;
  const serverCore = cores > 1 ? 1 : 0;
  console.log(
    `ext_proc four-phase exchange, ~${msgs.request_body.request_body!.body!.length} B chat request; service on core ${serverCore}, load generator on core 0 (${cores} cores); ${rounds} interleaved rounds of ${durationMs / 1000} s (echo, tollgate, echo, …)`,
  );

  // Echo floor and Tollgate run side by side (the idle one costs nothing) so rounds can interleave.
  // Tollgate runs the example config, in-memory budgets, lineage to a JSONL file. One key sends
  // thousands of requests a second, so the example's limits are raised (every rule still runs, every
  // budget is still reserved and settled) — otherwise the bench would measure 429s.
  const echoPort = await freePort();
  const echo = await startChild('test/bench/echo-server.ts', { TOLLGATE_GRPC_ADDR: `127.0.0.1:${echoPort}` }, serverCore, `127.0.0.1:${echoPort}`);
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const startTollgate = async (entry: string, dir: string): Promise<{ child: ChildProcess; port: number; httpPort: number }> => {
    const port = await freePort();
    const httpPort = await freePort();
    mkdirSync(dir, { recursive: true });
    const child = await startChild(
      entry,
      {
        TOLLGATE_GRPC_ADDR: `127.0.0.1:${port}`,
        TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
        TOLLGATE_CONFIG: benchBundle(dir),
        TOLLGATE_LINEAGE: `file:${join(dir, 'lineage.jsonl')}`,
        TOLLGATE_SPOOL_DIR: join(dir, 'spool'),
        TOLLGATE_LOG_LEVEL: 'warn',
        OPENAI_API_KEY: 'bench-openai',
        ANTHROPIC_API_KEY: 'bench-anthropic',
        AZURE_OPENAI_API_KEY: 'bench-azure',
        REDIS_URL: '',
      },
      serverCore,
      `127.0.0.1:${port}`,
    );
    return { child, port, httpPort };
  };
  const started = await startTollgate(process.env.BENCH_TOLLGATE_ENTRY ?? 'service/main.ts', join(tmp, 'tollgate'));
  const { child: tg, port, httpPort } = started;
  // BENCH_BASE_ENTRY (e.g. another checkout's dist/main.js): a before/after in the same run, interleaved
  // with the others (echo, base, tollgate, echo, …), same bundle, same core.
  const baseEntry = process.env.BENCH_BASE_ENTRY;
  const base = baseEntry ? await startTollgate(baseEntry, join(tmp, 'base')) : undefined;
  try {
    const replies = await probe(`127.0.0.1:${port}`, msgs);
    const rejected = replies.find((r) => r.immediate_response);
    if (rejected) throw new Error(`the bench request was rejected: ${rejected.immediate_response!.body?.toString()}`);
    const pids = () => [echo.pid!, tg.pid!, ...(base ? [base.child.pid!] : [])];
    if (soakSecs > 0) {
      await soak(`127.0.0.1:${port}`, tg.pid!, httpPort, msgs, concurrency, soakSecs, pids);
      return;
    }
    const echoRes: LoadResult[] = [];
    const tgRes: LoadResult[] = [];
    const baseRes: LoadResult[] = [];
    const echoIns: number[] = [];
    const tgIns: number[] = [];
    const baseIns: number[] = [];
    const rss: number[] = [];
    const noisy: string[] = [];
    for (let r = 1; r <= rounds; r++) {
      // With a base build, the two Tollgate builds swap places every round (helpers saw whichever ran in
      // the same slot each round come out ~20% apart on a loaded machine): any slot bias cancels out.
      const builds = [
        ...(base ? [['base', `127.0.0.1:${base.port}`, base.child.pid!, baseRes, baseIns] as const] : []),
        ['tollgate', `127.0.0.1:${port}`, tg.pid!, tgRes, tgIns] as const,
      ];
      if (r % 2 === 0) builds.reverse();
      for (const [name, addr, pid, out, ins] of [['echo', `127.0.0.1:${echoPort}`, echo.pid!, echoRes, echoIns] as const, ...builds]) {
        const meter = new NoiseMeter(pids);
        const perf = perfInstructions(pid);
        const res = await runLoad(addr, pid, msgs, { concurrency, warmupMs: r === 1 ? FIRST_WARMUP_MS : 500, durationMs });
        const count = await perf?.stop();
        if (count !== undefined) ins.push(count / Math.max(1, res.requests));
        out.push(res);
        if (name === 'tollgate') rss.push(rssMb(pid));
        const n = meter.read();
        if (n.foreignCores > NOISY_CORES || n.stealCores > 0.05)
          noisy.push(`round ${r} ${name}: other load ${n.foreignCores.toFixed(2)} cores, steal ${n.stealCores.toFixed(2)} cores, loadavg ${n.loadavg}`);
      }
    }
    const after = await probe(`127.0.0.1:${port}`, msgs);
    const late = after.find((r) => r.immediate_response);
    if (late) console.log(`  WARNING: requests were being rejected at the end of the run: ${late.immediate_response!.body?.toString()}`);
    const pick = (xs: LoadResult[]) => xs.reduce((best, x) => (Math.abs(x.cpuPerRequestUs - median(xs.map((y) => y.cpuPerRequestUs))) < Math.abs(best.cpuPerRequestUs - median(xs.map((y) => y.cpuPerRequestUs))) ? x : best));
    console.log('echo processor (floor), the median round:');
    for (const l of fmt(pick(echoRes))) console.log(l);
    console.log('tollgate (example policies: auth, CEL policies, redaction, routing, budgets, translation, lineage), the median round:');
    for (const l of fmt(pick(tgRes))) console.log(l);
    console.log(`  echo CPU per request: ${spread(echoRes.map((x) => x.cpuPerRequestUs), 0)} µs`);
    console.log(`  tollgate CPU per request: ${spread(tgRes.map((x) => x.cpuPerRequestUs), 0)} µs`);
    console.log(`  tollgate RSS after each round: ${rss.map((x) => x.toFixed(0)).join(', ')} MB`);
    const ratios = tgRes.map((x, i) => x.cpuPerRequestUs / echoRes[i]!.cpuPerRequestUs);
    console.log(`  tollgate ÷ echo CPU per request: ${spread(ratios)} (goal ≤ 2.0)`);
    if (base) {
      console.log(`  base (${baseEntry}) CPU per request: ${spread(baseRes.map((x) => x.cpuPerRequestUs), 0)} µs`);
      console.log(`  base ÷ echo CPU per request: ${spread(baseRes.map((x, i) => x.cpuPerRequestUs / echoRes[i]!.cpuPerRequestUs))}`);
      console.log(`  tollgate ÷ base CPU per request: ${spread(tgRes.map((x, i) => x.cpuPerRequestUs / baseRes[i]!.cpuPerRequestUs))} (same rounds)`);
    }
    if (tgIns.length && echoIns.length)
      console.log(`  instructions per request (perf stat): echo ${spread(echoIns, 0)}, tollgate ${spread(tgIns, 0)}, ratio ${spread(tgIns.map((x, i) => x / echoIns[i]!))}`);
    else console.log('  instructions per request: perf stat cannot count instructions here (no PMU in this VM); CPU time only');
    if (noisy.length) {
      console.log(`WARNING: other load was present in ${noisy.length} of ${rounds * (base ? 3 : 2)} segments; absolute figures are inflated, the interleaved ratio less so:`);
      for (const l of noisy) console.log(`  ${l}`);
    } else console.log('no other load detected during the rounds');
  } finally {
    await stopChild(tg);
    if (base) await stopChild(base.child);
    await stopChild(echo);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- workers`: Tollgate with TOLLGATE_WORKERS=1 and =2 (both on Redis budgets,
 * BENCH_REDIS_URL, so only the worker count differs), unpinned, at saturation over 4 connections;
 * interleaved rounds, median throughput ratio. The load generator shares the machine: its own CPU is
 * printed, since on 2 cores it takes a share the workers cannot use.
 */
async function workersBench(): Promise<void> {
  const redis = process.env.BENCH_REDIS_URL;
  if (!redis) throw new Error('npm run bench -- workers needs BENCH_REDIS_URL (TOLLGATE_WORKERS > 1 keeps budgets in Redis)');
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
  const durationMs = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const msgs = workload();
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-w-'));
  const cores = cpus().map((_, i) => i).join(',');
  const started: { n: number; child: Awaited<ReturnType<typeof startChild>>; addr: string }[] = [];
  try {
    for (const n of [1, 2]) {
      const port = await freePort();
      const child = await startChild(
        process.env.BENCH_TOLLGATE_ENTRY ?? 'service/main.ts',
        {
          TOLLGATE_WORKERS: String(n),
          TOLLGATE_GRPC_ADDR: `127.0.0.1:${port}`,
          TOLLGATE_HTTP_ADDR: `127.0.0.1:${await freePort()}`,
          TOLLGATE_CONFIG: benchBundle(join(tmp, `w${n}`)),
          TOLLGATE_LINEAGE: `file:${join(tmp, `w${n}`, 'lineage.jsonl')}`,
          TOLLGATE_SPOOL_DIR: join(tmp, `w${n}`, 'spool'),
          TOLLGATE_LOG_LEVEL: 'warn',
          OPENAI_API_KEY: 'bench-openai',
          ANTHROPIC_API_KEY: 'bench-anthropic',
          AZURE_OPENAI_API_KEY: 'bench-azure',
          REDIS_URL: redis,
          TOLLGATE_REDIS_PREFIX: `bench-w${n}-${Date.now()}`,
          // A loaded machine delays Redis replies past the 150 ms default; the bench measures throughput, not that.
          TOLLGATE_REDIS_TIMEOUT_MS: '2000',
        },
        -1,
        `127.0.0.1:${port}`,
      );
      started.push({ n, child, addr: `127.0.0.1:${port}` });
    }
    await new Promise((r) => setTimeout(r, 3000)); // the second worker binds after the first answers
    const rps: Record<number, number[]> = { 1: [], 2: [] };
    // CPU per request of the Tollgate processes (primary + workers) and of the Redis server they share:
    // on 2 cores the load generator and Redis take a share the workers cannot use, so throughput cannot
    // double here; an unchanged CPU per request with 2 workers is what says they would on free cores.
    const cpuUs: Record<number, number[]> = { 1: [], 2: [] };
    const redisUs: Record<number, number[]> = { 1: [], 2: [] };
    const info = spawnSync('redis-cli', ['-u', redis, 'info', 'server'], { encoding: 'utf8' });
    const redisPid = Number(/process_id:(\d+)/.exec(info.stdout ?? '')?.[1] ?? 0) || undefined;
    const genCpu: number[] = [];
    const noisy: string[] = [];
    for (let r = 1; r <= rounds; r++)
      for (const s of started) {
        const meter = new NoiseMeter(() => started.map((x) => x.child.pid!));
        const c0 = process.cpuUsage();
        const res = await runLoad(s.addr, s.child.pid!, msgs, { concurrency, warmupMs: 1000, durationMs });
        cpuUs[s.n]!.push(res.cpuPerRequestUs);
        if (redisPid) redisUs[s.n]!.push((await runLoad(s.addr, s.child.pid!, msgs, { concurrency, warmupMs: 0, durationMs: 1000, cpuPids: () => [redisPid] })).cpuPerRequestUs);
        const c = process.cpuUsage(c0);
        if (s.n === 2) genCpu.push((c.user + c.system) / 1e6 / (res.seconds + 1));
        rps[s.n]!.push(res.rps);
        if (res.errors) console.log(`  ${s.n} worker(s) round ${r}: ${res.errors} errors (${res.firstError})`);
        const nz = meter.read();
        if (nz.foreignCores > NOISY_CORES) noisy.push(`round ${r}, ${s.n} worker(s): other load ${nz.foreignCores.toFixed(2)} cores, loadavg ${nz.loadavg}`);
      }
    console.log(`tollgate at saturation (concurrency ${concurrency}, 4 connections), cores ${cores} shared with the load generator:`);
    console.log(`  1 worker:  ${spread(rps[1]!, 0)} req/s`);
    console.log(`  2 workers: ${spread(rps[2]!, 0)} req/s`);
    console.log(`  2 ÷ 1 throughput: ${spread(rps[2]!.map((x, i) => x / rps[1]![i]!))} (goal ≥ 1.7)`);
    console.log(`  load generator used ${spread(genCpu)} cores during the 2-worker rounds`);
    console.log(`  Tollgate CPU per request (primary + workers): 1 worker ${spread(cpuUs[1]!, 0)} µs, 2 workers ${spread(cpuUs[2]!, 0)} µs; 2 ÷ 1: ${spread(cpuUs[2]!.map((x, i) => x / cpuUs[1]![i]!))}`);
    if (redisPid) console.log(`  Redis CPU per request (separate 1 s segments): 1 worker ${spread(redisUs[1]!, 0)} µs, 2 workers ${spread(redisUs[2]!, 0)} µs`);
    else console.log('  Redis CPU per request: not measured (redis-cli could not tell the server pid)');
    if (noisy.length) {
      console.log(`WARNING: other load was present in ${noisy.length} of ${rounds * 2} segments:`);
      for (const l of noisy) console.log(`  ${l}`);
    }
  } finally {
    for (const s of started) await stopChild(s.child);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- transport`: the same echo processor on grpc-js (echo-server.ts, the reference
 * floor) and on raw node:http2 (echo-h2.ts), Tollgate's server with a no-op exchange (server-noop.ts;
 * BENCH_BASE_ROOT=<checkout> adds that checkout's for a before/after), and the echo on Tollgate's own
 * HTTP/2 layer (echo-own-h2.ts, service/extproc/h2/connection.ts), interleaved
 * rounds on the same core: what the gRPC transport costs per four-phase exchange.
 */
async function transportBench(): Promise<void> {
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const durationMs = Number(process.env.BENCH_SECONDS ?? 4) * 1000;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
  const msgs = workload();
  const serverCore = cpus().length > 1 ? 1 : 0;
  const started: { name: string; addr: string; child: Awaited<ReturnType<typeof startChild>>; res: LoadResult[] }[] = [];
  try {
    // Tollgate's own server with a do-nothing exchange: this checkout's, and BENCH_BASE_ROOT's (a before/after).
    const contenders: [string, string, Record<string, string>][] = [
      ['grpc-js echo', 'test/bench/echo-server.ts', {}],
      ['node:http2 echo', 'test/bench/echo-h2.ts', {}],
      ['tollgate server, no-op exchange', 'test/bench/server-noop.ts', {}],
      ['echo on Tollgate\'s HTTP/2 layer', 'test/bench/echo-own-h2.ts', {}],
    ];
    if (process.env.BENCH_BASE_ROOT)
      contenders.push([`tollgate server at ${process.env.BENCH_BASE_ROOT}, no-op exchange`, 'test/bench/server-noop.ts', { BENCH_SERVER_ROOT: process.env.BENCH_BASE_ROOT }]);
    for (const [name, script, env] of contenders) {
      const port = await freePort();
      const addr = `127.0.0.1:${port}`;
      started.push({ name, addr, child: await startChild(script, { ...env, TOLLGATE_GRPC_ADDR: addr }, serverCore, addr), res: [] });
    }
    const noisy: string[] = [];
    for (let r = 1; r <= rounds; r++)
      for (const s of started) {
        const meter = new NoiseMeter(() => started.map((x) => x.child.pid!));
        const res = await runLoad(s.addr, s.child.pid!, msgs, { concurrency, warmupMs: r === 1 ? FIRST_WARMUP_MS : 500, durationMs });
        if (res.errors) console.log(`  ${s.name} round ${r}: ${res.errors} errors (${res.firstError})`);
        s.res.push(res);
        const n = meter.read();
        if (n.foreignCores > NOISY_CORES || n.stealCores > 0.05) noisy.push(`round ${r} ${s.name}: other load ${n.foreignCores.toFixed(2)} cores, loadavg ${n.loadavg}`);
      }
    const a = started[0]!;
    for (const s of started) console.log(`  ${s.name}: CPU per request ${spread(s.res.map((x) => x.cpuPerRequestUs), 0)} µs, ${spread(s.res.map((x) => x.rps), 0)} req/s`);
    for (const b of started.slice(1)) console.log(`  ${b.name} ÷ ${a.name} CPU per request: ${spread(b.res.map((x, i) => x.cpuPerRequestUs / a.res[i]!.cpuPerRequestUs))}`);
    if (started[4]) console.log(`  ${started[2]!.name} ÷ ${started[4].name} CPU per request: ${spread(started[2]!.res.map((x, i) => x.cpuPerRequestUs / started[4]!.res[i]!.cpuPerRequestUs))}`);
    if (noisy.length) {
      console.log(`WARNING: other load was present in ${noisy.length} of ${rounds * started.length} segments:`);
      for (const l of noisy) console.log(`  ${l}`);
    } else console.log('no other load detected during the rounds');
  } finally {
    for (const s of started) await stopChild(s.child);
  }
}

const MODULES = ['codec', 'exchange', 'policy', 'providers', 'routing', 'fallback', 'budget', 'redaction', 'lineage'];

async function moduleBenches(only: string | undefined): Promise<void> {
  for (const m of MODULES) {
    if (only && only !== m) continue;
    const url = pathToFileURL(join(process.cwd(), 'test', 'bench', `${m}.ts`)).href;
    let mod: { bench?: () => Promise<string[]> };
    try {
      mod = (await import(url)) as { bench?: () => Promise<string[]> };
    } catch (e) {
      console.log(`${m}: could not load (${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    if (!mod.bench) continue;
    console.log(`${m}:`);
    for (const l of await mod.bench()) console.log(`  ${l}`);
  }
}

const only = process.argv[2];
if (only === 'workers') await workersBench();
else if (only === 'transport') await transportBench();
else if (only === 'envoy') {
  const { envoyBench } = await import('./envoy.ts');
  await envoyBench(process.argv.slice(3));
} else {
  if (!only || only === 'extproc') await extprocBench();
  if (only !== 'extproc') await moduleBenches(only);
}
process.exit(0);
