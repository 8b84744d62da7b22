// A hand-written codec for the two ext_proc messages on the hot path, replacing proto-loader's dynamic
// `fromObject` + `encode` / `decode` + `toObject` per message. It produces and accepts exactly the
// object shapes proto-loader does with LOADER_OPTIONS (keepCase, oneofs, defaults: false, enums as
// names; see messages.ts), so the rest of the service does not change:
//   - decodeRequest: ProcessingRequest. Headers, bodies and trailers are decoded here; the rare
//     Struct-bearing fields (metadata_context, attributes) go through protobufjs's reflected types from
//     the same .proto files, so they keep full fidelity. Unknown fields (newer Envoys) are skipped.
//   - encodeResponse: ProcessingResponse, every field messages.ts declares; a field is written when it
//     is present in the object (as fromObject + encode would), empty sub-messages included (a oneof
//     member with nothing in it still tells Envoy which phase is answered).
// test/unit/extproc-codec.test.ts checks both against proto-loader round trips; the real-Envoy e2e
// tests run through it.
import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type {
  BodyMutation,
  CommonResponse,
  HeaderMap,
  HeaderMutation,
  HeaderValue,
  HttpBody,
  HttpHeaders,
  HttpTrailers,
  ImmediateResponse,
  PbStruct,
  PbValue,
  ProcessingMode,
  ProcessingRequest,
  ProcessingResponse,
  RequestKind,
} from './messages.ts';
import { extProcService, LOADER_OPTIONS } from './proto.ts';

const { Reader, Writer } = protobuf;
type Reader = protobuf.Reader;
type Writer = protobuf.Writer;

// Wire types.
const VARINT = 0;
const I64 = 1;
const LEN = 2;

const tag = (field: number, wire: number): number => (field << 3) | wire;

// ---------------------------------------------------------------- rare fields via reflection

interface Reflected {
  metadata: protobuf.Type;
  struct: protobuf.Type;
}
let reflected: Reflected | undefined;

/** protobufjs types for the Struct-bearing request fields, loaded like proto-loader loads them. */
function reflect(): Reflected {
  if (reflected) return reflected;
  const require = createRequire(import.meta.url);
  const util = require('@grpc/proto-loader/build/src/util.js') as {
    loadProtosWithOptionsSync(file: string, options: typeof LOADER_OPTIONS): protobuf.Root;
  };
  const root = util.loadProtosWithOptionsSync('envoy/config/core/v3/base.proto', LOADER_OPTIONS);
  reflected = { metadata: root.lookupType('envoy.config.core.v3.Metadata'), struct: root.lookupType('google.protobuf.Struct') };
  return reflected;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

function decodeReflected(t: protobuf.Type, bytes: Uint8Array): never {
  return t.toObject(t.decode(bytes), TO_OBJECT) as never;
}

// ---------------------------------------------------------------- decode

function readHeaderValue(r: Reader, end: number): HeaderValue {
  const h = {} as HeaderValue;
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, LEN):
        h.key = r.string();
        break;
      case tag(2, LEN):
        h.value = r.string();
        break;
      case tag(3, LEN):
        h.raw_value = r.bytes() as Buffer;
        break;
      default:
        r.skipType(t & 7);
    }
  }
  return h;
}

function readHeaderMap(r: Reader, end: number): HeaderMap {
  const headers: HeaderValue[] = [];
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, LEN)) {
      const len = r.uint32();
      headers.push(readHeaderValue(r, r.pos + len));
    } else r.skipType(t & 7);
  }
  return headers.length ? { headers } : {};
}

/** map<string, google.protobuf.Struct> entry (key = 1, value = 2). */
function readStructMapEntry(r: Reader, end: number, into: Record<string, PbStruct>): void {
  let key = '';
  let value: PbStruct = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, LEN)) key = r.string();
    else if (t === tag(2, LEN)) value = decodeReflected(reflect().struct, r.bytes());
    else r.skipType(t & 7);
  }
  into[key] = value;
}

function readHttpHeaders(r: Reader, end: number): HttpHeaders {
  const m: HttpHeaders & { attributes?: Record<string, PbStruct> } = {};
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, LEN): {
        const len = r.uint32();
        m.headers = readHeaderMap(r, r.pos + len);
        break;
      }
      case tag(2, LEN): {
        const len = r.uint32();
        readStructMapEntry(r, r.pos + len, (m.attributes ??= {}));
        break;
      }
      case tag(3, VARINT):
        m.end_of_stream = r.bool();
        break;
      default:
        r.skipType(t & 7);
    }
  }
  return m;
}

function readHttpBody(r: Reader, end: number): HttpBody {
  const m: HttpBody = {};
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, LEN):
        m.body = r.bytes() as Buffer;
        break;
      case tag(2, VARINT):
        m.end_of_stream = r.bool();
        break;
      default:
        r.skipType(t & 7);
    }
  }
  return m;
}

function readHttpTrailers(r: Reader, end: number): HttpTrailers {
  const m: HttpTrailers = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, LEN)) {
      const len = r.uint32();
      m.trailers = readHeaderMap(r, r.pos + len);
    } else r.skipType(t & 7);
  }
  return m;
}

const REQUEST_KINDS: (RequestKind | undefined)[] = [
  undefined,
  undefined,
  'request_headers',
  'response_headers',
  'request_body',
  'response_body',
  'request_trailers',
  'response_trailers',
];

export function decodeRequest(buf: Buffer): ProcessingRequest {
  const r = Reader.create(buf);
  const m: ProcessingRequest = {};
  const end = buf.length;
  while (r.pos < end) {
    const t = r.uint32();
    const field = t >>> 3;
    if (field >= 2 && field <= 7 && (t & 7) === LEN) {
      const kind = REQUEST_KINDS[field]!;
      const len = r.uint32();
      const stop = r.pos + len;
      if (field <= 3) m[kind as 'request_headers'] = readHttpHeaders(r, stop);
      else if (field <= 5) m[kind as 'request_body'] = readHttpBody(r, stop);
      else m[kind as 'request_trailers'] = readHttpTrailers(r, stop);
      // Two members on the wire (Envoy never sends that): like proto-loader, both stay and the virtual
      // field names the one declared last.
      if (!m.request || REQUEST_KINDS.indexOf(m.request) < field) m.request = kind;
    } else if (t === tag(8, LEN)) {
      m.metadata_context = decodeReflected(reflect().metadata, r.bytes());
    } else if (t === tag(9, LEN)) {
      const len = r.uint32();
      readStructMapEntry(r, r.pos + len, (m.attributes ??= {}));
    } else if (t === tag(10, VARINT)) {
      m.observability_mode = r.bool();
    } else r.skipType(t & 7);
  }
  return m;
}

// ---------------------------------------------------------------- encode

const has = <T>(v: T | undefined | null): v is T => v !== undefined && v !== null;

const HEADER_MODES: Record<string, number> = { DEFAULT: 0, SEND: 1, SKIP: 2 };
const BODY_MODES: Record<string, number> = { NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3, FULL_DUPLEX_STREAMED: 4 };
const STATUSES: Record<string, number> = { CONTINUE: 0, CONTINUE_AND_REPLACE: 1 };
const NULL_VALUES: Record<string, number> = { NULL_VALUE: 0 };

function enumValue(v: string | number, names: Record<string, number>, what: string): number {
  if (typeof v === 'number') return v;
  const n = names[v];
  if (n === undefined) throw new TypeError(`${what}: enum value expected, got ${JSON.stringify(v)}`);
  return n;
}

/** Writes a length-delimited sub-message. */
function sub(w: Writer, field: number, body: () => void): void {
  w.uint32(tag(field, LEN)).fork();
  body();
  w.ldelim();
}

function bytesOf(v: Buffer | Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'base64') : v;
}

function writeHeaderValue(w: Writer, h: HeaderValue): void {
  if (has(h.key)) w.uint32(tag(1, LEN)).string(h.key);
  if (has(h.value)) w.uint32(tag(2, LEN)).string(h.value);
  if (has(h.raw_value)) w.uint32(tag(3, LEN)).bytes(bytesOf(h.raw_value));
}

function writeHeaderMutation(w: Writer, m: HeaderMutation): void {
  for (const o of m.set_headers ?? [])
    sub(w, 1, () => {
      if (has(o.header)) sub(w, 1, () => writeHeaderValue(w, o.header));
      if (has(o.append))
        sub(w, 2, () => {
          if (has(o.append!.value)) w.uint32(tag(1, VARINT)).bool(o.append!.value);
        });
    });
  for (const name of m.remove_headers ?? []) w.uint32(tag(2, LEN)).string(name);
}

function writeBodyMutation(w: Writer, m: BodyMutation): void {
  if (has(m.body)) w.uint32(tag(1, LEN)).bytes(bytesOf(m.body));
  else if (has(m.clear_body)) w.uint32(tag(2, VARINT)).bool(m.clear_body);
}

function writeCommon(w: Writer, c: CommonResponse): void {
  if (has(c.status)) w.uint32(tag(1, VARINT)).int32(enumValue(c.status, STATUSES, 'CommonResponse.status'));
  if (has(c.header_mutation)) sub(w, 2, () => writeHeaderMutation(w, c.header_mutation!));
  if (has(c.body_mutation)) sub(w, 3, () => writeBodyMutation(w, c.body_mutation!));
  if (has(c.clear_route_cache)) w.uint32(tag(5, VARINT)).bool(c.clear_route_cache);
}

function writeValue(w: Writer, v: PbValue): void {
  if ('nullValue' in v) w.uint32(tag(1, VARINT)).int32(enumValue(v.nullValue, NULL_VALUES, 'Value.nullValue'));
  else if ('numberValue' in v) w.uint32(tag(2, I64)).double(v.numberValue);
  else if ('stringValue' in v) w.uint32(tag(3, LEN)).string(v.stringValue);
  else if ('boolValue' in v) w.uint32(tag(4, VARINT)).bool(v.boolValue);
  else if ('structValue' in v) sub(w, 5, () => writeStruct(w, v.structValue));
  else if ('listValue' in v)
    sub(w, 6, () => {
      for (const x of v.listValue.values ?? []) sub(w, 1, () => writeValue(w, x));
    });
}

function writeStruct(w: Writer, s: PbStruct): void {
  const fields = s.fields;
  if (!fields) return;
  for (const k in fields) {
    const v = fields[k];
    if (!has(v)) continue;
    sub(w, 1, () => {
      w.uint32(tag(1, LEN)).string(k);
      sub(w, 2, () => writeValue(w, v));
    });
  }
}

function writeMode(w: Writer, m: ProcessingMode): void {
  if (has(m.request_header_mode)) w.uint32(tag(1, VARINT)).int32(enumValue(m.request_header_mode, HEADER_MODES, 'request_header_mode'));
  if (has(m.response_header_mode)) w.uint32(tag(2, VARINT)).int32(enumValue(m.response_header_mode, HEADER_MODES, 'response_header_mode'));
  if (has(m.request_body_mode)) w.uint32(tag(3, VARINT)).int32(enumValue(m.request_body_mode, BODY_MODES, 'request_body_mode'));
  if (has(m.response_body_mode)) w.uint32(tag(4, VARINT)).int32(enumValue(m.response_body_mode, BODY_MODES, 'response_body_mode'));
  if (has(m.request_trailer_mode)) w.uint32(tag(5, VARINT)).int32(enumValue(m.request_trailer_mode, HEADER_MODES, 'request_trailer_mode'));
  if (has(m.response_trailer_mode)) w.uint32(tag(6, VARINT)).int32(enumValue(m.response_trailer_mode, HEADER_MODES, 'response_trailer_mode'));
}

function writeImmediate(w: Writer, m: ImmediateResponse): void {
  if (has(m.status))
    sub(w, 1, () => {
      if (has(m.status.code)) w.uint32(tag(1, VARINT)).int32(m.status.code);
    });
  if (has(m.headers)) sub(w, 2, () => writeHeaderMutation(w, m.headers!));
  if (has(m.body)) w.uint32(tag(3, LEN)).bytes(bytesOf(m.body));
  if (has(m.details)) w.uint32(tag(5, LEN)).string(m.details);
}

type Phase = 'request_headers' | 'response_headers' | 'request_body' | 'response_body';
const PHASE_FIELDS: [Phase, number][] = [
  ['request_headers', 1],
  ['response_headers', 2],
  ['request_body', 3],
  ['response_body', 4],
];

export function encodeResponse(m: ProcessingResponse): Buffer {
  if (Array.isArray(m)) throw new Error('Failed to serialize message: expected object with ProcessingResponse structure, got array instead');
  const w = Writer.create();
  for (const [name, field] of PHASE_FIELDS) {
    const p = m[name];
    if (has(p))
      sub(w, field, () => {
        if (has(p.response)) sub(w, 1, () => writeCommon(w, p.response!));
      });
  }
  for (const [name, field] of [
    ['request_trailers', 5],
    ['response_trailers', 6],
  ] as const) {
    const p = m[name];
    if (has(p))
      sub(w, field, () => {
        if (has(p.header_mutation)) sub(w, 1, () => writeHeaderMutation(w, p.header_mutation!));
      });
  }
  if (has(m.immediate_response)) sub(w, 7, () => writeImmediate(w, m.immediate_response!));
  if (has(m.dynamic_metadata)) sub(w, 8, () => writeStruct(w, m.dynamic_metadata!));
  if (has(m.mode_override)) sub(w, 9, () => writeMode(w, m.mode_override!));
  if (has(m.override_message_timeout)) {
    const d = m.override_message_timeout;
    sub(w, 10, () => {
      if (has(d.seconds)) w.uint32(tag(1, VARINT)).int64(d.seconds);
      if (has(d.nanos)) w.uint32(tag(2, VARINT)).int32(d.nanos);
    });
  }
  return w.finish() as Buffer;
}

/**
 * The ExternalProcessor service definition for the server: proto-loader's method definition (path,
 * streaming flags) with this codec for the server's two directions.
 */
export function leanExtProcService(): grpc.ServiceDefinition {
  const def = extProcService();
  const process = def.Process as grpc.MethodDefinition<ProcessingRequest, ProcessingResponse>;
  return { Process: { ...process, requestDeserialize: decodeRequest, responseSerialize: encodeResponse } };
}
