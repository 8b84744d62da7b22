// One JSON-RPC message of an MCP request: its policy decision, argument redaction, call-count
// admission, and its lineage record (counts and rule ids, never argument or result values).
import { randomBytes, randomUUID } from 'node:crypto';
import { newRequestId } from '../security/random-ids.ts';
import { GatewayError } from '../errors.ts';
import type { EndReason } from '../extproc/processor.ts';
import type { Services, Snapshot } from '../gateway/context.ts';
import { deniedBudgetEffects } from '../gateway/adapters.ts';
import { publishOutcome } from '../gateway/outcome.ts';
import { principalContext } from '../gateway/policy-input.ts';
import type { Admission, RedactionResult } from '../gateway/ports.ts';
import type { Principal } from '../identity/principal.ts';
import { ruleResult, type BudgetEffect, type LineageRecord, type Outcome, type RedactionCount } from '../lineage/record.ts';
import { buildRequestInput } from '../policy/index.ts';
import type { McpContext, McpDecision, PolicyInput } from '../policy/types.ts';
import { LimitExceededError } from '../budget/manager.ts';
import { RedactionBlockedError, toRedactionCounts } from '../redaction/index.ts';
import { argumentsOf, RPC, toolOf, type JsonRpcId, type JsonRpcMessage, type RpcError } from './jsonrpc.ts';

/** What every call of one HTTP request shares. */
export interface CallContext {
  svc: Services;
  snap: Snapshot;
  server: string;
  principal: Principal | undefined;
  headers: ReadonlyMap<string, string>;
  httpMethod: string;
  endpoint: string;
  httpRequestId: string;
  clientRequestId: string | undefined;
  sessionId: () => string | undefined;
  parentRequestId: string | undefined;
}

type Message = Extract<JsonRpcMessage, { kind: 'request' | 'notification' }>;

const ZERO = { usd: 0, inputTokens: 0, outputTokens: 0 };

function us(t: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - t) / 10) / 100;
}

export class McpCall {
  readonly method: string;
  readonly tool: string;
  /** The JSON-RPC id as a string (requests only). */
  readonly jsonrpcId: string | undefined;
  readonly rawId: JsonRpcId | undefined;
  /** Not a JSON-RPC message at all (invalid or unparsable). */
  readonly invalid: boolean;
  refusal: RpcError | undefined;
  argumentsChanged = false;
  /** Result redaction (mcpRedact with `results: true`). */
  output: RedactionResult['output'];
  private readonly ctx: CallContext;
  private readonly msg: Message | undefined;
  private readonly batchSize: number | undefined;
  private readonly requestBytes: number;
  private readonly recordId = randomUUID();
  private readonly started: Date;
  private readonly t0 = process.hrtime.bigint();
  private sentAt: bigint | undefined;
  private decision: McpDecision | undefined;
  private admission: Admission | undefined;
  private deniedBudgets: BudgetEffect[] = [];
  private redactions: RedactionCount[] = [];
  private policyUs = 0;
  private redactionUs = 0;
  private outcome: Outcome | undefined;
  private status = 0;
  private upstreamStatus = 0;
  private errorClass: string | undefined;
  private errorCode: string | undefined;
  private rpcErrorCode: number | undefined;
  private hiddenTools: number | undefined;
  private done = false;
  private readonly visible = new Map<string, boolean>();

  constructor(ctx: CallContext, msg: Message | undefined, batchSize: number | undefined, requestBytes: number) {
    this.ctx = ctx;
    this.msg = msg;
    this.batchSize = batchSize;
    this.requestBytes = requestBytes;
    this.started = ctx.svc.now();
    this.method = msg?.method ?? '';
    this.tool = msg ? toolOf(msg) : '';
    this.invalid = msg === undefined;
    if (msg?.kind === 'request') {
      this.rawId = msg.id;
      this.jsonrpcId = String(msg.id);
    }
  }

  private input(mcp: McpContext): PolicyInput & { mcp: McpContext } {
    const c = this.ctx;
    const request = buildRequestInput({ method: c.httpMethod, path: c.endpoint, api: 'openai', headers: Object.fromEntries(c.headers), body: {}, size: this.requestBytes });
    return { request, ...principalContext(c.snap, c.principal!), mcp, now: c.svc.now() };
  }

  /** Policy, argument redaction and call-count admission; sets `refusal` when the call may not go on. */
  async judge(): Promise<void> {
    const c = this.ctx;
    const m = this.msg!;
    const args = argumentsOf(m);
    const tp = process.hrtime.bigint();
    const d = c.snap.policy.evaluateMcp(this.input({ server: c.server, method: m.method, tool: this.tool, arguments: args, sessionId: c.sessionId() ?? '' }));
    this.policyUs = us(tp);
    this.decision = d;
    if (d.denied) {
      this.refuse({ code: RPC.POLICY_DENIED, message: d.denied.message, data: { reason: d.denied.reason, rule: d.denied.rule } }, 'denied', 200, 'permission', d.denied.reason);
      return;
    }
    if (d.redactions.length) {
      const tr = process.hrtime.bigint();
      const wrapper: Record<string, unknown> = { arguments: args };
      try {
        const r = c.svc.redaction.redactRequest(wrapper, d.redactions, d.customDetectors, c.principal!.tenant);
        this.redactions = r.report;
        this.output = r.output;
        if (r.report.some((x) => x.count > 0) && m.params && wrapper.arguments !== args) {
          m.params.arguments = wrapper.arguments;
          this.argumentsChanged = true;
        }
      } catch (err) {
        if (err instanceof RedactionBlockedError) {
          this.redactions = toRedactionCounts(err.report, 'request');
          this.refuse({ code: RPC.POLICY_DENIED, message: err.message, data: { reason: err.code } }, 'denied', 200, 'permission', err.code);
          return;
        }
        throw err;
      } finally {
        this.redactionUs = us(tr);
      }
    }
    if (d.budgets.length) {
      try {
        this.admission = await c.svc.budgets.admit(newRequestId(), d.budgets, [], ZERO, c.principal!.tenant);
      } catch (err) {
        const e = err instanceof GatewayError ? err : new GatewayError('internal', 'budget admission failed');
        this.deniedBudgets = deniedBudgetEffects(e);
        const limited = e instanceof LimitExceededError;
        const retry = Number(e.headers['retry-after']);
        this.refuse(
          { code: limited ? RPC.RATE_LIMITED : RPC.GATEWAY_ERROR, message: e.message, data: { reason: e.code, ...(e.headers['x-tollgate-budget-name'] ? { rule: e.headers['x-tollgate-budget-name'] } : {}), ...(Number.isFinite(retry) ? { retryAfterSeconds: retry } : {}) } },
          limited ? 'rate_limited' : 'gateway_error',
          200,
          e.kind,
          e.code,
        );
      }
    }
  }

  /** Whether a tools/list answer shows `name` to this caller (mcpTools / access rules, arguments unknown). */
  toolVisible(name: string): boolean {
    let v = this.visible.get(name);
    if (v === undefined) {
      const c = this.ctx;
      const t = process.hrtime.bigint();
      v = !c.snap.policy.evaluateMcp(this.input({ server: c.server, method: 'tools/call', tool: name, arguments: {}, sessionId: c.sessionId() ?? '' }), { listing: true }).denied;
      this.policyUs += us(t);
      this.visible.set(name, v);
    }
    return v;
  }

  /** What was decided (for `tollgate explain`; counts and rule ids, never values). */
  inspect(): Record<string, unknown> {
    const d = this.decision;
    return {
      method: this.method || undefined,
      tool: this.tool || undefined,
      jsonrpcId: this.jsonrpcId,
      decision: d
        ? { id: d.id, denied: d.denied, rules: d.rules, labels: d.labels, dryRunDenials: d.dryRunDenials, redactionRules: d.redactions, budgets: d.budgets }
        : undefined,
      refusal: this.refusal,
      redactions: this.redactions,
      argumentsRedacted: this.argumentsChanged,
    };
  }

  refuse(error: RpcError, outcome: Outcome, status: number, errorClass = 'invalid_request', errorCode?: string): void {
    this.refusal = error;
    this.outcome = outcome;
    this.status = status;
    this.errorClass = errorClass;
    this.errorCode = errorCode ?? (error.data?.reason as string | undefined) ?? 'invalid_jsonrpc';
    this.rpcErrorCode = error.code;
  }

  refuseWith(e: GatewayError): void {
    this.refusal = { code: RPC.GATEWAY_ERROR, message: e.message };
    this.outcome = e.kind === 'permission' ? 'denied' : e.kind === 'rate_limit' ? 'rate_limited' : e.status >= 500 ? 'gateway_error' : 'client_error';
    this.status = e.status;
    this.errorClass = e.kind;
    this.errorCode = e.code;
  }

  sent(): void {
    this.sentAt = process.hrtime.bigint();
  }

  upstreamAnswered(status: number): void {
    this.upstreamStatus = status;
  }

  /** The call is over: its answer went by (or it was refused). Idempotent. */
  finish(extra: { rpcErrorCode?: number; hiddenTools?: number } | undefined, endReason?: EndReason, responseBytes?: number): void {
    if (this.done) return;
    this.done = true;
    if (extra?.hiddenTools) this.hiddenTools = extra.hiddenTools;
    if (!this.outcome) {
      const s = this.upstreamStatus;
      this.status = endReason === 'aborted' ? s || 499 : s;
      if (endReason === 'aborted') this.outcome = 'aborted';
      else if (endReason === 'protocol_error' || (endReason === 'rejected' && !s)) this.outcome = 'gateway_error';
      else if (extra?.rpcErrorCode !== undefined) {
        this.rpcErrorCode = extra.rpcErrorCode;
        const clientSide = extra.rpcErrorCode >= -32602 && extra.rpcErrorCode <= -32600 || extra.rpcErrorCode === RPC.PARSE_ERROR;
        this.outcome = clientSide ? 'client_error' : 'provider_error';
        this.errorClass = 'jsonrpc_error';
        this.errorCode = `rpc_${extra.rpcErrorCode}`;
      } else if (s >= 200 && s < 400) this.outcome = 'success';
      else if (s >= 500 || s === 0) this.outcome = 'provider_error';
      else this.outcome = 'client_error';
      if (!this.errorClass && this.outcome !== 'success' && s >= 400) {
        this.errorClass = 'upstream';
        this.errorCode = `http_${s}`;
      }
    }
    this.ctx.svc.finishing.track(this.settleAndRecord(responseBytes));
  }

  /** The HTTP request ended: calls still open end with it. */
  end(reason: EndReason, responseBytes: number, _detail?: string): void {
    this.finish(undefined, reason, responseBytes);
  }

  private async settleAndRecord(responseBytes: number | undefined): Promise<void> {
    let budgets: BudgetEffect[] = this.deniedBudgets;
    if (this.admission) {
      try {
        // A call that reached the server is counted; one that did not is released.
        budgets = await this.ctx.svc.budgets.settle(this.admission, this.sentAt !== undefined ? ZERO : null);
      } catch (err) {
        this.ctx.svc.log.error({ err, requestId: this.recordId }, 'MCP call-count settle failed');
      }
    }
    publishOutcome(this.record(budgets, responseBytes), this.ctx.svc.lineage, this.ctx.svc.consumers, this.ctx.svc.log);
  }

  private record(budgets: BudgetEffect[], responseBytes: number | undefined): LineageRecord {
    const c = this.ctx;
    const p = c.principal;
    const d = this.decision;
    const output = this.output?.report() ?? [];
    return {
      requestId: this.recordId,
      decisionId: d?.id ?? randomBytes(16).toString('hex'),
      startTime: this.started,
      endTime: c.svc.now(),
      principal: p
        ? { keyId: p.keyId || undefined, tenant: p.tenant, team: p.team || undefined, user: p.user || undefined, authMethod: p.authMethod === 'key' ? 'virtual_key' : 'jwt', groups: p.groups.length ? p.groups : undefined }
        : { authMethod: 'none' },
      request: {
        endpoint: c.endpoint,
        method: c.httpMethod || undefined,
        requestBytes: this.batchSize ? undefined : this.requestBytes,
        responseBytes: this.batchSize ? undefined : responseBytes || undefined,
        clientRequestId: c.clientRequestId,
      },
      policy: d
        ? {
            bundleRevision: d.revision,
            rules: d.rules.map((r) => ({ policy: r.policy, rule: r.rule, kind: r.kind, outcome: ruleResult(r.outcome), message: r.message })),
            dryRunDenies: d.dryRunDenials.map((x) => {
              const [policy, ...rest] = x.rule.split('/');
              return { policy: policy ?? x.rule, rule: rest.join('/') || x.rule, message: x.message };
            }),
            labels: Object.keys(d.labels).length ? d.labels : undefined,
          }
        : undefined,
      redactions: [...this.redactions, ...output],
      budgets,
      latency: {
        policyEvalUs: this.policyUs,
        redactionUs: this.redactionUs,
        upstreamTotalMs: this.sentAt ? Math.round(Number(process.hrtime.bigint() - this.sentAt) / 1e3) / 1e3 : undefined,
        totalMs: Math.round(Number(process.hrtime.bigint() - this.t0) / 1e3) / 1e3,
      },
      statusCode: this.status,
      outcome: this.outcome ?? 'gateway_error',
      errorClass: this.errorClass,
      errorCode: this.errorCode,
      gatewayInstance: c.svc.instance,
      mcp: {
        server: c.server || 'unknown',
        method: this.method || undefined,
        tool: this.tool || undefined,
        jsonrpcId: this.jsonrpcId,
        sessionId: c.sessionId(),
        parentRequestId: c.parentRequestId,
        httpRequestId: c.httpRequestId || undefined,
        rpcErrorCode: this.rpcErrorCode,
        hiddenTools: this.hiddenTools,
        batchSize: this.batchSize,
      },
    };
  }
}
