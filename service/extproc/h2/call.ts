// One gRPC call on an HTTP/2 stream, server side: response headers sent with the first message,
// messages written as already-framed buffers, and one end with a status (trailers after the
// response headers, or a trailers-only response when nothing was sent).
import { encodeGrpcMessage, type StatusCode } from './status.ts';
import type { GrpcStream, OutgoingHeaders } from './stream.ts';

const RESPONSE_HEADERS: OutgoingHeaders = Object.freeze({ ':status': 200, 'content-type': 'application/grpc' });
/** The common end (OK, no message): one shared object (Node copies trailers before sending them). */
const OK_TRAILERS: OutgoingHeaders = Object.freeze({ 'grpc-status': '0' });
const NO_STATUS_TRAILERS: OutgoingHeaders = Object.freeze({ 'grpc-status': '2', 'grpc-message': 'call ended without a status' });

export class GrpcCall {
  private headersSent = false;
  private trailers: OutgoingHeaders | undefined;
  /** A status was sent (or the stream is gone): nothing more is written. */
  ended = false;

  constructor(readonly stream: GrpcStream) {}

  /** Writes one framed message (5-byte prefix + body, one buffer). */
  write(framed: Buffer): void {
    if (this.ended || this.stream.destroyed) return;
    if (!this.headersSent) this.sendHeaders();
    this.stream.write(framed);
  }

  /** Response headers now (a server-streaming call shows it is open before its first message). */
  sendHeaders(): void {
    if (this.headersSent || this.stream.destroyed) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    // `on`, not `once` (no wrapper per call): Node emits wantTrailers once per stream.
    this.stream.on('wantTrailers', () => this.stream.sendTrailers(this.trailers ?? NO_STATUS_TRAILERS));
  }

  /** Ends the call with a status; later calls are ignored. */
  end(code: StatusCode, detail?: string, extra?: OutgoingHeaders): void {
    if (this.ended) return;
    this.ended = true;
    if (this.stream.destroyed || this.stream.closed) return;
    let trailers: OutgoingHeaders;
    if (code === 0 && !detail && !extra) trailers = OK_TRAILERS;
    else {
      trailers = { 'grpc-status': String(code) };
      if (detail) trailers['grpc-message'] = encodeGrpcMessage(detail);
      if (extra) Object.assign(trailers, extra);
    }
    if (!this.headersSent) {
      // Trailers-only response: one HEADERS frame with END_STREAM.
      this.headersSent = true;
      this.stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
    } else {
      this.trailers = trailers;
      this.stream.end();
    }
  }
}
