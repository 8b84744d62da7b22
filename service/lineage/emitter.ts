// LineageEmitter: emit() is the only call on the request path; it appends the record to an in-memory queue and
// returns. A timer (or a full batch) drains the queue off the hot path: each record gets a sequence number, is
// serialized once to proto3 JSON, and every sink's pipeline receives the batch. Request metrics and traces are
// not derived here: they consume the same record on their own (service/gateway/outcome.ts), so nothing lost in
// this pipeline ever skews them.
//
// Per sink, one async pipeline delivers in sequence order:
//   direct mode    batches go straight to the sink; a failed batch (and everything after it) goes to the
//                  sink's disk spool, and the pipeline switches to
//   spooling mode  while the spool holds anything, new records are appended behind it, and the spool is
//                  replayed to the sink (oldest first) with exponential backoff between failed attempts;
//                  when the spool is empty the pipeline is back in direct mode.
// The spool survives restarts: a new emitter on the same spoolDir resumes replay where the old one stopped.
//
// Sequence numbers are `epoch * 2^32 + n`, where `epoch` is bumped and fsynced on every open of the spool
// directory, so they increase strictly across restarts; with the directory's writer id they let sinks drop
// replays of records they already stored (see redis-sink.ts). Without a spoolDir, durable sinks drop records
// they fail to store — counted in tollgate_lineage_records_dropped_total and logged at error level.
//
// What can be lost, and how it is reported: records still in memory when the process is killed (at most one
// flush interval plus in-flight batches — close() drains them on a graceful shutdown); records that do not fit
// in a full spool (policy `drop_newest` / `drop_oldest`); records whose spool write fails (disk error). Every
// loss increments tollgate_lineage_records_dropped_total{sink,reason} and logs an error (rate-limited).

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import { ConfigError } from '../config/documents.ts';
import { toProtoJson, type LineageRecord, type LineageRecordJson } from './record.ts';
import { toJsonLine } from './json-line.ts';
import { validateLineageRecord } from './schema.ts';
import { Spool, type SpoolOptions, type SpooledEntry } from './spool.ts';
import type { LineageSink, SinkEntry, WriteResult } from './sinks.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export interface LineageEmitterOptions {
  sinks: LineageSink[];
  /** Directory for the durable spool (one subdirectory per durable sink). Strongly recommended in production. */
  spoolDir?: string;
  spool?: Partial<SpoolOptions> & {
    /** Spool fill ratio that raises the near-full warning / metric / readiness detail. Default 0.8. */
    nearFullRatio?: number;
  };
  /** Pipeline health metrics (tollgate_lineage_*). */
  metrics?: Metrics;
  /** Operational log (warnings/errors about sinks and the spool; never record contents). */
  logger?: Logger;
  /** Drain interval. Default 50 ms. */
  flushIntervalMs?: number;
  /** Records per sink write. Default 256. */
  batchSize?: number;
  /** Records waiting for one sink before they are spilled to its spool. Default 10,000. */
  maxPendingPerSink?: number;
  /**
   * Records held in memory before new ones are dropped: the emit queue and each sink's pipeline hold at
   * most this many each. Default DEFAULT_MAX_IN_MEMORY (20,000: about 10 s of a busy process, tens of MB).
   */
  maxInMemory?: number;
  /** Retry backoff after a sink failure. Defaults 200 ms → 10 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Check every record against the proto schema before writing (costly; tests and debugging). */
  validate?: boolean;
}

export interface SinkHealth {
  up: boolean;
  durable: boolean;
  lastError?: string;
  pending: number;
  spool?: {
    bytes: number;
    records: number;
    capacityBytes: number;
    nearFull: boolean;
    /** The spool is at its bound (or refused records in the last minute): records are being lost. */
    full: boolean;
  };
  dropped: number;
}

export interface LineageHealth {
  /** False when records are currently being lost (a spool is full, or a durable sink has no spool and is down). */
  ok: boolean;
  /** True when any sink is down or any spool is near full. */
  degraded: boolean;
  queueDepth: number;
  dropped: number;
  writerId: string;
  sinks: Record<string, SinkHealth>;
}

/** Default maxInMemory: bounds the memory a slow or stalled sink can pin (a record is a few KB). */
export const DEFAULT_MAX_IN_MEMORY = 20_000;

const SINK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const SEQ_SPACE = 2 ** 32;
/** Records serialized per event-loop turn by the background drain. */
const DRAIN_SLICE = 64;
const MAX_EPOCH = 2 ** 21 - 1; // keeps epoch * 2^32 + n below 2^53
const heldLocks = new Set<string>();

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

interface SpoolRoot {
  dir: string;
  writerId: string;
  epoch: number;
  lockFile: string;
  lockToken: string;
}

/** Locks the spool directory for this process and bumps its epoch (fsynced before any seq is handed out). */
function openSpoolRoot(dir: string): SpoolRoot {
  fs.mkdirSync(dir, { recursive: true });
  const lockFile = path.join(path.resolve(dir), 'LOCK');
  const lockToken = `${process.pid} ${randomBytes(8).toString('hex')}`;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockFile, lockToken, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = Number(fs.readFileSync(lockFile, 'utf8').split(' ')[0]);
      const alive = Number.isInteger(holder) && holder > 0 && isAlive(holder);
      // Same pid but not held here: a previous incarnation (e.g. pid 1 in a restarted container).
      if (heldLocks.has(lockFile) || (alive && holder !== process.pid)) {
        throw new GatewayError('internal', `lineage spool directory ${dir} is in use (lock held by pid ${holder})`, {
          code: 'lineage_spool_locked',
        });
      }
      fs.unlinkSync(lockFile); // stale lock
    }
  }
  heldLocks.add(lockFile);
  const metaFile = path.join(dir, 'writer.json');
  let writerId = randomBytes(8).toString('hex');
  let epoch = 0;
  try {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { writerId?: unknown; epoch?: unknown };
    if (typeof meta.writerId === 'string' && /^[0-9a-f]{16}$/.test(meta.writerId)) writerId = meta.writerId;
    if (typeof meta.epoch === 'number' && Number.isInteger(meta.epoch)) epoch = meta.epoch;
  } catch {
    // first use of this directory
  }
  epoch++;
  if (epoch > MAX_EPOCH) {
    // Practically unreachable (2M restarts); a fresh writer id keeps dedupe correct.
    writerId = randomBytes(8).toString('hex');
    epoch = 1;
  }
  writeSync(metaFile, JSON.stringify({ writerId, epoch }));
  return { dir, writerId, epoch, lockFile, lockToken };
}

function writeSync(file: string, data: string): void {
  const tmp = file + '.tmp';
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseSpoolRoot(root: SpoolRoot): void {
  heldLocks.delete(root.lockFile);
  try {
    if (fs.readFileSync(root.lockFile, 'utf8') === root.lockToken) fs.unlinkSync(root.lockFile);
  } catch {
    // already gone
  }
}

/** Logs at most once per key per interval, so an outage cannot flood the log. */
class Throttle {
  private readonly last = new Map<string, number>();
  constructor(private readonly intervalMs: number) {}
  allow(key: string): boolean {
    const now = Date.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }
}

interface PipelineContext {
  metrics: Metrics | undefined;
  logger: Logger;
  throttle: Throttle;
  batchSize: number;
  maxPending: number;
  hardCap: number;
  retryMinMs: number;
  retryMaxMs: number;
  nearFullRatio: number;
  onDrop(sink: string, reason: string, n: number): void;
  onProgress(): void;
}

/** Unwinds a delivery loop that close() gave up on. */
class Abandoned extends Error {}

class SinkPipeline {
  readonly sink: LineageSink;
  readonly spool: Spool | undefined;
  private readonly ctx: PipelineContext;
  private pending: SinkEntry[] = [];
  private running = false;
  private up = true;
  private lastError: string | undefined;
  private retryAt = 0;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private nearFull = false;
  private lastSpoolFullAt = 0;
  private idleWaiters: (() => void)[] = [];
  dropped = 0;
  closing = false;
  deadlinePassed = false;
  /** Set by close() when the pipeline is stuck past the deadline: the stuck run must not touch anything after. */
  private abandoned = false;
  /** What the loop is awaiting: a sink write (records in flight) or spool I/O. */
  private waitingOn: 'sink' | 'spool' | undefined;
  private inflight = 0;
  private stopped = false;

  constructor(sink: LineageSink, spool: Spool | undefined, ctx: PipelineContext) {
    this.sink = sink;
    this.spool = spool;
    this.ctx = ctx;
    this.backoff = ctx.retryMinMs;
    ctx.metrics?.lineageSinkUp.set({ sink: sink.name }, 1);
    if (spool) {
      ctx.metrics?.lineageSpoolCapacityBytes.set({ sink: sink.name }, spool.opts.maxBytes);
      this.updateSpoolGauges();
    }
    sink.onAvailable?.(() => {
      this.retryAt = 0;
      this.kick();
    });
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Gives up on a loop stuck past the close deadline. Returns the records lost in flight; parks the pending ones
   * in the spool when that is safe (the loop is stuck in the sink, not in spool I/O).
   */
  async abandon(): Promise<{ lostInFlight: number; lostPending: number }> {
    this.abandoned = true;
    const pending = this.pending.splice(0);
    const lostInFlight = this.waitingOn === 'sink' ? this.inflight : 0;
    if (this.spool && this.waitingOn === 'sink') {
      await this.toSpool(pending);
      return { lostInFlight, lostPending: 0 };
    }
    return { lostInFlight, lostPending: pending.length };
  }

  enqueue(entries: SinkEntry[]): void {
    let accept = entries.length;
    const room = this.ctx.hardCap - this.pending.length;
    if (accept > room) {
      accept = Math.max(0, room);
      this.drop('queue_full', entries.length - accept);
    }
    for (let i = 0; i < accept; i++) this.pending.push(entries[i]!);
    this.kick();
  }

  /** Starts the delivery loop if it is not running; safe to call any time (no-op once stopped). */
  kick(): void {
    if (!this.running && !this.stopped) void this.run();
  }

  /** Final: no more deliveries (the emitter closed the sink and the spool). */
  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  idle(): Promise<void> {
    if (!this.running && (this.pending.length === 0 || this.waitingForRetry())) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private waitingForRetry(): boolean {
    return this.spool !== undefined && !this.spool.isEmpty() && this.pending.length === 0;
  }

  health(): SinkHealth {
    const h: SinkHealth = {
      up: this.up,
      durable: this.sink.durable,
      pending: this.pending.length,
      dropped: this.dropped,
    };
    if (this.lastError !== undefined) h.lastError = this.lastError;
    if (this.spool) {
      h.spool = {
        bytes: this.spool.bytes,
        records: this.spool.records,
        capacityBytes: this.spool.opts.maxBytes,
        nearFull: this.nearFull,
        full: this.spool.fillRatio() >= 0.99 || Date.now() - this.lastSpoolFullAt < 60_000,
      };
    }
    return h;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const spool = this.spool;
        if (spool && !spool.isEmpty()) {
          // Spooling mode: keep order by queueing new records behind the backlog.
          if (this.pending.length > 0) await this.toSpool(this.pending.splice(0));
          if (this.closing) break; // the backlog waits for the next start
          const wait = this.retryAt - Date.now();
          if (wait > 0) {
            this.arm(wait);
            break;
          }
          await this.replayOnce(spool);
          continue;
        }
        if (this.pending.length === 0) break;
        if (spool && (this.pending.length > this.ctx.maxPending || (this.closing && this.deadlinePassed))) {
          // Sink too slow (or shutdown deadline reached): park everything on disk, in order.
          await this.toSpool(this.pending.splice(0));
          continue;
        }
        const batch = this.pending.splice(0, this.ctx.batchSize);
        const res = await this.write(batch);
        this.ctx.onProgress();
        this.ctx.metrics?.lineageWritten.inc({ sink: this.sink.name }, res.written - (res.duplicates ?? 0));
        if (!res.error) {
          this.markUp();
          continue;
        }
        const rest = batch.slice(res.written);
        this.markDown(res.error, rest.length);
        if (spool) {
          await this.toSpool(rest);
          this.scheduleRetry();
        } else {
          this.drop('sink_error', rest.length);
        }
      }
    } catch (err) {
      if (err instanceof Abandoned) return;
      // Only a bug gets here (sink and spool errors are handled above); keep the pipeline alive.
      this.ctx.logger.error({ sink: this.sink.name, err: (err as Error).message }, 'lineage pipeline error');
      this.scheduleRetry();
      this.arm(this.retryAt - Date.now());
    } finally {
      this.running = false;
      this.ctx.onProgress();
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  private async write(batch: SinkEntry[]): Promise<WriteResult> {
    this.waitingOn = 'sink';
    this.inflight = batch.length;
    try {
      const r = await this.sink.write(batch);
      const written = Math.max(0, Math.min(batch.length, Math.trunc(r.written)));
      if (written < batch.length && !r.error) {
        return { ...r, written, error: new Error(`sink stored ${written} of ${batch.length} records`) };
      }
      return { ...r, written };
    } catch (err) {
      return { written: 0, error: err instanceof Error ? err : new Error(String(err)) };
    } finally {
      this.waitingOn = undefined;
      this.inflight = 0;
      if (this.abandoned) throw new Abandoned();
    }
  }

  private async replayOnce(spool: Spool): Promise<void> {
    const { entries, end } = await spool.read(this.ctx.batchSize);
    if (entries.length === 0) {
      await spool.ack(end, 0); // only corrupt lines were left
      this.updateSpoolGauges();
      return;
    }
    const res = await this.write(entries);
    if (res.written > 0) {
      const upto: SpooledEntry = entries[res.written - 1]!;
      await spool.ack(res.written === entries.length ? end : upto.end, res.written);
      const dups = res.duplicates ?? 0;
      this.ctx.metrics?.lineageReplayed.inc({ sink: this.sink.name }, res.written - dups);
      this.ctx.metrics?.lineageWritten.inc({ sink: this.sink.name }, res.written - dups);
      if (dups > 0) this.ctx.metrics?.lineageDuplicates.inc({ sink: this.sink.name }, dups);
      this.updateSpoolGauges();
    }
    if (res.error) {
      this.markDown(res.error, entries.length - res.written);
      this.scheduleRetry();
      return;
    }
    this.markUp();
    if (spool.isEmpty()) {
      this.ctx.logger.info({ sink: this.sink.name }, 'lineage spool drained; sink back to direct writes');
    }
  }

  private async toSpool(entries: SinkEntry[]): Promise<void> {
    const spool = this.spool!;
    if (entries.length === 0) return;
    try {
      this.waitingOn = 'spool';
      const r = await spool.append(entries).finally(() => (this.waitingOn = undefined));
      this.ctx.metrics?.lineageSpooled.inc({ sink: this.sink.name }, r.stored);
      if (r.dropped > 0) {
        this.lastSpoolFullAt = Date.now();
        this.drop('spool_full', r.dropped);
      }
    } catch (err) {
      this.drop('spool_error', entries.length, (err as Error).message);
    }
    this.updateSpoolGauges();
  }

  private updateSpoolGauges(): void {
    const spool = this.spool;
    if (!spool) return;
    const m = this.ctx.metrics;
    const sink = this.sink.name;
    m?.lineageSpoolBytes.set({ sink }, spool.bytes);
    m?.lineageSpoolRecords.set({ sink }, spool.records);
    const ratio = spool.fillRatio();
    if (!this.nearFull && ratio >= this.ctx.nearFullRatio) {
      this.nearFull = true;
      this.ctx.logger.warn(
        { sink, spoolBytes: spool.bytes, capacityBytes: spool.opts.maxBytes },
        'lineage spool is nearly full; records will be lost when it is full',
      );
    } else if (this.nearFull && ratio < this.ctx.nearFullRatio * 0.9) {
      this.nearFull = false;
    }
    m?.lineageSpoolNearFull.set({ sink }, this.nearFull ? 1 : 0);
  }

  private markDown(err: Error, failed: number): void {
    this.ctx.metrics?.lineageFailed.inc({ sink: this.sink.name }, failed);
    this.lastError = err.message;
    if (this.up) {
      this.up = false;
      this.ctx.metrics?.lineageSinkUp.set({ sink: this.sink.name }, 0);
      this.ctx.logger.warn(
        { sink: this.sink.name, err: err.message, spooling: this.spool !== undefined },
        'lineage sink failing',
      );
    }
  }

  private markUp(): void {
    this.backoff = this.ctx.retryMinMs;
    this.retryAt = 0;
    if (!this.up) {
      this.up = true;
      this.lastError = undefined;
      this.ctx.metrics?.lineageSinkUp.set({ sink: this.sink.name }, 1);
      this.ctx.logger.info({ sink: this.sink.name, spooled: this.spool?.records ?? 0 }, 'lineage sink recovered');
    }
  }

  private scheduleRetry(): void {
    this.retryAt = Date.now() + this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.ctx.retryMaxMs);
  }

  private arm(ms: number): void {
    if (this.timer || this.closing) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.kick();
      },
      Math.max(1, ms),
    );
    this.timer.unref();
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drop(reason: string, n: number, detail?: string): void {
    if (n <= 0) return;
    this.dropped += n;
    this.ctx.onDrop(this.sink.name, reason, n);
    if (detail !== undefined && this.ctx.throttle.allow(`${this.sink.name}:${reason}:detail`)) {
      this.ctx.logger.error({ sink: this.sink.name, reason, err: detail }, 'lineage spool write failed');
    }
  }
}

/**
 * An entry for sinks that all read the object (stdout via pino): its JSON text is built on first use only —
 * nothing reads it there, and stringifying every record for nothing cost as much as building it.
 */
class ObjectEntry implements SinkEntry {
  private line: string | undefined;
  constructor(
    readonly seq: number,
    readonly object: LineageRecordJson,
  ) {}
  get json(): string {
    return (this.line ??= JSON.stringify(this.object));
  }
}

export class LineageEmitter {
  readonly writerId: string;
  private readonly root: SpoolRoot | undefined;
  private readonly pipelines: SinkPipeline[];
  /** Some sink reads SinkEntry.object (else entries hold only the JSON text while they wait). */
  private readonly keepObjects: boolean;
  /** Every sink reads the object and none spools (e.g. stdout alone, the default): the JSON text is made only if asked for. */
  private readonly objectsOnly: boolean;
  private readonly metrics: Metrics | undefined;
  private readonly logger: Logger;
  private readonly batchSize: number;
  private readonly maxInMemory: number;
  private readonly validate: boolean;
  private readonly throttle = new Throttle(10_000);
  private queue: LineageRecord[] = [];
  /** A swapped-out queue being drained in slices (records before `backlogPos` are done). */
  private backlog: LineageRecord[] = [];
  private backlogPos = 0;
  private epoch: number;
  private counter = 0;
  private timer: NodeJS.Timeout | undefined;
  private drainScheduled = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private droppedTotal = 0;

  private constructor(
    root: SpoolRoot | undefined,
    pipelines: SinkPipeline[],
    opts: LineageEmitterOptions,
    logger: Logger,
  ) {
    this.root = root;
    this.writerId = root?.writerId ?? randomBytes(8).toString('hex');
    this.epoch = root?.epoch ?? 1;
    this.pipelines = pipelines;
    this.keepObjects = pipelines.some((p) => p.sink.wantsObject === true);
    this.objectsOnly = pipelines.every((p) => p.sink.wantsObject === true && !p.sink.durable);
    this.metrics = opts.metrics;
    this.logger = logger;
    this.batchSize = opts.batchSize ?? 256;
    this.maxInMemory = opts.maxInMemory ?? DEFAULT_MAX_IN_MEMORY;
    this.validate = opts.validate ?? false;
    this.timer = setInterval(() => this.drainSome(), opts.flushIntervalMs ?? 50);
    this.timer.unref();
  }

  /** Opens the spool directory (lock, epoch, existing backlog) and starts the pipelines. */
  static async open(opts: LineageEmitterOptions): Promise<LineageEmitter> {
    const names = new Set<string>();
    for (const s of opts.sinks) {
      if (!SINK_NAME.test(s.name)) throw new ConfigError(`lineage sink name ${JSON.stringify(s.name)} must match ${SINK_NAME}`);
      if (names.has(s.name)) throw new ConfigError(`lineage sink name ${JSON.stringify(s.name)} is used twice`);
      names.add(s.name);
    }
    const nearFullRatio = opts.spool?.nearFullRatio ?? 0.8;
    if (!(nearFullRatio > 0 && nearFullRatio <= 1)) {
      throw new ConfigError(`lineage spool nearFullRatio must be in (0, 1], got ${nearFullRatio}`);
    }
    if (opts.spool?.maxBytes !== undefined && !(opts.spool.maxBytes > 0)) {
      throw new ConfigError(`lineage spool maxBytes must be > 0, got ${opts.spool.maxBytes}`);
    }
    const logger = opts.logger ?? pino({ name: 'tollgate-lineage' }, pino.destination({ dest: 2, sync: true }));
    const root = opts.spoolDir ? openSpoolRoot(opts.spoolDir) : undefined;
    const spools: (Spool | undefined)[] = [];
    try {
      for (const s of opts.sinks) {
        spools.push(root && s.durable ? await Spool.open(path.join(root.dir, s.name), opts.spool) : undefined);
      }
    } catch (err) {
      for (const sp of spools) await sp?.close();
      if (root) releaseSpoolRoot(root);
      throw err;
    }
    if (!root && opts.sinks.some((s) => s.durable)) {
      logger.warn('lineage: no spoolDir configured; records a durable sink fails to store will be lost');
    }
    let emitter: LineageEmitter | undefined;
    const throttle = new Throttle(10_000);
    const ctx: PipelineContext = {
      metrics: opts.metrics,
      logger,
      throttle,
      batchSize: opts.batchSize ?? 256,
      maxPending: opts.maxPendingPerSink ?? 10_000,
      hardCap: opts.maxInMemory ?? DEFAULT_MAX_IN_MEMORY,
      retryMinMs: opts.retryMinMs ?? 200,
      retryMaxMs: opts.retryMaxMs ?? 10_000,
      nearFullRatio,
      onDrop: (sink, reason, n) => emitter?.recordDrop(sink, reason, n),
      onProgress: () => emitter?.updateDepth(),
    };
    const pipelines = opts.sinks.map((s, i) => {
      if (root) s.setWriterId?.(root.writerId);
      return new SinkPipeline(s, spools[i], ctx);
    });
    emitter = new LineageEmitter(root, pipelines, opts, logger);
    if (!root) for (const s of opts.sinks) s.setWriterId?.(emitter.writerId);
    for (const p of pipelines) {
      if (p.spool && !p.spool.isEmpty()) {
        logger.info({ sink: p.sink.name, records: p.spool.records }, 'lineage spool has a backlog; replaying');
        p.kick();
      }
    }
    return emitter;
  }

  /** Hot path: enqueue only (no I/O, no serialization). The emitter owns `record` afterwards: do not mutate it. */
  emit(record: LineageRecord): void {
    if (this.closed) {
      this.recordDrop('*', 'closed', 1);
      return;
    }
    if (this.queue.length + this.backlog.length - this.backlogPos >= this.maxInMemory) {
      this.recordDrop('*', 'queue_full', 1);
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= this.batchSize && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drainSome());
    }
  }

  /** Hands everything emitted so far to the sinks and waits until each record is stored or spooled. */
  async flush(): Promise<void> {
    this.drainAll();
    await Promise.all(this.pipelines.map((p) => p.idle()));
  }

  health(): LineageHealth {
    const sinks: Record<string, SinkHealth> = {};
    let ok = true;
    let degraded = false;
    let pending = 0;
    for (const p of this.pipelines) {
      const h = p.health();
      sinks[p.sink.name] = h;
      pending += h.pending;
      if (!h.up || h.spool?.nearFull) degraded = true;
      if (h.spool?.full || (!h.up && p.sink.durable && !h.spool)) ok = false;
    }
    return {
      ok,
      degraded,
      queueDepth: this.queued() + pending,
      dropped: this.droppedTotal,
      writerId: this.writerId,
      sinks,
    };
  }

  /**
   * Stops accepting records, delivers what is queued (direct sinks) or parks it in the spool, then closes sinks.
   * Bounded: after `timeoutMs` the remaining records go to the spool; anything still unaccounted for after a
   * short grace is reported lost. Idempotent.
   */
  close(timeoutMs = 5000): Promise<void> {
    this.closing ??= this.doClose(timeoutMs);
    return this.closing;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    this.drainAll();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pipelines) {
      p.closing = true;
      p.disarm();
      p.kick();
    }
    const allIdle = Promise.all(this.pipelines.map((p) => p.idle())).then(() => true);
    let done = await Promise.race([allIdle, delay(timeoutMs).then(() => false)]);
    if (!done) {
      for (const p of this.pipelines) {
        p.deadlinePassed = true;
        p.kick();
      }
      done = await Promise.race([allIdle, delay(Math.min(1000, timeoutMs)).then(() => false)]);
    }
    if (!done) {
      for (const p of this.pipelines) {
        if (!p.isRunning) continue;
        const { lostInFlight, lostPending } = await p.abandon();
        if (lostInFlight + lostPending > 0) this.recordDrop(p.sink.name, 'closed', lostInFlight + lostPending);
      }
    }
    for (const p of this.pipelines) {
      p.stop();
      await p.sink.close().catch((err: Error) => this.logger.warn({ sink: p.sink.name, err: err.message }, 'lineage sink close failed'));
      await p.spool?.close();
    }
    if (this.root) releaseSpoolRoot(this.root);
    this.metrics?.lineageQueueDepth.set(0);
  }

  /**
   * Timer/immediate-driven drain: a bounded slice per event-loop turn, so serializing a burst never blocks
   * request handling for long; the rest continues on the next turn.
   */
  private drainSome(): void {
    this.drainScheduled = false;
    this.drain(DRAIN_SLICE);
    if (this.queued() > 0 && !this.drainScheduled && !this.closed) {
      this.drainScheduled = true;
      setImmediate(() => this.drainSome());
    }
  }

  private drainAll(): void {
    while (this.queued() > 0) this.drain();
  }

  private queued(): number {
    return this.queue.length + this.backlog.length - this.backlogPos;
  }

  private drain(max = Infinity): void {
    if (this.backlogPos >= this.backlog.length) {
      if (this.queue.length === 0) return;
      this.backlog = this.queue;
      this.backlogPos = 0;
      this.queue = [];
    }
    let records: LineageRecord[];
    if (this.backlogPos === 0 && this.backlog.length <= max) {
      records = this.backlog;
    } else {
      records = this.backlog.slice(this.backlogPos, Math.min(this.backlog.length, this.backlogPos + max));
    }
    this.backlogPos += records.length;
    if (this.backlogPos >= this.backlog.length) {
      this.backlog = [];
      this.backlogPos = 0;
    }
    const entries: SinkEntry[] = [];
    for (const rec of records) {
      let entry: SinkEntry;
      try {
        if (!this.keepObjects && !this.validate) {
          // File / Redis sinks read only the text: made without the intermediate rule objects (toJsonLine).
          const json = toJsonLine(rec);
          entries.push({ seq: this.nextSeq(), json });
          continue;
        }
        const object = toProtoJson(rec);
        if (this.validate) {
          const problems = validateLineageRecord(object);
          if (problems.length > 0 && this.throttle.allow('invalid')) {
            this.logger.error({ requestId: rec.requestId, problems }, 'lineage record does not match the schema');
          }
        }
        entry = !this.keepObjects
          ? { seq: this.nextSeq(), json: JSON.stringify(object) }
          : this.objectsOnly
          ? new ObjectEntry(this.nextSeq(), object)
          : { seq: this.nextSeq(), json: JSON.stringify(object), object };
      } catch (err) {
        this.recordDrop('*', 'serialize', 1, (err as Error).message);
        continue;
      }
      entries.push(entry);
    }
    this.metrics?.lineageEmitted.inc(records.length);
    if (entries.length === 0) return;
    for (const p of this.pipelines) p.enqueue(entries);
    this.updateDepth();
  }

  private updateDepth(): void {
    this.metrics?.lineageQueueDepth.set(this.queued() + this.pipelines.reduce((n, p) => n + p.pendingCount, 0));
  }

  private nextSeq(): number {
    this.counter++;
    if (this.counter >= SEQ_SPACE) {
      // 4 billion records in one process lifetime: start a new epoch (persisted, so it stays unique).
      this.epoch++;
      this.counter = 1;
      if (this.root) writeSync(path.join(this.root.dir, 'writer.json'), JSON.stringify({ writerId: this.writerId, epoch: this.epoch }));
    }
    return this.epoch * SEQ_SPACE + this.counter;
  }

  private recordDrop(sink: string, reason: string, n: number, detail?: string): void {
    this.droppedTotal += n;
    this.metrics?.lineageDropped.inc({ sink, reason }, n);
    if (this.throttle.allow(`drop:${sink}:${reason}`)) {
      this.logger.error({ sink, reason, records: n, detail }, 'lineage records lost');
    }
  }
}
