// JSON-RPC parsing of MCP POST bodies and the SSE event rewriter: never a crash, precise errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argumentsOf, classify, parseBody, RPC, toolOf } from '../../service/mcp/jsonrpc.ts';
import { SseRewriter } from '../../service/mcp/sse.ts';
import { filterTools, redactResult } from '../../service/mcp/results.ts';

describe('MCP JSON-RPC parsing', () => {
  it('a single request, notification and response are told apart', () => {
    const r = parseBody('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}');
    assert.ok(r.ok && !r.batch);
    const m = r.messages[0]!;
    assert.equal(m.kind, 'request');
    assert.equal(toolOf(m), 'echo');
    assert.deepEqual(argumentsOf(m), { text: 'hi' });
    assert.equal(classify({ jsonrpc: '2.0', method: 'notifications/initialized' }).kind, 'notification');
    assert.equal(classify({ jsonrpc: '2.0', id: 'x', result: {} }).kind, 'response');
    assert.equal(classify({ jsonrpc: '2.0', id: null, error: { code: -1, message: 'm' } }).kind, 'response');
  });

  it('a batch keeps every message in order, invalid ones included', () => {
    const r = parseBody(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', method: 'notifications/cancelled' }, 42, { jsonrpc: '1.0', id: 3, method: 'x' }]));
    assert.ok(r.ok && r.batch);
    assert.deepEqual(r.messages.map((m) => m.kind), ['request', 'notification', 'invalid', 'invalid']);
    const bad = r.messages[3]!;
    assert.ok(bad.kind === 'invalid' && bad.id === 3 && /jsonrpc must be "2.0"/.test(bad.why));
  });

  it('malformed JSON is a parse error (-32700), an empty batch an invalid request (-32600), never a throw', () => {
    for (const body of ['{"jsonrpc":', '', 'nul', '\u0000\u0001', '{"a":1}}']) {
      const r = parseBody(body);
      assert.ok(!r.ok && r.code === RPC.PARSE_ERROR, body);
    }
    const e = parseBody('[]');
    assert.ok(!e.ok && e.code === RPC.INVALID_REQUEST);
    assert.ok(parseBody(Buffer.from([0xff, 0xfe, 0x7b])).ok === false);
  });

  it('wrong shapes are invalid with a reason: params not an object, bad id, empty method', () => {
    assert.match((classify({ jsonrpc: '2.0', id: 1, method: 'm', params: [1] }) as { why: string }).why, /params/);
    assert.match((classify({ jsonrpc: '2.0', id: { x: 1 }, method: 'm' }) as { why: string }).why, /id must be/);
    assert.match((classify({ jsonrpc: '2.0', id: 1, method: '' }) as { why: string }).why, /empty/);
    assert.equal(classify({ jsonrpc: '2.0', id: 1 }).kind, 'invalid');
    assert.equal(toolOf(classify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })), '');
    assert.deepEqual(argumentsOf(classify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: 'str' } })), {});
  });
});

describe('MCP SSE rewriter', () => {
  it('rewrites whole events whatever the chunk boundaries (CRLF split included) and flushes the tail', () => {
    const seen: string[] = [];
    const w = new SseRewriter((e) => {
      seen.push(e.data ?? '');
      return e.data === 'drop' ? null : { ...e, data: (e.data ?? '').toUpperCase() };
    });
    const text = 'event: message\r\ndata: {"a":1}\r\n\r\ndata: drop\n\nid: 9\ndata: line1\ndata: line2\n\ndata: tail';
    let out = '';
    for (let i = 0; i < text.length; i += 3) out += w.push(Buffer.from(text.slice(i, i + 3)), false).toString();
    out += w.push(Buffer.alloc(0), true).toString();
    assert.deepEqual(seen, ['{"a":1}', 'drop', 'line1\nline2', 'tail']);
    assert.equal(out, 'event: message\ndata: {"A":1}\n\nid: 9\ndata: LINE1\ndata: LINE2\n\ndata: TAIL\n\n');
  });

  it('a multi-byte character split across chunks survives', () => {
    const w = new SseRewriter((e) => e);
    const b = Buffer.from('data: "café ✓"\n\n');
    const out = Buffer.concat([w.push(b.subarray(0, 11), false), w.push(b.subarray(11), true)]).toString();
    assert.equal(out, 'data: "café ✓"\n\n');
  });
});

describe('MCP results', () => {
  it('tools/list keeps only visible tools; a nameless tool is hidden', () => {
    const r = filterTools({ tools: [{ name: 'a' }, { name: 'b' }, { title: 'no name' }], nextCursor: 'c' }, (n) => n === 'a');
    assert.deepEqual(r, { result: { tools: [{ name: 'a' }], nextCursor: 'c' }, hidden: 2 });
    assert.deepEqual(filterTools({ other: 1 }, () => false), { result: { other: 1 }, hidden: 0 });
  });

  it('result redaction rewrites content strings, never structure', () => {
    const out = redactResult({ content: [{ type: 'text', text: 'x@y.z' }], structuredContent: { mail: 'x@y.z', n: 1 }, isError: false }, (s) => s.replace('x@y.z', '[EMAIL]'));
    assert.deepEqual(out, { content: [{ type: 'text', text: '[EMAIL]' }], structuredContent: { mail: '[EMAIL]', n: 1 }, isError: false });
  });
});
