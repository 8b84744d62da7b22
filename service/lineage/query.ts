// Reads recent lineage records back, newest first, from the Redis stream (XREVRANGE) or the JSONL files
// (live file, then rotated ones, each read backwards). Used by `tollgate lineage`.
//
// Order is arrival order at the sink (a record replayed from the spool after an outage shows up where it
// arrived). Time filters apply to the record's startTime. Scanning stops at `maxScan` entries, or once entries
// arrived long enough before `since` that no matching record can be older (records arrive after they start).

import fs from 'node:fs/promises';
import { Redis } from 'ioredis';
import { GatewayError } from '../errors.ts';
import { fromProtoJson, type LineageRecord } from './record.ts';
import { rotatedFiles } from './sinks.ts';

export interface LineageQuery {
  source: 'redis' | 'file';
  requestId?: string;
  tenant?: string;
  /** Inclusive bounds on the record's startTime. */
  since?: Date;
  until?: Date;
  limit: number;
  /** redis: a client (not closed here) or a URL (a connection is opened and closed). */
  redis?: Redis | string;
  /** Default `tollgate:lineage`. */
  streamKey?: string;
  /** file: the live JSONL path (rotated `<path>.N` files are read too). */
  path?: string;
  /** Entries examined at most. Default 100,000. */
  maxScan?: number;
}

export interface LineageQueryResult {
  records: LineageRecord[];
  scanned: number;
  /** Entries that could not be read as lineage records. */
  invalid: number;
  /** Scanning stopped at maxScan before the source was exhausted. */
  truncated: boolean;
}

/** Allowance for clock skew between Tollgate replicas when stopping a scan early. */
const SKEW_MS = 5 * 60_000;

class Collector {
  readonly records: LineageRecord[] = [];
  scanned = 0;
  invalid = 0;
  truncated = false;
  constructor(private readonly q: LineageQuery, private readonly maxScan: number) {}

  /** Returns false when the scan should stop. */
  add(json: string): boolean {
    if (this.scanned >= this.maxScan) {
      this.truncated = true;
      return false;
    }
    this.scanned++;
    let rec: LineageRecord | undefined;
    try {
      rec = fromProtoJson(JSON.parse(json));
    } catch {
      rec = undefined;
    }
    if (!rec) {
      this.invalid++;
      return true;
    }
    const q = this.q;
    if (q.requestId !== undefined && rec.requestId !== q.requestId) return true;
    if (q.tenant !== undefined && rec.principal.tenant !== q.tenant) return true;
    if (q.since && rec.startTime < q.since) return true;
    if (q.until && rec.startTime > q.until) return true;
    this.records.push(rec);
    return this.records.length < q.limit;
  }

  result(): LineageQueryResult {
    return { records: this.records, scanned: this.scanned, invalid: this.invalid, truncated: this.truncated };
  }
}

export async function queryLineage(q: LineageQuery): Promise<LineageQueryResult> {
  if (!Number.isInteger(q.limit) || q.limit < 1) {
    throw new GatewayError('invalid_request', `lineage query limit must be a positive integer, got ${q.limit}`);
  }
  if (q.since && q.until && q.since > q.until) {
    throw new GatewayError('invalid_request', 'lineage query: since is after until');
  }
  const c = new Collector(q, q.maxScan ?? 100_000);
  if (q.source === 'redis') await scanRedis(q, c);
  else if (q.source === 'file') await scanFiles(q, c);
  else throw new GatewayError('invalid_request', `lineage query source must be redis or file, got ${String(q.source)}`);
  return c.result();
}

async function scanRedis(q: LineageQuery, c: Collector): Promise<void> {
  if (q.redis === undefined) throw new GatewayError('invalid_request', 'lineage query from redis needs a redis client or URL');
  const own = typeof q.redis === 'string';
  const client =
    typeof q.redis === 'string'
      ? new Redis(q.redis, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, enableOfflineQueue: true })
      : q.redis;
  if (own) client.on('error', () => undefined); // surfaced by the command that fails
  const key = q.streamKey ?? 'tollgate:lineage';
  const stopBefore = q.since ? q.since.getTime() - SKEW_MS : undefined;
  try {
    let end = '+';
    for (;;) {
      const page = (await client.xrevrange(key, end, '-', 'COUNT', 500)) as [string, string[]][];
      if (page.length === 0) return;
      for (const [id, fields] of page) {
        if (stopBefore !== undefined && Number(id.split('-')[0]) < stopBefore) return;
        let json: string | undefined;
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'json') json = fields[i + 1];
        if (json === undefined) {
          c.scanned++;
          c.invalid++;
          continue;
        }
        if (!c.add(json)) return;
      }
      end = `(${page[page.length - 1]![0]}`;
    }
  } catch (err) {
    throw new GatewayError('unavailable', `lineage query: redis: ${(err as Error).message}`, { cause: err });
  } finally {
    if (own) client.disconnect();
  }
}

async function scanFiles(q: LineageQuery, c: Collector): Promise<void> {
  if (!q.path) throw new GatewayError('invalid_request', 'lineage query from files needs the JSONL path');
  const stopBefore = q.since ? q.since.getTime() - SKEW_MS : undefined;
  for (const file of await rotatedFiles(q.path)) {
    let st;
    try {
      st = await fs.stat(file);
    } catch {
      continue; // rotated away meanwhile
    }
    // Every line in this (and any older) file was written before its mtime.
    if (stopBefore !== undefined && st.mtimeMs < stopBefore) return;
    for await (const line of linesBackwards(file)) {
      if (line.trim() === '') continue;
      if (!c.add(line)) return;
    }
  }
}

/** Lines of a file from last to first, reading 64 KiB chunks from the end. */
async function* linesBackwards(file: string, chunkSize = 64 * 1024): AsyncGenerator<string> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return;
  }
  try {
    let pos = (await fh.stat()).size;
    let carry: Buffer = Buffer.alloc(0);
    while (pos > 0) {
      const n = Math.min(chunkSize, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      await fh.read(buf, 0, n, pos);
      let data = Buffer.concat([buf, carry]);
      let nl = data.lastIndexOf(0x0a);
      // Emit complete lines (those with a newline before them inside `data`).
      while (nl >= 0) {
        const line = data.subarray(nl + 1).toString('utf8');
        if (line !== '') yield line;
        data = data.subarray(0, nl);
        nl = data.lastIndexOf(0x0a);
      }
      carry = Buffer.from(data);
    }
    if (carry.length > 0) yield carry.toString('utf8');
  } finally {
    await fh.close();
  }
}
