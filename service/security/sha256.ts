// Hex SHA-256 in one call. crypto.hash (Node ≥ 20.12) skips the Hash object createHash builds, about
// half the cost for a request body or an API key; older Nodes fall back to createHash. Same digest:
// strings are hashed as UTF-8 either way.
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: string | Uint8Array, outputEncoding: 'hex') => string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : crypto.createHash('sha256').update(data).digest('hex');
}
