// TLS to providers for real: fake providers behind HTTPS with certificates from a test CA, reached
// through the shipped clusters' TLS settings. Envoy sends the provider's name as SNI (auto_sni from
// x-tollgate-host, or the chain's static per-priority SNI) and checks the certificate's SAN; a
// provider whose certificate does not match never receives the prompt or the credential.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, accessLogFor, startHarness, type Harness } from '../support/harness.ts';
import { makeTestCa, type TestCa } from '../support/test-ca.ts';

const ask = (h: Harness, model: string) =>
  new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 10_000 }).chat.completions
    .create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 })
    .withResponse();

describe('TLS to providers (auto_sni, SAN validation, per-priority SNI)', { timeout: 120_000 }, () => {
  let ca: TestCa;
  before(() => {
    ca = makeTestCa();
  });

  describe('a provider cluster as shipped (openai: auto_sni + auto_san_validation)', () => {
    let h: Harness;
    before(async () => {
      const leaf = ca.leaf('api.openai.com');
      h = await startHarness({ providers: ['openai'], tls: { openai: { hostname: 'api.openai.com', caFile: ca.caFile, ...leaf } } });
    });
    after(() => h.close());

    it('Envoy connects with SNI = the provider host and a verified certificate; the answer comes back', async () => {
      const { data, response } = await ask(h, 'gpt-4o-mini');
      assert.ok(data.choices[0]!.message.content);
      const got = h.fakes.openai!.requests.at(-1)!;
      assert.equal(got.sni, 'api.openai.com');
      assert.equal(got.headers.host, 'api.openai.com');
      assert.equal(got.headers.authorization, `Bearer ${h.fakes.openai!.credential}`);
      const log = await accessLogFor(h, response.headers.get('x-request-id')!);
      assert.equal(log.upstream_cluster, 'fake_openai');
    });
  });

  describe('a certificate for another name', () => {
    let h: Harness;
    before(async () => {
      const wrong = ca.leaf('evil.example.com');
      h = await startHarness({ providers: ['openai'], tls: { openai: { hostname: 'api.openai.com', caFile: ca.caFile, key: wrong.key, cert: wrong.cert } } });
    });
    after(() => h.close());

    it('is refused by Envoy before any byte of the request is sent: 503, the provider got nothing', async () => {
      const err = await ask(h, 'gpt-4o-mini').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.ok(err.status === 502 || err.status === 503, String(err.status));
      assert.equal(h.fakes.openai!.requests.length, 0, 'no request (and no credential) reached the impostor');
      const log = await accessLogFor(h, err.headers?.get?.('x-request-id') ?? '');
      assert.match(String(log.details), /TLS|tls|ssl|CERTIFICATE|verify/i, JSON.stringify(log));
    });
  });

  describe('a fallback chain over TLS: each priority presents its own SNI and checks its own SAN', () => {
    let h: Harness;
    const CHAIN = 'tgc.secure';
    before(async () => {
      const a = ca.leaf('openai.chain.test');
      // A wildcard certificate, as Azure OpenAI serves (*.openai.azure.com): the chain's exact DNS SAN
      // matcher for anthropic.chain.test must accept it.
      const b = ca.leaf('*.chain.test');
      h = await startHarness({
        providers: ['openai', 'anthropic'],
        tls: {
          openai: { hostname: 'openai.chain.test', caFile: ca.caFile, ...a },
          anthropic: { hostname: 'anthropic.chain.test', caFile: ca.caFile, ...b },
        },
        chains: {
          [CHAIN]: [
            { provider: 'openai', deployment: 'secure/fake-openai/0' },
            { provider: 'anthropic', deployment: 'secure/fake-anthropic/1' },
          ],
        },
        extraYaml: `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: secure}
spec:
  deployments:
  - {provider: fake-openai, model: gpt-4o-mini-2024-07-18, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
  - {provider: fake-anthropic, model: claude-3-5-sonnet-20241022, region: us-east-1, pricing: {inputPerMillion: 3, outputPerMillion: 15}, priority: 1}
  fallbackChains:
  - {cluster: ${CHAIN}, deployments: [secure/fake-openai/0, secure/fake-anthropic/1]}
`,
      });
    });
    after(() => h.close());

    it('attempt 1 (OpenAI, fails) and attempt 2 (Anthropic, wildcard certificate, serves) each got their own SNI and host', async () => {
      h.fakes.openai!.setNext({ type: 'error', status: 503 });
      const { data, response } = await ask(h, 'secure');
      assert.ok(data.choices[0]!.message.content);
      assert.equal(response.headers.get('x-tollgate-provider'), 'fake-anthropic');
      const o = h.fakes.openai!.requests.at(-1)!;
      const a = h.fakes.anthropic!.requests.at(-1)!;
      assert.equal(o.sni, 'openai.chain.test');
      assert.equal(a.sni, 'anthropic.chain.test', 'not attempt 1’s name');
      assert.equal(a.headers.host, 'anthropic.chain.test');
      assert.equal(a.headers.authorization, undefined);
      const log = await accessLogFor(h, response.headers.get('x-request-id')!);
      assert.equal(log.attempts, 2);
    });
  });
});
