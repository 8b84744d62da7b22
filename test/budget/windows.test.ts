import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeWindow, fixedWindowAt, slidingOf, zonedToUtc } from '../../service/budget/windows.ts';

const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');

test('calendar windows in UTC and IANA zones (table)', () => {
  const cases: Array<[kind: 'minute' | 'hour' | 'day' | 'month', tz: string | undefined, at: string, id: string, start: string, end: string]> = [
    ['month', undefined, '2024-02-15T10:00:00Z', '2024-02', '2024-02-01T00:00:00Z', '2024-03-01T00:00:00Z'],
    ['month', 'UTC', '2024-12-31T23:59:59Z', '2024-12', '2024-12-01T00:00:00Z', '2025-01-01T00:00:00Z'],
    ['month', 'America/New_York', '2024-03-01T04:59:59Z', '2024-02', '2024-02-01T05:00:00Z', '2024-03-01T05:00:00Z'],
    ['month', 'America/New_York', '2024-03-20T00:00:00Z', '2024-03', '2024-03-01T05:00:00Z', '2024-04-01T04:00:00Z'],
    ['month', 'Asia/Tokyo', '2024-01-31T16:00:00Z', '2024-02', '2024-01-31T15:00:00Z', '2024-02-29T15:00:00Z'],
    ['month', 'Pacific/Kiritimati', '2024-06-30T10:00:00Z', '2024-07', '2024-06-30T10:00:00Z', '2024-07-31T10:00:00Z'],
    ['day', 'Asia/Kolkata', '2024-06-15T20:00:00Z', '2024-06-16', '2024-06-15T18:30:00Z', '2024-06-16T18:30:00Z'],
    ['day', 'America/New_York', '2024-11-03T12:00:00Z', '2024-11-03', '2024-11-03T04:00:00Z', '2024-11-04T05:00:00Z'],
    ['day', 'Europe/Berlin', '2024-03-31T12:00:00Z', '2024-03-31', '2024-03-30T23:00:00Z', '2024-03-31T22:00:00Z'],
    // Chile skips local midnight at the start of DST: the day begins at 01:00 local.
    ['day', 'America/Santiago', '2024-09-08T12:00:00Z', '2024-09-08', '2024-09-08T04:00:00Z', '2024-09-09T03:00:00Z'],
    ['hour', 'Asia/Kolkata', '2024-06-15T20:10:00Z', '2024-06-16T01+05:30', '2024-06-15T19:30:00Z', '2024-06-15T20:30:00Z'],
    ['hour', 'America/New_York', '2024-11-03T05:30:00Z', '2024-11-03T01-04:00', '2024-11-03T05:00:00Z', '2024-11-03T06:00:00Z'],
    ['hour', 'America/New_York', '2024-11-03T06:30:00Z', '2024-11-03T01-05:00', '2024-11-03T06:00:00Z', '2024-11-03T07:00:00Z'],
    ['hour', undefined, '2024-06-15T20:10:00Z', '2024-06-15T20+00:00', '2024-06-15T20:00:00Z', '2024-06-15T21:00:00Z'],
    ['minute', 'Asia/Kolkata', '2024-06-15T20:10:30Z', '2024-06-16T01:40', '2024-06-15T20:10:00Z', '2024-06-15T20:11:00Z'],
  ];
  for (const [kind, tz, at, id, start, end] of cases) {
    const w = fixedWindowAt(kind, tz, Date.parse(at));
    assert.deepEqual([w.id, iso(w.start), iso(w.end)], [id, start, end], `${kind} ${tz ?? 'UTC'} at ${at}`);
  }
});

test('window instants: start belongs to the window, end belongs to the next', () => {
  for (const tz of ['UTC', 'Europe/London', 'Australia/Lord_Howe', 'America/Sao_Paulo']) {
    let t = Date.parse('2024-01-01T00:00:00Z');
    for (let i = 0; i < 14; i++) {
      const w = fixedWindowAt('month', tz, t);
      assert.ok(w.start <= t && t < w.end, `${tz} ${iso(t)}`);
      const next = fixedWindowAt('month', tz, w.end);
      assert.equal(next.start, w.end, `${tz}: windows tile without gaps`);
      assert.notEqual(next.id, w.id);
      assert.equal(fixedWindowAt('month', tz, w.end - 1).id, w.id);
      t = w.end;
    }
  }
});

test('zonedToUtc shifts a local time in a DST gap forward by the gap, and picks the first of a repeated time', () => {
  // 2024-03-10 02:00–03:00 does not exist in New York (02:00 EST → 03:00 EDT).
  assert.equal(iso(zonedToUtc(2024, 3, 10, 2, 0, 'America/New_York')), '2024-03-10T07:00:00Z');
  assert.equal(iso(zonedToUtc(2024, 3, 10, 2, 30, 'America/New_York')), '2024-03-10T07:30:00Z');
  // 2024-11-03 01:30 happens twice (EDT, then EST).
  assert.equal(iso(zonedToUtc(2024, 11, 3, 1, 30, 'America/New_York')), '2024-11-03T05:30:00Z');
  assert.equal(iso(zonedToUtc(2024, 3, 10, 1, 30, 'America/New_York')), '2024-03-10T06:30:00Z');
});

test('sliding windows: at most 60 buckets of ≥ 1 s that tile the window exactly', () => {
  const cases: Array<[number, number, number]> = [
    [60, 1000, 60],
    [3600, 60_000, 60],
    [7, 1000, 7],
    [90, 1500, 60],
    [86400, 1_440_000, 60],
  ];
  for (const [secs, bucketMs, buckets] of cases) assert.deepEqual(slidingOf(secs), { bucketMs, buckets }, `${secs}s`);
});

test('describeWindow names the shape', () => {
  assert.equal(describeWindow({ kind: 'month' }), 'month');
  assert.equal(describeWindow({ kind: 'month', timeZone: 'UTC' }), 'month');
  assert.equal(describeWindow({ kind: 'day', timeZone: 'Asia/Tokyo' }), 'day@Asia/Tokyo');
  assert.equal(describeWindow({ kind: 'rolling', seconds: 300 }), 'rolling300s');
});
