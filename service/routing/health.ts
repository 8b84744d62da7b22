// Passive health: outlier detection from what the response path observes (Envoy-style
// consecutive-failure ejection, plus a circuit-breaker half-open trial), and EWMA latency /
// time-to-first-token / throughput per deployment for the `lowest-latency` strategy and
// `provider.sort`. One HealthTracker per process, shared by all requests; synchronous, O(1).
//
// States:
//   healthy   — routable.
//   ejected   — after `consecutiveFailures` failures in a row (5xx, 408, 429, status 0, timeout)
//               for baseEjectionMs × 2^(ejections−1), capped at maxEjectionMs. A 429 carrying
//               retry-after ejects for exactly that long (capped at maxRetryAfterMs) and is a
//               "hard" ejection (the provider told us not to come back yet).
//   half-open — cool-down over: the next request routed to it as primary claims the single trial
//               (claimTrial); while the trial is in flight (≤ trialTimeoutMs) others skip it.
//               Trial success → healthy; failure → ejected again with a longer cool-down.
// The ejection multiplier resets after a full maxEjectionMs of health following a recovery.
import type { HealthObservation } from './types.ts';

export interface HealthOptions {
  /** Failures in a row that eject a deployment. Default 3. */
  consecutiveFailures?: number;
  /** First ejection length. Default 30 s. */
  baseEjectionMs?: number;
  /** Cap on the exponential ejection length. Default 300 s. */
  maxEjectionMs?: number;
  /** Cap on a retry-after driven ejection. Default 600 s. */
  maxRetryAfterMs?: number;
  /** How long a claimed half-open trial blocks other requests if no observation arrives. Default 120 s. */
  trialTimeoutMs?: number;
  /** EWMA weight of a new sample, 0 < α ≤ 1. Default 0.3. */
  ewmaAlpha?: number;
  now?: () => number;
  /** Called on state changes (ejected / recovered), e.g. for metrics and logs. */
  onTransition?: (t: HealthTransition) => void;
}

export interface HealthTransition {
  deployment: string;
  to: 'ejected' | 'healthy';
  /** Why (for ejections): e.g. `3 consecutive failures (last: 503)`. */
  reason: string;
  /** For ejections: epoch ms when routing may try it again. */
  until?: number;
}

export type Availability =
  | { kind: 'healthy' }
  /** Cool-down over; route to it and claim the trial if it becomes primary. */
  | { kind: 'trial' }
  | { kind: 'ejected'; until: number; hard: boolean; reason: string };

export interface LatencyStats {
  latencyMs?: number;
  ttftMs?: number;
  /** Output tokens per second after the first token. */
  tokensPerSec?: number;
}

export interface DeploymentHealthView extends LatencyStats {
  state: 'healthy' | 'ejected' | 'half-open';
  consecutiveFailures: number;
  ejections: number;
  ejectedUntil?: number;
  reason?: string;
}

interface Entry {
  consecutive: number;
  /** Ejections since the last reset (drives the exponential cool-down). */
  ejections: number;
  ejectedUntil: number; // 0 = not ejected
  hard: boolean;
  reason: string;
  trialUntil: number; // 0 = no trial in flight
  recoveredAt: number;
  latency: number | undefined;
  ttft: number | undefined;
  tps: number | undefined;
}

const ok = { kind: 'healthy' } as const;
const trial = { kind: 'trial' } as const;

export function isFailure(o: HealthObservation): boolean {
  return o.timedOut === true || o.status === 0 || o.status === 408 || o.status === 429 || o.status >= 500;
}

/**
 * `retry-after` header value (delta-seconds or HTTP-date) → ms from now, or undefined when absent
 * or unparseable. Also accepts OpenAI's `retry-after-ms`-style plain milliseconds via `msValue`.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number, msValue?: string): number | undefined {
  if (msValue !== undefined && /^\d+(\.\d+)?$/.test(msValue.trim())) return Math.ceil(Number(msValue.trim()));
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - nowMs);
}

export class HealthTracker {
  readonly now: () => number;
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly trialTimeoutMs: number;
  private readonly alpha: number;
  private readonly onTransition: ((t: HealthTransition) => void) | undefined;
  private readonly entries = new Map<string, Entry>();

  constructor(opts: HealthOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.threshold = Math.max(1, Math.floor(opts.consecutiveFailures ?? 3));
    this.baseMs = opts.baseEjectionMs ?? 30_000;
    this.maxMs = Math.max(this.baseMs, opts.maxEjectionMs ?? 300_000);
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 600_000;
    this.trialTimeoutMs = opts.trialTimeoutMs ?? 120_000;
    const a = opts.ewmaAlpha ?? 0.3;
    this.alpha = a > 0 && a <= 1 ? a : 0.3;
    this.onTransition = opts.onTransition;
  }

  /** Record the outcome of one upstream attempt (call it for every attempt, including retries). */
  observe(deploymentId: string, o: HealthObservation): void {
    const now = this.now();
    const e = this.entry(deploymentId);
    const failure = isFailure(o);

    // Latency only from attempts that tell us about speed: successes, and timeouts (a lower bound).
    if ((!failure || o.timedOut) && Number.isFinite(o.latencyMs) && o.latencyMs >= 0) {
      e.latency = this.ewma(e.latency, o.latencyMs);
      if (!failure && o.ttftMs !== undefined && Number.isFinite(o.ttftMs) && o.ttftMs >= 0) {
        e.ttft = this.ewma(e.ttft, o.ttftMs);
        const genMs = o.latencyMs - o.ttftMs;
        if (o.outputTokens !== undefined && o.outputTokens > 0 && genMs > 0) {
          e.tps = this.ewma(e.tps, (o.outputTokens * 1000) / genMs);
        }
      }
    }

    if (!failure) {
      e.consecutive = 0;
      e.trialUntil = 0;
      if (e.ejectedUntil !== 0) {
        // Trial success (or an in-flight/panic-routed request succeeded): evidence it works.
        e.ejectedUntil = 0;
        e.hard = false;
        e.reason = '';
        e.recoveredAt = now;
        this.onTransition?.({ deployment: deploymentId, to: 'healthy', reason: `success (${o.status})` });
      } else if (e.ejections > 0 && now - e.recoveredAt >= this.maxMs) {
        e.ejections = 0;
      }
      return;
    }

    const what = o.timedOut ? 'timeout' : o.status === 0 ? 'no response' : String(o.status);
    if (o.status === 429 && o.retryAfterMs !== undefined && o.retryAfterMs > 0) {
      const until = now + Math.min(o.retryAfterMs, this.maxRetryAfterMs);
      e.consecutive += 1;
      if (until > e.ejectedUntil) {
        e.ejectedUntil = until;
        e.hard = true;
        e.reason = `rate limited by the provider (429, retry-after ${Math.ceil(o.retryAfterMs / 1000)}s)`;
        e.trialUntil = 0;
        this.onTransition?.({ deployment: deploymentId, to: 'ejected', reason: e.reason, until });
      }
      return;
    }

    const halfOpen = e.ejectedUntil !== 0 && now >= e.ejectedUntil;
    if (e.ejectedUntil !== 0 && !halfOpen) {
      // Already ejected: late results of requests sent before the ejection do not extend it.
      e.consecutive += 1;
      return;
    }
    e.consecutive += 1;
    if (halfOpen || e.consecutive >= this.threshold) {
      e.ejections += 1;
      const ms = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(30, e.ejections - 1));
      e.ejectedUntil = now + ms;
      e.hard = false;
      e.trialUntil = 0;
      e.reason = halfOpen
        ? `half-open trial failed (${what})`
        : `${e.consecutive} consecutive failures (last: ${what})`;
      this.onTransition?.({ deployment: deploymentId, to: 'ejected', reason: e.reason, until: e.ejectedUntil });
    }
  }

  /** Routing view of one deployment right now. */
  availability(deploymentId: string): Availability {
    const e = this.entries.get(deploymentId);
    if (!e || e.ejectedUntil === 0) return ok;
    const now = this.now();
    if (now < e.ejectedUntil) return { kind: 'ejected', until: e.ejectedUntil, hard: e.hard, reason: e.reason };
    if (e.trialUntil !== 0 && now < e.trialUntil) {
      return { kind: 'ejected', until: e.trialUntil, hard: false, reason: `half-open trial in flight (${e.reason})` };
    }
    return trial;
  }

  /** Claim the half-open trial; false if it is not half-open or someone else holds the trial. */
  claimTrial(deploymentId: string): boolean {
    const e = this.entries.get(deploymentId);
    if (!e || e.ejectedUntil === 0) return false;
    const now = this.now();
    if (now < e.ejectedUntil || (e.trialUntil !== 0 && now < e.trialUntil)) return false;
    e.trialUntil = now + this.trialTimeoutMs;
    return true;
  }

  /**
   * Give back a trial claimed by route() when the request never reached the upstream (denied by a
   * budget, client went away before dispatch), so the next request can take it at once.
   */
  releaseTrial(deploymentId: string): void {
    const e = this.entries.get(deploymentId);
    if (e) e.trialUntil = 0;
  }

  latency(deploymentId: string): LatencyStats | undefined {
    const e = this.entries.get(deploymentId);
    if (!e) return undefined;
    return { latencyMs: e.latency, ttftMs: e.ttft, tokensPerSec: e.tps };
  }

  /** Per-deployment state for debugging endpoints and metrics. */
  snapshot(): Record<string, DeploymentHealthView> {
    const now = this.now();
    const out: Record<string, DeploymentHealthView> = {};
    for (const [id, e] of this.entries) {
      const state = e.ejectedUntil === 0 ? 'healthy' : now < e.ejectedUntil ? 'ejected' : 'half-open';
      out[id] = {
        state,
        consecutiveFailures: e.consecutive,
        ejections: e.ejections,
        ejectedUntil: e.ejectedUntil || undefined,
        reason: e.reason || undefined,
        latencyMs: e.latency,
        ttftMs: e.ttft,
        tokensPerSec: e.tps,
      };
    }
    return out;
  }

  /** Forget deployments no longer in the config (call after a reload). */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.entries.keys()) if (!keep.has(id)) this.entries.delete(id);
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = {
        consecutive: 0,
        ejections: 0,
        ejectedUntil: 0,
        hard: false,
        reason: '',
        trialUntil: 0,
        recoveredAt: 0,
        latency: undefined,
        ttft: undefined,
        tps: undefined,
      };
      this.entries.set(id, e);
    }
    return e;
  }

  private ewma(prev: number | undefined, sample: number): number {
    return prev === undefined ? sample : prev + this.alpha * (sample - prev);
  }
}
