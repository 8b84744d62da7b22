// The Envoy stand-in must reject what Envoy rejects, or it hides bugs. Each case drives it with a
// deliberately misbehaving processor and checks Envoy's documented reaction.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { startStandin, type Standin } from '../support/standin.ts';

type Behaviour = (m: ProcessingRequest) => ProcessingResponse | null;

const raw = (v: string) => Buffer.from(v);
const route = { header_mutation: { set_headers: [{ header: { key: 'x-tollgate-cluster', raw_value: raw('up') } }] }, clear_route_cache: true };

async function startProcessor(behaviour: Behaviour): Promise<{ addr: string; close(): void }> {
  const server = new grpc.Server();
  server.addService(extProcService(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      call.on('data', (m: ProcessingRequest) => {
        const r = behaviour(m);
        if (r) call.write(r);
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { addr: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

describe('Envoy stand-in strictness', { timeout: 30000 }, () => {
  let upstream: http.Server;
  let upstreamPort = 0;
  const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  before(async () => {
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });
  after(() => upstream.close());

  async function run(behaviour: Behaviour, opts: Partial<Parameters<typeof startStandin>[0]> = {}) {
    const p = await startProcessor(behaviour);
    const s: Standin = await startStandin({ extProcAddr: p.addr, clusters: { up: { host: '127.0.0.1', port: upstreamPort } }, messageTimeoutMs: 2000, ...opts });
    try {
      const res = await fetch(`${s.url}/v1/x`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
      return { status: res.status, text: await res.text(), events: s.events, exchange: s.exchanges.at(-1)! };
    } finally {
      await s.close();
      p.close();
    }
  }

  /** Like run(), but the behaviour may answer later through `reply`. */
  async function runAsync(
    behaviour: (m: ProcessingRequest, reply: (r: ProcessingResponse) => void) => ProcessingResponse | null,
    opts: Partial<Parameters<typeof startStandin>[0]> = {},
  ) {
    const server = new grpc.Server();
    server.addService(extProcService(), {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        call.on('data', (m: ProcessingRequest) => {
          const r = behaviour(m, (late) => call.write(late));
          if (r) call.write(r);
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const s: Standin = await startStandin({ extProcAddr: `127.0.0.1:${port}`, clusters: { up: { host: '127.0.0.1', port: upstreamPort } }, ...opts });
    try {
      const res = await fetch(`${s.url}/v1/x`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
      return { status: res.status, text: await res.text(), events: s.events };
    } finally {
      await s.close();
      server.forceShutdown();
    }
  }

  const ok: Behaviour = (m) => {
    if (m.request === 'request_headers') return { request_headers: { response: {} } };
    if (m.request === 'request_body') return { request_body: { response: route } };
    if (m.request === 'response_headers') return { response_headers: { response: {} } };
    if (m.request === 'response_body') return { response_body: { response: {} } };
    return null;
  };

  it('a well-behaved processor gets the request routed (control case)', async () => {
    const r = await run(ok);
    assert.equal(r.status, 200);
    assert.equal(r.exchange.cluster, 'up');
  });

  it('body changed without fixing content-length → 500 mismatch', async () => {
    const r = await run((m) =>
      m.request === 'request_body' ? { request_body: { response: { ...route, body_mutation: { body: raw('{"a":12345}') } } } } : ok(m),
    );
    assert.equal(r.status, 500);
    assert.match(r.exchange.localReplyDetails ?? '', /mismatch between content length/);
  });

  it('a reply of the wrong type is a spurious message → 500', async () => {
    const r = await run((m) => (m.request === 'request_headers' ? { request_body: { response: {} } } : ok(m)));
    assert.equal(r.status, 500);
    assert.ok(r.events.some((e) => e.kind === 'spurious'));
  });

  it('no reply within message_timeout → 504', async () => {
    const r = await run((m) => (m.request === 'request_body' ? null : ok(m)), { messageTimeoutMs: 300 });
    assert.equal(r.status, 504);
    assert.equal(r.exchange.localReplyDetails, 'ext_proc_error_per-message_timeout_exceeded');
  });

  it('override_message_timeout extends the wait for that message (with max_message_timeout set)', async () => {
    const slow = (m: ProcessingRequest, reply: (r: ProcessingResponse) => void): ProcessingResponse | null => {
      if (m.request !== 'request_body') return ok(m);
      setTimeout(() => reply(ok(m)!), 600);
      return { override_message_timeout: { seconds: 5 } };
    };
    const withMax = await runAsync(slow, { messageTimeoutMs: 200, maxMessageTimeoutMs: 10000 });
    assert.equal(withMax.status, 200);
    assert.ok(withMax.events.some((e) => e.kind === 'timeout_override'));
    const withoutMax = await runAsync(slow, { messageTimeoutMs: 200 });
    assert.equal(withoutMax.status, 504, 'without max_message_timeout the override is ignored');
    assert.ok(withoutMax.events.some((e) => e.kind === 'timeout_override_ignored'));
  });

  it('clear_route_cache without a header mutation is ignored (route stays unresolved → 503)', async () => {
    let first = true;
    const r = await run((m) => {
      if (m.request === 'request_headers') return { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-tollgate-cluster', raw_value: raw('up') } }] } } } };
      if (m.request === 'request_body' && first) {
        first = false;
        return { request_body: { response: { clear_route_cache: true } } };
      }
      return ok(m);
    });
    assert.equal(r.status, 503, 'headers-phase mutation without clear_route_cache does not re-route');
    assert.ok(r.events.some((e) => e.kind === 'clear_route_cache_ignored'));
  });

  it('a value-only header mutation writes an empty header (Envoy reads raw_value only)', async () => {
    seen.length = 0;
    const r = await run((m) =>
      m.request === 'request_body'
        ? { request_body: { response: { ...route, header_mutation: { set_headers: [...route.header_mutation.set_headers, { header: { key: 'x-probe', value: 'hello' } }] } } } }
        : ok(m),
    );
    assert.equal(r.status, 200);
    assert.equal(seen.at(-1)!.headers['x-probe'], '');
  });

  it('setting host is refused by the default mutation rules', async () => {
    seen.length = 0;
    const r = await run((m) =>
      m.request === 'request_body'
        ? { request_body: { response: { ...route, header_mutation: { set_headers: [...route.header_mutation.set_headers, { header: { key: 'host', raw_value: raw('evil.example') } }] } } } }
        : ok(m),
    );
    assert.equal(r.status, 200);
    assert.ok(r.events.some((e) => e.kind === 'rejected_mutation' && /host/.test(e.detail)));
    assert.notEqual(seen.at(-1)!.headers.host, 'evil.example');
  });

  it('failure_mode_allow: a processor that stops answering on the response path is skipped, the response passes through', async () => {
    const r = await run((m) => (m.request === 'response_headers' ? null : ok(m)), { messageTimeoutMs: 300, failureModeAllow: true });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"ok":true}');
    assert.ok(r.events.some((e) => e.kind === 'timeout' && /failure_mode_allow/.test(e.detail)));
  });

  it('the same processor without failure_mode_allow → 504 (fail closed)', async () => {
    const r = await run((m) => (m.request === 'response_headers' ? null : ok(m)), { messageTimeoutMs: 300 });
    assert.equal(r.status, 504);
  });

  it('processor down → 500 (fail closed)', async () => {
    const s = await startStandin({ extProcAddr: '127.0.0.1:1', clusters: {}, messageTimeoutMs: 500 });
    try {
      const res = await fetch(`${s.url}/v1/x`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 500);
    } finally {
      await s.close();
    }
  });

  it('a body over the buffer limit → 413 before the processor sees it', async () => {
    const p = await startProcessor(ok);
    const s = await startStandin({ extProcAddr: p.addr, clusters: { up: { host: '127.0.0.1', port: upstreamPort } }, bufferLimitBytes: 1000 });
    try {
      const res = await fetch(`${s.url}/v1/x`, { method: 'POST', body: 'x'.repeat(5000) });
      assert.equal(res.status, 413);
      assert.deepEqual(s.exchanges.at(-1)!.sentToProcessor, []);
    } finally {
      await s.close();
      p.close();
    }
  });
});
