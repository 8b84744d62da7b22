import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plausibleBounds, settlementUsage, validateUsage, type SettlementFacts } from '../../service/budget/usage.ts';

const reserved = { inputTokens: 100, outputTokens: 200 };
const bounds = { inputTokens: 128_000, outputTokens: 200 };

test('validateUsage: valid counts pass; too large is clamped; negative / NaN / not a number falls back to the reservation', () => {
  const cases: Array<[string, { inputTokens: number; outputTokens: number }, { inputTokens: number; outputTokens: number }, string | undefined]> = [
    ['valid', { inputTokens: 90, outputTokens: 150 }, { inputTokens: 90, outputTokens: 150 }, undefined],
    ['fraction rounds up', { inputTokens: 89.2, outputTokens: 0 }, { inputTokens: 90, outputTokens: 0 }, undefined],
    ['1e400 = Infinity', { inputTokens: JSON.parse('1e400') as number, outputTokens: 5 }, { inputTokens: 128_000, outputTokens: 5 }, 'clamped'],
    ['1e15 tokens', { inputTokens: 10, outputTokens: 1e15 }, { inputTokens: 10, outputTokens: 200 }, 'clamped'],
    ['negative', { inputTokens: -5, outputTokens: 10 }, { inputTokens: 100, outputTokens: 10 }, 'invalid'],
    ['NaN', { inputTokens: 10, outputTokens: Number.NaN }, { inputTokens: 10, outputTokens: 200 }, 'invalid'],
    ['-Infinity', { inputTokens: Number.NEGATIVE_INFINITY, outputTokens: 3 }, { inputTokens: 100, outputTokens: 3 }, 'invalid'],
    ['string', { inputTokens: '12' as unknown as number, outputTokens: 3 }, { inputTokens: 100, outputTokens: 3 }, 'invalid'],
    ['invalid beats clamped', { inputTokens: -1, outputTokens: 1e9 }, { inputTokens: 100, outputTokens: 200 }, 'invalid'],
  ];
  for (const [what, reported, want, anomaly] of cases) {
    const v = validateUsage(reported, reserved, bounds);
    assert.equal(v.usage.inputTokens, want.inputTokens, what);
    assert.equal(v.usage.outputTokens, want.outputTokens, what);
    assert.equal(v.anomaly, anomaly, what);
  }
  // Subset counts are kept only when consistent.
  const v = validateUsage({ inputTokens: 50, outputTokens: 20, cachedInputTokens: 60, reasoningTokens: 10 }, reserved, bounds);
  assert.equal(v.usage.cachedInputTokens, undefined);
  assert.equal(v.usage.reasoningTokens, 10);
});

test('plausibleBounds: context window or request bytes for input; the output limit × n when the client set one', () => {
  assert.deepEqual(plausibleBounds({ contextWindow: 128_000, requestBytes: 500, reserved, explicitOutputLimit: true, choices: 4 }), { inputTokens: 128_000, outputTokens: 200 });
  // A long prompt on a deployment with an understated window is not clamped below its byte size.
  assert.equal(plausibleBounds({ contextWindow: 8_000, requestBytes: 900_000, reserved, explicitOutputLimit: true, choices: 1 }).inputTokens, 904_096);
  // No output limit from the client: the provider's default may exceed the reservation's 4096.
  assert.equal(plausibleBounds({ contextWindow: 128_000, requestBytes: 500, reserved, explicitOutputLimit: false, choices: 2 }).outputTokens, 256_000);
});

function facts(p: Partial<SettlementFacts>): SettlementFacts {
  return { sentUpstream: true, status: 200, reported: undefined, reserved, bounds, responseBytes: 400, streamed: false, ...p };
}

test('settlementUsage: release only what never reached a provider; missing usage is estimated; errors count at $0', () => {
  assert.equal(settlementUsage(facts({ sentUpstream: false })), null);
  // No usage on a 2xx JSON answer: prompt estimate + 400 bytes / 4.
  assert.deepEqual(settlementUsage(facts({})), { usage: { inputTokens: 100, outputTokens: 100, estimated: true }, anomaly: 'missing' });
  // Streamed: 20 bytes per token, never above the bound.
  assert.deepEqual(settlementUsage(facts({ streamed: true, responseBytes: 1_000_000 })), { usage: { inputTokens: 100, outputTokens: 200, estimated: true }, anomaly: 'missing' });
  // `usage: {}` (Anthropic → zeros) is no usage.
  assert.equal(settlementUsage(facts({ reported: { inputTokens: 0, outputTokens: 0 } }))?.anomaly, 'missing');
  // Client left before any answer: the prompt estimate.
  assert.deepEqual(settlementUsage(facts({ status: 0, responseBytes: 0 }))?.usage, { inputTokens: 100, outputTokens: 0, estimated: true });
  // A provider error without usage: counted, nothing charged.
  assert.deepEqual(settlementUsage(facts({ status: 500 })), { usage: { inputTokens: 0, outputTokens: 0 } });
  assert.deepEqual(settlementUsage(facts({ status: 429, reported: { inputTokens: 0, outputTokens: 0 } })), { usage: { inputTokens: 0, outputTokens: 0 } });
  // Reported usage is validated.
  assert.deepEqual(settlementUsage(facts({ reported: { inputTokens: 12, outputTokens: 7 } })), { usage: { inputTokens: 12, outputTokens: 7 } });
  assert.equal(settlementUsage(facts({ reported: { inputTokens: 1e15, outputTokens: 7 } }))?.usage.inputTokens, 128_000);
});
