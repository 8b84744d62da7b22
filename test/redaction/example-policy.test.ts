// Issue #11 item 17: the example bundle (policies/) protects every tenant out of the box. For every team declared
// in policies/tenants.yaml (and an undeclared one), a request carrying one value of every built-in high-risk type
// is evaluated by the example policies, redacted with the rules the decision attaches, and must not carry any of
// the values any more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readConfigDir } from '../../service/config/documents.ts';
import { buildRequestInput, compilePolicies } from '../../service/policy/index.ts';
import { compileRedactor } from '../../service/redaction/index.ts';

const root = join(import.meta.dirname, '../../policies');
const bundle = compilePolicies(readConfigDir(join(root, 'policies')));
const docs = readConfigDir(root);
const tenants = new Map(docs.filter((d) => d.kind === 'Tenant').map((d) => [d.name, (d.spec as { attributes?: Record<string, unknown> }).attributes ?? {}]));
const teams = docs
  .filter((d) => d.kind === 'Team')
  .map((d) => {
    const spec = d.spec as { tenant: string; attributes?: Record<string, unknown> };
    return { team: d.name, tenant: spec.tenant, attributes: spec.attributes ?? {} };
  });

const VALUES: Record<string, string> = {
  email: 'jane.doe@example.com',
  phone: '+1 415 555 2671',
  credit_card: '4111 1111 1111 1111',
  ssn: '123-45-6789',
  iban: 'DE89 3704 0044 0532 0130 00',
  ipv4: '203.0.113.77',
  ipv6: '2001:db8::ff00:42:8329',
  aws_access_key: 'AKIAIOSFODNN7EXAMPLE',
  aws_secret_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  openai_key: 'sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456',
  github_token: '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',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
};
const TEXT =
  `Customer ${VALUES.email}, phone ${VALUES.phone}, card ${VALUES.credit_card}, SSN ${VALUES.ssn}, IBAN ${VALUES.iban}. ` +
  `Logged in from ${VALUES.ipv4} and ${VALUES.ipv6}. aws key ${VALUES.aws_access_key} secret ${VALUES.aws_secret_key}; ` +
  `openai ${VALUES.openai_key}; github ${VALUES.github_token}; bearer ${VALUES.jwt}`;

// A model each tenant may use (the free tier cannot use gpt-4o*), so the decision reaches its redaction rules.
const modelFor = (tenant: string): string => (tenants.get(tenant)?.tier === 'free' ? 'llama-3.1-8b' : 'gpt-4o-mini');

const principals = [
  ...teams,
  // A team the tenants file does not declare (no attributes): the baseline still applies.
  { team: 'new-team', tenant: 'globex', attributes: {} },
  { team: '', tenant: 'acme', attributes: {} },
];

for (const p of principals) {
  test(`example policies redact every built-in high-risk value for ${p.tenant}/${p.team || '(no team)'}`, () => {
    const body = { model: modelFor(p.tenant), messages: [{ role: 'user', content: TEXT }] };
    const decision = bundle.evaluate({
      request: buildRequestInput({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers: {}, body }),
      principal: { keyId: 'k', tenant: p.tenant, team: p.team, user: 'u', groups: [], claims: {}, authMethod: 'key' },
      tenant: { name: p.tenant, attributes: tenants.get(p.tenant) ?? {} },
      team: { name: p.team, attributes: p.attributes },
      now: new Date('2025-01-15T10:00:00Z'),
    });
    assert.equal(decision.denied, undefined, JSON.stringify(decision.denied));
    assert.ok(decision.redactions.length > 0, 'some redaction rule applies');
    const redactor = compileRedactor(decision.redactions, decision.customDetectors);
    const { body: out, report } = redactor.redactRequest(body);
    const sent = JSON.stringify(out);
    for (const [detector, value] of Object.entries(VALUES)) {
      assert.ok(!sent.includes(value), `${detector} value reaches the provider: ${sent}`);
      assert.ok((report.counts[detector] ?? 0) >= 1, `${detector} not reported: ${JSON.stringify(report.counts)}`);
    }
  });
}

test('the opt-out swaps the action, not the coverage: teams with piiHandling=pseudonymize get pseudonyms, others masks', () => {
  const actions = (attributes: Record<string, unknown>, tenant: string): Map<string, string> => {
    const body = { model: modelFor(tenant), messages: [{ role: 'user', content: TEXT }] };
    const d = bundle.evaluate({
      request: buildRequestInput({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers: {}, body }),
      principal: { keyId: 'k', tenant, team: 't', user: 'u', groups: [], claims: {}, authMethod: 'key' },
      tenant: { name: tenant, attributes: tenants.get(tenant) ?? {} },
      team: { name: 't', attributes },
      now: new Date('2025-01-15T10:00:00Z'),
    });
    const { report } = compileRedactor(d.redactions, d.customDetectors).redactRequest(body);
    return new Map(report.findings.map((f) => [f.detector, f.action]));
  };
  for (const tenant of ['acme', 'globex']) {
    const masked = actions({}, tenant);
    const pseudo = actions({ piiHandling: 'pseudonymize' }, tenant);
    for (const d of ['email', 'phone', 'credit_card', 'ssn', 'iban', 'ipv4', 'ipv6']) {
      assert.equal(masked.get(d), 'mask', `${tenant} ${d}`);
      assert.equal(pseudo.get(d), 'pseudonymize', `${tenant} ${d}`);
    }
    assert.equal(pseudo.get('openai_key'), 'mask', 'secrets stay masked for everyone');
  }
});
