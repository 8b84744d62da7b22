// Lineage sink outage across a restart, through the real process: `node --import tsx service/main.ts` with
// TOLLGATE_LINEAGE=redis, a PRIVATE redis-server, and a disk spool. Requests go through the real Envoy with
// the official OpenAI SDK; request ids come from the x-request-id response headers. Redis is killed, Tollgate
// is restarted (SIGTERM, then again on the same spool directory) while Redis is down, and Redis comes back:
// every record must then be in the Redis stream exactly once.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { hashKey } from '../../service/identity/keys.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { freePort } from '../bench/extproc-load.ts';
import { startFakeProvider, type FakeProvider } from '../support/fake-providers.ts';
import { startEnvoy, type EnvoyFront } from '../support/envoy.ts';
import { parsePromText, sampleValue } from '../telemetry/promtext.ts';

const run = promisify(execFile);
const VIRTUAL_KEY = 'tg-test-outage-acme-000000000000000000001';
const STREAM = 'tollgate:lineage';

async function until(what: string, pred: () => Promise<boolean>, ms = 30000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A private redis-server that keeps its data across a crash (AOF, fsync on every write), so the test can tell
 * "Tollgate lost or repeated a record" apart from "Redis forgot it". Stopped with SIGKILL, like a crash.
 */
class PersistentRedis {
  private proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      { stdio: 'ignore' },
    );
    await until(`redis on ${this.port}`, async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    });
  }

  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }
}

interface Instance {
  child: ChildProcess;
  httpPort: number;
  envoy: EnvoyFront;
  output: () => string;
  exited: Promise<number | null>;
}

function configYaml(fake: FakeProvider): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {maxRequestBytes: 262144}
---
apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: fake-openai}
spec:
  api: openai
  cluster: fake_openai
  host: ${fake.host}
  basePath: ${JSON.stringify(fake.basePath)}
  credential: {env: TG_OUTAGE_OPENAI_KEY}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: gpt-4o-mini}
spec:
  deployments:
  - {provider: fake-openai, model: gpt-4o-mini-2024-07-18, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: outage-acme}
spec: {sha256: ${hashKey(VIRTUAL_KEY)}, tenant: acme, user: alice}
`;
}

describe('e2e lineage: Redis sink outage across a Tollgate restart, real process', { timeout: 240000 }, () => {
  let work: string;
  let fake: FakeProvider;
  let redis: PersistentRedis;
  const instances: Instance[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-lineage-outage-'));
    mkdirSync(join(work, 'config'));
    mkdirSync(join(work, 'redis'));
    fake = await startFakeProvider('openai');
    writeFileSync(join(work, 'config', 'config.yaml'), configYaml(fake));
    redis = new PersistentRedis(await freePort(), join(work, 'redis'));
    await redis.start();
  });

  after(async () => {
    for (const i of instances) {
      i.child.kill('SIGKILL');
      await i.envoy.close();
    }
    await redis?.kill();
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function startTollgate(): Promise<Instance> {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        TOLLGATE_CONFIG: join(work, 'config'),
        TOLLGATE_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
        TOLLGATE_LINEAGE: 'redis',
        REDIS_URL: redis.url,
        TOLLGATE_SPOOL_DIR: join(work, 'spool'),
        TOLLGATE_LOG_LEVEL: 'info',
        TOLLGATE_DRAIN_MS: '5000',
        TG_OUTAGE_OPENAI_KEY: fake.credential!,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('tollgate /healthz', async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, 60000);
    const envoy = await startEnvoy({
      extProcAddrs: [`127.0.0.1:${grpcPort}`],
      clusters: { fake_openai: { host: '127.0.0.1', port: fake.port } },
      allowModeOverride: true,
      messageTimeoutMs: 5000,
    });
    const inst = { child, httpPort, envoy, output: () => output, exited };
    instances.push(inst);
    return inst;
  }

  async function stopTollgate(i: Instance): Promise<void> {
    i.child.kill('SIGTERM');
    assert.equal(await i.exited, 0, `graceful exit; output:\n${i.output()}`);
    await i.envoy.close();
  }

  /** Sends `n` chat requests; returns the request ids from the x-request-id response headers. */
  async function send(i: Instance, n: number, tag: string): Promise<string[]> {
    const client = new OpenAI({ apiKey: VIRTUAL_KEY, baseURL: `${i.envoy.url}/v1`, maxRetries: 0, timeout: 20000 });
    const ids: string[] = [];
    for (let k = 0; k < n; k++) {
      const { data, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${tag} ${k}` }] })
        .withResponse();
      assert.equal(data.object, 'chat.completion', 'traffic is served whatever the lineage sink does');
      const rid = response.headers.get('x-request-id');
      assert.ok(rid, 'x-request-id response header');
      ids.push(rid);
    }
    return ids;
  }

  async function metric(i: Instance, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${i.httpPort}/metrics`)).text();
    return sampleValue(parsePromText(text), name, labels);
  }

  async function streamRecords(): Promise<Record<string, unknown>[]> {
    const c = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const entries = (await c.xrange(STREAM, '-', '+')) as [string, string[]][];
      return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('json') + 1]!) as Record<string, unknown>);
    } finally {
      c.disconnect();
    }
  }

  it('every record reaches the Redis stream exactly once', async () => {
    // Phase 1: Redis up — records go straight to the stream.
    const t1 = await startTollgate();
    const phase1 = await send(t1, 3, 'before-outage');
    await until('phase-1 records in the stream', async () => {
      const got = (await streamRecords()).map((r) => r.requestId);
      return phase1.every((id) => got.includes(id));
    });

    // Phase 2: Redis dies; traffic goes on, records are spooled on disk.
    await redis.kill();
    const phase2 = await send(t1, 3, 'during-outage');
    await until('phase-2 records spooled', async () => (await metric(t1, 'tollgate_lineage_records_spooled_total', { sink: 'redis' })) === 3);
    assert.equal(await metric(t1, 'tollgate_lineage_sink_up', { sink: 'redis' }), 0, 'the sink is reported down');
    const ready = await fetch(`http://127.0.0.1:${t1.httpPort}/readyz`);
    assert.equal(ready.status, 200, 'spooling loses nothing, so Tollgate stays ready');

    // Phase 3: Tollgate restarts on the same spool directory while Redis is still down.
    await stopTollgate(t1);
    const t2 = await startTollgate();
    await until('the backlog is found at start-up', async () => (await metric(t2, 'tollgate_lineage_spool_records', { sink: 'redis' })) === 3);
    const phase3 = await send(t2, 3, 'after-restart');
    await until('phase-3 records spooled behind the backlog', async () => (await metric(t2, 'tollgate_lineage_spool_records', { sink: 'redis' })) === 6);

    // Phase 4: Redis is back — the spool is replayed, in order, without duplicates.
    await redis.start();
    const all = [...phase1, ...phase2, ...phase3];
    assert.equal(new Set(all).size, 9, 'distinct request ids');
    await until('every record in the stream', async () => {
      const got = new Set((await streamRecords()).map((r) => r.requestId));
      return all.every((id) => got.has(id));
    }, 60000);
    await until('spool drained', async () => (await metric(t2, 'tollgate_lineage_spool_records', { sink: 'redis' })) === 0);
    // Give a duplicate (a second replay) the chance to land before counting.
    await new Promise((r) => setTimeout(r, 1000));
    const records = await streamRecords();
    const count = new Map<string, number>();
    for (const r of records) {
      assert.deepEqual(validateLineageRecord(r), [], `stream entry matches the schema: ${JSON.stringify(r)}`);
      count.set(r.requestId as string, (count.get(r.requestId as string) ?? 0) + 1);
    }
    for (const id of all) assert.equal(count.get(id), 1, `${id} stored exactly once`);
    assert.equal(records.length, 9, 'nothing else in the stream');
    // Arrival order: phase 1 live, then the spool oldest first (phase 2, then phase 3).
    assert.deepEqual(records.map((r) => r.requestId), all, 'records arrive in emission order');
    for (const r of records) {
      assert.equal(r.outcome, 'OUTCOME_SUCCESS');
      assert.equal((r.principal as { tenant: string }).tenant, 'acme');
    }
    assert.equal(await metric(t2, 'tollgate_lineage_records_replayed_total', { sink: 'redis' }), 6);
    assert.equal(await metric(t2, 'tollgate_lineage_sink_up', { sink: 'redis' }), 1, 'the sink is reported up again');
    const dropped = parsePromText(await (await fetch(`http://127.0.0.1:${t2.httpPort}/metrics`)).text()).filter((s) => s.name === 'tollgate_lineage_records_dropped_total');
    assert.equal(dropped.reduce((n, s) => n + s.value, 0), 0, 'nothing dropped');

    // `tollgate lineage --redis` finds a record that spent the restart in the spool.
    const q = await run(process.execPath, ['bin/tollgate.js', 'lineage', '--redis', redis.url, '--request-id', phase2[1]!], { cwd: process.cwd(), timeout: 60000 });
    const lines = q.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { requestId: string });
    assert.deepEqual(lines.map((l) => l.requestId), [phase2[1]], q.stdout + q.stderr);

    await stopTollgate(t2);
    assert.ok(!t2.output().includes(VIRTUAL_KEY) && !t1.output().includes(VIRTUAL_KEY), 'the virtual key is never logged');
  });
});
