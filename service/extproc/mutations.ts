// Helpers for the wire shapes Envoy accepts: raw_value-only header mutations, Struct metadata.
import type {
  HeaderMap,
  HeaderMutation,
  HeaderValueOption,
  PbStruct,
  PbValue,
} from './messages.ts';

/** Header list → map with lower-cased names. Envoy sends raw_value; value is read as a fallback. Repeated headers are joined with ", ". */
export function headerMap(map: HeaderMap | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const headers = map?.headers;
  if (!headers) return out;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const key = h.key.toLowerCase();
    const raw = h.raw_value;
    // The decoder's raw_value is already a Buffer: read it in place (no copy per header).
    const v = raw && raw.length ? (Buffer.isBuffer(raw) ? raw : Buffer.from(raw)).toString('latin1') : (h.value ?? '');
    const prev = out.get(key);
    out.set(key, prev === undefined ? v : `${prev}, ${v}`);
  }
  return out;
}

const FORBIDDEN = /[\r\n\0]/;
/** `append: false` on every set header, one shared (frozen) object rather than one per header. */
const NO_APPEND: { value: boolean } = Object.freeze({ value: false });

/**
 * Builds a HeaderMutation; every value goes out as raw_value (Envoy reads only raw_value).
 * Kept in small arrays, not a Map and a Set: a request builds several of these with a handful of
 * headers each, where a linear scan is cheaper than two hash tables allocated per builder. The
 * order is a Map's and a Set's (a re-set name keeps its place; a removed then set name goes last).
 * The count stays small: Envoy caps a request's header count (100 by default).
 */
export class MutationBuilder {
  private setNames: string[] = [];
  private setValues: string[] = [];
  private removed: string[] = [];
  /**
   * view() handed out these arrays: copy them before the next change (copy-on-write). Why: a view is
   * almost always the builder's last state (the reply is encoded at once), so copying the three arrays
   * on every view() was an allocation per reply for nothing; a view still never changes afterwards.
   */
  private shared = false;

  private own(): void {
    if (!this.shared) return;
    this.setNames = this.setNames.slice();
    this.setValues = this.setValues.slice();
    this.removed = this.removed.slice();
    this.shared = false;
  }

  setHeader(name: string, value: string): this {
    const k = name.toLowerCase();
    if (FORBIDDEN.test(value)) throw new Error(`header ${k}: value contains a forbidden character`);
    this.own();
    const r = this.removed.indexOf(k);
    if (r >= 0) this.removed.splice(r, 1);
    const i = this.setNames.indexOf(k);
    if (i >= 0) this.setValues[i] = value;
    else {
      this.setNames.push(k);
      this.setValues.push(value);
    }
    return this;
  }

  removeHeader(name: string): this {
    const k = name.toLowerCase();
    this.own();
    const i = this.setNames.indexOf(k);
    if (i >= 0) {
      this.setNames.splice(i, 1);
      this.setValues.splice(i, 1);
    }
    if (!this.removed.includes(k)) this.removed.push(k);
    return this;
  }

  get empty(): boolean {
    return this.setNames.length === 0 && this.removed.length === 0;
  }

  build(): HeaderMutation | undefined {
    if (this.empty) return undefined;
    return buildMutation(this.setNames, this.setValues, this.removed);
  }

  /**
   * What build() gives, as a BuiltMutation: the same message, which the codec writes straight from
   * these names and values (see BuiltMutation). The Processor sends this; build() is the reference.
   */
  view(): BuiltMutation | undefined {
    if (this.empty) return undefined;
    this.shared = true;
    return new BuiltMutation(this.setNames, this.setValues, this.removed);
  }
}

function buildMutation(names: readonly string[], values: readonly string[], removed: readonly string[]): HeaderMutation {
  const n = names.length;
  const set_headers: HeaderValueOption[] = new Array(n);
  for (let i = 0; i < n; i++) set_headers[i] = { header: { key: names[i]!, raw_value: Buffer.from(values[i]!, 'latin1') }, append: NO_APPEND };
  return { set_headers, remove_headers: removed.slice() };
}

/**
 * A HeaderMutation kept as the builder's names and (latin1) values. Why: build() makes three objects
 * and a Buffer per set header only for the codec to walk them once and copy the bytes out (~4% of a
 * request's allocation); the codec writes this straight from the strings instead, byte for byte what it
 * writes for build()'s objects (test/unit/extproc-codec.test.ts checks both). Other readers (tests,
 * proto-loader) see build()'s shape through `set_headers` / `remove_headers`, made on each read.
 */
export class BuiltMutation implements HeaderMutation {
  constructor(
    readonly names: readonly string[],
    readonly values: readonly string[],
    readonly removed: readonly string[],
  ) {}

  get set_headers(): HeaderValueOption[] {
    return buildMutation(this.names, this.values, this.removed).set_headers!;
  }

  get remove_headers(): string[] {
    return this.removed.slice();
  }
}

/**
 * A google.protobuf.Struct given as plain JSON (the shape toPbStruct takes). The codec writes `json`
 * straight to bytes, with toPbStruct's mapping, without building the PbValue tree per reply; readers
 * that want the tree (tests, proto-loader's encoder) get it from `fields`, built on demand.
 */
export class JsonStruct implements PbStruct {
  readonly json: Record<string, unknown>;
  constructor(json: Record<string, unknown>) {
    this.json = json;
  }
  get fields(): Record<string, PbValue> {
    return toPbStruct(this.json).fields!;
  }
}

export function toPbValue(v: unknown): PbValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'bigint') return { numberValue: Number(v) };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toPbValue) } };
  if (v instanceof Date) return { stringValue: v.toISOString() };
  if (typeof v === 'object') return { structValue: toPbStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function toPbStruct(obj: Record<string, unknown>): PbStruct {
  const fields: Record<string, PbValue> = {};
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    if (v !== undefined) fields[k] = toPbValue(v);
  }
  return { fields };
}

export function fromPbValue(v: PbValue | undefined): unknown {
  if (!v) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('numberValue' in v) return v.numberValue;
  if ('boolValue' in v) return v.boolValue;
  if ('structValue' in v) return fromPbStruct(v.structValue);
  if ('listValue' in v) return (v.listValue.values ?? []).map(fromPbValue);
  return null;
}

export function fromPbStruct(s: PbStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromPbValue(v);
  return out;
}
