// gRPC length-prefixed message framing (gRPC over HTTP/2, "Length-Prefixed-Message"):
// 1 byte compressed flag, 4 bytes big-endian length, then the message. A message may span several
// DATA chunks and one chunk may hold several messages; the common case (a whole message inside one
// chunk) is handed on as a view of the chunk, without a copy.
import { Status, type StatusCode } from './status.ts';

/** Why the framer stopped: the stream must end with this gRPC status. */
export interface FrameError {
  code: StatusCode;
  detail: string;
}

const { INTERNAL, RESOURCE_EXHAUSTED } = Status;

export class MessageFramer {
  /** Header bytes of a prefix split across chunks. */
  private readonly head = Buffer.allocUnsafe(5);
  private headFill = 0;
  /** Length of the message being read; -1 while reading a prefix. */
  private need = -1;
  private parts: Buffer[] = [];
  private got = 0;
  failed: FrameError | undefined;

  /**
   * @param maxBytes a message whose prefix announces more is refused before any of it is buffered
   * @param onMessage called for each complete message, in order
   */
  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (msg: Buffer) => void,
  ) {}

  /** Feeds one DATA chunk; returns the error that ends the stream, if any (then ignores further input). */
  push(chunk: Buffer): FrameError | undefined {
    if (this.failed) return this.failed;
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.need < 0) {
        let flag: number;
        let len: number;
        if (this.headFill === 0 && n - off >= 5) {
          flag = chunk[off]!;
          len = chunk.readUInt32BE(off + 1);
          off += 5;
        } else {
          const take = Math.min(5 - this.headFill, n - off);
          chunk.copy(this.head, this.headFill, off, off + take);
          this.headFill += take;
          off += take;
          if (this.headFill < 5) break;
          this.headFill = 0;
          flag = this.head[0]!;
          len = this.head.readUInt32BE(1);
        }
        // We advertise no grpc-encoding, so a compressed message is a protocol error (the gRPC spec: INTERNAL).
        if (flag !== 0) return this.fail(INTERNAL, flag === 1 ? 'compressed message received but no message encoding was negotiated' : `invalid message flag ${flag}`);
        if (len > this.maxBytes) return this.fail(RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${this.maxBytes})`);
        if (len === 0) {
          this.onMessage(EMPTY);
          continue;
        }
        this.need = len;
      }
      const avail = n - off;
      if (this.got === 0 && avail >= this.need) {
        const msg = chunk.subarray(off, off + this.need);
        off += this.need;
        this.need = -1;
        this.onMessage(msg);
        continue;
      }
      const take = Math.min(avail, this.need - this.got);
      this.parts.push(chunk.subarray(off, off + take));
      this.got += take;
      off += take;
      if (this.got === this.need) {
        const msg = Buffer.concat(this.parts, this.need);
        this.parts = [];
        this.got = 0;
        this.need = -1;
        this.onMessage(msg);
      }
    }
    return this.failed;
  }

  /** True while a prefix or message is partly received (END_STREAM now would cut it). */
  get partial(): boolean {
    return this.headFill > 0 || this.need >= 0;
  }

  private fail(code: StatusCode, detail: string): FrameError {
    this.failed = { code, detail };
    this.parts = [];
    return this.failed;
  }
}

const EMPTY = Buffer.alloc(0);

/** One framed message: the 5-byte prefix written in front of `body` (copying it once). Prefer writing the prefix in place. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 5);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}
