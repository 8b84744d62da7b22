// Every user mistake we know of, run through the real bin (node bin/tollgate.js …): one line naming
// what to fix, the command's usage, exit 2 (or exit 1 for a well-formed request that cannot be done),
// and never a stack trace.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tollgate } from './run.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
const empty = join(tmp, 'empty');
mkdirSync(empty);
const req = join(tmp, 'req.json');
writeFileSync(req, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }));
const notJson = join(tmp, 'bad.json');
writeFileSync(notJson, 'not json');
const claimsArray = join(tmp, 'claims.json');
writeFileSync(claimsArray, '[1,2]');
const policyOnly = join(tmp, 'stray-policy.yaml');
writeFileSync(
  policyOnly,
  'apiVersion: tollgate.dev/v1alpha1\nkind: Policy\nmetadata: {name: stray}\nspec:\n  rules: []\n---\napiVersion: tollgate.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: t}\nspec:\n  cases: [{name: c, expect: {allowed: true}}]\n',
);
const noTests = join(ROOT, 'policies', 'tenants.yaml');
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Mistake {
  args: string[];
  env?: Record<string, string>;
  code: number;
  message: RegExp;
  /** The usage of this command follows the message (usage mistakes). */
  usage?: string;
}

const MISTAKES: Mistake[] = [
  { args: ['frob'], code: 2, message: /^tollgate: unknown command "frob" \(commands: run, serve, check, test/, usage: 'tollgate <command>' },
  { args: ['--bogus'], code: 2, message: /^tollgate: unknown option "--bogus"/, usage: 'tollgate <command>' },
  { args: ['help', 'frob'], code: 2, message: /^tollgate: unknown command "frob"/, usage: 'tollgate <command>' },
  { args: ['check', join(tmp, 'nope')], code: 2, message: /^tollgate check: config directory \S+nope does not exist$/m, usage: 'tollgate check' },
  { args: ['check'], env: { TOLLGATE_CONFIG: join(tmp, 'nope') }, code: 2, message: /^tollgate check: config directory \(from TOLLGATE_CONFIG\) \S+ does not exist/, usage: 'tollgate check' },
  { args: ['check', req], code: 2, message: /^tollgate check: config directory \S+req\.json is not a directory/, usage: 'tollgate check' },
  { args: ['check', empty], code: 1, message: /^tollgate check: config directory \S+ has no configuration documents/ },
  { args: ['check', 'policies', 'extra'], code: 2, message: /^tollgate check: unexpected argument "extra"/, usage: 'tollgate check' },
  { args: ['check', '--strict'], code: 2, message: /^tollgate check: unknown option "--strict" \(this command takes no options\)/, usage: 'tollgate check' },
  { args: ['test', join(tmp, 'nope')], code: 2, message: /^tollgate test: test path \S+nope does not exist/, usage: 'tollgate test' },
  { args: ['test', 'policies', '--run', '('], code: 2, message: /^tollgate test: --run "\(" is not a valid regular expression/, usage: 'tollgate test' },
  { args: ['test', 'policies', '--run', 'no-such-case'], code: 1, message: /^tollgate test: no test case matches --run "no-such-case" \(\d+ cases, named <test>\/<case>, e\.g\. /m },
  { args: ['test', 'policies', '--dir', 'policies'], code: 2, message: /^tollgate test: give either a config directory \(policies\) or --dir/, usage: 'tollgate test' },
  { args: ['test', noTests, '--dir', 'policies'], code: 2, message: /^tollgate test: \S+tenants\.yaml has no PolicyTest documents/, usage: 'tollgate test' },
  { args: ['test', policyOnly, '--dir', 'policies'], code: 2, message: /^tollgate test: \S+stray-policy\.yaml also holds Policy "stray", which is not part of the bundle of policies/, usage: 'tollgate test' },
  { args: ['test', empty], code: 1, message: /^tollgate test: config directory \S+ has no configuration documents/ },
  { args: ['test', '--rn', 'x'], code: 2, message: /^tollgate test: unknown option "--rn" \(did you mean --run\?\)/, usage: 'tollgate test' },
  { args: ['explain'], code: 2, message: /^tollgate explain: --request is required/, usage: 'tollgate explain' },
  { args: ['explain', '--request', join(tmp, 'nope.json'), '--key', 'k'], code: 2, message: /^tollgate explain: --request file \S+nope\.json does not exist/, usage: 'tollgate explain' },
  { args: ['explain', '--request', req], code: 2, message: /^tollgate explain: give the caller: --key KEY \(a virtual key\) or --claims FILE/, usage: 'tollgate explain' },
  { args: ['explain', '--request', notJson, '--key', 'k'], code: 2, message: /^tollgate explain: --request file \S+bad\.json is not valid JSON/, usage: 'tollgate explain' },
  { args: ['explain', '--request', req, '--claims', claimsArray], code: 2, message: /^tollgate explain: --claims file \S+ must hold a JSON object/, usage: 'tollgate explain' },
  { args: ['explain', '--request', req, '--key', 'k', '--path', 'v1/chat'], code: 2, message: /^tollgate explain: --path "v1\/chat" must start with \//, usage: 'tollgate explain' },
  { args: ['explain', '--requets', req], code: 2, message: /^tollgate explain: unknown option "--requets" \(did you mean --request\?\)/, usage: 'tollgate explain' },
  { args: ['explain', '--request'], code: 2, message: /^tollgate explain: option "--request" needs a value/, usage: 'tollgate explain' },
  { args: ['explain', '--request', req, '--key', 'k', '--dir', join(tmp, 'nope')], code: 2, message: /^tollgate explain: config directory \S+nope does not exist/, usage: 'tollgate explain' },
  { args: ['keys'], code: 2, message: /^tollgate keys: which keys command\? \(keys create\)/, usage: 'tollgate keys create' },
  { args: ['keys', 'delete'], code: 2, message: /^tollgate keys: unknown keys command "delete"/, usage: 'tollgate keys create' },
  { args: ['keys', 'create'], code: 2, message: /^tollgate keys: --tenant is required/, usage: 'tollgate keys create' },
  { args: ['keys', 'create', '--tenant'], code: 2, message: /^tollgate keys: option "--tenant" needs a value/, usage: 'tollgate keys create' },
  { args: ['keys', 'create', '--tenant', 'nobody'], code: 2, message: /^tollgate keys: unknown tenant "nobody" \(tenants in \.\/policies: acme, globex\)/, usage: 'tollgate keys create' },
  { args: ['keys', 'create', '--tenant', 'acme', '--team', 'nope'], code: 2, message: /^tollgate keys: unknown team "nope" in tenant "acme" \(its teams: /, usage: 'tollgate keys create' },
  { args: ['keys', 'create', '--tenant', 'acme', '--expires', 'tomorrow'], code: 2, message: /^tollgate keys: --expires "tomorrow" is not a date; use ISO 8601/, usage: 'tollgate keys create' },
  { args: ['keys', 'create', '--tenant', 'acme', '--name', 'Bad Name'], code: 2, message: /^tollgate keys: invalid key name "Bad Name"/, usage: 'tollgate keys create' },
  { args: ['spend', '--url', 'foo'], code: 2, message: /^tollgate spend: --url "foo" is not a URL/, usage: 'tollgate spend' },
  { args: ['spend', '--url', 'ftp://x'], code: 2, message: /^tollgate spend: --url "ftp:\/\/x" must start with http:\/\/ or https:\/\//, usage: 'tollgate spend' },
  { args: ['spend', '--tennant', 'acme'], code: 2, message: /^tollgate spend: unknown option "--tennant" \(did you mean --tenant\?\)/, usage: 'tollgate spend' },
  { args: ['spend', '--url', 'http://127.0.0.1:9'], code: 1, message: /^tollgate spend: cannot reach Tollgate at http:\/\/127\.0\.0\.1:9 \(.+\); is it running\? Set --url or TOLLGATE_HTTP_ADDR/ },
  { args: ['lineage', '--file', join(tmp, 'nope.jsonl')], code: 2, message: /^tollgate lineage: lineage file \S+nope\.jsonl does not exist$/m, usage: 'tollgate lineage' },
  { args: ['lineage'], code: 2, message: /^tollgate lineage: lineage file \.\/var\/lineage\.jsonl does not exist; pass --file PATH .* or --redis URL/, usage: 'tollgate lineage' },
  { args: ['lineage', '--file', tmp], code: 2, message: /^tollgate lineage: lineage file \S+ is a directory/, usage: 'tollgate lineage' },
  { args: ['lineage', '--since', 'yesterday'], code: 2, message: /^tollgate lineage: --since "yesterday" is not a date; use ISO 8601/, usage: 'tollgate lineage' },
  { args: ['lineage', '--until', '2026-13-45'], code: 2, message: /^tollgate lineage: --until "2026-13-45" is not a date/, usage: 'tollgate lineage' },
  { args: ['lineage', '--since', '2026-02-01', '--until', '2026-01-01'], code: 2, message: /^tollgate lineage: --since \(2026-02-01T00:00:00\.000Z\) is after --until/, usage: 'tollgate lineage' },
  { args: ['lineage', '--limit', 'abc'], code: 2, message: /^tollgate lineage: --limit must be a whole number ≥ 1, got "abc"/, usage: 'tollgate lineage' },
  { args: ['lineage', '--limit', '0'], code: 2, message: /^tollgate lineage: --limit must be a whole number ≥ 1, got "0"/, usage: 'tollgate lineage' },
  { args: ['lineage', '--file', 'x', '--redis', 'redis://127.0.0.1:6379'], code: 2, message: /^tollgate lineage: give --file or --redis, not both/, usage: 'tollgate lineage' },
  { args: ['lineage', '--redis', 'localhost:6379'], code: 2, message: /^tollgate lineage: --redis "localhost:6379" is not a Redis URL; use e\.g\. redis:\/\/127\.0\.0\.1:6379/, usage: 'tollgate lineage' },
  { args: ['lineage', '--redis', 'redis://:hunter2@127.0.0.1:1'], code: 1, message: /^tollgate lineage: cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 \(ECONNREFUSED/ },
  { args: ['lineage'], env: { REDIS_URL: 'redis://127.0.0.1:1' }, code: 1, message: /^tollgate lineage: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1 / },
  { args: ['envoy', 'frob'], code: 2, message: /^tollgate envoy: unknown envoy command "frob" \(install or path\)/, usage: 'tollgate envoy' },
  { args: ['envoy', '--version', '0.0.1'], code: 2, message: /^tollgate envoy: Envoy 0\.0\.1 is not pinned \(envoy\/versions\.json pins /, usage: 'tollgate envoy' },
  { args: ['envoy', '--all', '--version', '1.40.0'], code: 2, message: /^tollgate envoy: give --version V or --all, not both/, usage: 'tollgate envoy' },
  { args: ['serve', '--port', '8080'], code: 2, message: /^tollgate serve: unknown option "--port" \(this command takes no options\)/, usage: 'tollgate serve' },
];

describe('tollgate: every user mistake gets one line, its usage and exit 2 (1 when the request is fine but cannot be done); never a stack trace', { concurrency: 2, timeout: 300_000 }, () => {
  for (const m of MISTAKES) {
    it(`tollgate ${m.args.map((a) => a.replace(tmp, '$TMP')).join(' ')}${m.env ? ` (${Object.keys(m.env).join(',')})` : ''}`, async () => {
      const r = await tollgate(m.args, m.env);
      assert.doesNotMatch(r.stderr + r.stdout, /^\s+at /m, `stack trace printed:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.equal(r.code, m.code, r.stderr);
      const first = r.stderr.split('\n')[0]!;
      assert.match(first, m.message);
      if (m.usage) assert.ok(r.stderr.includes(`\nusage: ${m.usage}`), `usage of "${m.usage}" follows:\n${r.stderr}`);
      else assert.equal(r.stderr.trim().split('\n').length, 1, `one line:\n${r.stderr}`);
      assert.ok(!r.stderr.includes('hunter2'), 'no password in the output');
      assert.ok(r.ms < 20_000, `answered in ${r.ms} ms`);
    });
  }
});
