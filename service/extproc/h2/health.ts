// grpc.health.v1.Health on the ext_proc port: Check (unary; Envoy's cluster grpc_health_check and
// kubelet probes), Watch (server streaming: the current status, then every change) and List.
// The two messages are tiny, so they are encoded by hand:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3
//   HealthListResponse  { map<string, HealthCheckResponse> statuses = 1; }
import { GrpcCall } from './call.ts';
import { frame as framed, MessageFramer } from './framing.ts';
import { Status } from './status.ts';
import type { GrpcStream } from './stream.ts';

export const HEALTH_SERVICE_PREFIX = '/grpc.health.v1.Health/';
export type ServingStatus = 'SERVING' | 'NOT_SERVING';
const CODE: Record<ServingStatus, number> = { SERVING: 1, NOT_SERVING: 2 };
const SERVICE_UNKNOWN = 3;
/** A health request is a service name: anything bigger is not one. */
const MAX_REQUEST_BYTES = 64 * 1024;

export class HealthService {
  private readonly statuses = new Map<string, number>();
  private readonly watchers = new Map<string, Set<(status: number) => void>>();

  constructor(initial: Record<string, ServingStatus>) {
    for (const [name, s] of Object.entries(initial)) this.statuses.set(name, CODE[s]);
  }

  setStatus(service: string, status: ServingStatus): void {
    this.statuses.set(service, CODE[status]);
    for (const w of this.watchers.get(service) ?? []) w(CODE[status]);
  }

  /** Serves one call to `path` (under HEALTH_SERVICE_PREFIX); unknown methods end UNIMPLEMENTED. */
  serve(path: string, stream: GrpcStream): void {
    const call = new GrpcCall(stream);
    const method = path.slice(HEALTH_SERVICE_PREFIX.length);
    if (method !== 'Check' && method !== 'Watch' && method !== 'List') {
      call.end(Status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
      stream.resume();
      return;
    }
    const requests: Buffer[] = [];
    const framer = new MessageFramer(MAX_REQUEST_BYTES, (m) => void requests.push(m));
    stream.on('data', (chunk: Buffer) => {
      const err = framer.push(chunk);
      if (err) call.end(err.code, err.detail);
    });
    // Unary and server streaming: exactly one request, then the client half-closes.
    stream.on('end', () => {
      if (call.ended) return;
      if (requests.length !== 1 || framer.partial) return call.end(Status.INTERNAL, `expected one request message, got ${requests.length}`);
      let service: string;
      try {
        service = decodeService(requests[0]!);
      } catch (e) {
        return call.end(Status.INTERNAL, `Error deserializing request: ${(e as Error).message}`);
      }
      if (method === 'Check') {
        const s = this.statuses.get(service);
        if (s === undefined) return call.end(Status.NOT_FOUND, `Health status unknown for service ${service}`);
        call.write(framed(statusMessage(s)));
        return call.end(Status.OK);
      }
      if (method === 'List') {
        const entries: Buffer[] = [];
        for (const [name, s] of this.statuses) entries.push(lenField(1, Buffer.concat([lenField(1, Buffer.from(name)), lenField(2, statusMessage(s))])));
        call.write(framed(Buffer.concat(entries)));
        return call.end(Status.OK);
      }
      // Watch: stays open until the client goes (or the server closes the session).
      const watcher = (s: number): void => call.write(framed(statusMessage(s)));
      let set = this.watchers.get(service);
      if (!set) this.watchers.set(service, (set = new Set()));
      set.add(watcher);
      stream.once('close', () => set.delete(watcher));
      call.sendHeaders();
      watcher(this.statuses.get(service) ?? SERVICE_UNKNOWN);
    });
  }
}

function statusMessage(s: number): Buffer {
  return Buffer.from([0x08, s]);
}

function lenField(field: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(body.length), body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckRequest.service (field 1); other fields are skipped by wire type. */
export function decodeService(buf: Buffer): string {
  let pos = 0;
  let service = '';
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  };
  while (pos < buf.length) {
    const tag = readVarint();
    const wire = tag & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = readVarint();
      if (pos + len > buf.length) throw new Error('truncated field');
      if (tag >>> 3 === 1) service = buf.toString('utf8', pos, pos + len);
      pos += len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (pos > buf.length) throw new Error('truncated field');
  }
  return service;
}
