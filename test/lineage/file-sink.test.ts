// FileSink batching: one write per batch; rotation stays exact at the byte bound with multi-byte lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileSink, rotatedFiles, type SinkEntry } from '../../service/lineage/sinks.ts';

const entries = (n: number, text: (i: number) => string, from = 1): SinkEntry[] =>
  Array.from({ length: n }, (_, i) => ({ seq: from + i, json: JSON.stringify({ i: from + i, t: text(i) }) }));

test('a batch far below the bound lands whole, in order, in the live file', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tg-filesink-'));
  try {
    const sink = new FileSink({ path: path.join(dir, 'l.jsonl'), fsync: false });
    const batch = entries(300, (i) => `ünïcødé ${i} 😀`);
    assert.deepEqual(await sink.write(batch), { written: 300, duplicates: 0 });
    await sink.close();
    const text = await fs.readFile(path.join(dir, 'l.jsonl'), 'utf8');
    assert.equal(text, batch.map((e) => e.json + '\n').join(''));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('multi-byte lines near the bound rotate between lines and no file exceeds maxBytes', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tg-filesink-'));
  try {
    const file = path.join(dir, 'l.jsonl');
    const batch = entries(40, (i) => '€'.repeat(10 + (i % 5)));
    const lineBytes = batch.map((e) => Buffer.byteLength(e.json) + 1);
    // Room for a few lines per file in bytes, though 3x the UTF-16 length of the batch is far more.
    const maxBytes = lineBytes[0]! * 4 + 5;
    const sink = new FileSink({ path: file, maxBytes, keep: 100, fsync: false });
    assert.equal((await sink.write(batch.slice(0, 3))).written, 3);
    assert.equal((await sink.write(batch.slice(3))).written, 37);
    await sink.close();
    const files = await rotatedFiles(file);
    let all = '';
    for (const f of files.reverse()) {
      const st = await fs.stat(f);
      assert.ok(st.size <= maxBytes, `${path.basename(f)}: ${st.size} > ${maxBytes}`);
      const t = await fs.readFile(f, 'utf8');
      assert.ok(t.endsWith('\n'));
      all += t;
    }
    assert.equal(all, batch.map((e) => e.json + '\n').join(''), 'every line once, in order, none torn');
    assert.ok(files.length >= 10);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('batches of shrinking and growing size, and a line larger than the reused buffer, land exactly', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tg-filesink-'));
  try {
    const file = path.join(dir, 'l.jsonl');
    const sink = new FileSink({ path: file, fsync: false });
    // The write buffer is reused between batches: a short batch after a long one must not carry its tail.
    const big = entries(200, (i) => `ä${'x'.repeat(900 + i)}`, 1);
    const small = entries(2, (i) => `ß${i}`, 201);
    const huge = entries(1, () => 'é'.repeat(2.5 * 1024 * 1024), 203); // ~5 MB of UTF-8: past the reused buffer's cap
    const last = entries(3, (i) => `🙂${i}`, 204);
    for (const b of [big, small, huge, last]) assert.deepEqual(await sink.write(b), { written: b.length, duplicates: 0 });
    await sink.close();
    const text = await fs.readFile(file, 'utf8');
    assert.equal(text, [...big, ...small, ...huge, ...last].map((e) => e.json + '\n').join(''));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
