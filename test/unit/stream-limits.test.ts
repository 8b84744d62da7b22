// Issue #11 item 14: a direct gRPC client cannot hold unlimited streams, keep one open forever, or
// make Tollgate buffer a body larger than the configured limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { MutationBuilder } from '../../service/extproc/mutations.ts';
import type { EndReason, Exchange } from '../../service/extproc/processor.ts';
import { extProcClientCtor } from '../../service/extproc/proto.ts';
import { IDLE_DETAIL, messageCapFor, startExtProcServer, type ExtProcServerOptions } from '../../service/extproc/server.ts';

interface Probe {
  bodies: number[];
  ends: [EndReason, string | undefined][];
}

function exchange(probe: Probe, bodyDelayMs = 0, stream = false): Exchange {
  return {
    clientApi: () => 'openai',
    requestHeaders: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
    requestBody: async (b: Buffer) => {
      probe.bodies.push(b.length);
      await new Promise((r) => setTimeout(r, bodyDelayMs));
      return { kind: 'continue', mutation: new MutationBuilder() };
    },
    responseHeaders: async () => ({ mutation: new MutationBuilder(), stream }),
    responseBody: async () => ({}),
    responseChunk: async () => ({}),
    end: (reason, detail) => void probe.ends.push([reason, detail]),
  };
}

const hdr = (kv: Record<string, string>) => ({ headers: Object.entries(kv).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });
const HEADERS: ProcessingRequest = { request_headers: { headers: hdr({ ':method': 'POST', ':path': '/v1/chat/completions' }), end_of_stream: false } };

type Status = grpc.StatusObject & { code: grpc.status };

function open(port: number) {
  const Ctor = extProcClientCtor();
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (client as unknown as { Process(): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> }).Process();
  const replies: ProcessingResponse[] = [];
  call.on('data', (r: ProcessingResponse) => replies.push(r));
  let ended: Status | undefined;
  const done = new Promise<Status>((resolve) => {
    call.on('status', (s: Status) => resolve((ended = s)));
    call.on('error', () => undefined); // the status carries the code
  });
  const replied = async (n: number, ms = 5000): Promise<void> => {
    const end = Date.now() + ms;
    while (replies.length < n && !ended) {
      if (Date.now() > end) throw new Error(`no reply #${n} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { call, client, replies, done, replied, ended: () => ended };
}

/** Resolves with the status, or 'open' when the stream is still open after `ms`. */
const within = (p: Promise<Status>, ms: number): Promise<Status | 'open'> =>
  Promise.race([p, new Promise<'open'>((r) => setTimeout(() => r('open'), ms).unref())]);

async function server(probe: Probe, o: Partial<ExtProcServerOptions> = {}, bodyDelayMs = 0, stream = false) {
  return startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(probe, bodyDelayMs, stream), log: pino({ level: 'silent' }), ...o });
}

describe('ext_proc stream limits', { timeout: 30_000 }, () => {
  it('past maxStreams a new stream is refused with RESOURCE_EXHAUSTED; a freed slot is usable again; counted', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const cuts: string[] = [];
    const srv = await server(probe, { maxStreams: 2, onStreamCut: (r) => void cuts.push(r) });
    const streams = [open(srv.port), open(srv.port)];
    try {
      for (const s of streams) s.call.write(HEADERS);
      for (const s of streams) await s.replied(1);
      assert.equal(srv.active(), 2);

      const third = open(srv.port);
      third.call.write(HEADERS);
      const st = await within(third.done, 3000);
      assert.notEqual(st, 'open', 'a third concurrent stream was accepted');
      assert.equal((st as Status).code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match((st as Status).details, /too many concurrent ext_proc streams \(limit 2, TOLLGATE_MAX_STREAMS\)/);
      assert.deepEqual(cuts, ['max_streams']);
      assert.equal(probe.ends.length, 0, 'the refused stream never started an exchange');
      third.client.close();

      streams[0]!.call.cancel();
      await streams[0]!.done;
      while (srv.active() > 1) await new Promise((r) => setTimeout(r, 5));
      const again = open(srv.port);
      again.call.write(HEADERS);
      await again.replied(1);
      assert.ok(again.replies[0]?.request_headers, 'accepted once a slot is free');
      again.call.cancel();
      again.client.close();
    } finally {
      for (const s of streams) s.client.close();
      await srv.drain(100);
    }
  });

  it('a stream with no message for idleTimeoutMs is ended as aborted (exchange recorded) with DEADLINE_EXCEEDED', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const cuts: string[] = [];
    const srv = await server(probe, { idleTimeoutMs: 300, onStreamCut: (r) => void cuts.push(r) });
    const s = open(srv.port);
    try {
      s.call.write(HEADERS);
      await s.replied(1);
      const st = await within(s.done, 3000);
      assert.notEqual(st, 'open', 'the idle stream was never closed');
      assert.equal((st as Status).code, grpc.status.DEADLINE_EXCEEDED);
      assert.equal(probe.ends.length, 1);
      assert.equal(probe.ends[0]![0], 'aborted');
      assert.match(probe.ends[0]![1] ?? '', new RegExp(`^${IDLE_DETAIL} \\(300 ms`));
      assert.deepEqual(cuts, ['idle_timeout']);
      assert.equal(srv.active(), 0);
    } finally {
      s.client.close();
      await srv.drain(100);
    }
  });

  it('a stream that keeps sending, or waits on Tollgate itself, is not idle', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    // The exchange takes 700 ms on the body (e.g. a slow budget store): longer than the idle limit.
    const srv = await server(probe, { idleTimeoutMs: 300 }, 700, true);
    const s = open(srv.port);
    try {
      s.call.write(HEADERS);
      await s.replied(1);
      s.call.write({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
      await s.replied(2);
      assert.equal(s.ended(), undefined, 'cut while Tollgate was computing its reply');
      s.call.write({ response_headers: { headers: hdr({ ':status': '200' }), end_of_stream: false } });
      // Streamed chunks every 150 ms for 750 ms: the stream is busy, never idle for 300 ms.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 150));
        s.call.write({ response_body: { body: Buffer.from(`c${i}`), end_of_stream: false } });
      }
      assert.equal(s.ended(), undefined);
      s.call.write({ response_body: { body: Buffer.from(''), end_of_stream: true } });
      s.call.end();
      assert.equal((await s.done).code, grpc.status.OK);
      assert.deepEqual(probe.ends, [['completed', undefined]]);
    } finally {
      s.client.close();
      await srv.drain(100);
    }
  });

  it('a request body over maxRequestBytes is refused with 413 before the exchange sees it', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const srv = await server(probe, { limits: () => ({ maxRequestBytes: 1000, maxResponseBytes: 1000 }) });
    const s = open(srv.port);
    try {
      s.call.write(HEADERS);
      s.call.write({ request_body: { body: Buffer.alloc(5000, 0x61), end_of_stream: true } });
      await s.replied(2);
      const imm = s.replies[1]?.immediate_response;
      assert.equal(imm?.status?.code, 'PayloadTooLarge'); // HTTP 413 (the enum's name on the wire decoder)
      assert.match(Buffer.from(imm?.body ?? '').toString(), /Request body is 5000 bytes; the limit is 1000 bytes/);
      assert.deepEqual(probe.bodies, [], 'the exchange never got the body');
      assert.deepEqual(probe.ends, [['rejected', 'tollgate_request_too_large']]);
    } finally {
      s.client.close();
      await srv.drain(100);
    }
  });

  it('a message beyond the limits is refused by the transport from its length prefix, not buffered (was: up to 128 MiB)', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const limits = { maxRequestBytes: 1000, maxResponseBytes: 1000 };
    const srv = await server(probe, { limits: () => limits });
    const s = open(srv.port);
    try {
      s.call.write(HEADERS);
      await s.replied(1);
      // 3 MiB: far over maxRequestBytes and the transport cap (2 × maxRequestBytes + 1 MiB of headroom).
      assert.ok(3 * 1024 * 1024 > messageCapFor(limits));
      s.call.write({ request_body: { body: Buffer.alloc(3 * 1024 * 1024, 0x61), end_of_stream: true } });
      const st = await within(s.done, 5000);
      assert.notEqual(st, 'open');
      assert.equal((st as Status).code, grpc.status.RESOURCE_EXHAUSTED);
      assert.deepEqual(probe.bodies, []);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(probe.ends[0]?.[0], 'aborted', 'the exchange is ended (and recorded) as aborted');
    } finally {
      s.client.close();
      await srv.drain(100);
    }
  });

  it('setMaxMessageBytes (a reload raising the limits) applies to streams opened after it', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const limits = { maxRequestBytes: 1000, maxResponseBytes: 1000 };
    const srv = await server(probe, { limits: () => limits });
    try {
      limits.maxRequestBytes = 4 * 1024 * 1024;
      srv.setMaxMessageBytes(messageCapFor(limits));
      const s = open(srv.port);
      s.call.write(HEADERS);
      s.call.write({ request_body: { body: Buffer.alloc(3 * 1024 * 1024, 0x61), end_of_stream: true } });
      await s.replied(2);
      assert.ok(s.replies[1]?.request_body, 'the 3 MiB body is accepted under the raised limit');
      assert.deepEqual(probe.bodies, [3 * 1024 * 1024]);
      s.call.cancel();
      s.client.close();
    } finally {
      await srv.drain(100);
    }
  });

  it('a buffered response body over maxResponseBytes fails with 502 response_too_large', async () => {
    const probe: Probe = { bodies: [], ends: [] };
    const srv = await server(probe, { limits: () => ({ maxRequestBytes: 1000, maxResponseBytes: 2000 }) });
    const s = open(srv.port);
    try {
      s.call.write(HEADERS);
      s.call.write({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
      s.call.write({ response_headers: { headers: hdr({ ':status': '200' }), end_of_stream: false } });
      s.call.write({ response_body: { body: Buffer.alloc(5000, 0x61), end_of_stream: true } });
      await s.replied(4);
      const imm = s.replies[3]?.immediate_response;
      assert.ok(imm, JSON.stringify(s.replies[3]));
      assert.equal(imm?.status?.code, 'BadGateway'); // HTTP 502
      assert.match(Buffer.from(imm?.body ?? '').toString(), /response_too_large/);
    } finally {
      s.client.close();
      await srv.drain(100);
    }
  });
});
