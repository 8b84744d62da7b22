// MutationBuilder (service/extproc/mutations.ts) keeps its headers in small arrays; what it builds must be
// exactly what a Map of set headers and a Set of removed ones gives: last value wins, a re-set name keeps its
// place, a removed-then-set name moves last and leaves the removals (and the reverse), names lower-cased.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerMap, MutationBuilder } from '../../service/extproc/mutations.ts';

/** The reference: the Map/Set semantics the builder had before. */
function reference(ops: [op: 'set' | 'remove', name: string, value: string][]) {
  const set = new Map<string, string>();
  const remove = new Set<string>();
  for (const [op, name, value] of ops) {
    const k = name.toLowerCase();
    if (op === 'set') {
      remove.delete(k);
      set.set(k, value);
    } else {
      set.delete(k);
      remove.add(k);
    }
  }
  if (set.size === 0 && remove.size === 0) return undefined;
  return {
    set_headers: [...set].map(([key, v]) => ({ header: { key, raw_value: Buffer.from(v, 'latin1') }, append: { value: false } })),
    remove_headers: [...remove],
  };
}

describe('MutationBuilder', () => {
  it('builds what Map/Set semantics give for any sequence of sets and removes', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const names = ['a', 'B', 'x-tollgate-cluster', 'Content-Length', ':path', 'b', 'A'];
    for (let t = 0; t < 500; t++) {
      const ops = Array.from({ length: Math.floor(rnd() * 12) }, (_, i) => [rnd() < 0.6 ? 'set' : 'remove', names[Math.floor(rnd() * names.length)]!, `v${i}é`] as ['set' | 'remove', string, string]);
      const m = new MutationBuilder();
      for (const [op, name, value] of ops) if (op === 'set') m.setHeader(name, value);
      else m.removeHeader(name);
      assert.deepEqual(m.build(), reference(ops), JSON.stringify(ops));
      assert.equal(m.empty, reference(ops) === undefined);
    }
  });

  it('keeps the order: a re-set name stays in place, a removed-then-set one moves last', () => {
    const m = new MutationBuilder().setHeader('a', '1').setHeader('b', '2').setHeader('a', '3').removeHeader('c').removeHeader('b').setHeader('b', '4').setHeader('C', '5');
    const out = m.build()!;
    assert.deepEqual(out.set_headers!.map((o) => [o.header.key, o.header.raw_value!.toString('latin1')]), [['a', '3'], ['b', '4'], ['c', '5']]);
    assert.deepEqual(out.remove_headers, []);
  });

  it('a view() never changes when the builder changes afterwards (copy-on-write), and matches build() at the time it was taken', () => {
    let seed = 5;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const names = ['a', 'B', 'x-tollgate-cluster', 'content-length'];
    for (let t = 0; t < 300; t++) {
      const m = new MutationBuilder();
      const taken: [ReturnType<MutationBuilder['view']>, ReturnType<MutationBuilder['build']>][] = [];
      for (let i = Math.floor(rnd() * 10); i > 0; i--) {
        const name = names[Math.floor(rnd() * names.length)]!;
        if (rnd() < 0.6) m.setHeader(name, `v${t}-${i}`);
        else m.removeHeader(name);
        if (rnd() < 0.4) taken.push([m.view(), m.build()]);
      }
      for (const [view, built] of taken) {
        assert.equal(view === undefined, built === undefined);
        if (!view || !built) continue;
        assert.deepEqual(view.set_headers, built.set_headers);
        assert.deepEqual(view.remove_headers, built.remove_headers);
      }
    }
  });

  it('refuses CR, LF and NUL in a value', () => {
    for (const bad of ['a\r\nx: y', 'a\nb', 'a\0']) assert.throws(() => new MutationBuilder().setHeader('x', bad), /forbidden character/);
  });
});

describe('headerMap', () => {
  it('reads raw_value (a decoder Buffer view or a plain Uint8Array) as latin1, falls back to value, joins repeats', () => {
    const frame = Buffer.from('xxcaf\xe9yy', 'latin1');
    const m = headerMap({
      headers: [
        { key: 'X-A', raw_value: frame.subarray(2, 6) },
        { key: 'x-b', value: 'plain' },
        { key: 'x-a', raw_value: new Uint8Array([0x31]) as Buffer },
        { key: 'x-c', raw_value: Buffer.alloc(0), value: 'fallback' },
      ],
    });
    assert.deepEqual([...m], [['x-a', 'caf\xe9, 1'], ['x-b', 'plain'], ['x-c', 'fallback']]);
  });
});
