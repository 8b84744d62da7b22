// Reads a config directory of Kubernetes-style YAML documents, keeping source positions
// so every later validation error can say file:line:col.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';

export const API_VERSION = 'tollgate.dev/v1alpha1';

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

export type Path = ReadonlyArray<string | number>;

/** One YAML document: `{apiVersion, kind, metadata, spec}` plus a way back to its source. */
export class ConfigDocument {
  readonly file: string;
  readonly kind: string;
  readonly name: string;
  readonly value: Record<string, unknown>;
  private readonly doc: Document;
  private readonly lines: LineCounter;

  constructor(file: string, doc: Document, lines: LineCounter, value: Record<string, unknown>) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
    this.value = value;
    this.kind = typeof value.kind === 'string' ? value.kind : '';
    const md = value.metadata as Record<string, unknown> | undefined;
    this.name = md && typeof md.name === 'string' ? md.name : '';
  }

  get spec(): unknown {
    return this.value.spec;
  }

  /** Position of the value at `path` (from the document root), or the nearest ancestor that exists. */
  pos(path: Path = []): SourcePos {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        const { line, col } = this.lines.linePos(node.range[0]);
        return { file: this.file, line, col };
      }
    }
    const { line, col } = this.lines.linePos(this.doc.range?.[0] ?? 0);
    return { file: this.file, line, col };
  }

  /** Position of a path inside `spec`. */
  specPos(path: Path = []): SourcePos {
    return this.pos(['spec', ...path]);
  }

  error(detail: string, path: Path = []): ConfigError {
    return new ConfigError(detail, this.pos(path));
  }
}

function listYamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) out.push(...listYamlFiles(full));
    else if (/\.ya?ml$/.test(name)) out.push(full);
  }
  return out;
}

/** Parses one YAML text (possibly multi-document). `file` is the name used in error messages. */
export function parseDocuments(file: string, text: string): ConfigDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const out: ConfigDocument[] = [];
  const errors: ConfigError[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    for (const err of doc.errors) {
      const { line, col } = lines.linePos(err.pos[0]);
      errors.push(new ConfigError(`YAML syntax: ${err.message.split('\n')[0]}`, { file, line, col }));
    }
    if (doc.errors.length) continue;
    const value: unknown = doc.toJS({ maxAliasCount: 50 });
    if (value === null || value === undefined) continue; // empty document (e.g. trailing ---)
    const cd = new ConfigDocument(file, doc, lines, {});
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(cd.error('a document must be a mapping with apiVersion, kind, metadata, spec'));
      continue;
    }
    const rec = value as Record<string, unknown>;
    const d = new ConfigDocument(file, doc, lines, rec);
    if (rec.apiVersion !== API_VERSION) {
      errors.push(d.error(`apiVersion must be "${API_VERSION}"`, ['apiVersion']));
      continue;
    }
    if (typeof rec.kind !== 'string' || rec.kind === '') {
      errors.push(d.error('kind is required', ['kind']));
      continue;
    }
    out.push(d);
  }
  if (errors.length) throw new ConfigErrors(errors);
  return out;
}

/** Every document of every `*.yaml`/`*.yml` file under `dir`, files in sorted order. */
export function readConfigDir(dir: string): ConfigDocument[] {
  const files = listYamlFiles(dir);
  const out: ConfigDocument[] = [];
  const errors: ConfigError[] = [];
  for (const f of files) {
    try {
      out.push(...parseDocuments(relative(process.cwd(), f) || f, readFileSync(f, 'utf8')));
    } catch (e) {
      if (e instanceof ConfigErrors) errors.push(...e.errors);
      else throw e;
    }
  }
  if (errors.length) throw new ConfigErrors(errors);
  return out;
}
