// PairBytes (service/extproc/pair-bytes.ts): the codec's cache of whole-field bytes for (name, value) pairs.
// A pair is encoded the third time it is seen, once; each name keeps four values, replacing the oldest one not
// used since the last replacement passed it; the cache stays within its bounds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PairBytes } from '../../service/extproc/pair-bytes.ts';

function counting() {
  const calls: string[] = [];
  const cache = new PairBytes((n, v) => {
    calls.push(`${n}=${v}`);
    return v === 'declined' ? null : Buffer.from(`${n}=${v}`);
  }, 3, 10, 20);
  return { cache, calls };
}

describe('PairBytes', () => {
  it('encodes a pair the third time it is seen (not a per-request id a request sends twice), then returns the same bytes without encoding again', () => {
    const { cache, calls } = counting();
    assert.equal(cache.get('a', '1'), null);
    assert.equal(cache.get('a', '1'), null);
    assert.deepEqual(calls, []);
    const b = cache.get('a', '1');
    assert.equal(b?.toString(), 'a=1');
    assert.equal(cache.get('a', '1'), b);
    assert.deepEqual(calls, ['a=1']);
  });

  it('keeps the last four values of a name; a fifth evicts the oldest', () => {
    const { cache } = counting();
    for (const v of ['1', '2', '3', '4']) cache.get('a', v);
    for (const v of ['1', '2', '3', '4']) cache.get('a', v);
    for (const v of ['1', '2', '3', '4']) assert.equal(cache.get('a', v)?.toString(), `a=${v}`);
    cache.get('a', '5');
    assert.equal(cache.get('a', '1'), null, 'evicted');
    cache.get('a', '5');
    assert.equal(cache.get('a', '5')?.toString(), 'a=5');
  });

  it('keeps a recurring value used since the last replacement while per-request values come and go (second chance)', () => {
    const { cache, calls } = counting();
    // content-length: a fixed response's length every request, next to each request body's own length.
    for (let r = 0; r < 40; r++) {
      cache.get('a', `req-${r}`);
      cache.get('a', 'fixed');
    }
    assert.equal(cache.get('a', 'fixed')?.toString(), 'a=fixed');
    assert.deepEqual(calls, ['a=fixed'], 'encoded once, never evicted');
  });

  it('remembers a declined pair without asking the encoder again', () => {
    const { cache, calls } = counting();
    cache.get('a', 'declined');
    cache.get('a', 'declined');
    assert.equal(cache.get('a', 'declined'), null);
    assert.equal(cache.get('a', 'declined'), null);
    assert.deepEqual(calls, ['a=declined']);
  });

  it('stays within its bounds: names, name length, value length', () => {
    const { cache, calls } = counting();
    for (const n of ['a', 'b', 'c', 'd']) cache.get(n, 'v');
    assert.ok(cache.size <= 3, `${cache.size} names`);
    for (let i = 0; i < 3; i++) assert.equal(cache.get('n'.repeat(11), 'v'), null);
    for (let i = 0; i < 3; i++) assert.equal(cache.get('a', 'v'.repeat(21)), null);
    assert.deepEqual(calls, []);
  });
});
