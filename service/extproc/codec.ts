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
// One pass over the reply, no intermediate Writer and no size pass: each reply is written forward into a
// slab (a reused 64 KB Buffer) and handed out as a view of it. Why one pass: the two passes it replaced
// (size every sub-message and string, then write) walked every header and metadata field twice and kept
// their lengths in side arrays — about half of the encoder's time. A sub-message's length is not known
// until its body is written, so one byte is reserved for it (most are < 128 bytes) and the body is moved
// up when its length takes more (or, where the length is usually the same size every reply, the right count is reserved up front: see openSite). The bytes are
// exactly protobufjs's BufferWriter's (same minimal varints, same UTF-8 writers, same int32/int64
// encodings); test/unit/extproc-codec.test.ts compares them with proto-loader's byte for byte. Every field
// number here is < 16, so each tag is one byte.

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

const varintLen = (u: number): number => (u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5);

/**
 * Replies are written into a slab and returned as views of it (no Buffer allocated per reply; Node's own
 * pool would allocate an 8 KB slab every few replies). A view keeps its slab alive until the transport has
 * written it, as Node's pool does. A reply that outgrows the slab moves to a larger buffer of its own (see
 * grow); the next reply starts a new slab.
 */
const SLAB_SIZE = 64 * 1024;
/** A reply starts on a new slab when less than this is left (most replies fit; moving one costs a copy). */
const MIN_ROOM = 8 * 1024;
/**
 * Node's own Buffer methods behind buf.write(s, offset, length, encoding), called directly: write() looks
 * the encoding up and checks its arguments on every call, ~60 ns of the ~85 a short string costs here.
 * Every Node Buffer has them (protobufjs's BufferWriter calls utf8Write the same way); @types/node does
 * not declare them.
 */
interface NodeBuffer extends Buffer {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number, length: number): number;
}
const asNodeBuffer = (b: Buffer): NodeBuffer => b as NodeBuffer;
const EMPTY = asNodeBuffer(Buffer.alloc(0));
// The writer's state is three `var`s, not `let`s: every read of a module-level `let` from a function
// checks it is initialised (the temporal dead zone), and the writer reads `buf` and `pos` for every byte
// (measured: the encoder ~9% faster with `var` on Node 20).
/** The slab (or a grown reply's own buffer) being written. */
// eslint-disable-next-line no-var
var buf: NodeBuffer = EMPTY;
/** Where the next byte goes. */
// eslint-disable-next-line no-var
var pos = 0;
/** Where the reply being written starts in `buf` (sub-message offsets are kept relative to it). */
// eslint-disable-next-line no-var
var base = 0;

/** Makes room for `n` more bytes of the reply being written. */
function room(n: number): void {
  if (pos + n > buf.length) grow(n);
}

function grow(n: number): void {
  const used = pos - base;
  // Half as much again as the reply so far (a reply of many small fields grows a few times, not once a field),
  // plus what is asked for (a large body is copied once, without doubling it).
  const next = asNodeBuffer(Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, used + n + (used >>> 1))));
  buf.copy(next, 0, base, pos);
  buf = next;
  base = 0;
  pos = used;
}

/**
 * Writes a sub-message's tag and reserves one byte for its length (most are < 128 bytes); returns where
 * the length goes, relative to the reply's start (a grow moves the reply).
 */
function openSub(field: number): number {
  room(2);
  buf[pos++] = tag(field, LEN);
  return pos++ - base;
}

/** Writes the length of the sub-message opened at `at`, moving its body up when the length takes more than a byte. */
function closeSub(at: number): void {
  const a = base + at;
  const len = pos - a - 1;
  if (len < 0x80) buf[a] = len;
  else fixLength(at, 1, len);
}

/**
 * Places in a reply whose sub-message is usually over 127 bytes and about as long as the last one there:
 * a phase (fields 1-4), its CommonResponse, that one's header mutation (each per phase), the dynamic metadata and its
 * top-level entry (tollgate), the entry's Value and that Value's Struct. Such a sub-message reserves as
 * many length bytes as its length took the last time at the same place (or as the body it holds needs),
 * so its body is not moved when the length is written. Why: on the bench's replies, these were all 12
 * moves per request (5.6 KB copied). A wrong guess costs one move, as without it. The same place is
 * never open twice at once (none of them nests in itself), so one slot each holds what was reserved.
 */
const SITE_PHASE = 0; // + field - 1 (fields 1-4)
const SITE_COMMON = 4; // + field - 1
const SITE_MUTATION = 8; // + field - 1
const SITE_METADATA = 12;
const SITE_MD_ENTRY = 13;
const SITE_MD_VALUE = 14;
const SITE_MD_STRUCT = 15;
/** The varint size of the length last written at each place. */
const SITE_BYTES = new Uint8Array(16).fill(1);
/** What the open sub-message at each place reserved. */
const SITE_RESERVED = new Uint8Array(16);

/** openSub at a place (above), reserving for at least `atLeast` bytes of body. */
function openSite(field: number, site: number, atLeast: number): number {
  const r = Math.max(SITE_BYTES[site]!, varintLen(atLeast));
  SITE_RESERVED[site] = r;
  room(6);
  buf[pos++] = tag(field, LEN);
  const at = pos - base;
  pos += r;
  return at;
}

function closeSite(at: number, site: number): void {
  const r = SITE_RESERVED[site]!;
  const len = pos - (base + at) - r;
  SITE_BYTES[site] = varintLen(len);
  fixLength(at, r, len);
}

/** Writes `len` at `at` where `r` bytes were reserved for it, moving the body when it takes more or fewer. */
function fixLength(at: number, r: number, len: number): void {
  const k = varintLen(len);
  if (k !== r) {
    if (k > r) room(k - r);
    const a = base + at;
    buf.copyWithin(a + k, a + r, pos);
    pos += k - r;
  }
  let a = base + at;
  let u = len;
  while (u > 127) {
    buf[a++] = (u & 127) | 128;
    u >>>= 7;
  }
  buf[a] = u;
}

/** Tag and length of a sub-message whose length is known (room for them already made). */
function putSubLen(field: number, len: number): void {
  buf[pos++] = tag(field, LEN);
  putVarint(len);
}

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
  room(11);
  buf[pos++] = tag(field, VARINT);
  if (v < 0) putVarint64(LongBits.fromNumber(v));
  else putVarint(v >>> 0);
}

function putBool(field: number, v: boolean): void {
  room(2);
  buf[pos++] = tag(field, VARINT);
  buf[pos++] = v ? 1 : 0;
}

function putDouble(field: number, v: number): void {
  room(9);
  buf[pos++] = tag(field, I64);
  buf.writeDoubleLE(v, pos);
  pos += 8;
}

/**
 * The UTF-8 bytes of names that recur in nearly every reply (header names, metadata keys): on this
 * path a JS per-character loop costs ~10 ns a character for every name of every reply. A name is encoded
 * once, then written by one copy. Only ASCII names are kept (their bytes are the same whichever UTF-8
 * writer made them), up to KEY_CACHE_MAX of them: the set is cleared when full, so client-chosen names
 * cannot grow it without bound.
 */
const KEY_BYTES = new Map<string, Buffer | null>();
const KEY_CACHE_MAX = 2048;
const KEY_MAX_LEN = 128;
/** Struct string values up to this length go through the name cache (see putStrValue). */
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

/** Copies `b` at `pos` (room made by the caller). */
function copyIn(b: Uint8Array): void {
  const n = b.length;
  if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = b[i]!;
  else buf.set(b, pos);
  pos += n;
}

/** A string field, UTF-8 as protobufjs writes it (its own writer under 40 characters, Buffer's from 40). */
function putStr(field: number, s: string): void {
  const n = s.length;
  room(6 + 3 * n);
  buf[pos++] = tag(field, LEN);
  if (n < 40) {
    // At most 3 * 39 bytes: the length takes one byte. ASCII (request and decision ids) is copied by a
    // plain loop over the character codes; the first other character hands the string to protobufjs's writer.
    const at = pos++;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos + i] = c;
    }
    const l = i === n ? n : utf8.write(s, buf, pos);
    buf[at] = l;
    pos += l;
    return;
  }
  // Reserve the length as if every character took one byte; move the bytes up when it takes more.
  const r = varintLen(n);
  const l = buf.utf8Write(s, pos + r, 3 * n);
  const k = varintLen(l);
  if (k !== r) buf.copyWithin(pos + k, pos + r, pos + r + l);
  putVarint(l);
  pos += l;
}

/** A name (see keyBytes): its cached bytes when it has them, else the string. */
function putKey(field: number, s: string): void {
  const b = keyBytes(s);
  if (b === null) putStr(field, s);
  else putRawKey(field, b);
}

/** Tag, length and bytes of a name already encoded. */
function putRawKey(field: number, b: Buffer): void {
  room(6 + b.length);
  buf[pos++] = tag(field, LEN);
  putVarint(b.length);
  copyIn(b);
}

/** A Struct string_value. Short values are names (tenant, team, model, provider, deployment…) that recur like keys; long ones (request and decision ids) are unique per request and are not cached. */
function putStrValue(field: number, s: string): void {
  if (s.length <= SHORT_VALUE) putKey(field, s);
  else putStr(field, s);
}

const bytesOf = (v: Buffer | Uint8Array | string): Uint8Array => (typeof v === 'string' ? Buffer.from(v, 'base64') : v);

function putBytes(field: number, b: Uint8Array): void {
  const n = b.length;
  room(6 + n);
  buf[pos++] = tag(field, LEN);
  putVarint(n);
  copyIn(b);
}

/** A bytes field holding Buffer.from(s, 'latin1'): each character's low byte. */
function putLatin1(field: number, s: string): void {
  const n = s.length;
  room(6 + n);
  buf[pos++] = tag(field, LEN);
  putVarint(n);
  // As in copyIn: a loop only for the shortest values (see COPY_LOOP_MAX).
  if (n <= COPY_LOOP_MAX) for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i) & 0xff;
  else buf.latin1Write(s, pos, n);
  pos += n;
}

/** Whole-field bytes from a PairBytes cache, written as they are. */
function putCached(b: Buffer): void {
  room(b.length);
  copyIn(b);
}

/**
 * Whole fields that recur from reply to reply with the same bytes (pair-bytes.ts): a set header of a
 * BuiltMutation (name and value) and a short string field of a JsonStruct (key and value). Why: most of
 * them are the same for every request of a deployment, and writing them piece by piece (two sub-message
 * frames, the cached name, the value's bytes) was most of the encoder's time; a cached one is written by
 * one copy.
 */
const OPTIONS = new PairBytes(encodeOption);
const FIELDS = new PairBytes(encodeField);

/**
 * Bytes of `append: { value: false }` (HeaderValueOption field 2 holding BoolValue false): what every
 * header a BuiltMutation sets carries (MutationBuilder's NO_APPEND).
 */
const APPEND_FALSE = [tag(2, LEN), 2, tag(1, VARINT), 0] as const;

function putAppendFalse(): void {
  room(4);
  buf[pos++] = APPEND_FALSE[0];
  buf[pos++] = APPEND_FALSE[1];
  buf[pos++] = APPEND_FALSE[2];
  buf[pos++] = APPEND_FALSE[3];
}

/**
 * Runs `write` against a fresh exactly-sized buffer (the same put* functions as a reply, so a cached
 * pair's bytes are the general path's bytes by construction), then restores the reply being written.
 */
function encodeApart(size: number, write: () => void): Buffer {
  const saved = buf;
  const savedPos = pos;
  const savedBase = base;
  // Not a slab view: a kept 40-byte cache entry would pin a whole slab. The spare bytes are what the put
  // functions' room() checks ask beyond what they write (at most 5: a length's largest varint).
  const out = asNodeBuffer(Buffer.allocUnsafeSlow(size + 8));
  buf = out;
  pos = 0;
  base = 0;
  try {
    write();
    if (buf !== out || pos !== size) throw new Error(`ext_proc codec: cached field of ${size} bytes written as ${pos}`);
  } finally {
    buf = saved;
    pos = savedPos;
    base = savedBase;
  }
  return out.subarray(0, size);
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
    putSubLen(1, opt);
    putSubLen(1, hv);
    putRawKey(1, k);
    putLatin1(3, value);
    putAppendFalse();
  });
}

/**
 * A Struct's whole `fields` entry (field 1) for a short string value, as writeJsonStruct writes it:
 * { key, value: { string_value } }. Only when key and value both have cached ASCII bytes (then
 * writeJsonStruct would write both as those bytes).
 */
function encodeField(key: string, value: string): Buffer | null {
  const k = keyBytes(key);
  const v = keyBytes(value);
  if (k === null || v === null) return null;
  const val = 1 + varintLen(v.length) + v.length;
  const entry = 1 + varintLen(k.length) + k.length + 1 + varintLen(val) + val;
  return encodeApart(1 + varintLen(entry) + entry, () => {
    putSubLen(1, entry);
    putRawKey(1, k);
    putSubLen(2, val);
    putRawKey(3, v);
  });
}

function writeHeaderValue(h: HeaderValue): void {
  if (has(h.key)) putKey(1, h.key);
  if (has(h.value)) putStr(2, h.value);
  if (has(h.raw_value)) putBytes(3, bytesOf(h.raw_value));
}

/**
 * A BuiltMutation, written as writeHeaderMutation writes build()'s objects: per set header a
 * HeaderValueOption holding { key, raw_value: latin1 bytes of the value } and append false (whole from
 * OPTIONS when the pair recurs); then the removed names.
 */
function writeBuiltMutation(m: BuiltMutation): void {
  const names = m.names;
  const values = m.values;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = values[i]!;
    const cached = OPTIONS.get(name, value);
    if (cached !== null) {
      putCached(cached);
      continue;
    }
    const o = openSub(1);
    const h = openSub(1);
    putKey(1, name);
    putLatin1(3, value);
    closeSub(h);
    putAppendFalse();
    closeSub(o);
  }
  const removed = m.removed;
  for (let i = 0; i < removed.length; i++) putKey(2, removed[i]!);
}

function writeHeaderMutation(m: HeaderMutation): void {
  if (m instanceof BuiltMutation) return writeBuiltMutation(m);
  const set = m.set_headers;
  if (set)
    for (const o of set) {
      const s = openSub(1);
      if (has(o.header)) {
        const h = openSub(1);
        writeHeaderValue(o.header);
        closeSub(h);
      }
      if (has(o.append)) {
        const a = openSub(2);
        if (has(o.append.value)) putBool(1, o.append.value);
        closeSub(a);
      }
      closeSub(s);
    }
  const remove = m.remove_headers;
  if (remove) for (const name of remove) putKey(2, name);
}

/** A BodyMutation (field 3 of CommonResponse); its length is known before it is written. */
function writeBodyMutation(m: BodyMutation): void {
  if (has(m.body)) {
    const b = bytesOf(m.body);
    room(12);
    putSubLen(3, 1 + varintLen(b.length) + b.length);
    putBytes(1, b);
  } else if (has(m.clear_body)) {
    room(2);
    putSubLen(3, 2);
    putBool(2, m.clear_body);
  } else {
    room(2);
    putSubLen(3, 0);
  }
}

/** The bytes of body a CommonResponse carries: a lower bound of the lengths of the messages around it (see openSite). */
const bodyBytes = (c: CommonResponse | undefined): number => {
  const b = c?.body_mutation?.body;
  // A base64 string (rare) says little of its bytes: no bound.
  return b === undefined || b === null || typeof b === 'string' ? 0 : b.length;
};

/** `phase`: the ProcessingResponse field (1-4) it answers (its header mutation's place, see openSite). */
function writeCommon(c: CommonResponse, phase: number): void {
  if (has(c.status)) putInt32(1, enumValue(c.status, STATUSES, 'CommonResponse.status'));
  if (has(c.header_mutation)) {
    const site = SITE_MUTATION + phase - 1;
    const s = openSite(2, site, 0);
    writeHeaderMutation(c.header_mutation);
    closeSite(s, site);
  }
  if (has(c.body_mutation)) writeBodyMutation(c.body_mutation);
  if (has(c.clear_route_cache)) putBool(5, c.clear_route_cache);
}

function writeValue(v: PbValue): void {
  if ('nullValue' in v) putInt32(1, enumValue(v.nullValue, NULL_VALUES, 'Value.nullValue'));
  else if ('numberValue' in v) putDouble(2, v.numberValue);
  else if ('stringValue' in v) putStrValue(3, v.stringValue);
  else if ('boolValue' in v) putBool(4, v.boolValue);
  else if ('structValue' in v) {
    const s = openSub(5);
    writeStruct(v.structValue);
    closeSub(s);
  } else if ('listValue' in v) {
    const s = openSub(6);
    for (const x of v.listValue.values ?? []) {
      const e = openSub(1);
      writeValue(x);
      closeSub(e);
    }
    closeSub(s);
  }
}

function writeStruct(st: PbStruct): void {
  const fields = st.fields;
  if (!fields) return;
  for (const k in fields) {
    const v = fields[k];
    if (!has(v)) continue;
    const e = openSub(1);
    putKey(1, k);
    const val = openSub(2);
    writeValue(v);
    closeSub(val);
    closeSub(e);
  }
}

// A JsonStruct: the same bytes as toPbStruct(json) through writeStruct (toPbValue's mapping:
// null/undefined → null_value, bigint → number, Date → ISO string, arrays → list_value, other objects →
// struct_value, anything else → String(v); undefined fields are left out).

/** A Value's fields for plain JSON `v`; `top`: the value of a top-level metadata entry (see openSite). */
function writeJsonValue(v: unknown, top: boolean): void {
  if (v === null || v === undefined) {
    putInt32(1, 0);
    return;
  }
  switch (typeof v) {
    case 'number':
    case 'bigint':
      putDouble(2, Number(v));
      return;
    case 'string':
      putStrValue(3, v);
      return;
    case 'boolean':
      putBool(4, v);
      return;
    case 'object':
      if (v instanceof Date) putStrValue(3, v.toISOString());
      else if (Array.isArray(v)) {
        const s = openSub(6);
        for (let i = 0; i < v.length; i++) {
          const e = openSub(1);
          writeJsonValue(v[i], false);
          closeSub(e);
        }
        closeSub(s);
      } else if (top) {
        const s = openSite(5, SITE_MD_STRUCT, 0);
        writeJsonStruct(v as Record<string, unknown>, false);
        closeSite(s, SITE_MD_STRUCT);
      } else {
        const s = openSub(5);
        writeJsonStruct(v as Record<string, unknown>, false);
        closeSub(s);
      }
      return;
    default:
      putStrValue(3, String(v));
  }
}

/** `top`: the dynamic metadata's own Struct (its entries are places, see openSite). */
function writeJsonStruct(o: Record<string, unknown>, top: boolean): void {
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v === 'string' && v.length <= SHORT_VALUE) {
      const cached = FIELDS.get(k, v);
      if (cached !== null) {
        putCached(cached);
        continue;
      }
    }
    if (top) {
      const e = openSite(1, SITE_MD_ENTRY, 0);
      putKey(1, k);
      const val = openSite(2, SITE_MD_VALUE, 0);
      writeJsonValue(v, true);
      closeSite(val, SITE_MD_VALUE);
      closeSite(e, SITE_MD_ENTRY);
      continue;
    }
    const e = openSub(1);
    putKey(1, k);
    const val = openSub(2);
    writeJsonValue(v, false);
    closeSub(val);
    closeSub(e);
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
    const s = openSub(1);
    if (has(m.status.code)) putInt32(1, m.status.code);
    closeSub(s);
  }
  if (has(m.headers)) {
    const s = openSub(2);
    writeHeaderMutation(m.headers);
    closeSub(s);
  }
  if (has(m.body)) putBytes(3, bytesOf(m.body));
  if (has(m.details)) putStr(5, m.details);
}

/** A headers/body phase's field (fields 1-4). */
function writePhase(field: number, p: { response?: CommonResponse } | undefined): void {
  if (!has(p)) return;
  const c = p.response;
  const body = bodyBytes(c);
  const s = openSite(field, SITE_PHASE + field - 1, body);
  if (has(c)) {
    const r = openSite(1, SITE_COMMON + field - 1, body);
    writeCommon(c, field);
    closeSite(r, SITE_COMMON + field - 1);
  }
  closeSite(s, SITE_PHASE + field - 1);
}

/** A trailers phase's field (fields 5, 6). */
function writeTrailerPhase(field: number, p: { header_mutation?: HeaderMutation } | undefined): void {
  if (!has(p)) return;
  const s = openSub(field);
  if (has(p.header_mutation)) {
    const h = openSub(1);
    writeHeaderMutation(p.header_mutation);
    closeSub(h);
  }
  closeSub(s);
}

function writeResponse(m: ProcessingResponse): void {
  // Named loads, not m[PHASES[f]]: a keyed load over six names is a megamorphic lookup on every reply.
  writePhase(1, m.request_headers);
  writePhase(2, m.response_headers);
  writePhase(3, m.request_body);
  writePhase(4, m.response_body);
  writeTrailerPhase(5, m.request_trailers);
  writeTrailerPhase(6, m.response_trailers);
  if (has(m.immediate_response)) {
    const s = openSub(7);
    writeImmediate(m.immediate_response);
    closeSub(s);
  }
  if (has(m.dynamic_metadata)) {
    const s = openSite(8, SITE_METADATA, 0);
    const md = m.dynamic_metadata;
    if (md instanceof JsonStruct) writeJsonStruct(md.json, true);
    else writeStruct(md);
    closeSite(s, SITE_METADATA);
  }
  if (has(m.mode_override)) {
    const s = openSub(9);
    writeMode(m.mode_override);
    closeSub(s);
  }
  if (has(m.override_message_timeout)) {
    const d = m.override_message_timeout;
    const s = openSub(10);
    if (has(d.seconds)) {
      room(11);
      buf[pos++] = tag(1, VARINT);
      putVarint64(LongBits.from(d.seconds));
    }
    if (has(d.nanos)) putInt32(2, d.nanos);
    closeSub(s);
  }
}

/**
 * `framed`: the gRPC message framing in front (flag 0, 4-byte length), in the same buffer, so the
 * transport writes one buffer per message without another copy. The result is a view of a shared slab:
 * never written again by the codec, valid for as long as it is kept.
 */
export function encodeResponse(m: ProcessingResponse, framed = false): Buffer {
  if (Array.isArray(m)) throw new Error('Failed to serialize message: expected object with ProcessingResponse structure, got array instead');
  // A new slab when this one is nearly full, or when the last reply outgrew it (do not keep a huge buffer).
  if (buf.length - pos < MIN_ROOM || buf.length > SLAB_SIZE) {
    buf = asNodeBuffer(Buffer.allocUnsafeSlow(SLAB_SIZE));
    pos = 0;
  }
  base = pos;
  const head = framed ? 5 : 0;
  pos += head;
  let out: Buffer | undefined;
  try {
    writeResponse(m);
    out = buf.subarray(base, pos);
    if (framed) {
      out[0] = 0;
      out.writeUInt32BE(pos - base - 5, 1);
    }
    return out;
  } finally {
    // A reply that failed half-way leaves nothing behind: the next one writes over it.
    if (out === undefined) pos = base;
  }
}
