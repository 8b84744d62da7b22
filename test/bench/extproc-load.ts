// Load generator that plays Envoy's side of ext_proc with pre-encoded messages, so it measures the
// processor, not itself. Server and generator are pinned to different cores when taskset exists.
import { treeCpuOf } from './noise.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';

export const PHASES = ['request_headers', 'request_body', 'response_headers', 'response_body'] as const;
type Phase = (typeof PHASES)[number];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Starts a Node child (via tsx) on core `core` (-1: unpinned); resolves once it printed READY or its gRPC port answers. */
export async function startChild(script: string, env: Record<string, string>, core: number, grpcAddr: string): Promise<ChildProcess> {
  const args = [...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : []), '--import', 'tsx', script];
  const child = hasTaskset && core >= 0
    ? spawn('taskset', ['-c', String(core), process.execPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20000) stderr = stderr.slice(-20000);
  });
  child.stdout!.resume();
  const client = new grpc.Client(grpcAddr, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${script} exited (${code}) before it was ready:\n${stderr}`));
      child.once('exit', onExit);
      client.waitForReady(Date.now() + Number(process.env.BENCH_READY_MS ?? 60000), (err) => {
        child.off('exit', onExit);
        if (err) reject(new Error(`${script} not ready: ${err.message}\n${stderr}`));
        else resolve();
      });
    });
  } finally {
    client.close();
  }
  return child;
}

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}


export interface Exchange4 {
  request_headers: ProcessingRequest;
  request_body: ProcessingRequest;
  response_headers: ProcessingRequest;
  response_body: ProcessingRequest;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  phaseUs: Record<Phase | 'total', number[]>;
  cpuPerRequestUs: number;
  concurrency: number;
  errors: number;
  firstError?: string;
}

const svc = extProcService();
const encode = (m: ProcessingRequest): Buffer => svc.Process!.requestSerialize(m);

const RawClient = grpc.makeGenericClientConstructor(
  {
    Process: {
      path: '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
      requestStream: true,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'ExternalProcessor',
);

/** Sends the four phases once and returns the decoded replies (to check the workload is what we think). */
export async function probe(addr: string, msgs: Exchange4): Promise<ProcessingResponse[]> {
  const client = new RawClient(addr, grpc.credentials.createInsecure());
  const call = (client as unknown as { Process(): grpc.ClientDuplexStream<Buffer, Buffer> }).Process();
  const replies: ProcessingResponse[] = [];
  const it = call[Symbol.asyncIterator]();
  for (const p of PHASES) {
    call.write(encode(msgs[p]));
    const r = await it.next();
    if (r.done) break;
    const decoded = svc.Process!.responseDeserialize(r.value as Buffer) as ProcessingResponse;
    replies.push(decoded);
    if (decoded.immediate_response) break;
  }
  call.end();
  client.close();
  return replies;
}


/**
 * CPU per request counts `pid` and its children (cluster workers); `cpuPids` measures other processes
 * instead (e.g. the Redis server the workers share).
 */
export async function runLoad(addr: string, pid: number, msgs: Exchange4, opts: { concurrency: number; warmupMs: number; durationMs: number; cpuPids?: () => number[]; rate?: number }): Promise<LoadResult> {
  const encoded = PHASES.map((p) => encode(msgs[p]));
  const clients = Array.from({ length: 4 }, () => new RawClient(addr, grpc.credentials.createInsecure()));
  const phaseUs: LoadResult['phaseUs'] = { request_headers: [], request_body: [], response_headers: [], response_body: [], total: [] };
  let measuring = false;
  let stop = false;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;

  const one = async (client: grpc.Client): Promise<void> => {
    const call = (client as unknown as { Process(): grpc.ClientDuplexStream<Buffer, Buffer> }).Process();
    const it = call[Symbol.asyncIterator]();
    const t0 = process.hrtime.bigint();
    const times: number[] = [];
    for (let i = 0; i < encoded.length; i++) {
      const ts = process.hrtime.bigint();
      call.write(encoded[i]!);
      const r = await it.next();
      if (r.done) throw new Error('stream closed early');
      times.push(Number(process.hrtime.bigint() - ts) / 1000);
    }
    call.end();
    await it.next(); // server's end
    if (measuring) {
      requests++;
      PHASES.forEach((p, i) => phaseUs[p].push(times[i]!));
      phaseUs.total.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };

  // `rate` (requests/s): each request waits for its slot on one shared schedule, so the server sees a fixed
  // rate as long as `concurrency` requests in flight can carry it (a soak at a fixed rate, not saturation).
  let nextAt = 0;
  const pace = async (): Promise<void> => {
    if (!opts.rate) return;
    const now = performance.now();
    const at = Math.max(nextAt, now);
    nextAt = at + 1000 / opts.rate;
    if (at > now + 0.5) await new Promise((r) => setTimeout(r, at - now));
  };
  const worker = async (w: number): Promise<void> => {
    const client = clients[w % clients.length]!;
    while (!stop) {
      try {
        await pace();
        if (stop) break;
        await one(client);
      } catch (e) {
        if (errors++ === 0) firstError = e instanceof Error ? e.message : String(e);
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency }, (_, i) => worker(i));
  await new Promise((r) => setTimeout(r, opts.warmupMs));
  const counted = opts.cpuPids?.() ?? [pid];
  const cpuOf = (): number => counted.reduce((sum, p) => sum + treeCpuOf(p), 0);
  const cpu0 = cpuOf();
  const t0 = process.hrtime.bigint();
  measuring = true;
  await new Promise((r) => setTimeout(r, opts.durationMs));
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = cpuOf();
  stop = true;
  await Promise.all(workers);
  for (const c of clients) c.close();
  return {
    requests,
    seconds,
    rps: requests / seconds,
    phaseUs,
    cpuPerRequestUs: ((cpu1 - cpu0) * 1e6) / Math.max(1, requests),
    concurrency: opts.concurrency,
    errors,
    firstError,
  };
}

export function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
