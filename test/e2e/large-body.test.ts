// Large request bodies: Tollgate asks Envoy for more time (override_message_timeout) before it starts
// the slow work. (That the override really extends Envoy's timer is proven in envoy-contract.test.ts (real Envoy) with a
// processor that replies late on purpose; here: Tollgate sends it, and only for large bodies.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';
import { extProcTrouble } from '../support/envoy.ts';

const MASK_ALL = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: mask-all}
spec:
  rules:
  - name: mask
    redact: {detectors: ['*'], action: mask}
`;

function bigPrompt(bytes: number): string {
  const line = 'Customer jane.doe@example.com paid with 4111 1111 1111 1111; order 2024-0001-7781 shipped. ';
  return line.repeat(Math.ceil(bytes / line.length));
}

describe('large request bodies and override_message_timeout', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extraYaml: MASK_ALL,
      maxRequestBytes: 4 * 1024 * 1024,
      envoy: { messageTimeoutMs: 2000, maxMessageTimeoutMs: 30000, bufferLimitBytes: 8 * 1024 * 1024 },
    });
  });
  after(async () => {
    await h.close();
  });

  it('a 400 KB body gets more time before redaction starts, and the provider sees no PII', async () => {
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 60000 });
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: bigPrompt(400 * 1024) }] });
    assert.equal(res.object, 'chat.completion');
    // Envoy counted the processor's override_message_timeout (and did not ignore it).
    const stats = await h.envoy.stats('ext_proc');
    assert.equal(stats['http.llm_ingress.ext_proc.override_message_timeout_received'], 1, JSON.stringify(stats));
    assert.equal(stats['http.llm_ingress.ext_proc.override_message_timeout_ignored'], 0);
    assert.deepEqual(await extProcTrouble(h.envoy), {});
    const sent = h.fakes.openai!.requests.at(-1)!.body.toString();
    assert.ok(!sent.includes('jane.doe@example.com') && !sent.includes('4111 1111 1111 1111'));
  });

  it('small bodies do not ask for more time', async () => {
    const received = async () => (await h.envoy.stats('ext_proc'))['http.llm_ingress.ext_proc.override_message_timeout_received'];
    const before = await received();
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(await received(), before);
  });
});
