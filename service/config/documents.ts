// Reads a config directory of Kubernetes-style YAML documents, keeping source positions
// so every later validation error can say file:line:col.
import { relative } from 'node:path';
import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { ConfigError, ConfigErrors, type SourcePos } from './errors.ts';
import { FILE_LIMITS, listConfigFiles, maxFileBytesFromEnv, readRegularFile } from './files.ts';

export const API_VERSION = 'tollgate.dev/v1alpha1';

export { ConfigError, ConfigErrors, type SourcePos } from './errors.ts';

export type Path = ReadonlyArray<string | number>;

/** Where the value at a path sits in its source file (the nearest ancestor that exists). */
export type Locator = (path: Path) => SourcePos;

/**
 * A document as plain data, to cross a thread boundary (config/reload-worker.ts): its value and the
 * source position of every node in it, so errors found later still say file:line:col.
 */
export interface DetachedDocument {
  file: string;
  value: Record<string, unknown>;
  /** [path key, line, col] for the root and every node of `value`. */
  positions: [string, number, number][];
}

const pathKey = (path: Path): string => path.map(String).join('\u0000');

/** One YAML document: `{apiVersion, kind, metadata, spec}` plus a way back to its source. */
export class ConfigDocument {
  readonly file: string;
  readonly kind: string;
  readonly name: string;
  readonly value: Record<string, unknown>;
  private readonly locate: Locator;

  constructor(file: string, value: Record<string, unknown>, locate: Locator) {
    this.file = file;
    this.value = value;
    this.locate = locate;
    this.kind = typeof value.kind === 'string' ? value.kind : '';
    const md = value.metadata as Record<string, unknown> | undefined;
    this.name = md && typeof md.name === 'string' ? md.name : '';
  }

  get spec(): unknown {
    return this.value.spec;
  }

  /** Position of the value at `path` (from the document root), or the nearest ancestor that exists. */
  pos(path: Path = []): SourcePos {
    return this.locate(path);
  }

  /** Position of a path inside `spec`. */
  specPos(path: Path = []): SourcePos {
    return this.pos(['spec', ...path]);
  }

  error(detail: string, path: Path = []): ConfigError {
    return new ConfigError(detail, this.pos(path));
  }

  /** Plain-data form (structured-clonable), positions included. */
  detach(): DetachedDocument {
    const positions: [string, number, number][] = [];
    const stack: [unknown, (string | number)[]][] = [[this.value, []]];
    while (stack.length) {
      const [v, path] = stack.pop() as [unknown, (string | number)[]];
      const p = this.pos(path);
      positions.push([pathKey(path), p.line, p.col]);
      if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, [...path, i]]));
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) stack.push([x, [...path, k]]);
    }
    return { file: this.file, value: this.value, positions };
  }

  /** Rebuilds a detached document; positions resolve to the nearest recorded ancestor. */
  static attach(d: DetachedDocument): ConfigDocument {
    const at = new Map(d.positions.map(([k, line, col]) => [k, { file: d.file, line, col }]));
    return new ConfigDocument(d.file, d.value, (path) => {
      for (let n = path.length; n >= 0; n--) {
        const p = at.get(pathKey(path.slice(0, n)));
        if (p) return p;
      }
      return { file: d.file, line: 1, col: 1 };
    });
  }
}

function yamlLocator(file: string, doc: Document, lines: LineCounter): Locator {
  return (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        const { line, col } = lines.linePos(node.range[0]);
        return { file, line, col };
      }
    }
    const { line, col } = lines.linePos(doc.range?.[0] ?? 0);
    return { file, line, col };
  };
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
    const locate = yamlLocator(file, doc, lines);
    const cd = new ConfigDocument(file, {}, locate);
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(cd.error('a document must be a mapping with apiVersion, kind, metadata, spec'));
      continue;
    }
    const rec = value as Record<string, unknown>;
    const d = new ConfigDocument(file, rec, locate);
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

/** Every document of every `*.yaml`/`*.yml` file under `dir`, files in sorted order (config/files.ts reads them safely). */
export function readConfigDir(dir: string, opts: { maxFileBytes?: number } = {}): ConfigDocument[] {
  const files = listConfigFiles(dir);
  const maxFileBytes = opts.maxFileBytes ?? maxFileBytesFromEnv();
  const out: ConfigDocument[] = [];
  const errors: ConfigError[] = [];
  let total = 0;
  for (const f of files) {
    const label = relative(process.cwd(), f) || f;
    try {
      const text = readRegularFile(f, maxFileBytes, label);
      total += text.length;
      if (total > FILE_LIMITS.maxTotalBytes) throw new ConfigError(`config directory ${dir}: over ${FILE_LIMITS.maxTotalBytes} bytes of YAML in total`);
      out.push(...parseDocuments(label, text));
    } catch (e) {
      if (e instanceof ConfigErrors) errors.push(...e.errors);
      else if (e instanceof ConfigError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length) throw new ConfigErrors(errors);
  return out;
}
