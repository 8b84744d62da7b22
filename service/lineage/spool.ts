// A durable, bounded, append-only disk spool for one sink's undelivered lineage records.
//
// Layout of a spool directory (one per sink, `<spoolDir>/<sink>/`):
//   seg-000000000001.log …   segment files, lines `<seq>\t<record json>\n`, appended in seq order
//   cursor.json              {"segment": id, "offset": n}: everything before that position is delivered
// Segments wholly before the cursor are deleted; when the spool drains, all segments are removed.
//
// fsync policy: with `fsync: 'batch'` (default) every append() and every cursor update is fsynced before it
// resolves, so a spooled record survives a crash or power loss, and a delivered one is not replayed unless the
// crash falls between the sink's ack and the cursor write (sinks dedupe that case; see redis-sink.ts).
// With `fsync: 'none'` the OS decides (faster; a power loss can lose or replay the last writes).
//
// Bound: `maxBytes` over all segment files. When an append does not fit, the overflow policy decides:
//   'drop_newest' (default) keeps what is already spooled and refuses the records that do not fit;
//   'drop_oldest' deletes whole oldest segments until the new records fit.
// Either way the caller gets the exact count of records lost, and must make it loud (metric + error log).
//
// Torn writes: a segment whose last line lacks its newline (crash mid-append) is truncated at open; a line
// that does not parse is skipped and counted as corrupt. Only one process may use a spool directory at a time
// (the emitter holds a lock on the parent directory).

import fs from 'node:fs/promises';
import path from 'node:path';

export type OverflowPolicy = 'drop_newest' | 'drop_oldest';
export type FsyncPolicy = 'batch' | 'none';

export interface SpoolOptions {
  /** Total bytes of segment files allowed. */
  maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  fsync: FsyncPolicy;
  overflow: OverflowPolicy;
}

export const DEFAULT_SPOOL_OPTIONS: SpoolOptions = {
  maxBytes: 1024 * 1024 * 1024,
  segmentBytes: 16 * 1024 * 1024,
  fsync: 'batch',
  overflow: 'drop_newest',
};

export interface SpoolEntry {
  seq: number;
  json: string;
}

export interface SpoolPosition {
  segment: number;
  offset: number;
}

export interface SpooledEntry extends SpoolEntry {
  /** Position just after this entry's line. */
  end: SpoolPosition;
}

export interface SpoolRead {
  entries: SpooledEntry[];
  /** Position after the last line consumed (valid or corrupt). */
  end: SpoolPosition;
}

export interface AppendResult {
  stored: number;
  /** Records lost to the bound: the newest of this batch (drop_newest) or older spooled ones (drop_oldest). */
  dropped: number;
}

interface Segment {
  id: number;
  file: string;
  size: number;
  /** Undelivered valid entries in this segment. */
  pending: number;
}

const SEGMENT_RE = /^seg-(\d{12})\.log$/;
const LINE_RE = /^(\d{1,16})\t(.+)$/s;

function segName(id: number): string {
  return `seg-${String(id).padStart(12, '0')}.log`;
}

export class Spool {
  readonly dir: string;
  readonly opts: SpoolOptions;
  private segments: Segment[] = [];
  private cursor: SpoolPosition = { segment: 0, offset: 0 };
  private active: fs.FileHandle | undefined;
  private activeId = -1;
  private nextSegmentId = 1;
  private pendingCount = 0;
  private totalBytes = 0;
  /** Lines skipped because they did not parse (since open). */
  corrupt = 0;
  /** Highest seq ever appended or found (since open). */
  lastSeq = 0;

  private constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.opts = opts;
  }

  static async open(dir: string, opts: Partial<SpoolOptions> = {}): Promise<Spool> {
    const o = { ...DEFAULT_SPOOL_OPTIONS, ...opts };
    if (!(o.maxBytes > 0)) throw new Error(`spool maxBytes must be > 0, got ${o.maxBytes}`);
    // Several segments per bound, so drop_oldest and reclamation work in reasonable steps.
    o.segmentBytes = Math.max(4096, Math.min(o.segmentBytes, Math.floor(o.maxBytes / 8)));
    const s = new Spool(dir, o);
    await fs.mkdir(dir, { recursive: true });
    await s.load();
    return s;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Undelivered records. */
  get records(): number {
    return this.pendingCount;
  }

  isEmpty(): boolean {
    return this.pendingCount === 0;
  }

  fillRatio(): number {
    return this.totalBytes / this.opts.maxBytes;
  }

  private async load(): Promise<void> {
    const names = (await fs.readdir(this.dir)).filter((n) => SEGMENT_RE.test(n)).sort();
    try {
      const c = JSON.parse(await fs.readFile(path.join(this.dir, 'cursor.json'), 'utf8')) as Partial<SpoolPosition>;
      if (Number.isInteger(c.segment) && Number.isInteger(c.offset)) {
        this.cursor = { segment: c.segment as number, offset: c.offset as number };
      }
    } catch {
      // no cursor yet: nothing delivered
    }
    for (const name of names) {
      const id = Number(SEGMENT_RE.exec(name)![1]);
      const file = path.join(this.dir, name);
      let buf = await fs.readFile(file);
      const lastNl = buf.lastIndexOf(0x0a);
      if (lastNl !== buf.length - 1) {
        // Torn append: cut the partial last line.
        await fs.truncate(file, lastNl + 1);
        buf = buf.subarray(0, lastNl + 1);
        this.corrupt++;
      }
      if (id < this.cursor.segment || buf.length === 0) {
        await fs.unlink(file);
        continue;
      }
      const from = id === this.cursor.segment ? Math.min(this.cursor.offset, buf.length) : 0;
      let pending = 0;
      let pos = 0;
      while (pos < buf.length) {
        const nl = buf.indexOf(0x0a, pos);
        const m = LINE_RE.exec(buf.toString('utf8', pos, nl));
        if (m) {
          this.lastSeq = Math.max(this.lastSeq, Number(m[1]));
          if (pos >= from) pending++;
        }
        pos = nl + 1;
      }
      this.segments.push({ id, file, size: buf.length, pending });
      this.pendingCount += pending;
      this.totalBytes += buf.length;
      this.nextSegmentId = id + 1;
    }
    const first = this.segments[0];
    if (first && first.id > this.cursor.segment) this.cursor = { segment: first.id, offset: 0 };
    if (this.pendingCount === 0) await this.reset();
  }

  /** Appends in order. Never throws for the bound; throws only on I/O errors (nothing of the batch stored then). */
  async append(entries: SpoolEntry[]): Promise<AppendResult> {
    if (entries.length === 0) return { stored: 0, dropped: 0 };
    const lines = entries.map((e) => Buffer.from(`${e.seq}\t${e.json}\n`));
    let need = lines.reduce((n, b) => n + b.length, 0);
    let dropped = 0;
    let keep = lines.length;
    if (this.totalBytes + need > this.opts.maxBytes) {
      if (this.opts.overflow === 'drop_oldest') {
        while (this.totalBytes + need > this.opts.maxBytes && this.segments.length > 0) {
          dropped += await this.dropHead();
        }
      }
      // drop_newest, or a batch bigger than the whole bound: keep the leading records that fit.
      while (keep > 0 && this.totalBytes + need > this.opts.maxBytes) {
        keep--;
        need -= lines[keep]!.length;
        dropped++;
      }
    }
    let i = 0;
    while (i < keep) {
      const seg = await this.activeSegment();
      // Fill the active segment up to segmentBytes (at least one line per segment).
      const chunk: Buffer[] = [];
      let size = 0;
      while (i < keep && (chunk.length === 0 || seg.size + size + lines[i]!.length <= this.opts.segmentBytes)) {
        chunk.push(lines[i]!);
        size += lines[i]!.length;
        i++;
      }
      const buf = Buffer.concat(chunk);
      try {
        await this.active!.write(buf, 0, buf.length, seg.size);
        if (this.opts.fsync === 'batch') await this.active!.sync();
      } catch (err) {
        // Cut whatever part of the chunk reached the file so the segment stays line-aligned.
        await this.active!.truncate(seg.size).catch(() => undefined);
        throw err;
      }
      seg.size += buf.length;
      seg.pending += chunk.length;
      this.totalBytes += buf.length;
      this.pendingCount += chunk.length;
      if (seg.size >= this.opts.segmentBytes) await this.closeActive();
    }
    for (let k = 0; k < keep; k++) this.lastSeq = Math.max(this.lastSeq, entries[k]!.seq);
    return { stored: keep, dropped };
  }

  /** Reads up to `max` undelivered entries (about `maxBytes` of them) without consuming them. */
  async read(max: number, maxBytes = 1024 * 1024): Promise<SpoolRead> {
    const entries: SpooledEntry[] = [];
    let pos: SpoolPosition = { ...this.cursor };
    for (const seg of this.segments) {
      if (seg.id < pos.segment) continue;
      if (seg.id > pos.segment) pos = { segment: seg.id, offset: 0 };
      if (pos.offset >= seg.size) continue;
      const fh = await fs.open(seg.file, 'r');
      try {
        let want = Math.min(maxBytes, seg.size - pos.offset);
        for (;;) {
          const buf = Buffer.allocUnsafe(want);
          const { bytesRead } = await fh.read(buf, 0, want, pos.offset);
          const data = buf.subarray(0, bytesRead);
          let p = 0;
          let consumedAny = false;
          while (entries.length < max) {
            const nl = data.indexOf(0x0a, p);
            if (nl < 0) break;
            const m = LINE_RE.exec(data.toString('utf8', p, nl));
            p = nl + 1;
            consumedAny = true;
            const end = { segment: seg.id, offset: pos.offset + p };
            if (m) entries.push({ seq: Number(m[1]), json: m[2]!, end });
            else this.corrupt++;
          }
          if (!consumedAny && bytesRead === want && pos.offset + want < seg.size) {
            want = Math.min(want * 2, seg.size - pos.offset); // one line longer than the read size
            continue;
          }
          pos = { segment: seg.id, offset: pos.offset + p };
          break;
        }
      } finally {
        await fh.close();
      }
      if (entries.length >= max || pos.offset < seg.size) break;
    }
    return { entries, end: pos };
  }

  /** Marks everything before `pos` (a position from read()) as delivered; reclaims finished segments. */
  async ack(pos: SpoolPosition, delivered: number): Promise<void> {
    if (pos.segment < this.cursor.segment || (pos.segment === this.cursor.segment && pos.offset <= this.cursor.offset))
      return;
    // Attribute the delivered count to segments in order.
    let left = delivered;
    for (const seg of this.segments) {
      if (seg.id > pos.segment || left === 0) break;
      const take = Math.min(left, seg.pending);
      seg.pending -= take;
      this.pendingCount -= take;
      left -= take;
    }
    this.cursor = { ...pos };
    while (this.segments.length > 0) {
      const head = this.segments[0]!;
      const done = head.id < pos.segment || (head.id === pos.segment && pos.offset >= head.size && head.id !== this.activeId);
      if (!done) break;
      this.segments.shift();
      this.totalBytes -= head.size;
      this.pendingCount -= head.pending; // corrupt-line leftovers only
      await fs.unlink(head.file).catch(() => undefined);
      if (this.cursor.segment <= head.id) {
        const next = this.segments[0];
        this.cursor = next ? { segment: next.id, offset: 0 } : { segment: this.nextSegmentId, offset: 0 };
      }
    }
    if (this.pendingCount <= 0) {
      await this.reset();
      return;
    }
    await this.writeCursor();
  }

  async close(): Promise<void> {
    await this.closeActive();
  }

  private async reset(): Promise<void> {
    await this.closeActive();
    for (const seg of this.segments) await fs.unlink(seg.file).catch(() => undefined);
    this.segments = [];
    this.pendingCount = 0;
    this.totalBytes = 0;
    this.cursor = { segment: this.nextSegmentId, offset: 0 };
    await this.writeCursor();
  }

  /** Drops the oldest segment; returns how many undelivered records went with it. */
  private async dropHead(): Promise<number> {
    const head = this.segments.shift()!;
    if (head.id === this.activeId) await this.closeActive();
    await fs.unlink(head.file).catch(() => undefined);
    this.totalBytes -= head.size;
    this.pendingCount -= head.pending;
    const next = this.segments[0];
    this.cursor = next ? { segment: next.id, offset: 0 } : { segment: this.nextSegmentId, offset: 0 };
    await this.writeCursor();
    return head.pending;
  }

  private async activeSegment(): Promise<Segment> {
    const last = this.segments[this.segments.length - 1];
    if (this.active && last && last.id === this.activeId) return last;
    if (last && last.size < this.opts.segmentBytes) {
      // Reopen the newest segment after a restart, appending after its last line.
      this.active = await fs.open(last.file, 'r+');
      this.activeId = last.id;
      return last;
    }
    const id = this.nextSegmentId++;
    const file = path.join(this.dir, segName(id));
    this.active = await fs.open(file, 'wx');
    this.activeId = id;
    const seg: Segment = { id, file, size: 0, pending: 0 };
    this.segments.push(seg);
    if (this.segments.length === 1 && this.pendingCount === 0) this.cursor = { segment: id, offset: 0 };
    if (this.opts.fsync === 'batch') await syncDir(this.dir);
    return seg;
  }

  private async closeActive(): Promise<void> {
    const fh = this.active;
    this.active = undefined;
    this.activeId = -1;
    if (fh) await fh.close().catch(() => undefined);
  }

  private async writeCursor(): Promise<void> {
    const tmp = path.join(this.dir, 'cursor.json.tmp');
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(this.cursor));
      if (this.opts.fsync === 'batch') await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path.join(this.dir, 'cursor.json'));
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}
