// The process logger: pino, JSON lines by default (what log collectors read); one readable line per
// entry when stdout is a terminal (or TOLLGATE_LOG_FORMAT=text). Both carry the same fields, so the
// text form can print nothing the JSON form would not (redaction happens before logging).
import pino, { type Logger, type LoggerOptions } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'v']);

export type LogFormat = 'json' | 'text';

/** TOLLGATE_LOG_FORMAT (json | text) when set to one of those, else text on a terminal and JSON otherwise. */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): LogFormat {
  const f = env.TOLLGATE_LOG_FORMAT?.trim().toLowerCase();
  if (f === 'json' || f === 'text') return f;
  return isTTY ? 'text' : 'json';
}

const LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** TOLLGATE_LOG_LEVEL when it names a level, else info. */
export function logLevel(env: NodeJS.ProcessEnv = process.env): string {
  const l = env.TOLLGATE_LOG_LEVEL?.trim().toLowerCase();
  return l && LEVEL_NAMES.includes(l) ? l : 'info';
}

/** Warnings for TOLLGATE_LOG_FORMAT / TOLLGATE_LOG_LEVEL values that were ignored. */
export function logEnvProblems(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  const f = env.TOLLGATE_LOG_FORMAT?.trim().toLowerCase();
  if (f && f !== 'json' && f !== 'text') out.push(`TOLLGATE_LOG_FORMAT must be json or text, got ${JSON.stringify(env.TOLLGATE_LOG_FORMAT)}; ignored`);
  const l = env.TOLLGATE_LOG_LEVEL?.trim().toLowerCase();
  if (l && !LEVEL_NAMES.includes(l)) out.push(`TOLLGATE_LOG_LEVEL must be one of ${LEVEL_NAMES.join(', ')}, got ${JSON.stringify(env.TOLLGATE_LOG_LEVEL)}; using info`);
  return out;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line → `12:34:56.789 WARN  message key=value …` (an error as its message; its stack with TOLLGATE_DEBUG=1). */
export function formatLine(line: string, debug = process.env.TOLLGATE_DEBUG === '1'): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = (LEVELS[o.level as number] ?? String(o.level)).padEnd(5);
  const parts = [t, level, typeof o.msg === 'string' ? o.msg : ''];
  let stack: string | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    if (k === 'err' && typeof v === 'object' && v !== null) {
      const e = v as { message?: unknown; stack?: unknown };
      parts.push(`err=${value(e.message ?? '')}`);
      if (debug && typeof e.stack === 'string') stack = e.stack;
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  return `${parts.filter((p) => p !== '').join(' ')}\n${stack ? `${stack}\n` : ''}`;
}

/** The logger `tollgate serve` uses: options as given, written as JSON or text (see logFormat). */
export function createLogger(opts: LoggerOptions, format: LogFormat = logFormat(), out: { write(s: string): unknown } = process.stdout): Logger {
  if (format === 'json') return pino(opts);
  return pino(opts, { write: (line: string) => out.write(formatLine(line)) });
}
