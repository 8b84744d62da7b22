// SIGTERM drain deadline, through the real process (`node --import tsx service/main.ts`, JSONL lineage sink):
// a stream still running when TOLLGATE_DRAIN_MS runs out is cut, and its lineage record must still be written,
// as `aborted`, with its budget settled — never lost because the emitter closed first.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { hashKey } from '../../service/identity/keys.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { freePort } from '../bench/extproc-load.ts';
import { startFakeProvider, type FakeProvider } from '../support/fake-providers.ts';
import { startEnvoy } from '../support/envoy.ts';

const VIRTUAL_KEY = 'tg-test-drain-acme-00000000000000000000001';
const DRAIN_MS = 1500;

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
  credential: {env: TG_DRAIN_OPENAI_KEY}
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
metadata: {name: drain-acme}
spec: {sha256: ${hashKey(VIRTUAL_KEY)}, tenant: acme, user: alice}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: drain}
spec:
  rules:
    - name: acme-monthly
      budget:
        scope: tenant
        limit: {usd: 100}
        window: month
`;
}

describe('e2e lineage: a stream cut at the SIGTERM drain deadline, real process', { timeout: 90000 }, () => {
  let work: string;
  let fake: FakeProvider;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-lineage-drain-'));
    mkdirSync(join(work, 'config'));
    // A slow answer: writes 250 ms apart for far longer than the drain allows.
    fake = await startFakeProvider('openai', { writeDelayMs: 250, reply: { text: Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ') } });
    writeFileSync(join(work, 'config', 'config.yaml'), configYaml(fake));
  });

  after(async () => {
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the cut stream is recorded as aborted, with its budget settled', async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const file = join(work, 'lineage.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        TOLLGATE_CONFIG: join(work, 'config'),
        TOLLGATE_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
        TOLLGATE_LINEAGE: `file:${file}`,
        TOLLGATE_SPOOL_DIR: join(work, 'spool'),
        TOLLGATE_LOG_LEVEL: 'warn',
        TOLLGATE_DRAIN_MS: String(DRAIN_MS),
        TG_DRAIN_OPENAI_KEY: fake.credential!,
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const envoy = await startEnvoy({
      extProcAddrs: [`127.0.0.1:${grpcPort}`],
      clusters: { fake_openai: { host: '127.0.0.1', port: fake.port } },
      allowModeOverride: true,
      messageTimeoutMs: 5000,
    });
    try {
      const deadline = Date.now() + 60000;
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok).catch(() => false);
        if (ok) break;
        assert.ok(Date.now() < deadline, `tollgate did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const client = new OpenAI({ apiKey: VIRTUAL_KEY, baseURL: `${envoy.url}/v1`, maxRetries: 0, timeout: 20000 });
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a very slow answer please' }], stream: true })
        .withResponse();
      const requestId = response.headers.get('x-request-id');
      assert.ok(requestId, 'x-request-id response header');
      const it = stream[Symbol.asyncIterator]();
      assert.equal((await it.next()).done, false, 'the stream started');
      const sigtermAt = Date.now();
      child.kill('SIGTERM');
      // The stream outlives the drain: Tollgate cuts it at the deadline, then exits.
      let finished = false;
      const reading = (async () => {
        for (;;) if ((await it.next()).done) return;
      })().then(
        () => (finished = true),
        () => undefined,
      );
      assert.equal(await exited, 0, `graceful exit; output:\n${output}`);
      assert.ok(Date.now() - sigtermAt >= DRAIN_MS - 100, 'the stream ran until the drain deadline');
      assert.equal(finished, false, 'the answer was not complete when Tollgate stopped');
      stream.controller.abort();
      await reading;

      assert.ok(existsSync(file), `lineage file written; output:\n${output}`);
      const records = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const rec = records.find((r) => r.requestId === requestId);
      assert.ok(rec, `the cut stream has a lineage record (${records.length} records); output:\n${output}`);
      assert.deepEqual(validateLineageRecord(rec), []);
      assert.equal(rec.outcome, 'OUTCOME_ABORTED');
      assert.equal(rec.statusCode, 200, 'the status the client got before the cut');
      assert.equal(rec.errorClass, 'aborted');
      assert.match(String(rec.errorCode), /drain deadline/);
      const budgets = rec.budgets as Record<string, unknown>[];
      assert.equal(budgets.length, 1);
      assert.equal(budgets[0]!.name, 'drain/acme-monthly');
      assert.ok(Number(budgets[0]!.charged) > 0, `the relayed part was charged: ${JSON.stringify(budgets[0])}`);
      const tokens = rec.tokens as Record<string, unknown>;
      assert.equal(tokens.estimated, true, 'usage estimated from what was relayed');
    } finally {
      child.kill('SIGKILL');
      await envoy.close();
    }
  });
});
