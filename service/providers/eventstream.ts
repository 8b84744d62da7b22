// AWS `application/vnd.amazon.eventstream` framing (Bedrock ConverseStream). Each message:
//   prelude  = total_length u32 BE | headers_length u32 BE | prelude_crc u32 (CRC32 of the first 8 bytes)
//   headers  = repeated { name_len u8 | name | type u8 | value }
//   payload
//   message_crc u32 (CRC32 of everything before it)
// Frames arrive split across (or coalesced in) arbitrary TCP chunks, so the decoder buffers.
import { GatewayError } from '../errors.ts';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export type HeaderValue = string | boolean | number | bigint | Buffer | Date;

export interface EventStreamMessage {
  headers: Record<string, HeaderValue>;
  payload: Buffer;
}

/** Frames bigger than this are refused (AWS caps payloads at 16 MiB, headers at 128 KiB). */
const MAX_MESSAGE = 16 * 1024 * 1024 + 128 * 1024 + 16;

function protocolError(msg: string): GatewayError {
  return new GatewayError('upstream', `invalid AWS event stream from upstream: ${msg}`, { code: 'upstream_protocol' });
}

function decodeHeaders(buf: Buffer): Record<string, HeaderValue> {
  const out: Record<string, HeaderValue> = {};
  let p = 0;
  while (p < buf.length) {
    const nameLen = buf.readUInt8(p);
    p += 1;
    const name = buf.toString('utf8', p, p + nameLen);
    p += nameLen;
    const type = buf.readUInt8(p);
    p += 1;
    switch (type) {
      case 0:
        out[name] = true;
        break;
      case 1:
        out[name] = false;
        break;
      case 2:
        out[name] = buf.readInt8(p);
        p += 1;
        break;
      case 3:
        out[name] = buf.readInt16BE(p);
        p += 2;
        break;
      case 4:
        out[name] = buf.readInt32BE(p);
        p += 4;
        break;
      case 5:
        out[name] = buf.readBigInt64BE(p);
        p += 8;
        break;
      case 6: {
        const len = buf.readUInt16BE(p);
        p += 2;
        out[name] = Buffer.from(buf.subarray(p, p + len));
        p += len;
        break;
      }
      case 7: {
        const len = buf.readUInt16BE(p);
        p += 2;
        out[name] = buf.toString('utf8', p, p + len);
        p += len;
        break;
      }
      case 8:
        out[name] = new Date(Number(buf.readBigInt64BE(p)));
        p += 8;
        break;
      case 9:
        out[name] = Buffer.from(buf.subarray(p, p + 16));
        p += 16;
        break;
      default:
        throw protocolError(`unknown header value type ${type}`);
    }
    if (p > buf.length) throw protocolError('header runs past the header block');
  }
  return out;
}

export class EventStreamDecoder {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): EventStreamMessage[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: EventStreamMessage[] = [];
    while (this.size >= 12) {
      const head = this.peek(12);
      const total = head.readUInt32BE(0);
      const headersLen = head.readUInt32BE(4);
      if (crc32(head, 0, 8) !== head.readUInt32BE(8)) throw protocolError('prelude checksum mismatch');
      if (total < 16 || total > MAX_MESSAGE || headersLen > total - 16) throw protocolError(`bad frame length ${total}`);
      if (this.size < total) break;
      const frame = this.take(total);
      if (crc32(frame, 0, total - 4) !== frame.readUInt32BE(total - 4)) throw protocolError('message checksum mismatch');
      out.push({
        headers: decodeHeaders(frame.subarray(12, 12 + headersLen)),
        payload: frame.subarray(12 + headersLen, total - 4),
      });
    }
    return out;
  }

  /** True when bytes of an unfinished frame are left over (the stream was cut mid-frame). */
  get pending(): boolean {
    return this.size > 0;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) {
      const joined = Buffer.concat(this.chunks, this.size);
      this.chunks = [joined];
    }
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let frame: Buffer;
    if (first.length >= n) {
      frame = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.chunks, this.size);
      frame = joined.subarray(0, n);
      this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.size -= n;
    return frame;
  }
}

/** Encode one message; string headers only need type 7, but every type is supported for test fixtures. */
export function encodeEventStreamMessage(headers: Record<string, HeaderValue>, payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const nameBuf = Buffer.from(name, 'utf8');
    const head = Buffer.alloc(1 + nameBuf.length + 1);
    head.writeUInt8(nameBuf.length, 0);
    nameBuf.copy(head, 1);
    let body: Buffer;
    let type: number;
    if (typeof value === 'string') {
      const v = Buffer.from(value, 'utf8');
      type = 7;
      body = Buffer.alloc(2 + v.length);
      body.writeUInt16BE(v.length, 0);
      v.copy(body, 2);
    } else if (typeof value === 'boolean') {
      type = value ? 0 : 1;
      body = Buffer.alloc(0);
    } else if (typeof value === 'number') {
      type = 4;
      body = Buffer.alloc(4);
      body.writeInt32BE(value, 0);
    } else if (typeof value === 'bigint') {
      type = 5;
      body = Buffer.alloc(8);
      body.writeBigInt64BE(value, 0);
    } else if (value instanceof Date) {
      type = 8;
      body = Buffer.alloc(8);
      body.writeBigInt64BE(BigInt(value.getTime()), 0);
    } else {
      type = 6;
      body = Buffer.alloc(2 + value.length);
      body.writeUInt16BE(value.length, 0);
      value.copy(body, 2);
    }
    head.writeUInt8(type, 1 + nameBuf.length);
    parts.push(head, body);
  }
  const headerBlock = Buffer.concat(parts);
  const total = 12 + headerBlock.length + payload.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(headerBlock.length, 4);
  out.writeUInt32BE(crc32(out, 0, 8), 8);
  headerBlock.copy(out, 12);
  payload.copy(out, 12 + headerBlock.length);
  out.writeUInt32BE(crc32(out, 0, total - 4), total - 4);
  return out;
}
