// Redis Stream sink: `XADD <stream> MAXLEN ~ N * json <record>` per record, batched.
//
// Exactly-once delivery across failures and restarts: each spool directory has a writer id, and every record a
// strictly increasing seq. A Lua script appends a record only if its seq is above the writer's high-water mark
// (`<stream>:writer:<writerId>`, refreshed with a TTL) and advances the mark record by record, atomically with
// the XADD. A batch that failed ambiguously (timeout, connection reset after Redis applied it) and is replayed
// from the spool is therefore skipped where it already landed. Auto stream ids keep several Tollgate replicas
// writing to one stream safe (explicit ids would collide across writers).
//
// Chunks of one batch are pipelined; each chunk carries a fence (the previous chunk's last seq) so a chunk never
// lands after an earlier chunk of the same pipeline failed (which would let the mark skip the failed records).
//
// Redis Cluster: the stream key and the writer keys must hash to one slot; give the stream key a hash tag,
// e.g. `{tollgate}:lineage`.

import { Redis, type RedisOptions } from 'ioredis';
import type { LineageSink, SinkEntry, WriteResult } from './sinks.ts';

const APPEND_LUA = `
local hw = tonumber(redis.call('GET', KEYS[2]) or '0')
local fence = tonumber(ARGV[3])
if fence > 0 and hw < fence then
  return redis.error_reply('TOLLGATE_FENCE previous chunk was not stored')
end
local added, skipped = 0, 0
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq <= hw then
    skipped = skipped + 1
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'json', ARGV[i + 1])
    redis.call('SET', KEYS[2], ARGV[i], 'EX', ARGV[2])
    hw = seq
    added = added + 1
  end
end
return {added, skipped}
`;

export interface RedisSinkOptions {
  name?: string;
  /** redis://… ; the sink opens its own connection, tuned to fail fast so records spool instead of queueing. */
  url?: string;
  /** Extra ioredis options for the sink's own connection. */
  redisOptions?: RedisOptions;
  /** Default `tollgate:lineage`. */
  streamKey?: string;
  /** Approximate stream cap (`MAXLEN ~`). Default 1,000,000. */
  maxLen?: number;
  /** Lifetime of a writer's high-water mark after its last write. Default 30 days; keep above the longest outage. */
  writerTtlSeconds?: number;
  /** Per-command timeout; a hung Redis turns into a spooled batch after this. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** Records per script call. Default 100. */
  chunkSize?: number;
}

type AppendReply = [number, number];
interface AppendCommander {
  tollgateLineageAppend(stream: string, writerKey: string, ...args: (string | number)[]): unknown;
}

export class RedisSink implements LineageSink {
  readonly name: string;
  readonly durable = true;
  readonly streamKey: string;
  readonly client: Redis;
  private readonly maxLen: number;
  private readonly ttl: number;
  private readonly chunkSize: number;
  private writerId = 'default';
  private availableCb: (() => void) | undefined;
  private lastError: string | undefined;
  private readonly readyWaitMs: number;

  constructor(opts: RedisSinkOptions) {
    this.name = opts.name ?? 'redis';
    this.streamKey = opts.streamKey ?? 'tollgate:lineage';
    this.maxLen = opts.maxLen ?? 1_000_000;
    this.ttl = opts.writerTtlSeconds ?? 30 * 24 * 3600;
    this.chunkSize = Math.max(1, opts.chunkSize ?? 100);
    this.readyWaitMs = opts.commandTimeoutMs ?? 2000;
    const base: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 2000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
      lazyConnect: false,
      ...opts.redisOptions,
    };
    this.client = opts.url ? new Redis(opts.url, base) : new Redis(base);
    this.client.defineCommand('tollgateLineageAppend', { numberOfKeys: 2, lua: APPEND_LUA });
    // ioredis reports connection errors as events; without a listener they would crash the process.
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    this.client.on('ready', () => this.availableCb?.());
  }

  /** The writer id names this writer's high-water mark; the emitter sets it from its spool directory. */
  setWriterId(id: string): void {
    this.writerId = id;
  }

  writerKey(): string {
    return `${this.streamKey}:writer:${this.writerId}`;
  }

  onAvailable(cb: () => void): void {
    this.availableCb = cb;
  }

  /** Last connection error reported by the client (for readiness detail). */
  connectionError(): string | undefined {
    return this.client.status === 'ready' ? undefined : (this.lastError ?? this.client.status);
  }

  async write(batch: SinkEntry[]): Promise<WriteResult> {
    if (batch.length === 0) return { written: 0 };
    if (this.client.status !== 'ready') {
      // Still connecting (startup) or reconnecting: give it a moment rather than failing the batch at once.
      const ready = await this.waitReady(this.readyWaitMs);
      if (!ready) return { written: 0, error: new Error(`redis not ready (${this.connectionError() ?? this.client.status})`) };
    }
    const chunks: SinkEntry[][] = [];
    for (let i = 0; i < batch.length; i += this.chunkSize) chunks.push(batch.slice(i, i + this.chunkSize));
    const pipe = this.client.pipeline() as unknown as AppendCommander & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    let fence = 0;
    for (const chunk of chunks) {
      const args: (string | number)[] = [this.maxLen, this.ttl, fence];
      for (const e of chunk) args.push(String(e.seq), e.json);
      pipe.tollgateLineageAppend(this.streamKey, this.writerKey(), ...args);
      fence = chunk[chunk.length - 1]!.seq;
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipe.exec();
    } catch (err) {
      return { written: 0, error: err as Error };
    }
    if (!results) return { written: 0, error: new Error('redis pipeline returned no results') };
    let written = 0;
    let duplicates = 0;
    for (let i = 0; i < chunks.length; i++) {
      const [err, reply] = results[i] ?? [new Error('missing pipeline result'), null];
      if (err) return { written, duplicates, error: err };
      const [, skipped] = reply as AppendReply;
      written += chunks[i]!.length;
      duplicates += Number(skipped);
    }
    return { written, duplicates };
  }

  private waitReady(ms: number): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    if (this.client.status === 'end') return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.client.on('ready', onReady);
    });
  }

  async close(): Promise<void> {
    this.availableCb = undefined;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
