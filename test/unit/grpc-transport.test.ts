// The gRPC transport (both HTTP/2 layers: ours and node:http2) under what a grpc-js client does not easily produce: a raw HTTP/2
// client splitting messages across DATA frames, packing two in one, lying in the length prefix,
// setting the compressed flag, calling unknown paths or sending the wrong content type. Plus the
// grpc.health.v1 Watch stream and grpc-message percent-encoding.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { MutationBuilder } from '../../service/extproc/mutations.ts';
import type { EndReason, Exchange } from '../../service/extproc/processor.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { EXTPROC_SERVICE_NAME, messageCapFor, startExtProcServer } from '../../service/extproc/server.ts';
import { MessageFramer } from '../../service/extproc/h2/framing.ts';
import { encodeGrpcMessage } from '../../service/extproc/h2/status.ts';
import type { TransportKind } from '../../service/extproc/h2/transport.ts';

/** The HTTP/2 layer the servers of the suite being defined use (the suite runs once per layer). */
let transport: TransportKind = 'h2';

const PATH = `/${EXTPROC_SERVICE_NAME}/Process`;
const svc = extProcService().Process!;
const encode = (m: ProcessingRequest): Buffer => svc.requestSerialize(m);
const decode = (b: Buffer): ProcessingResponse => svc.responseDeserialize(b) as ProcessingResponse;
const prefix = (len: number, flag = 0): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = flag;
  b.writeUInt32BE(len, 1);
  return b;
};
const framed = (m: ProcessingRequest): Buffer => {
  const body = encode(m);
  return Buffer.concat([prefix(body.length), body]);
};
const hdr = (kv: Record<string, string>) => ({ headers: Object.entries(kv).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });
const HEADERS: ProcessingRequest = { request_headers: { headers: hdr({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-pad': 'p'.repeat(300) }), end_of_stream: false } };
const BODY: ProcessingRequest = { request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } };

function exchange(ends: [EndReason, string | undefined][], bodies: string[]): Exchange {
  return {
    clientApi: () => 'openai',
    requestHeaders: async () => ({ kind: 'continue', mutation: new MutationBuilder().setHeader('x-seen', 'headers') }),
    requestBody: async (b: Buffer) => {
      bodies.push(b.toString());
      return { kind: 'continue', mutation: new MutationBuilder() };
    },
    responseHeaders: async () => ({ mutation: new MutationBuilder(), stream: false }),
    responseBody: async () => ({}),
    responseChunk: async () => ({}),
    end: (reason, detail) => void ends.push([reason, detail]),
  };
}

interface RawResult {
  status?: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  replies: ProcessingResponse[];
}

/** A raw HTTP/2 request; `chunks` are written one by one with a pause between (separate DATA frames). */
async function raw(port: number, chunks: Buffer[], o: { path?: string; headers?: http2.OutgoingHttpHeaders; end?: boolean } = {}): Promise<RawResult> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => undefined);
  try {
    const req = client.request({ ':method': 'POST', ':path': o.path ?? PATH, 'content-type': 'application/grpc', te: 'trailers', ...o.headers });
    req.on('error', () => undefined);
    const out: RawResult = { headers: {}, trailers: {}, replies: [] };
    const framer = new MessageFramer(1 << 30, (b) => void out.replies.push(decode(b)));
    req.on('response', (h) => {
      out.headers = h;
      out.status = Number(h[':status']);
    });
    req.on('data', (c: Buffer) => framer.push(c));
    req.on('trailers', (t) => (out.trailers = t));
    // Like grpc-js and Envoy, stop at the server's end of the response (and reset our side if still open).
    const closed = new Promise<void>((r) => {
      req.on('close', () => r());
      req.on('end', () => r());
    });
    for (const c of chunks) {
      req.write(c);
      await new Promise((r) => setTimeout(r, 30));
    }
    if (o.end !== false) req.end();
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('the stream did not end')), 5000).unref())]);
    if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    return out;
  } finally {
    client.close();
  }
}

/** The gRPC status of a response: trailers, or the headers of a trailers-only response. */
const grpcStatus = (r: RawResult): string | undefined => (r.trailers['grpc-status'] ?? r.headers['grpc-status']) as string | undefined;

async function serve(limits = { maxRequestBytes: 1000, maxResponseBytes: 1000 }) {
  const ends: [EndReason, string | undefined][] = [];
  const bodies: string[] = [];
  const srv = await startExtProcServer('127.0.0.1:0', { newExchange: () => exchange(ends, bodies), log: pino({ level: 'silent' }), limits: () => limits, transport });
  return { srv, ends, bodies };
}

for (const kind of ['h2', 'node'] as const) {
describe(`gRPC framing on the ${kind} transport`, { timeout: 30_000 }, () => {
  before(() => {
    transport = kind;
  });
  it('a message split across DATA frames (inside the prefix too) is reassembled and answered', async () => {
    const { srv, bodies } = await serve();
    try {
      const h = framed(HEADERS);
      const b = framed(BODY);
      // prefix split 2|3, then the body of the first message in three pieces, the second split mid-body.
      const r = await raw(srv.port, [h.subarray(0, 2), h.subarray(2, 40), h.subarray(40, 200), Buffer.concat([h.subarray(200), b.subarray(0, 9)]), b.subarray(9)]);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/grpc');
      assert.equal(r.replies.length, 2);
      assert.ok(r.replies[0]!.request_headers?.response?.header_mutation, 'the headers reply');
      assert.ok(r.replies[1]!.request_body, 'the body reply');
      assert.deepEqual(bodies, ['{"model":"m"}']);
      assert.equal(grpcStatus(r), '0');
    } finally {
      await srv.drain(100);
    }
  });

  it('two messages in one DATA frame are both answered, in order', async () => {
    const { srv, bodies } = await serve();
    try {
      const r = await raw(srv.port, [Buffer.concat([framed(HEADERS), framed(BODY)])]);
      assert.deepEqual(r.replies.map((x) => (x.request_headers ? 'headers' : x.request_body ? 'body' : '?')), ['headers', 'body']);
      assert.deepEqual(bodies, ['{"model":"m"}']);
      assert.equal(grpcStatus(r), '0');
    } finally {
      await srv.drain(100);
    }
  });

  it('a length prefix over the cap is refused with RESOURCE_EXHAUSTED before any of the message arrives', async () => {
    const limits = { maxRequestBytes: 1000, maxResponseBytes: 1000 };
    const { srv, ends } = await serve(limits);
    try {
      // Only the prefix is sent, and the stream stays open: the refusal cannot come from buffering the body.
      const r = await raw(srv.port, [framed(HEADERS), prefix(messageCapFor(limits) + 1)], { end: false });
      assert.equal(r.replies.length, 1);
      assert.equal(grpcStatus(r), String(grpc.status.RESOURCE_EXHAUSTED));
      assert.match(decodeURIComponent(String(r.trailers['grpc-message'])), /larger than max/);
      assert.equal(ends[0]?.[0], 'aborted');
    } finally {
      await srv.drain(100);
    }
  });

  it('a message with the compressed flag (no encoding negotiated) ends the stream with INTERNAL; a grpc-encoding we lack, UNIMPLEMENTED', async () => {
    const { srv, bodies } = await serve();
    try {
      const body = encode(HEADERS);
      const r = await raw(srv.port, [Buffer.concat([prefix(body.length, 1), body])]);
      assert.equal(grpcStatus(r), String(grpc.status.INTERNAL));
      assert.equal(r.replies.length, 0);
      const gz = await raw(srv.port, [framed(HEADERS)], { headers: { 'grpc-encoding': 'gzip' } });
      assert.equal(grpcStatus(gz), String(grpc.status.UNIMPLEMENTED));
      assert.equal(gz.headers['grpc-accept-encoding'], 'identity');
      assert.deepEqual(bodies, []);
    } finally {
      await srv.drain(100);
    }
  });

  it('an unknown method gets a trailers-only UNIMPLEMENTED; a non-gRPC content type gets HTTP 415', async () => {
    const { srv, ends } = await serve();
    try {
      const r = await raw(srv.port, [framed(HEADERS)], { path: '/envoy.service.ext_proc.v3.ExternalProcessor/Nope' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['grpc-status'], String(grpc.status.UNIMPLEMENTED), 'status in the response headers (trailers-only)');
      assert.equal(r.replies.length, 0);
      const ct = await raw(srv.port, [framed(HEADERS)], { headers: { 'content-type': 'application/json' } });
      assert.equal(ct.status, 415);
      assert.equal(ct.replies.length, 0);
      assert.deepEqual(ends, [], 'no exchange was started');
    } finally {
      await srv.drain(100);
    }
  });

  it('grpc-message is percent-encoded (non-ASCII, %, control characters)', () => {
    assert.equal(encodeGrpcMessage('plain text: ok'), 'plain text: ok');
    assert.equal(encodeGrpcMessage('100% é\n'), '100%25 %C3%A9%0A');
  });

  it('Health/Watch sends the current status, then NOT_SERVING when the server drains', async () => {
    const { srv } = await serve();
    const c = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
    const req = Buffer.concat([Buffer.from([0x0a, EXTPROC_SERVICE_NAME.length]), Buffer.from(EXTPROC_SERVICE_NAME)]);
    const call = c.makeServerStreamRequest('/grpc.health.v1.Health/Watch', (b: Buffer) => b, (b: Buffer) => b, req);
    const seen: number[] = [];
    call.on('data', (b: Buffer) => seen.push(b[1]!));
    call.on('error', () => undefined);
    try {
      while (seen.length < 1) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(seen, [1], 'SERVING');
      const drained = srv.drain(300);
      while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(seen, [1, 2], 'then NOT_SERVING');
      await drained;
    } finally {
      c.close();
    }
  });
});
}
