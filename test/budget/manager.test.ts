import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, renderError } from '../../service/errors.ts';
import { BudgetManager, type Admission } from '../../service/budget/manager.ts';
import { MemoryStore } from '../../service/budget/memory.ts';
import type { BudgetStore, ReserveResult } from '../../service/budget/store.ts';
import { Clock, budget, rate, usd } from './helpers.ts';

function setup(start = '2024-06-15T12:00:00Z'): { m: BudgetManager; clock: Clock; store: MemoryStore } {
  const clock = new Clock(start);
  const store = new MemoryStore({ now: clock.now });
  return { m: new BudgetManager(store), clock, store };
}

function admitted(r: Admission | GatewayError): Admission {
  if (r instanceof GatewayError) assert.fail(`expected admission, got ${r.status} ${r.code}: ${r.message}`);
  return r;
}
function denied(r: Admission | GatewayError): GatewayError {
  assert.ok(r instanceof GatewayError, 'expected a GatewayError');
  return r;
}

test('no budgets and no rate limits: admitted without touching the store', async () => {
  const { m, store } = setup();
  const a = admitted(await m.admit('r1', [], [], usd(1)));
  assert.equal(a.reservation.empty, true);
  assert.deepEqual(a.headers, {});
  assert.deepEqual(await m.settle(a.reservation, usd(1)), { status: 'settled' });
  assert.equal(store.inFlight, 0);
});

test('admission headers carry the tightest rate limit and budget', async () => {
  const { m } = setup();
  const a = admitted(
    await m.admit(
      'r1',
      [budget('tenant/monthly', 'tenant:acme', { usd: 100 }), budget('key/daily', 'key:k', { usd: 5 }, { kind: 'day' })],
      [rate('key/rpm', 'key:k', { rpm: 10, tpm: 5000 }), rate('tenant/rpm', 'tenant:acme', { rpm: 1000 })],
      { usd: 0.25, inputTokens: 300, outputTokens: 700 },
      { tenant: 'acme' },
    ),
  );
  assert.deepEqual(a.headers, {
    'x-ratelimit-limit-requests': '10',
    'x-ratelimit-remaining-requests': '9',
    'x-ratelimit-limit-tokens': '5000',
    'x-ratelimit-remaining-tokens': '4000',
    'x-tollgate-budget-name': 'key/daily',
    'x-tollgate-budget-limit-usd': '5.00',
    'x-tollgate-budget-remaining-usd': '4.75',
    'x-tollgate-budget-reset': '2024-06-16T00:00:00.000Z',
  });
});

test('denials become 429 GatewayErrors with retry-after and budget headers (table)', async () => {
  const cases: Array<{
    what: string;
    budgets: ReturnType<typeof budget>[];
    rates: ReturnType<typeof rate>[];
    first: number;
    second: number;
    code: string;
    retryAfter: string | undefined;
    message: RegExp;
  }> = [
    {
      what: 'monthly budget',
      budgets: [budget('acme/monthly', 'tenant:acme', { usd: 1 })],
      rates: [],
      first: 0.9,
      second: 0.2,
      code: 'budget_exceeded',
      retryAfter: String(Date.parse('2024-07-01T00:00:00Z') / 1000 - Date.parse('2024-06-15T12:00:00Z') / 1000),
      message: /Budget "acme\/monthly" \(tenant:acme\) exceeded: this request needs up to \$0\.20, \$0\.10 of \$1\.00 remain; the window resets at 2024-07-01T00:00:00\.000Z/,
    },
    {
      what: 'rpm',
      budgets: [],
      rates: [rate('key/rpm', 'key:k', { rpm: 1 })],
      first: 0,
      second: 0,
      code: 'rate_limit_exceeded',
      retryAfter: '61',
      message: /Rate limit "key\/rpm" \(key:k\) exceeded: .*1 requests per minute/,
    },
    {
      what: 'maxParallel',
      budgets: [],
      rates: [rate('key/par', 'key:k', { maxParallel: 1 })],
      first: 0,
      second: 0,
      code: 'concurrency_limit_exceeded',
      retryAfter: '1',
      message: /Concurrency limit "key\/par" \(key:k\) reached: 1 requests in flight, maximum 1/,
    },
    {
      what: 'request larger than the budget',
      budgets: [budget('tiny', 'key:k', { usd: 0.5 })],
      rates: [],
      first: 0,
      second: 0.6,
      code: 'request_exceeds_limit',
      retryAfter: undefined,
      message: /can never admit this request: it needs up to \$0\.60 but the limit is \$0\.50/,
    },
  ];
  for (const c of cases) {
    const { m } = setup();
    const a = admitted(await m.admit('a', c.budgets, c.rates, usd(c.first), { tenant: 'acme' }));
    // Committed spend waits for the window; an in-flight hold only blocks until it settles.
    if (c.code !== 'concurrency_limit_exceeded') await m.settle(a.reservation, usd(c.first));
    const e = denied(await m.admit('b', c.budgets, c.rates, usd(c.second), { tenant: 'acme' }));
    assert.equal(e.status, 429, c.what);
    assert.equal(e.kind, 'rate_limit', c.what);
    assert.equal(e.code, c.code, c.what);
    assert.equal(e.headers['retry-after'], c.retryAfter, c.what);
    assert.match(e.message, c.message, c.what);
    assert.ok(e.headers['x-tollgate-budget-name'], c.what);
    const rendered = renderError(e, 'openai');
    assert.equal(rendered.status, 429);
    assert.equal(JSON.parse(rendered.body.toString()).error.code, c.code);
  }
});

test('in-flight holds alone block briefly: retry-after 1 s, not the window end', async () => {
  const { m } = setup();
  const b = [budget('monthly', 'tenant:acme', { usd: 1 })];
  admitted(await m.admit('a', b, [], usd(0.9)));
  const e = denied(await m.admit('b', b, [], usd(0.2)));
  assert.equal(e.headers['retry-after'], '1');
});

test('the longest wait decides retry-after when several limits deny', async () => {
  const { m } = setup('2024-06-30T23:00:00Z');
  const b = [budget('monthly', 'tenant:acme', { usd: 1 })];
  const r = [rate('rpm', 'key:k', { rpm: 1 })];
  const a = admitted(await m.admit('a', b, r, usd(1)));
  await m.settle(a.reservation, usd(1));
  const e = denied(await m.admit('b', b, r, usd(0.5)));
  assert.equal(e.headers['retry-after'], '3600');
  assert.equal(e.headers['x-tollgate-budget-name'], 'monthly');
  assert.equal(e.headers['x-ratelimit-remaining-requests'], '0');
});

test('soft budgets warn in a header and in the admission', async () => {
  const { m } = setup();
  const soft = budget('team/soft', 'team:red', { usd: 0.1 }, { kind: 'day' }, { enforcement: 'soft' });
  const a = admitted(await m.admit('a', [soft], [], usd(0.5)));
  assert.equal(a.headers['x-tollgate-budget-warning'], 'team/soft');
  assert.deepEqual(a.warnings.map((w) => w.name), ['team/soft']);
});

test('settle: usage commits, null releases; both free the concurrency slot', async () => {
  const { m } = setup();
  const b = [budget('t', 'tenant:acme', { usd: 10 })];
  const r = [rate('par', 'key:k', { maxParallel: 1 })];
  const a = admitted(await m.admit('a', b, r, usd(2), { tenant: 'acme' }));
  denied(await m.admit('b', b, r, usd(2), { tenant: 'acme' }));
  assert.deepEqual(await m.settle(a.reservation, { usd: 0.5, inputTokens: 10, outputTokens: 5 }), { status: 'settled' });
  const c = admitted(await m.admit('c', b, r, usd(2), { tenant: 'acme' }));
  assert.deepEqual(await m.settle(c.reservation, null), { status: 'settled' });
  const [row] = (await m.spend({ tenant: 'acme', scopeKey: 'tenant:acme' }));
  assert.equal(row.usd, 0.5);
  assert.equal(row.requests, 1);
  assert.equal(row.inFlight, 0);
});

test('bad specs and store bugs fail closed as typed errors, never throws', async () => {
  const { m } = setup();
  const e = denied(await m.admit('a', [budget('bad', 'x', { usd: Number.POSITIVE_INFINITY })], [], usd(1)));
  assert.equal(e.code, 'budget_config_invalid');
  assert.match(e.message, /budget "bad" is misconfigured: limit\.usd must be a finite number/);

  const broken: BudgetStore = {
    reserve: async () => {
      throw new TypeError('boom');
    },
    commit: async () => {
      throw new Error('boom');
    },
    release: async () => ({ status: 'settled' }),
    spend: async () => [],
    health: () => 'ok',
    close: async () => undefined,
  };
  const bm = new BudgetManager(broken);
  const e2 = denied(await bm.admit('a', [budget('t', 'x', { usd: 1 })], [], usd(1)));
  assert.equal(e2.status, 500);
  assert.equal(e2.code, 'budget_internal_error');
  assert.deepEqual(await bm.settle({ requestId: 'a', empty: false }, usd(1)), { status: 'unknown' });
});

test('store unavailable with failClosed specs → 503 naming them', async () => {
  const r: ReserveResult = { ok: false, checks: [], denied: [], warnings: [], storeUnavailable: true, unavailableSpecs: ['acme/monthly'] };
  const store: BudgetStore = {
    reserve: async () => r,
    commit: async () => ({ status: 'queued' }),
    release: async () => ({ status: 'queued' }),
    spend: async () => [],
    health: () => 'degraded',
    close: async () => undefined,
  };
  const e = denied(await new BudgetManager(store).admit('a', [budget('acme/monthly', 'tenant:acme', { usd: 1 })], [], usd(1)));
  assert.equal(e.status, 503);
  assert.equal(e.code, 'budget_store_unavailable');
  assert.equal(e.headers['retry-after'], '1');
  assert.match(e.message, /budget store is unavailable and "acme\/monthly" is configured to fail closed/);
});

test('settled holds do not pile up in the expiry index under sustained traffic, and live holds still expire', async () => {
  const { m, store, clock } = setup();
  const specs = [budget('key/daily', 'key:k', { usd: 1000 }, { kind: 'day' })];
  // One hold that stays open (a request in flight) …
  const open = admitted(await m.admit('open', specs, [], usd(1)));
  for (let i = 0; i < 20_000; i++) {
    const a = admitted(await m.admit(`r${i}`, specs, [], usd(0.001)));
    await m.settle(a.reservation, usd(0.001));
  }
  assert.ok(store.expiryEntries < 5_000, `expiry index holds ${store.expiryEntries} entries for 1 live hold`);
  assert.equal(store.inFlight, 1);
  // … and still expires on time: its reserved dollar comes back.
  clock.advance(11 * 60_000);
  const after = admitted(await m.admit('late', specs, [], usd(1)));
  assert.equal(store.inFlight, 1, 'the open hold expired; only the new one is live');
  await m.settle(after.reservation, usd(0));
  assert.deepEqual(await m.settle(open.reservation, usd(1)), { status: 'expired' });
});
