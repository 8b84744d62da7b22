// Config load errors: each names file:line:col when it has a position. Never a client response
// (service/errors.ts is); these go to the CLI, the start-up log and /readyz.

export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export class ConfigError extends Error {
  readonly pos: SourcePos | undefined;
  readonly detail: string;
  constructor(detail: string, pos?: SourcePos) {
    super(pos ? `${pos.file}:${pos.line}:${pos.col}: ${detail}` : detail);
    this.name = 'ConfigError';
    this.pos = pos;
    this.detail = detail;
  }
}

/** Several config errors found in one pass; the message lists them all, one per line. */
export class ConfigErrors extends Error {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
    this.errors = errors;
  }
}
