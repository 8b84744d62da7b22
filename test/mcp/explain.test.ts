// `tollgate explain --path /mcp/<server>`: the real MCP request path on the shipped config, nothing sent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explain } from '../../service/cli/explain.ts';

const KEY = 'tg-demo-acme-research-0000000000000001';
const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('tollgate explain for MCP', () => {
  it('a denied tool call: answered by Tollgate with the JSON-RPC error naming the rule', async () => {
    const out = await explain({ dir: 'policies', key: KEY, path: '/mcp/demo', body: body({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_repo', arguments: { repo: 'x' } } }) });
    assert.equal(out.outcome, 'answered by Tollgate');
    const res = out.response as { status: number; body: { error: { code: number; data: { rule: string } } } };
    assert.equal(res.body.error.code, -32001);
    assert.equal(res.body.error.data.rule, 'mcp-tools/no-destructive-tools');
  });

  it('an allowed call: the forwarded body has the e-mail masked; send_email is exempt and counted', async () => {
    const echo = await explain({ dir: 'policies', key: KEY, path: '/mcp/demo', body: body({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { text: 'cc jane@example.com' } } }) });
    assert.equal(echo.outcome, 'forwarded');
    const eb = (echo.upstream as { body: { params: { arguments: { text: string } } } }).body;
    assert.equal(eb.params.arguments.text, 'cc [EMAIL_1]');
    const out = await explain({
      dir: 'policies',
      key: KEY,
      path: '/mcp/demo',
      body: body({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'send_email', arguments: { to: 'bob@acme.example', subject: 'hi', body: 'cc jane@example.com' } } }),
    });
    assert.equal(out.outcome, 'forwarded');
    const up = out.upstream as { headers: Record<string, string>; body: unknown };
    assert.equal(up.headers['x-tollgate-cluster'], 'mcp_demo');
    assert.equal(up.headers[':path'], '/mcp');
    assert.equal(up.body, 'unchanged', 'send_email is exempt from mask-pii-in-tools');
    const call = (out.calls as { decision: { labels: Record<string, string>; budgets: { name: string }[] } }[])[0]!;
    assert.equal(call.decision.labels.mcp_tool, 'send_email');
    assert.deepEqual(call.decision.budgets.map((b) => b.name), ['mcp-tools/send-email-hourly']);
  });
});
