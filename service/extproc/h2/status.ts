// gRPC status codes the transport sends, and the grpc-message encoding (gRPC over HTTP/2 spec:
// "Status-Message" is percent-encoded UTF-8; bytes outside 0x20–0x7E and `%` itself are escaped).

export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type StatusCode = (typeof Status)[keyof typeof Status];

const NEEDS_ESCAPE = /[^\x20-\x24\x26-\x7e]/;

export function encodeGrpcMessage(msg: string): string {
  if (!NEEDS_ESCAPE.test(msg)) return msg;
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}
