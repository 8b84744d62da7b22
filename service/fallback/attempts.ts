// Failed attempts seen by this replica's upstream stage, kept briefly so the router stage can put
// them in the request's lineage record. Envoy discards a retried attempt's response before the
// router stage sees anything, so this is the only place they are known. Bounded and best effort:
// an attempt handled by another replica shows up as "not observed" (lineage says so).

export interface AttemptInfo {
  attempt: number;
  provider: string;
  deployment: string;
  /** Upstream status; 0 = no response (reset, connect failure, per-try timeout). */
  status: number;
  latencyMs: number;
  errorClass?: string;
}

interface Entry {
  at: number;
  attempts: AttemptInfo[];
}

export class AttemptLog {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(requestId: string, a: AttemptInfo): void {
    const t = this.now();
    let e = this.entries.get(requestId);
    if (!e) {
      if (this.entries.size >= this.maxEntries) this.evict(t);
      e = { at: t, attempts: [] };
      this.entries.set(requestId, e);
    }
    if (e.attempts.length < 16 && !e.attempts.some((x) => x.attempt === a.attempt)) e.attempts.push(a);
  }

  /** The attempts recorded for a request (removed), ordered by attempt number. */
  take(requestId: string): AttemptInfo[] {
    const e = this.entries.get(requestId);
    if (!e) return [];
    this.entries.delete(requestId);
    if (this.now() - e.at > this.ttlMs) return [];
    return e.attempts.sort((a, b) => a.attempt - b.attempt);
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(t: number): void {
    for (const [k, e] of this.entries) {
      if (t - e.at > this.ttlMs) this.entries.delete(k);
    }
    // Still full: drop the oldest (Map iterates in insertion order).
    while (this.entries.size >= this.maxEntries) {
      const first = this.entries.keys().next().value;
      if (first === undefined) break;
      this.entries.delete(first);
    }
  }
}
