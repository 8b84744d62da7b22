// The gRPC layer: a protocol violation fails that stream only; pipelined chunks are answered in
// order; drain lets in-flight streams finish.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { GatewayError } from '../../service/errors.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { MutationBuilder } from '../../service/extproc/mutations.ts';
import type { Exchange } from '../../service/extproc/processor.ts';
import { extProcClientCtor } from '../../service/extproc/proto.ts';
import { DRAIN_DEADLINE_DETAIL, startExtProcServer } from '../../service/extproc/server.ts';

function exchange(delayMs = 0): Exchange {
  const wait = () => new Promise((r) => setTimeout(r, delayMs));
  return {
    clientApi: () => 'openai',
    requestHeaders: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
    requestBody: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
    responseHeaders: async () => ({ mutation: new MutationBuilder(), stream: true }),
    responseBody: async () => ({}),
    // Uneven delays: a later chunk finishing first must not overtake an earlier one.
    responseChunk: async (c: Buffer) => {
      await new Promise((r) => setTimeout(r, c.toString() === 'slow' ? 30 : 0));
      await wait();
      return { body: Buffer.from(c.toString().toUpperCase()) };
    },
    end: () => undefined,
  };
}

const hdr = (kv: Record<string, string>) => ({ headers: Object.entries(kv).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

function open(port: number): { call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>; client: grpc.Client; replies: ProcessingResponse[]; done: Promise<grpc.StatusObject | Error> } {
  const Ctor = extProcClientCtor();
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (client as unknown as { Process(): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> }).Process();
  const replies: ProcessingResponse[] = [];
  call.on('data', (r: ProcessingResponse) => replies.push(r));
  const done = new Promise<grpc.StatusObject | Error>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve(s));
    call.on('error', (e: Error) => resolve(e));
  });
  return { call, client, replies, done };
}

describe('ext_proc gRPC server', { timeout: 20000 }, () => {
  it('a protocol violation fails only that stream with FAILED_PRECONDITION, is counted, and the server keeps serving', async () => {
    let violations = 0;
    const srv = await startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(), log: pino({ level: 'silent' }), onProtocolError: () => violations++ });
    try {
      const bad = open(srv.port);
      bad.call.write({ response_body: { body: Buffer.from('x'), end_of_stream: true } });
      const res = await bad.done;
      assert.equal((res as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
      assert.equal(violations, 1);
      bad.client.close();

      const good = open(srv.port);
      good.call.write({ request_headers: { headers: hdr({ ':method': 'GET', ':path': '/v1/models' }), end_of_stream: true } });
      good.call.end();
      await good.done;
      assert.equal(good.replies.length, 1);
      assert.ok(good.replies[0]!.request_headers);
      good.client.close();
    } finally {
      await srv.drain(100);
    }
  });

  it('answers grpc.health.v1 Health/Check for the ext_proc service and the server as a whole', async () => {
    const srv = await startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(), log: pino({ level: 'silent' }) });
    const check = (service: string) =>
      new Promise<string>((resolve, reject) => {
        const c = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
        // HealthCheckRequest {service = 1}: encoded by hand to avoid another proto dependency in the test.
        const req = Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]);
        c.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, req, (err, res) => {
          c.close();
          if (err) return reject(err);
          // HealthCheckResponse {status = 1}: 1 SERVING, 2 NOT_SERVING
          resolve(res![1] === 1 ? 'SERVING' : res![1] === 2 ? 'NOT_SERVING' : `status ${res![1]}`);
        });
      });
    assert.equal(await check('envoy.service.ext_proc.v3.ExternalProcessor'), 'SERVING');
    assert.equal(await check(''), 'SERVING');
    const drained = srv.drain(2000);
    await drained;
  });

  it('pipelined STREAMED chunks are answered strictly in order, one reply each', async () => {
    const srv = await startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(), log: pino({ level: 'silent' }) });
    try {
      const s = open(srv.port);
      s.call.write({ request_headers: { headers: hdr({ ':method': 'POST', ':path': '/x' }), end_of_stream: true } });
      s.call.write({ response_headers: { headers: hdr({ ':status': '200' }) } });
      for (const c of ['slow', 'b', 'c']) s.call.write({ response_body: { body: Buffer.from(c), end_of_stream: false } });
      s.call.write({ response_body: { body: Buffer.from(''), end_of_stream: true } });
      s.call.end();
      await s.done;
      const bodies = s.replies.filter((r) => r.response_body).map((r) => r.response_body!.response?.body_mutation);
      assert.deepEqual(bodies.map((b) => (b?.clear_body ? '' : b?.body?.toString())), ['SLOW', 'B', 'C', '']);
      s.client.close();
    } finally {
      await srv.drain(100);
    }
  });

  it('phases answered synchronously and asynchronously, pipelined, are answered strictly in order; a synchronous throw is the client\'s error', async () => {
    // The server replies to a phase that returned a value in the same turn (no promise): a later such
    // chunk must still wait for an earlier one that went async.
    const mixed = (): Exchange => ({
      ...exchange(),
      responseHeaders: () => ({ mutation: new MutationBuilder().setHeader('x-sync', '1'), stream: true }),
      responseChunk: (c: Buffer, last: boolean) => {
        const s = c.toString();
        if (s === 'boom') throw new GatewayError('upstream', 'bad chunk');
        const out = { body: Buffer.from(s.toUpperCase() + (last ? '|END' : '')) };
        return s.startsWith('slow') ? new Promise((r) => setTimeout(() => r(out), s === 'slow' ? 30 : 5)) : out;
      },
    });
    const srv = await startExtProcServer('127.0.0.1:0', { newExchange: mixed, log: pino({ level: 'silent' }) });
    try {
      const s = open(srv.port);
      s.call.write({ request_headers: { headers: hdr({ ':method': 'POST', ':path': '/x' }), end_of_stream: true } });
      s.call.write({ response_headers: { headers: hdr({ ':status': '200' }) } });
      for (const c of ['slow', 'b', 'slow2', 'c', 'd']) s.call.write({ response_body: { body: Buffer.from(c), end_of_stream: false } });
      s.call.write({ response_body: { body: Buffer.from('e'), end_of_stream: true } });
      s.call.end();
      const st = await s.done;
      assert.equal((st as grpc.StatusObject).code, grpc.status.OK);
      assert.equal(s.replies.length, 8);
      assert.deepEqual(s.replies[1]!.response_headers?.response?.header_mutation?.set_headers?.map((h) => h.header.key), ['x-sync']);
      const bodies = s.replies.filter((r) => r.response_body).map((r) => r.response_body!.response?.body_mutation?.body?.toString());
      assert.deepEqual(bodies, ['SLOW', 'B', 'SLOW2', 'C', 'D', 'E|END']);
      s.client.close();

      const f = open(srv.port);
      f.call.write({ request_headers: { headers: hdr({ ':method': 'POST', ':path': '/x' }), end_of_stream: true } });
      f.call.write({ response_headers: { headers: hdr({ ':status': '200' }) } });
      f.call.write({ response_body: { body: Buffer.from('boom'), end_of_stream: false } });
      f.call.end();
      await f.done;
      const ir = f.replies.at(-1)?.immediate_response;
      assert.equal(ir?.status?.code, 'BadGateway' as never, 'HTTP 502');
      assert.match(ir?.body?.toString() ?? '', /bad chunk/);
      f.client.close();
    } finally {
      await srv.drain(100);
    }
  });

  it('drain lets an in-flight stream finish, then stops', async () => {
    const srv = await startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(50), log: pino({ level: 'silent' }) });
    const s = open(srv.port);
    s.call.write({ request_headers: { headers: hdr({ ':method': 'POST', ':path': '/x' }), end_of_stream: true } });
    s.call.write({ response_headers: { headers: hdr({ ':status': '200' }) } });
    // In flight: the server has the stream (the client's first connection can take longer than a fixed wait).
    while (srv.active() < 1) await new Promise((r) => setTimeout(r, 5));
    const drained = srv.drain(5000);
    for (const c of ['a', 'b']) s.call.write({ response_body: { body: Buffer.from(c), end_of_stream: false } });
    s.call.write({ response_body: { body: Buffer.from(''), end_of_stream: true } });
    s.call.end();
    const st = await s.done;
    assert.equal((st as grpc.StatusObject).code, grpc.status.OK);
    assert.equal(s.replies.filter((r) => r.response_body).length, 3);
    await drained;
    s.client.close();
  });

  it('at the drain deadline every stream still open is ended as aborted before drain returns', async () => {
    const ends: [string, string | undefined][] = [];
    const srv = await startExtProcServer('127.0.0.1:0', {
      newExchange: () => ({ ...exchange(), end: (reason, detail) => void ends.push([reason, detail]) }),
      log: pino({ level: 'silent' }),
    });
    const s = open(srv.port);
    s.call.write({ request_headers: { headers: hdr({ ':method': 'POST', ':path': '/x' }), end_of_stream: true } });
    s.call.write({ response_headers: { headers: hdr({ ':status': '200' }) } });
    s.call.write({ response_body: { body: Buffer.from('a'), end_of_stream: false } });
    while (s.replies.length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.equal(srv.active(), 1);
    await srv.drain(100); // the stream never ends on its own
    assert.deepEqual(ends, [['aborted', DRAIN_DEADLINE_DETAIL]], 'ended once, by the drain, before it returned');
    assert.equal(srv.active(), 0);
    await s.done;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ends.length, 1, 'the cancellation that follows does not end it again');
    s.client.close();
  });
});
