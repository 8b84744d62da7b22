// Request ids the in-process store has settled, remembered for a while so settle stays idempotent and a
// reused id is refused. Kept as an insertion-ordered queue (id + forget time) beside a Map from id to its
// newest queue position: forgetting the oldest is O(1). (A Map trimmed from the front by iteration walks
// over every entry deleted before it until the next rehash: that cost grew with the cap, per settle.)

import type { Plan } from './plan.ts';

export class SettledIds {
  /** id → its newest absolute position in the queue. */
  private readonly pos = new Map<string, number>();
  /** Ids settled by expiry (not by commit/release): the plan, so a late commit still charges its counters. */
  private readonly expired = new Map<string, Plan>();
  /** Queue of marked ids, oldest first; null where a later mark superseded the entry, or once dropped. */
  private ids: Array<string | null> = [];
  private until: number[] = [];
  private head = 0;
  /** Absolute position of ids[0]. */
  private base = 0;
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.pos.size;
  }

  has(id: string): boolean {
    return this.pos.has(id);
  }

  /** Settled by commit or release (not merely expired). */
  isDone(id: string): boolean {
    return this.pos.has(id) && !(this.expired.size > 0 && this.expired.has(id));
  }

  /** The plan of a hold that expired unsettled. */
  expiredPlan(id: string): Plan | undefined {
    return this.expired.size > 0 ? this.expired.get(id) : undefined;
  }

  /**
   * Remember `id` until `forgetAt` (ms); marking again moves it to the newest end. `fresh`: the caller knows the id
   * is not remembered (its hold was live, and a held id is never among the settled ones) — why: that skips a lookup
   * in this large map on every settle.
   */
  mark(id: string, forgetAt: number, expiredPlan: Plan | null, fresh = false): void {
    if (!fresh) {
      // Marked before: its older queue entry must not forget it any more.
      const prev = this.pos.get(id);
      if (prev !== undefined) this.ids[prev - this.base] = null;
    }
    this.pos.set(id, this.base + this.ids.length);
    this.ids.push(id);
    this.until.push(forgetAt);
    if (expiredPlan) this.expired.set(id, expiredPlan);
    else if (this.expired.size > 0) this.expired.delete(id);
    while (this.pos.size > this.max) this.dropOldest();
  }

  /** Forget ids whose time is up (insertion order is time order). */
  forget(now: number): void {
    while (this.head < this.ids.length && this.until[this.head] <= now) this.dropOldest();
  }

  clear(): void {
    this.pos.clear();
    this.expired.clear();
    this.ids = [];
    this.until = [];
    this.head = 0;
    this.base = 0;
  }

  private dropOldest(): void {
    const i = this.head;
    const id = this.ids[i];
    // null: a later mark of the same id owns it now (only its newest position forgets it).
    if (id !== null) {
      this.pos.delete(id);
      if (this.expired.size > 0) this.expired.delete(id);
    }
    this.ids[i] = null; // let the string go
    this.head = i + 1;
    if (this.head >= 1024 && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.until = this.until.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}
