// MCP governance end to end: the official MCP TypeScript SDK client → real Envoy (shipped envoy.yaml,
// `mcp_demo` cluster) → Tollgate (mcp* policy rules) → the demo MCP server (official SDK server),
// which records what it received.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startDemoMcpServer, type DemoMcpServer } from '../../service/mcp/demo-server.ts';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { KEYS, eventually, signJwt, startHarness, type Harness } from '../support/harness.ts';

const UPSTREAM_TOKEN = 'mcp-upstream-secret-0123456789';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: McpServer
metadata: {name: demo}
spec:
  cluster: mcp_demo
  host: mcp-demo.internal
  path: /mcp
  credential: {env: TG_TEST_MCP_TOKEN}
---
apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: mcp-tools}
spec:
  rules:
    - name: no-destructive-tools
      mcpTools: {deny: ["delete_*"]}
    - name: globex-read-only
      when: principal.tenant == 'globex'
      mcpTools: {allow: ["demo/echo", "demo/countdown"]}
    - name: short-countdowns
      mcpRequire:
        expression: "mcp.tool != 'countdown' || double(mcp.arguments['from']) <= 5.0"
        message: countdown may start at 5 at most
    - name: mask-emails
      mcpRedact: {detectors: [email], action: mask, results: true}
    - name: support-echo-limit
      when: principal.team == 'support' && mcp.tool == 'echo'
      mcpRateLimit: {scope: key, calls: 2, window: minute}
    - name: tag
      mcpLabel: {mcp_tool: "mcp.tool"}
`;

async function connect(h: Harness, key: string, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp/demo`), {
    requestInit: { headers: { authorization: `Bearer ${key}`, ...headers } },
  });
  const client = new Client({ name: 'tollgate-e2e', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

function mcpRecords(h: Harness, pred: (r: LineageRecord) => boolean): LineageRecord[] {
  return h.lineage.filter((r) => r.mcp && pred(r));
}

async function recordFor(h: Harness, pred: (r: LineageRecord) => boolean): Promise<LineageRecord> {
  await eventually(() => mcpRecords(h, pred).length > 0);
  return mcpRecords(h, pred).at(-1)!;
}

describe('e2e: MCP through a real Envoy with the official MCP SDK', { timeout: 90000 }, () => {
  let h: Harness;
  let demo: DemoMcpServer;
  before(async () => {
    process.env.TG_TEST_MCP_TOKEN = UPSTREAM_TOKEN;
    demo = await startDemoMcpServer({ token: UPSTREAM_TOKEN });
    h = await startHarness({ extraYaml: POLICY, envoy: { clusters: { mcp_demo: { host: '127.0.0.1', port: demo.port } } } });
  });
  after(async () => {
    await h?.close();
    await demo?.close();
  });

  it('initialize: the session is set up through Envoy with the server credential, never the virtual key', async () => {
    const client = await connect(h, KEYS.acme);
    try {
      assert.equal(client.getServerVersion()?.name, 'tollgate-demo');
      const init = demo.requests.find((r) => r.method === 'POST');
      assert.equal(init?.authorization, `Bearer ${UPSTREAM_TOKEN}`, 'the McpServer credential is injected');
      assert.ok(!JSON.stringify(demo.requests).includes(KEYS.acme), 'the virtual key never reaches the MCP server');
      const rec = await recordFor(h, (r) => r.mcp!.method === 'initialize');
      assert.equal(rec.outcome, 'success');
      assert.equal(rec.mcp!.server, 'demo');
      assert.equal(rec.principal.keyId, 'test-acme');
      assert.match(rec.mcp!.sessionId ?? '', /^[0-9a-f-]{36}$/, 'linked to the session the server created');
      await recordFor(h, (r) => r.mcp!.method === 'notifications/initialized');
    } finally {
      await client.close();
    }
  });

  it("the server's GET SSE stream passes through and is recorded when it ends", async () => {
    const gets = demo.requests.filter((r) => r.method === 'GET').length;
    const client = await connect(h, KEYS.acme);
    await eventually(() => demo.requests.filter((r) => r.method === 'GET').length > gets);
    await client.close();
    const rec = await recordFor(h, (r) => r.mcp!.method === 'stream/open');
    assert.ok(['aborted', 'success'].includes(rec.outcome), rec.outcome);
    assert.match(rec.mcp!.sessionId ?? '', /^[0-9a-f-]{36}$/);
  });

  it('tools/list is filtered per caller: two keys see different tools', async () => {
    const acme = await connect(h, KEYS.acme);
    const globex = await connect(h, KEYS.globex);
    try {
      const a = (await acme.listTools()).tools.map((t) => t.name).sort();
      const g = (await globex.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(a, ['countdown', 'echo', 'lookup_customer', 'send_email'], 'delete_repo is invisible');
      assert.deepEqual(g, ['countdown', 'echo'], 'globex sees only its allow list');
      const rec = await recordFor(h, (r) => r.mcp!.method === 'tools/list' && r.principal.tenant === 'globex');
      assert.equal(rec.mcp!.hiddenTools, 3);
      assert.equal(rec.outcome, 'success');
    } finally {
      await acme.close();
      await globex.close();
    }
  });

  it('SSO JWTs verified by Envoy identify MCP callers too (claims → tenant), a forged one never reaches Tollgate', async () => {
    const jwt = signJwt({ sub: 'dave', tenant: 'globex', team: 'default' });
    const client = await connect(h, jwt);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['countdown', 'echo']);
      const rec = await recordFor(h, (r) => r.mcp!.method === 'tools/list' && r.principal.authMethod === 'jwt');
      assert.equal(rec.principal.user, 'dave');
      assert.equal(rec.principal.tenant, 'globex');
    } finally {
      await client.close();
    }
    await assert.rejects(() => connect(h, signJwt({ sub: 'eve', tenant: 'acme' }, 'wrong-secret')));
  });

  it('an allowed tool call reaches the server; a denied one is a JSON-RPC error naming the rule', async () => {
    const client = await connect(h, KEYS.acme, { 'x-tollgate-parent-request-id': 'chatcmpl-parent-0001' });
    try {
      const ok = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
      assert.deepEqual(ok.content, [{ type: 'text', text: 'hello' }]);
      const before = demo.calls.length;
      await assert.rejects(
        () => client.callTool({ name: 'delete_repo', arguments: { repo: 'acme/app' } }),
        (err: unknown) => {
          assert.ok(err instanceof McpError, String(err));
          assert.equal(err.code, -32001);
          assert.match(err.message, /no-destructive-tools/);
          assert.deepEqual((err.data as { rule?: string }).rule, 'mcp-tools/no-destructive-tools');
          return true;
        },
      );
      assert.equal(demo.calls.length, before, 'the denied call never reached the server');
      assert.ok(!demo.calls.some((c) => c.tool === 'delete_repo'));

      const allowed = await recordFor(h, (r) => r.mcp!.tool === 'echo' && r.principal.tenant === 'acme');
      assert.equal(allowed.outcome, 'success');
      assert.equal(allowed.mcp!.parentRequestId, 'chatcmpl-parent-0001', 'linked to the LLM request that led to it');
      assert.equal(allowed.policy?.labels?.mcp_tool, 'echo');
      assert.ok(!demo.requests.some((r) => r.parentRequestId), 'Tollgate headers never reach the server');
      const denied = await recordFor(h, (r) => r.mcp!.tool === 'delete_repo');
      assert.equal(denied.outcome, 'denied');
      assert.equal(denied.mcp!.rpcErrorCode, -32001);
      assert.ok(denied.policy?.rules?.some((x) => x.rule === 'no-destructive-tools' && x.outcome === 'deny'));
      // Metrics: MCP calls are counted on their own, never as LLM requests.
      await new Promise((r) => setImmediate(r));
      const metrics = await (await fetch(`http://127.0.0.1:${h.tollgate.httpPort}/metrics`)).text();
      assert.match(metrics, /tollgate_mcp_calls_total\{server="demo",method="tools\/call",tool="delete_repo",tenant="acme",decision="denied"\} 1/);
      assert.match(metrics, /tollgate_mcp_calls_total\{server="demo",method="tools\/call",tool="echo",tenant="acme",decision="success"\} \d/);
      assert.doesNotMatch(metrics, /tollgate_requests_total\{[^}]*\} /, 'no LLM request was counted');
    } finally {
      await client.close();
    }
  });

  it('an e-mail in a tool argument is masked before the server sees it, and in the result', async () => {
    const client = await connect(h, KEYS.acme);
    try {
      const res = await client.callTool({ name: 'send_email', arguments: { to: 'jane.doe@example.com', subject: 'Invoice', body: 'cc bob@example.org please' } });
      const got = demo.calls.findLast((c) => c.tool === 'send_email')!;
      assert.ok(got, 'the call reached the server');
      assert.ok(!JSON.stringify(got.arguments).includes('@example.'), `server saw ${JSON.stringify(got.arguments)}`);
      assert.equal(got.arguments.subject, 'Invoice', 'other arguments untouched');
      assert.ok(!JSON.stringify(res.content).includes('@example.'), 'the echoed address in the result is masked too');

      const lookup = await client.callTool({ name: 'lookup_customer', arguments: { id: 'c-42' } });
      const text = (lookup.content as { text: string }[])[0]!.text;
      assert.match(text, /^customer c-42: Jane Roe, /);
      assert.ok(!text.includes('jane.roe@example.com'), `result redacted: ${text}`);

      const rec = await recordFor(h, (r) => r.mcp!.tool === 'send_email');
      const req = rec.redactions?.filter((x) => x.direction === 'request' && x.detector === 'email') ?? [];
      assert.equal(req.reduce((n, x) => n + x.count, 0), 2);
      assert.ok(req.some((x) => x.locations?.includes('arguments.to')), JSON.stringify(req));
      assert.ok(!JSON.stringify(rec).includes('jane.doe@example.com'), 'lineage never holds the value');
      const lr = await recordFor(h, (r) => r.mcp!.tool === 'lookup_customer');
      assert.ok(lr.redactions?.some((x) => x.direction === 'response' && x.detector === 'email' && x.count === 1));
    } finally {
      await client.close();
    }
  });

  it('argument requirements: a call outside them is refused with the rule message', async () => {
    const client = await connect(h, KEYS.acme);
    try {
      await assert.rejects(
        () => client.callTool({ name: 'countdown', arguments: { from: 9 } }),
        (err: unknown) => err instanceof McpError && err.code === -32001 && /countdown may start at 5 at most/.test(err.message),
      );
    } finally {
      await client.close();
    }
  });

  it('per-tool call-count limit: the third echo in a minute is a JSON-RPC rate-limit error', async () => {
    const client = await connect(h, KEYS.acmeSupport);
    try {
      await client.callTool({ name: 'echo', arguments: { text: '1' } });
      await client.callTool({ name: 'echo', arguments: { text: '2' } });
      const seen = demo.calls.length;
      await assert.rejects(
        () => client.callTool({ name: 'echo', arguments: { text: '3' } }),
        (err: unknown) => err instanceof McpError && err.code === -32002 && (err.data as { rule?: string }).rule === 'mcp-tools/support-echo-limit',
      );
      assert.equal(demo.calls.length, seen, 'the refused call never reached the server');
      // Other tools are not limited by the echo rule.
      await client.callTool({ name: 'countdown', arguments: { from: 1 } });
      const rec = await recordFor(h, (r) => r.outcome === 'rate_limited');
      assert.equal(rec.mcp!.tool, 'echo');
      assert.equal(rec.mcp!.rpcErrorCode, -32002);
      assert.ok(rec.budgets?.some((b) => b.name === 'mcp-tools/support-echo-limit' && b.unit === 'requests' && b.exceeded));
    } finally {
      await client.close();
    }
  });

  it('streamed (SSE) results: progress notifications and the result arrive through Envoy', async () => {
    const client = await connect(h, KEYS.globex);
    try {
      const progress: number[] = [];
      const res = await client.callTool({ name: 'countdown', arguments: { from: 4 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
      assert.deepEqual(res.content, [{ type: 'text', text: 'liftoff' }]);
      assert.deepEqual(progress, [1, 2, 3, 4]);
      const rec = await recordFor(h, (r) => r.mcp!.tool === 'countdown' && r.principal.tenant === 'globex');
      assert.equal(rec.outcome, 'success');
    } finally {
      await client.close();
    }
    // The same over plain HTTP: the answer is an SSE stream that leaves Envoy event by event (a
    // buffered body would deliver every event at once, after the last step).
    const headers = { authorization: `Bearer ${KEYS.globex}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(`${h.url}/mcp/demo`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(init.status, 200);
    assert.match(init.headers.get('content-type') ?? '', /text\/event-stream/);
    const session = init.headers.get('mcp-session-id') ?? '';
    assert.ok(session, 'the session id header reaches the client');
    const events = sseData(await init.text());
    assert.equal((events[0] as { result: { serverInfo: { name: string } } }).result.serverInfo.name, 'tollgate-demo');
    const sh = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    await (await fetch(`${h.url}/mcp/demo`, { method: 'POST', headers: sh, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    const call = await fetch(`${h.url}/mcp/demo`, {
      method: 'POST',
      headers: sh,
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { from: 5 }, _meta: { progressToken: 'p' } } }),
    });
    const arrivals: number[] = [];
    let text = '';
    const reader = call.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now());
      text += Buffer.from(value).toString('utf8');
    }
    const got = sseData(text) as { method?: string; result?: { content: unknown } }[];
    assert.equal(got.filter((e) => e.method === 'notifications/progress').length, 5);
    assert.deepEqual(got.at(-1)!.result!.content, [{ type: 'text', text: 'liftoff' }]);
    assert.ok(arrivals.length >= 3 && arrivals.at(-1)! - arrivals[0]! >= 40, `events arrived over time: ${arrivals.map((t) => t - arrivals[0]!).join(',')} ms`);
  });
});

/** The JSON `data` of every SSE event in a body. */
function sseData(text: string): unknown[] {
  return text
    .split(/\n\n/)
    .map((block) => block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n'))
    .filter((d) => d)
    .map((d) => JSON.parse(d) as unknown);
}

describe('e2e: MCP JSON-RPC edge cases through a real Envoy', { timeout: 60000 }, () => {
  let h: Harness;
  let demo: DemoMcpServer;
  /** The same tools answering with plain JSON (buffered answers instead of SSE). */
  let json: DemoMcpServer;
  const post = (body: string, key = KEYS.acme, session?: string) =>
    fetch(`${h.url}/mcp/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(session ? { 'mcp-session-id': session } : {}) },
      body,
    });
  before(async () => {
    process.env.TG_TEST_MCP_TOKEN = UPSTREAM_TOKEN;
    demo = await startDemoMcpServer({ token: UPSTREAM_TOKEN });
    json = await startDemoMcpServer({ json: true });
    const jsonServer = `---
apiVersion: tollgate.dev/v1alpha1
kind: McpServer
metadata: {name: demojson}
spec: {cluster: mcp_json, host: mcp-json.internal, credential: {none: true}}
`;
    h = await startHarness({
      extraYaml: POLICY + jsonServer,
      envoy: { clusters: { mcp_demo: { host: '127.0.0.1', port: demo.port }, mcp_json: { host: '127.0.0.1', port: json.port, template: 'mcp_demo' } } },
    });
  });
  after(async () => {
    await h?.close();
    await demo?.close();
    await json?.close();
  });

  it('JSON (non-SSE) answers: tools/list filtered and results redacted in the buffered body', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp/demojson`), { requestInit: { headers: { authorization: `Bearer ${KEYS.acme}` } } });
    const client = new Client({ name: 'json', version: '1' });
    await client.connect(transport);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(tools, ['countdown', 'echo', 'lookup_customer', 'send_email']);
      const res = await client.callTool({ name: 'lookup_customer', arguments: { id: 'c-1' } });
      assert.doesNotMatch(JSON.stringify(res.content), /jane\.roe@example\.com/);
      await client.callTool({ name: 'echo', arguments: { text: 'mail ann@example.net' } });
      assert.doesNotMatch(JSON.stringify(json.calls.at(-1)!.arguments), /ann@example\.net/);
      // DELETE ends the session: judged and recorded like any message.
      await transport.terminateSession();
      const del = await recordFor(h, (r) => r.mcp!.method === 'session/delete');
      assert.equal(del.outcome, 'success');
      assert.equal(del.mcp!.server, 'demojson');
      assert.ok(json.requests.some((r) => r.method === 'DELETE'));
      assert.ok(!json.requests.some((r) => r.authorization), 'no credential configured: none is sent, the virtual key neither');
    } finally {
      await client.close();
    }
  });

  it('malformed JSON is a JSON-RPC parse error (-32700), recorded, never forwarded', async () => {
    const before = demo.requests.length;
    const res = await post('{"jsonrpc": "2.0", "id": 1, "method": ');
    assert.equal(res.status, 400);
    const body = (await res.json()) as { jsonrpc: string; id: null; error: { code: number } };
    assert.deepEqual({ jsonrpc: body.jsonrpc, id: body.id, code: body.error.code }, { jsonrpc: '2.0', id: null, code: -32700 });
    assert.equal(demo.requests.length, before);
    const rec = await recordFor(h, (r) => r.mcp!.rpcErrorCode === -32700);
    assert.equal(rec.outcome, 'client_error');
  });

  it('a batch with a denied call is refused whole, one error per request, one record per message', async () => {
    const before = demo.requests.length;
    const res = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } },
        { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'delete_repo', arguments: { repo: 'r' } } },
        { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'z' } },
      ]),
      KEYS.acme,
      'no-such-session',
    );
    assert.equal(res.status, 200);
    const out = (await res.json()) as { id: string; error: { code: number; message: string } }[];
    assert.deepEqual(out.map((x) => [x.id, x.error.code]), [['a', -32001], ['b', -32001]]);
    assert.match(out[1]!.error.message, /no-destructive-tools/);
    assert.match(out[0]!.error.message, /Batch refused/);
    assert.equal(demo.requests.length, before, 'nothing of the batch was forwarded');
    await eventually(() => mcpRecords(h, (r) => r.mcp!.batchSize === 3).length === 3);
  });

  it('an unauthenticated client gets HTTP 401 with a JSON-RPC error body', async () => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), 'tg-not-a-real-key-000000000000000000000');
    assert.equal(res.status, 401);
    const body = (await res.json()) as { jsonrpc: string; error: { code: number } };
    assert.equal(body.jsonrpc, '2.0');
    assert.equal(body.error.code, -32003);
  });

  it('an unknown MCP server is a 404', async () => {
    const res = await fetch(`${h.url}/mcp/nope`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { jsonrpc: string; error: { message: string; data: { code: string } } };
    assert.equal(body.jsonrpc, '2.0');
    assert.equal(body.error.data.code, 'unknown_mcp_server');
    assert.match(body.error.message, /No MCP server is configured at \/mcp\/nope/);
  });
});
