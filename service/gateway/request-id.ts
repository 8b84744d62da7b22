// Random (version 4) UUIDs as flat strings. `crypto.randomUUID()` returns its id as a rope of ~20
// concatenated pieces; an id that outlives its request (the budget store remembers settled ids for 15
// minutes, up to 100k of them) then keeps ~20 rope nodes alive: ~600 bytes of heap per id instead of ~60.
// Same format and the same CSPRNG (random bytes from crypto.randomFillSync, 128 ids per refill, as Node does).
import { randomFillSync } from 'node:crypto';

const IDS_PER_REFILL = 128;
const pool = Buffer.alloc(16 * IDS_PER_REFILL);
let next = pool.length;
const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Byte offsets in the 36-char form where each of the 16 bytes goes (two hex digits each). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
text[8] = text[13] = text[18] = text[23] = 0x2d; // '-'

export function newRequestId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const o = next;
  next += 16;
  pool[o + 6] = (pool[o + 6]! & 0x0f) | 0x40; // version 4
  pool[o + 8] = (pool[o + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  for (let i = 0; i < 16; i++) {
    const b = pool[o + i]!;
    text[AT[i]!] = HEX[b >> 4]!;
    text[AT[i]! + 1] = HEX[b & 15]!;
  }
  pool.fill(0, o, o + 16); // used random bytes are not kept around
  return text.toString('latin1', 0, 36);
}
