// Issue #11 items 11–13 through a real Envoy (message_timeout 2 s): a big hot reload does not stall
// requests in flight, and reloads that would fail every request or drop every guardrail are refused
// while traffic keeps flowing on the last good config.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';
import { maxLoopGap } from '../support/event-loop.ts';

function keysYaml(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = createHash('sha256').update(`e2e-availability-${i}`).digest('hex');
    parts.push(`apiVersion: tollgate.dev/v1alpha1\nkind: VirtualKey\nmetadata: {name: bulk-${i}}\nspec: {sha256: ${h}, tenant: acme, team: research, user: u${i}}\n`);
  }
  return parts.join('---\n');
}

const TEN = '[1,2,3,4,5,6,7,8,9,10]';
const FAILS_EVERYWHERE = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: heavy}
spec:
  rules:
    - name: nested
      deny:
        expression: "${TEN}.all(a, ${TEN}.all(b, ${TEN}.all(c, ${TEN}.all(d, ${TEN}.all(e, a + b + c + d + e > 0)))))"
`;

function reloadCount(metrics: string, result: 'success' | 'failure'): number {
  const m = new RegExp(`^tollgate_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('e2e: availability during hot reloads', { timeout: 180_000 }, () => {
  let h: Harness;
  let telemetry: string;
  const client = () => new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 20_000 });
  const chat = async (stream: boolean): Promise<string> => {
    if (!stream) return (await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).object;
    let n = 0;
    for await (const _ of await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })) n++;
    return n > 0 ? 'chat.completion.chunk' : 'empty stream';
  };
  const metrics = async () => (await (await fetch(`${telemetry}/metrics`)).text());

  before(async () => {
    h = await startHarness();
    telemetry = `http://127.0.0.1:${h.tollgate.httpPort}`;
  });
  after(async () => h?.close());

  it('requests in flight during a 20,000-key reload complete within Envoy\'s 2 s message timeout', async () => {
    h.writeConfig('bulk-keys.yaml', keysYaml(20_000));
    let reloading = true;
    const timings: number[] = [];
    // Requests back to back (plain and streamed) for as long as the reload runs.
    const traffic = (async () => {
      for (let i = 0; reloading || i < 2; i++) {
        const t0 = performance.now();
        assert.match(await chat(i % 2 === 1), /^chat\.completion/);
        timings.push(performance.now() - t0);
      }
    })();
    await new Promise((r) => setTimeout(r, 50)); // the first request is in flight
    let r;
    let maxGapMs: number;
    try {
      ({ result: r, maxGapMs } = await maxLoopGap(() => h.tollgate.holder.reload()));
    } finally {
      reloading = false;
    }
    await traffic; // before: the in-flight request hit Envoy's message timeout (500) during a multi-second stall
    assert.deepEqual(r, { ok: true, changed: true });
    assert.equal(h.tollgate.holder.snapshot().core.keys.length, 20_004);
    assert.ok(Math.max(...timings) < 2000, `a request took ${Math.max(...timings).toFixed(0)} ms`);
    assert.ok(maxGapMs < 1000, `event loop stalled ${maxGapMs.toFixed(0)} ms`);
    assert.ok(timings.length >= 3, `only ${timings.length} requests during the reload`);
  });

  it('a policy that would fail every request is refused: traffic keeps passing (no 403 wall), counted, shown in /readyz', async () => {
    const good = h.tollgate.holder.snapshot().revision;
    const failures = reloadCount(await metrics(), 'failure');
    h.writeConfig('heavy.yaml', FAILS_EVERYWHERE);
    try {
      const r = await h.tollgate.holder.reload();
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, /heavy\.yaml:8:21: spec\.rules\[0\]\.deny\.expression: fails on every sample input/);
      assert.equal(h.tollgate.holder.snapshot().revision, good);
      assert.equal(await chat(false), 'chat.completion');
      assert.equal(reloadCount(await metrics(), 'failure'), failures + 1);
      const ready = (await (await fetch(`${telemetry}/readyz`)).json()) as { config: { lastError?: string; revision: string } };
      assert.match(ready.config.lastError ?? '', /fails on every sample input/);
      assert.equal(ready.config.revision, good);
    } finally {
      rmSync(join(h.tollgate.holder.dir, 'heavy.yaml'));
    }
  });

  it('an emptied config directory is refused: keys and models still work, bad keys still get 401', async () => {
    const dir = h.tollgate.holder.dir;
    const stash = mkdtempSync(join(tmpdir(), 'tollgate-e2e-stash-'));
    cpSync(dir, stash, { recursive: true });
    try {
      for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true });
      writeFileSync(join(dir, 'README.txt'), 'not config');
      const r = await h.tollgate.holder.reload();
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, /has no configuration documents/);
      assert.equal(await chat(true), 'chat.completion.chunk');
      await assert.rejects(
        new OpenAI({ apiKey: 'tg-not-a-real-key-000000000000000000000', baseURL: h.baseURL, maxRetries: 0 }).models.list(),
        (e: unknown) => e instanceof OpenAI.AuthenticationError,
      );
    } finally {
      cpSync(stash, dir, { recursive: true });
      rmSync(stash, { recursive: true, force: true });
    }
  });
});
