// Command-line parsing for every subcommand: node's parseArgs, with its errors turned into
// UsageErrors that say what to fix, and typed readers for values (numbers, dates, files, URLs).
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  help: boolean;
}

/** Parses `args` against `options` (plus --help/-h); at most `maxPositionals` positionals. */
export function parse(args: string[], options: OptionSpec, maxPositionals = 0): Parsed {
  let res;
  try {
    res = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err, options));
  }
  const values = res.values as Record<string, string | boolean | undefined>;
  const help = values.help === true;
  delete values.help;
  if (!help && res.positionals.length > maxPositionals) {
    const extra = res.positionals.slice(maxPositionals);
    throw new UsageError(
      extra[0]!.startsWith('-') ? `unknown option "${extra[0]}"` : `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((a) => `"${a}"`).join(' ')}`,
    );
  }
  return { values, positionals: res.positionals, help };
}

function parseArgsMessage(err: unknown, options: OptionSpec): string {
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? String(err);
  const opt = /'(-[^' ]+)/.exec(msg)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const known = Object.keys(options).map((o) => `--${o}`);
      const near = opt ? closest(opt.replace(/^-+/, '').split('=')[0]!, Object.keys(options)) : undefined;
      return `unknown option "${opt ?? msg}"${near ? ` (did you mean --${near}?)` : known.length ? ` (options: ${known.join(', ')})` : ' (this command takes no options)'}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(msg)) return `option "${opt}" needs a value (${opt} <value>)`;
      return `option "${opt}" does not take a value`;
    default:
      return msg.split('\n')[0]!;
  }
}

/** The option name within edit distance 2 of `name`, if any. */
function closest(name: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = distance(name, n);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function required(p: Parsed, name: string, what: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required (${what})`);
  return v;
}

/** A whole number ≥ min, or undefined when the option is absent. */
export function wholeNumber(p: Parsed, name: string, min = 1): number | undefined {
  const raw = str(p, name);
  if (raw === undefined) return undefined;
  const v = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${raw}"`);
  return v;
}

/** An ISO 8601 date/time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z), or undefined when absent. */
export function date(p: Parsed, name: string): Date | undefined {
  const raw = str(p, name);
  if (raw === undefined) return undefined;
  const d = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw.trim()) ? new Date(raw.trim()) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${name} "${raw}" is not a date; use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00Z`);
  return d;
}

export function httpUrl(raw: string, what: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${what} "${raw}" is not a URL; use e.g. http://127.0.0.1:9464`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} "${raw}" must start with http:// or https://`);
  return raw.replace(/\/+$/, '');
}

export function redisUrl(raw: string, what: string): string {
  if (!/^rediss?:\/\/[^\s]+$/.test(raw)) throw new UsageError(`${what} "${raw}" is not a Redis URL; use e.g. redis://127.0.0.1:6379`);
  return raw;
}

type Kind = 'file' | 'directory';

function kindOf(path: string): Kind | 'other' | undefined {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
  } catch {
    return undefined;
  }
}

/** `path` must exist and be one of `kinds`; `what` names it in the message ("--request file"). */
export function existing(path: string, kinds: Kind[], what: string): Kind {
  const k = kindOf(path);
  const want = kinds.join(' or ');
  if (k === undefined) throw new UsageError(`${what} ${path} does not exist`);
  if (k === 'other' || !kinds.includes(k)) throw new UsageError(`${what} ${path} is not a ${want}`);
  return k;
}
