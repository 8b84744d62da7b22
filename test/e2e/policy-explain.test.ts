// `tollgate explain` as a user runs it (`node bin/tollgate.js explain --request req.json --key K
// --dir DIR`) against the example configuration in policies/ and the README's demo keys: the
// decision, route, redactions and budgets, with no provider called and no credential printed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO = {
  acmeResearch: 'tg-demo-acme-research-0000000000000001',
  acmeSupport: 'tg-demo-acme-support-00000000000000001',
  globex: 'tg-demo-globex-default-0000000000000001',
};
const SECRETS = { OPENAI_API_KEY: 'sk-openai-secret-e2e-explain', AZURE_OPENAI_API_KEY: 'azure-secret-e2e-explain', ANTHROPIC_API_KEY: 'sk-ant-secret-e2e-explain' };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

function runExplain(tmp: string, body: unknown, key: string, dir = join(ROOT, 'policies'), env: Record<string, string> = SECRETS): Promise<Run> {
  const req = join(tmp, `req-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(req, JSON.stringify(body));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, TOLLGATE_LOG_LEVEL: 'silent' };
  delete childEnv.TOLLGATE_CONFIG;
  return new Promise((res) => {
    execFile(process.execPath, ['bin/tollgate.js', 'explain', '--json', '--request', req, '--key', key, '--dir', dir], { cwd: ROOT, env: childEnv, timeout: 60000 }, (err, stdout, stderr) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json });
    });
  });
}

describe('e2e: tollgate explain on the example config', { timeout: 180000 }, () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tollgate-explain-'));
  });
  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('EU tenant: decision, EU route, masked request, budgets and rate limits; no credential printed', async () => {
    const r = await runExplain(
      tmp,
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'email me at jane@example.com about bluebird' }], max_tokens: 2000 },
      DEMO.acmeResearch,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = r.json;
    assert.ok(out, `stdout is JSON: ${r.stdout.slice(0, 300)}`);
    assert.equal(out.outcome, 'forwarded');
    assert.equal(out.principal.tenant, 'acme');
    assert.equal(out.principal.team, 'research');
    // route: data residency puts the acme tenant on the EU deployment
    assert.deepEqual(out.route, { provider: 'azure-eu', deployment: out.route.deployment, upstreamModel: 'gpt-4o-mini-eu', cluster: 'azure_eu', region: 'eu-west-1' });
    assert.equal(out.upstream.headers['x-tollgate-cluster'], 'azure_eu');
    // decision
    const outcome = (rule: string) => out.decision.rules.find((x: any) => `${x.policy}/${x.rule}` === rule)?.outcome;
    assert.equal(outcome('baseline/tenant-bound'), 'allow');
    assert.equal(outcome('eu-residency/eu-or-self-hosted'), 'applied');
    assert.equal(outcome('data-protection/mask-pii'), 'applied');
    assert.equal(outcome('support-pseudonyms/matchConditions/pseudonymizing-team'), 'not-matched');
    assert.equal(outcome('free-tier/matchConditions/free-tenant'), 'not-matched');
    assert.deepEqual(out.decision.labels, { tenant: 'acme', team: 'research', tier: 'enterprise', endpoint: 'chat' });
    assert.deepEqual(out.decision.dryRunDenials, []);
    // redactions: what was found, and the body the provider would get
    assert.deepEqual(
      out.redactions.map((x: any) => [x.detector, x.action, x.count]).sort(),
      [
        ['acme_codenames', 'mask', 1],
        ['email', 'mask', 1],
      ],
    );
    const sent = out.upstream.body.messages[0].content as string;
    assert.ok(!sent.includes('jane@example.com') && !/bluebird/i.test(sent), sent);
    // budgets and rate limits that would apply
    assert.deepEqual(out.budgets.budgets.map((b: any) => [b.name, b.scopeKey, b.enforcement]), [
      ['spend-controls/key-daily', 'key:demo-acme-research', 'hard'],
      ['spend-controls/tenant-monthly', 'tenant:acme', 'hard'],
      ['spend-controls/cost-center-monthly', 'custom:cost-center:acme/r-and-d', 'soft'],
    ]);
    assert.deepEqual(out.budgets.rateLimits.map((b: any) => b.name), ['baseline/per-key-rate']);
    assert.equal(out.budgets.estimate.outputTokens, 2000);
    // secrets
    for (const s of Object.values(SECRETS)) assert.ok(!r.stdout.includes(s), 'no provider credential in the output');
    assert.ok(!r.stdout.includes(DEMO.acmeResearch), 'the virtual key is not echoed');
  });

  it('support team: pseudonymized contact data and the prepended system prompt', async () => {
    const r = await runExplain(tmp, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'customer ACME-123456 wrote from jane@example.com' }] }, DEMO.acmeSupport);
    assert.equal(r.code, 0, r.stderr);
    const out = r.json;
    assert.equal(out.outcome, 'forwarded');
    assert.deepEqual(out.decision.transforms, ['support-pseudonyms/support-system-prompt']);
    const msgs = out.upstream.body.messages;
    assert.equal(msgs[0].role, 'system');
    assert.match(msgs[0].content, /^You are assisting ACME support staff\./);
    assert.ok(!msgs[1].content.includes('jane@example.com') && !msgs[1].content.includes('ACME-123456'), msgs[1].content);
    assert.ok(out.redactions.some((x: any) => x.detector === 'email' && x.action === 'pseudonymize'), JSON.stringify(out.redactions));
  });

  const rejections: { name: string; key: string; body: unknown; status: number; code: string; message: RegExp; deniedRule?: string }[] = [
    {
      name: 'free tier asking for a premium model → 403 model_not_allowed',
      key: DEMO.globex,
      body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
      status: 403,
      code: 'model_not_allowed',
      message: /^the free tier cannot use gpt-4o; use llama-3\.1-8b or claude-sonnet, or upgrade$/,
      deniedRule: 'free-tier/premium-models',
    },
    {
      name: 'EU tenant asking for a US-only model → 403 route_denied naming the constraint',
      key: DEMO.acmeResearch,
      body: { model: 'claude-sonnet', messages: [{ role: 'user', content: 'hi' }] },
      status: 403,
      code: 'route_denied',
      message: /this tenant's data must stay in the EU .*eu-residency\/eu-or-self-hosted/,
    },
    {
      name: 'too many choices → 400 invalid_parameter',
      key: DEMO.acmeResearch,
      body: { model: 'gpt-4o-mini', n: 5, messages: [{ role: 'user', content: 'hi' }] },
      status: 400,
      code: 'invalid_parameter',
      message: /^ask for at most 4 completions/,
      deniedRule: 'baseline/few-choices',
    },
  ];
  for (const c of rejections) {
    it(c.name, async () => {
      const r = await runExplain(tmp, c.body, c.key);
      assert.equal(r.code, 0, r.stderr);
      const out = r.json;
      assert.equal(out.outcome, 'rejected');
      assert.equal(out.rejection.status, c.status);
      assert.equal(out.rejection.code, c.code);
      assert.match(out.rejection.message, c.message);
      if (c.deniedRule) assert.equal(out.decision.denied.rule, c.deniedRule);
      assert.equal(out.upstream, undefined);
    });
  }

  it('no provider is contacted: with the providers pointed at a local listener, it receives nothing', async () => {
    let connections = 0;
    const server = createServer((_req, res) => res.end('{}'));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const dir = join(tmp, 'config');
      cpSync(join(ROOT, 'policies'), dir, { recursive: true });
      const providers = join(dir, 'providers.yaml');
      writeFileSync(providers, readFileSync(providers, 'utf8').replace(/host: \S+/g, `host: 127.0.0.1:${port}`));
      const r = await runExplain(tmp, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, DEMO.acmeResearch, dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.outcome, 'forwarded');
      assert.equal(r.json.upstream.headers['x-tollgate-host'], `127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(connections, 0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
