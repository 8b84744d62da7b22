// A validated CoreConfig as a sequence of plain-data parts, to cross from the reload worker to the
// main thread. Large collections (keys, tenants, teams) go in bounded chunks: the main thread
// deserializes one part per event-loop turn, so no single turn stalls the streams it serves.
import { ConfigDocument, type DetachedDocument } from './documents.ts';
import { ConfigError, ConfigErrors, type SourcePos } from './errors.ts';
import type { CoreConfig } from './loader.ts';
import type { TeamConfig, TenantConfig, VirtualKeyRecord } from './types.ts';

/** Items per chunk: ~2,000 key records deserialize in a few milliseconds. */
export const CHUNK_ITEMS = 2000;

export type CorePart =
  | { part: 'head'; head: Omit<CoreConfig, 'keys' | 'tenants' | 'teams' | 'otherDocs'>; otherDocs: DetachedDocument[] }
  | { part: 'keys'; items: VirtualKeyRecord[] }
  | { part: 'tenants'; items: [string, TenantConfig][] }
  | { part: 'teams'; items: [string, TeamConfig][] };

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK_ITEMS) out.push(items.slice(i, i + CHUNK_ITEMS));
  return out;
}

export function detachCore(core: CoreConfig): CorePart[] {
  const { keys, tenants, teams, otherDocs, ...head } = core;
  return [
    { part: 'head', head, otherDocs: otherDocs.map((d) => d.detach()) },
    ...chunks([...tenants]).map((items): CorePart => ({ part: 'tenants', items })),
    ...chunks([...teams]).map((items): CorePart => ({ part: 'teams', items })),
    ...chunks(keys).map((items): CorePart => ({ part: 'keys', items })),
  ];
}

/** Collects parts in order; `done()` returns the CoreConfig once the head and every chunk arrived. */
export class CoreAssembler {
  private head: Extract<CorePart, { part: 'head' }> | undefined;
  private readonly keys: VirtualKeyRecord[] = [];
  private readonly tenants = new Map<string, TenantConfig>();
  private readonly teams = new Map<string, TeamConfig>();

  add(p: CorePart): void {
    switch (p.part) {
      case 'head':
        this.head = p;
        break;
      case 'keys':
        for (const k of p.items) this.keys.push(k);
        break;
      case 'tenants':
        for (const [k, v] of p.items) this.tenants.set(k, v);
        break;
      case 'teams':
        for (const [k, v] of p.items) this.teams.set(k, v);
        break;
    }
  }

  done(): CoreConfig {
    if (!this.head) throw new Error('reload worker sent no config head');
    return {
      ...this.head.head,
      keys: this.keys,
      tenants: this.tenants,
      teams: this.teams,
      otherDocs: this.head.otherDocs.map((d) => ConfigDocument.attach(d)),
    };
  }
}

/** A load error as plain data (ConfigErrors keep every entry and its position). */
export interface FailureData {
  errors: { detail: string; pos?: SourcePos }[];
}

export function failureData(err: unknown): FailureData {
  if (err instanceof ConfigErrors) return { errors: err.errors.map((e) => ({ detail: e.detail, pos: e.pos })) };
  if (err instanceof ConfigError) return { errors: [{ detail: err.detail, pos: err.pos }] };
  return { errors: [{ detail: err instanceof Error ? err.message : String(err) }] };
}

export function failureError(f: FailureData): ConfigError | ConfigErrors {
  const errs = f.errors.map((e) => new ConfigError(e.detail, e.pos));
  return errs.length === 1 ? (errs[0] as ConfigError) : new ConfigErrors(errs);
}
