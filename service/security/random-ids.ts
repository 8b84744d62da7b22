// Random ids from one CSPRNG pool (crypto.randomFillSync, 128 ids' worth of bytes per refill; used bytes are
// zeroed), each returned as a FLAT string decoded straight from bytes. Why not crypto.randomUUID() or a slice
// of a long hex string: randomUUID returns a rope of ~20 concatenated pieces and a slice keeps its whole parent
// alive, so an id that outlives its request (the budget store remembers settled ids for 15 minutes, up to 100k
// of them) would hold ~500 bytes of heap (or a shared 8 KB string) instead of ~60.
import { randomFillSync } from 'node:crypto';

const IDS_PER_REFILL = 128;
const pool = Buffer.alloc(16 * IDS_PER_REFILL);
let next = pool.length;

/** The offset of 16 fresh random bytes in `pool`. */
function take16(): number {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const o = next;
  next += 16;
  return o;
}

const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Byte offsets in the 36-char UUID form where each of the 16 bytes goes (two hex digits each). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
text[8] = text[13] = text[18] = text[23] = 0x2d; // '-'

/** A random version-4 UUID, in the form crypto.randomUUID() gives. Request and budget-hold ids. */
export function newRequestId(): string {
  const o = take16();
  pool[o + 6] = (pool[o + 6]! & 0x0f) | 0x40; // version 4
  pool[o + 8] = (pool[o + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  for (let i = 0; i < 16; i++) {
    const b = pool[o + i]!;
    text[AT[i]!] = HEX[b >> 4]!;
    text[AT[i]! + 1] = HEX[b & 15]!;
  }
  pool.fill(0, o, o + 16);
  return text.toString('latin1', 0, 36);
}

/** 128 random bits as 32 lowercase hex characters. Policy decision ids. */
export function newHexId(): string {
  const o = take16();
  const id = pool.toString('hex', o, o + 16);
  pool.fill(0, o, o + 16);
  return id;
}
