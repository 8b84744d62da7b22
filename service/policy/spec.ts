// Typed reading of a document's `spec` with every problem collected as a ConfigError at the
// exact YAML position (file:line:col), including unknown keys with a "did you mean" hint.
import type { ConfigDocument, ConfigError, Path } from '../config/documents.ts';
import { suggest } from './checker.ts';

export class At {
  constructor(
    readonly doc: ConfigDocument,
    readonly errors: ConfigError[],
    /** Path inside `spec`. */
    readonly path: Path,
    readonly value: unknown,
  ) {}

  get missing(): boolean {
    return this.value === undefined || this.value === null;
  }

  /** Dotted path for messages, e.g. `rules[2].deny.expression`. */
  get label(): string {
    let out = 'spec';
    for (const p of this.path) out += typeof p === 'number' ? `[${p}]` : `.${p}`;
    return out;
  }

  fail(message: string, path: Path = this.path): undefined {
    this.errors.push(this.doc.error(message, ['spec', ...path]));
    return undefined;
  }

  key(k: string): At {
    const v = this.value && typeof this.value === 'object' && !Array.isArray(this.value) ? (this.value as Record<string, unknown>)[k] : undefined;
    return new At(this.doc, this.errors, [...this.path, k], v);
  }

  /** Checks this is a mapping with only `allowed` keys; returns false (after reporting) otherwise. */
  object(allowed: readonly string[], what: string): boolean {
    if (this.missing || typeof this.value !== 'object' || Array.isArray(this.value)) {
      this.fail(`${this.label}: ${what} must be a mapping`);
      return false;
    }
    let ok = true;
    for (const k of Object.keys(this.value as object)) {
      if (!allowed.includes(k)) {
        this.fail(`${this.label}: unknown field '${k}' in ${what}${suggest(k, allowed)} (allowed: ${allowed.join(', ')})`, [...this.path, k]);
        ok = false;
      }
    }
    return ok;
  }

  string(opts: { required?: boolean; pattern?: RegExp; patternHint?: string } = {}): string | undefined {
    if (this.missing) return opts.required ? this.fail(`${this.label} is required`) : undefined;
    if (typeof this.value !== 'string') return this.fail(`${this.label} must be a string`);
    if (opts.required && this.value.trim() === '') return this.fail(`${this.label} must not be empty`);
    if (opts.pattern && !opts.pattern.test(this.value)) return this.fail(`${this.label}: ${JSON.stringify(this.value)} ${opts.patternHint ?? `must match ${opts.pattern}`}`);
    return this.value;
  }

  number(opts: { required?: boolean; min?: number; max?: number; integer?: boolean; positive?: boolean } = {}): number | undefined {
    if (this.missing) return opts.required ? this.fail(`${this.label} is required`) : undefined;
    const v = this.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(`${this.label} must be a number`);
    if (opts.integer && !Number.isInteger(v)) return this.fail(`${this.label} must be a whole number`);
    if (opts.positive && v <= 0) return this.fail(`${this.label} must be greater than 0`);
    if (opts.min !== undefined && v < opts.min) return this.fail(`${this.label} must be at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) return this.fail(`${this.label} must be at most ${opts.max}`);
    return v;
  }

  bool(opts: { required?: boolean } = {}): boolean | undefined {
    if (this.missing) return opts.required ? this.fail(`${this.label} is required`) : undefined;
    if (typeof this.value !== 'boolean') return this.fail(`${this.label} must be true or false`);
    return this.value;
  }

  oneOf<V extends string>(values: readonly V[], opts: { required?: boolean } = {}): V | undefined {
    if (this.missing) return opts.required ? this.fail(`${this.label} is required (one of: ${values.join(', ')})`) : undefined;
    if (typeof this.value !== 'string' || !(values as readonly string[]).includes(this.value)) {
      const s = typeof this.value === 'string' ? suggest(this.value, values) : '';
      return this.fail(`${this.label}: ${JSON.stringify(this.value)} is not one of ${values.join(', ')}${s}`);
    }
    return this.value as V;
  }

  list(opts: { required?: boolean; nonEmpty?: boolean } = {}): At[] | undefined {
    if (this.missing) return opts.required ? this.fail(`${this.label} is required`) : undefined;
    if (!Array.isArray(this.value)) return this.fail(`${this.label} must be a list`);
    if (opts.nonEmpty && this.value.length === 0) return this.fail(`${this.label} must not be empty`);
    return this.value.map((v, i) => new At(this.doc, this.errors, [...this.path, i], v));
  }

  stringList(opts: { required?: boolean; nonEmpty?: boolean } = {}): string[] | undefined {
    const items = this.list(opts);
    if (!items) return undefined;
    const out: string[] = [];
    for (const it of items) {
      const s = it.string({ required: true });
      if (s !== undefined) out.push(s);
    }
    return out.length === items.length ? out : undefined;
  }

  entries(): [string, At][] {
    if (this.missing || typeof this.value !== 'object' || Array.isArray(this.value)) {
      this.fail(`${this.label} must be a mapping`);
      return [];
    }
    return Object.keys(this.value as object).map((k) => [k, this.key(k)]);
  }
}

export const NAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62})$/;
export const NAME_HINT = 'must be 1-63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit';
