// Adapts the budget and redaction modules to the narrow ports the request path uses. One place, so
// the server and `tollgate explain` behave identically.
import { LimitExceededError, type BudgetManager, type Reservation } from '../budget/manager.ts';
import type { CheckResult } from '../budget/store.ts';
import { GatewayError } from '../errors.ts';
import type { BudgetEffect } from '../lineage/record.ts';
import { toRedactionCounts, type OutputTransform, type RedactionCountRow, type RedactorCache } from '../redaction/redactor.ts';
import type { Admission, BudgetPort, CostEstimate, RedactionPort, TextStream } from './ports.ts';

const UNIT: Record<string, string> = {
  usd: 'usd',
  inputTokens: 'input_tokens',
  outputTokens: 'output_tokens',
  totalTokens: 'total_tokens',
  requests: 'requests',
};

function amountOf(unit: string, a: CostEstimate): number {
  switch (unit) {
    case 'usd':
      return a.usd;
    case 'input_tokens':
      return a.inputTokens;
    case 'output_tokens':
      return a.outputTokens;
    case 'total_tokens':
      return a.inputTokens + a.outputTokens;
    case 'requests':
      return 1;
    default:
      return 0;
  }
}

// Per request: loops and plain literals (no filter/map chains or spreads) — this runs at every admit and settle.
function effectsOf(checks: readonly CheckResult[], failOpen: boolean): BudgetEffect[] {
  const out: BudgetEffect[] = [];
  for (const c of checks) {
    if (c.kind !== 'budget') continue;
    out.push({
      name: c.name,
      scopeKey: c.scopeKey,
      unit: UNIT[c.metric] ?? c.metric,
      limit: c.limit,
      reserved: c.requested,
      remaining: c.remaining,
      enforcement: c.hard ? 'hard' : 'soft',
      softLimitWarning: !c.hard && c.exceeded,
      exceeded: c.exceeded,
      failOpen: failOpen || c.degraded === 'failOpen' || undefined,
      resetAt: c.resetAt,
    });
  }
  return out;
}

/** The budgets that stopped a request (nothing reserved or charged), for its lineage record. */
export function deniedBudgetEffects(err: unknown): BudgetEffect[] {
  if (!(err instanceof LimitExceededError)) return [];
  return effectsOf(err.denied, false).map((e) => ({ ...e, reserved: 0, charged: 0 }));
}

export function budgetPort(manager: BudgetManager): BudgetPort {
  return {
    async admit(requestId, budgets, limits, estimate, tenant): Promise<Admission> {
      const r = await manager.admit(requestId, budgets, limits, estimate, { tenant });
      if (r instanceof GatewayError) throw r;
      return { headers: r.headers, effects: effectsOf(r.checks, r.degraded === 'failOpen'), handle: r.reservation };
    },
    async settle(admission, actual) {
      await manager.settle(admission.handle as Reservation, actual);
      // Remaining after settle = remaining at admission + what was reserved − what was charged.
      const out: BudgetEffect[] = [];
      for (const e of admission.effects) {
        const charged = actual ? amountOf(e.unit, actual) : 0;
        const remaining = e.remaining !== undefined && e.reserved !== undefined ? e.remaining + e.reserved - charged : e.remaining;
        // The fields of `{ ...e, charged, remaining }`, in its order (effects come from effectsOf above).
        out.push({
          name: e.name,
          scopeKey: e.scopeKey,
          unit: e.unit,
          limit: e.limit,
          reserved: e.reserved,
          remaining,
          enforcement: e.enforcement,
          softLimitWarning: e.softLimitWarning,
          exceeded: e.exceeded,
          failOpen: e.failOpen,
          resetAt: e.resetAt,
          charged,
        });
      }
      return out;
    },
  };
}

export function redactionPort(cache: RedactorCache): RedactionPort {
  return {
    redactRequest(body, rules, custom, tenant) {
      const res = cache.get(rules, custom).redactRequest(body, { tenant });
      const out = res.output;
      return { report: toRedactionCounts(res.report, 'request'), output: out && new PortOutput(out) };
    },
  };
}

/** The request's output transform in the port's terms (a class: no per-request closures on the hot path). */
class PortOutput {
  constructor(private readonly out: OutputTransform) {}

  text(t: string, json?: boolean): string {
    return this.out.text(t, json ? 'response.tool_arguments' : 'response', { json });
  }

  stream(json?: boolean): TextStream {
    return this.out.stream(json ? 'response.tool_arguments' : 'response', { json });
  }

  report(): RedactionCountRow[] {
    return toRedactionCounts(this.out.report(), 'response');
  }
}
