// Evaluates the mcp* rules for one MCP JSON-RPC message (docs/mcp.md). Same bundle, same
// matchConditions, variables, modes and onError handling as LLM requests; LLM rule kinds are not
// judged here, and mcp* kinds are never judged for LLM requests.
//
// Order: each policy's matchConditions; phase 1, access (mcpTools, mcpDeny, mcpRequire) of every
// matching policy; phase 2, mcpRedact, mcpRateLimit, mcpLabel. The first enforce-mode denial stops.
import { performance } from 'node:perf_hooks';
import { baseActivation } from './context.ts';
import type { CExpr, CPolicy, CRule, DenyLike } from './compile.ts';
import { decisionId, failClosed, PolicyState } from './evaluate.ts';
import { globMatch } from './glob.ts';
import type { Denial, McpContext, McpDecision, PolicyInput, RuleOutcome, RuleRecord } from './types.ts';

type McpInput = PolicyInput & { mcp: McpContext };

/** Methods a tool rule (mcpTools, mcpRateLimit) applies to: calling a tool. */
const TOOL_METHODS = new Set(['tools/call']);

/**
 * Whether `tool` on `server` passes an mcpTools rule. A pattern with a `/` is matched against
 * `<server>/<tool>`, any other against the tool name alone.
 */
export function toolAllowed(rule: { allow?: string[]; deny?: string[] }, server: string, tool: string): boolean {
  const full = `${server}/${tool}`;
  const m = (g: string): boolean => globMatch(g.includes('/') ? full : tool, g);
  if (rule.deny?.some(m)) return false;
  if (rule.allow && !rule.allow.some(m)) return false;
  return true;
}

function readsArguments(p: CPolicy, e: CExpr | undefined): boolean {
  if (!e) return false;
  const exprs = [e, ...e.needs.map((i) => p.variables[i]?.expr).filter((x): x is CExpr => x !== undefined)];
  return exprs.some((x) => x.compiled.roots.has('mcp.arguments') || x.compiled.roots.has('mcp.*'));
}

function us(t0: number): number {
  return Math.round((performance.now() - t0) * 1000 * 10) / 10;
}

export function createMcpEvaluator(
  policies: readonly CPolicy[],
  revision: string,
  reportError: (r: RuleRecord) => void,
  clock: () => Date,
): (input: McpInput, opts?: { listing?: boolean }) => McpDecision {
  const mcpPolicies = policies.filter((p) => p.rules.some((r) => r.kind.startsWith('mcp')));

  function fresh(): McpDecision {
    return { id: decisionId(), revision, rules: [], redactions: [], customDetectors: [], budgets: [], labels: {}, dryRunDenials: [] };
  }

  return function evaluateMcp(input, opts = {}) {
    if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) input = { ...input, now: clock() };
    try {
      return run(input, opts.listing === true);
    } catch (e) {
      const d = fresh();
      failClosed(d, 'mcpDeny', e, 'denied', reportError);
      return d;
    }
  };

  function run(input: McpInput, listing: boolean): McpDecision {
    const d = fresh();
    const act = baseActivation(input, false);
    let last = performance.now();
    const record = (state: PolicyState, rule: string, kind: RuleRecord['kind'], outcome: RuleOutcome, message?: string): void => {
      const rec: RuleRecord = { policy: state.policy.name, rule, kind, outcome, durationUs: us(last) };
      last = performance.now();
      if (message !== undefined) rec.message = message;
      d.rules.push(rec);
      if (outcome === 'error') reportError(rec);
    };
    const deny = (ruleId: string, mode: 'enforce' | 'dryRun', denial: Omit<Denial, 'rule'>): boolean => {
      if (mode === 'dryRun') {
        d.dryRunDenials.push({ rule: ruleId, message: denial.message });
        return false;
      }
      d.denied = { ...denial, rule: ruleId };
      return true;
    };
    const failed = (state: PolicyState, rule: { name: string; id: string; kind: RuleRecord['kind']; mode: 'enforce' | 'dryRun'; onError: 'deny' | 'skip' }, error: string): boolean => {
      record(state, rule.name, rule.kind, 'error', error);
      if (rule.onError === 'skip') return false;
      return deny(rule.id, rule.mode, { status: 403, reason: 'policy_error', message: `denied: policy "${state.policy.name}" rule "${rule.name}" could not be evaluated` });
    };

    const active: PolicyState[] = [];
    for (const policy of mcpPolicies) {
      const state = new PolicyState(policy, act);
      let applies = true;
      for (const mc of policy.matchConditions) {
        const r = state.bool(mc.expr);
        const name = `matchConditions/${mc.name}`;
        if (!r.ok) {
          applies = false;
          if (failed(state, { name, id: `${policy.name}/${name}`, kind: 'matchCondition', mode: policy.mode, onError: policy.onError }, r.error)) return d;
          break;
        }
        if (!r.value) {
          record(state, name, 'matchCondition', 'not-matched');
          applies = false;
          break;
        }
      }
      if (applies) active.push(state);
    }

    const guard = (state: PolicyState, rule: CRule): { go: boolean; stop: boolean } => {
      if (!rule.when) return { go: true, stop: false };
      if (listing && readsArguments(state.policy, rule.when)) {
        record(state, rule.name, rule.kind, 'skipped', 'reads mcp.arguments; a tool listing has none');
        return { go: false, stop: false };
      }
      const r = state.bool(rule.when);
      if (!r.ok) return { go: false, stop: failed(state, rule, `when: ${r.error}`) };
      if (!r.value) record(state, rule.name, rule.kind, 'not-matched');
      return { go: r.value, stop: false };
    };
    const message = (state: PolicyState, rule: CRule & DenyLike, fallback: string): string => {
      if (rule.messageExpr) {
        const m = state.string(rule.messageExpr);
        if (m.ok && m.value !== '') return m.value;
      }
      return rule.message ?? fallback;
    };
    const isTool = TOOL_METHODS.has(input.mcp.method);

    // Phase 1: access.
    for (const state of active) {
      for (const rule of state.policy.rules) {
        if (rule.kind !== 'mcpTools' && rule.kind !== 'mcpDeny' && rule.kind !== 'mcpRequire') continue;
        if (rule.kind === 'mcpTools' && !isTool) continue;
        if (listing && rule.kind !== 'mcpTools' && readsArguments(state.policy, rule.expr)) {
          record(state, rule.name, rule.kind, 'skipped', 'reads mcp.arguments; a tool listing has none');
          continue;
        }
        const g = guard(state, rule);
        if (g.stop) return d;
        if (!g.go) continue;
        let violated: boolean;
        let fallback: string;
        if (rule.kind === 'mcpTools') {
          violated = !toolAllowed(rule, input.mcp.server, input.mcp.tool);
          fallback = `tool "${input.mcp.tool}" on MCP server "${input.mcp.server}" is not allowed by policy "${state.policy.name}" (rule "${rule.name}")`;
        } else {
          const r = state.bool(rule.expr);
          if (!r.ok) {
            if (failed(state, rule, r.error)) return d;
            continue;
          }
          violated = rule.kind === 'mcpDeny' ? r.value : !r.value;
          fallback = `${input.mcp.method}${input.mcp.tool ? ` "${input.mcp.tool}"` : ''} denied by policy "${state.policy.name}" (rule "${rule.name}")`;
        }
        if (!violated) {
          record(state, rule.name, rule.kind, 'allow');
          continue;
        }
        const m = message(state, rule, fallback);
        record(state, rule.name, rule.kind, rule.mode === 'dryRun' ? 'would-deny' : 'deny', m);
        if (deny(rule.id, rule.mode, { status: rule.status, reason: rule.reason, message: m })) return d;
      }
    }
    if (listing) return d;

    // Phase 2: redaction, call-count limits, labels.
    for (const state of active) {
      for (const rule of state.policy.rules) {
        if (rule.kind !== 'mcpRedact' && rule.kind !== 'mcpRateLimit' && rule.kind !== 'mcpLabel') continue;
        if (rule.kind === 'mcpRateLimit' && !isTool) continue;
        const g = guard(state, rule);
        if (g.stop) return d;
        if (!g.go) continue;
        const dry = rule.mode === 'dryRun';
        if (rule.kind === 'mcpRedact') {
          if (dry) {
            record(state, rule.name, rule.kind, 'skipped', `dry run: would ${rule.action} ${rule.detectors.join(', ')}`);
            continue;
          }
          d.redactions.push({ source: rule.id, detectors: rule.detectors, action: rule.action, responses: rule.responses });
          for (const c of rule.custom) if (!d.customDetectors.some((x) => x.name === c.name)) d.customDetectors.push(c);
          record(state, rule.name, rule.kind, 'applied');
        } else if (rule.kind === 'mcpRateLimit') {
          const k = scope(rule, state, input);
          if (!k.ok) {
            if (failed(state, rule, k.error)) return d;
            continue;
          }
          const key = `mcp:${input.mcp.server}${rule.perTool ? `/${input.mcp.tool}` : ''}|${k.value}`;
          // A dry-run limit is counted and reported but never refuses.
          d.budgets.push({ name: rule.id, scope: rule.scope, scopeKey: key, limit: { requests: rule.calls }, window: { ...rule.window }, enforcement: dry ? 'soft' : 'hard', onStoreError: rule.onStoreError });
          record(state, rule.name, rule.kind, 'applied', dry ? `${key} (dry run: soft)` : key);
        } else {
          let errored = false;
          for (const [key, e] of rule.labels) {
            const r = state.string(e);
            if (r.ok) d.labels[key] = r.value;
            else {
              errored = true;
              if (failed(state, rule, `label ${key}: ${r.error}`)) return d;
            }
          }
          if (!errored) record(state, rule.name, rule.kind, 'applied');
        }
      }
    }
    return d;
  }
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

function scope(rule: Extract<CRule, { kind: 'mcpRateLimit' }>, state: PolicyState, input: McpInput): Result<string> {
  const p = input.principal;
  const need = (v: string, what: string, key: string): Result<string> => (v ? { ok: true, value: key } : { ok: false, error: `scope ${rule.scope}: the principal has no ${what}` });
  switch (rule.scope) {
    case 'key':
      return need(p.keyId, 'virtual key id', `key:${p.keyId}`);
    case 'user':
      return need(p.user, 'user', `user:${p.tenant}/${p.user}`);
    case 'team':
      return need(p.team, 'team', `team:${p.tenant}/${p.team}`);
    case 'tenant':
      return need(p.tenant, 'tenant', `tenant:${p.tenant}`);
    case 'model':
      return { ok: false, error: 'scope model: MCP calls have no model' };
    case 'custom': {
      if (!rule.scopeExpr) return { ok: false, error: 'scope custom without scopeExpression' };
      const r = state.string(rule.scopeExpr);
      if (!r.ok) return r;
      return r.value === '' ? { ok: false, error: 'scopeExpression produced an empty string' } : { ok: true, value: `custom:${r.value}` };
    }
  }
}
