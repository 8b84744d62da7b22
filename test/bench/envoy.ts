// `npm run bench -- envoy`: what a client feels through a REAL Envoy (the shipped envoy/envoy.yaml,
// rendered for loopback by service/envoy/render.ts, run by service/envoy/process.ts):
//   (a) Envoy routing straight to the fake upstream (ext_proc filter removed),
//   (b) Envoy + the do-nothing echo processor (same grpc-js stack),
//   (c) Envoy + Tollgate with the example bundle (policies/, limits raised so nothing is refused).
// All three run side by side; rounds interleave a, b, c, a, b, c, … and every figure is reported as the
// median over rounds with its spread, so a burst of other load on this shared machine moves one round,
// not the result. Per round it measures: throughput at saturation (closed loop), p50/p90/p99 at two
// fixed open-loop rates (latency counted from the scheduled send time, so queueing is not hidden),
// time to first byte of a streamed reply, CPU per request of Envoy and of the processor (/proc), RSS.
// Processors run on core 1; Envoy, the fake upstream and this load generator on core 0 (taskset).
//
// Env: BENCH_ROUNDS (3), BENCH_SECONDS (per segment, 3), BENCH_RATES ("200,500"),
// BENCH_CONCURRENCY (saturation, 32), BENCH_WORKERS (TOLLGATE_WORKERS for (c), 1).
// `--soak N`: instead, run (c) at the first rate for N seconds and print RSS / CPU every 10 s.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { findEnvoy } from '../../service/envoy/provision.ts';
import { renderEnvoyConfig } from '../../service/envoy/render.ts';
import { startEnvoyProcess, type EnvoyProcess } from '../../service/envoy/process.ts';
import { freePort, startChild, stopChild } from './extproc-load.ts';
import { cpuOf, median, NoiseMeter, NOISY_CORES, rssMb, rssVerdict, spread, treeCpuOf, treeRssMb } from './noise.ts';
import { benchBundle } from './bench-bundle.ts';

type Setup = 'a' | 'b' | 'c';
const LABEL: Record<Setup, string> = {
  a: '(a) envoy → upstream',
  b: '(b) envoy + echo ext_proc',
  c: '(c) envoy + tollgate',
};

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pin = (pid: number, core: number): void => {
  if (hasTaskset) spawnSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
};

const KEY = 'Bearer tg-demo-acme-research-0000000000000001';

function chatBody(stream: boolean): Buffer {
  const messages = [
    { role: 'system', content: 'You are a helpful assistant for the research team. Answer precisely and cite sources when you can.' },
    { role: 'user', content: 'Summarise the following notes for the weekly report. '.repeat(8) },
    { role: 'assistant', content: 'Here is a short summary of the notes you sent: the experiments converged, the baseline held, two regressions were fixed. '.repeat(2) },
    { role: 'user', content: 'Now list three risks for next week, one line each, and keep it under fifty words in total. Thanks!'.repeat(3) },
  ];
  return Buffer.from(JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: 256, temperature: 0.2, ...(stream ? { stream: true } : {}) }));
}

async function startUpstream(core: number): Promise<{ child: ChildProcess; port: number }> {
  const args = ['--import', 'tsx', 'test/bench/fake-upstream.ts'];
  const child = hasTaskset ? spawn('taskset', ['-c', String(core), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`fake upstream exited (${c})`)));
  });
  return { child, port };
}

/** The shipped config for loopback; every provider cluster and the chain point at the fake upstream. */
function envoyConfig(shipped: string, processorPort: number, upstreamPort: number, secret: string, withExtProc: boolean): string {
  const up = { host: '127.0.0.1', port: upstreamPort };
  const rendered = renderEnvoyConfig(shipped, {
    listener: { address: '127.0.0.1', port: 0 },
    admin: { address: '127.0.0.1', port: 0 },
    tollgate: [{ host: '127.0.0.1', port: processorPort }],
    clusters: { openai: up, anthropic: up, azure_eu: up, local_llm: up },
    chains: { 'tgc.gpt-4o-mini': { priorities: [{ ...up, deployment: 'gpt-4o-mini/openai/0' }, { ...up, deployment: 'gpt-4o-mini/azure-eu/1' }] } },
    sharedSecret: secret,
  });
  if (withExtProc) return rendered;
  // (a): the same listener, routes and access log, without the ext_proc filter.
  const cfg = parse(rendered) as { static_resources: { listeners: { filter_chains: { filters: { typed_config: { http_filters: { name: string }[] } }[] }[] }[] } };
  const hcm = cfg.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
  hcm.http_filters = hcm.http_filters.filter((f) => f.name !== 'envoy.filters.http.ext_proc');
  return stringify(cfg, { lineWidth: 0 });
}

interface Target {
  setup: Setup;
  envoy: EnvoyProcess;
  /** The processor's pid (none for (a)). */
  processor?: number;
  /** Headers (a) and (b) send so Envoy's routes pick the upstream without Tollgate. */
  route: Record<string, string>;
}

interface Sample {
  /** Latency µs from scheduled start to the last byte (open loop) or from send (closed loop). */
  total: number;
  /** To the first body byte (TTFT for streams). */
  first: number;
}

function send(agent: Agent, port: number, headers: Record<string, string>, body: Buffer): Promise<Sample & { status: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        let first = 0;
        res.on('data', () => {
          if (!first) first = performance.now();
        });
        res.on('end', () => {
          const t1 = performance.now();
          resolve({ status: res.statusCode ?? 0, total: (t1 - t0) * 1000, first: ((first || t1) - t0) * 1000 });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const baseHeaders = (t: Target): Record<string, string> => ({ 'content-type': 'application/json', authorization: KEY, ...t.route });

interface Counters {
  errors: number;
  firstError?: string;
}

function note(c: Counters, what: string): void {
  if (c.errors++ === 0) c.firstError = what;
}

/** Closed loop at `concurrency`: requests/s, CPU per request of Envoy and the processor. */
async function saturate(t: Target, agent: Agent, concurrency: number, ms: number): Promise<{ rps: number; envoyUs: number; procUs: number; errors: Counters }> {
  const body = chatBody(false);
  const headers = baseHeaders(t);
  const c: Counters = { errors: 0 };
  let n = 0;
  let stop = false;
  let counting = false;
  const worker = async () => {
    while (!stop) {
      try {
        const r = await send(agent, t.envoy.port, headers, body);
        if (r.status !== 200) note(c, `status ${r.status}`);
        else if (counting) n++;
      } catch (e) {
        note(c, (e as Error).message);
      }
    }
  };
  const ws = Array.from({ length: concurrency }, worker);
  await sleep(Math.min(1000, ms / 3));
  const e0 = cpuOf(t.envoy.child.pid!);
  const p0 = t.processor ? treeCpuOf(t.processor) : 0;
  const t0 = performance.now();
  counting = true;
  await sleep(ms);
  counting = false;
  const secs = (performance.now() - t0) / 1000;
  const e1 = cpuOf(t.envoy.child.pid!);
  const p1 = t.processor ? treeCpuOf(t.processor) : 0;
  stop = true;
  await Promise.all(ws);
  return { rps: n / secs, envoyUs: ((e1 - e0) * 1e6) / Math.max(1, n), procUs: ((p1 - p0) * 1e6) / Math.max(1, n), errors: c };
}

/** Open loop at `rate` req/s for `ms`: latency percentiles counted from each request's scheduled time. */
async function openLoop(t: Target, agent: Agent, rate: number, ms: number, stream: boolean): Promise<{ total: number[]; first: number[]; errors: Counters; late: number }> {
  const body = chatBody(stream);
  const headers = baseHeaders(t);
  const c: Counters = { errors: 0 };
  const total: number[] = [];
  const first: number[] = [];
  const count = Math.floor((rate * ms) / 1000);
  const start = performance.now() + 5;
  const pending: Promise<void>[] = [];
  let late = 0;
  for (let i = 0; i < count; i++) {
    const at = start + (i * 1000) / rate;
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    else if (wait < -5) late++;
    pending.push(
      send(agent, t.envoy.port, headers, body).then(
        (r) => {
          if (r.status !== 200) return note(c, `status ${r.status}`);
          const behind = (performance.now() - at) * 1000 - r.total; // time the generator was behind schedule
          total.push(r.total + Math.max(0, behind));
          first.push(r.first + Math.max(0, behind));
        },
        (e: Error) => note(c, e.message),
      ),
    );
  }
  await Promise.all(pending);
  return { total, first, errors: c, late };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface Round {
  rps: number;
  envoyUs: number;
  procUs: number;
  rss: number;
  envoyRss: number;
  lat: Record<number, { p50: number; p90: number; p99: number }>;
  ttft: { p50: number; p99: number };
  errors: number;
  firstError?: string;
}

async function measure(t: Target, agent: Agent, o: { rates: number[]; segMs: number; concurrency: number }): Promise<Round> {
  const sat = await saturate(t, agent, o.concurrency, o.segMs);
  let errors = sat.errors.errors;
  let firstError = sat.errors.firstError;
  const lat: Round['lat'] = {};
  for (const rate of o.rates) {
    await sleep(200);
    const r = await openLoop(t, agent, rate, o.segMs, false);
    errors += r.errors.errors;
    firstError ??= r.errors.firstError;
    lat[rate] = { p50: pct(r.total, 50), p90: pct(r.total, 90), p99: pct(r.total, 99) };
  }
  await sleep(200);
  const s = await openLoop(t, agent, 50, Math.max(1000, o.segMs / 2), true);
  errors += s.errors.errors;
  firstError ??= s.errors.firstError;
  return {
    rps: sat.rps,
    envoyUs: sat.envoyUs,
    procUs: sat.procUs,
    rss: t.processor ? treeRssMb(t.processor) : NaN,
    envoyRss: rssMb(t.envoy.child.pid!),
    lat,
    ttft: { p50: pct(s.first, 50), p99: pct(s.first, 99) },
    errors,
    firstError,
  };
}

const us = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(0)}` : 'n/a');

export async function envoyBench(argv: string[]): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const segMs = Number(process.env.BENCH_SECONDS ?? 3) * 1000;
  const rates = (process.env.BENCH_RATES ?? '200,500').split(',').map(Number);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const workers = process.env.BENCH_WORKERS ?? '1';
  const soakIdx = argv.indexOf('--soak');
  const soakSecs = soakIdx >= 0 ? Number(argv[soakIdx + 1] ?? 300) : 0;
  const only = (process.env.BENCH_SETUPS ?? 'abc').split('') as Setup[];

  const bin = await findEnvoy({ install: false });
  const shipped = readFileSync('envoy/envoy.yaml', 'utf8');
  const cores = cpus().length;
  const procCore = cores > 1 ? 1 : 0;
  console.log(
    `envoy ${bin.version}: ~${chatBody(false).length} B chat request; processors on core ${procCore}, envoy + upstream + load generator on core 0 (${cores} cores${hasTaskset ? '' : ', no taskset: unpinned'})`,
  );
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-envoy-bench-'));
  const children: ChildProcess[] = [];
  const envoys: EnvoyProcess[] = [];
  const secret = `bench-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-shared-secret`;
  try {
    const upstream = await startUpstream(0);
    children.push(upstream.child);
    const targets: Target[] = [];
    const route = { 'x-tollgate-cluster': 'openai', 'x-tollgate-host': 'api.openai.com' };
    const startEnvoyFor = async (setup: Setup, procPort: number, processor: number | undefined): Promise<void> => {
      const envoy = await startEnvoyProcess({ bin: bin.path, config: envoyConfig(shipped, procPort, upstream.port, secret, setup !== 'a'), logLevel: 'error' });
      envoys.push(envoy);
      pin(envoy.child.pid!, 0);
      envoy.child.stdout!.resume();
      targets.push({ setup, envoy, ...(processor ? { processor } : {}), route: setup === 'c' ? {} : route });
    };
    if (only.includes('a')) await startEnvoyFor('a', 1, undefined);
    if (only.includes('b')) {
      const p = await freePort();
      const echo = await startChild('test/bench/echo-server.ts', { TOLLGATE_GRPC_ADDR: `127.0.0.1:${p}`, ECHO_STREAM_OVERRIDE: '1' }, procCore, `127.0.0.1:${p}`);
      children.push(echo);
      await startEnvoyFor('b', p, await mainPid(echo));
    }
    if (only.includes('c')) {
      const p = await freePort();
      const tg = await startChild(
        process.env.BENCH_TOLLGATE_ENTRY ?? 'service/main.ts',
        {
          TOLLGATE_GRPC_ADDR: `127.0.0.1:${p}`,
          TOLLGATE_HTTP_ADDR: `127.0.0.1:${await freePort()}`,
          TOLLGATE_CONFIG: benchBundle(tmp),
          TOLLGATE_LINEAGE: `file:${join(tmp, 'lineage.jsonl')}`,
          TOLLGATE_SPOOL_DIR: join(tmp, 'spool'),
          TOLLGATE_LOG_LEVEL: 'warn',
          TOLLGATE_GRPC_SHARED_SECRET: secret,
          TOLLGATE_WORKERS: workers,
          OPENAI_API_KEY: 'bench-openai',
          ANTHROPIC_API_KEY: 'bench-anthropic',
          AZURE_OPENAI_API_KEY: 'bench-azure',
          REDIS_URL: process.env.BENCH_REDIS_URL ?? '',
        },
        procCore,
        `127.0.0.1:${p}`,
      );
      children.push(tg);
      await startEnvoyFor('c', p, await mainPid(tg));
    }
    const agent = new Agent({ keepAlive: true, maxSockets: Math.max(64, concurrency) });
    // Check each setup answers 200 (and (c) is not refusing) before measuring.
    for (const t of targets) {
      for (const stream of [false, true]) {
        const r = await send(agent, t.envoy.port, baseHeaders(t), chatBody(stream));
        if (r.status !== 200) throw new Error(`${LABEL[t.setup]}: probe got status ${r.status}`);
      }
    }
    const pids = (): number[] => [...children.map((c) => c.pid!), ...envoys.map((e) => e.child.pid!), ...targets.flatMap((t) => (t.processor ? [t.processor] : []))];

    if (soakSecs > 0) {
      await soak(targets.find((t) => t.setup === 'c') ?? targets[targets.length - 1]!, agent, rates[0]!, soakSecs, pids);
      return;
    }

    const results: Record<Setup, Round[]> = { a: [], b: [], c: [] };
    const noisy: string[] = [];
    for (let r = 1; r <= rounds; r++) {
      for (const t of targets) {
        const meter = new NoiseMeter(pids);
        const res = await measure(t, agent, { rates, segMs, concurrency });
        const n = meter.read();
        results[t.setup].push(res);
        if (n.foreignCores > NOISY_CORES || n.stealCores > 0.05)
          noisy.push(`round ${r} ${LABEL[t.setup]}: other load ${n.foreignCores.toFixed(2)} cores, steal ${n.stealCores.toFixed(2)} cores, loadavg ${n.loadavg}`);
        if (res.errors) console.log(`  ${LABEL[t.setup]} round ${r}: ${res.errors} errors (first: ${res.firstError})`);
      }
      process.stdout.write(`  round ${r}/${rounds} done\n`);
    }
    report(results, targets.map((t) => t.setup), rates);
    if (noisy.length) {
      console.log(`WARNING: other load was present in ${noisy.length} of ${rounds * targets.length} segments; absolute figures are inflated, ratios less so:`);
      for (const l of noisy) console.log(`  ${l}`);
    } else console.log('no other load detected during the rounds');
  } finally {
    for (const e of envoys) await e.stop(2000);
    for (const c of children) await stopChild(c);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** With TOLLGATE_WORKERS > 1 the pid is the primary; the processor's CPU and RSS are summed over it and its workers (treeCpuOf, treeRssMb). */
async function mainPid(child: ChildProcess): Promise<number> {
  // `taskset` execs node, so the child's pid is node's.
  return child.pid!;
}

function report(results: Record<Setup, Round[]>, setups: Setup[], rates: number[]): void {
  const med = (s: Setup, f: (r: Round) => number) => median(results[s].map(f));
  console.log('medians over rounds:');
  for (const s of setups) {
    const rs = results[s];
    console.log(`${LABEL[s]}:`);
    console.log(`  saturation ${spread(rs.map((r) => r.rps), 0)} req/s; CPU per request: envoy ${us(med(s, (r) => r.envoyUs))} µs, processor ${us(med(s, (r) => r.procUs))} µs`);
    for (const rate of rates)
      console.log(`  at ${rate} req/s: p50 ${us(med(s, (r) => r.lat[rate]!.p50))} µs  p90 ${us(med(s, (r) => r.lat[rate]!.p90))} µs  p99 ${us(med(s, (r) => r.lat[rate]!.p99))} µs`);
    console.log(`  stream TTFT (50 req/s): p50 ${us(med(s, (r) => r.ttft.p50))} µs  p99 ${us(med(s, (r) => r.ttft.p99))} µs`);
    console.log(`  RSS: envoy ${med(s, (r) => r.envoyRss).toFixed(0)} MB${s === 'a' ? '' : `, processor ${med(s, (r) => r.rss).toFixed(0)} MB`}`);
  }
  const diff = (x: Setup, y: Setup, f: (r: Round) => number): number[] => results[x].map((r, i) => f(r) - (results[y][i] ? f(results[y][i]!) : NaN));
  const has = (s: Setup) => setups.includes(s);
  if (has('c') && has('a') || has('c') && has('b')) console.log('added by tollgate (per-round differences; median (min–max)):');
  for (const base of ['a', 'b'] as const) {
    if (!has('c') || !has(base)) continue;
    for (const rate of rates)
      for (const p of ['p50', 'p90', 'p99'] as const)
        console.log(`  (c)-(${base}) ${p} at ${rate} req/s: ${spread(diff('c', base, (r) => r.lat[rate]![p]), 0)} µs${p === 'p99' && base === 'b' && rate === 500 ? '  (goal ≤ 1000)' : ''}`);
    console.log(`  (c)-(${base}) stream TTFT p50: ${spread(diff('c', base, (r) => r.ttft.p50), 0)} µs${base === 'a' ? '  (goal ≤ 1000)' : ''}`);
  }
  if (has('c') && has('b')) {
    const ratio = results.c.map((r, i) => r.procUs / (results.b[i]?.procUs ?? NaN));
    console.log(`  (c)÷(b) processor CPU per request: ${spread(ratio)} (goal ≤ 2.0)`);
  }
}

async function soak(t: Target, agent: Agent, rate: number, secs: number, pids: () => number[]): Promise<void> {
  console.log(`soak: ${LABEL[t.setup]} at ${rate} req/s for ${secs} s; RSS and CPU per request every 10 s`);
  const pid = t.processor ?? t.envoy.child.pid!;
  const rss: number[] = [];
  const meter = new NoiseMeter(pids);
  for (let s = 0; s < secs; s += 10) {
    const c0 = treeCpuOf(pid);
    const r = await openLoop(t, agent, rate, Math.min(10, secs - s) * 1000, false);
    const cpu = ((treeCpuOf(pid) - c0) * 1e6) / Math.max(1, r.total.length);
    const m = treeRssMb(pid);
    rss.push(m);
    const n = meter.read();
    console.log(
      `  t=${String(s + 10).padStart(4)} s  RSS ${m.toFixed(0)} MB  CPU/request ${cpu.toFixed(0)} µs  p99 ${us(pct(r.total, 99))} µs  errors ${r.errors.errors}${n.foreignCores > NOISY_CORES ? `  (other load ${n.foreignCores.toFixed(2)} cores)` : ''}`,
    );
  }
  console.log(`  ${rssVerdict(rss)}`);
}
