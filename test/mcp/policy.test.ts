// The mcp* rule kinds: load-time checks with positions, evaluation for MCP messages, and isolation
// from LLM requests (an LLM request never evaluates an mcp* rule, an MCP message never an LLM rule).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import { buildRequestInput, type PolicyInput } from '../../service/policy/index.ts';
import type { McpContext } from '../../service/policy/types.ts';
import { compile, loadErrors, policyDocs } from '../policy/helpers.ts';

const now = new Date('2026-01-05T10:00:00Z');

function mcpInput(mcp: Partial<McpContext>, principal: Partial<PolicyInput['principal']> = {}): PolicyInput & { mcp: McpContext } {
  return {
    request: buildRequestInput({ method: 'POST', path: '/mcp/demo', api: 'openai', headers: {}, body: {} }),
    principal: { keyId: 'k1', tenant: 'acme', team: 'research', user: 'alice', groups: [], claims: {}, authMethod: 'key', ...principal },
    tenant: { name: principal.tenant ?? 'acme', attributes: {} },
    team: { name: 'research', attributes: {} },
    mcp: { server: 'demo', method: 'tools/call', tool: 'echo', arguments: {}, sessionId: '', ...mcp },
    now,
  };
}

const SPEC = `  rules:
    - name: no-delete
      mcpTools: {deny: ["delete_*", "other/echo"]}
    - name: small
      mcpRequire:
        expression: "!('n' in mcp.arguments) || double(mcp.arguments.n) < 10.0"
    - name: dry
      mode: dryRun
      mcpDeny: {expression: "mcp.tool == 'echo'", message: would block echo}
    - name: mask
      mcpRedact: {detectors: [email], action: mask, results: true}
    - name: limit
      mcpRateLimit: {scope: team, calls: 5, window: hour, perTool: false}
    - name: lab
      mcpLabel: {tool: mcp.tool}
    - name: llm-deny-all
      deny: {expression: "true", message: LLM requests denied}
`;

describe('mcp* policy rules', () => {
  const bundle = compile(SPEC, { now: () => now });

  it('tool globs: bare patterns match the tool name, `server/tool` patterns the pair', () => {
    assert.equal(bundle.evaluateMcp(mcpInput({ tool: 'delete_repo' })).denied?.rule, 'p/no-delete');
    assert.equal(bundle.evaluateMcp(mcpInput({ tool: 'echo' })).denied, undefined);
    assert.equal(bundle.evaluateMcp(mcpInput({ server: 'other', tool: 'echo' })).denied?.rule, 'p/no-delete');
  });

  it('argument requirements deny calls and are skipped for a listing (no arguments there)', () => {
    const d = bundle.evaluateMcp(mcpInput({ tool: 'calc', arguments: { n: 12 } }));
    assert.equal(d.denied?.rule, 'p/small');
    assert.equal(d.denied?.reason, 'tool_call_denied');
    const listed = bundle.evaluateMcp(mcpInput({ tool: 'calc' }), { listing: true });
    assert.equal(listed.denied, undefined);
    assert.ok(listed.rules.some((r) => r.rule === 'small' && r.outcome === 'skipped'));
  });

  it('dry run records a would-deny; redaction, call counts and labels are attached', () => {
    const d = bundle.evaluateMcp(mcpInput({ tool: 'echo' }));
    assert.deepEqual(d.dryRunDenials, [{ rule: 'p/dry', message: 'would block echo' }]);
    assert.deepEqual(d.redactions, [{ source: 'p/mask', detectors: ['email'], action: 'mask', responses: true }]);
    assert.deepEqual(d.budgets.map((b) => [b.scopeKey, b.limit, b.window]), [['mcp:demo|team:acme/research', { requests: 5 }, { kind: 'hour' }]]);
    assert.deepEqual(d.labels, { tool: 'echo' });
  });

  it('tool rules and call counts only apply to tools/call; access expressions to every method', () => {
    const d = bundle.evaluateMcp(mcpInput({ method: 'tools/list', tool: '' }));
    assert.equal(d.denied, undefined);
    assert.deepEqual(d.budgets, []);
    assert.ok(!d.rules.some((r) => r.rule === 'no-delete'));
  });

  it('LLM rules never judge MCP messages, and mcp* rules never judge LLM requests', () => {
    assert.ok(!bundle.evaluateMcp(mcpInput({})).rules.some((r) => r.rule === 'llm-deny-all'));
    const llm = bundle.evaluate({ ...mcpInput({}), mcp: undefined, request: buildRequestInput({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers: {}, body: { model: 'm', messages: [] } }) });
    assert.equal(llm.denied?.rule, 'p/llm-deny-all');
    assert.ok(!llm.rules.some((r) => r.kind.startsWith('mcp')));
    assert.deepEqual(llm.redactions, []);
  });

  it('load errors name the field and position: unknown field, pseudonymize, model scope, missing calls, bad CEL', () => {
    const e = loadErrors(
      policyDocs(`  rules:
    - name: a
      mcpTools: {allow: [x], denny: [y]}
    - name: b
      mcpRedact: {detectors: [email], action: pseudonymize}
    - name: c
      mcpRateLimit: {scope: model, window: minute}
    - name: d
      mcpRequire: {expression: "mcp.tol == 'x'"}
`),
    );
    const text = e.errors.map((x) => `${x.pos?.line}: ${x.detail}`).join('\n');
    assert.match(text, /^7: .*unknown field 'denny' in an mcpTools rule; did you mean 'deny'\?/m);
    assert.match(text, /^9: .*pseudonymize is not supported for MCP/m);
    assert.match(text, /^11: .*MCP calls have no model/m);
    assert.match(text, /calls is required/);
    assert.match(text, /^13: .*tol/m);
  });
});

describe('McpServer documents', () => {
  it('policies/ declares the demo server on the shipped envoy.yaml cluster', () => {
    const core = buildSnapshot('policies').core;
    const demo = core.mcpServers.get('demo');
    assert.equal(demo?.cluster, 'mcp_demo');
    const envoy = parse(readFileSync('envoy/envoy.yaml', 'utf8')) as { static_resources: { clusters: { name: string }[] } };
    const clusters = new Set(envoy.static_resources.clusters.map((c) => c.name));
    for (const s of core.mcpServers.values()) assert.ok(clusters.has(s.cluster), `envoy/envoy.yaml has cluster ${s.cluster} for McpServer ${s.name}`);
  });
});
