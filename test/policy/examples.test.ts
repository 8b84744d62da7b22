// The example policies in policies/ compile and pass their own PolicyTest suites.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigErrors, parseDocuments, readConfigDir } from '../../service/config/documents.ts';
import { compilePolicies, runPolicyTests } from '../../service/policy/index.ts';
import { compile, deployment } from './helpers.ts';

const root = join(import.meta.dirname, '../../policies');

describe('example policies', () => {
  it('compile, and every PolicyTest case passes', () => {
    const bundle = compilePolicies(readConfigDir(join(root, 'policies')));
    assert.deepEqual(bundle.policies, ['baseline', 'free-tier', 'eu-residency', 'data-protection', 'support-pseudonyms', 'spend-controls', 'premium-hours', 'mcp-tools']);
    const r = runPolicyTests(bundle, readConfigDir(join(root, 'tests')), []);
    assert.equal(r.failed, 0, r.lines.filter((l) => l.startsWith('FAIL')).join('\n'));
    assert.ok(r.passed >= 20, `only ${r.passed} cases`);
    assert.ok(r.lines.every((l) => /^PASS [\w.-]+\/[\w.-]+$/.test(l)));
  });
});

const TEST_HEAD = 'apiVersion: tollgate.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: t}\nspec:\n';

describe('runPolicyTests', () => {
  const bundle = compile(`  rules:
    - name: no-gpt4
      models: {deny: ['gpt-4*']}
    - name: eu
      route: {expression: "deployment.region.startsWith('eu-')", message: EU only}
    - name: lbl
      label: {tenant: principal.tenant}
`);
  const deps = [deployment({ id: 'us', region: 'us-east-1' }), deployment({ id: 'eu', region: 'eu-west-1' })];

  it('reports PASS and FAIL lines with positions and what differed', () => {
    const docs = parseDocuments(
      't.yaml',
      `${TEST_HEAD}  defaults:
    principal: {tenant: acme}
  cases:
    - name: denied
      request: {body: {model: gpt-4o}}
      expect: {allowed: false, deniedBy: p/no-gpt4, message: not allowed}
    - name: wrong-expectation
      request: {body: {model: gpt-4o}}
      expect: {allowed: true}
    - name: routes
      request: {body: {model: gpt-3.5}}
      expect: {routes: {allowed: [eu], denied: [us], message: EU}, labels: {tenant: acme}}
    - name: wrong-routes
      request: {body: {model: gpt-3.5}}
      expect: {routes: {allowed: [us]}, labels: {tenant: globex}}
`,
    );
    const r = runPolicyTests(bundle, docs, deps);
    assert.deepEqual([r.passed, r.failed], [2, 2]);
    assert.equal(r.lines[0], 'PASS t/denied');
    assert.equal(r.lines[1], 'FAIL t/wrong-expectation (t.yaml:11:7): expected allowed, got denied by p/no-gpt4 (403 model_not_allowed: model "gpt-4o" is not allowed by policy "p")');
    assert.equal(r.lines[2], 'PASS t/routes');
    assert.match(r.lines[3]!, /^FAIL t\/wrong-routes \(t\.yaml:17:7\): expected deployment us to be allowed, got excluded by p\/eu: EU only; expected label tenant="globex", got "acme"$/);
  });

  it('uses deployments declared in the test document', () => {
    const docs = parseDocuments(
      't.yaml',
      `${TEST_HEAD}  deployments:
    - {id: paris, provider: mistral, region: eu-west-3}
  cases:
    - name: c
      request: {body: {model: m}}
      expect: {routes: {allowed: [paris]}}
`,
    );
    assert.deepEqual(runPolicyTests(bundle, docs, []).lines, ['PASS t/c']);
  });

  it('rejects malformed test documents with positions', () => {
    const docs = parseDocuments('t.yaml', `${TEST_HEAD}  cases:\n    - name: c\n      expect: {alowed: true}\n`);
    assert.throws(
      () => runPolicyTests(bundle, docs, deps),
      (e: unknown) => e instanceof ConfigErrors && /^t\.yaml:7:24: .*unknown field 'alowed' in expect; did you mean 'allowed'\?/.test(e.message),
    );
  });
});
