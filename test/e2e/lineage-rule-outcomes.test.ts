// Every rule outcome the policy engine has — allow, deny, would-deny, applied, not-matched, error, skipped —
// reaches lineage as itself, end to end: official OpenAI SDK → Envoy front → Tollgate → the JSONL sink. Checked
// on the record object and on the line the sink wrote, which must validate against lineage.proto.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { validateLineageRecord } from '../../service/lineage/schema.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: outcomes}
spec:
  rules:
    - name: has-user-message
      require:
        expression: request.messages.exists(m, m.role == 'user')
    - name: no-forbidden-word
      deny:
        expression: request.messages.exists(m, m.text.contains('forbidden-word'))
        message: that word is not allowed
    - name: probes-later
      mode: dryRun
      deny:
        expression: request.messages.exists(m, m.text.contains('outcome-probe'))
        message: probes will be refused
    - name: globex-only
      when: principal.tenant == 'globex'
      deny:
        expression: 'true'
    - name: broken-check
      onError: skip
      deny:
        expression: request.params.nope > 3
    - name: team-label
      label:
        team: principal.team
    - name: mask-emails-soon
      mode: dryRun
      redact:
        detectors: [email]
        action: mask
`;

type Json = Record<string, any>;

describe('e2e lineage: every rule outcome recorded exactly', { timeout: 60000 }, () => {
  let h: Harness;
  let dir: string;
  let file: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-rule-outcomes-'));
    file = join(dir, 'lineage.jsonl');
    h = await startHarness({ extraYaml: POLICY, tollgate: { lineageSinks: [`file:${file}`] } });
  });
  after(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The record object and the sink's line for `requestId`, the line checked against the schema. */
  async function recorded(requestId: string): Promise<{ rec: LineageRecord; line: Json }> {
    await eventually(() => h.lineage.some((r) => r.requestId === requestId), 10000);
    await h.tollgate.lineage.flush();
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    const line = lines.find((l) => l.requestId === requestId);
    assert.ok(line, `the JSONL sink wrote ${requestId}`);
    assert.deepEqual(validateLineageRecord(line), [], 'the written record matches lineage.proto');
    assert.equal(line.schemaVersion, 2);
    return { rec: h.lineage.find((r) => r.requestId === requestId)!, line };
  }

  const outcomes = (rec: LineageRecord) => Object.fromEntries((rec.policy?.rules ?? []).filter((r) => r.policy === 'outcomes').map((r) => [r.rule, r.outcome]));
  const written = (line: Json) => Object.fromEntries((line.policy?.rules ?? []).filter((r: Json) => r.policy === 'outcomes').map((r: Json) => [r.rule, r.outcome]));

  it('an allowed request: allow, would-deny, not-matched, error, applied and skipped', async () => {
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'outcome-probe: hello' }] })
      .withResponse();
    const { rec, line } = await recorded(response.headers.get('x-request-id')!);
    assert.equal(rec.outcome, 'success');
    assert.deepEqual(outcomes(rec), {
      'has-user-message': 'allow', // a passing require is not "not matched"
      'no-forbidden-word': 'allow',
      'probes-later': 'would_deny', // a dry-run deny is not an enforced one
      'globex-only': 'not_matched',
      'broken-check': 'error',
      'team-label': 'applied',
      'mask-emails-soon': 'skipped',
    });
    assert.deepEqual(written(line), {
      'has-user-message': 'RULE_RESULT_ALLOW',
      'no-forbidden-word': 'RULE_RESULT_ALLOW',
      'probes-later': 'RULE_RESULT_WOULD_DENY',
      'globex-only': 'RULE_RESULT_NOT_MATCHED',
      'broken-check': 'RULE_RESULT_ERROR',
      'team-label': 'RULE_RESULT_APPLIED',
      'mask-emails-soon': 'RULE_RESULT_SKIPPED',
    });
    assert.deepEqual(line.policy.dryRunDenies, [{ policy: 'outcomes', rule: 'probes-later', message: 'probes will be refused' }]);
  });

  it('a denied request: the enforced deny is recorded as deny, and evaluation stopped there', async () => {
    const client = new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0 });
    const err = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'outcome-probe: forbidden-word' }] })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.PermissionDeniedError);
    const { rec, line } = await recorded(err.headers?.get('x-request-id') ?? '');
    assert.equal(rec.outcome, 'denied');
    assert.deepEqual(outcomes(rec), { 'has-user-message': 'allow', 'no-forbidden-word': 'deny' });
    assert.deepEqual(written(line), { 'has-user-message': 'RULE_RESULT_ALLOW', 'no-forbidden-word': 'RULE_RESULT_DENY' });
    assert.equal(line.policy.dryRunDenies, undefined, 'no dry-run deny: the enforced one came first');
  });
});
