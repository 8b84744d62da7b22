// The part of a server-side HTTP/2 stream that the gRPC code (call.ts, health.ts, server.ts) uses. Both
// transports meet it: node:http2's ServerHttp2Stream and connection.ts's H2Stream (transport.ts picks one).
import type { Socket } from 'node:net';

/** Response headers or trailers: name → value. */
export type OutgoingHeaders = Record<string, string | number>;

/** Request headers: lowercase names (node:http2 may give arrays for some repeated fields). */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** The connection a stream came on: its socket (a TLSSocket under TLS) identifies the peer. */
export interface PeerSession {
  readonly socket: Socket;
}

export interface GrpcStream {
  readonly session?: PeerSession | undefined;
  readonly destroyed: boolean;
  readonly closed: boolean;
  /** Why the stream closed: 0 (NO_ERROR) for a clean end, else the RST_STREAM code. */
  readonly rstCode?: number | undefined;
  respond(headers: OutgoingHeaders, opts?: { endStream?: boolean; waitForTrailers?: boolean }): void;
  write(data: Buffer): boolean;
  /** Ends our side: emits 'wantTrailers' first when respond() asked for it. */
  end(): void;
  sendTrailers(headers: OutgoingHeaders): void;
  /** Resets the stream. */
  close(code?: number): void;
  resume(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close' | 'wantTrailers', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}
