// `tollgate lineage`: recent lineage records from the Redis stream or the JSONL files.
import { statSync } from 'node:fs';
import { Redis } from 'ioredis';
import { queryLineage } from '../lineage/query.ts';
import { toProtoJson } from '../lineage/record.ts';
import { rotatedFiles } from '../lineage/sinks.ts';
import { date, parse, redisUrl, str, wholeNumber } from './args.ts';
import { CliError, safeUrl, UsageError } from './errors.ts';

/** How long `tollgate lineage` waits for Redis before saying it cannot connect. */
const CONNECT_TIMEOUT_MS = 3000;

/** A connected client, or a CliError "cannot connect to Redis at <url>" within CONNECT_TIMEOUT_MS (no retries). */
export async function connectRedis(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let last: string | undefined;
  client.on('error', (e: Error) => {
    last = e.message;
  });
  try {
    await client.connect();
    return client;
  } catch (e) {
    client.disconnect();
    const why = last ?? (e as Error).message;
    throw new CliError(`cannot connect to Redis at ${safeUrl(url)} (${why.replace(/^connect /, '')})`);
  }
}

export async function runLineageCommand(args: string[]): Promise<number> {
  const p = parse(args, {
    'request-id': { type: 'string' },
    tenant: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    file: { type: 'string' },
    redis: { type: 'string' },
  });
  const since = date(p, 'since');
  const until = date(p, 'until');
  if (since && until && since > until) throw new UsageError(`--since (${since.toISOString()}) is after --until (${until.toISOString()})`);
  const limit = wholeNumber(p, 'limit', 1) ?? 20;
  const file = str(p, 'file');
  if (file !== undefined && str(p, 'redis') !== undefined) throw new UsageError('give --file or --redis, not both');
  const redisRaw = str(p, 'redis') ?? (file === undefined ? process.env.REDIS_URL || undefined : undefined);
  const filter = { requestId: str(p, 'request-id'), tenant: str(p, 'tenant'), since, until, limit };
  let res;
  if (redisRaw !== undefined) {
    const client = await connectRedis(redisUrl(redisRaw, str(p, 'redis') !== undefined ? '--redis' : 'REDIS_URL'));
    try {
      res = await queryLineage({ source: 'redis', redis: client, ...filter });
    } finally {
      client.disconnect();
    }
  } else {
    const fromEnv = file === undefined && process.env.TOLLGATE_LINEAGE_FILE ? ' (from TOLLGATE_LINEAGE_FILE)' : '';
    const path = file ?? process.env.TOLLGATE_LINEAGE_FILE ?? './var/lineage.jsonl';
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      /* missing: checked below with its rotated copies */
    }
    if (isDir) throw new UsageError(`lineage file ${path}${fromEnv} is a directory; give the JSONL file`);
    if ((await rotatedFiles(path)).length === 0)
      throw new UsageError(
        `lineage file ${path}${fromEnv} does not exist${file === undefined ? '; pass --file PATH (where TOLLGATE_LINEAGE=file writes) or --redis URL' : ''}`,
      );
    res = await queryLineage({ source: 'file', path, ...filter });
  }
  for (const r of res.records) process.stdout.write(`${JSON.stringify(toProtoJson(r))}\n`);
  if (res.truncated) process.stderr.write(`(stopped after scanning ${res.scanned} entries)\n`);
  return 0;
}
