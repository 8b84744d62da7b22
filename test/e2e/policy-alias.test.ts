// Model aliases must not bypass model policies: a client that names a model by one of its
// configured aliases is judged as that model. (Needs the gateway to pass the catalog's canonical
// name in PolicyInput.request.canonicalModel — service/gateway/policy-input.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';

const EXTRA = `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: premium-x}
spec:
  aliases: [handy-alias]
  deployments:
  - {provider: fake-openai, model: premium-upstream, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: free-models}
spec:
  matchConditions:
    - {name: free, expression: "principal.tenant == 'globex'"}
  rules:
    - name: no-premium
      models:
        deny: ['premium-*']
        message: the free tier cannot use premium models
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: support-models}
spec:
  matchConditions:
    - {name: support, expression: "principal.team == 'support'"}
  rules:
    - name: only-premium
      models:
        allow: ['premium-x']
        message: support uses premium-x only
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: research-cel}
spec:
  matchConditions:
    - {name: research, expression: "principal.team == 'research'"}
  rules:
    - name: no-premium-by-expression
      deny:
        expression: request.canonicalModel.glob('premium-*')
        message: research may not use premium models
`;

describe('e2e: model aliases and model policies', { timeout: 60000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ extraYaml: EXTRA });
  });
  after(async () => {
    await h?.close();
  });
  const ask = (key: string, model: string) =>
    new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 15000 }).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

  const cases: { name: string; key: string; model: string; denied?: { code: string; message: string } }[] = [
    { name: 'deny list, canonical name', key: KEYS.globex, model: 'premium-x', denied: { code: 'model_not_allowed', message: 'the free tier cannot use premium models' } },
    { name: 'deny list, alias', key: KEYS.globex, model: 'handy-alias', denied: { code: 'model_not_allowed', message: 'the free tier cannot use premium models' } },
    { name: 'allow list, canonical name', key: KEYS.acmeSupport, model: 'premium-x' },
    { name: 'allow list, alias', key: KEYS.acmeSupport, model: 'handy-alias' },
    { name: 'allow list, another model', key: KEYS.acmeSupport, model: 'gpt-4o-mini', denied: { code: 'model_not_allowed', message: 'support uses premium-x only' } },
    { name: 'CEL request.canonicalModel, canonical name', key: KEYS.acme, model: 'premium-x', denied: { code: 'policy_denied', message: 'research may not use premium models' } },
    { name: 'CEL request.canonicalModel, alias', key: KEYS.acme, model: 'handy-alias', denied: { code: 'policy_denied', message: 'research may not use premium models' } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const before = h.fakes.openai!.requests.length;
      if (!c.denied) {
        const res = await ask(c.key, c.model);
        assert.equal(res.object, 'chat.completion');
        assert.equal((h.fakes.openai!.requests.at(-1)!.json as any).model, 'premium-upstream');
        return;
      }
      await assert.rejects(ask(c.key, c.model), (e: unknown) => {
        assert.ok(e instanceof OpenAI.PermissionDeniedError, String(e));
        assert.equal(e.code, c.denied!.code);
        assert.equal((e.error as any).message, c.denied!.message);
        return true;
      });
      assert.equal(h.fakes.openai!.requests.length, before, 'nothing reached the provider');
    });
  }
});
