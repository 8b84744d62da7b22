// TOLLGATE_WORKERS: `npm start` with 2 worker processes on one gRPC port. Requests (each on its own
// connection, as Envoy's separate connections would be) are spread over both workers, a rate limit stays
// exact across them (Redis holds the counters), each worker writes its own lineage file, /metrics sums
// the workers, and 2 workers without Redis refuse to start.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcClientCtor } from '../../service/extproc/proto.ts';
import { testRedisUrl } from '../support/redis.ts';

const RPM = 10;
const SENT = 16;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
    s.on('error', reject);
  });
}

const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });

/** One request as Envoy sends it, on a new connection; the status Tollgate answered ('continue' = sent upstream, else the HTTP status name). */
async function oneRequest(addr: string, i: number): Promise<string> {
  const Ctor = extProcClientCtor();
  const client = new Ctor(addr, grpc.credentials.createInsecure());
  try {
    const call = (client as unknown as { Process(): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> }).Process();
    const it = call[Symbol.asyncIterator]();
    const body = Buffer.from(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 16 }));
    const msgs: ProcessingRequest[] = [
      {
        request_headers: {
          headers: {
            headers: [hv(':method', 'POST'), hv(':path', '/v1/chat/completions'), hv(':authority', 'llm.internal'), hv('content-type', 'application/json'), hv('authorization', 'Bearer tg-demo-acme-research-0000000000000001'), hv('x-request-id', `workers-${i}-${randomBytes(4).toString('hex')}`)],
          },
          end_of_stream: false,
        },
      },
      { request_body: { body, end_of_stream: true } },
    ];
    let status = 'continue';
    for (const m of msgs) {
      call.write(m);
      const r = await it.next();
      if (r.done) throw new Error('stream closed early');
      const reply = r.value as ProcessingResponse;
      if (reply.immediate_response) {
        // proto-loader decodes the HttpStatus enum to its name (e.g. TooManyRequests).
        status = String(reply.immediate_response.status.code);
        break;
      }
    }
    call.cancel();
    return status;
  } finally {
    client.close();
  }
}

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitReady(addr: string, ms: number): Promise<void> {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())));
  } finally {
    client.close();
  }
}

describe('TOLLGATE_WORKERS=2', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-workers-'));
  let tg: ReturnType<typeof start>;
  let addr = '';
  let httpPort = 0;
  let statuses: string[] = [];

  before(async () => {
    const configDir = join(dir, 'policies');
    cpSync('policies', configDir, { recursive: true });
    const baseline = join(configDir, 'policies', '00-baseline.yaml');
    writeFileSync(baseline, readFileSync(baseline, 'utf8').replace('rpm: 600', `rpm: ${RPM}`));
    const port = await freePort();
    httpPort = await freePort();
    addr = `127.0.0.1:${port}`;
    tg = start({
      TOLLGATE_WORKERS: '2',
      REDIS_URL: testRedisUrl(),
      TOLLGATE_REDIS_PREFIX: `tg-workers-${randomBytes(4).toString('hex')}`,
      TOLLGATE_GRPC_ADDR: addr,
      TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TOLLGATE_CONFIG: configDir,
      TOLLGATE_LINEAGE: `file:${join(dir, 'lineage.jsonl')}`,
      TOLLGATE_SPOOL_DIR: join(dir, 'spool'),
      TOLLGATE_LOG_LEVEL: 'warn',
      OPENAI_API_KEY: 'test-openai',
      ANTHROPIC_API_KEY: 'test-anthropic',
      AZURE_OPENAI_API_KEY: 'test-azure',
    });
    await waitReady(addr, 90_000);
    // Let both workers bind (the first one ready answers the probe above).
    for (let i = 0; i < 40 && !(existsSync(join(dir, 'spool', 'worker-1')) && existsSync(join(dir, 'spool', 'worker-2'))); i++) await new Promise((r) => setTimeout(r, 250));
    statuses = [];
    for (let i = 0; i < SENT; i++) statuses.push(await oneRequest(addr, i));
  });

  after(async () => {
    if (tg && tg.child.exitCode === null) {
      tg.child.kill('SIGTERM');
      await Promise.race([tg.exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (tg.child.exitCode === null) tg.child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits exactly the rate limit across both workers, the rest get 429', () => {
    assert.equal(statuses.filter((s) => s === 'continue').length, RPM, `statuses: ${statuses.join(',')}\n${tg.output().slice(-3000)}`);
    assert.equal(statuses.filter((s) => s === 'TooManyRequests').length, SENT - RPM, `statuses: ${statuses.join(',')}`);
  });

  it('spreads the requests over both workers, each writing its own lineage file', async () => {
    // Lineage is written after the exchange ends (the stream was cancelled after the request body).
    const read = (i: number) => {
      const f = join(dir, `lineage.jsonl.worker-${i}`);
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
    };
    for (let t = 0; t < 60 && read(1).length + read(2).length < SENT; t++) await new Promise((r) => setTimeout(r, 250));
    const [w1, w2] = [read(1), read(2)];
    assert.ok(w1.length > 0 && w2.length > 0, `both workers wrote lineage: ${w1.length} + ${w2.length}`);
    assert.equal(w1.length + w2.length, SENT);
    assert.ok(!existsSync(join(dir, 'lineage.jsonl')), 'no two processes append to one file');
  });

  it('/metrics sums the workers', async () => {
    // Request metrics are recorded off the request path, in batches: poll until they settle.
    let text = '';
    let total = 0;
    for (let t = 0; t < 40 && total < SENT; t++) {
      if (t) await new Promise((r) => setTimeout(r, 250));
      text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
      total = 0;
      for (const line of text.split('\n')) if (line.startsWith('tollgate_requests_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    assert.equal(total, SENT, text.split('\n').filter((l) => l.startsWith('tollgate_requests')).join('\n') || text.slice(0, 2000));
  });

  it('stops every worker on SIGTERM and exits 0', async () => {
    tg.child.kill('SIGTERM');
    assert.equal(await tg.exited, 0, tg.output().slice(-3000));
  });
});

describe('TOLLGATE_WORKERS=2 without Redis', { timeout: 60_000 }, () => {
  it('refuses to start, saying why', async () => {
    const p = start({ TOLLGATE_WORKERS: '2', REDIS_URL: '', TOLLGATE_GRPC_ADDR: `127.0.0.1:${await freePort()}`, TOLLGATE_HTTP_ADDR: `127.0.0.1:${await freePort()}`, TOLLGATE_LOG_LEVEL: 'info' });
    try {
      const code = await Promise.race([p.exited, new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000))]);
      assert.equal(code, 1);
      assert.match(p.output(), /TOLLGATE_WORKERS=2 needs REDIS_URL/);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });
});
