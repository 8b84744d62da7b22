// Encoded bytes of (name, value) pairs that recur from reply to reply: most headers Tollgate sets
// (content-type, the deployment's :path, host, cluster and api-key, rate-limit limits, budget names) and
// most dynamic-metadata fields (tenant, team, model, provider, deployment) have the same value for every
// request of a deployment. The codec writes such a pair as one copy of bytes it encoded before, instead
// of sizing and writing its name, value and framing again on every reply.
//
// Keyed by content, never by config: a reload that changes a value simply makes a new pair. A value is
// encoded only the third time it is seen: per-request ids and lengths are never encoded for nothing, even
// the ones a request sends twice (x-request-id goes upstream and back to the client). Each name keeps
// SLOTS values, so a name whose value changes every request thrashes only its own slots. A new value
// replaces the oldest one not used since the replacing last passed it (second chance): a recurring value
// sharing its name with per-request ones (content-length of a fixed response next to the request bodies'
// lengths) stays, instead of being evicted and encoded again every SLOTS requests. Bounded: at most
// `maxNames` names (the map is cleared when full) of at most `maxNameLength` characters, values of at
// most `maxValueLength`.

const SLOTS = 4; // a power of two (the round-robin index is masked)

interface Slots {
  values: (string | undefined)[];
  /** undefined: not encoded yet; null: the encoder declined it (not cacheable). */
  bytes: (Buffer | null | undefined)[];
  /** Bit i: slot i's value was seen twice (the next sighting encodes it). */
  twice: number;
  /** Bit i: slot i was used since the replacing last passed it. */
  used: number;
  next: number;
}

export class PairBytes {
  private readonly byName = new Map<string, Slots>();

  constructor(
    /** The pair's bytes exactly as the general path writes them, or null when it must take that path. */
    private readonly encode: (name: string, value: string) => Buffer | null,
    private readonly maxNames = 1024,
    private readonly maxNameLength = 128,
    private readonly maxValueLength = 256,
  ) {}

  /** The pair's cached bytes, or null (the caller encodes it the general way). */
  get(name: string, value: string): Buffer | null {
    if (value.length > this.maxValueLength) return null;
    const s = this.byName.get(name);
    if (s === undefined) {
      if (name.length > this.maxNameLength) return null;
      if (this.byName.size >= this.maxNames) this.byName.clear();
      this.byName.set(name, { values: [value, undefined, undefined, undefined], bytes: [undefined, undefined, undefined, undefined], twice: 0, used: 0, next: 1 });
      return null;
    }
    const values = s.values;
    for (let i = 0; i < SLOTS; i++) {
      if (values[i] === value) {
        const bit = 1 << i;
        s.used |= bit;
        let b = s.bytes[i];
        if (b === undefined) {
          if ((s.twice & bit) === 0) {
            s.twice |= bit;
            return null;
          }
          b = s.bytes[i] = this.encode(name, value);
        }
        return b;
      }
    }
    // Skip (and clear) used slots; after at most SLOTS of them one is free.
    let j = s.next;
    while (s.used & (1 << j)) {
      s.used &= ~(1 << j);
      j = (j + 1) & (SLOTS - 1);
    }
    values[j] = value;
    s.bytes[j] = undefined;
    s.twice &= ~(1 << j);
    s.next = (j + 1) & (SLOTS - 1);
    return null;
  }

  /** Names held (tests). */
  get size(): number {
    return this.byName.size;
  }
}
