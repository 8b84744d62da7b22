// The Redis scripts' number formatter (lua.ts FMT_LUA) has an integer fast path ('%d'); every value it writes must
// be the exact string the general path ('%.0f') writes, or counters and limits stored in Redis would change.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { FMT_LUA } from '../../service/budget/lua.ts';
import { REDIS_URL } from './helpers.ts';

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
after(() => redis.quit());

// Returns, per ARGV number, { fmt(x), string.format('%.0f', x) }.
const SCRIPT = `${FMT_LUA}
local out = {}
for i = 1, #ARGV do
  local x = tonumber(ARGV[i])
  out[#out + 1] = fmt(x)
  out[#out + 1] = string.format('%.0f', x)
end
return out`;

/** Deterministic pseudo-random integers in [0, max). */
function* ints(seed: number, n: number, max: number): Generator<number> {
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    yield Math.floor((s / 2 ** 31) * max);
  }
}

function inputs(): string[] {
  const xs: string[] = [];
  for (let i = 0; i <= 300; i++) xs.push(String(i), String(-i));
  for (let e = 0; e <= 64; e++) for (const d of [-1, 0, 1]) xs.push(String(2 ** e + d), String(-(2 ** e) - d));
  for (let e = 0; e <= 22; e++) xs.push(`1e${e}`, `5e${e}`, `-1e${e}`);
  // Nano-USD amounts, token counts, ms timestamps, bucket indexes.
  for (const x of ints(7, 400, 2 ** 53)) xs.push(String(x));
  for (const x of ints(11, 200, 2 ** 41)) xs.push(String(x));
  for (const x of ints(13, 100, 4e12)) xs.push(String(1.7e12 + x));
  // Fractions round (half to even) under '%.0f'; the fast path must not truncate them.
  for (const f of ['0.5', '1.5', '2.5', '3.5', '2.4999', '2.5001', '-0.5', '-2.5', '1e-9', '123456789.5', '4503599627370495.5']) xs.push(f);
  xs.push('-0', '9007199254740991', '9007199254740992', '9007199254740993', '1e300', '-1e300', 'inf', '-inf');
  return xs;
}

test('fmt() writes exactly what string.format("%.0f") writes, for integers, fractions, signs and huge values', async () => {
  const xs = inputs();
  for (let i = 0; i < xs.length; i += 500) {
    const batch = xs.slice(i, i + 500);
    const out = (await redis.eval(SCRIPT, 0, ...batch)) as string[];
    assert.equal(out.length, batch.length * 2);
    for (let j = 0; j < batch.length; j++) assert.equal(out[2 * j], out[2 * j + 1], `fmt(${batch[j]})`);
  }
});

test('fmt() prints integers below 2^53 as their exact decimal digits', async () => {
  const xs = [0, 1, 42, 10 ** 15, 2 ** 53 - 1, ...ints(3, 200, 2 ** 53)];
  const out = (await redis.eval(SCRIPT, 0, ...xs.map(String))) as string[];
  for (let j = 0; j < xs.length; j++) assert.equal(out[2 * j], BigInt(xs[j]).toString());
});
