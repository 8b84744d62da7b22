// Every broken policy is rejected at load with file:line:col and a human message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDocuments } from '../../service/config/documents.ts';
import { compilePolicies, LIMITS } from '../../service/policy/index.ts';
import { denyPolicy, loadErrors, policyDocs } from './helpers.ts';

describe('CEL expressions are rejected at load', () => {
  const cases: { name: string; expr: string; message: RegExp; column?: number }[] = [
    { name: 'syntax error', expr: 'request.model == ', message: /syntax error/ },
    { name: 'syntax error: unbalanced parenthesis', expr: '(request.model == "x"', message: /syntax error/ },
    { name: 'unknown variable', expr: "requst.model == 'x'", message: /unknown variable 'requst'; did you mean 'request'\?/, column: 1 },
    { name: 'unknown variable in a branch never taken', expr: 'false && secret == 1', message: /unknown variable 'secret'/, column: 10 },
    { name: 'unknown field', expr: "request.modle == 'x'", message: /'request' has no field 'modle'; did you mean 'model'\?/ },
    { name: 'unknown field of a list element', expr: "request.messages.exists(m, m.txt == 'x')", message: /'message' has no field 'txt'; did you mean 'text'\?/ },
    { name: 'unknown function', expr: "lower(request.model) == 'x'", message: /unknown function 'lower'/, column: 1 },
    { name: 'unknown method', expr: "request.model.toLower() == 'x'", message: /unknown method 'toLower'/ },
    { name: 'method called as a function', expr: "startsWith(request.model, 'gpt')", message: /'startsWith' is a method, not a function/ },
    { name: 'type error', expr: "request.model + 1 == 'x'", message: /no matching overload for operator '\+' applied to \(string, int\)/, column: 15 },
    { name: 'type error in a branch never taken', expr: "true || request.tokenEstimate + 'x' == 1", message: /no matching overload for operator '\+' applied to \(int, string\)/ },
    { name: 'type error only visible with data (sample evaluation)', expr: 'request.params.temperature + 1 > 2', message: /type error with sample input: .*operator '\+'.*JSON numbers are doubles/ },
    { name: 'non-bool condition', expr: 'request.model', message: /must evaluate to bool, but it has type string/ },
    { name: 'non-bool condition through a dyn value', expr: 'request.params.user', message: /must evaluate to bool, but it produced string/ },
    { name: 'comparison that is always false', expr: 'request.model == 1', message: /comparing string with int is always false/ },
    { name: 'invalid regex (RE2 has no lookaround)', expr: "request.model.matches('(?=gpt)')", message: /invalid regular expression.*RE2/ },
    { name: 'invalid CIDR literal', expr: "cidrContains('10.0.0.0/40', request.headers['x-forwarded-for'])", message: /invalid CIDR "10\.0\.0\.0\/40"/ },
    { name: 'unknown time zone', expr: "now.getHours('Europe/Berlinn') > 8", message: /unknown time zone "Europe\/Berlinn"/ },
    { name: 'invalid timestamp literal', expr: "now > timestamp('yesterday')", message: /invalid timestamp literal/ },
    { name: 'undeclared policy variable', expr: 'variables.big', message: /no variable named 'big' is declared before this expression/ },
    { name: 'optional syntax is unsupported', expr: "request.params[?'x'] == 1", message: /syntax error|optional syntax/ },
    {
      name: 'over-long expression',
      expr: `request.model == '${'a'.repeat(LIMITS.maxExpressionLength)}'`,
      message: new RegExp(`\\d+ characters long; the limit is ${LIMITS.maxExpressionLength}`),
    },
    {
      name: 'over-deep expression (bracket nesting, checked before parsing)',
      expr: `${'('.repeat(LIMITS.maxNesting + 8)}true${')'.repeat(LIMITS.maxNesting + 8)}`,
      message: new RegExp(`nests brackets ${LIMITS.maxNesting + 8} levels deep; the limit is ${LIMITS.maxNesting}`),
    },
    {
      name: 'over-deep expression (long operator chain)',
      expr: `${Array.from({ length: LIMITS.maxAstDepth + 20 }, () => '1').join(' + ')} > 0`,
      message: new RegExp(`nested \\d+ levels deep; the limit is ${LIMITS.maxAstDepth}`),
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const docs = denyPolicy(c.expr);
      const err = loadErrors(docs);
      assert.equal(err.errors.length, 1, err.message);
      const e = err.errors[0]!;
      assert.equal(e.pos?.file, 'p.yaml');
      assert.equal(e.pos?.line, 8, err.message);
      assert.equal(e.pos?.col, 21, err.message);
      assert.match(e.detail, /^spec\.rules\[0\]\.(deny|route)\.expression: /);
      assert.match(e.message, c.message);
      if (c.column !== undefined) assert.match(e.message, new RegExp(`\\(at column ${c.column} of the expression\\)`));
    });
  }

  it('explains the int/double fix for deployment prices in route rules', () => {
    const err = loadErrors(routePolicy('deployment.inputPricePerM * 2 > 1.0'));
    assert.match(err.message, /p\.yaml:8:21: .*no matching overload for operator '\*' applied to \(double, int\); CEL does not mix int and double/);
  });

  it('reports line and column inside a multi-line expression', () => {
    const docs = policyDocs('  rules:\n    - name: r\n      deny:\n        expression: |\n          request.model == "x" &&\n            request.nope\n');
    const err = loadErrors(docs);
    assert.match(err.message, /p\.yaml:8:21: .*'request' has no field 'nope'.*\(at line 2, column \d+ of the expression\)/);
  });

  it('accepts valid expressions of every documented variable', () => {
    const exprs = [
      "request.model.glob('gpt-4*') && request.endpoint == 'chat'",
      "request.messages.exists(m, m.role == 'user' && m.text.contains('x'))",
      "has(request.params.temperature) && request.params.temperature > 0.5",
      "request.headers['user-agent'].startsWith('openai') || !('x' in request.headers)",
      "'admins' in principal.groups || principal.claims.sub == 'x' || principal.authMethod == 'jwt'",
      "tenant.attributes.tier == 'free' && team.name == 'support' && tenant.name != ''",
      "now.getHours('Europe/Berlin') >= 8 && now.getDayOfWeek('UTC') in [1, 2, 3, 4, 5]",
      "request.tokenEstimate + 1 > 10 && request.size < 1000000 && request.stream == false",
      "cidrContains(['10.0.0.0/8', '192.168.0.0/16'], '10.1.2.3') && glob(request.model, 'gpt*')",
      "request.model.lowerAscii().replace('-', '_').split('_').size() > 0",
      "request.body.messages.size() > 0",
    ];
    for (const e of exprs) assert.doesNotThrow(() => compilePolicies(denyPolicy(e)), e);
  });
});

function routePolicy(expression: string) {
  return policyDocs(`  rules:\n    - name: r\n      route:\n        expression: ${JSON.stringify(expression)}\n        message: m\n`);
}

describe('policy structure is validated with positions', () => {
  const cases: { name: string; spec: string; message: RegExp; line: number; col: number }[] = [
    {
      name: 'misspelt field',
      spec: '  rules:\n    - name: r\n      deny:\n        expresion: "true"\n',
      message: /unknown field 'expresion' in a deny rule; did you mean 'expression'\?/,
      line: 8,
      col: 20,
    },
    { name: 'rule without a kind', spec: '  rules:\n    - name: r\n      when: "true"\n', message: /a rule needs exactly one of deny, require, models/, line: 6, col: 7 },
    {
      name: 'rule with two kinds',
      spec: '  rules:\n    - name: r\n      deny: {expression: "true"}\n      require: {expression: "true"}\n',
      message: /needs exactly one of .* \(found deny, require\)/,
      line: 6,
      col: 7,
    },
    {
      name: 'duplicate rule name',
      spec: '  rules:\n    - name: r\n      deny: {expression: "true"}\n    - name: r\n      deny: {expression: "false"}\n',
      message: /duplicate rule name "r"/,
      line: 8,
      col: 13,
    },
    { name: 'bad status', spec: '  rules:\n    - name: r\n      deny: {expression: "true", status: 200}\n', message: /status must be at least 400/, line: 7, col: 42 },
    { name: 'bad mode', spec: '  mode: enforcing\n  rules:\n    - name: r\n      deny: {expression: "true"}\n', message: /"enforcing" is not one of enforce, dryRun; did you mean 'enforce'\?/, line: 5, col: 9 },
    {
      name: 'unknown redaction detector',
      spec: '  rules:\n    - name: r\n      redact: {detectors: [emial], action: mask}\n',
      message: /unknown detector "emial"; did you mean 'email'\?/,
      line: 7,
      col: 28,
    },
    {
      name: 'custom detector regex that is not RE2',
      spec: "  detectors:\n    - {name: ticket, regex: '(?<=T)[0-9]+'}\n  rules:\n    - name: r\n      redact: {detectors: [ticket], action: mask}\n",
      message: /custom detector "ticket": invalid RE2 regex/,
      line: 6,
      col: 29,
    },
    {
      name: 'custom detector shadowing a built-in',
      spec: "  detectors:\n    - {name: email, keywords: [x]}\n  rules:\n    - name: r\n      redact: {detectors: [email], action: mask}\n",
      message: /"email" is a built-in detector or group/,
      line: 6,
      col: 14,
    },
    { name: 'budget without limit', spec: '  rules:\n    - name: r\n      budget: {scope: key, limit: {}, window: day}\n', message: /set at least one of usd/, line: 7, col: 35 },
    {
      name: 'budget with unknown time zone',
      spec: '  rules:\n    - name: r\n      budget: {scope: key, limit: {usd: 1}, window: day, timeZone: Mars/Olympus}\n',
      message: /unknown time zone "Mars\/Olympus"/,
      line: 7,
      col: 68,
    },
    { name: 'budget with bad window', spec: '  rules:\n    - name: r\n      budget: {scope: key, limit: {usd: 1}, window: week}\n', message: /"week" is not one of minute, hour, day, month/, line: 7, col: 53 },
    {
      name: 'scopeExpression without custom scope',
      spec: "  rules:\n    - name: r\n      rateLimit: {scope: key, scopeExpression: \"'x'\", rpm: 1}\n",
      message: /scopeExpression is only used with scope: custom/,
      line: 7,
      col: 48,
    },
    {
      name: 'custom scope expression must be a string',
      spec: '  rules:\n    - name: r\n      rateLimit: {scope: custom, scopeExpression: "request.tokenEstimate", rpm: 1}\n',
      message: /must evaluate to string, but it has type int/,
      line: 7,
      col: 51,
    },
    { name: 'transform setting the model', spec: '  rules:\n    - name: r\n      transform: {set: {model: gpt-4o}}\n', message: /a transform may not set "model"/, line: 7, col: 32 },
    { name: 'label with a bad name', spec: "  rules:\n    - name: r\n      label: {'bad-name': request.model}\n", message: /label name "bad-name"/, line: 7, col: 27 },
    { name: 'no rules', spec: '  rules: []\n', message: /spec\.rules must not be empty/, line: 5, col: 10 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = loadErrors(policyDocs(c.spec));
      const e = err.errors.find((x) => c.message.test(x.message));
      assert.ok(e, `no error matching ${c.message} in:\n${err.message}`);
      assert.deepEqual([e.pos?.line, e.pos?.col], [c.line, c.col], e.message);
    });
  }

  it('lists every problem of every document in one error', () => {
    const a = policyDocs('  rules:\n    - name: a\n      deny: {expression: "nope == 1"}\n    - name: b\n      require: {expression: "request.model"}\n', 'a.yaml');
    const b = parseDocuments('b.yaml', 'apiVersion: tollgate.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: c\n      deny: {expression: "true"}\n');
    const err = loadErrors([...a, ...b]);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 3, err.message);
    assert.match(lines[0]!, /^a\.yaml:7:26: .*unknown variable 'nope'/);
    assert.match(lines[1]!, /^a\.yaml:9:29: .*must evaluate to bool/);
    assert.match(lines[2]!, /^b\.yaml:3:18: duplicate policy name "p" \(first defined at a\.yaml:3:18\)/);
  });

  it('ignores documents of other kinds', () => {
    const docs = parseDocuments('t.yaml', 'apiVersion: tollgate.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: t}\nspec: {cases: []}\n');
    assert.deepEqual(compilePolicies(docs).policies, []);
  });
});
