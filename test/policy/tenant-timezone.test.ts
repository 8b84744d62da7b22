// A Tenant's `timeZone` (config) is visible to policies as `tenant.timeZone`, through the gateway's
// input builder and in PolicyTest cases (from the tenant config, or set in the case).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseDocuments } from '../../service/config/documents.ts';
import { buildPolicyInput } from '../../service/gateway/policy-input.ts';
import { join } from 'node:path';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import { runPolicyTests } from '../../service/policy/index.ts';
import type { TenantConfig } from '../../service/config/types.ts';
import { compile, input } from './helpers.ts';

const OFFICE_HOURS = `  rules:
    - name: office-hours
      deny:
        expression: now.getHours(tenant.timeZone) < 8 || now.getHours(tenant.timeZone) >= 18
        message: outside office hours
`;

describe('tenant.timeZone in policies', () => {
  const bundle = compile(OFFICE_HOURS);
  const at = new Date('2025-01-15T07:30:00Z'); // 07:30 UTC = 16:30 Tokyo = 02:30 New York

  it('the tenant\'s own time zone decides (UTC when the tenant sets none)', () => {
    const tokyo = bundle.evaluate(input({ tenant: { name: 'acme', attributes: {}, timeZone: 'Asia/Tokyo' }, now: at }));
    assert.equal(tokyo.denied, undefined);
    const ny = bundle.evaluate(input({ tenant: { name: 'acme', attributes: {}, timeZone: 'America/New_York' }, now: at }));
    assert.equal(ny.denied?.rule, 'p/office-hours');
    const utc = bundle.evaluate(input({ tenant: { name: 'acme', attributes: {} }, now: at }));
    assert.equal(utc.denied?.rule, 'p/office-hours');
  });

  it('the gateway fills it from the Tenant config', () => {
    const snap = buildSnapshot(join(import.meta.dirname, '..', '..', 'policies'));
    snap.core.tenants.set('acme', { ...snap.core.tenants.get('acme')!, timeZone: 'Asia/Tokyo' });
    const principal = { keyId: 'k', tenant: 'acme', team: 't', user: 'u', groups: [], claims: {}, authMethod: 'key' as const };
    const inp = buildPolicyInput(snap, 'openai', { model: 'm', messages: [] }, principal, new Map(), 'POST', '/v1/chat/completions', 10, at);
    assert.equal(inp.tenant.timeZone, 'Asia/Tokyo');
    assert.equal(bundle.evaluate(inp).denied, undefined);
  });

  it('PolicyTest cases get it from the tenant config, or from the case; an unknown zone is a load error', () => {
    const doc = (tenant: string) =>
      parseDocuments(
        't.yaml',
        `apiVersion: tollgate.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: t}\nspec:\n  cases:\n    - name: c\n      principal: {tenant: acme}\n      ${tenant}now: "2025-01-15T07:30:00Z"\n      expect: {allowed: true}\n`,
      );
    const tenants: TenantConfig[] = [{ name: 'acme', attributes: {}, timeZone: 'Asia/Tokyo' }];
    assert.deepEqual(runPolicyTests(bundle, doc(''), [], { tenants }).lines, ['PASS t/c']);
    assert.match(runPolicyTests(bundle, doc(''), []).lines[0]!, /^FAIL t\/c/);
    assert.deepEqual(runPolicyTests(bundle, doc('tenant: {timeZone: Asia/Tokyo}\n      '), []).lines, ['PASS t/c']);
    assert.throws(() => runPolicyTests(bundle, doc('tenant: {timeZone: Mars/Olympus}\n      '), []), /unknown time zone "Mars\/Olympus"/);
  });
});
