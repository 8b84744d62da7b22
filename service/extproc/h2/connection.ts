// A server-side HTTP/2 connection (RFC 9113) over one socket, written for gRPC: what node:http2 does for us
// otherwise, at a fraction of its cost per stream (`npm run bench -- transport`). Frames are parsed from the
// socket's chunks as they come; everything written while handling one read (or one turn of replies) leaves in
// one socket write. Flow control is kept both ways: our receive windows are large and refilled as data is
// handed on (it is always read at once), and the peer's windows and frame size bound what we send (queued
// per stream until a WINDOW_UPDATE). Header blocks are decoded with the connection's HPACK decoder (hpack.ts);
// ours are literals. Errors follow RFC 9113 §5.4: a connection error sends GOAWAY and closes the socket, a
// stream error resets that stream.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { encodeLiterals, HpackDecoder, HpackError, type HeaderMap } from './hpack.ts';
import type { GrpcStream, OutgoingHeaders } from './stream.ts';

const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
/** RFC 9113 §7 error codes. */
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9 } as const;
const SETTING = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6 } as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DEFAULT_WINDOW = 65535;
const MAX_WINDOW = 0x7fffffff;
/** The largest frame we accept (we advertise no other, so the RFC's default). */
const MAX_FRAME_IN = 16384;
const HEADER_TABLE_SIZE = 4096;

export interface ConnectionOptions {
  /** Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindow: number;
  /** Our receive window for the whole connection. */
  connectionWindow: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a larger request header list is refused (the stream is reset). */
  maxHeaderListSize: number;
  /** A new stream, its request headers decoded. */
  onStream(stream: H2Stream, headers: HeaderMap): void;
}

type Outbound = { kind: 'data'; buf: Buffer; end: boolean } | { kind: 'headers'; block: Buffer; end: boolean };

/**
 * One stream, server side, with the part of node:http2's ServerHttp2Stream that the gRPC code uses: events
 * 'data' (a DATA payload), 'end' (the peer half-closed), 'wantTrailers' and 'close' (closed both ways or reset;
 * `rstCode` says how: NO_ERROR for a clean end).
 */
export class H2Stream extends EventEmitter implements GrpcStream {
  /** Our side is finished (END_STREAM sent or reset). */
  closed = false;
  destroyed = false;
  rstCode: number | undefined;
  /** The peer half-closed (END_STREAM received). */
  remoteEnded = false;
  private localEnded = false;
  private headersSent = false;
  private waitForTrailers = false;
  /** Send window for this stream (peer's SETTINGS_INITIAL_WINDOW_SIZE plus its WINDOW_UPDATEs). */
  sendWindow: number;
  /** Received bytes not yet given back with a WINDOW_UPDATE, and the window the peer still has. */
  unacked = 0;
  recvWindow: number;
  readonly queue: Outbound[] = [];

  constructor(
    readonly id: number,
    readonly session: H2Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    super();
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Sends the response headers; `endStream` makes them a trailers-only response. */
  respond(headers: OutgoingHeaders, opts?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    if (this.headersSent || this.closed) return;
    this.headersSent = true;
    this.waitForTrailers = opts?.waitForTrailers === true;
    const end = opts?.endStream === true;
    this.session.sendHeaders(this, headerBlock(headers), end);
    if (end) this.finishLocal();
  }

  /** Sends one DATA payload (split and queued as the peer's frame size and windows require). */
  write(data: Buffer): boolean {
    if (this.localEnded || this.closed) return false;
    if (!this.headersSent) this.respond({ ':status': 200 });
    this.session.sendData(this, data, false);
    return true;
  }

  /** Ends our side: 'wantTrailers' first when respond() asked for it, else an empty END_STREAM DATA frame. */
  end(): void {
    if (this.localEnded || this.closed) return;
    if (!this.headersSent) this.respond({ ':status': 200 });
    if (this.waitForTrailers) {
      this.waitForTrailers = false;
      this.emit('wantTrailers');
      if (!this.localEnded && !this.closed) this.sendTrailers({});
      return;
    }
    this.session.sendData(this, EMPTY, true);
    this.finishLocal();
  }

  sendTrailers(headers: OutgoingHeaders): void {
    if (this.localEnded || this.closed) return;
    this.session.sendHeaders(this, headerBlock(headers), true);
    this.finishLocal();
  }

  /** Resets the stream (RST_STREAM with `code`). */
  close(code: number = H2_ERROR.NO_ERROR): void {
    if (this.closed) return;
    this.session.sendReset(this.id, code);
    this.terminate(code);
  }

  /** Data is always read at once: there is nothing to resume. */
  resume(): this {
    return this;
  }

  private finishLocal(): void {
    this.localEnded = true;
    // The whole response is out; a peer still sending is told to stop (RFC 9113 §8.1). Not while the response
    // waits for window: the reset would overtake it.
    if (!this.remoteEnded && this.queue.length === 0) this.session.sendReset(this.id, H2_ERROR.NO_ERROR);
    this.terminate(H2_ERROR.NO_ERROR);
  }

  /** @internal the connection's side: the stream is over, with this code. */
  terminate(code: number): void {
    if (this.destroyed) return;
    this.closed = true;
    this.destroyed = true;
    this.rstCode ??= code;
    this.session.forget(this);
    // As node:http2 does, 'close' comes after the current handlers have run.
    process.nextTick(() => this.emit('close'));
  }
}

const EMPTY = Buffer.alloc(0);

/** Encoded blocks of frozen header objects (the gRPC response headers and OK trailers every stream sends). */
const frozenBlocks = new WeakMap<OutgoingHeaders, Buffer>();

function headerBlock(headers: OutgoingHeaders): Buffer {
  if (!Object.isFrozen(headers)) return encodeHeaders(headers);
  let block = frozenBlocks.get(headers);
  if (!block) frozenBlocks.set(headers, (block = encodeHeaders(headers)));
  return block;
}

function encodeHeaders(headers: OutgoingHeaders): Buffer {
  const fields: [string, string][] = [];
  // Pseudo-headers first (RFC 9113 §8.3).
  if (headers[':status'] !== undefined) fields.push([':status', String(headers[':status'])]);
  for (const [k, v] of Object.entries(headers)) if (k !== ':status') fields.push([k.toLowerCase(), String(v)]);
  return encodeLiterals(fields);
}

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One HTTP/2 connection from a client (Envoy), server side. */
export class H2Connection extends EventEmitter {
  private readonly streams = new Map<number, H2Stream>();
  private readonly hpack: HpackDecoder;
  private pending: Buffer | undefined;
  private prefaceSeen = false;
  /** Highest client stream id seen (GOAWAY's last-stream-id). */
  private lastStreamId = 0;
  /** A header block in progress: HEADERS without END_HEADERS, then CONTINUATION frames. */
  private block: { id: number; parts: Buffer[]; size: number; end: boolean } | undefined;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = 16384;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow: number;
  private connUnacked = 0;
  /** Streams that received data in this read, whose window may need a refill. */
  private readonly fed = new Set<H2Stream>();
  /** Streams with DATA waiting for window, in the order they queued. */
  private readonly blocked = new Set<H2Stream>();
  private out: Buffer[] = [];
  private flushScheduled = false;
  private inRead = false;
  private goingAway = false;
  private dead = false;

  constructor(
    readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    super();
    this.hpack = new HpackDecoder({ maxTableSize: HEADER_TABLE_SIZE, maxListSize: opts.maxHeaderListSize });
    this.connRecvWindow = opts.connectionWindow;
    socket.setNoDelay(true);
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTING.INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(opts.streamWindow, 2);
    settings.writeUInt16BE(SETTING.MAX_HEADER_LIST_SIZE, 6);
    settings.writeUInt32BE(opts.maxHeaderListSize, 8);
    this.frame(FRAME.SETTINGS, 0, 0, settings);
    if (opts.connectionWindow > DEFAULT_WINDOW) this.frame(FRAME.WINDOW_UPDATE, 0, 0, u32(opts.connectionWindow - DEFAULT_WINDOW));
    this.flush();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onSocketClose());
  }

  /** Graceful close: GOAWAY (no new streams); the socket ends once the open streams have. */
  close(): void {
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.goAway(H2_ERROR.NO_ERROR);
    this.flush();
    this.endIfDone();
  }

  /** Resets every stream and closes the socket now. */
  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    for (const s of [...this.streams.values()]) s.terminate(H2_ERROR.CANCEL);
    this.socket.destroy();
  }

  // ── receiving ─────────────────────────────────────────────────────────────

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    const b = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let i = 0;
    this.inRead = true;
    try {
      if (!this.prefaceSeen) {
        if (b.length < PREFACE.length) {
          if (!PREFACE.subarray(0, b.length).equals(b)) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'bad connection preface');
          this.pending = b;
          return;
        }
        if (!b.subarray(0, PREFACE.length).equals(PREFACE)) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'bad connection preface');
        i = PREFACE.length;
        this.prefaceSeen = true;
      }
      while (b.length - i >= 9 && !this.dead) {
        const len = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
        if (len > MAX_FRAME_IN) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `frame of ${len} bytes`);
        if (b.length - i < 9 + len) break;
        const type = b[i + 3]!;
        const flags = b[i + 4]!;
        const id = b.readUInt32BE(i + 5) & 0x7fffffff;
        this.onFrame(type, flags, id, b.subarray(i + 9, i + 9 + len));
        i += 9 + len;
      }
      if (i < b.length && !this.dead) this.pending = i === 0 ? b : Buffer.from(b.subarray(i));
      this.refillWindows();
    } catch (err) {
      if (err instanceof ConnectionError) this.fail(err.code);
      else if (err instanceof HpackError) this.fail(H2_ERROR.COMPRESSION_ERROR);
      else throw err;
    } finally {
      this.inRead = false;
      this.flush();
    }
  }

  private onFrame(type: number, flags: number, id: number, p: Buffer): void {
    if (this.block && type !== FRAME.CONTINUATION) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'header block interrupted');
    switch (type) {
      case FRAME.DATA:
        return this.onDataFrame(flags, id, p);
      case FRAME.HEADERS:
        return this.onHeadersFrame(flags, id, p);
      case FRAME.CONTINUATION: {
        const blk = this.block;
        if (!blk || blk.id !== id) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'unexpected CONTINUATION');
        blk.parts.push(p);
        blk.size += p.length;
        if (blk.size > this.opts.maxHeaderListSize * 2 + 16384) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'header block too large');
        if (flags & FLAG.END_HEADERS) {
          this.block = undefined;
          this.onHeaderBlock(id, Buffer.concat(blk.parts, blk.size), blk.end);
        }
        return;
      }
      case FRAME.PRIORITY:
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (p.length !== 5) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PRIORITY length');
        return;
      case FRAME.RST_STREAM: {
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'RST_STREAM length');
        if (id > this.lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
        this.streams.get(id)?.terminate(p.readUInt32BE(0));
        return;
      }
      case FRAME.SETTINGS:
        return this.onSettings(flags, id, p);
      case FRAME.PUSH_PROMISE:
        throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FRAME.PING:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PING on a stream');
        if (p.length !== 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PING length');
        if (!(flags & FLAG.ACK)) this.frame(FRAME.PING, FLAG.ACK, 0, p);
        return;
      case FRAME.GOAWAY:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client opens no more streams; those open finish, then it closes the socket.
        this.goingAway = true;
        this.endIfDone();
        return;
      case FRAME.WINDOW_UPDATE:
        return this.onWindowUpdate(id, p);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onHeadersFrame(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let b = p;
    if (flags & FLAG.PADDED) b = unpad(b);
    if (flags & FLAG.PRIORITY) {
      if (b.length < 5) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'HEADERS priority');
      b = b.subarray(5);
    }
    const end = (flags & FLAG.END_STREAM) !== 0;
    if (flags & FLAG.END_HEADERS) this.onHeaderBlock(id, b, end);
    else this.block = { id, parts: [Buffer.from(b)], size: b.length, end };
  }

  private onHeaderBlock(id: number, block: Buffer, end: boolean): void {
    // Decoded even when the stream is refused: the HPACK table is connection state.
    const { headers, oversized } = this.hpack.decode(block);
    const existing = this.streams.get(id);
    if (existing) {
      // Request trailers: gRPC has none we use; they end the request.
      if (!end) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'trailers without END_STREAM');
      this.endRemote(existing);
      return;
    }
    if (id % 2 === 0 || id <= this.lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `stream id ${id} not new`);
    this.lastStreamId = id;
    if (this.goingAway || this.dead) return this.sendReset(id, H2_ERROR.REFUSED_STREAM);
    if (oversized) return this.sendReset(id, H2_ERROR.PROTOCOL_ERROR);
    const stream = new H2Stream(id, this, this.peerInitialWindow, this.opts.streamWindow);
    this.streams.set(id, stream);
    this.opts.onStream(stream, headers);
    if (end && !stream.closed) this.endRemote(stream);
  }

  private onDataFrame(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole payload, padding included.
    if (p.length > this.connRecvWindow) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.connRecvWindow -= p.length;
    this.connUnacked += p.length;
    const data = flags & FLAG.PADDED ? unpad(p) : p;
    const s = this.streams.get(id);
    if (!s || s.closed) {
      if (id > this.lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // a stream we closed or reset: its data still counted against the connection window
    }
    if (s.remoteEnded) {
      s.close(H2_ERROR.STREAM_CLOSED);
      return;
    }
    if (p.length > s.recvWindow) {
      s.close(H2_ERROR.FLOW_CONTROL_ERROR);
      return;
    }
    s.recvWindow -= p.length;
    s.unacked += p.length;
    this.fed.add(s);
    if (data.length > 0) s.emit('data', data);
    if (flags & FLAG.END_STREAM) this.endRemote(s);
  }

  private endRemote(s: H2Stream): void {
    if (s.remoteEnded) return;
    s.remoteEnded = true;
    s.emit('end');
  }

  private onSettings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG.ACK) {
      if (p.length !== 0) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (p.length % 6 !== 0) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS length');
    for (let o = 0; o < p.length; o += 6) {
      const key = p.readUInt16BE(o);
      const value = p.readUInt32BE(o + 2);
      if (key === SETTING.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'stream window overflow');
        }
      } else if (key === SETTING.MAX_FRAME_SIZE) {
        if (value < 16384 || value > 16777215) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
        this.peerMaxFrame = value;
      } else if (key === SETTING.ENABLE_PUSH && value > 1) {
        throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'ENABLE_PUSH out of range');
      }
      // HEADER_TABLE_SIZE: our encoder uses no dynamic table. MAX_CONCURRENT_STREAMS: we open none.
    }
    this.frame(FRAME.SETTINGS, FLAG.ACK, 0, EMPTY);
    this.pump();
  }

  private onWindowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const inc = p.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'connection window overflow');
    } else {
      const s = this.streams.get(id);
      if (!s) return;
      if (inc === 0) return s.close(H2_ERROR.PROTOCOL_ERROR);
      s.sendWindow += inc;
      if (s.sendWindow > MAX_WINDOW) return s.close(H2_ERROR.FLOW_CONTROL_ERROR);
    }
    this.pump();
  }

  /** Gives received bytes back to the peer once half of a window is used: data is handed on as it arrives. */
  private refillWindows(): void {
    if (this.connUnacked >= this.opts.connectionWindow / 2) {
      this.frame(FRAME.WINDOW_UPDATE, 0, 0, u32(this.connUnacked));
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
    if (this.fed.size === 0) return;
    for (const s of this.fed) {
      if (s.unacked >= this.opts.streamWindow / 2 && !s.remoteEnded && !s.closed) {
        this.frame(FRAME.WINDOW_UPDATE, 0, s.id, u32(s.unacked));
        s.recvWindow += s.unacked;
        s.unacked = 0;
      }
    }
    this.fed.clear();
  }

  // ── sending ───────────────────────────────────────────────────────────────

  /** @internal */
  sendHeaders(s: H2Stream, block: Buffer, end: boolean): void {
    // Behind queued DATA, headers (trailers) wait their turn.
    if (s.queue.length > 0) {
      s.queue.push({ kind: 'headers', block, end });
      return;
    }
    this.writeHeaderBlock(s.id, block, end);
  }

  private writeHeaderBlock(id: number, block: Buffer, end: boolean): void {
    const max = this.peerMaxFrame;
    if (block.length <= max) {
      this.frame(FRAME.HEADERS, FLAG.END_HEADERS | (end ? FLAG.END_STREAM : 0), id, block);
      return;
    }
    this.frame(FRAME.HEADERS, end ? FLAG.END_STREAM : 0, id, block.subarray(0, max));
    for (let o = max; o < block.length; o += max) {
      const last = o + max >= block.length;
      this.frame(FRAME.CONTINUATION, last ? FLAG.END_HEADERS : 0, id, block.subarray(o, Math.min(o + max, block.length)));
    }
  }

  /** @internal */
  sendData(s: H2Stream, data: Buffer, end: boolean): void {
    s.queue.push({ kind: 'data', buf: data, end });
    this.drainStream(s);
    if (s.queue.length > 0) this.blocked.add(s);
  }

  /** @internal */
  sendReset(id: number, code: number): void {
    this.frame(FRAME.RST_STREAM, 0, id, u32(code));
  }

  /** Sends what the windows allow of each blocked stream's queue, in order. */
  private pump(): void {
    for (const s of this.blocked) {
      this.drainStream(s);
      if (s.queue.length === 0) {
        this.blocked.delete(s);
        if (s.closed && this.streams.get(s.id) === s) this.streams.delete(s.id);
      }
      if (this.connSendWindow <= 0) break;
    }
    this.endIfDone();
  }

  private drainStream(s: H2Stream): void {
    while (s.queue.length > 0) {
      const item = s.queue[0]!;
      if (item.kind === 'headers') {
        this.writeHeaderBlock(s.id, item.block, item.end);
        s.queue.shift();
        continue;
      }
      const buf = item.buf;
      if (buf.length === 0) {
        this.frame(FRAME.DATA, item.end ? FLAG.END_STREAM : 0, s.id, EMPTY);
        s.queue.shift();
        continue;
      }
      const room = Math.min(this.connSendWindow, s.sendWindow);
      if (room <= 0) return;
      const n = Math.min(room, buf.length, this.peerMaxFrame);
      const last = n === buf.length;
      this.frame(FRAME.DATA, last && item.end ? FLAG.END_STREAM : 0, s.id, last ? buf : buf.subarray(0, n));
      this.connSendWindow -= n;
      s.sendWindow -= n;
      if (last) s.queue.shift();
      else item.buf = buf.subarray(n);
    }
  }

  /** @internal the stream is over: no more frames for it are accepted or kept. */
  forget(s: H2Stream): void {
    // A response still queued behind the peer's window keeps the stream (its WINDOW_UPDATEs) until it is out.
    if (s.queue.length === 0 || s.rstCode !== H2_ERROR.NO_ERROR) {
      s.queue.length = 0;
      this.blocked.delete(s);
      if (this.streams.get(s.id) === s) this.streams.delete(s.id);
    }
    this.endIfDone();
  }

  /** After a GOAWAY (ours or the peer's), the socket ends once no stream is left. */
  private endIfDone(): void {
    if (this.goingAway && !this.dead && this.streams.size === 0) {
      this.flush();
      this.socket.end();
    }
  }

  private frame(type: number, flags: number, id: number, payload: Buffer): void {
    const h = Buffer.allocUnsafe(9);
    const len = payload.length;
    h[0] = len >>> 16;
    h[1] = (len >>> 8) & 0xff;
    h[2] = len & 0xff;
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    this.out.push(h);
    if (len > 0) this.out.push(payload);
    if (!this.inRead && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) {
      this.out = [];
      return;
    }
    const buf = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.socket.write(buf);
  }

  private goAway(code: number): void {
    const p = Buffer.allocUnsafe(8);
    p.writeUInt32BE(this.lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    this.frame(FRAME.GOAWAY, 0, 0, p);
  }

  /** A connection error: GOAWAY with the code, every stream reset, the socket closed. */
  private fail(code: number): void {
    if (this.dead) return;
    this.goAway(code);
    this.inRead = false;
    this.flush();
    this.dead = true;
    for (const s of [...this.streams.values()]) s.terminate(code);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onSocketClose(): void {
    this.dead = true;
    for (const s of [...this.streams.values()]) s.terminate(H2_ERROR.CANCEL);
    this.emit('close');
  }
}

function unpad(p: Buffer): Buffer {
  if (p.length < 1) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'padded frame without a pad length');
  const pad = p[0]!;
  if (pad >= p.length) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'padding longer than the frame');
  return p.subarray(1, p.length - pad);
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
