import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import { Catalog } from '../../service/routing/catalog.ts';
import { HealthTracker, parseRetryAfter, type HealthTransition } from '../../service/routing/health.ts';
import { Router } from '../../service/routing/router.ts';
import type { HealthObservation, RouteInput, RouteResult } from '../../service/routing/types.ts';
import { allowAll, Clock, dep, model, PROVIDERS, seeded } from './fixtures.ts';

const ok: HealthObservation = { status: 200, latencyMs: 100 };
const fail: HealthObservation = { status: 503, latencyMs: 50 };

function tracker(opts: { consecutiveFailures?: number } = {}): { clock: Clock; h: HealthTracker; events: HealthTransition[] } {
  const clock = new Clock();
  const events: HealthTransition[] = [];
  const h = new HealthTracker({ now: clock.now, onTransition: (t) => events.push(t), ...opts });
  return { clock, h, events };
}

function failN(h: HealthTracker, id: string, n: number, o: HealthObservation = fail): void {
  for (let i = 0; i < n; i++) h.observe(id, o);
}

describe('HealthTracker: what counts as a failure', () => {
  const cases: { name: string; o: HealthObservation; failure: boolean }[] = [
    { name: '500', o: { status: 500, latencyMs: 1 }, failure: true },
    { name: '502', o: { status: 502, latencyMs: 1 }, failure: true },
    { name: '503', o: { status: 503, latencyMs: 1 }, failure: true },
    { name: '429 without retry-after', o: { status: 429, latencyMs: 1 }, failure: true },
    { name: '408', o: { status: 408, latencyMs: 1 }, failure: true },
    { name: 'no response (status 0)', o: { status: 0, latencyMs: 1 }, failure: true },
    { name: 'timeout', o: { status: 200, latencyMs: 60_000, timedOut: true }, failure: true },
    { name: '400 (client error)', o: { status: 400, latencyMs: 1 }, failure: false },
    { name: '404', o: { status: 404, latencyMs: 1 }, failure: false },
    { name: '200', o: { status: 200, latencyMs: 1 }, failure: false },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.failure ? 'ejects after 3 in a row' : 'never ejects'}`, () => {
      const { h } = tracker();
      failN(h, 'd', 2, c.o);
      assert.equal(h.availability('d').kind, 'healthy');
      h.observe('d', c.o);
      assert.equal(h.availability('d').kind, c.failure ? 'ejected' : 'healthy');
    });
  }

  it('only consecutive failures count', () => {
    const { h } = tracker();
    failN(h, 'd', 2);
    h.observe('d', { status: 400, latencyMs: 1 });
    failN(h, 'd', 2);
    assert.equal(h.availability('d').kind, 'healthy');
    h.observe('d', fail);
    assert.equal(h.availability('d').kind, 'ejected');
  });

  it('threshold is configurable', () => {
    const { h } = tracker({ consecutiveFailures: 1 });
    h.observe('d', fail);
    assert.deepEqual(h.availability('d'), { kind: 'ejected', until: new Clock().t + 30_000, hard: false, reason: '1 consecutive failures (last: 503)' });
  });
});

describe('HealthTracker: cool-down, half-open, recovery', () => {
  it('ejects for 30s, 60s, 120s, 240s, then caps at 300s', () => {
    const { h, clock, events } = tracker();
    failN(h, 'd', 3);
    const lengths: number[] = [];
    for (let i = 0; i < 6; i++) {
      const a = h.availability('d');
      assert.equal(a.kind, 'ejected');
      if (a.kind !== 'ejected') return;
      lengths.push(a.until - clock.t);
      clock.advance(a.until - clock.t);
      assert.equal(h.availability('d').kind, 'trial');
      assert.equal(h.claimTrial('d'), true);
      h.observe('d', fail); // trial fails → ejected again, longer
    }
    assert.deepEqual(lengths, [30_000, 60_000, 120_000, 240_000, 300_000, 300_000]);
    assert.equal(events.filter((e) => e.to === 'ejected').length, 7);
    assert.match(events[1]!.reason, /half-open trial failed \(503\)/);
  });

  it('half-open allows exactly one trial at a time; an abandoned trial expires', () => {
    const { h, clock } = tracker();
    failN(h, 'd', 3);
    assert.equal(h.claimTrial('d'), false, 'no trial while ejected');
    clock.advance(30_000);
    assert.equal(h.claimTrial('d'), true);
    assert.equal(h.claimTrial('d'), false);
    const a = h.availability('d');
    assert.equal(a.kind, 'ejected');
    assert.match(a.kind === 'ejected' ? a.reason : '', /half-open trial in flight/);
    clock.advance(120_000); // trialTimeoutMs
    assert.equal(h.availability('d').kind, 'trial');
    assert.equal(h.claimTrial('d'), true);
    h.releaseTrial('d'); // request never reached the upstream
    assert.equal(h.availability('d').kind, 'trial');
  });

  it('trial success → healthy, and a later failure streak starts from zero', () => {
    const { h, clock, events } = tracker();
    failN(h, 'd', 3);
    clock.advance(30_000);
    h.claimTrial('d');
    h.observe('d', ok);
    assert.equal(h.availability('d').kind, 'healthy');
    assert.deepEqual(events.at(-1), { deployment: 'd', to: 'healthy', reason: 'success (200)' });
    failN(h, 'd', 2);
    assert.equal(h.availability('d').kind, 'healthy');
  });

  it('the backoff multiplier resets after maxEjectionMs of health', () => {
    const { h, clock } = tracker();
    failN(h, 'd', 3);
    clock.advance(30_000);
    h.observe('d', ok); // recovered, multiplier stays at 1 ejection
    failN(h, 'd', 3);
    let a = h.availability('d');
    assert.equal(a.kind === 'ejected' && a.until - clock.t, 60_000);
    clock.advance(60_000);
    h.observe('d', ok);
    clock.advance(300_000);
    h.observe('d', ok); // healthy for a full max ejection → reset
    failN(h, 'd', 3);
    a = h.availability('d');
    assert.equal(a.kind === 'ejected' && a.until - clock.t, 30_000);
  });

  it('late failures of requests sent before the ejection do not extend it', () => {
    const { h, clock } = tracker();
    failN(h, 'd', 3);
    const before = h.availability('d');
    clock.advance(10_000);
    failN(h, 'd', 5);
    assert.deepEqual(h.availability('d'), before);
  });

  it('429 with retry-after ejects for exactly that long (hard), capped', () => {
    const { h, clock } = tracker();
    h.observe('d', { status: 429, latencyMs: 5, retryAfterMs: 7_000 });
    assert.deepEqual(h.availability('d'), {
      kind: 'ejected',
      until: clock.t + 7_000,
      hard: true,
      reason: 'rate limited by the provider (429, retry-after 7s)',
    });
    clock.advance(7_000);
    assert.equal(h.availability('d').kind, 'trial');
    h.observe('e', { status: 429, latencyMs: 5, retryAfterMs: 86_400_000 });
    const a = h.availability('e');
    assert.equal(a.kind === 'ejected' && a.until - clock.t, 600_000);
  });

  it('EWMA of latency, ttft and throughput; failures do not count as fast', () => {
    const { h } = tracker();
    h.observe('d', { status: 200, latencyMs: 1000, ttftMs: 200, outputTokens: 400 });
    h.observe('d', { status: 200, latencyMs: 2000, ttftMs: 400, outputTokens: 400 });
    h.observe('d', { status: 500, latencyMs: 1 });
    const s = h.latency('d')!;
    assert.equal(s.latencyMs, 1300);
    assert.equal(Math.round(s.ttftMs!), 260);
    // 500 tok/s then 250 tok/s → 425
    assert.equal(Math.round(s.tokensPerSec!), 425);
    h.observe('d', { status: 0, latencyMs: 30_000, timedOut: true });
    assert.equal(h.latency('d')!.latencyMs, 1300 + 0.3 * (30_000 - 1300));
  });

  it('snapshot and retain', () => {
    const { h } = tracker();
    failN(h, 'a', 3);
    h.observe('b', ok);
    const snap = h.snapshot();
    assert.equal(snap.a!.state, 'ejected');
    assert.equal(snap.a!.ejections, 1);
    assert.equal(snap.b!.state, 'healthy');
    h.retain(['b']);
    assert.deepEqual(Object.keys(h.snapshot()), ['b']);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  const cases: { v: string | undefined; ms?: string; want: number | undefined }[] = [
    { v: '30', want: 30_000 },
    { v: ' 1.5 ', want: 1_500 },
    { v: 'Wed, 01 Jan 2025 00:00:20 GMT', want: 20_000 },
    { v: 'Tue, 31 Dec 2024 23:00:00 GMT', want: 0 },
    { v: 'soon', want: undefined },
    { v: undefined, want: undefined },
    { v: '30', ms: '250', want: 250 },
    { v: undefined, ms: 'x', want: undefined },
  ];
  for (const c of cases) {
    it(`${String(c.v)} / ms=${String(c.ms)} → ${String(c.want)}`, () => assert.equal(parseRetryAfter(c.v, now, c.ms), c.want));
  }
});

describe('router + health: failover and return', () => {
  const catalog = new Catalog(
    [
      model('gpt-4o', [
        dep('gpt-4o/openai', 'openai', { priority: 0 }),
        dep('gpt-4o/azure-eu', 'azure-eu', { priority: 1 }),
        dep('gpt-4o/azure-us', 'azure-us', { priority: 2 }),
      ]),
      model('claude', [dep('claude/anthropic', 'anthropic'), dep('claude/bedrock', 'bedrock', { priority: 1 })]),
    ],
    PROVIDERS,
  );
  const setup = (): { clock: Clock; h: HealthTracker; r: Router } => {
    const clock = new Clock();
    const h = new HealthTracker({ now: clock.now });
    return { clock, h, r: new Router({ catalog, health: h, random: seeded(9) }) };
  };
  const input = (over: Partial<RouteInput> = {}): RouteInput => ({
    model: 'gpt-4o',
    tokenEstimate: 10,
    maxOutputTokens: 10,
    check: allowAll,
    kind: 'chat',
    ...over,
  });
  const ids = (x: RouteResult): string[] => x.candidates.map((c) => c.deployment.id);

  it('fails over when the primary starts failing and returns after the cool-down', () => {
    const { clock, h, r } = setup();
    assert.deepEqual(ids(r.route(input())), ['gpt-4o/openai', 'gpt-4o/azure-eu', 'gpt-4o/azure-us']);
    failN(h, 'gpt-4o/openai', 3);

    const during = r.route(input());
    assert.deepEqual(ids(during), ['gpt-4o/azure-eu', 'gpt-4o/azure-us']);
    assert.equal(during.degraded, false);
    assert.equal(during.excluded.length, 1);
    assert.match(during.excluded[0]!.reason, /^unhealthy: 3 consecutive failures \(last: 503\); retry after 2025-01-01T00:00:30.000Z$/);

    clock.advance(30_000);
    // First request after the cool-down is the trial …
    assert.deepEqual(ids(r.route(input())), ['gpt-4o/openai', 'gpt-4o/azure-eu', 'gpt-4o/azure-us']);
    // … and concurrent requests keep avoiding it until the trial reports.
    assert.deepEqual(ids(r.route(input())), ['gpt-4o/azure-eu', 'gpt-4o/azure-us']);
    h.observe('gpt-4o/openai', ok);
    assert.deepEqual(ids(r.route(input())), ['gpt-4o/openai', 'gpt-4o/azure-eu', 'gpt-4o/azure-us']);
  });

  it('a failed trial ejects again for twice as long', () => {
    const { clock, h, r } = setup();
    failN(h, 'gpt-4o/openai', 3);
    clock.advance(30_000);
    assert.equal(ids(r.route(input()))[0], 'gpt-4o/openai');
    h.observe('gpt-4o/openai', { status: 0, latencyMs: 5 });
    clock.advance(59_999);
    assert.equal(ids(r.route(input()))[0], 'gpt-4o/azure-eu');
    clock.advance(1);
    assert.equal(ids(r.route(input()))[0], 'gpt-4o/openai');
  });

  it('moves on to the `models` fallback when the whole primary model is ejected', () => {
    const { h, r } = setup();
    for (const id of ['gpt-4o/openai', 'gpt-4o/azure-eu', 'gpt-4o/azure-us']) failN(h, id, 3);
    const x = r.route(input({ models: ['claude'] }));
    assert.deepEqual(ids(x), ['claude/anthropic', 'claude/bedrock']);
    assert.equal(x.degraded, false);
  });

  it('everything ejected by failures → panic: route anyway, soonest recovery first, degraded', () => {
    const { clock, h, r } = setup();
    failN(h, 'gpt-4o/openai', 3);
    clock.advance(1_000);
    failN(h, 'gpt-4o/azure-us', 3);
    clock.advance(1_000);
    h.observe('gpt-4o/azure-eu', { status: 429, latencyMs: 1, retryAfterMs: 5_000 });
    const x = r.route(input());
    assert.equal(x.degraded, true);
    assert.deepEqual(ids(x), ['gpt-4o/openai', 'gpt-4o/azure-us'], 'hard (429 retry-after) ejections are not panic-routed');
    assert.deepEqual(x.excluded.map((e) => e.deployment), ['gpt-4o/azure-eu']);
  });

  it('everything rate limited with retry-after → 503 with retry-after', () => {
    const { clock, h, r } = setup();
    h.observe('claude/anthropic', { status: 429, latencyMs: 1, retryAfterMs: 20_000 });
    h.observe('claude/bedrock', { status: 429, latencyMs: 1, retryAfterMs: 4_500 });
    clock.advance(1_000);
    assert.throws(
      () => r.route(input({ model: 'claude' })),
      (e: unknown) => {
        assert.ok(e instanceof GatewayError);
        assert.equal(e.status, 503);
        assert.equal(e.code, 'no_healthy_deployment');
        assert.deepEqual(e.headers, { 'retry-after': '4' });
        assert.match(e.message, /every deployment of model 'claude' is rate limited by its provider; retry after 4 seconds/);
        return true;
      },
    );
  });

  it('allow_fallbacks false is applied before health: an ejected primary is not swapped for another provider', () => {
    const { h, r } = setup();
    failN(h, 'gpt-4o/openai', 3);
    const x = r.route(input({ provider: { allow_fallbacks: false } }));
    assert.deepEqual(ids(x), ['gpt-4o/openai']);
    assert.equal(x.degraded, true);
  });
});
