// Lineage sinks: where serialized records go. The emitter calls write() off the hot path, one batch at a time
// per sink, in sequence order; a sink never sees batch N+1 before batch N was stored or spooled.

import fs from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { LineageRecordJson } from './record.ts';

export interface SinkEntry {
  /** Emitter-assigned sequence: strictly increasing per spool directory, across restarts. */
  seq: number;
  /** The record in proto3 JSON form, one line (JSON.stringify never emits raw newlines). */
  json: string;
  /** The same record as an object, when the entry is fresh (absent for entries replayed from the spool). */
  object?: LineageRecordJson;
}

export interface WriteResult {
  /** How many leading entries of the batch are now stored (duplicates included). */
  written: number;
  /** Of those, how many the sink recognised as already stored (replays after an ambiguous failure). */
  duplicates?: number;
  /** Set when written < batch length: why the rest failed. */
  error?: Error;
}

export interface LineageSink {
  /** Unique, `[a-z0-9_-]+`; names the sink's spool directory and metric label. */
  readonly name: string;
  /** Durable sinks get records that fail spooled and replayed; others drop them (counted). */
  readonly durable: boolean;
  write(batch: SinkEntry[]): Promise<WriteResult>;
  /** Called by the sink when it becomes reachable again (e.g. Redis reconnected), to retry without waiting. */
  onAvailable?(cb: () => void): void;
  /** The emitter passes its writer id (stable per spool directory) to sinks that dedupe replays by it. */
  setWriterId?(id: string): void;
  /** The sink reads SinkEntry.object; otherwise entries carry only the JSON text (half the memory while they wait). */
  readonly wantsObject?: boolean;
  close(): Promise<void>;
}

// ---- stdout (pino) ----

export interface StdoutSinkOptions {
  name?: string;
  /** Defaults to a pino logger writing to fd 1 asynchronously. */
  logger?: Logger;
}

/**
 * One JSON line per record through pino: `{"level":30,"time":…,"msg":"lineage","lineage":{…record…}}`, so it
 * interleaves with the service's other pino output and log shippers can select `msg == "lineage"`.
 * Best effort (not durable): stdout has no acknowledgement to build replay on.
 */
export class StdoutSink implements LineageSink {
  readonly name: string;
  readonly durable = false;
  readonly wantsObject = true;
  private readonly logger: Logger;

  constructor(opts: StdoutSinkOptions = {}) {
    this.name = opts.name ?? 'stdout';
    this.logger = opts.logger ?? pino({ base: null }, pino.destination({ dest: 1, sync: false }));
  }

  async write(batch: SinkEntry[]): Promise<WriteResult> {
    for (const e of batch) {
      this.logger.info({ lineage: e.object ?? (JSON.parse(e.json) as LineageRecordJson) }, 'lineage');
    }
    return { written: batch.length };
  }

  async close(): Promise<void> {
    // Flush only: the destination (fd 1) stays open for the process' other writers.
    await new Promise<void>((resolve) => this.logger.flush(() => resolve()));
  }
}

// ---- JSONL file with size-based rotation ----

export interface FileSinkOptions {
  name?: string;
  /** e.g. /var/log/tollgate/lineage.jsonl; rotated files are `<path>.1` (newest) … `<path>.<keep>`. */
  path: string;
  /** Rotate before a write would take the file past this size. Default 100 MiB. */
  maxBytes?: number;
  /** Rotated files kept. Default 5. */
  keep?: number;
  /** fsync after each batch (default true: an acknowledged record is on disk). */
  fsync?: boolean;
}

/** The reused write buffer is kept up to this size (a batch of 256 ~5 KB records needs ~1.3 MB plus room). */
const MAX_SCRATCH_BYTES = 4 * 1024 * 1024;

/** `buf` with its first `used` bytes, in a buffer of at least `need` bytes. */
function grow(buf: Buffer, used: number, need: number): Buffer {
  const next = Buffer.allocUnsafeSlow(Math.max(need, buf.length * 2));
  buf.copy(next, 0, 0, used);
  return next;
}

/**
 * Appends one record JSON per line. Durable: a failed batch is cut back to the last whole line (so the file
 * never holds a torn record) and spooled. Within a process, replays skip seqs already written; across a crash
 * between write and spool acknowledgement a record may appear twice (at-least-once for this sink).
 */
export class FileSink implements LineageSink {
  readonly name: string;
  readonly durable = true;
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly fsync: boolean;
  private fh: fs.FileHandle | undefined;
  private size = 0;
  private lastSeq = 0;
  /** The write buffer, reused across batches; taken (undefined) while a write uses it. */
  private scratch: Buffer | undefined;

  constructor(opts: FileSinkOptions) {
    this.name = opts.name ?? 'file';
    this.path = opts.path;
    this.maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
    this.keep = Math.max(0, opts.keep ?? 5);
    this.fsync = opts.fsync ?? true;
  }

  async write(batch: SinkEntry[]): Promise<WriteResult> {
    const fresh = batch.filter((e) => e.seq > this.lastSeq);
    const duplicates = batch.length - fresh.length;
    if (fresh.length === 0) return { written: batch.length, duplicates };
    let written = duplicates;
    try {
      let i = 0;
      while (i < fresh.length) {
        const fh = await this.handle();
        // Each line is encoded straight into one buffer per write, reused across batches: no Buffer per line (a
        // ~5 KB line was its own ArrayBuffer, past the Buffer pool's 4 KB) and no concat copy. The text is encoded
        // as it is, then the newline byte: a `json + '\n'` temporary would be flattened into a second ~5 KB copy
        // (toJsonLine's lines are flat strings already).
        const start = i;
        let buf = this.takeBuffer();
        let bytes = 0;
        while (i < fresh.length) {
          const json = fresh[i]!.json;
          const room = json.length * 3 + 1; // UTF-8 needs at most 3 bytes per UTF-16 unit
          if (bytes + room > buf.length) buf = grow(buf, bytes, bytes + room);
          const len = buf.write(json, bytes) + 1;
          buf[bytes + len - 1] = 0x0a;
          // Rotate between lines, never inside one; a single line larger than maxBytes gets a file of its own.
          if (this.size + bytes + len > this.maxBytes && (this.size + bytes > 0)) break;
          bytes += len;
          i++;
        }
        if (i > start) {
          try {
            await fh.write(buf, 0, bytes, this.size);
            if (this.fsync) await fh.sync();
          } catch (err) {
            await fh.truncate(this.size).catch(() => undefined);
            throw err;
          } finally {
            this.giveBack(buf);
          }
          this.size += bytes;
          written += i - start;
          this.lastSeq = fresh[i - 1]!.seq;
        } else {
          this.giveBack(buf);
        }
        if (i < fresh.length) await this.rotate();
      }
      return { written, duplicates };
    } catch (err) {
      await this.closeHandle();
      return { written, duplicates, error: err as Error };
    }
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }

  /** The reused write buffer (taken while a write uses it; an overlapping call gets a fresh one). */
  private takeBuffer(): Buffer {
    const held = this.scratch ?? Buffer.allocUnsafeSlow(64 * 1024);
    this.scratch = undefined;
    return held;
  }

  private giveBack(buf: Buffer): void {
    if (buf.length <= MAX_SCRATCH_BYTES) this.scratch = buf;
  }

  private async handle(): Promise<fs.FileHandle> {
    if (this.fh) return this.fh;
    await fs.mkdir(path.dirname(this.path), { recursive: true });
    const fh = await fs.open(this.path, 'a+');
    const st = await fh.stat();
    this.size = st.size;
    // A torn line from a crash elsewhere would glue onto the next record; start on a fresh line.
    if (st.size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, st.size - 1);
      if (last[0] !== 0x0a) {
        await fh.write(Buffer.from('\n'), 0, 1, st.size);
        this.size += 1;
      }
    }
    this.fh = fh;
    return fh;
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
  }

  private async rotate(): Promise<void> {
    await this.closeHandle();
    if (this.keep === 0) {
      await fs.unlink(this.path).catch(() => undefined);
    } else {
      await fs.unlink(`${this.path}.${this.keep}`).catch(() => undefined);
      for (let n = this.keep - 1; n >= 1; n--) {
        await fs.rename(`${this.path}.${n}`, `${this.path}.${n + 1}`).catch(() => undefined);
      }
      await fs.rename(this.path, `${this.path}.1`).catch(() => undefined);
    }
    this.size = 0;
  }
}

/** Rotated JSONL files for `path`, newest first (the live file, then .1, .2, …). */
export async function rotatedFiles(filePath: string): Promise<string[]> {
  const dir = path.dirname(filePath);
  const base = path.basename(filePath);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const out: { n: number; file: string }[] = [];
  for (const name of names) {
    if (name === base) out.push({ n: 0, file: path.join(dir, name) });
    else if (name.startsWith(base + '.')) {
      const n = Number(name.slice(base.length + 1));
      if (Number.isInteger(n) && n > 0) out.push({ n, file: path.join(dir, name) });
    }
  }
  return out.sort((a, b) => a.n - b.n).map((x) => x.file);
}
