import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Spool, type SpoolEntry } from '../../service/lineage/spool.ts';

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tollgate-spool-'));
}

function entries(from: number, n: number, pad = 0): SpoolEntry[] {
  return Array.from({ length: n }, (_, i) => ({ seq: from + i, json: JSON.stringify({ n: from + i, pad: 'x'.repeat(pad) }) }));
}

/** Reads and acknowledges everything, returning the seqs in the order delivered. */
async function drainAll(s: Spool, chunk = 7): Promise<number[]> {
  const out: number[] = [];
  for (let guard = 0; guard < 10_000 && !s.isEmpty(); guard++) {
    const r = await s.read(chunk);
    out.push(...r.entries.map((e) => e.seq));
    await s.ack(r.end, r.entries.length);
  }
  return out;
}

test('entries come back in order and survive reopening; partial acks resume exactly', async () => {
  const dir = await tmpDir();
  try {
    let s = await Spool.open(dir, { segmentBytes: 4096, maxBytes: 1 << 20 });
    await s.append(entries(1, 100));
    await s.append(entries(101, 50));
    assert.equal(s.records, 150);
    const first = await s.read(10);
    assert.deepEqual(first.entries.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // The sink stored only 4 of them.
    await s.ack(first.entries[3]!.end, 4);
    assert.equal(s.records, 146);
    await s.close();

    s = await Spool.open(dir, { segmentBytes: 4096, maxBytes: 1 << 20 });
    assert.equal(s.records, 146);
    const rest = await drainAll(s);
    assert.deepEqual(rest, Array.from({ length: 146 }, (_, i) => i + 5));
    assert.equal(s.bytes, 0, 'a drained spool holds no segment files');
    const left = (await fs.readdir(dir)).filter((n) => n.startsWith('seg-'));
    assert.deepEqual(left, []);
    await s.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a torn last line (crash mid-append) is cut at open; a garbage line is skipped', async () => {
  const dir = await tmpDir();
  try {
    let s = await Spool.open(dir);
    await s.append(entries(1, 3));
    await s.close();
    const seg = path.join(dir, (await fs.readdir(dir)).find((n) => n.startsWith('seg-'))!);
    await fs.appendFile(seg, 'not a spool line\n4\t{"n":4}\n5\t{"n":');
    s = await Spool.open(dir);
    assert.equal(s.corrupt, 1, 'the torn tail is counted');
    assert.deepEqual(await drainAll(s), [1, 2, 3, 4]);
    assert.equal(s.corrupt, 2, 'the garbage line is counted when read');
    await s.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('bound with drop_newest keeps the oldest records and reports how many were refused', async () => {
  const dir = await tmpDir();
  try {
    const s = await Spool.open(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, overflow: 'drop_newest' });
    let stored = 0;
    let dropped = 0;
    for (let i = 0; i < 20; i++) {
      const r = await s.append(entries(1 + i * 50, 50, 60));
      stored += r.stored;
      dropped += r.dropped;
    }
    assert.equal(stored + dropped, 1000);
    assert.ok(dropped > 0, 'the bound was hit');
    assert.ok(s.bytes <= 64 * 1024, `spool stayed within its bound (${s.bytes})`);
    const seqs = await drainAll(s, 100);
    assert.equal(seqs.length, stored);
    assert.deepEqual(seqs, Array.from({ length: stored }, (_, i) => i + 1), 'the oldest records were kept, in order');
    await s.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('bound with drop_oldest keeps the newest records and reports how many were lost', async () => {
  const dir = await tmpDir();
  try {
    const s = await Spool.open(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, overflow: 'drop_oldest' });
    let dropped = 0;
    for (let i = 0; i < 20; i++) dropped += (await s.append(entries(1 + i * 50, 50, 60))).dropped;
    assert.ok(dropped > 0);
    assert.ok(s.bytes <= 64 * 1024);
    const seqs = await drainAll(s, 100);
    assert.equal(seqs.length + dropped, 1000);
    assert.equal(seqs[seqs.length - 1], 1000, 'the newest record is kept');
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, 'what is kept is contiguous');
    await s.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a record longer than the read size is still read whole', async () => {
  const dir = await tmpDir();
  try {
    const s = await Spool.open(dir);
    await s.append([{ seq: 1, json: JSON.stringify({ big: 'y'.repeat(300_000) }) }, ...entries(2, 2)]);
    const r = await s.read(10, 1024);
    assert.equal(r.entries.length, 3);
    assert.equal((JSON.parse(r.entries[0]!.json) as { big: string }).big.length, 300_000);
    await s.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
