// The upstream stage: one per Envoy retry attempt on a fallback chain cluster. Envoy's upstream
// ext_proc filter opens a new stream for every attempt (design E3), telling us which deployment
// this attempt reached (endpoint metadata, E6) and forwarding the router stage's plan (dynamic
// metadata). The body is the router stage's redacted client-format JSON, copied per attempt (E4);
// this stage translates it for the deployment and injects that provider's credential.
// Stateless across attempts: any replica can serve any attempt.
import { GatewayError, type ClientApi } from '../errors.ts';
import { MutationBuilder } from '../extproc/mutations.ts';
import type {
  BodyOutput,
  EndReason,
  Exchange,
  RequestDecision,
  RequestHeadersInput,
  ResponseHeadersDecision,
} from '../extproc/processor.ts';
import type { AttemptLog } from '../fallback/attempts.ts';
import { DEPLOYMENT_ATTRIBUTE, SERVED_HEADER } from '../fallback/contract.ts';
import { readPlan, type FallbackPlan } from '../fallback/plan.ts';
import type { PlanSealer } from '../fallback/seal.ts';
import { getTranslator, parseClientRequest } from '../providers/index.ts';
import { isFailure, parseRetryAfter, type CatalogEntry, type HealthTracker } from '../routing/index.ts';
import type { Snapshot } from './context.ts';

/**
 * Every request header a translator may set. Attempts share one header map (E4), so attempt n+1
 * must first remove what attempt n's provider needed — above all its credential.
 */
export const PROVIDER_REQUEST_HEADERS = [
  'authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'anthropic-version',
  'anthropic-beta',
  'accept',
  'accept-encoding',
  'content-type',
];
const SIGV4_HEADER = /^x-amz-/;

export interface UpstreamServices {
  snapshot(): Snapshot;
  health: HealthTracker;
  attempts: AttemptLog;
  /** Verifies the router stage's seal on the plan (shared TOLLGATE_PLAN_KEY). */
  plans: PlanSealer;
  /** Counts one attempt this stage handled (status 0 = no answer). */
  countAttempt?(provider: string, status: number): void;
}

export class UpstreamExchange implements Exchange {
  private readonly snap: Snapshot;
  private plan: FallbackPlan | undefined;
  private entry: CatalogEntry | undefined;
  private credential: string | undefined;
  private attempt = 1;
  private headers = new Map<string, string>();
  private sentAt: bigint | undefined;
  private answered = false;

  constructor(private readonly svc: UpstreamServices) {
    this.snap = svc.snapshot();
  }

  clientApi(): ClientApi {
    return this.plan?.api ?? 'openai';
  }

  async requestHeaders(input: RequestHeadersInput): Promise<RequestDecision> {
    this.headers = input.headers;
    // Only the router stage sets x-envoy-attempt-count (include_request_attempt_count); 1 without it.
    const n = Number(input.headers.get('x-envoy-attempt-count') ?? '1');
    this.attempt = Number.isInteger(n) && n >= 1 && n <= 100 ? n : 1;
    const plan = readPlan(input.metadata, this.svc.plans);
    this.plan = plan;
    const id = input.attributes[DEPLOYMENT_ATTRIBUTE];
    if (typeof id !== 'string' || id === '')
      throw new GatewayError(
        'internal',
        `The endpoint Envoy chose in cluster '${plan.cluster}' has no Tollgate deployment metadata (filter_metadata.tollgate.deployment), or the upstream filter does not request the attribute.`,
        { code: 'fallback_endpoint_unlabelled', status: 500 },
      );
    // Fail closed on drift between Envoy's chain and Tollgate's decision: the plan lists only
    // deployments that passed this request's policy route checks (residency, isolation).
    if (!plan.deployments.includes(id))
      throw new GatewayError(
        'unavailable',
        `Envoy sent this attempt to deployment '${id}', which is not allowed for this request (cluster '${plan.cluster}' and Tollgate's fallback chain disagree).`,
        { code: 'fallback_deployment_not_allowed' },
      );
    const entry = this.snap.catalog.resolve(plan.model)?.entries.find((e) => e.deployment.id === id);
    if (!entry)
      throw new GatewayError('unavailable', `Deployment '${id}' of model '${plan.model}' is not in this replica's configuration.`, {
        code: 'fallback_deployment_unknown',
      });
    const p = entry.provider;
    if (p.credential.kind !== 'none') {
      const secret = this.snap.core.credentials.get(p.name);
      if (secret === undefined)
        throw new GatewayError('unavailable', `No credential is configured for provider '${p.name}'.`, { code: 'provider_unavailable' });
      this.credential = secret;
    }
    this.entry = entry;
    if (input.endOfStream) throw new GatewayError('invalid_request', 'This endpoint needs a JSON request body.', { code: 'missing_body' });
    return { kind: 'continue', mutation: new MutationBuilder() };
  }

  async requestBody(body: Buffer): Promise<RequestDecision> {
    const plan = this.plan;
    const entry = this.entry;
    if (!plan || !entry) throw new GatewayError('internal', 'request body before a planned attempt');
    const req = parseClientRequest(plan.api, plan.op, body);
    req.headers = plan.clientHeaders;
    req.stream = plan.stream;
    const translator = getTranslator(plan.api, plan.op, entry.provider.api, undefined, entry.deployment.upstreamModel);
    const upstream = await translator.request(req, { provider: entry.provider, deployment: entry.deployment, credential: this.credential });

    const m = new MutationBuilder();
    for (const h of PROVIDER_REQUEST_HEADERS) m.removeHeader(h);
    for (const h of this.headers.keys()) if (SIGV4_HEADER.test(h)) m.removeHeader(h);
    for (const [k, v] of Object.entries(upstream.headers)) m.setHeader(k, v);
    if (!upstream.headers['content-type']) m.setHeader('content-type', 'application/json');
    m.setHeader(':path', upstream.path)
      // SNI was fixed per request (E8); the Host/:authority is per attempt (needs allow_all_routing).
      .setHeader(':authority', entry.provider.host)
      .setHeader('content-length', String(upstream.body.length));
    this.sentAt = process.hrtime.bigint();
    return { kind: 'continue', mutation: m, replaceBody: upstream.body };
  }

  async responseHeaders(status: number, headers: Map<string, string>): Promise<ResponseHeadersDecision> {
    this.answered = true;
    const m = new MutationBuilder();
    const entry = this.entry;
    if (!entry || !this.plan) return { mutation: m, stream: false, final: true };
    const latencyMs = this.sentAt ? Number(process.hrtime.bigint() - this.sentAt) / 1e6 : 0;
    const failed = isFailure({ status, latencyMs });
    // The router stage observes the attempt that served the client (with its full latency and
    // tokens); this stage owns the failures, which the router stage never sees when retried.
    if (failed)
      this.svc.health.observe(entry.deployment.id, {
        status,
        latencyMs,
        retryAfterMs: parseRetryAfter(headers.get('retry-after'), Date.now(), headers.get('retry-after-ms')),
      });
    this.svc.countAttempt?.(entry.provider.name, status);
    this.svc.attempts.record(this.plan.requestId, {
      attempt: this.attempt,
      provider: entry.provider.name,
      deployment: entry.deployment.id,
      status,
      latencyMs,
      errorClass: status >= 400 ? `http_${status}` : undefined,
    });
    // Never touch :status or retry-after: Envoy's retry decision reads them after this filter.
    m.setHeader(SERVED_HEADER, `${entry.deployment.id};attempt=${this.attempt}`);
    return { mutation: m, stream: false, final: true };
  }

  async responseBody(): Promise<BodyOutput> {
    return {};
  }

  async responseChunk(): Promise<BodyOutput> {
    return {};
  }

  end(reason: EndReason): void {
    // Sent but never answered: reset, connect failure or per-try timeout — or the client left.
    // Envoy's own outlier detection sees resets; we only keep the attempt for lineage.
    if (!this.answered && this.sentAt && this.plan && this.entry && reason !== 'rejected') {
      this.svc.countAttempt?.(this.entry.provider.name, 0);
      this.svc.attempts.record(this.plan.requestId, {
        attempt: this.attempt,
        provider: this.entry.provider.name,
        deployment: this.entry.deployment.id,
        status: 0,
        latencyMs: Number(process.hrtime.bigint() - this.sentAt) / 1e6,
        errorClass: 'no_response',
      });
    }
  }
}
