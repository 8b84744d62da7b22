// `tollgate explain`: the arguments, checked, then cli/explain.ts; prints the summary line first.
import { readFileSync } from 'node:fs';
import { explain } from './explain.ts';
import { existing, flag, parse, required, str } from './args.ts';
import { configDir } from './check.ts';
import { UsageError } from './errors.ts';

function jsonFile(path: string, what: string): unknown {
  existing(path, ['file'], what);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${what} ${path} is not valid JSON: ${(e as Error).message.replace(/, ".*$/s, '')}`);
  }
}

export async function runExplain(args: string[]): Promise<number> {
  const p = parse(args, {
    request: { type: 'string' },
    key: { type: 'string' },
    claims: { type: 'string' },
    dir: { type: 'string' },
    path: { type: 'string' },
    json: { type: 'boolean' },
  });
  const requestFile = required(p, 'request', 'a JSON file with the request body');
  const key = str(p, 'key');
  const claimsFile = str(p, 'claims');
  if (key === undefined && claimsFile === undefined) throw new UsageError('give the caller: --key KEY (a virtual key) or --claims FILE (JWT claims)');
  jsonFile(requestFile, '--request file');
  let claims: Record<string, unknown> | undefined;
  if (claimsFile !== undefined) {
    const c = jsonFile(claimsFile, '--claims file');
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new UsageError(`--claims file ${claimsFile} must hold a JSON object of claims`);
    claims = c as Record<string, unknown>;
  }
  const path = str(p, 'path');
  if (path !== undefined && !path.startsWith('/')) throw new UsageError(`--path "${path}" must start with /, e.g. /v1/chat/completions`);
  const out = await explain({ dir: configDir(str(p, 'dir')), body: readFileSync(requestFile), key, claims, path });
  if (flag(p, 'json')) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else {
    const { summary, ...rest } = out;
    process.stdout.write(`${String(summary)}\n\n${JSON.stringify(rest, null, 2)}\n`);
  }
  return 0;
}
