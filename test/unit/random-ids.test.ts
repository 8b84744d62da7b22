import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { newHexId, newRequestId } from '../../service/security/random-ids.ts';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are random version-4 UUIDs in the same form as crypto.randomUUID', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const id = newRequestId();
    assert.match(id, V4);
    seen.add(id);
  }
  assert.equal(seen.size, 20_000, 'every id is unique');
  assert.match(randomUUID(), V4); // the pattern is the one Node's ids follow
  // Every hex digit shows up in every free position over many ids (no stuck nibble, no constant byte).
  const ids = [...seen];
  for (let pos = 0; pos < 36; pos++) {
    if ([8, 13, 14, 18, 19, 23].includes(pos)) continue;
    const digits = new Set(ids.map((id) => id[pos]));
    assert.equal(digits.size, 16, `position ${pos} takes all 16 hex digits`);
  }
});

test('an id held for long costs a flat string, not the rope crypto.randomUUID builds', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heldBytesPerId = (make: () => string): number => {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const held = new Array<string>(50_000);
    for (let i = 0; i < held.length; i++) held[i] = make();
    gc();
    gc();
    const after = process.memoryUsage().heapUsed;
    assert.equal(held.length, 50_000);
    return (after - before) / held.length;
  };
  const flat = heldBytesPerId(newRequestId);
  const rope = heldBytesPerId(() => randomUUID());
  // A flat 36-char one-byte string is ~56 bytes plus the array slot; the rope is ~20 nodes of 32 bytes.
  assert.ok(flat < 120, `held bytes per id ${flat.toFixed(0)} (flat string expected)`);
  assert.ok(rope > 2 * flat, `randomUUID's rope (${rope.toFixed(0)} B/id) is what this avoids (${flat.toFixed(0)} B/id)`);
});

test('hex ids are 128 random bits as 32 lowercase hex characters, distinct across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5_000; i++) {
    const id = newHexId();
    assert.match(id, /^[0-9a-f]{32}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 5_000);
});
