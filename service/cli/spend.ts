// `tollgate spend`: current spend per budget window from a running Tollgate's /v1/spend, as a table
// (or --json). The admin token is sent, never printed.
import type { SpendRow } from '../budget/index.ts';
import { readSecret } from '../security/secrets.ts';
import { flag, httpUrl, parse, str } from './args.ts';
import { CliError } from './errors.ts';

const TIMEOUT_MS = 10_000;

export async function runSpend(args: string[]): Promise<number> {
  const p = parse(args, { tenant: { type: 'string' }, scope: { type: 'string' }, url: { type: 'string' }, json: { type: 'boolean' } });
  const given = str(p, 'url');
  const base = given !== undefined ? httpUrl(given, '--url') : httpUrl(`http://${process.env.TOLLGATE_HTTP_ADDR ?? '127.0.0.1:9464'}`, 'http://$TOLLGATE_HTTP_ADDR');
  const q = new URLSearchParams();
  const tenant = str(p, 'tenant');
  const scope = str(p, 'scope');
  if (tenant) q.set('tenant', tenant);
  if (scope) q.set('scope', scope);
  let token: string | undefined;
  try {
    token = readSecret(process.env, 'TOLLGATE_ADMIN_TOKEN');
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let res: Response;
  try {
    res = await fetch(`${base}/v1/spend?${q}`, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (e as Error).message;
    throw new CliError(`cannot reach Tollgate at ${base} (${cause}); is it running? Set --url or TOLLGATE_HTTP_ADDR to its HTTP port`);
  }
  const body = (await res.json().catch(() => ({}))) as { rows?: SpendRow[]; error?: string };
  if (!res.ok) {
    const hint = res.status === 401 || res.status === 403 ? (token ? ' (TOLLGATE_ADMIN_TOKEN was refused)' : ' (set TOLLGATE_ADMIN_TOKEN)') : '';
    throw new CliError(`${base}/v1/spend answered ${res.status} ${body.error ?? res.statusText}${hint}`);
  }
  const rows = Array.isArray(body.rows) ? body.rows : [];
  process.stdout.write(flag(p, 'json') ? `${JSON.stringify(rows, null, 2)}\n` : spendTable(rows));
  return 0;
}

const usd = (n: number): string => `$${n.toFixed(n !== 0 && Math.abs(n) < 0.01 ? 4 : 2)}`;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Limits for one metric (`<budget>:<metric>` keys), e.g. "$50.00" or "$50.00, $10.00". */
function limitOf(limits: Record<string, number>, metric: string, fmt: (n: number) => string): string {
  const vals = Object.entries(limits)
    .filter(([k]) => k.endsWith(`:${metric}`))
    .map(([, v]) => fmt(v));
  return vals.join(', ');
}

export function spendTable(rows: SpendRow[]): string {
  if (rows.length === 0) return 'no spend recorded yet (no budget or rate limit has counted a request)\n';
  const head = ['TENANT', 'SCOPE', 'WINDOW', 'SPENT', 'LIMIT', 'RESERVED', 'TOKENS IN/OUT', 'REQUESTS', 'IN FLIGHT', 'RESETS'];
  const body = [...rows]
    .sort((a, b) => a.tenant.localeCompare(b.tenant) || a.scopeKey.localeCompare(b.scopeKey) || a.window.localeCompare(b.window))
    .map((r) => [
      r.tenant || '-',
      r.scopeKey,
      r.windowId ? `${r.window} ${r.windowId}` : r.window,
      usd(r.usd),
      limitOf(r.limits, 'usd', usd) || '-',
      usd(r.reservedUsd),
      `${int(r.inputTokens)}/${int(r.outputTokens)}`,
      int(r.requests),
      int(r.inFlight),
      r.resetAt ? new Date(r.resetAt).toISOString().replace('.000Z', 'Z') : '-',
    ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 && i <= 8 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...body.map(line)].join('\n')}\n`;
}
