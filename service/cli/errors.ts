// The CLI's errors and the one place that turns any error into what the user sees: a one-line message
// (plus the command's usage for a usage mistake), never a stack trace unless TOLLGATE_DEBUG=1.
//
//   UsageError   the user asked for something malformed (unknown flag, missing file, bad value): exit 2 + usage
//   CliError     a well-formed request that could not be done (Redis down, server refused): exit 1
//   ConfigErrors / ConfigError   an invalid config directory: every problem as file:line:col, exit 1
//   anything else                an internal error: its message and a hint, exit 1
import { ConfigError, ConfigErrors } from '../config/documents.ts';
export { displayUrl as safeUrl } from '../security/secrets.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ErrorOutput {
  stderr: string;
  exitCode: number;
}

/** `usage` is the failing command's usage text (its first line names the command). */
export function renderCliError(err: unknown, command: string | undefined, usage: string, debug = process.env.TOLLGATE_DEBUG === '1'): ErrorOutput {
  const who = command ? `tollgate ${command}` : 'tollgate';
  if (err instanceof UsageError) return { stderr: `${who}: ${err.message}\n\n${usage.trimEnd()}\n`, exitCode: 2 };
  if (err instanceof CliError) return { stderr: `${who}: ${err.message}\n`, exitCode: err.exitCode };
  if (err instanceof ConfigErrors) {
    const lines = err.errors.map((e) => e.message);
    return { stderr: `${lines.join('\n')}\n${who}: ${err.errors.length} problem(s) found\n`, exitCode: 1 };
  }
  if (err instanceof ConfigError) return { stderr: `${who}: ${err.message}\n`, exitCode: 1 };
  const message = err instanceof Error ? err.message : String(err);
  if (debug) return { stderr: `${who}: internal error: ${err instanceof Error ? (err.stack ?? message) : message}\n`, exitCode: 1 };
  return { stderr: `${who}: internal error: ${firstLine(message)}\n(rerun with TOLLGATE_DEBUG=1 for the stack trace)\n`, exitCode: 1 };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : `${s.slice(0, i)} …`;
}
