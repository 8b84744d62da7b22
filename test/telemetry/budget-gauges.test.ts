// Budget gauges per key/team: each scope's own value, not the last request's. Two keys under one per-key
// budget: the gauge shows the most-used key (and the least remaining) whichever key was charged last, and a
// calendar window that has ended counts as reset.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics, recordRequestMetrics, type Metrics } from '../../service/telemetry/metrics.ts';
import { BudgetScopeGauges } from '../../service/telemetry/budget-gauges.ts';
import type { BudgetEffect } from '../../service/lineage/record.ts';
import { completeRecord } from '../lineage/fixtures.ts';
import { parsePromText, sampleValue } from './promtext.ts';

const DAY_END = Date.parse('2025-01-16T00:00:00Z');
const series = { budget: 'spend-controls/key-daily', tenant: 'acme', unit: 'usd' };

function charge(m: Metrics, scopeKey: string, remaining: number, over: Partial<BudgetEffect> = {}): void {
  const b: BudgetEffect = { name: series.budget, scopeKey, unit: 'usd', limit: 25, remaining, enforcement: 'hard', resetAt: DAY_END, ...over };
  recordRequestMetrics(m, completeRecord({ budgets: [b] }));
}

async function gauges(m: Metrics): Promise<{ remaining?: number; utilization?: number }> {
  const s = parsePromText(await m.registry.metrics());
  return {
    remaining: sampleValue(s, 'tollgate_budget_remaining', series),
    utilization: sampleValue(s, 'tollgate_budget_utilization_ratio', series),
  };
}

describe('budget gauges per scope', () => {
  it('a per-key budget shows its most-used key, not the key of the last request', async () => {
    let now = Date.parse('2025-01-15T12:00:00Z');
    const m = createMetrics({ collectDefault: false, now: () => now });
    m.setKnownLabels({ tenants: ['acme'] });
    charge(m, 'key:heavy', 2.5); // 90 % used
    charge(m, 'key:light', 22.5); // 10 % used, charged last
    assert.deepEqual(await gauges(m), { remaining: 2.5, utilization: 0.9 });
    // The light key spending more does not hide the heavy one; the heavy one spending more shows.
    charge(m, 'key:light', 20);
    assert.deepEqual(await gauges(m), { remaining: 2.5, utilization: 0.9 });
    charge(m, 'key:heavy', 0);
    assert.deepEqual(await gauges(m), { remaining: 0, utilization: 1 });
    // The day ends: every key's window is reset, whatever was charged last.
    now = DAY_END + 1;
    assert.deepEqual(await gauges(m), { remaining: 25, utilization: 0 });
    // A charge in the new window counts again.
    charge(m, 'key:light', 15, { resetAt: DAY_END + 86_400_000 });
    assert.deepEqual(await gauges(m), { remaining: 15, utilization: 0.4 });
  });

  it('team budgets under different tenants stay separate series; no key or team id becomes a label', async () => {
    const m = createMetrics({ collectDefault: false, now: () => Date.parse('2025-01-15T12:00:00Z') });
    m.setKnownLabels({ tenants: ['acme', 'globex'] });
    const team = (tenant: string, scopeKey: string, remaining: number) =>
      recordRequestMetrics(
        m,
        completeRecord({
          principal: { authMethod: 'virtual_key', tenant },
          budgets: [{ name: 'teams/monthly', scopeKey, unit: 'usd', limit: 100, remaining, resetAt: 0 }],
        }),
      );
    team('acme', 'team:research', 40);
    team('acme', 'team:support', 95);
    team('globex', 'team:default', 70);
    const text = await m.registry.metrics();
    const s = parsePromText(text);
    assert.equal(sampleValue(s, 'tollgate_budget_utilization_ratio', { budget: 'teams/monthly', tenant: 'acme', unit: 'usd' }), 0.6);
    assert.equal(sampleValue(s, 'tollgate_budget_remaining', { budget: 'teams/monthly', tenant: 'acme', unit: 'usd' }), 40);
    assert.equal(sampleValue(s, 'tollgate_budget_utilization_ratio', { budget: 'teams/monthly', tenant: 'globex', unit: 'usd' }), 0.3);
    for (const id of ['research', 'support', 'team:default']) assert.ok(!text.includes(id), id);
  });

  it('memory is bounded: past maxScopes the scope charged longest ago is forgotten', () => {
    const g = new BudgetScopeGauges(() => 0, 3);
    for (const [k, remaining] of [['a', 0], ['b', 5], ['c', 5], ['d', 5]] as const)
      g.observe({ ...series, scopeKey: k, limit: 10, remaining });
    assert.equal(g.size, 3);
    assert.deepEqual(g.samples(), [{ labels: series, remaining: 5, utilization: 0.5 }]);
  });
});
