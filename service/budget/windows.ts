// Budget windows: calendar windows (minute/hour/day/month, in UTC or an IANA zone) and sliding
// windows made of fixed-size buckets. Everything is computed from a caller-supplied `now` (ms) so
// tests drive time with an injected clock.

import type { BudgetWindow } from './types.ts';

/** A calendar window instance: usage in [start, end) shares one counter, identified by `id`. */
export interface FixedWindow {
  /** e.g. `2024-03` (month), `2024-03-15` (day), `2024-03-15T13` (hour), `2024-03-15T13:05` (minute), local to the zone. */
  id: string;
  start: number;
  end: number;
}

/**
 * A sliding window of `buckets` buckets of `bucketMs` each. Usage is recorded in the bucket of the
 * instant it is charged; a check sums the current bucket and the `buckets` before it, so an event
 * counts for between N and N + bucketMs ms (never less than the window: conservative).
 */
export interface SlidingWindow {
  bucketMs: number;
  buckets: number;
}

export const MAX_SLIDING_BUCKETS = 60;
const MINUTE = 60_000;

/** Stable text naming the window shape (not the instance), used in counter keys and spend rows. */
export function describeWindow(w: BudgetWindow): string {
  if (w.kind === 'rolling') return `rolling${w.seconds}s`;
  const tz = w.timeZone && w.timeZone !== 'UTC' && w.timeZone !== 'Etc/UTC' ? `@${w.timeZone}` : '';
  return `${w.kind}${tz}`;
}

export function slidingOf(seconds: number): SlidingWindow {
  const ms = seconds * 1000;
  // At most 60 buckets, at least 1 s each, and the window must be a whole number of buckets.
  let buckets = Math.min(MAX_SLIDING_BUCKETS, Math.max(1, seconds));
  while (ms % buckets !== 0 || ms / buckets < 1000) buckets--;
  return { bucketMs: ms / buckets, buckets };
}

// ---- time zones -------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws RangeError for an unknown zone. */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface WallTime {
  y: number;
  mo: number; // 1-12
  d: number;
  h: number;
  mi: number;
}

function wallTime(t: number, timeZone: string): WallTime {
  if (timeZone === 'UTC') {
    const d = new Date(t);
    return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes() };
  }
  const parts = formatterFor(timeZone).formatToParts(t);
  const out: WallTime = { y: 0, mo: 0, d: 0, h: 0, mi: 0 };
  for (const p of parts) {
    switch (p.type) {
      case 'year': out.y = Number(p.value); break;
      case 'month': out.mo = Number(p.value); break;
      case 'day': out.d = Number(p.value); break;
      case 'hour': out.h = Number(p.value); break;
      case 'minute': out.mi = Number(p.value); break;
    }
  }
  return out;
}

/** Offset of the zone at instant t, in ms (local wall clock − UTC). */
function zoneOffset(t: number, timeZone: string): number {
  if (timeZone === 'UTC') return 0;
  const w = wallTime(t, timeZone);
  const secs = Math.floor(t / 1000) % 60;
  const asUtc = Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, secs < 0 ? secs + 60 : secs);
  return asUtc - (t - (t % 1000));
}

/**
 * The UTC instant of a local wall-clock time in `timeZone`. A local time skipped by a DST gap is
 * shifted forward by the gap's length (Temporal's "compatible"); for a window boundary, which sits
 * at the start of such a gap, that is the instant the gap ends. A repeated local time maps to its
 * first occurrence.
 */
export function zonedToUtc(y: number, mo: number, d: number, h: number, mi: number, timeZone: string): number {
  const local = Date.UTC(y, mo - 1, d, h, mi);
  if (timeZone === 'UTC') return local;
  let t = local - zoneOffset(local, timeZone);
  const off2 = zoneOffset(t, timeZone);
  const t2 = local - off2;
  if (t2 !== t) {
    // Offset changed between guess and answer: pick the candidate that is self-consistent.
    if (zoneOffset(t2, timeZone) === off2) t = t2;
  }
  // In a gap neither candidate reads back as `local`; the wall clock jumps past it, so the window
  // starts at the end of the gap: the later candidate.
  if (zoneOffset(t, timeZone) + t !== local) t = Math.max(t, t2);
  return t;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function computeFixed(kind: 'minute' | 'hour' | 'day' | 'month', timeZone: string, now: number): FixedWindow {
  if (kind === 'minute') {
    // Every zone in use has a whole-minute offset, so minutes align in UTC.
    const start = now - (((now % MINUTE) + MINUTE) % MINUTE);
    const w = wallTime(start, timeZone);
    return { id: `${w.y}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}`, start, end: start + MINUTE };
  }
  const w = wallTime(now, timeZone);
  if (kind === 'hour') {
    // Truncate in local time at the current offset: a repeated hour (DST fall-back) becomes two
    // windows, told apart by the offset in the id.
    const off = zoneOffset(now, timeZone);
    const start = now - ((((now + off) % 3_600_000) + 3_600_000) % 3_600_000);
    const sign = off < 0 ? '-' : '+';
    const a = Math.abs(off) / MINUTE;
    return {
      id: `${w.y}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`,
      start,
      end: start + 3_600_000,
    };
  }
  if (kind === 'day') {
    const start = zonedToUtc(w.y, w.mo, w.d, 0, 0, timeZone);
    const next = new Date(Date.UTC(w.y, w.mo - 1, w.d + 1));
    const end = zonedToUtc(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), 0, 0, timeZone);
    return { id: `${w.y}-${pad(w.mo)}-${pad(w.d)}`, start, end };
  }
  const start = zonedToUtc(w.y, w.mo, 1, 0, 0, timeZone);
  const ny = w.mo === 12 ? w.y + 1 : w.y;
  const nmo = w.mo === 12 ? 1 : w.mo + 1;
  const end = zonedToUtc(ny, nmo, 1, 0, 0, timeZone);
  return { id: `${w.y}-${pad(w.mo)}`, start, end };
}

// Intl is slow (µs per call); the current window of each shape is cached until `now` leaves it.
const fixedCache = new Map<string, FixedWindow>();

export function fixedWindowAt(kind: 'minute' | 'hour' | 'day' | 'month', timeZone: string | undefined, now: number): FixedWindow {
  const tz = timeZone ?? 'UTC';
  const cacheKey = `${kind}@${tz}`;
  const hit = fixedCache.get(cacheKey);
  if (hit && hit.start <= now && now < hit.end) return hit;
  const w = computeFixed(kind, tz, now);
  if (fixedCache.size > 1000) fixedCache.clear();
  fixedCache.set(cacheKey, w);
  return w;
}

export function bucketOf(now: number, sw: SlidingWindow): number {
  return Math.floor(now / sw.bucketMs);
}
