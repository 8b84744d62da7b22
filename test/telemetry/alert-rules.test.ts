// The shipped alert rules under `promtool test rules` (Debian's prometheus package: /usr/bin/promtool, or
// PROMTOOL). dashboards/prometheus-alerts.test.yaml makes every counting alert prove it fires on the first
// event of a label set that did not exist before; a copy of the rules without the new-series term must fail it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../service/envoy/provision.ts';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
const RULES = join(REPO_ROOT, 'dashboards', 'prometheus-alerts.yaml');
const TESTS = join(REPO_ROOT, 'dashboards', 'prometheus-alerts.test.yaml');

function promtool(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-alerts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Prometheus alert rules (promtool)', { timeout: 120_000 }, () => {
  it('promtool is installed', () => {
    assert.ok(
      existsSync(PROMTOOL),
      `promtool not found at ${PROMTOOL}: install Debian's "prometheus" package (apt-get install prometheus) or set PROMTOOL`,
    );
  });

  it('the rules file is valid (promtool check rules)', async () => {
    const r = await promtool(['check', 'rules', RULES]);
    assert.equal(r.code, 0, r.out);
  });

  it('every counting alert fires on the first event of a new series, and resolves after its window', async () => {
    const r = await promtool(['test', 'rules', TESTS]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });

  it('the unit tests catch rules that miss the first event (plain increase(...) > 0)', async () => {
    const rules = readFileSync(RULES, 'utf8');
    // Drop every "(x unless x offset W) or " term: what the rules looked like before.
    const naive = rules.replace(/\(\s*([a-z_]+(?:\{[^}]*\})?) unless \1 offset \w+\s*\)\s*or\s*/g, '');
    assert.notEqual(naive, rules, 'the rules use the (x unless x offset W) or increase(x[W]) form');
    assert.doesNotMatch(naive, /unless/);
    writeFileSync(join(dir, 'prometheus-alerts.yaml'), naive);
    copyFileSync(TESTS, join(dir, 'prometheus-alerts.test.yaml'));
    const r = await promtool(['test', 'rules', join(dir, 'prometheus-alerts.test.yaml')]);
    assert.notEqual(r.code, 0, 'the naive rules passed the first-event tests');
    for (const alert of ['TollgateLineageRecordsLost', 'TollgatePolicyEvaluationErrors', 'TollgateBudgetFailOpen', 'TollgateConfigReloadFailing', 'TollgateTenantSpendHigh'])
      assert.match(r.out, new RegExp(`alertname: ${alert}, time: 3m`), `${alert} should miss its first event without the fix`);
  });
});
