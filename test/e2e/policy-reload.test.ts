// Policy hot reload, end to end: Tollgate watches its config directory (watchConfig: true); a good
// policy change applies to new requests while an in-flight stream finishes on the old snapshot; a
// bad change (CEL syntax error) keeps the old bundle, shows in /readyz and counts as a failure in
// tollgate_config_reloads_total.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { openAIStream } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';
import type { RenderCluster } from '../../service/envoy/render.ts';

/**
 * An OpenAI-compatible upstream whose streamed answer pauses half-way until `release()` is called,
 * so a config change can be made while the stream is provably in flight (no timing assumptions).
 */
interface GatedUpstream {
  port: number;
  host: string;
  bodies: unknown[];
  /** Resolves when the first half of a stream has been written. */
  halfSent: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

async function startGatedUpstream(text: string): Promise<GatedUpstream> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let halfSent!: () => void;
  const half = new Promise<void>((r) => (halfSent = r));
  const bodies: unknown[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean; stream_options?: { include_usage?: boolean } };
        bodies.push(body);
        if (req.headers.authorization !== 'Bearer test-openai-key') {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}');
          return;
        }
        const parts = openAIStream({ text, usage: { input: 10, output: 20 } }, body.stream_options?.include_usage === true);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
        const mid = Math.floor(parts.length / 2);
        for (const p of parts.slice(0, mid)) res.write(p);
        halfSent();
        await gate;
        for (const p of parts.slice(mid)) res.write(p);
        res.end();
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    bodies,
    halfSent: half,
    release,
    close: async () => {
      release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const STREAM_TEXT = 'one two three four five six seven eight nine ten eleven twelve';

function extraYaml(upstreamHost: string, policy: string): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: gated-openai}
spec:
  api: openai
  cluster: gated_openai
  host: ${upstreamHost}
  basePath: /v1
  credential: {env: TG_TEST_OPENAI_KEY}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: gated-chat}
spec:
  deployments:
  - {provider: gated-openai, model: gated-upstream-1, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
${policy}`;
}

const POLICY_V1 = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: rollout}
spec:
  rules:
    - name: no-secrets
      deny:
        expression: request.messages.exists(m, m.text.contains('classified'))
        message: v1 blocks classified prompts
`;

const POLICY_V2 = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: rollout}
spec:
  rules:
    - name: no-secrets
      deny:
        expression: request.messages.exists(m, m.text.contains('classified'))
        message: v1 blocks classified prompts
    - name: retire-gated
      models:
        deny: ['gated-*']
        message: gated models are retired
`;

const POLICY_BROKEN = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: rollout}
spec:
  rules:
    - name: no-secrets
      deny:
        expression: request.messages.exists(m, m.text.contains('classified')
        message: this version has a syntax error
`;

async function getText(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

function reloadCount(metrics: string, result: 'success' | 'failure'): number {
  const m = new RegExp(`^tollgate_config_reloads_total\\{result="${result}"\\} (\\d+(?:\\.\\d+)?)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('e2e: policy hot reload', { timeout: 120000 }, () => {
  let h: Harness;
  let up: GatedUpstream;
  // An extra Envoy cluster; the harness adds its fakes.
  const clusters: Record<string, RenderCluster> = {};
  let telemetry: string;
  const client = (key = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 30000 });

  before(async () => {
    up = await startGatedUpstream(STREAM_TEXT);
    clusters.gated_openai = { host: '127.0.0.1', port: up.port };
    h = await startHarness({ extraYaml: extraYaml(up.host, POLICY_V1), tollgate: { watchConfig: true }, envoy: { clusters } });
    // (fake provider clusters come from the harness)
    // (fake provider clusters come from the harness)
    telemetry = `http://127.0.0.1:${h.tollgate.httpPort}`;
  });
  after(async () => {
    await h?.close();
    await up?.close();
  });

  it('a good change applies to new requests; a stream in flight during the reload completes', async () => {
    // v1: classified prompts are denied, gated-chat is allowed.
    await assert.rejects(
      client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'classified plans' }] }),
      (e: unknown) => e instanceof OpenAI.PermissionDeniedError && (e.error as any).message === 'v1 blocks classified prompts',
    );
    const oldRevision = h.tollgate.holder.snapshot().policy.revision;
    const successBefore = reloadCount((await getText(`${telemetry}/metrics`)).text, 'success');

    const streamId = `e2e-reload-stream-${process.pid}`;
    const stream = await client().chat.completions.create(
      { model: 'gated-chat', messages: [{ role: 'user', content: 'count slowly' }], stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-request-id': streamId } },
    );
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    await up.halfSent;

    // Change the policy while the stream is paused half-way.
    h.writeConfig('extra.yaml', extraYaml(up.host, POLICY_V2));
    await eventually(() => h.tollgate.holder.snapshot().policy.revision !== oldRevision, 15000);

    // New requests see v2 at once …
    await assert.rejects(
      client().chat.completions.create({ model: 'gated-chat', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.PermissionDeniedError, String(e));
        assert.equal(e.code, 'model_not_allowed');
        assert.equal((e.error as any).message, 'gated models are retired');
        return true;
      },
    );
    assert.equal(up.bodies.length, 1, 'the retired model was not called again');
    // … other models still work under v2.
    assert.equal((await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).object, 'chat.completion');

    // … and the in-flight stream finishes intact.
    up.release();
    let text = (first.value as OpenAI.ChatCompletionChunk).choices[0]?.delta?.content ?? '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const c = r.value as OpenAI.ChatCompletionChunk;
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, STREAM_TEXT);
    assert.equal(finish, 'stop');
    assert.equal(usage?.completion_tokens, 20);

    await eventually(() => h.lineage.some((r) => r.request.clientRequestId === streamId), 5000);
    const rec = h.lineage.find((r) => r.request.clientRequestId === streamId)!;
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.policy?.bundleRevision, oldRevision, 'the stream kept the snapshot it started with');

    const metrics = (await getText(`${telemetry}/metrics`)).text;
    assert.ok(reloadCount(metrics, 'success') > successBefore, 'successful reload counted');
  });

  it('a bad change keeps the old bundle, shows the error in /readyz and counts a failure', async () => {
    const goodRevision = h.tollgate.holder.snapshot().revision;
    const failuresBefore = reloadCount((await getText(`${telemetry}/metrics`)).text, 'failure');
    const statusBefore = h.tollgate.holder.reloadStatus().failures;

    h.writeConfig('extra.yaml', extraYaml(up.host, POLICY_BROKEN));
    await eventually(() => h.tollgate.holder.reloadStatus().failures > statusBefore, 15000);

    const ready = await getText(`${telemetry}/readyz`);
    assert.equal(ready.status, 200, 'a rejected reload does not make the running gateway unready');
    const detail = JSON.parse(ready.text) as { config: { revision: string; lastError?: string; failures: number } };
    assert.equal(detail.config.revision, goodRevision, 'still on the last good config');
    assert.match(detail.config.lastError ?? '', /extra\.yaml:\d+:\d+: spec\.rules\[0\]\.deny\.expression: syntax error/);

    const metrics = (await getText(`${telemetry}/metrics`)).text;
    assert.equal(reloadCount(metrics, 'failure'), failuresBefore + 1);

    // The old (v2) bundle still decides.
    await assert.rejects(
      client().chat.completions.create({ model: 'gated-chat', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.PermissionDeniedError && (e.error as any).message === 'gated models are retired',
    );
    await assert.rejects(
      client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'classified' }] }),
      (e: unknown) => e instanceof OpenAI.PermissionDeniedError && (e.error as any).message === 'v1 blocks classified prompts',
    );

    // Fixing the file recovers: the error clears and v1 (gated-chat allowed again) applies.
    h.writeConfig('extra.yaml', extraYaml(up.host, POLICY_V1));
    await eventually(() => h.tollgate.holder.reloadStatus().lastError === undefined, 15000);
    const fixed = JSON.parse((await getText(`${telemetry}/readyz`)).text) as { config: { lastError?: string } };
    assert.equal(fixed.config.lastError, undefined);
    const stream = await client().chat.completions.create({ model: 'gated-chat', messages: [{ role: 'user', content: 'again' }], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, STREAM_TEXT);
  });

  it('a Policy file added to the directory is picked up (directory watch, not just known files)', async () => {
    const rev = h.tollgate.holder.snapshot().policy.revision;
    h.writeConfig(
      'zz-extra-policy.yaml',
      `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: late-addition}
spec:
  rules:
    - name: no-bananas
      deny: {expression: "request.messages.exists(m, m.text.contains('banana'))", status: 422, reason: no_bananas, message: no bananas please}
`,
    );
    await eventually(() => h.tollgate.holder.snapshot().policy.revision !== rev, 15000);
    await assert.rejects(
      client(KEYS.globex).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'banana bread' }] }),
      (e: unknown) => e instanceof OpenAI.UnprocessableEntityError && e.code === 'no_bananas' && (e.error as any).message === 'no bananas please',
    );
  });
});
