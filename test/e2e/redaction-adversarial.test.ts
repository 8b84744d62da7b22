// Redaction under hostile input, end to end: custom policy regexes shaped for catastrophic backtracking, and
// ~1 MB request bodies (normal text full of PII, and digit soup that stresses the number detectors). The request
// must complete, the PII must still be gone, and the service must keep serving afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: hostile-detectors}
spec:
  detectors:
    - {name: nested_plus, regex: '(a+)+$'}
    - {name: alternation, regex: '(q|qq)+z'}
    - {name: double_plus, regex: '(x+x+)+y'}
    - {name: word_soup, regex: '(\\w+\\s?)*#'}
  rules:
    - name: hostile
      redact: {detectors: [nested_plus, alternation, double_plus, word_soup], action: mask, responses: true}
    - name: builtins
      redact: {detectors: ['*'], action: mask, responses: true}
---
# ~1 MB is ~250k estimated tokens: a deployment with a context window that admits it.
apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: big-context}
spec:
  kind: chat
  deployments:
  - {provider: fake-openai, model: big-context-upstream, region: us-east-1, contextWindow: 2000000, pricing: {inputPerMillion: 0.1, outputPerMillion: 0.2}}
`;

const client = (h: Harness) => new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 120000 });

async function lineageFor(h: Harness, requestId: string | null): Promise<LineageRecord> {
  assert.ok(requestId);
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 20000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

async function healthy(h: Harness): Promise<void> {
  const r = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there? mail a.b@example.org' }] });
  assert.equal(r.object, 'chat.completion');
  assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).messages[0].content, 'still there? mail [EMAIL_1]');
  const hz = await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/healthz`);
  assert.equal(hz.status, 200);
}

describe('e2e redaction: adversarial input', { timeout: 240000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extraYaml: EXTRA,
      maxRequestBytes: 2 * 1024 * 1024,
      // Envoy's listener buffer must hold the body; the ext_proc message timeout is raised far above production's
      // 2 s because this machine is shared (tests never assert on timing; a stall shows as the test timeout).
      envoy: { bufferLimitBytes: 4 * 1024 * 1024, messageTimeoutMs: 60000 },
    });
  });
  after(async () => {
    await h.close();
  });

  describe('custom regexes shaped for catastrophic backtracking (RE2: linear time)', () => {
    const cases: { name: string; evil: string; hit: string; masked: string }[] = [
      { name: '(a+)+$', evil: `${'a'.repeat(100000)}!`, hit: 'ends with aaaa', masked: 'ends with [NESTED_PLUS_1]' },
      { name: '(q|qq)+z', evil: `${'q'.repeat(100000)}c`, hit: 'x qqqz y', masked: 'x [ALTERNATION_1] y' },
      { name: '(x+x+)+y', evil: `${'x'.repeat(100000)}z`, hit: 'p xxxy q', masked: 'p [DOUBLE_PLUS_1] q' },
      { name: '(\\w+\\s?)*#', evil: `${'word '.repeat(20000)}!`, hit: 'hello world#', masked: '[WORD_SOUP_1]' },
    ];
    for (const c of cases) {
      it(`${c.name}: the hostile input completes (200, forwarded unchanged), a real match is still masked`, async () => {
        const before = h.fakes.openai!.requests.length;
        const r = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: c.evil }] });
        assert.equal(r.object, 'chat.completion');
        assert.equal(h.fakes.openai!.requests.length, before + 1);
        assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).messages[0].content, c.evil, 'no match → unchanged');
        await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: c.hit }] });
        assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).messages[0].content, c.masked, 'the detector is live');
      });
    }

    it('on the response path too (held-back streaming window), stream and non-stream', async () => {
      const evil = `${'a'.repeat(50000)}!`;
      for (const stream of [false, true]) {
        h.fakes.openai!.setNext({ type: 'reply', reply: { text: `${evil} then ends with aaaa` } });
        let text = '';
        if (stream) {
          const s = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'go' }], stream: true });
          for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
        } else {
          text = (await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'go' }] })).choices[0]!.message.content ?? '';
        }
        assert.equal(text, `${evil} then ends with [NESTED_PLUS_1]`);
      }
    });
  });

  describe('~1 MB request bodies', () => {
    const PARA = 'Customer jane.doe@example.com called from +1 415-555-2671 about card 4111 1111 1111 1111; order 88213, build 1.2.3.4. ';
    const N = Math.ceil(1_000_000 / PARA.length);

    it('one ~1 MB message full of PII: completes, nothing leaks, exact counts in lineage', async () => {
      const content = PARA.repeat(N);
      const before = h.fakes.openai!.requests.length;
      const { response } = await client(h).chat.completions.create({ model: 'big-context', messages: [{ role: 'user', content }] }).withResponse();
      assert.ok(content.length >= 1_000_000);
      assert.equal(h.fakes.openai!.requests.length, before + 1);
      const raw = h.fakes.openai!.requests.at(-1)!.body.toString('utf8');
      for (const v of ['jane.doe@example.com', '415-555-2671', '4111 1111 1111 1111']) assert.ok(!raw.includes(v), v);
      const sent = (JSON.parse(raw) as any).messages[0].content as string;
      assert.equal(sent, PARA.replace('jane.doe@example.com', '[EMAIL_1]').replace('+1 415-555-2671', '[PHONE_1]').replace('4111 1111 1111 1111', '[CREDIT_CARD_1]').repeat(N));
      const rec = await lineageFor(h, response.headers.get('x-request-id'));
      const count = (d: string) => rec.redactions!.find((r) => r.direction === 'request' && r.detector === d)?.count;
      assert.equal(count('email'), N);
      assert.equal(count('phone'), N);
      assert.equal(count('credit_card'), N);
      assert.equal(rec.redactions!.find((r) => r.detector === 'email')!.locations!.length, 1, 'locations are distinct paths, not one per finding');
      assert.ok(!JSON.stringify(rec).includes('jane.doe@example.com'));
      await healthy(h);
    });

    it('~1 MB spread over 1,000 messages and a tool schema, sent while small requests keep flowing', async () => {
      const messages = Array.from({ length: 1000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: PARA.repeat(8) }) as const);
      messages.push({ role: 'user', content: 'summarise' } as never);
      const big = client(h).chat.completions.create({ model: 'big-context', messages: messages as OpenAI.ChatCompletionMessageParam[] });
      const small = await Promise.all([1, 2, 3].map((i) => client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `small ${i}` }] })));
      assert.equal(small.length, 3);
      const r = await big;
      assert.equal(r.object, 'chat.completion');
      const got = h.fakes.openai!.requests.find((q) => Array.isArray((q.json as any)?.messages) && (q.json as any).messages.length === 1001);
      assert.ok(got, 'the big request reached the provider');
      assert.ok(!got.body.toString('utf8').includes('jane.doe@example.com'));
      await healthy(h);
    });

    const soups: { name: string; content: string }[] = [
      { name: 'one-digit groups "1 1 1 …" (number detectors)', content: '1 '.repeat(500000) },
      { name: 'four-digit groups "1234 1234 …"', content: '1234 '.repeat(200000) },
      { name: 'dotted digits "1.1.1. …" (ipv4, versions)', content: '1.'.repeat(500000) },
      { name: '"a@a@a@ …" (email)', content: 'a@'.repeat(500000) },
      { name: 'hex colons "a1:a1: …" (ipv6)', content: 'a1:'.repeat(333333) },
      { name: 'unterminated PEM headers', content: '-----BEGIN RSA PRIVATE KEY-----\n'.repeat(30000) },
    ];
    for (const s of soups) {
      it(`~1 MB of ${s.name}: completes and the service keeps serving`, async () => {
        const before = h.fakes.openai!.requests.length;
        const { response } = await client(h).chat.completions.create({ model: 'big-context', messages: [{ role: 'user', content: s.content }] }).withResponse();
        assert.equal(h.fakes.openai!.requests.length, before + 1);
        const rec = await lineageFor(h, response.headers.get('x-request-id'));
        assert.equal(rec.outcome, 'success');
        await healthy(h);
      });
    }
  });
});
