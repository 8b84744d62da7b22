// HPACK decoder and literal encoder (service/extproc/h2/hpack.ts): RFC 7541 Appendix C examples, and header
// blocks from a real encoder (nghttp2, through a node:http2 client) decoded in order on one connection.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { encodeLiterals, HpackDecoder, HpackError, huffmanDecode } from '../../service/extproc/h2/hpack.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const limits = { maxTableSize: 4096, maxListSize: 64 * 1024 };

test('RFC 7541 C.3: three requests without Huffman, sharing the dynamic table', () => {
  const d = new HpackDecoder(limits);
  assert.deepEqual({ ...d.decode(hex('828684410f7777772e6578616d706c652e636f6d')).headers }, {
    ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com',
  });
  assert.deepEqual({ ...d.decode(hex('828684be58086e6f2d6361636865')).headers }, {
    ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com', 'cache-control': 'no-cache',
  });
  assert.deepEqual({ ...d.decode(hex('828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565')).headers }, {
    ':method': 'GET', ':scheme': 'https', ':path': '/index.html', ':authority': 'www.example.com', 'custom-key': 'custom-value',
  });
});

test('RFC 7541 C.4: the same requests with Huffman strings', () => {
  const d = new HpackDecoder(limits);
  assert.equal(d.decode(hex('828684418cf1e3c2e5f23a6ba0ab90f4ff')).headers[':authority'], 'www.example.com');
  assert.equal(d.decode(hex('828684be5886a8eb10649cbf')).headers['cache-control'], 'no-cache');
  const third = d.decode(hex('828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf')).headers;
  assert.equal(third['custom-key'], 'custom-value');
  assert.equal(third[':authority'], 'www.example.com');
});

test('Huffman: bad padding and EOS are errors, not text', () => {
  assert.equal(huffmanDecode(hex('f1e3c2e5f23a6ba0ab90f4ff'), 0, 12), 'www.example.com');
  // 'a' is 00011: padded with ones it is 0x1f; with zeros, invalid.
  assert.equal(huffmanDecode(hex('1f'), 0, 1), 'a');
  assert.throws(() => huffmanDecode(hex('18'), 0, 1), HpackError);
  // 30 one-bits (EOS) followed by padding.
  assert.throws(() => huffmanDecode(hex('ffffffff'), 0, 4), HpackError);
  // A whole byte of padding is too much.
  assert.throws(() => huffmanDecode(hex('1fff'), 0, 2), HpackError);
});

test('malformed blocks: index 0, unknown index, truncated strings, table size above the advertised one', () => {
  const d = () => new HpackDecoder(limits);
  assert.throws(() => d().decode(hex('80')), HpackError);
  assert.throws(() => d().decode(hex('be')), HpackError); // index 62 with an empty dynamic table
  assert.throws(() => d().decode(hex('410f7777')), HpackError);
  assert.throws(() => d().decode(hex('3fe21f')), HpackError); // size update to 4096 + 4066 > 4096
  assert.throws(() => d().decode(hex('823f e11f')), HpackError); // size update after a field
});

test('an oversized header list is flagged but decoded whole, so the next block still decodes', () => {
  const d = new HpackDecoder({ maxTableSize: 4096, maxListSize: 300 });
  const big = encodeLiterals([['x-big', 'v'.repeat(200)]]);
  // Literal with incremental indexing of a new name, so the table must take it even when the list is refused.
  const indexed = Buffer.concat([Buffer.from([0x40, 5]), Buffer.from('x-big'), Buffer.from([0x7f, 200 - 127]), Buffer.from('v'.repeat(200))]);
  const first = d.decode(Buffer.concat([indexed, big]));
  assert.equal(first.oversized, true);
  const second = d.decode(hex('be')); // index 62: the entry the first block added
  assert.equal(second.headers['x-big'], 'v'.repeat(200));
});

test('encodeLiterals: long values take multi-byte lengths and decode back', () => {
  const fields: [string, string][] = [['grpc-status', '13'], ['grpc-message', 'x'.repeat(300)], ['content-type', 'application/grpc']];
  const { headers } = new HpackDecoder(limits).decode(encodeLiterals(fields));
  assert.deepEqual({ ...headers }, Object.fromEntries(fields));
});

/** Captures the header blocks a node:http2 (nghttp2) client sends on one connection, in order. */
async function capturedBlocks(requests: http2.OutgoingHttpHeaders[]): Promise<Buffer[]> {
  const blocks: Buffer[] = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let preface = false;
    sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
      }
      let pending: Buffer[] = [];
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const [type, flags] = [buf[3]!, buf[4]!];
        let p = buf.subarray(9, 9 + len);
        if (type === 4 && !(flags & 1)) sock.write(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]));
        if (type === 1 || type === 9) {
          if (type === 1 && flags & 8) p = p.subarray(1, p.length - p[0]!);
          if (type === 1 && flags & 0x20) p = p.subarray(5);
          pending.push(p);
          if (flags & 4) {
            blocks.push(Buffer.concat(pending));
            pending = [];
          }
        }
        buf = buf.subarray(9 + len);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => undefined);
  for (const h of requests) {
    const s = client.request(h, { endStream: true });
    s.on('error', () => undefined);
  }
  const deadline = Date.now() + 5000;
  while (blocks.length < requests.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  client.destroy();
  server.close();
  return blocks;
}

test('decodes what nghttp2 encodes: Huffman, dynamic-table hits and evictions over many blocks on one connection', async () => {
  const requests: http2.OutgoingHttpHeaders[] = [];
  for (let i = 0; i < 60; i++) {
    requests.push({
      ':method': 'POST',
      ':path': i % 3 ? '/envoy.service.ext_proc.v3.ExternalProcessor/Process' : `/grpc.health.v1.Health/Check`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${200 + i}m`,
      'x-request-id': `req-${i}-${'abcdefghijklmnopqrstuvwxyz'.slice(0, i % 26)}`,
      // Large values that push older entries out of the 4 KB table.
      'x-filler': `${i}:${'Zz~%'.repeat(40 + (i % 7) * 20)}`,
      'x-bytes': `é-${i}`,
    });
  }
  const blocks = await capturedBlocks(requests);
  assert.equal(blocks.length, requests.length);
  const d = new HpackDecoder(limits);
  for (let i = 0; i < blocks.length; i++) {
    const { headers, oversized } = d.decode(blocks[i]!);
    assert.equal(oversized, false);
    const want = requests[i]!;
    for (const [k, v] of Object.entries(want)) {
      // node:http2 sends header strings as latin1 bytes; the decoder reads them back the same way.
      assert.equal(headers[k], Buffer.from(String(v), 'latin1').toString('latin1'), `block ${i} ${k}`);
    }
  }
});
