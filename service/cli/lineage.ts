// `tollgate lineage`: recent lineage records from the Redis stream or the JSONL files.
import { parseArgs } from 'node:util';
import { queryLineage } from '../lineage/query.ts';
import { toProtoJson } from '../lineage/record.ts';

export async function runLineageCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      'request-id': { type: 'string' },
      tenant: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      file: { type: 'string' },
      redis: { type: 'string' },
    },
  });
  const redisUrl = values.redis ?? (values.file ? undefined : process.env.REDIS_URL);
  const res = await queryLineage({
    source: redisUrl ? 'redis' : 'file',
    redis: redisUrl,
    path: values.file ?? process.env.TOLLGATE_LINEAGE_FILE ?? './var/lineage.jsonl',
    requestId: values['request-id'],
    tenant: values.tenant,
    since: values.since ? new Date(values.since) : undefined,
    until: values.until ? new Date(values.until) : undefined,
    limit: values.limit ? Number(values.limit) : 20,
  });
  for (const r of res.records) process.stdout.write(`${JSON.stringify(toProtoJson(r))}\n`);
  if (res.truncated) process.stderr.write(`(stopped after scanning ${res.scanned} entries)\n`);
}
