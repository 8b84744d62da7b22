// Tollgate's own HTTP/2 server connection (service/extproc/h2/connection.ts) against a real HTTP/2 client
// (node:http2, i.e. nghttp2): streams, flow control both ways with bodies far past the windows, trailers,
// resets, PING, graceful GOAWAY, CONTINUATION, and protocol errors from a raw socket.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import net from 'node:net';
import { describe, it } from 'node:test';
import { H2Connection, H2_ERROR, type H2Stream } from '../../service/extproc/h2/connection.ts';
import type { HeaderMap } from '../../service/extproc/h2/hpack.ts';

interface Served {
  port: number;
  conns: H2Connection[];
  streams: { stream: H2Stream; headers: HeaderMap }[];
  close(): Promise<void>;
}

/** A server whose streams echo their request body back (after the request ends), with trailers. */
async function serve(onStream?: (s: H2Stream, h: HeaderMap) => void, streamWindow = 1 << 20): Promise<Served> {
  const conns: H2Connection[] = [];
  const streams: Served['streams'] = [];
  const server = net.createServer((sock) => {
    const conn = new H2Connection(sock, {
      streamWindow,
      connectionWindow: 16 << 20,
      maxHeaderListSize: 64 * 1024,
      onStream: (stream, headers) => {
        streams.push({ stream, headers });
        if (onStream) return onStream(stream, headers);
        const parts: Buffer[] = [];
        stream.on('data', (d: Buffer) => parts.push(d));
        stream.on('end', () => {
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'x-seen-path': headers[':path'] ?? '' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-bytes': Buffer.concat(parts).length }));
          stream.write(Buffer.concat(parts));
          stream.end();
        });
      },
    });
    conns.push(conn);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    streams,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}

interface Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

function request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':method': 'POST', ...headers });
    const chunks: Buffer[] = [];
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (resHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ headers: resHeaders, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    req.end(body);
  });
}

const bytes = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

describe('h2 connection (our HTTP/2 server side) with a node:http2 client', { timeout: 30000 }, () => {
  it('serves concurrent streams with bodies far past both windows, both ways, byte for byte, with trailers', async () => {
    const srv = await serve();
    // The client's own receive window stays at the 64 KiB default: our 3 MB answers must wait for its WINDOW_UPDATEs.
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    try {
      const sizes = [0, 1, 16384, 16385, 70000, 3 * 1024 * 1024, 3 * 1024 * 1024 + 7];
      const answers = await Promise.all(sizes.map((n, i) => request(client, { ':path': `/echo/${i}` }, bytes(n, i))));
      for (let i = 0; i < sizes.length; i++) {
        const a = answers[i]!;
        assert.equal(a.headers[':status'], 200);
        assert.equal(a.headers['x-seen-path'], `/echo/${i}`);
        assert.equal(a.body.length, sizes[i]);
        assert.ok(a.body.equals(bytes(sizes[i]!, i)), `body ${i}`);
        assert.equal(a.trailers['x-bytes'], String(sizes[i]));
      }
    } finally {
      client.close();
      await srv.close();
    }
  });

  it('a trailers-only answer ends the stream in one HEADERS frame; the stream closes cleanly (rstCode 0)', async () => {
    const srv = await serve((s) => {
      s.resume();
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'nope' }, { endStream: true });
    });
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    try {
      const a = await request(client, { ':path': '/x' }, Buffer.alloc(0));
      assert.equal(a.headers['grpc-status'], '12');
      assert.equal(a.headers['grpc-message'], 'nope');
      assert.equal(a.body.length, 0);
      const s = srv.streams[0]!.stream;
      await new Promise((r) => setImmediate(r));
      assert.equal(s.closed, true);
      assert.equal(s.rstCode, H2_ERROR.NO_ERROR);
    } finally {
      client.close();
      await srv.close();
    }
  });

  it('a client reset reaches the stream as close with the CANCEL code; the connection keeps serving', async () => {
    let closed: number | undefined;
    const srv = await serve((s, h) => {
      if (h[':path'] === '/hang') {
        s.on('close', () => (closed = s.rstCode));
        return;
      }
      s.on('end', () => {
        s.respond({ ':status': 200 });
        s.end();
      });
    });
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    try {
      const req = client.request({ ':method': 'POST', ':path': '/hang' });
      req.on('error', () => undefined);
      req.write('partial');
      while (srv.streams.length < 1) await new Promise((r) => setTimeout(r, 5));
      req.close(http2.constants.NGHTTP2_CANCEL);
      while (closed === undefined) await new Promise((r) => setTimeout(r, 5));
      assert.equal(closed, H2_ERROR.CANCEL);
      const a = await request(client, { ':path': '/ok' }, Buffer.from('x'));
      assert.equal(a.headers[':status'], 200);
    } finally {
      client.close();
      await srv.close();
    }
  });

  it('answers PING; a header list that needs CONTINUATION frames is read whole', async () => {
    const srv = await serve();
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    try {
      await new Promise((r) => client.once('connect', r));
      await new Promise<void>((resolve, reject) => client.ping(Buffer.from('12345678'), (err) => (err ? reject(err) : resolve())));
      // ~40 KB of headers: more than one 16 KB frame, under our 64 KB list limit.
      const big: http2.OutgoingHttpHeaders = { ':path': '/big' };
      for (let i = 0; i < 20; i++) big[`x-h${i}`] = `${i}`.repeat(2000);
      const a = await request(client, big, Buffer.from('hello'));
      assert.equal(a.body.toString(), 'hello');
      const seen = srv.streams[0]!.headers;
      for (let i = 0; i < 20; i++) assert.equal(seen[`x-h${i}`], `${i}`.repeat(2000));
    } finally {
      client.close();
      await srv.close();
    }
  });

  it('close() sends GOAWAY: the open stream finishes, a new one is refused, then the socket ends', async () => {
    let release: (() => void) | undefined;
    const srv = await serve((s) => {
      s.on('end', () => {
        release = () => {
          s.respond({ ':status': 200 });
          s.write(Buffer.from('late'));
          s.end();
        };
      });
    });
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    client.on('error', () => undefined);
    const goaway = new Promise<number>((r) => client.once('goaway', (code) => r(code)));
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    try {
      const pending = request(client, { ':path': '/slow' }, Buffer.from('x'));
      while (!release) await new Promise((r) => setTimeout(r, 5));
      srv.conns[0]!.close();
      assert.equal(await goaway, H2_ERROR.NO_ERROR);
      release();
      const a = await pending;
      assert.equal(a.body.toString(), 'late');
      await clientClosed;
    } finally {
      await srv.close();
    }
  });
});

describe('h2 connection: protocol errors from a raw socket', { timeout: 10000 }, () => {
  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    return Buffer.concat([h, payload]);
  };

  /** Sends `bytes`, returns what the server wrote until it closed the socket (or `waitMs` passed). */
  async function exchange(bytes: Buffer, opts: { streamWindow?: number; waitMs?: number; served?: Served['streams'] } = {}): Promise<{ frames: { type: number; id: number; flags: number; payload: Buffer }[]; ended: boolean }> {
    const srv = await serve(undefined, opts.streamWindow);
    const sock = net.connect(srv.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => undefined);
    const ended = await new Promise<boolean>((resolve) => {
      sock.once('close', () => resolve(true));
      setTimeout(() => resolve(false), opts.waitMs ?? 2000).unref();
      sock.write(bytes);
    });
    sock.destroy();
    opts.served?.push(...srv.streams);
    await srv.close();
    const all = Buffer.concat(got);
    const frames: { type: number; id: number; flags: number; payload: Buffer }[] = [];
    for (let i = 0; i + 9 <= all.length; ) {
      const len = all.readUIntBE(i, 3);
      frames.push({ type: all[i + 3]!, flags: all[i + 4]!, id: all.readUInt32BE(i + 5), payload: all.subarray(i + 9, i + 9 + len) });
      i += 9 + len;
    }
    return { frames, ended };
  }

  const goawayCode = (frames: { type: number; payload: Buffer }[]): number | undefined => {
    const g = frames.find((f) => f.type === 7);
    return g ? g.payload.readUInt32BE(4) : undefined;
  };

  it('a wrong preface closes the connection', async () => {
    const r = await exchange(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(r.ended, true);
    assert.equal(goawayCode(r.frames), H2_ERROR.PROTOCOL_ERROR);
  });

  it('a frame larger than 16 KB is FRAME_SIZE_ERROR', async () => {
    const r = await exchange(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(0, 0, 1, Buffer.alloc(20000))]));
    assert.equal(goawayCode(r.frames), H2_ERROR.FRAME_SIZE_ERROR);
    assert.equal(r.ended, true);
  });

  it('a garbled header block is COMPRESSION_ERROR', async () => {
    const r = await exchange(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, Buffer.from([0xbe]))]));
    assert.equal(goawayCode(r.frames), H2_ERROR.COMPRESSION_ERROR);
  });

  it('DATA past the stream window resets that stream with FLOW_CONTROL_ERROR', async () => {
    // A 16 KB stream window and two full frames in one write: the second is past what we granted.
    const headers = Buffer.from([0x83, 0x84]); // :method POST, :path /
    const bytes = Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, headers), frame(0, 0, 1, Buffer.alloc(16384)), frame(0, 0, 1, Buffer.alloc(16384))]);
    const r = await exchange(bytes, { streamWindow: 16384, waitMs: 300 });
    const rst = r.frames.find((f) => f.type === 3 && f.id === 1);
    assert.ok(rst, 'RST_STREAM sent');
    assert.equal(rst.payload.readUInt32BE(0), H2_ERROR.FLOW_CONTROL_ERROR);
    assert.equal(r.ended, false, 'a stream error, not a connection error');
  });

  it('a header list over the limit (in CONTINUATION frames) resets that stream only; the HPACK table stays in sync', async () => {
    // Stream 1: :method POST, :path /, then 40 literals with incremental indexing of 2,000 bytes (80 KB > 64 KB).
    const lit = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([0x7f, 0x80 | ((value.length - 127) & 0x7f), (value.length - 127) >> 7]), Buffer.from(value)]);
    const parts: Buffer[] = [Buffer.from([0x83, 0x84])];
    for (let i = 0; i < 40; i++) parts.push(lit(`x-h${String(i).padStart(2, '0')}`, String(i % 10).repeat(2000)));
    const block = Buffer.concat(parts);
    const frames: Buffer[] = [PREFACE, frame(4, 0, 0, Buffer.alloc(0))];
    for (let o = 0; o < block.length; o += 16384) {
      const last = o + 16384 >= block.length;
      frames.push(frame(o === 0 ? 1 : 9, (last ? 4 : 0) | (o === 0 ? 1 : 0), 1, block.subarray(o, Math.min(o + 16384, block.length))));
    }
    // Stream 3 names the newest dynamic entry (index 62, added by stream 1's block) and ends at once.
    frames.push(frame(1, 4 | 1, 3, Buffer.from([0x83, 0x84, 0xbe])));
    const served: Served['streams'] = [];
    const r = await exchange(Buffer.concat(frames), { waitMs: 300, served });
    const rst = r.frames.find((f) => f.type === 3 && f.id === 1);
    assert.ok(rst, 'stream 1 reset');
    assert.equal(rst.payload.readUInt32BE(0), H2_ERROR.PROTOCOL_ERROR);
    assert.deepEqual(served.map((s) => s.stream.id), [3]);
    assert.equal(served[0]!.headers['x-h39'], '9'.repeat(2000));
    assert.ok(r.frames.some((f) => f.type === 1 && f.id === 3), 'stream 3 answered');
    assert.equal(r.ended, false);
  });
});
