// sha256Hex (service/security/sha256.ts) replaces createHash(...).update(...).digest('hex') for the prompt
// hash in lineage and the API key hash: it must give the same digest for every input.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sha256Hex, Sha256Stream } from '../../service/security/sha256.ts';
import { hashKey } from '../../service/identity/keys.ts';

describe('sha256Hex', () => {
  it('equals createHash sha256 hex for strings (as UTF-8), buffers and empty input', () => {
    const inputs: (string | Buffer)[] = ['', 'tg-demo-acme-research-0000000000000001', 'clé 💥 \u0000', Buffer.alloc(0), Buffer.from([0, 255, 128]), Buffer.alloc(70000, 7)];
    for (const x of inputs) assert.equal(sha256Hex(x), createHash('sha256').update(x).digest('hex'));
  });
  it('keeps the stored API key hashes valid (hashKey is SHA-256 of the UTF-8 secret)', () => {
    assert.equal(hashKey('tg-ü-secret'), createHash('sha256').update('tg-ü-secret', 'utf8').digest('hex'));
    assert.equal(hashKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

// Sha256Stream is the exchange's response hash (lineage content.responseSha256): one-shot for a body that arrives
// whole, incremental from a stream's second chunk. Its digest must equal createHash's however the bytes are chunked.
describe('Sha256Stream', () => {
  const reference = (chunks: Uint8Array[]): string => {
    const h = createHash('sha256');
    for (const c of chunks) h.update(c);
    return h.digest('hex');
  };
  const bytes = (s: string) => Buffer.from(s, 'utf8');

  it('equals createHash for no, one and many chunks (empty and multi-byte ones too)', () => {
    const cases: Uint8Array[][] = [
      [],
      [bytes('')],
      [bytes('{"id":"chatcmpl-1","choices":[]}')],
      [bytes('data: {"a":1}\n\n'), bytes('data: [DONE]\n\n')],
      [bytes(''), bytes('héllo — 世界'), bytes(''), bytes('🙂')],
      [new Uint8Array(0), new Uint8Array([0, 255, 1]), Buffer.alloc(70_000, 7)],
    ];
    for (const chunks of cases) {
      const s = new Sha256Stream();
      for (const c of chunks) s.update(c);
      assert.equal(s.digestHex(), reference(chunks), `chunks: ${chunks.map((c) => c.length).join(',')}`);
    }
  });

  it('hashes the concatenation of the chunks, not the last one', () => {
    const whole = new Sha256Stream();
    whole.update(bytes('abcdef'));
    const split = new Sha256Stream();
    split.update(bytes('abc'));
    split.update(bytes('def'));
    const last = new Sha256Stream();
    last.update(bytes('def'));
    const d = split.digestHex();
    assert.equal(d, createHash('sha256').update('abcdef').digest('hex'));
    assert.equal(whole.digestHex(), d);
    assert.notEqual(last.digestHex(), d);
  });
});
