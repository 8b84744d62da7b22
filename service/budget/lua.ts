// Lua scripts for the Redis BudgetStore. Each phase is one EVALSHA (one round trip). Needs Redis ≥ 7.0
// (PEXPIRE … GT).
//
// Key layout (T = tenant hash tag, so every key of one request hashes to one Redis Cluster slot):
//   <prefix>{T}:c:<counter key>   hash  counter. Amounts are "u:i:o:q" strings (nano-USD, input
//                                       tokens, output tokens, requests): `c` committed (calendar
//                                       windows) or `#<bucket>` per bucket (sliding windows); `r`
//                                       reserved (in-flight holds). Meta: sk, w, wid, st, ra, bm, bn.
//                                       Last seen limits: `l:<budget>:<metric>` (integer units).
//   <prefix>{T}:res:<requestId>   string  the plan JSON while held; `done` / `expired` afterwards
//   <prefix>{T}:rx                zset    requestId → hold expiry (ms); swept at the start of every script
//   <prefix>{T}:rc:<batch>        string  marker making a reconciliation batch apply once
//
// One counter costs ~3 redis.calls per phase (HMGET/HGETALL, HSET, PEXPIRE). The sweep touches
// reservation and counter keys not passed in KEYS; they share the `{T}` tag and so the slot, which
// Redis Cluster permits. Integers stay exact: all are < 2^53 and written with %.0f. TTLs are relative
// to the caller's clock (tests inject one), never Redis TIME.

/**
 * fmt(x): a number as the exact decimal integer Redis stores ('%.0f'). Integer-valued x in [0, 2^53) — every
 * amount, limit, time and TTL the scripts write — takes '%d' (Lua 5.1 casts to a 64-bit long), which prints the
 * same digits without glibc's multi-precision float formatting: that formatting was ~5% of Redis's CPU per
 * request. Anything else (fractions, negatives, -0, huge, NaN) keeps '%.0f'. test/budget/lua-fmt.test.ts
 * compares both over varied inputs.
 */
export const FMT_LUA = `
local function fmt(x)
  if x < 9007199254740992 and (x > 0 or (x == 0 and 1 / x > 0)) and x == math.floor(x) then return string.format('%d', x) end
  return string.format('%.0f', x)
end
`;

/** readPlan(i): the plan a reserve or settle script gets in ARGV (flatPlan in redis.ts builds it). */
export const PLAN_LUA = `
-- The plan as ARGV from index i: requestId, then "now:expiresAt:u:i:o:q:#counters:#checks", then per counter
-- key, scopeKey, window, windowId, "bucketMs:buckets:bucket:expireAt:start:resetAt", then per check
-- "counter(0-based):hard(1/0):limit:metric", name. Numbers are packed ':'-joined (JS String() of a number
-- never holds ':'): every ARGV costs Redis and the client a string object, and one per field was ~100
-- per reserve. Strings that may hold any character stay ARGVs of their own. cjson.decode of the same plan
-- was the most expensive step of the script.
local P8 = '^([^:]+):([^:]+):([^:]+):([^:]+):([^:]+):([^:]+):([^:]+):([^:]+)$'
local P6 = '^([^:]+):([^:]+):([^:]+):([^:]+):([^:]+):([^:]+)$'
local P4 = '^([^:]+):([^:]+):([^:]+):([^:]+)$'
local function readPlan(i)
  local now, exp, u, ii, o, q, nc, nk = string.match(ARGV[i + 1], P8)
  local p = { requestId = ARGV[i], now = tonumber(now), expiresAt = tonumber(exp),
    amounts = { u = tonumber(u), i = tonumber(ii), o = tonumber(o), q = tonumber(q) },
    counters = {}, checks = {} }
  local j = i + 2
  for n = 1, tonumber(nc) do
    local bm, bn, b, ea, st, ra = string.match(ARGV[j + 4], P6)
    p.counters[n] = { key = ARGV[j], scopeKey = ARGV[j + 1], window = ARGV[j + 2], windowId = ARGV[j + 3],
      bucketMs = tonumber(bm), buckets = tonumber(bn), bucket = tonumber(b), expireAt = tonumber(ea),
      start = tonumber(st), resetAt = tonumber(ra) }
    j = j + 5
  end
  for n = 1, tonumber(nk) do
    local c, h, l, m = string.match(ARGV[j], P4)
    p.checks[n] = { counter = tonumber(c), hard = h == '1', limit = tonumber(l), metric = m, name = ARGV[j + 1] }
    j = j + 2
  end
  return p
end
`;

/** parse4/join4: a stored "u:i:o:q" amounts string to numbers (anything else reads as zeros) and back. */
export const AMOUNTS_LUA = `
local function parse4(s)
  if not s then return { 0, 0, 0, 0 } end
  local u, i, o, q = string.match(s, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
  return { tonumber(u) or 0, tonumber(i) or 0, tonumber(o) or 0, tonumber(q) or 0 }
end

local function join4(a) return fmt(a[1]) .. ':' .. fmt(a[2]) .. ':' .. fmt(a[3]) .. ':' .. fmt(a[4]) end
`;

const COMMON = `${FMT_LUA}${PLAN_LUA}${AMOUNTS_LUA}

local function amountsOf(t) return { t.u, t.i, t.o, t.q } end

-- HSET the fields (plus meta when the counter is new) and extend the TTL to the plan's expiry.
local function write(key, c, now, existed, fields)
  if not existed then
    local m = { 'sk', c.scopeKey, 'w', c.window, 'wid', c.windowId, 'st', fmt(c.start), 'ra', fmt(c.resetAt),
      'bm', fmt(c.bucketMs), 'bn', fmt(c.buckets) }
    for _, v in ipairs(m) do fields[#fields + 1] = v end
  end
  redis.call('HSET', key, unpack(fields))
  local ttl = fmt(math.max(1, c.expireAt - now))
  if existed then redis.call('PEXPIRE', key, ttl, 'GT') else redis.call('PEXPIRE', key, ttl) end
end

-- Drop a request's hold (held) and/or charge committed usage to one counter. Sliding windows charge
-- the admission bucket, unless it has already left the window. Holds never go below zero.
local function settleCounter(key, c, now, A, held, charge)
  local f = 'c'
  if c.bucketMs > 0 then f = '#' .. fmt(c.bucket) end
  local v = redis.call('HMGET', key, 'sk', 'r', f)
  local existed = v[1] ~= false
  local fields = {}
  if held and existed then
    local r = parse4(v[2])
    for n = 1, 4 do r[n] = math.max(0, r[n] - A[n]) end
    fields[#fields + 1] = 'r'
    fields[#fields + 1] = join4(r)
  end
  if charge and (c.bucketMs == 0 or c.bucket >= math.floor(now / c.bucketMs) - c.buckets) then
    local x = parse4(v[3])
    for n = 1, 4 do x[n] = x[n] + charge[n] end
    fields[#fields + 1] = f
    fields[#fields + 1] = join4(x)
  end
  if #fields > 0 then write(key, c, now, existed, fields) end
end

local function sweep(rx, now, cpre, rpre, grace, max)
  local ids = redis.call('ZRANGEBYSCORE', rx, '-inf', fmt(now), 'LIMIT', 0, max)
  for _, id in ipairs(ids) do
    local rk = rpre .. id
    local rec = redis.call('GET', rk)
    if rec and string.sub(rec, 1, 1) == '{' then
      local p = cjson.decode(rec)
      local a = amountsOf(p.amounts)
      for _, c in ipairs(p.counters) do settleCounter(cpre .. c.key, c, now, a, true, nil) end
      redis.call('SET', rk, 'expired', 'PX', grace)
    end
    redis.call('ZREM', rx, id)
  end
  return #ids
end
`;

/**
 * KEYS[1] = res key, KEYS[2] = rx, KEYS[3..] = counters (plan order).
 * ARGV[1] = plan JSON (stored as the hold record; only the expiry sweep decodes it), ARGV[2] =
 * counter prefix, ARGV[3] = res prefix, ARGV[4] = settled-id memory ms, ARGV[5..] = packed plan (readPlan).
 * Returns an array: ok (1/0), dup ('' | 'held' | 'settled'), then per counter its committed and reserved
 * "u:i:o:q" before this request (nil = none; calendar windows and holds as stored, sliding windows summed),
 * then per exceeded check its index (0-based) and retry ms. The stored strings go back as they are — the
 * client parses them as parse4 does (redis.ts amountsOfReply) — rather than as 8 re-formatted numbers per
 * counter in a cjson document: that formatting and encoding was Redis CPU on every reserve.
 */
export const RESERVE_LUA = `${COMMON}
local plan = readPlan(5)
local now = plan.now
local grace = tonumber(ARGV[4])
sweep(KEYS[2], now, ARGV[2], ARGV[3], grace, 32)

local A = amountsOf(plan.amounts)
local states, blists, st, existed = {}, {}, {}, {}
for idx, c in ipairs(plan.counters) do
  local key = KEYS[idx + 2]
  local cc, rr, bl = { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, {}
  local craw, rraw = false, false
  if c.bucketMs == 0 then
    local v = redis.call('HMGET', key, 'sk', 'c', 'r')
    existed[idx] = v[1] ~= false
    craw, rraw = v[2], v[3]
    cc = parse4(craw)
    rr = parse4(rraw)
  else
    existed[idx] = false
    local minb = math.floor(now / c.bucketMs) - c.buckets
    local all = redis.call('HGETALL', key)
    local stale = {}
    for j = 1, #all, 2 do
      local f = all[j]
      if string.byte(f, 1) == 35 then
        local b = tonumber(string.sub(f, 2))
        if b < minb then
          stale[#stale + 1] = f
        else
          local a = parse4(all[j + 1])
          for n = 1, 4 do cc[n] = cc[n] + a[n] end
          bl[#bl + 1] = { b, a }
        end
      elseif f == 'r' then
        rraw = all[j + 1]
        rr = parse4(rraw)
      elseif f == 'sk' then existed[idx] = true
      end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    table.sort(bl, function(x, y) return x[1] < y[1] end)
    craw = join4(cc)
  end
  states[idx] = { cc, rr }
  blists[idx] = bl
  st[2 * idx - 1] = craw
  st[2 * idx] = rraw
end

-- Lua arrays stop at nil: the reply is assembled by index (false = a nil reply).
local function reply(ok, dup, ra)
  local out = { ok, dup }
  for k = 1, 2 * #plan.counters do out[k + 2] = st[k] end
  for k = 1, #ra do out[#out + 1] = ra[k] end
  return out
end

local rec = redis.call('GET', KEYS[1])
if rec then
  local held = string.sub(rec, 1, 1) == '{'
  return reply(held and 1 or 0, held and 'held' or 'settled', {})
end

local function mval(m, a)
  if m == 'usd' then return a[1]
  elseif m == 'inputTokens' then return a[2]
  elseif m == 'outputTokens' then return a[3]
  elseif m == 'totalTokens' then return a[2] + a[3]
  else return a[4] end
end

local ok, ra = 1, {}
for j, chk in ipairs(plan.checks) do
  local s = states[chk.counter + 1]
  local need = mval(chk.metric, A)
  local cur
  if chk.metric == 'parallel' then cur = s[2][4] else cur = mval(chk.metric, s[1]) + mval(chk.metric, s[2]) end
  if cur + need > chk.limit then
    if chk.hard then ok = 0 end
    local c = plan.counters[chk.counter + 1]
    local ms
    if need > chk.limit then ms = -1
    elseif chk.metric == 'parallel' then ms = 1000
    elseif c.bucketMs == 0 then
      if mval(chk.metric, s[1]) + need <= chk.limit then ms = 1000 else ms = math.max(1000, c.resetAt - now) end
    else
      ms = 1000
      local v = cur
      for _, e in ipairs(blists[chk.counter + 1]) do
        v = v - mval(chk.metric, e[2])
        if v + need <= chk.limit then
          ms = math.max(1, (e[1] + c.buckets + 1) * c.bucketMs - now)
          break
        end
      end
    end
    ra[#ra + 1] = j - 1
    ra[#ra + 1] = ms
  end
end

if ok == 1 then
  local fields = {}
  for idx = 1, #plan.counters do
    local r = states[idx][2]
    fields[idx] = { 'r', join4({ r[1] + A[1], r[2] + A[2], r[3] + A[3], r[4] + A[4] }) }
  end
  for _, chk in ipairs(plan.checks) do
    local f = fields[chk.counter + 1]
    f[#f + 1] = 'l:' .. chk.name .. ':' .. chk.metric
    f[#f + 1] = fmt(chk.limit)
  end
  for idx, c in ipairs(plan.counters) do write(KEYS[idx + 2], c, now, existed[idx], fields[idx]) end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, plan.expiresAt - now) + grace)
  redis.call('ZADD', KEYS[2], fmt(plan.expiresAt), plan.requestId)
end
return reply(ok, '', ra)
`;

/**
 * Commit or release. KEYS as in reserve. ARGV[1] = unused, ARGV[2] = counter prefix, ARGV[3] = res
 * prefix, ARGV[4] = settled-id memory ms, ARGV[5] = now, ARGV[6] = charge "u:i:o:q" or "" (release),
 * ARGV[7..] = packed plan (readPlan; from the replica that reserved; checks omitted).
 * Returns settled | expired | duplicate | unknown.
 */
export const SETTLE_LUA = `${COMMON}
local now = tonumber(ARGV[5])
local grace = tonumber(ARGV[4])
sweep(KEYS[2], now, ARGV[2], ARGV[3], grace, 32)
local rec = redis.call('GET', KEYS[1])
if rec == 'done' then return 'duplicate' end
local plan = readPlan(7)
local status = 'unknown'
local held = rec and string.sub(rec, 1, 1) == '{'
if held then status = 'settled' elseif rec == 'expired' then status = 'expired' end
local charge = nil
if ARGV[6] ~= '' then
  -- A commit charges even when the hold is gone: the request was admitted and did run.
  charge = parse4(ARGV[6])
  if status == 'unknown' then status = 'expired' end
end
if held or charge then
  local A = amountsOf(plan.amounts)
  for idx, c in ipairs(plan.counters) do settleCounter(KEYS[idx + 2], c, now, A, held, charge) end
end
redis.call('SET', KEYS[1], 'done', 'PX', grace)
redis.call('ZREM', KEYS[2], plan.requestId)
return status
`;

/**
 * Replay locally recorded charges once. KEYS[1] = batch marker, KEYS[2..] = counters.
 * ARGV[1] = JSON [[counterPlan, {u,i,o,q}], ...] aligned with KEYS[2..], ARGV[2] = now, ARGV[3] = marker ms.
 */
export const APPLY_LUA = `${COMMON}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = tonumber(ARGV[2])
local entries = cjson.decode(ARGV[1])
for idx, e in ipairs(entries) do settleCounter(KEYS[idx + 1], e[1], now, nil, false, amountsOf(e[2])) end
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[3]))
return 1
`;

/** KEYS[1] = rx. ARGV = counter prefix, res prefix, memory ms, now, max. Returns swept count. */
export const SWEEP_LUA = `${COMMON}
return sweep(KEYS[1], tonumber(ARGV[4]), ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5]))
`;
