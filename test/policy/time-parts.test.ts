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
