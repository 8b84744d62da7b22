// The web console in a real browser (headless Chromium via playwright-core): sign in with the admin
// token, create a key in the UI, use it with the OpenAI SDK through real Envoy, and see the request
// (rules fired, route, redaction counts, cost), its spend, the budget and the audit event appear.
// TG_CONSOLE_SCREENSHOTS=1 also saves the main pages to docs/console/*.png (README).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { KEYS, startHarness, type Harness } from '../support/harness.ts';
import { testRedisUrl } from '../support/redis.ts';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const SHOTS = process.env.TG_CONSOLE_SCREENSHOTS ? fileURLToPath(new URL('../../docs/console/', import.meta.url)) : undefined;
const CHROMIUM = process.env.TOLLGATE_TEST_CHROMIUM ?? '/usr/bin/chromium';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: console-demo}
spec:
  rules:
    - name: team-daily-usd
      budget: {scope: team, limit: {usd: 0.001}, window: day}
    - name: mask-emails
      redact: {detectors: [email], action: mask}
`;

describe('web console in headless Chromium', { timeout: 120_000 }, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let tmp: string;
  const cspErrors: string[] = [];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tollgate-console-'));
    h = await startHarness({
      extraYaml: POLICY,
      tollgate: {
        redisUrl: testRedisUrl(),
        redisPrefix: `tgconsole-${randomBytes(4).toString('hex')}:`,
        adminTokens: [ADMIN],
        lineageSinks: [`file:${join(tmp, 'lineage.jsonl')}`],
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
    });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };

  it('sign in → create a key → use it through Envoy → the request, its spend, the budget and the audit event show up', async () => {
    const consoleUrl = `http://127.0.0.1:${h.tollgate.httpPort}/console`;
    await page.goto(consoleUrl);
    await shot('login');
    // A wrong token is refused and nothing opens.
    await page.fill('#token', 'not-the-token-000000');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error', { hasText: /refused/ }).waitFor();
    assert.equal(await page.isVisible('#nav'), false);

    await page.fill('#token', ADMIN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
    assert.match((await page.textContent('#who')) ?? '', /admin/);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('tollgate.adminToken')), ADMIN, 'kept for this tab only');

    // Create a key in the UI: the secret is shown once.
    await page.selectOption('#ck-tenant', 'acme');
    await page.selectOption('#ck-team', 'research');
    await page.fill('#ck-user', 'erin');
    await page.fill('#ck-name', 'browser demo');
    await page.fill('#ck-models', 'gpt-4o-mini');
    await page.click('#ck-submit');
    await page.waitForSelector('#secret-box:not([hidden])');
    const secret = ((await page.textContent('#secret-value')) ?? '').trim();
    assert.match(secret, /^tg-/);
    const row = page.locator('#keys-table tbody tr', { hasText: 'browser demo' });
    await row.waitFor();
    const keyId = (await row.getAttribute('data-key-id'))!;
    assert.match((await row.textContent()) ?? '', /active/);
    assert.match((await row.textContent()) ?? '', new RegExp(`…${secret.slice(-4)}`));
    await shot('keys');
    await page.click('#secret-done');
    assert.equal(await page.textContent('#secret-value'), '');

    // Use it with the OpenAI SDK through real Envoy.
    const client = new OpenAI({ apiKey: secret, baseURL: h.baseURL, maxRetries: 0 });
    const { data: done, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'Mail erin@example.com the report' }] })
      .withResponse();
    assert.ok(done.choices[0]);
    const rid = response.headers.get('x-request-id')!;
    const sent = JSON.stringify(h.fakes.openai!.requests.at(-1)!.body);
    assert.ok(!sent.includes('erin@example.com'), 'the email was masked before the provider');

    // Other traffic: a config key of another tenant, and this key asking for a model it may not use.
    await new OpenAI({ apiKey: KEYS.globex, baseURL: h.baseURL, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(client.chat.completions.create({ model: 'claude-sonnet', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.PermissionDeniedError);

    // Requests: the request with its decision (rules, route, redaction counts, cost).
    await page.click('#nav button[data-tab=requests]');
    const req = page.locator(`#requests-table tbody tr[data-request-id="${rid}"]`);
    for (let i = 0; i < 50 && !(await req.count()); i++) {
      await new Promise((r) => setTimeout(r, 100));
      await page.click('#rq-refresh');
    }
    const text = (await req.textContent()) ?? '';
    assert.match(text, new RegExp(keyId));
    assert.match(text, /200 success/);
    assert.match(text, /fake-openai → gpt-4o-mini/);
    assert.match(text, /console-demo\/mask-emails: applied/);
    assert.match(text, /email ×1/);
    assert.match(text, /0\.000026/, 'cost: 12 in × $1/M + 7 out × $2/M');
    const denied = page.locator('#requests-table tbody tr', { hasText: '403 denied' });
    await denied.waitFor();
    assert.match((await denied.textContent()) ?? '', /claude-sonnet/);
    await shot('requests');

    // Spend by key: the chart and the table show this key's spend.
    await page.click('#nav button[data-tab=spend]');
    await page.selectOption('#sp-by', 'key');
    const spendRow = page.locator('#spend-table tbody tr', { hasText: keyId });
    await spendRow.waitFor();
    assert.match((await spendRow.textContent()) ?? '', /0\.000026/);
    assert.ok((await page.locator('#spend-chart svg rect').count()) >= 1, 'a bar in the chart');
    assert.match((await page.textContent('#spend-chart .legend')) ?? '', new RegExp(keyId));
    assert.match((await page.textContent('#spend-chart .legend')) ?? '', /test-globex/);
    await shot('spend');

    // Budgets: the team's USD budget and how much of it is used.
    await page.click('#nav button[data-tab=budgets]');
    const budget = page.locator('#budget-bars .budget', { hasText: 'console-demo/team-daily-usd — team:acme/research' });
    await budget.waitFor();
    assert.match((await budget.textContent()) ?? '', /\(2\.6%\)/);
    await shot('budgets');

    // Explain over the live bundle, with the managed key.
    await page.click('#nav button[data-tab=explain]');
    await page.fill('#ex-key', secret);
    await page.click('#explain-form button[type=submit]');
    await page.locator('#explain-out', { hasText: 'outcome' }).waitFor();
    const explained = JSON.parse((await page.textContent('#explain-out'))!) as { outcome: string; principal: { keyId: string } };
    assert.equal(explained.outcome, 'forwarded');
    assert.equal(explained.principal.keyId, keyId);
    await shot('explain');

    // Audit: the key's creation, by the admin token.
    await page.click('#nav button[data-tab=audit]');
    const audit = page.locator('#audit-table tbody tr', { hasText: keyId });
    for (let i = 0; i < 50 && !(await audit.count()); i++) {
      await new Promise((r) => setTimeout(r, 100));
      await page.click('#nav button[data-tab=audit]');
    }
    assert.match((await audit.first().textContent()) ?? '', /key\.create.*admin-token/);
    await shot('audit');

    // Rotate from the UI (60 s overlap): a new secret is shown once; both work through Envoy for now.
    await page.click('#nav button[data-tab=keys]');
    page.once('dialog', (d) => void d.accept('60'));
    await page.locator(`#keys-table tbody tr[data-key-id="${keyId}"] button`, { hasText: 'Rotate' }).click();
    await page.locator('#secret-value', { hasText: /^tg-/ }).waitFor();
    const rotated = ((await page.textContent('#secret-value')) ?? '').trim();
    assert.notEqual(rotated, secret);
    await page.click('#secret-done');
    assert.match((await page.locator(`#keys-table tbody tr[data-key-id="${keyId}"]`).textContent()) ?? '', /\(until /);
    const viaRotated = new OpenAI({ apiKey: rotated, baseURL: h.baseURL, maxRetries: 0 });
    await viaRotated.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

    // Revoke from the UI: both secrets stop working through Envoy.
    page.once('dialog', (d) => void d.accept());
    await page.locator(`#keys-table tbody tr[data-key-id="${keyId}"] button.danger`).click();
    await page.locator(`#keys-table tbody tr[data-key-id="${keyId}"]`).waitFor({ state: 'detached' });
    for (const c of [client, viaRotated])
      await assert.rejects(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);

    assert.deepEqual(cspErrors, [], 'no CSP violations');
  });
});
