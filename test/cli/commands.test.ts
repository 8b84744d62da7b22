// The CLI doing its job, through the real bin: help, `test` with a file / --run, the explain summary,
// the spend table, and the one place errors are rendered (internal errors: message + hint, no stack).
import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { startTollgate } from '../../service/app.ts';
import { renderCliError, UsageError } from '../../service/cli/errors.ts';
import { spendTable } from '../../service/cli/spend.ts';
import { COMMANDS } from '../../service/cli/commands.ts';
import type { SpendRow } from '../../service/budget/index.ts';
import type { BudgetSpec } from '../../service/budget/types.ts';
import { tollgate } from './run.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'tollgate-cli-ok-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const NO_STACK = /^\s+at /m;

describe('tollgate CLI', { concurrency: 2, timeout: 300_000 }, () => {
  it('no arguments prints the help (every command) and exits 0; help <cmd> and <cmd> --help print its usage', async () => {
    const r = await tollgate([]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: tollgate <command>/);
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c.name} +\\S`, 'm'));
    const h = await tollgate(['help', 'lineage']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^usage: tollgate lineage .*--since DATE/);
    const t = await tollgate(['test', '--help']);
    assert.equal(t.code, 0);
    assert.match(t.stdout, /^usage: tollgate test \[DIR \| FILE\] \[--dir DIR\] \[--run PATTERN\]/);
    assert.match(t.stdout, /whole policy bundle/);
  });

  it('test --run runs only the matching cases, against the whole bundle', async () => {
    const r = await tollgate(['test', 'policies', '--run', '^free-tier/']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const cases = lines.filter((l) => l.startsWith('PASS') || l.startsWith('FAIL'));
    assert.ok(cases.length >= 2);
    assert.ok(cases.every((l) => l.startsWith('PASS free-tier/')), r.stdout);
    assert.match(lines.at(-1)!, new RegExp(`^${cases.length} passed, 0 failed, \\d+ not matching --run \\(bundle: \\d+ policies in policies\\)$`));
  });

  it('test FILE runs that file\'s cases against --dir\'s bundle; a failing case exits 1 naming file:line', async () => {
    const file = join(ROOT, 'policies', 'tests', 'free-tier.yaml');
    const r = await tollgate(['test', file, '--dir', 'policies']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split('\n').filter((l) => l.startsWith('PASS')).every((l) => l.startsWith('PASS free-tier/')), r.stdout);
    // A test file outside the directory, expecting what the bundle does not do.
    const wrong = join(tmp, 'wrong.yaml');
    writeFileSync(
      wrong,
      `apiVersion: tollgate.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: wrong}\nspec:\n  cases:\n    - name: free-tier-gets-gpt-4o\n      principal: {tenant: globex, team: default}\n      request: {body: {model: gpt-4o, messages: [{role: user, content: hi}]}}\n      expect: {allowed: true}\n`,
    );
    const f = await tollgate(['test', wrong, '--dir', 'policies']);
    assert.equal(f.code, 1, f.stdout + f.stderr);
    assert.match(f.stdout, /^FAIL wrong\/free-tier-gets-gpt-4o \(\S*wrong\.yaml:6:\d+\): /m);
    assert.match(f.stdout, /^0 passed, 1 failed/m);
  });

  it('a directory with configuration but no PolicyTest is an error for test', async () => {
    const dir = join(tmp, 'no-tests');
    cpSync(join(ROOT, 'policies'), dir, { recursive: true });
    rmSync(join(dir, 'tests'), { recursive: true });
    const r = await tollgate(['test', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tollgate test: no PolicyTest documents in /);
  });

  it('explain starts with a one-line summary: ALLOW …, routed to …; DENY by rule …; --json keeps it as a field', async () => {
    const req = join(tmp, 'req.json');
    writeFileSync(req, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail jane@example.com' }] }));
    const ok = await tollgate(['explain', '--request', req, '--key', 'tg-demo-acme-research-0000000000000001']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.split('\n')[0], 'ALLOW, 1 redaction, 3 budgets, routed to azure-eu as gpt-4o-mini-eu (eu-west-1)');
    const rest = JSON.parse(ok.stdout.slice(ok.stdout.indexOf('\n') + 1));
    assert.equal(rest.outcome, 'forwarded');
    const free = join(tmp, 'free.json');
    writeFileSync(free, JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
    const deny = await tollgate(['explain', '--request', free, '--key', 'tg-demo-globex-default-0000000000000001', '--json']);
    assert.equal(deny.code, 0, deny.stderr);
    const j = JSON.parse(deny.stdout);
    assert.match(j.summary, /^DENY by rule free-tier\/premium-models \(403\): /);
    const bad = await tollgate(['explain', '--request', free, '--key', 'tg-not-a-key']);
    assert.match(bad.stdout.split('\n')[0]!, /^DENY \(401 invalid_api_key\)/);
  });

  const ADMIN = 'cli-test-admin-token-0123456789abcdef';
  it('spend prints a table by default (JSON with --json) from a running Tollgate', async () => {
    const t = await startTollgate({ configDir: join(ROOT, 'policies'), grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', lineageSinks: ['none'], watchConfig: false, log: pino({ level: 'silent' }), mode: 'development', spendApi: true, adminTokens: [ADMIN] });
    try {
      const url = `http://127.0.0.1:${t.httpPort}`;
      const auth = { TOLLGATE_ADMIN_TOKEN: ADMIN };
      const spec: BudgetSpec = { name: 'spend-controls/acme-monthly', scope: 'tenant', scopeKey: 'tenant:acme', limit: { usd: 50 }, window: { kind: 'month', timeZone: 'UTC' }, enforcement: 'hard', onStoreError: 'failOpen' };
      const r = await t.budgets.admit('req-1', [spec], [], { inputTokens: 100, outputTokens: 50, usd: 0.01 }, { tenant: 'acme' });
      assert.ok(!(r instanceof Error), String(r));
      await t.budgets.settle(r.reservation, { inputTokens: 1200, outputTokens: 300, usd: 0.42 });
      const table = await tollgate(['spend', '--url', url], auth);
      assert.equal(table.code, 0, table.stderr);
      const [head, row] = table.stdout.split('\n');
      assert.match(head!, /^TENANT +SCOPE +WINDOW +SPENT +LIMIT +RESERVED +TOKENS IN\/OUT +REQUESTS +IN FLIGHT +RESETS$/);
      assert.match(row!, /^acme +tenant:acme +month\S* \S+ +\$0\.42 +\$50\.00 +\$0\.00 +1,200\/300 +1 +0 +\d{4}-\d\d-\d\dT/);
      const json = await tollgate(['spend', '--url', url, '--json'], auth);
      const rows = JSON.parse(json.stdout) as SpendRow[];
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.usd, 0.42);
    } finally {
      await t.close(100);
    }
  });
});

describe('renderCliError: the one place errors become output', () => {
  it('an internal error shows its message and the TOLLGATE_DEBUG hint, no stack; TOLLGATE_DEBUG=1 shows the stack', () => {
    const err = new TypeError('cannot read properties of undefined');
    const out = renderCliError(err, 'check', 'usage: tollgate check [DIR]', false);
    assert.equal(out.exitCode, 1);
    assert.equal(out.stderr, 'tollgate check: internal error: cannot read properties of undefined\n(rerun with TOLLGATE_DEBUG=1 for the stack trace)\n');
    assert.doesNotMatch(out.stderr, NO_STACK);
    assert.match(renderCliError(err, 'check', '', true).stderr, NO_STACK);
    const u = renderCliError(new UsageError('--limit must be a whole number ≥ 1, got "x"'), 'lineage', 'usage: tollgate lineage …');
    assert.deepEqual(u, { exitCode: 2, stderr: 'tollgate lineage: --limit must be a whole number ≥ 1, got "x"\n\nusage: tollgate lineage …\n' });
  });

  it('spendTable: empty says so; amounts below a cent keep 4 decimals', () => {
    assert.match(spendTable([]), /^no spend recorded yet/);
    const row: SpendRow = { tenant: 't', scopeKey: 'key:k', window: 'day', windowId: '2026-01-01', start: 0, resetAt: Date.UTC(2026, 0, 2), usd: 0.0012, inputTokens: 10, outputTokens: 2, requests: 1, reservedUsd: 0, reservedInputTokens: 0, reservedOutputTokens: 0, inFlight: 0, limits: { 'x/daily:usd': 1 } };
    assert.match(spendTable([row]).split('\n')[1]!, /^t +key:k +day 2026-01-01 +\$0\.0012 +\$1\.00 .* 2026-01-02T00:00:00Z$/);
  });
});
