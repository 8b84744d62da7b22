// Hex SHA-256 in one call. crypto.hash (Node ≥ 20.12) skips the Hash object createHash builds, about
// half the cost for a request body or an API key; older Nodes fall back to createHash. Same digest:
// strings are hashed as UTF-8 either way.
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: string | Uint8Array, outputEncoding: 'hex') => string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * Hex SHA-256 of content that arrives in one or more chunks (a response body, or a stream's chunks). Why not
 * just createHash: most responses arrive whole, and for those the one-shot sha256Hex costs about half; a Hash
 * object is built only when a second chunk arrives. Until then the first chunk is held BY REFERENCE: callers
 * must not modify a chunk after handing it over (the gateway's bodies are never reused).
 */
export class Sha256Stream {
  private first: Uint8Array | undefined;
  private hash: crypto.Hash | undefined;

  update(chunk: Uint8Array): void {
    if (this.hash) this.hash.update(chunk);
    else if (this.first === undefined) this.first = chunk;
    else {
      this.hash = crypto.createHash('sha256').update(this.first).update(chunk);
      this.first = undefined;
    }
  }

  /** The digest of everything so far (of nothing: the empty string's). Call once, like Hash#digest. */
  digestHex(): string {
    return this.hash ? this.hash.digest('hex') : sha256Hex(this.first ?? EMPTY);
  }
}

const EMPTY = new Uint8Array(0);
