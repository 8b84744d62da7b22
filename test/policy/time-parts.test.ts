// The cached wall-clock computation must agree with Intl everywhere, DST transitions and odd offsets
// (+05:45, +12:45, 30-minute DST) included.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatParts, timeParts } from '../../service/policy/fast.ts';

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Santiago', 'Pacific/Chatham', 'America/St_Johns'];

describe('policy time parts', () => {
  for (const tz of ZONES) {
    it(`${tz}: equals Intl over a year (both DST transitions), every ~31 minutes at random seconds`, () => {
      const start = Date.UTC(2025, 0, 1);
      const end = Date.UTC(2026, 0, 1);
      let seed = 42;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      let checked = 0;
      for (let ms = start; ms < end; ms += 31 * 60_000 + Math.floor(rnd() * 60_000)) {
        // A wrong offset after a transition would be wrong for the rest of its bucket: half-hourly samples hit it.
        assert.deepEqual(timeParts(ms, tz), formatParts(ms, tz), `${tz} at ${new Date(ms).toISOString()}`);
        checked++;
      }
      assert.ok(checked > 15000);
    });
  }
});

describe('policy time parts: the first minute of a 15-minute bucket', () => {
  // Offset changes on a bucket boundary (today's DST rules) and one minute after it (zones that switched at
  // 00:01 or 02:01 local: St. John's and Goose Bay until 2011, Moncton until 2006, Gaza, Casey 2020).
  const CHANGES: [string, string][] = [
    ['Europe/Berlin', '2025-03-30T01:00:00Z'],
    ['Europe/Berlin', '2025-10-26T01:00:00Z'],
    ['America/New_York', '2025-03-09T07:00:00Z'],
    ['America/New_York', '2025-11-02T06:00:00Z'],
    ['Australia/Lord_Howe', '2025-04-05T15:00:00Z'],
    ['Asia/Kathmandu', '1986-01-01T00:00:00Z'],
    ['America/St_Johns', '1987-04-05T03:31:00Z'],
    ['America/Goose_Bay', '1988-04-03T04:01:00Z'],
    ['America/Goose_Bay', '1988-10-30T02:01:00Z'],
    ['America/Moncton', '1993-04-04T04:01:00Z'],
    ['Antarctica/Casey', '2020-10-03T16:01:00Z'],
    ['Asia/Gaza', '2010-03-26T22:01:00Z'],
  ];
  for (const [tz, at] of CHANGES) {
    it(`${tz} around ${at}: equals Intl every second from a minute before the bucket to two minutes into it`, () => {
      const change = Date.parse(at);
      const bucket = Math.floor(change / (15 * 60_000)) * 15 * 60_000;
      for (const order of ['forward', 'backward'] as const) {
        // Both orders: the bucket's offset is first computed from an instant inside or outside its first minute.
        const from = bucket - 60_000;
        const to = bucket + 120_000;
        for (let i = 0; i <= (to - from) / 1000; i++) {
          const ms = order === 'forward' ? from + i * 1000 + 500 : to - i * 1000 + 250;
          assert.deepEqual(timeParts(ms, tz), formatParts(ms, tz), `${tz} at ${new Date(ms).toISOString()} (${order})`);
        }
      }
    });
  }
});
