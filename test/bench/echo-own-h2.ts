// Bench-only PROTOTYPE, not a Tollgate transport: the echo processor of echo-h2.ts (same proto-loader codec, same
// replies) on a minimal hand-written HTTP/2 server over net.Socket instead of node:http2. `npm run bench -- transport`
// runs it next to the node:http2 and grpc-js echoes to show what a leaner transport could save per four-phase
// exchange. It decodes every request header block (HPACK with static and dynamic tables and Huffman, RFC 7541) and
// keeps the protocol a grpc-js client needs (preface, SETTINGS and ACK, HEADERS/CONTINUATION, DATA with padding,
// gRPC message reassembly, WINDOW_UPDATE, PING, RST_STREAM, GOAWAY). It does not enforce the peer's send windows or
// frame size (its replies are tiny), validate Huffman padding, limit header lists, or do TLS: a production transport
// would have to, and would keep Tollgate's auth, health and shutdown behaviour.
import net from 'node:net';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';

/** RFC 7541 Appendix B: Huffman code length of each symbol 0..256 (EOS); the code is canonical. */
const HUFFMAN_LENGTHS = [13,23,28,28,28,28,28,28,28,24,30,28,28,30,28,28,28,28,28,28,28,28,30,28,28,28,28,28,28,28,28,28,6,10,10,12,13,6,8,11,10,10,8,11,8,6,6,6,5,5,5,6,6,6,6,6,6,6,7,8,15,6,12,10,13,6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,8,7,8,13,19,13,14,6,15,5,6,5,6,5,6,6,6,5,7,7,6,6,6,5,6,7,6,5,5,6,7,7,7,7,7,15,11,14,13,28,20,22,20,20,22,22,22,23,22,23,23,23,23,23,24,23,24,24,22,23,24,23,23,23,23,21,22,23,22,23,23,24,22,21,20,22,22,23,23,21,23,22,22,24,21,22,23,23,21,21,22,21,23,22,23,23,20,22,22,22,23,22,22,23,26,26,20,19,22,23,22,25,26,26,26,27,27,26,24,25,19,21,26,27,27,26,27,24,21,21,26,26,28,27,27,27,20,24,20,21,22,21,21,23,22,22,25,25,24,24,26,23,26,27,26,26,27,27,27,27,27,28,27,27,27,27,27,26,30];
/** RFC 7541 Appendix A: the static table, index 1..61. */
const STATIC: [string, string][] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'], [':scheme', 'http'],
  [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'], ['accept-language', ''],
  ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''],
  ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

// Huffman decode tree: children of node n at T[2n], T[2n+1]; a negative entry is a leaf, -(symbol + 1).
const T = (() => {
  const order = HUFFMAN_LENGTHS.map((_, s) => s).sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  const tree: number[] = [0, 0];
  let code = 0;
  let prev = HUFFMAN_LENGTHS[order[0]!]!;
  for (const sym of order) {
    const bits = HUFFMAN_LENGTHS[sym]!;
    code *= 2 ** (bits - prev);
    prev = bits;
    let n = 0;
    for (let b = bits - 1; b >= 0; b--) {
      const slot = 2 * n + (Math.floor(code / 2 ** b) & 1);
      if (b === 0) tree[slot] = -(sym + 1);
      else {
        if (!tree[slot]) {
          tree[slot] = tree.length / 2;
          tree.push(0, 0);
        }
        n = tree[slot]!;
      }
    }
    code++;
  }
  return Int32Array.from(tree);
})();

function huffDecode(buf: Buffer, start: number, end: number): string {
  let n = 0;
  let out = '';
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const v = T[2 * n + ((byte >> b) & 1)]!;
      if (v < 0) {
        out += String.fromCharCode(-v - 1);
        n = 0;
      } else n = v;
    }
  }
  return out;
}

/** HPACK decoder (RFC 7541 §6): one per connection, since the dynamic table is connection state. */
class HpackDecoder {
  private readonly dyn: [string, string][] = []; // newest first
  private size = 0;
  private max = 4096;
  private pos = 0;
  private buf: Buffer = Buffer.alloc(0);

  decode(block: Buffer): Map<string, string> {
    this.buf = block;
    this.pos = 0;
    const out = new Map<string, string>();
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      if (b & 0x80) {
        const [name, value] = this.entry(this.int(7)); // indexed field
        out.set(name, value);
      } else if (b & 0x40) {
        const i = this.int(6); // literal with incremental indexing
        const name = i ? this.entry(i)[0] : this.str();
        const value = this.str();
        this.add(name, value);
        out.set(name, value);
      } else if (b & 0x20) {
        this.max = this.int(5); // dynamic table size update
        this.evict();
      } else {
        const i = this.int(4); // literal without indexing / never indexed
        const name = i ? this.entry(i)[0] : this.str();
        out.set(name, this.str());
      }
    }
    return out;
  }

  private int(prefix: number): number {
    const mask = (1 << prefix) - 1;
    let v = this.buf[this.pos++]! & mask;
    if (v < mask) return v;
    for (let m = 0; ; m += 7) {
      const b = this.buf[this.pos++];
      if (b === undefined || m > 28) throw new Error('HPACK integer');
      v += (b & 0x7f) * 2 ** m;
      if (!(b & 0x80)) return v;
    }
  }

  private str(): string {
    const huffman = this.buf[this.pos]! & 0x80;
    const len = this.int(7);
    if (this.pos + len > this.buf.length) throw new Error('HPACK string');
    const s = huffman ? huffDecode(this.buf, this.pos, this.pos + len) : this.buf.toString('latin1', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  private entry(i: number): [string, string] {
    const e = i <= STATIC.length ? STATIC[i - 1] : this.dyn[i - STATIC.length - 1];
    if (!e) throw new Error(`HPACK index ${i}`);
    return e;
  }

  private add(name: string, value: string): void {
    this.dyn.unshift([name, value]);
    this.size += name.length + value.length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.max) {
      const [n, v] = this.dyn.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }
}

const PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
const svc = extProcService().Process!;
const decode = (b: Buffer): ProcessingRequest => svc.requestDeserialize(b) as ProcessingRequest;
const encode = (m: ProcessingResponse): Buffer => svc.responseSerialize(m);

const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 1, ACK = 1, END_HEADERS = 4, PADDED = 8, PRIORITY = 0x20;
/** Window bytes consumed before a WINDOW_UPDATE gives them back (the default window is 65,535). */
const WINDOW_REFILL = 16384;

function frameHeader(len: number, type: number, flags: number, id: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = len >>> 16;
  b[1] = (len >>> 8) & 0xff;
  b[2] = len & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(id, 5);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

// Response headers `:status: 200` (static index 8) and `content-type: application/grpc` (literal, name index 31);
// trailers `grpc-status: 0` (literal, new name). Never indexed: no encoder state to keep.
const RESPONSE_HEADERS = Buffer.concat([Buffer.from([0x88, 0x0f, 0x10, 16]), Buffer.from('application/grpc')]);
const OK_TRAILERS = Buffer.concat([Buffer.from([0x00, 11]), Buffer.from('grpc-status'), Buffer.from([1, 0x30])]);

interface Stream {
  /** Bytes of the gRPC message being read (prefix included until it is complete). */
  parts: Buffer[];
  have: number;
  /** Length of the message being read; -1 while reading its 5-byte prefix. */
  need: number;
  headersSent: boolean;
  unacked: number;
}

function serve(sock: net.Socket): void {
  sock.setNoDelay(true);
  const hpack = new HpackDecoder();
  const streams = new Map<number, Stream>();
  let pending: Buffer | undefined;
  let prefaceSeen = false;
  let block: Buffer[] | undefined;
  let blockStream = 0;
  let blockEnds = false;
  let connUnacked = 0;
  // Everything written while handling one read goes out in one socket write.
  let out: Buffer[] = [];
  sock.write(Buffer.concat([frameHeader(6, SETTINGS, 0, 0), Buffer.from([0, 3, 0, 0x10, 0, 0])])); // MAX_CONCURRENT_STREAMS

  const reply = (id: number, s: Stream, msg: Buffer): void => {
    const kind = decode(msg).request;
    if (!kind) return;
    const body = encode(kind === 'request_trailers' || kind === 'response_trailers' ? { [kind]: {} } : { [kind]: { response: {} } });
    if (!s.headersSent) {
      s.headersSent = true;
      out.push(frameHeader(RESPONSE_HEADERS.length, HEADERS, END_HEADERS, id), RESPONSE_HEADERS);
    }
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.length, 1);
    out.push(frameHeader(body.length + 5, DATA, 0, id), prefix, body);
  };

  const onData = (id: number, data: Buffer, end: boolean): void => {
    const s = streams.get(id);
    if (!s) return;
    s.unacked += data.length;
    let p = data;
    while (p.length > 0) {
      if (s.need < 0) {
        s.parts.push(p);
        s.have += p.length;
        if (s.have < 5) break;
        const all = s.parts.length === 1 ? s.parts[0]! : Buffer.concat(s.parts);
        s.need = all.readUInt32BE(1);
        s.parts = [];
        s.have = 0;
        p = all.subarray(5);
        if (s.need === 0) {
          reply(id, s, Buffer.alloc(0));
          s.need = -1;
        }
        continue;
      }
      const take = Math.min(s.need - s.have, p.length);
      s.parts.push(take === p.length ? p : p.subarray(0, take));
      s.have += take;
      p = p.subarray(take);
      if (s.have === s.need) {
        const msg = s.parts.length === 1 ? s.parts[0]! : Buffer.concat(s.parts);
        s.parts = [];
        s.have = 0;
        s.need = -1;
        reply(id, s, msg);
      }
    }
    if (s.unacked >= WINDOW_REFILL) {
      out.push(frameHeader(4, WINDOW_UPDATE, 0, id), u32(s.unacked));
      s.unacked = 0;
    }
    if (end) {
      out.push(frameHeader(OK_TRAILERS.length, HEADERS, END_HEADERS | END_STREAM, id), OK_TRAILERS);
      streams.delete(id);
    }
  };

  const onHeaders = (id: number, headerBlock: Buffer, end: boolean): void => {
    const h = hpack.decode(headerBlock);
    if (h.get(':path') !== PATH) throw new Error(`unexpected :path ${h.get(':path')}`);
    streams.set(id, { parts: [], have: 0, need: -1, headersSent: false, unacked: 0 });
    if (end) onData(id, Buffer.alloc(0), true);
  };

  const onFrame = (type: number, flags: number, id: number, p: Buffer): void => {
    switch (type) {
      case DATA:
        connUnacked += p.length;
        onData(id, flags & PADDED ? p.subarray(1, p.length - p[0]!) : p, (flags & END_STREAM) !== 0);
        return;
      case HEADERS: {
        let b = flags & PADDED ? p.subarray(1, p.length - p[0]!) : p;
        if (flags & PRIORITY) b = b.subarray(5);
        if (flags & END_HEADERS) onHeaders(id, b, (flags & END_STREAM) !== 0);
        else {
          block = [b];
          blockStream = id;
          blockEnds = (flags & END_STREAM) !== 0;
        }
        return;
      }
      case CONTINUATION:
        block!.push(p);
        if (flags & END_HEADERS) {
          const b = Buffer.concat(block!);
          block = undefined;
          onHeaders(blockStream, b, blockEnds);
        }
        return;
      case RST_STREAM:
        streams.delete(id);
        return;
      case SETTINGS:
        if (!(flags & ACK)) out.push(frameHeader(0, SETTINGS, ACK, 0));
        return;
      case PING:
        if (!(flags & ACK)) out.push(frameHeader(8, PING, ACK, 0), p);
        return;
      case GOAWAY:
        sock.end();
        return;
      default:
        return; // WINDOW_UPDATE, PRIORITY, unknown types
    }
  };

  sock.on('data', (chunk: Buffer) => {
    const b = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let i = 0;
    if (!prefaceSeen) {
      if (b.length < 24) {
        pending = b;
        return;
      }
      i = 24; // PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n
      prefaceSeen = true;
    }
    try {
      while (b.length - i >= 9) {
        const len = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
        if (b.length - i < 9 + len) break;
        onFrame(b[i + 3]!, b[i + 4]!, b.readUInt32BE(i + 5) & 0x7fffffff, b.subarray(i + 9, i + 9 + len));
        i += 9 + len;
      }
    } catch {
      sock.destroy();
      return;
    }
    if (i < b.length) pending = b.subarray(i);
    if (connUnacked >= WINDOW_REFILL) {
      out.push(frameHeader(4, WINDOW_UPDATE, 0, 0), u32(connUnacked));
      connUnacked = 0;
    }
    if (out.length > 0) {
      const o = out.length === 1 ? out[0]! : Buffer.concat(out);
      out = [];
      sock.write(o);
    }
  });
  sock.on('error', () => undefined);
}

const server = net.createServer(serve);
server.listen(Number((process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:0').split(':')[1]), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`READY ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
