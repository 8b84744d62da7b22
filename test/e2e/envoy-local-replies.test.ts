// Envoy's own answers after Tollgate routed a request — cluster not found (config drift between
// Tollgate and Envoy), connect failure, route timeout — and what Tollgate makes of them: the client
// gets an error it can parse, lineage gets exactly one record with the outcome, nothing is charged,
// and the budget reservation is released.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, accessLogFor, eventually, startHarness, type Harness } from '../support/harness.ts';
import { extProcTrouble } from '../support/envoy.ts';

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const providerAndModel = (name: string, cluster: string) => `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: ${name}}
spec: {api: openai, cluster: ${cluster}, host: ${name}.internal, basePath: /v1, credential: {none: true}, selfHosted: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: ${name}-model}
spec:
  deployments:
  - {provider: ${name}, model: m, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
`;

describe('Envoy local replies after routing', { timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    const dead = await closedPort();
    h = await startHarness({
      providers: ['openai'],
      // ghost_cluster is in Tollgate's config but not in Envoy's; dead_cluster points at a closed port.
      extraYaml: providerAndModel('ghost', 'ghost_cluster') + providerAndModel('dead', 'dead_cluster'),
      envoy: { clusters: { dead_cluster: { host: '127.0.0.1', port: dead } }, upstreamTimeoutMs: 1500 },
    });
  });
  after(() => h.close());

  const client = () => new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 10_000 });

  async function failing(model: string): Promise<{ err: InstanceType<typeof OpenAI.APIError>; rid: string }> {
    const err = await client()
      .chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError, String(err));
    const rid = err.headers?.get?.('x-request-id') ?? '';
    assert.ok(rid, 'the error carries x-request-id');
    return { err, rid };
  }

  const cases: [string, string, () => void, number, RegExp, RegExp][] = [
    ['cluster not found (Envoy and Tollgate configs drifted)', 'ghost-model', () => undefined, 503, /cluster_not_found/, /provider ghost could not be reached/],
    ['connect failure', 'dead-model', () => undefined, 503, /connect|upstream_reset_before_response_started/, /provider dead could not be reached \(upstream connect error/],
    ['route timeout', 'gpt-4o-mini', () => h.fakes.openai!.setNext({ type: 'hang' }), 504, /response_timeout/, /provider fake-openai did not answer in time/],
  ];
  for (const [name, model, arrange, status, details, says] of cases)
    it(`${name}: ${status}, one lineage record, nothing charged`, async () => {
      arrange();
      const { err, rid } = await failing(model);
      assert.equal(err.status, status);
      const body = err.error as { message?: unknown; code?: unknown } | undefined;
      assert.equal(typeof body?.message, 'string', `an OpenAI-shaped error body: ${JSON.stringify(err.error)}`);
      assert.match(String(body?.message), says, 'says what happened: Envoy answered, the provider did not');
      const log = await accessLogFor(h, rid);
      assert.match(String(log.details), details, JSON.stringify(log));
      await eventually(() => h.lineage.some((r) => r.requestId === rid));
      await new Promise((r) => setTimeout(r, 200));
      const recs = h.lineage.filter((r) => r.requestId === rid);
      assert.equal(recs.length, 1, JSON.stringify(recs));
      assert.equal(recs[0]!.outcome, 'provider_error');
      assert.equal(recs[0]!.costUsd ?? 0, 0);
    });

  it('a headers-only reply (cluster not found) still reaches an Anthropic client as an Anthropic error', async () => {
    const res = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEYS.acme, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ghost-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error?.type, 'overloaded_error');
    assert.match(body.error?.message ?? '', /could not be reached/);
  });

  it('Envoy lost no ext_proc stream and rejected nothing while doing so', async () => {
    assert.deepEqual(await extProcTrouble(h.envoy), {});
  });
});
