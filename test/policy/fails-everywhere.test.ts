// Issue #11 item 12: an expression that hits a resource limit on every representative sample would
// fail (deny everything, or be skipped everywhere) on every request. It is a load error with
// file:line:col, not a bundle that turns into a 403 wall after one reload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile, denyPolicy, input, loadErrors, policyDocs } from './helpers.ts';

const TEN = '[1,2,3,4,5,6,7,8,9,10]';
/** 10^5 iterations whatever the request: twice the per-evaluation budget. */
const NESTED_RANGE = `${TEN}.all(a, ${TEN}.all(b, ${TEN}.all(c, ${TEN}.all(d, ${TEN}.all(e, a + b + c + d + e > 0)))))`;

/** Variables multiplying a string past V8's maximum length (~2^29): "Invalid string length" on every request. */
function stringOverflowSpec(onError: 'deny' | 'skip'): string {
  const cat = (v: string): string => Array(48).fill(v).join(' + ');
  return `  variables:
    - name: s1
      expression: ${JSON.stringify(cat(`'${'a'.repeat(64)}'`))}
    - name: s2
      expression: ${JSON.stringify(cat('variables.s1'))}
    - name: s3
      expression: ${JSON.stringify(cat('variables.s2'))}
    - name: s4
      expression: ${JSON.stringify(cat('variables.s3'))}
    - name: s5
      expression: ${JSON.stringify(cat('variables.s4'))}
  rules:
    - name: too-long
      onError: ${onError}
      deny: {expression: "variables.s5.size() > 10"}
`;
}

describe('expressions that fail on every sample input are rejected at load', () => {
  it('a comprehension whose range exceeds the iteration budget whatever the request: error at the expression, file:line:col', () => {
    const err = loadErrors(denyPolicy(NESTED_RANGE));
    assert.equal(err.errors.length, 1);
    assert.match(err.message, /^p\.yaml:8:21: spec\.rules\[0\]\.deny\.expression: fails on every sample input \(comprehension iteration limit of 50000 exceeded\)/);
  });

  it('a string built past the maximum length (string overflow) is rejected at the variable that overflows', () => {
    for (const onError of ['deny', 'skip'] as const) {
      const err = loadErrors(policyDocs(stringOverflowSpec(onError)));
      assert.equal(err.errors.length, 1, err.message);
      assert.match(err.message, /^p\.yaml:15:19: spec\.variables\[4\]\.expression: fails on every sample input \(Invalid string length\)/);
    }
  });

  it('a rule\'s when condition is checked the same way', () => {
    const err = loadErrors(
      policyDocs(`  rules:
    - name: w
      when: ${JSON.stringify(NESTED_RANGE)}
      deny: {expression: "true"}
`),
    );
    assert.match(err.message, /spec\.rules\[0\]\.when: fails on every sample input/);
  });

  it('data-dependent failures stay accepted: budget exceeded only on big requests, absent keys', () => {
    // Quadratic in the messages: within budget for the samples, fails closed at run time on huge prompts.
    compile(`  rules:
    - name: quadratic
      deny: {expression: "request.messages.exists(a, request.messages.exists(b, a.text == b.text && a.role != b.role))"}
`);
    // A header no sample carries errors on every sample, but a real request may have it.
    const b = compile(`  rules:
    - name: team-header
      deny: {expression: "request.headers['x-team'] == 'blocked'"}
`);
    assert.equal(b.evaluate(input({ headers: { 'x-team': 'blocked' } })).denied?.rule, 'p/team-header');
  });

  it('the check can be skipped only explicitly (a bundle a reload worker already checked)', () => {
    compile(`  rules:\n    - name: r\n      deny:\n        expression: ${JSON.stringify(NESTED_RANGE)}\n`, { sampleCheck: false });
  });
});
