// HPACK (RFC 7541) for the hand-written HTTP/2 transport: a decoder for the peer's header blocks (static and
// dynamic tables, Huffman strings, table size updates) and an encoder that only ever emits literals without
// indexing, so our side keeps no encoder state and the peer's decoder table is never touched by us.

/** RFC 7541 Appendix B: the Huffman code length of each symbol 0..256 (256 = EOS). The code is canonical. */
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6,
  8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20,
  20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
  23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27,
  26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27,
  26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/** RFC 7541 Appendix A: the static table, indices 1..61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'], [':scheme', 'http'],
  [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'], ['accept-language', ''],
  ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''],
  ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

const EOS = 256;

/**
 * The Huffman decoding tree as a flat array: node n's children are at [2n] (bit 0) and [2n + 1] (bit 1); a
 * negative entry is a leaf holding -(symbol + 1). Built once from the canonical code lengths.
 */
const TREE: Int32Array = (() => {
  const order = HUFFMAN_LENGTHS.map((_, s) => s).sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  const tree: number[] = [0, 0];
  let code = 0;
  let prev = HUFFMAN_LENGTHS[order[0]!]!;
  for (const sym of order) {
    const bits = HUFFMAN_LENGTHS[sym]!;
    code *= 2 ** (bits - prev);
    prev = bits;
    let node = 0;
    for (let b = bits - 1; b >= 0; b--) {
      const slot = 2 * node + (Math.floor(code / 2 ** b) & 1);
      if (b === 0) tree[slot] = -(sym + 1);
      else {
        if (!tree[slot]) {
          tree[slot] = tree.length / 2;
          tree.push(0, 0);
        }
        node = tree[slot]!;
      }
    }
    code++;
  }
  return Int32Array.from(tree);
})();

/** A header block the peer should not have sent: the connection ends with COMPRESSION_ERROR (RFC 7540 §4.3). */
export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 §5.2): padding is at most 7 bits, all ones; EOS is never valid. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  let node = 0;
  let depth = 0; // bits read since the last symbol
  let ones = true; // ... and all of them were 1
  let out = '';
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      const v = TREE[2 * node + bit]!;
      if (v < 0) {
        const sym = -v - 1;
        if (sym === EOS) throw new HpackError('Huffman string contains EOS');
        out += String.fromCharCode(sym);
        node = 0;
        depth = 0;
        ones = true;
      } else {
        node = v;
        depth++;
        if (!bit) ones = false;
      }
    }
  }
  if (depth > 7 || !ones) throw new HpackError('invalid Huffman padding');
  return out;
}

/** Request headers as node:http2 gives them: lowercase names, repeated fields joined with ", ". */
export type HeaderMap = Record<string, string>;

export interface DecoderLimits {
  /** SETTINGS_HEADER_TABLE_SIZE we advertised: the most the peer may size our dynamic table to. */
  maxTableSize: number;
  /** Decoded header list size (names + values + 32 per field, RFC 7540 §6.5.2) above which `oversized` is set. */
  maxListSize: number;
}

export interface DecodedBlock {
  headers: HeaderMap;
  /** The list exceeded maxListSize: the block was still decoded whole (the table stays in sync), the stream is refused. */
  oversized: boolean;
}

/** One per connection: the dynamic table is connection state, updated by every header block in order. */
export class HpackDecoder {
  /** Dynamic table, oldest first: index 62 is the last element. */
  private readonly table: [string, string][] = [];
  private size = 0;
  private max: number;
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;

  constructor(private readonly limits: DecoderLimits) {
    this.max = limits.maxTableSize;
  }

  decode(block: Uint8Array): DecodedBlock {
    this.buf = block;
    this.pos = 0;
    const headers: HeaderMap = Object.create(null) as HeaderMap;
    let listSize = 0;
    let fields = 0;
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed field (§6.1).
        const i = this.int(7);
        if (i === 0) throw new HpackError('index 0');
        [name, value] = this.entry(i);
      } else if (b & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const i = this.int(6);
        name = i ? this.entry(i)[0] : this.str();
        value = this.str();
        this.add(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block.
        if (fields > 0) throw new HpackError('table size update after a field');
        const max = this.int(5);
        if (max > this.limits.maxTableSize) throw new HpackError(`table size ${max} above the advertised ${this.limits.maxTableSize}`);
        this.max = max;
        this.evict();
        continue;
      } else {
        // Literal without indexing / never indexed (§6.2.2, §6.2.3).
        const i = this.int(4);
        name = i ? this.entry(i)[0] : this.str();
        value = this.str();
      }
      fields++;
      listSize += name.length + value.length + 32;
      if (listSize <= this.limits.maxListSize) {
        const prev = headers[name];
        headers[name] = prev === undefined ? value : `${prev}, ${value}`;
      }
    }
    return { headers, oversized: listSize > this.limits.maxListSize };
  }

  /** An integer with an N-bit prefix (§5.1); at most 2^28 or so, far above any length or index we accept. */
  private int(prefix: number): number {
    const mask = (1 << prefix) - 1;
    let v = this.buf[this.pos++]! & mask;
    if (v < mask) return v;
    for (let shift = 0; ; shift += 7) {
      if (shift > 21) throw new HpackError('integer too large');
      const b = this.buf[this.pos++];
      if (b === undefined) throw new HpackError('truncated integer');
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
    }
  }

  /** A string literal (§5.2): plain octets (latin1, as node:http2 reads header bytes) or Huffman. */
  private str(): string {
    if (this.pos >= this.buf.length) throw new HpackError('truncated string');
    const huffman = (this.buf[this.pos]! & 0x80) !== 0;
    const len = this.int(7);
    const end = this.pos + len;
    if (end > this.buf.length) throw new HpackError('truncated string');
    const s = huffman ? huffmanDecode(this.buf, this.pos, end) : latin1(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  private entry(i: number): readonly [string, string] {
    if (i <= STATIC_TABLE.length) return STATIC_TABLE[i - 1]!;
    const e = this.table[this.table.length - (i - STATIC_TABLE.length)];
    if (!e) throw new HpackError(`index ${i} outside the tables`);
    return e;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.table.push([name, value]);
    this.size += size;
    // An entry larger than the table empties it and is not kept (§4.4).
    this.evict();
  }

  private evict(): void {
    let drop = 0;
    while (this.size > this.max && drop < this.table.length) {
      const [n, v] = this.table[drop]!;
      this.size -= n.length + v.length + 32;
      drop++;
    }
    if (drop > 0) this.table.splice(0, drop);
  }
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/**
 * Encodes header fields as literals without indexing, new name (§6.2.2), without Huffman: valid for any peer,
 * leaves the peer's dynamic table untouched. Names must be lowercase; values latin1 (gRPC's are ASCII).
 */
export function encodeLiterals(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0x00]), lengthPrefix(name.length), Buffer.from(name, 'latin1'), lengthPrefix(value.length), Buffer.from(value, 'latin1'));
  }
  return Buffer.concat(parts);
}

/** A string length with a 7-bit prefix and the H bit clear (§5.1, §5.2). */
function lengthPrefix(n: number): Buffer {
  if (n < 0x7f) return Buffer.from([n]);
  const out = [0x7f];
  let v = n - 0x7f;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}
