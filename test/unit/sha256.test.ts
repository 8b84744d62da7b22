// sha256Hex (service/security/sha256.ts) replaces createHash(...).update(...).digest('hex') for the prompt
// hash in lineage and the API key hash: it must give the same digest for every input.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../service/security/sha256.ts';
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
