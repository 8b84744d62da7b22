// Evidence of what redaction did: counts, actions and locations — never the values.

import { GatewayError } from '../errors.ts';
import type { RedactionAction } from './types.ts';

export interface RedactionFinding {
  /** Detector that named the span (built-in or custom name). */
  detector: string;
  /** What was done to it. */
  action: RedactionAction;
  /** RedactionRule.source of the rule that chose the action. */
  rule: string;
  /**
   * Where: a JSON path into the client request (`messages[2].content[0].text`; `[json]` steps into a string that
   * holds JSON, e.g. `messages[1].tool_calls[0].function.arguments[json].card`; `[#key3]` is the 4th key of an
   * object, when the key itself matched), or the output channel name on the response path.
   */
  path: string;
  /** UTF-16 offsets of the span in that (original) string, or in the output channel's text. */
  start: number;
  end: number;
}

export interface RedactionReport {
  /** Number of redacted spans. */
  total: number;
  /** Spans per detector. */
  counts: Record<string, number>;
  /** Spans per action taken. */
  actions: Partial<Record<RedactionAction, number>>;
  /** Exact spans per (detector, action). */
  tally: { detector: string; action: RedactionAction; count: number }[];
  /** Individual findings, the first MAX_REPORTED_FINDINGS of them. */
  findings: RedactionFinding[];
  /** True when findings[] was cut short (counts stay exact). */
  truncated: boolean;
  /** Detectors whose rule blocked the request ([] when not blocked). */
  blocked: string[];
}

export const MAX_REPORTED_FINDINGS = 1000;

export class ReportBuilder {
  private total = 0;
  private readonly counts: Record<string, number> = {};
  private readonly actions: Partial<Record<RedactionAction, number>> = {};
  private readonly findings: RedactionFinding[] = [];
  private readonly tally = new Map<string, { detector: string; action: RedactionAction; count: number }>();
  private truncated = false;
  readonly blocked: string[] = [];
  /** First path where a blocking detector matched (for the error's `param`). */
  firstBlockedPath: string | undefined;

  add(f: RedactionFinding): void {
    this.total++;
    this.counts[f.detector] = (this.counts[f.detector] ?? 0) + 1;
    this.actions[f.action] = (this.actions[f.action] ?? 0) + 1;
    const k = `${f.detector}\u0000${f.action}`;
    const t = this.tally.get(k);
    if (t === undefined) this.tally.set(k, { detector: f.detector, action: f.action, count: 1 });
    else t.count++;
    if (this.findings.length < MAX_REPORTED_FINDINGS) this.findings.push(f);
    else this.truncated = true;
    if (f.action === 'block') {
      if (!this.blocked.includes(f.detector)) this.blocked.push(f.detector);
      this.firstBlockedPath ??= f.path;
    }
  }

  get size(): number {
    return this.total;
  }

  build(): RedactionReport {
    return {
      total: this.total,
      counts: { ...this.counts },
      actions: { ...this.actions },
      tally: [...this.tally.values()].map((t) => ({ ...t })),
      findings: [...this.findings],
      truncated: this.truncated,
      blocked: [...this.blocked],
    };
  }
}

export function emptyReport(): RedactionReport {
  return { total: 0, counts: {}, actions: {}, tally: [], findings: [], truncated: false, blocked: [] };
}

/** The 403 a `block` rule produces. Names the detectors, never the values; carries the report for lineage. */
export class RedactionBlockedError extends GatewayError {
  readonly report: RedactionReport;

  constructor(report: RedactionReport, param: string | undefined) {
    super('permission', `request blocked: contains ${report.blocked.join(', ')}`, { code: 'pii_blocked', param });
    this.name = 'RedactionBlockedError';
    this.report = report;
  }
}
