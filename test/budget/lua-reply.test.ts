// The reserve script returns each counter's stored "u:i:o:q" as it is, and the client parses it
// (redis.ts amountsOfReply). It must read every value exactly as the script does — parse4 — and as the
// script's '%.0f' re-formatting of it used to reach the client, whatever is stored.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { AMOUNTS_LUA, FMT_LUA } from '../../service/budget/lua.ts';
import { amountsOfReply } from '../../service/budget/redis.ts';
import type { Amounts } from '../../service/budget/plan.ts';
import { REDIS_URL } from './helpers.ts';

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
after(() => redis.quit());

// The general path: parse4 in Lua, each field through fmt, read back with Number().
const SCRIPT = `${FMT_LUA}${AMOUNTS_LUA}
local out = {}
for i = 1, #ARGV do
  local a = parse4(ARGV[i])
  out[#out + 1] = fmt(a[1]) .. ' ' .. fmt(a[2]) .. ' ' .. fmt(a[3]) .. ' ' .. fmt(a[4])
end
return out`;

function values(): string[] {
  const xs = ['0:0:0:0', '1:2:3:4', '123456789012:1500:256:1', '-5:-0:7:-9', '007:0010:0:1', '9007199254740993:1:1:1'];
  xs.push(`${'9'.repeat(30)}:1:2:3`, `1:${'1'.repeat(400)}:2:3`, `-${'8'.repeat(320)}:0:0:0`);
  xs.push('', '1:2:3', '1:2:3:4:5', 'a:b:c:d', ' 1:2:3:4', '1:2:3:4 ', '1:2:3:4\n', '+1:2:3:4', '1.5:2:3:4', '1e3:2:3:4', '::::', '-:1:2:3', '１:2:3:4');
  let s = 17;
  for (let k = 0; k < 200; k++) {
    const f: string[] = [];
    for (let j = 0; j < 4; j++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      f.push(String(Math.floor((s / 2 ** 31) * 2 ** (k % 54))));
    }
    xs.push(f.join(':'));
  }
  return xs;
}

const same = (a: Amounts, b: number[], what: string): void => {
  for (const [k, v] of [a.u, a.i, a.o, a.q].entries()) assert.ok(Object.is(v, b[k]), `${what}: field ${k} ${v} vs ${b[k]}`);
};

test('amountsOfReply reads each stored amounts string as parse4 + fmt + Number did', async () => {
  const xs = values();
  const out = (await redis.eval(SCRIPT, 0, ...xs)) as string[];
  assert.equal(out.length, xs.length);
  for (let i = 0; i < xs.length; i++) same(amountsOfReply(xs[i]), out[i].split(' ').map(Number), JSON.stringify(xs[i]));
});

test('amountsOfReply reads a missing value (nil reply) as zeros', () => {
  same(amountsOfReply(null), [0, 0, 0, 0], 'null');
  same(amountsOfReply(undefined), [0, 0, 0, 0], 'undefined');
});
