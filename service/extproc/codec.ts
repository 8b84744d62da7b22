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
import { BuiltMutation, JsonStruct } from './mutations.ts';
import { PairBytes } from './pair-bytes.ts';
import { LOADER_OPTIONS } from './proto.ts';

const { Reader } = protobuf;
type Reader = protobuf.Reader;

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
//
// Two passes over the reply, no intermediate Writer: `size*` computes every sub-message's length and
// every string's UTF-8 length, in the order the write pass will need them (pre-order), into SIZES;
// `write*` then fills one exactly-sized Buffer. Both passes take the same branches, so the write pass
// consumes SIZES in the order the size pass produced it. The bytes are exactly protobufjs's
// BufferWriter's (same varints, same UTF-8 writer for short strings, same int32/int64 encodings);
// test/unit/extproc-codec.test.ts compares them with proto-loader's byte for byte. Every field number
// here is < 16, so each tag is one byte.

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

const { LongBits, utf8 } = protobuf.util;

/**
 * Sub-message and string lengths in pre-order (size pass appends at `sn`, write pass reads from `si`).
 * The arrays are reused, never truncated: `length = 0` would free their storage and every reply would
 * grow it again (the codec's main allocation).
 */
const SIZES: number[] = [];
let sn = 0;
/** Decoded `bytes` values given as base64 strings (rare), in the same order. */
const BLOBS: (Uint8Array | undefined)[] = [];
let bn = 0;
let si = 0;
let bi = 0;
const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let pos = 0;

const varintLen = (u: number): number => (u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5);

/** UTF-8 length as protobufjs's BufferWriter measures it (Buffer.byteLength; the same count for short strings). */
function utf8Len(s: string): number {
  const n = s.length;
  if (n >= 40) return Buffer.byteLength(s);
  let len = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) len += 1;
    else if (c < 0x800) len += 2;
    else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      i++;
      len += 4;
    } else len += 3;
  }
  return len;
}

/**
 * The UTF-8 bytes of names that recur in nearly every reply (header names, metadata keys): on this
 * path a JS per-character loop costs ~10 ns a character, paid twice (size, then write) for every name
 * of every reply — most of the encoder's time. A name is encoded once, then sized by a Map lookup and
 * written by one copy. Only ASCII names are kept (their bytes are the same whichever UTF-8 writer
 * made them), up to KEY_CACHE_MAX of them: the set is cleared when full, so client-chosen names
 * cannot grow it without bound.
 */
const KEY_BYTES = new Map<string, Buffer | null>();
const KEY_CACHE_MAX = 2048;
const KEY_MAX_LEN = 128;
/** Struct string values up to this length go through the name cache (see sizeValue). */
const SHORT_VALUE = 24;
/**
 * Byte runs up to this length are copied by a JS loop, longer ones by one native copy (TypedArray#set,
 * Buffer#write): measured on Node 20, the loop costs ~3 ns a byte, the native call ~20-70 ns flat; encoding
 * the bench request's 4 replies was fastest with 8 (0.78x of the 48 used before).
 */
const COPY_LOOP_MAX = 8;

function keyBytes(s: string): Buffer | null {
  let b = KEY_BYTES.get(s);
  if (b !== undefined) return b;
  b = null;
  if (s.length <= KEY_MAX_LEN) {
    let ascii = true;
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) b = Buffer.from(s, 'latin1');
  }
  if (KEY_BYTES.size >= KEY_CACHE_MAX) KEY_BYTES.clear();
  KEY_BYTES.set(s, b);
  return b;
}

// ---- size pass: each returns the field's full size (tag + length + body) and records lengths.

/** Reserves a SIZES slot for a sub-message before its children are sized. */
const open = (): number => {
  SIZES[sn] = 0;
  return sn++;
};
function close(slot: number, body: number): number {
  SIZES[slot] = body;
  return 1 + varintLen(body) + body;
}

function sizeStr(s: string): number {
  const l = utf8Len(s);
  SIZES[sn++] = l;
  return 1 + varintLen(l) + l;
}

/** A name (see keyBytes): written as its cached bytes when it has them. */
function sizeKey(s: string): number {
  const b = keyBytes(s);
  if (b === null) return sizeStr(s);
  SIZES[sn++] = -1; // tells putKey the bytes are the next BLOB
  BLOBS[bn++] = b;
  return 1 + varintLen(b.length) + b.length;
}

/**
 * Whole fields that recur from reply to reply with the same bytes (pair-bytes.ts): a set header of a
 * BuiltMutation (name and value) and a short string field of a JsonStruct (key and value). Why: most of
 * them are the same for every request of a deployment, and sizing and writing them piece by piece (two
 * sub-message frames, the cached name, the value's bytes) was most of the encoder's time; a cached one is
 * sized by its length and written by one copy.
 */
const OPTIONS = new PairBytes(encodeOption);
const FIELDS = new PairBytes(encodeField);
/** SIZES marker: the next BLOB is a whole field's bytes, written as they are (putCached). */
const CACHED = -2;

function sizeCached(b: Buffer): number {
  SIZES[sn++] = CACHED;
  BLOBS[bn++] = b;
  return b.length;
}

function sizeBytes(v: Buffer | Uint8Array | string): number {
  const b = typeof v === 'string' ? Buffer.from(v, 'base64') : v;
  BLOBS[bn++] = b;
  return 1 + varintLen(b.length) + b.length;
}

const sizeInt32 = (v: number): number => 1 + (v < 0 ? 10 : varintLen(v >>> 0));

function sizeHeaderValue(h: HeaderValue): number {
  let n = 0;
  if (has(h.key)) n += sizeKey(h.key);
  if (has(h.value)) n += sizeStr(h.value);
  if (has(h.raw_value)) n += sizeBytes(h.raw_value);
  return n;
}

/**
 * Bytes of `append: { value: false }` (HeaderValueOption field 2 holding BoolValue false): what every
 * header a BuiltMutation sets carries (MutationBuilder's NO_APPEND).
 */
const APPEND_FALSE = [tag(2, LEN), 2, tag(1, VARINT), 0] as const;

/**
 * A BuiltMutation, sized as sizeHeaderMutation sizes build()'s objects: per set header a HeaderValueOption
 * holding { key, raw_value: latin1 bytes of the value } and append false; then the removed names. A
 * latin1 value has one byte per character, so its length is known without encoding it.
 */
function sizeBuiltMutation(m: BuiltMutation): number {
  let n = 0;
  const names = m.names;
  const values = m.values;
  for (let i = 0; i < names.length; i++) {
    const cached = OPTIONS.get(names[i]!, values[i]!);
    if (cached !== null) {
      n += sizeCached(cached);
      continue;
    }
    const slot = open();
    const h = open();
    const vl = values[i]!.length;
    const b = close(h, sizeKey(names[i]!) + 1 + varintLen(vl) + vl) + APPEND_FALSE.length;
    n += close(slot, b);
  }
  const removed = m.removed;
  for (let i = 0; i < removed.length; i++) n += sizeKey(removed[i]!);
  return n;
}

function sizeHeaderMutation(m: HeaderMutation): number {
  if (m instanceof BuiltMutation) return sizeBuiltMutation(m);
  let n = 0;
  const set = m.set_headers;
  if (set)
    for (const o of set) {
      const slot = open();
      let b = 0;
      if (has(o.header)) {
        const s = open();
        b += close(s, sizeHeaderValue(o.header));
      }
      if (has(o.append)) {
        const s = open();
        b += close(s, has(o.append.value) ? 2 : 0);
      }
      n += close(slot, b);
    }
  const remove = m.remove_headers;
  if (remove) for (const name of remove) n += sizeKey(name);
  return n;
}

function sizeBodyMutation(m: BodyMutation): number {
  if (has(m.body)) return sizeBytes(m.body);
  if (has(m.clear_body)) return 2;
  return 0;
}

function sizeCommon(c: CommonResponse): number {
  let n = 0;
  if (has(c.status)) n += sizeInt32(enumValue(c.status, STATUSES, 'CommonResponse.status'));
  if (has(c.header_mutation)) {
    const s = open();
    n += close(s, sizeHeaderMutation(c.header_mutation));
  }
  if (has(c.body_mutation)) {
    const s = open();
    n += close(s, sizeBodyMutation(c.body_mutation));
  }
  if (has(c.clear_route_cache)) n += 2;
  return n;
}

function sizeValue(v: PbValue): number {
  if ('nullValue' in v) return sizeInt32(enumValue(v.nullValue, NULL_VALUES, 'Value.nullValue'));
  if ('numberValue' in v) return 9;
  // Short values are names (tenant, team, model, provider, deployment…) that recur like keys; long ones
  // (request and decision ids) are unique per request and are not cached.
  if ('stringValue' in v) return sizeStrValue(v.stringValue);
  if ('boolValue' in v) return 2;
  if ('structValue' in v) {
    const s = open();
    return close(s, sizeStruct(v.structValue));
  }
  if ('listValue' in v) {
    const s = open();
    let b = 0;
    for (const x of v.listValue.values ?? []) {
      const e = open();
      b += close(e, sizeValue(x));
    }
    return close(s, b);
  }
  return 0;
}

function sizeStruct(st: PbStruct): number {
  const fields = st.fields;
  if (!fields) return 0;
  let n = 0;
  for (const k in fields) {
    const v = fields[k];
    if (!has(v)) continue;
    const entry = open();
    let b = sizeKey(k);
    const val = open();
    b += close(val, sizeValue(v));
    n += close(entry, b);
  }
  return n;
}

// A JsonStruct: the same bytes as toPbStruct(json) through sizeStruct/writeStruct (toPbValue's
// mapping: null/undefined → null_value, bigint → number, Date → ISO string, arrays → list_value,
// other objects → struct_value, anything else → String(v); undefined fields are left out).

/** A Value's body size for plain JSON `v`. */
function sizeJsonValue(v: unknown): number {
  if (v === null || v === undefined) return 2;
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 9;
    case 'string':
      return sizeStrValue(v);
    case 'boolean':
      return 2;
    case 'object': {
      if (v instanceof Date) return sizeStrValue(v.toISOString());
      const s = open();
      if (Array.isArray(v)) {
        let b = 0;
        for (let i = 0; i < v.length; i++) {
          const e = open();
          b += close(e, sizeJsonValue(v[i]));
        }
        return close(s, b);
      }
      return close(s, sizeJsonStruct(v as Record<string, unknown>));
    }
    default:
      return sizeStrValue(String(v));
  }
}

function sizeJsonStruct(o: Record<string, unknown>): number {
  let n = 0;
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v === 'string' && v.length <= SHORT_VALUE) {
      const cached = FIELDS.get(k, v);
      if (cached !== null) {
        n += sizeCached(cached);
        continue;
      }
    }
    const entry = open();
    let b = sizeKey(k);
    const val = open();
    b += close(val, sizeJsonValue(v));
    n += close(entry, b);
  }
  return n;
}

/** A string_value, sized as sizeValue sizes one. */
const sizeStrValue = (s: string): number => (s.length <= SHORT_VALUE ? sizeKey(s) : sizeStr(s));

function sizeMode(m: ProcessingMode): number {
  let n = 0;
  if (has(m.request_header_mode)) n += sizeInt32(enumValue(m.request_header_mode, HEADER_MODES, 'request_header_mode'));
  if (has(m.response_header_mode)) n += sizeInt32(enumValue(m.response_header_mode, HEADER_MODES, 'response_header_mode'));
  if (has(m.request_body_mode)) n += sizeInt32(enumValue(m.request_body_mode, BODY_MODES, 'request_body_mode'));
  if (has(m.response_body_mode)) n += sizeInt32(enumValue(m.response_body_mode, BODY_MODES, 'response_body_mode'));
  if (has(m.request_trailer_mode)) n += sizeInt32(enumValue(m.request_trailer_mode, HEADER_MODES, 'request_trailer_mode'));
  if (has(m.response_trailer_mode)) n += sizeInt32(enumValue(m.response_trailer_mode, HEADER_MODES, 'response_trailer_mode'));
  return n;
}

function sizeImmediate(m: ImmediateResponse): number {
  let n = 0;
  if (has(m.status)) {
    const s = open();
    n += close(s, has(m.status.code) ? sizeInt32(m.status.code) : 0);
  }
  if (has(m.headers)) {
    const s = open();
    n += close(s, sizeHeaderMutation(m.headers));
  }
  if (has(m.body)) n += sizeBytes(m.body);
  if (has(m.details)) n += sizeStr(m.details);
  return n;
}


/** A headers/body phase's field (fields 1-4); 0 when absent. */
function sizePhase(p: { response?: CommonResponse } | undefined): number {
  if (!has(p)) return 0;
  const s = open();
  let b = 0;
  if (has(p.response)) {
    const c = open();
    b += close(c, sizeCommon(p.response));
  }
  return close(s, b);
}

/** A trailers phase's field (fields 5, 6); 0 when absent. */
function sizeTrailerPhase(p: { header_mutation?: HeaderMutation } | undefined): number {
  if (!has(p)) return 0;
  const s = open();
  let b = 0;
  if (has(p.header_mutation)) {
    const h = open();
    b += close(h, sizeHeaderMutation(p.header_mutation));
  }
  return close(s, b);
}

function sizeResponse(m: ProcessingResponse): number {
  // Named loads, not m[PHASES[f]]: a keyed load over six names is a megamorphic lookup on every reply.
  let n = sizePhase(m.request_headers) + sizePhase(m.response_headers) + sizePhase(m.request_body) + sizePhase(m.response_body);
  n += sizeTrailerPhase(m.request_trailers) + sizeTrailerPhase(m.response_trailers);
  if (has(m.immediate_response)) {
    const s = open();
    n += close(s, sizeImmediate(m.immediate_response));
  }
  if (has(m.dynamic_metadata)) {
    const s = open();
    const md = m.dynamic_metadata;
    n += close(s, md instanceof JsonStruct ? sizeJsonStruct(md.json) : sizeStruct(md));
  }
  if (has(m.mode_override)) {
    const s = open();
    n += close(s, sizeMode(m.mode_override));
  }
  if (has(m.override_message_timeout)) {
    const d = m.override_message_timeout;
    const s = open();
    let b = 0;
    if (has(d.seconds)) b += 1 + LongBits.from(d.seconds).length();
    if (has(d.nanos)) b += sizeInt32(d.nanos);
    n += close(s, b);
  }
  return n;
}

// ---- write pass: the same branches, in the same order.

function putVarint(u: number): void {
  while (u > 127) {
    buf[pos++] = (u & 127) | 128;
    u >>>= 7;
  }
  buf[pos++] = u;
}

/** protobufjs's writeVarint64. */
function putVarint64(bits: protobuf.util.LongBits): void {
  let lo = bits.lo;
  let hi = bits.hi;
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
}

function putInt32(field: number, v: number): void {
  buf[pos++] = tag(field, VARINT);
  if (v < 0) putVarint64(LongBits.fromNumber(v));
  else putVarint(v >>> 0);
}

function putBool(field: number, v: boolean): void {
  buf[pos++] = tag(field, VARINT);
  buf[pos++] = v ? 1 : 0;
}

/** Tag and length of a sub-message (its length from the size pass). */
function putSub(field: number): void {
  buf[pos++] = tag(field, LEN);
  putVarint(SIZES[si++]!);
}

function putStr(field: number, s: string): void {
  buf[pos++] = tag(field, LEN);
  const l = SIZES[si++]!;
  putVarint(l);
  const n = s.length;
  // l === n only when every character is ASCII (anything else takes 2-4 bytes): then a plain copy of the
  // character codes is the UTF-8, cheaper than protobufjs's per-character branching (request/decision ids).
  if (l === n) {
    if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    else buf.write(s, pos, n, 'latin1');
  } else if (n < 40) utf8.write(s, buf, pos);
  else buf.write(s, pos, l, 'utf8');
  pos += l;
}

/** Writes a name sized by sizeKey: cached bytes, or the string as sizeStr measured it. */
function putKey(field: number, s: string): void {
  if (SIZES[si] === -1) {
    si++;
    putBytes(field);
  } else putStr(field, s);
}

function putBytes(field: number): void {
  const b = BLOBS[bi++]!;
  buf[pos++] = tag(field, LEN);
  const n = b.length;
  putVarint(n);
  if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = b[i]!;
  else buf.set(b, pos);
  pos += n;
}

function writeHeaderValue(h: HeaderValue): void {
  if (has(h.key)) putKey(1, h.key);
  if (has(h.value)) putStr(2, h.value);
  if (has(h.raw_value)) putBytes(3);
}

/** The same branches as sizeBuiltMutation; the bytes writeHeaderMutation writes for build()'s objects. */
function writeBuiltMutation(m: BuiltMutation): void {
  const names = m.names;
  const values = m.values;
  for (let i = 0; i < names.length; i++) {
    if (SIZES[si] === CACHED) {
      putCached();
      continue;
    }
    putSub(1);
    putSub(1);
    putKey(1, names[i]!);
    putLatin1(3, values[i]!);
    buf[pos++] = APPEND_FALSE[0];
    buf[pos++] = APPEND_FALSE[1];
    buf[pos++] = APPEND_FALSE[2];
    buf[pos++] = APPEND_FALSE[3];
  }
  const removed = m.removed;
  for (let i = 0; i < removed.length; i++) putKey(2, removed[i]!);
}

/** A bytes field holding Buffer.from(s, 'latin1'): each character's low byte. */
function putLatin1(field: number, s: string): void {
  buf[pos++] = tag(field, LEN);
  const n = s.length;
  putVarint(n);
  // As in putBytes: a loop only for the shortest values (see COPY_LOOP_MAX).
  if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i) & 0xff;
  else buf.write(s, pos, n, 'latin1');
  pos += n;
}

/** Writes a whole field sized by sizeCached: one copy of its bytes. */
function putCached(): void {
  si++;
  const b = BLOBS[bi++]!;
  const n = b.length;
  // As in putBytes (see COPY_LOOP_MAX).
  if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = b[i]!;
  else buf.set(b, pos);
  pos += n;
}

/**
 * Runs `write` against a fresh exactly-sized buffer (the write pass's own put* functions, so a cached
 * pair's bytes are the general path's bytes by construction), then restores the reply being written.
 */
function encodeApart(size: number, write: () => void): Buffer {
  const saved = buf;
  const savedPos = pos;
  // Not from Buffer's shared pool: a kept 40-byte slice would pin an 8 KB pool slab.
  const out = Buffer.allocUnsafeSlow(size);
  buf = out;
  pos = 0;
  try {
    write();
  } finally {
    buf = saved;
    pos = savedPos;
  }
  return out;
}

/**
 * A set header's whole HeaderValueOption field (field 1 of HeaderMutation), as writeBuiltMutation writes
 * it: { header: { key, raw_value: latin1 value }, append: false }. Only for names with cached ASCII bytes.
 */
function encodeOption(name: string, value: string): Buffer | null {
  const k = keyBytes(name);
  if (k === null) return null;
  const vl = value.length;
  const hv = 1 + varintLen(k.length) + k.length + 1 + varintLen(vl) + vl;
  const opt = 1 + varintLen(hv) + hv + APPEND_FALSE.length;
  return encodeApart(1 + varintLen(opt) + opt, () => {
    buf[pos++] = tag(1, LEN);
    putVarint(opt);
    buf[pos++] = tag(1, LEN);
    putVarint(hv);
    putRawKey(1, k);
    putLatin1(3, value);
    for (let i = 0; i < APPEND_FALSE.length; i++) buf[pos++] = APPEND_FALSE[i]!;
  });
}

/**
 * A Struct's whole `fields` entry (field 1) for a short string value, as writeJsonStruct writes it:
 * { key, value: { string_value } }. Only when key and value both have cached ASCII bytes (then
 * sizeJsonStruct would write both as those bytes).
 */
function encodeField(key: string, value: string): Buffer | null {
  const k = keyBytes(key);
  const v = keyBytes(value);
  if (k === null || v === null) return null;
  const val = 1 + varintLen(v.length) + v.length;
  const entry = 1 + varintLen(k.length) + k.length + 1 + varintLen(val) + val;
  return encodeApart(1 + varintLen(entry) + entry, () => {
    buf[pos++] = tag(1, LEN);
    putVarint(entry);
    putRawKey(1, k);
    buf[pos++] = tag(2, LEN);
    putVarint(val);
    putRawKey(3, v);
  });
}

/** Tag, length and bytes of a name already encoded. */
function putRawKey(field: number, b: Buffer): void {
  buf[pos++] = tag(field, LEN);
  putVarint(b.length);
  for (let i = 0; i < b.length; i++) buf[pos++] = b[i]!;
}

function writeHeaderMutation(m: HeaderMutation): void {
  if (m instanceof BuiltMutation) return writeBuiltMutation(m);
  const set = m.set_headers;
  if (set)
    for (const o of set) {
      putSub(1);
      if (has(o.header)) {
        putSub(1);
        writeHeaderValue(o.header);
      }
      if (has(o.append)) {
        putSub(2);
        if (has(o.append.value)) putBool(1, o.append.value);
      }
    }
  const remove = m.remove_headers;
  if (remove) for (const name of remove) putKey(2, name);
}

function writeBodyMutation(m: BodyMutation): void {
  if (has(m.body)) putBytes(1);
  else if (has(m.clear_body)) putBool(2, m.clear_body);
}

function writeCommon(c: CommonResponse): void {
  if (has(c.status)) putInt32(1, enumValue(c.status, STATUSES, 'CommonResponse.status'));
  if (has(c.header_mutation)) {
    putSub(2);
    writeHeaderMutation(c.header_mutation);
  }
  if (has(c.body_mutation)) {
    putSub(3);
    writeBodyMutation(c.body_mutation);
  }
  if (has(c.clear_route_cache)) putBool(5, c.clear_route_cache);
}

function writeValue(v: PbValue): void {
  if ('nullValue' in v) putInt32(1, enumValue(v.nullValue, NULL_VALUES, 'Value.nullValue'));
  else if ('numberValue' in v) {
    buf[pos++] = tag(2, I64);
    buf.writeDoubleLE(v.numberValue, pos);
    pos += 8;
  } else if ('stringValue' in v) putKey(3, v.stringValue);
  else if ('boolValue' in v) putBool(4, v.boolValue);
  else if ('structValue' in v) {
    putSub(5);
    writeStruct(v.structValue);
  } else if ('listValue' in v) {
    putSub(6);
    for (const x of v.listValue.values ?? []) {
      putSub(1);
      writeValue(x);
    }
  }
}

function writeStruct(st: PbStruct): void {
  const fields = st.fields;
  if (!fields) return;
  for (const k in fields) {
    const v = fields[k];
    if (!has(v)) continue;
    putSub(1);
    putKey(1, k);
    putSub(2);
    writeValue(v);
  }
}

function writeJsonValue(v: unknown): void {
  if (v === null || v === undefined) {
    putInt32(1, 0);
    return;
  }
  switch (typeof v) {
    case 'number':
    case 'bigint':
      buf[pos++] = tag(2, I64);
      buf.writeDoubleLE(Number(v), pos);
      pos += 8;
      return;
    case 'string':
      putKey(3, v);
      return;
    case 'boolean':
      putBool(4, v);
      return;
    case 'object':
      if (v instanceof Date) putKey(3, v.toISOString());
      else if (Array.isArray(v)) {
        putSub(6);
        for (let i = 0; i < v.length; i++) {
          putSub(1);
          writeJsonValue(v[i]);
        }
      } else {
        putSub(5);
        writeJsonStruct(v as Record<string, unknown>);
      }
      return;
    default:
      putKey(3, String(v));
  }
}

function writeJsonStruct(o: Record<string, unknown>): void {
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = o[k];
    if (v === undefined) continue;
    if (SIZES[si] === CACHED) {
      putCached();
      continue;
    }
    putSub(1);
    putKey(1, k);
    putSub(2);
    writeJsonValue(v);
  }
}

function writeMode(m: ProcessingMode): void {
  if (has(m.request_header_mode)) putInt32(1, enumValue(m.request_header_mode, HEADER_MODES, 'request_header_mode'));
  if (has(m.response_header_mode)) putInt32(2, enumValue(m.response_header_mode, HEADER_MODES, 'response_header_mode'));
  if (has(m.request_body_mode)) putInt32(3, enumValue(m.request_body_mode, BODY_MODES, 'request_body_mode'));
  if (has(m.response_body_mode)) putInt32(4, enumValue(m.response_body_mode, BODY_MODES, 'response_body_mode'));
  if (has(m.request_trailer_mode)) putInt32(5, enumValue(m.request_trailer_mode, HEADER_MODES, 'request_trailer_mode'));
  if (has(m.response_trailer_mode)) putInt32(6, enumValue(m.response_trailer_mode, HEADER_MODES, 'response_trailer_mode'));
}

function writeImmediate(m: ImmediateResponse): void {
  if (has(m.status)) {
    putSub(1);
    if (has(m.status.code)) putInt32(1, m.status.code);
  }
  if (has(m.headers)) {
    putSub(2);
    writeHeaderMutation(m.headers);
  }
  if (has(m.body)) putBytes(3);
  if (has(m.details)) putStr(5, m.details);
}

function writePhase(field: number, p: { response?: CommonResponse } | undefined): void {
  if (!has(p)) return;
  putSub(field);
  if (has(p.response)) {
    putSub(1);
    writeCommon(p.response);
  }
}

function writeTrailerPhase(field: number, p: { header_mutation?: HeaderMutation } | undefined): void {
  if (!has(p)) return;
  putSub(field);
  if (has(p.header_mutation)) {
    putSub(1);
    writeHeaderMutation(p.header_mutation);
  }
}

function writeResponse(m: ProcessingResponse): void {
  writePhase(1, m.request_headers);
  writePhase(2, m.response_headers);
  writePhase(3, m.request_body);
  writePhase(4, m.response_body);
  writeTrailerPhase(5, m.request_trailers);
  writeTrailerPhase(6, m.response_trailers);
  if (has(m.immediate_response)) {
    putSub(7);
    writeImmediate(m.immediate_response);
  }
  if (has(m.dynamic_metadata)) {
    putSub(8);
    const md = m.dynamic_metadata;
    if (md instanceof JsonStruct) writeJsonStruct(md.json);
    else writeStruct(md);
  }
  if (has(m.mode_override)) {
    putSub(9);
    writeMode(m.mode_override);
  }
  if (has(m.override_message_timeout)) {
    const d = m.override_message_timeout;
    putSub(10);
    if (has(d.seconds)) {
      buf[pos++] = tag(1, VARINT);
      putVarint64(LongBits.from(d.seconds));
    }
    if (has(d.nanos)) putInt32(2, d.nanos);
  }
}

/**
 * `framed`: the gRPC message framing in front (flag 0, 4-byte length), in the same buffer, so the
 * transport writes one buffer per message without another copy.
 */
export function encodeResponse(m: ProcessingResponse, framed = false): Buffer {
  if (Array.isArray(m)) throw new Error('Failed to serialize message: expected object with ProcessingResponse structure, got array instead');
  sn = 0;
  bn = 0;
  si = 0;
  bi = 0;
  try {
    const total = sizeResponse(m);
    const head = framed ? 5 : 0;
    const out = Buffer.allocUnsafe(total + head);
    if (framed) {
      out[0] = 0;
      out.writeUInt32BE(total, 1);
    }
    buf = out;
    pos = head;
    writeResponse(m);
    if (pos !== total + head || si !== sn) throw new Error(`ext_proc codec: wrote ${pos - head} of ${total} bytes`);
    return out;
  } finally {
    buf = EMPTY;
    // Bodies must not stay reachable from here until the next reply overwrites them.
    for (let i = 0; i < bn; i++) BLOBS[i] = undefined;
    // A huge reply (thousands of headers) does not keep its scratch space for good.
    if (sn > 65536) SIZES.length = 0;
    if (bn > 65536) BLOBS.length = 0;
  }
}

