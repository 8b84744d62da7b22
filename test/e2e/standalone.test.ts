// `npm start` as the README says: the real command (npm → prestart build → bin/tollgate.js run → dist/),
// on a machine with no provider credential. Envoy (the pinned binary under test) in front of Tollgate,
// the mock provider answering. The README's curl (its exact headers and body, read from README.md), the
// OpenAI SDK streaming and the Anthropic SDK get answers through Envoy, policies, redaction, budgets and
// lineage; SIGTERM stops everything, Envoy included.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { REPO_ROOT } from '../../service/envoy/provision.ts';
import { testEnvoyBinary } from '../support/envoy.ts';

const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;

/** The README's Quick start curl under `npm start`: URL, headers and body, exactly as written. */
function readmeCurl(): { url: URL; headers: Record<string, string>; body: string } {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const joined = readme.replace(/\\\n\s*/g, ' ');
  const line = joined.split('\n').find((l) => /^curl http:\/\/127\.0\.0\.1:8080\//.test(l.trim()));
  assert.ok(line, 'README.md has a `curl http://127.0.0.1:8080/…` line for npm start');
  const url = new URL(/^curl (\S+)/.exec(line.trim())![1]!);
  const headers: Record<string, string> = {};
  for (const m of line.matchAll(/-H '([^:']+):\s*([^']*)'/g)) headers[m[1]!.toLowerCase()] = m[2]!;
  const body = /-d '([^']*)'/.exec(line)?.[1];
  assert.ok(body, 'the README curl sends a body');
  return { url, headers, body };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start: the standalone gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-standalone-'));
  const lineageFile = join(dir, 'lineage.jsonl');
  let child: ChildProcess;
  let out = '';
  let err = '';
  let exited: Promise<number | null>;
  let gateway = '';
  let metrics = '';
  let envoyPid = 0;
  let demoKey = '';
  let adminToken = '';

  before(async () => {
    const envoy = await testEnvoyBinary();
    const env: NodeJS.ProcessEnv = { ...process.env };
    // A fresh machine: no provider credential, no config or listener overrides, no Redis.
    for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'AZURE_OPENAI_API_KEY', 'TOLLGATE_MOCK_KEY', 'TOLLGATE_CONFIG', 'TOLLGATE_LISTEN_ADDR', 'REDIS_URL', 'TOLLGATE_LINEAGE'])
      delete env[k];
    Object.assign(env, {
      ENVOY_BIN: envoy.path,
      TOLLGATE_HTTP_ADDR: '127.0.0.1:0',
      TOLLGATE_LINEAGE: `file:${lineageFile}`,
      TOLLGATE_SPOOL_DIR: join(dir, 'spool'),
      TOLLGATE_DRAIN_MS: '2000',
    });
    // Its own process group, so a failed test can still kill npm, node and Envoy together.
    child = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!/Ctrl-C stops/.test(out)) {
      if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}) before the banner:\n${out}\n${err}`);
      if (Date.now() > deadline) throw new Error(`no banner within ${START_TIMEOUT_MS} ms:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    gateway = /LLM endpoint\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out)![1]!;
    metrics = /metrics\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out)![1]!;
    envoyPid = Number(/envoy admin\s+\S+\s+\(pid (\d+)\)/.exec(out)![1]);
    demoKey = /demo key\s+(tg-\S+)/.exec(out)![1]!;
    adminToken = /console\s+\S+\s+\(admin token (tg-admin-[0-9a-f]+)\)/.exec(out)![1]!;
  });

  after(async () => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* the group is gone: the SIGTERM test stopped it */
      }
    }
    if (envoyPid && alive(envoyPid)) process.kill(envoyPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a banner: endpoint, demo key, metrics, lineage, and the models the mock answers', () => {
    assert.match(out, /LLM endpoint\s+http:\/\/127\.0\.0\.1:\d+\/v1/);
    assert.equal(demoKey, 'tg-demo-acme-research-0000000000000001');
    assert.match(out, new RegExp(`lineage\\s+${lineageFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(out, /mock provider\s+answers gpt-4o-mini, .*claude-sonnet.*: no credential set \(OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY\)/);
    assert.ok(alive(envoyPid), 'the Envoy pid in the banner is running');
  });

  it("the README's curl gets a chat completion through Envoy, with request id and budget headers", async () => {
    const curl = readmeCurl();
    assert.equal(curl.headers.authorization, `Bearer ${demoKey}`, 'the README uses the demo key the banner prints');
    const res = await fetch(`${gateway}${curl.url.pathname}`, { method: 'POST', headers: curl.headers, body: curl.body, signal: AbortSignal.timeout(15000) });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get('server'), 'envoy');
    const rid = res.headers.get('x-request-id');
    assert.match(rid ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('x-tollgate-provider'), 'mock');
    assert.ok(Number(res.headers.get('x-tollgate-budget-remaining-usd')) > 0, 'budget headers');
    assert.ok(res.headers.get('x-tollgate-budget-limit-usd'));
    const body = JSON.parse(text);
    assert.equal(body.object, 'chat.completion');
    assert.match(body.choices[0].message.content, /mock provider for gpt-4o-mini.*You said: "hi"/);
    assert.ok(body.usage.total_tokens > 0);
    // Lineage (the file the banner names) records it, served by the mock.
    const deadline = Date.now() + 5000;
    let rec: { served?: { provider: string }; costUsd?: number } | undefined;
    while (!rec && Date.now() < deadline) {
      if (existsSync(lineageFile))
        rec = readFileSync(lineageFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.requestId === rid);
      if (!rec) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(rec, 'a lineage record for the request');
    assert.equal(rec.served?.provider, 'mock');
    assert.ok((rec.costUsd ?? 0) > 0, 'charged at the model price');
  });

  it('redaction happens before the mock sees the prompt', async () => {
    const res = await fetch(`${gateway}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail me at jane.doe@example.com' }] }),
      signal: AbortSignal.timeout(15000),
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.equal(res.status, 200);
    assert.match(body.choices[0]!.message.content, /You said: "mail me at \[EMAIL_1\]"/);
    assert.doesNotMatch(body.choices[0]!.message.content, /jane\.doe/);
  });

  it('the OpenAI SDK streams an answer with usage', async () => {
    const client = new OpenAI({ baseURL: `${gateway}/v1`, apiKey: demoKey, maxRetries: 0, timeout: 15000 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream please' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.match(text, /You said: "stream please"/);
    assert.ok(usage && usage.completion_tokens > 0 && usage.prompt_tokens > 0);
  });

  it('the Anthropic SDK gets a message (and a stream)', async () => {
    const client = new Anthropic({ baseURL: gateway, apiKey: demoKey, maxRetries: 0, timeout: 15000 });
    const msg = await client.messages.create({ model: 'claude-sonnet', max_tokens: 100, messages: [{ role: 'user', content: 'bonjour' }] });
    const block = msg.content[0];
    assert.equal(block?.type, 'text');
    assert.match(block.type === 'text' ? block.text : '', /mock provider for claude-sonnet.*You said: "bonjour"/);
    assert.ok(msg.usage.output_tokens > 0);
    const stream = client.messages.stream({ model: 'claude-sonnet', max_tokens: 100, messages: [{ role: 'user', content: 'salut' }] });
    const final = await stream.finalMessage();
    assert.match(final.content[0]?.type === 'text' ? final.content[0].text : '', /You said: "salut"/);
    assert.ok(final.usage.output_tokens > 0);
  });

  it('serves health and metrics where the banner says', async () => {
    assert.equal((await fetch(`${metrics}/healthz`, { signal: AbortSignal.timeout(5000) })).status, 200);
    const m = await (await fetch(`${metrics}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    assert.match(m, /tollgate_/);
  });

  it('the console and admin API need the admin token the banner prints', async () => {
    const page = await fetch(`${metrics}/console`, { signal: AbortSignal.timeout(5000) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const anon = await fetch(`${metrics}/admin/v1/whoami`, { signal: AbortSignal.timeout(5000) });
    assert.equal(anon.status, 401, 'no admin API without a credential, even on loopback');
    const me = await fetch(`${metrics}/admin/v1/whoami`, { headers: { authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(me.status, 200, await me.text());
  });

  it('the demo MCP server answers at /mcp/demo with the demo key (MCP SDK client), under the MCP rules', async () => {
    assert.match(out, new RegExp(`MCP server\\s+${gateway.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/mcp/demo`));
    const client = new Client({ name: 'standalone-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${gateway}/mcp/demo`), {
      requestInit: { headers: { authorization: `Bearer ${demoKey}` } },
    });
    await client.connect(transport);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.length > 0, 'the demo server lists tools');
      const echo = tools.find((t) => /echo/.test(t));
      assert.ok(echo, `an echo tool among ${tools.join(', ')}`);
      const r = (await client.callTool({ name: echo, arguments: { text: 'mail me at jane.doe@example.com' } })) as { content: { type: string; text?: string }[] };
      const text = r.content.map((c) => c.text ?? '').join(' ');
      assert.doesNotMatch(text, /jane\.doe/, 'the email never reached the MCP server');
    } finally {
      await client.close();
    }
  });

  it('SIGTERM stops Tollgate and Envoy: npm exits 0, no Envoy process left', async () => {
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS))]);
    assert.equal(code, 0, `npm start exit: ${String(code)}\n${err.slice(-2000)}`);
    const deadline = Date.now() + 5000;
    while (alive(envoyPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(envoyPid), false, `envoy (pid ${envoyPid}) is still running`);
    await assert.rejects(fetch(`${gateway}/v1/models`, { signal: AbortSignal.timeout(2000) }), 'nothing listens on the gateway port');
  });
});
