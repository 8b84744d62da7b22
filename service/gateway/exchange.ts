// One request's business logic, phase by phase: authenticate, parse, decide (policy), redact, route,
// admit (budget), translate; then translate the answer back, settle, and record lineage.
// No gRPC here: the Processor (extproc/processor.ts) owns the protocol.
import { newHexId, newRequestId } from '../security/random-ids.ts';
import { GatewayError, renderError, type ClientApi } from '../errors.ts';
import type { MutationBuilder as MutationBuilderType } from '../extproc/mutations.ts';
import { MutationBuilder } from '../extproc/mutations.ts';
import type {
  BodyOutput,
  EndReason,
  Exchange,
  RequestDecision,
  RequestHeadersInput,
  ResponseHeadersDecision,
} from '../extproc/processor.ts';
import { authenticate, extractToken, JWT_AUTHN_NAMESPACE, type Principal } from '../identity/principal.ts';
import { ruleResult, type DroppedCandidate, type LineageRecord, type Outcome, type RedactionCount } from '../lineage/record.ts';
import type { Decision, ModelVerdict, PolicyInput } from '../policy/types.ts';
import { getTranslator, parseClientRequest } from '../providers/index.ts';
import type { ClientRequest, StreamTranslator, Translator, Usage } from '../providers/types.ts';
import { modelNotFound, parseRetryAfter, type Candidate, type ModelCheckResult, type PolicyDrop } from '../routing/index.ts';
import { checkModelNames, ModelNameScrubber } from './model-names.ts';
import type { Services, Snapshot } from './context.ts';
import { apiForPath, matchEndpoint, pathOnly, type Endpoint } from './endpoints.ts';
import { buildPolicyInput, findAllowedModel, listAllowedModels } from './policy-input.ts';
import { modelBody, modelsApi, modelsListBody } from './models.ts';
import { publishOutcome } from './outcome.ts';
import { keyLimitSpecs, keyModelDenial } from '../identity/key-limits.ts';
import { deniedBudgetEffects } from './adapters.ts';
import { LimitExceededError } from '../budget/manager.ts';
import { estimateBillable } from '../budget/billable.ts';
import { estimateResponsesBillable } from '../budget/billable-responses.ts';
import { costOfUsage, reservationCost, type CostComponents } from '../budget/cost.ts';
import { MAX_EXACT_BYTES, o200kIfReady, usesO200k } from '../budget/tokenizer.ts';
import { hasCountTokensEndpoint } from '../providers/count-tokens.ts';
import { plausibleBounds, settlementUsage, validateUsage, type TokenCounts, type UsageAnomaly } from '../budget/usage.ts';
import { RedactionBlockedError, toRedactionCounts } from '../redaction/index.ts';
import type { Admission, CostEstimate, RedactionResult } from './ports.ts';
import { rewriteClientJson, SseTextRewriter } from './text-rewrite.ts';
import { ResponsesSseRewriter, rewriteResponsesJson } from './responses-rewrite.ts';
import { formatTraceparent, startSpan, type SpanContext } from '../telemetry/tracing.ts';
import { chooseChain, type ChosenChain } from '../fallback/chains.ts';
import { PLAN_KEY, SERVED_HEADER } from '../fallback/contract.ts';
import type { FallbackPlan } from '../fallback/plan.ts';
import type { Attempt } from '../lineage/record.ts';
import { isFailure } from '../routing/index.ts';
import { sha256Hex, Sha256Stream } from '../security/sha256.ts';

/** Client headers never forwarded upstream: credentials and per-account routing of the client's own provider. */
const CLIENT_CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'openai-organization', 'openai-project', 'cookie', 'proxy-authorization'];
/** Provider response headers that describe our provider account, not the client's. */
const PROVIDER_RESPONSE_HEADERS = ['openai-organization', 'openai-project', 'anthropic-organization-id', 'set-cookie', 'x-request-id', 'request-id', 'x-amzn-requestid', 'apim-request-id'];
const PROVIDER_RATELIMIT = /^(x-ratelimit-|anthropic-ratelimit-|x-amzn-bedrock-)/;

/** Output tokens assumed when a request names no limit (documented in README budgets section). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

type Stage = 'new' | 'authenticated' | 'routed' | 'responding' | 'done';

export class GatewayExchange implements Exchange {
  private readonly svc: Services;
  private readonly snap: Snapshot;
  private readonly started: Date;
  private readonly t0 = process.hrtime.bigint();
  private stage: Stage = 'new';
  private api: ClientApi = 'openai';
  /** Tollgate's own id for this request (lineage record id, x-request-id to the client and upstream). */
  private requestId = '';
  /** The client's x-request-id, when well-formed: an attribute, never the record id (clients can collide). */
  private clientRequestId: string | undefined;
  private trace: SpanContext | undefined;
  private method = '';
  private path = '';
  private endpoint: Endpoint | undefined;
  private headers = new Map<string, string>();
  private principal: Principal | undefined;
  private clientReq: ClientRequest | undefined;
  private decision: Decision | undefined;
  private redaction: RedactionResult | undefined;
  private redactionReport: RedactionCount[] = [];
  private candidate: Candidate | undefined;
  /** Candidates policy rules removed from the route (for lineage). */
  private readonly dropped: PolicyDrop[] = [];
  /** Lineage-safe forms of client-chosen model names. */
  private readonly names: ModelNameScrubber;
  /** The `models` fallbacks the client named (scrubbed for lineage like `model`). */
  private readonly namedModels: string[] = [];
  /** Set when Envoy's chain cluster runs this request's attempts (fallback inside the request). */
  private chain: ChosenChain | undefined;
  /** Chain mode: the attempt that answered, from the upstream stage's served header; 0 = unknown. */
  private servedAttempt = 0;
  private translator: Translator | undefined;
  private admission: Admission | undefined;
  private requestBytes = 0;
  /** What admission reserved (prompt incl. tools/schemas/media; output limit × n), and for how many choices. */
  private reserved: TokenCounts | undefined;
  private choices = 1;
  private explicitOutputLimit = false;
  /** Set when the charged usage differs from the provider's report (lineage `tokens.anomaly`). */
  private usageAnomaly: UsageAnomaly | undefined;
  private responseBytes = 0;
  private upstreamStatus = 0;
  private clientStatus = 0;
  private upstreamHeaders: Record<string, string> = {};
  private upstreamSentAt: bigint | undefined;
  private firstByteAt: bigint | undefined;
  private stream: StreamTranslator | undefined;
  private sseRewriter: SseTextRewriter | ResponsesSseRewriter | undefined;
  private usage: Usage | undefined;
  private promptHash: string | undefined;
  /** The bytes the client got (lineage `content.responseSha256`). */
  private readonly responseHash = new Sha256Stream();
  private phaseUs: Record<string, number> = {};
  private policyUs = 0;
  private redactionUs = 0;
  private error: GatewayError | undefined;
  private outcome: Outcome | undefined;

  constructor(svc: Services) {
    this.svc = svc;
    this.snap = svc.snapshot();
    this.started = svc.now();
    this.names = new ModelNameScrubber(this.snap.catalog);
  }

  clientApi(): ClientApi {
    return this.api;
  }

  // ── request headers ────────────────────────────────────────────────────────
  requestHeaders(input: RequestHeadersInput): Promise<RequestDecision> {
    return this.timed('requestHeadersUs', async () => {
      this.headers = input.headers;
      this.method = input.headers.get(':method') ?? '';
      this.path = input.headers.get(':path') ?? '';
      this.api = apiForPath(this.path);
      this.requestId = newRequestId();
      this.clientRequestId = validRequestId(input.headers.get('x-request-id'));
      this.trace = startSpan(input.headers.get('traceparent'));

      const route = matchEndpoint(this.path);
      if (!route) throw new GatewayError('not_found', `Unknown endpoint ${this.method} ${pathOnly(this.path)}.`, { code: 'unknown_endpoint' });
      if (route.method !== this.method)
        throw new GatewayError('invalid_request', `Method ${this.method} is not allowed on ${pathOnly(this.path)}; use ${route.method}.`, {
          code: 'method_not_allowed',
          status: 405,
          headers: { allow: route.method },
        });
      this.endpoint = route.endpoint;
      this.api = route.endpoint.kind === 'models' ? modelsApi(input.headers) : route.endpoint.api;

      const jwtNs = input.metadata[JWT_AUTHN_NAMESPACE];
      this.principal = await authenticate(
        { token: extractToken(input.headers), jwtNamespace: jwtNs },
        this.snap.core,
        this.snap.keys,
        this.svc.now(),
      );
      this.stage = 'authenticated';

      if (route.endpoint.kind === 'models') return this.respondModels();

      const max = this.snap.core.settings.maxRequestBytes;
      const cl = input.headers.get('content-length');
      if (cl !== undefined && Number(cl) > max) throw tooLarge(Number(cl), max);
      if (input.endOfStream) throw new GatewayError('invalid_request', 'This endpoint needs a JSON request body.', { code: 'missing_body' });
      const enc = input.headers.get('content-encoding');
      if (enc && enc.toLowerCase() !== 'identity')
        // Policies and redaction must read the body: a compressed one would pass unseen.
        throw new GatewayError('invalid_request', `Compressed request bodies (content-encoding: ${enc}) are not supported; send plain JSON.`, {
          code: 'unsupported_content_encoding',
          status: 415,
        });

      const m = new MutationBuilder();
      this.stripInternalHeaders(m);
      return { kind: 'continue', mutation: m };
    });
  }

  private respondModels(): RequestDecision {
    const principal = this.principal!;
    const t = process.hrtime.bigint();
    const id = this.endpoint?.kind === 'models' ? this.endpoint.id : undefined;
    let body: Buffer;
    if (id !== undefined) {
      // A model the caller may not use is as absent as an unknown one.
      const model = findAllowedModel(this.snap, principal, this.headers, this.svc.now(), id);
      this.policyUs += Number(process.hrtime.bigint() - t) / 1000;
      if (!model) throw modelNotFound(id);
      body = modelBody(this.api, model);
    } else {
      const models = listAllowedModels(this.snap, principal, this.headers, this.svc.now());
      this.policyUs += Number(process.hrtime.bigint() - t) / 1000;
      body = modelsListBody(this.api, models, this.path);
    }
    this.clientStatus = 200;
    this.outcome = 'success';
    this.responseBytes = body.length;
    return {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/json', 'x-request-id': this.requestId },
      body,
      details: 'tollgate_models',
    };
  }

  /**
   * Admission. The reservation's prompt count is the run-based heuristic (cost.ts); when that would refuse the
   * request and the model has an exact tokenizer (OpenAI family, budget/tokenizer.ts), the prompt is counted
   * exactly and admission retried once if the exact count is lower: the tokenizer runs only where it changes the
   * decision, and only once loaded (the first such refusal starts loading it; it is never awaited here).
   */
  private async admitExact(
    limits: ModelVerdict,
    estimate: CostEstimate,
    ep: Extract<Endpoint, { kind: 'inference' }>,
    req: ClientRequest,
    cand: Candidate,
    maxOut: number,
    chain: ChosenChain | undefined,
  ): Promise<Admission> {
    const principal = this.principal!;
    // A managed key's own budget and rate limits (service/identity/key-limits.ts) count beside the policies'.
    const own = principal.keyLimits ? keyLimitSpecs(principal) : undefined;
    const budgets = own ? [...limits.budgets, ...own.budgets] : limits.budgets;
    const rateLimits = own ? [...limits.rateLimits, ...own.rateLimits] : limits.rateLimits;
    const admit = (e: CostEstimate) => this.svc.budgets.admit(newRequestId(), budgets, rateLimits, e, principal.tenant);
    try {
      return await admit(estimate);
    } catch (err) {
      if (!(err instanceof LimitExceededError) || ep.op === 'count_tokens' || ep.op === 'responses' || !usesO200k(cand.provider.api, cand.deployment.upstreamModel)) throw err;
      const count = this.requestBytes <= MAX_EXACT_BYTES ? o200kIfReady() : undefined;
      if (!count) throw err;
      const exact = estimateBillable(ep.api, ep.op, req.body, maxOut, count);
      if (exact.inputTokens >= this.reserved!.inputTokens) throw err;
      this.reserved = { inputTokens: exact.inputTokens, outputTokens: exact.outputTokens };
      const retry: CostEstimate = { usd: priceOf(cand, this.reserved), ...this.reserved };
      if (chain) retry.usd = Math.max(...chain.members.map((c) => priceOf(c, this.reserved!)));
      return await admit(retry);
    }
  }

  /**
   * count_tokens for a provider without a token counter: counted here — o200k for OpenAI models once the tokenizer
   * is loaded (the first such request starts loading it), else the heuristic — and labelled which.
   */
  private respondLocalCount(req: ClientRequest, cand: Candidate): RequestDecision {
    const count = usesO200k(cand.provider.api, cand.deployment.upstreamModel) && this.requestBytes <= MAX_EXACT_BYTES ? o200kIfReady() : undefined;
    const exact = count !== undefined;
    const n = estimateBillable('anthropic', 'chat', req.body, 0, count).inputTokens;
    const body = Buffer.from(JSON.stringify({ input_tokens: n }));
    this.clientStatus = 200;
    this.outcome = 'success';
    this.responseBytes = body.length;
    this.responseHash.update(body);
    return {
      kind: 'respond',
      status: 200,
      headers: {
        'content-type': 'application/json',
        'x-request-id': this.requestId,
        // How the count was made: `o200k_base` (exact for OpenAI models) or `estimate` (heuristic, see README).
        'x-tollgate-token-count': exact ? 'o200k_base' : 'estimate',
      },
      body,
      details: 'tollgate_count_tokens',
    };
  }

  // ── request body ───────────────────────────────────────────────────────────
  requestBody(body: Buffer): Promise<RequestDecision> {
    return this.timed('requestBodyUs', async () => {
      if (this.stage !== 'authenticated' || !this.endpoint || this.endpoint.kind !== 'inference')
        throw new GatewayError('internal', 'request body before an authenticated inference request');
      const ep = this.endpoint;
      const principal = this.principal!;
      this.requestBytes = body.length;
      const max = this.snap.core.settings.maxRequestBytes;
      if (body.length > max) throw tooLarge(body.length, max);

      const req = parseClientRequest(ep.api, ep.op, body);
      // Before anything records the names (lineage, access-log metadata, policy messages).
      checkModelNames(this.snap.catalog, req.body);
      req.headers = pickHeaders(this.headers, ['anthropic-version', 'anthropic-beta']);
      this.clientReq = req;
      this.promptHash = sha256Hex(body);

      // Policy: allow/deny, transforms (mutate req.body), route constraints, redaction, budgets.
      const input: PolicyInput = buildPolicyInput(this.snap, ep.api, req.body, principal, this.headers, this.method, this.path, body.length, this.svc.now());
      const tp = process.hrtime.bigint();
      // With `models` fallbacks every listed model is judged too (Decision.forModel).
      const fallbacks = Array.isArray(req.body.models) && req.body.models.length > 0;
      const decision = this.snap.policy.evaluate(input, { candidates: fallbacks });
      this.policyUs = Number(process.hrtime.bigint() - tp) / 1000;
      this.decision = decision;
      if (decision.denied) {
        const d = decision.denied;
        throw new GatewayError('permission', d.message, { code: d.reason, status: d.status });
      }
      req.model = typeof req.body.model === 'string' ? req.body.model : req.model;
      req.stream = req.body.stream === true;

      // Redaction runs on the client-format body before translation, so no provider path can bypass it.
      if (decision.redactions.length) {
        const tr = process.hrtime.bigint();
        try {
          this.redaction = this.svc.redaction.redactRequest(req.body, decision.redactions, decision.customDetectors, principal.tenant);
          this.redactionReport = this.redaction.report;
        } catch (err) {
          // A `block`: lineage still records which detectors stopped the request, where (counts and paths, never values).
          if (err instanceof RedactionBlockedError) this.redactionReport = toRedactionCounts(err.report, 'request');
          throw err;
        } finally {
          this.redactionUs = Number(process.hrtime.bigint() - tr) / 1000;
        }
      }

      // OpenRouter-style routing hints are ours; providers reject unknown fields.
      const modelsHint = req.body.models;
      const providerHint = req.body.provider;
      if (Array.isArray(modelsHint)) for (const m of modelsHint) if (typeof m === 'string') this.namedModels.push(m);
      delete req.body.models;
      delete req.body.provider;

      const maxOut = maxOutputTokens(req.body);
      // Every model the request can end up on is judged as if the request had named it.
      const verdicts = new Map<string, ModelVerdict>();
      const route = this.snap.router.route({
        model: req.model,
        models: modelsHint,
        provider: providerHint,
        tokenEstimate: input.request.tokenEstimate,
        maxOutputTokens: ep.op === 'chat' ? maxOut : 0,
        check: (d) => decision.routeCheck(d),
        checkModel: (requested, canonical) => {
          const keyDenial = principal.keyLimits && keyModelDenial(principal, requested, canonical);
          if (keyDenial) return keyDenial;
          const t = process.hrtime.bigint();
          const v = decision.forModel(requested, canonical);
          this.policyUs += Number(process.hrtime.bigint() - t) / 1000;
          verdicts.set(canonical, v);
          return modelCheck(v);
        },
        kind: ep.op === 'embeddings' ? 'embedding' : 'chat',
        stream: req.stream,
        dropped: this.dropped,
      });
      const cand = route.candidates.find((c) => this.credentialFor(c) !== null);
      const primary = route.candidates[0];
      // route() may have claimed the primary's single half-open trial; give it back if unused.
      if (primary && cand !== primary) this.svc.health.releaseTrial(primary.deployment.id);
      if (!cand)
        throw new GatewayError('unavailable', `No provider for model '${req.model}' is configured with a credential.`, { code: 'provider_unavailable' });
      this.candidate = cand;
      // count_tokens for a provider without a counter: answered here, nothing sent or billed.
      if (ep.op === 'count_tokens' && !hasCountTokensEndpoint(cand.provider.api, cand.deployment.upstreamModel)) return this.respondLocalCount(req, cand);
      this.translator = getTranslator(ep.api, ep.op, cand.provider.api, undefined, cand.deployment.upstreamModel);

      // The reservation covers everything the provider bills: tools, schemas and media in the
      // prompt, and the output limit for each of the n choices. count_tokens is free (counts as a request).
      const bill =
        ep.op === 'count_tokens'
          ? { inputTokens: 0, outputTokens: 0, choices: 1, media: 0 }
          : ep.op === 'responses'
            ? estimateResponsesBillable(req.body, maxOut)
            : estimateBillable(ep.api, ep.op, req.body, maxOut);
      this.reserved = { inputTokens: bill.inputTokens, outputTokens: bill.outputTokens };
      this.choices = bill.choices;
      this.explicitOutputLimit = ep.op !== 'chat' || hasOutputLimit(req.body);
      const estimate: CostEstimate = { usd: priceOf(cand, this.reserved), ...this.reserved };
      const chain = ep.op === 'count_tokens' ? undefined : chooseChain(cand, route.candidates, (c) => this.credentialFor(c) !== null);
      // Any chain member may end up serving: reserve for the most expensive one.
      if (chain) estimate.usd = Math.max(...chain.members.map((c) => priceOf(c, this.reserved!)));
      // Budgets and rate limits of every model that can serve inside this request (model-scoped ones differ).
      // Reservation ids are ours: x-request-id can come from the client and need not be unique.
      const limits = limitsFor(chain ? chain.members : [cand], verdicts);
      this.admission = await this.admitExact(limits, estimate, ep, req, cand, maxOut, chain);
      if (chain) return this.routeToChain(chain, req);

      const upstream = await this.translator.request(req, {
        provider: cand.provider,
        deployment: cand.deployment,
        credential: this.credentialFor(cand) ?? undefined,
      });

      const m = new MutationBuilder();
      this.stripInternalHeaders(m);
      for (const h of CLIENT_CREDENTIAL_HEADERS) m.removeHeader(h);
      for (const h of ['anthropic-version', 'anthropic-beta', 'content-encoding']) m.removeHeader(h);
      setHeaders(m, upstream.headers);
      const settings = this.snap.core.settings;
      m.setHeader(':path', upstream.path)
        .setHeader('content-length', String(upstream.body.length))
        .setHeader('accept-encoding', 'identity')
        .setHeader(settings.clusterHeader, cand.provider.cluster)
        .setHeader(settings.hostHeader, cand.provider.host)
        .setHeader('x-request-id', this.requestId);
      if (this.trace) m.setHeader('traceparent', formatTraceparent(this.trace));
      if (!upstream.headers['content-type']) m.setHeader('content-type', 'application/json');
      this.stage = 'routed';
      this.upstreamSentAt = process.hrtime.bigint();
      return {
        kind: 'continue',
        mutation: m,
        replaceBody: upstream.body,
        clearRouteCache: true,
        metadata: this.metadata(),
      };
    });
  }

  /**
   * Chain mode: Envoy tries the chain's deployments in priority order and the upstream stage
   * translates each attempt. Here the body stays in client format (redacted, hints removed), and
   * the plan rides in dynamic metadata for every attempt's stream.
   */
  private routeToChain(chain: ChosenChain, req: ClientRequest): RequestDecision {
    this.chain = chain;
    const canonical = Buffer.from(JSON.stringify(req.body));
    const plan: FallbackPlan = {
      v: 1,
      api: req.api,
      op: req.op,
      requestId: this.requestId,
      model: chain.members[0]!.model.name,
      stream: req.stream,
      cluster: chain.cluster,
      deployments: chain.members.map((c) => c.deployment.id),
      clientHeaders: req.headers ?? {},
    };
    const m = new MutationBuilder();
    this.stripInternalHeaders(m);
    for (const h of CLIENT_CREDENTIAL_HEADERS) m.removeHeader(h);
    for (const h of ['anthropic-version', 'anthropic-beta', 'content-encoding']) m.removeHeader(h);
    m.setHeader('content-type', 'application/json')
      .setHeader('content-length', String(canonical.length))
      .setHeader(this.snap.core.settings.clusterHeader, chain.cluster)
      .setHeader('x-request-id', this.requestId);
    if (this.trace) m.setHeader('traceparent', formatTraceparent(this.trace));
    this.stage = 'routed';
    this.upstreamSentAt = process.hrtime.bigint();
    return { kind: 'continue', mutation: m, replaceBody: canonical, clearRouteCache: true, metadata: { ...this.metadata(), [PLAN_KEY]: this.svc.plans.seal(plan) } };
  }

  /** Chain mode: which member answered, from the upstream stage's `<deployment>;attempt=<n>`. */
  private adoptServedAttempt(value: string | undefined): void {
    const chain = this.chain!;
    const m = value ? /^(.+);attempt=(\d{1,3})$/.exec(value) : null;
    const member = m ? chain.members.find((c) => c.deployment.id === m[1]) : undefined;
    if (!m || !member) return; // an Envoy local reply (every attempt failed without an answer)
    this.servedAttempt = Number(m[2]);
    if (member !== this.candidate) {
      this.candidate = member;
      this.translator = getTranslator(this.clientReq!.api, this.clientReq!.op, member.provider.api, undefined, member.deployment.upstreamModel);
    }
  }

  // ── response headers ───────────────────────────────────────────────────────
  responseHeaders(status: number, headers: Map<string, string>, endOfStream: boolean): ResponseHeadersDecision {
    return this.timedSync('responseHeadersUs', () => {
      this.firstByteAt = process.hrtime.bigint();
      this.upstreamStatus = status;
      this.clientStatus = status;
      for (const [k, v] of headers) if (!k.startsWith(':')) this.upstreamHeaders[k] = v;
      const m = new MutationBuilder();
      if (this.stage !== 'routed' || !this.translator || !this.clientReq) {
        // Not a request we routed (e.g. a local reply from a later filter): pass it through untouched.
        return { mutation: m, stream: false };
      }
      this.stage = 'responding';
      if (this.chain) {
        this.adoptServedAttempt(headers.get(SERVED_HEADER));
        m.removeHeader(SERVED_HEADER);
      }
      const ct = (headers.get('content-type') ?? '').toLowerCase();
      const ok = status >= 200 && status < 300;
      const streaming = ok && this.clientReq.stream && isStreamContentType(ct);
      for (const h of PROVIDER_RESPONSE_HEADERS) if (headers.has(h)) m.removeHeader(h);
      for (const h of headers.keys()) if (PROVIDER_RATELIMIT.test(h)) m.removeHeader(h);
      m.setHeader('x-request-id', this.requestId)
        .setHeader('x-tollgate-provider', this.candidate!.provider.name)
        .setHeader('x-tollgate-model', this.candidate!.model.name);
      if (this.decision) m.setHeader('x-tollgate-decision-id', this.decision.id);
      if (this.admission) setHeaders(m, this.admission.headers);
      if (streaming) {
        this.stream = this.translator.stream(this.clientReq);
        const output = this.redaction?.output;
        if (output)
          this.sseRewriter = this.clientReq.op === 'responses' ? new ResponsesSseRewriter((json) => [output.stream(json)]) : new SseTextRewriter(this.api, (json) => [output.stream(json)]);
        m.setHeader('content-type', this.translator.streamContentType).setHeader('cache-control', 'no-cache').removeHeader('content-length');
      }
      if (endOfStream) {
        // A response without a body (rare for LLM APIs): translate the empty body as an error/empty answer.
        this.usage = undefined;
        if (status >= 400) {
          // Headers only, e.g. Envoy's own cluster-not-found 503 (Envoy and Tollgate configs drifted):
          // the client still gets an error in its API's shape.
          return { mutation: m, stream: false, addBody: this.unreachable(status, `HTTP ${status} without a body`, m) };
        }
      }
      return { mutation: m, stream: streaming };
    });
  }

  // ── response body ──────────────────────────────────────────────────────────
  responseBody(body: Buffer): BodyOutput {
    return this.timedSync('responseBodyUs', () => {
      if (this.stage !== 'responding' || !this.translator || !this.clientReq) return {};
      const own = this.envoyOwnError(body);
      if (own) return own;
      const tr = this.translator.response(this.upstreamStatus, this.upstreamHeaders, body, this.clientReq);
      let out = tr.body;
      if (tr.status >= 200 && tr.status < 300 && this.redaction?.output) {
        const output = this.redaction.output;
        const filter = (text: string, json: boolean): string => output.text(text, json);
        out = this.clientReq.op === 'responses' ? rewriteResponsesJson(out, filter) : rewriteClientJson(this.api, out, filter, tr.json);
      }
      this.responseHash.update(out);
      this.responseBytes = out.length;
      this.clientStatus = tr.status;
      if (tr.status >= 400) this.noteUpstreamError(tr.status);
      this.usage = this.checkedUsage(tr.usage);
      const m = new MutationBuilder();
      m.setHeader('content-length', String(out.length));
      // The translated body is never encoded (a provider that ignored accept-encoding: identity was decoded).
      if (this.upstreamHeaders['content-encoding'] !== undefined) m.removeHeader('content-encoding');
      setHeaders(m, tr.headers, 'content-length');
      if (tr.status !== this.upstreamStatus) m.setHeader(':status', String(tr.status));
      return { body: out, mutation: m, metadata: this.metadata() };
    });
  }

  /**
   * Envoy answered instead of the provider (connect failure, reset before headers, route timeout,
   * no healthy host): a 5xx in text/plain without the router's x-envoy-upstream-service-time. The
   * client hears that the provider could not be reached — not that it "returned" an error.
   */
  private envoyOwnError(body: Buffer): BodyOutput | undefined {
    const h = this.upstreamHeaders;
    if (this.upstreamStatus < 500 || h['x-envoy-upstream-service-time'] !== undefined || !(h['content-type'] ?? '').startsWith('text/plain')) return undefined;
    const m = new MutationBuilder();
    const out = this.unreachable(this.upstreamStatus, body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200), m);
    return { body: out, mutation: m, metadata: this.metadata() };
  }

  /** The client's error when the provider never answered (Envoy did); sets its headers on `m`, returns the body. */
  private unreachable(status: number, why: string, m: MutationBuilder): Buffer {
    const late = status === 504;
    const err = new GatewayError(late ? 'timeout' : status >= 500 ? 'unavailable' : 'upstream', `provider ${this.candidate!.provider.name} ${late ? 'did not answer in time' : 'could not be reached'}${why ? ` (${why})` : ''}`, {
      code: late ? 'upstream_timeout' : 'upstream_unreachable',
      status,
    });
    const r = renderError(err, this.api);
    this.responseHash.update(r.body);
    this.responseBytes = r.body.length;
    this.clientStatus = status;
    this.noteUpstreamError(status);
    this.usage = undefined;
    for (const [k, v] of Object.entries(r.headers)) m.setHeader(k, v);
    m.setHeader('content-length', String(r.body.length));
    return r.body;
  }

  responseChunk(chunk: Buffer, last: boolean): BodyOutput {
    return this.timedSync('responseBodyUs', (): BodyOutput => {
      if (!this.stream) return {};
      let out = chunk.length ? this.stream.push(chunk) : Buffer.alloc(0);
      if (last) out = Buffer.concat([out, this.stream.end()]);
      if (this.sseRewriter) out = this.sseRewriter.push(out, last);
      this.responseHash.update(out);
      this.responseBytes += out.length;
      if (!last) return { body: out };
      this.usage = this.checkedUsage(this.stream.usage());
      const failed = this.stream.error?.();
      if (failed) {
        // The client got an error event after a 200: the answer is incomplete.
        this.error = failed;
        this.noteUpstreamError(failed.status);
      }
      return { body: out, metadata: this.metadata() };
    });
  }

  // ── end ────────────────────────────────────────────────────────────────────
  end(reason: EndReason, detail?: string): void {
    if (this.stage === 'done') return;
    const wasResponding = this.stage === 'responding' || this.stage === 'routed';
    this.stage = 'done';
    if (reason === 'rejected' && !this.outcome) this.outcome = outcomeOfRejection(this.error);
    if (reason === 'aborted' || reason === 'protocol_error') {
      // A client that stops reading at the provider's in-stream error event left because of it:
      // the provider failed, whoever closed first.
      const failed = reason === 'aborted' ? this.stream?.error?.() : undefined;
      if (failed && !this.error) {
        this.error = failed;
        this.noteUpstreamError(failed.status);
      } else this.outcome = 'aborted';
    }
    if (!this.outcome) this.outcome = this.clientStatus >= 200 && this.clientStatus < 400 ? 'success' : this.clientStatus >= 500 || this.upstreamStatus >= 500 ? 'provider_error' : 'client_error';
    if (this.chain) this.observeChain(wasResponding);
    else if (this.candidate) {
      const id = this.candidate.deployment.id;
      if (!wasResponding || !this.upstreamStatus) {
        // Rejected after routing, or the client went away before the upstream answered: says
        // nothing about the provider's health.
        this.svc.health.releaseTrial(id);
      } else {
        const latencyMs = this.upstreamSentAt ? Number(process.hrtime.bigint() - this.upstreamSentAt) / 1e6 : 0;
        const s = this.upstreamStatus;
        this.svc.health.observe(id, {
          status: s,
          latencyMs,
          ttftMs: this.firstByteAt && this.upstreamSentAt ? Number(this.firstByteAt - this.upstreamSentAt) / 1e6 : undefined,
          timedOut: s === 504 && this.upstreamHeaders['x-envoy-upstream-service-time'] === undefined,
          retryAfterMs: s === 429 || s === 503 ? parseRetryAfter(this.upstreamHeaders['retry-after'], Date.now(), this.upstreamHeaders['retry-after-ms']) : undefined,
          outputTokens: this.usage?.outputTokens,
        });
      }
    }
    this.svc.finishing.track(this.settleAndRecord(reason, detail));
  }

  /**
   * Chain mode: the upstream stage observed every failed attempt; the served one is observed here,
   * with its full latency and tokens. A primary that did not serve gives back route()'s trial.
   */
  private observeChain(wasResponding: boolean): void {
    const primary = this.chain!.members[0]!.deployment.id;
    const c = this.candidate;
    const served = wasResponding && this.servedAttempt > 0 && c !== undefined;
    if (served && !isFailure({ status: this.upstreamStatus, latencyMs: 0 })) {
      const latencyMs = this.upstreamSentAt ? Number(process.hrtime.bigint() - this.upstreamSentAt) / 1e6 : 0;
      this.svc.health.observe(c.deployment.id, {
        status: this.upstreamStatus,
        latencyMs,
        ttftMs: this.firstByteAt && this.upstreamSentAt ? Number(this.firstByteAt - this.upstreamSentAt) / 1e6 : undefined,
        outputTokens: this.usage?.outputTokens,
      });
    }
    if (!served || c.deployment.id !== primary) this.svc.health.releaseTrial(primary);
  }

  /** Chain mode: every attempt, from this replica's upstream stage log plus the served one. */
  private chainAttempts(upstreamTotalMs: number | undefined): Attempt[] {
    const logged = this.svc.attempts.take(this.requestId);
    const last = Math.max(this.servedAttempt, ...logged.map((a) => a.attempt), 0);
    const out: Attempt[] = [];
    for (let n = 1; n <= last; n++) {
      const c = this.candidate;
      if (n === this.servedAttempt && c) {
        out.push({
          provider: c.provider.name,
          deployment: c.deployment.id,
          status: this.upstreamStatus,
          latencyMs: round3(upstreamTotalMs ?? 0) ?? 0,
          errorClass: this.upstreamStatus >= 400 ? `http_${this.upstreamStatus}` : this.outcome === 'aborted' ? 'aborted' : undefined,
        });
        continue;
      }
      const a = logged.find((x) => x.attempt === n);
      // Handled by another replica's upstream stage: known to have happened, not what it got.
      out.push(
        a
          ? { provider: a.provider, deployment: a.deployment, status: a.status, latencyMs: round3(a.latencyMs) ?? 0, errorClass: a.errorClass }
          : { provider: 'unknown', status: 0, latencyMs: 0, errorClass: 'not_observed' },
      );
    }
    return out;
  }

  /** Called by the processor when a phase throws: remembers the error class for lineage. */
  noteError(err: unknown): void {
    this.error = err instanceof GatewayError ? err : new GatewayError('internal', 'internal error');
    this.clientStatus = this.error.status;
  }

  requestBodyTimeoutMs(size: number): number | undefined {
    const s = this.snap.core.settings;
    return s.largeBodyBytes > 0 && size >= s.largeBodyBytes ? s.largeBodyTimeoutMs : undefined;
  }

  errorContext(): { headers: Record<string, string>; metadata: Record<string, unknown> } {
    const headers: Record<string, string> = {};
    if (this.requestId) headers['x-request-id'] = this.requestId;
    if (this.decision) headers['x-tollgate-decision-id'] = this.decision.id;
    return { headers, metadata: this.requestId ? this.metadata() : {} };
  }

  /** What was decided so far (for `tollgate explain`; never includes credentials). */
  inspect(): {
    requestId: string;
    principal?: Principal;
    decision?: Decision;
    route?: { provider: string; deployment: string; upstreamModel: string; cluster: string; region: string; fallback?: string[] };
    redactions: RedactionCount[];
    budgetHeaders: Record<string, string>;
    droppedCandidates: PolicyDrop[];
  } {
    const c = this.candidate;
    return {
      requestId: this.requestId,
      principal: this.principal,
      decision: this.decision,
      route: c
        ? {
            provider: c.provider.name,
            deployment: c.deployment.id,
            upstreamModel: c.deployment.upstreamModel,
            cluster: this.chain?.cluster ?? c.provider.cluster,
            region: c.deployment.region,
            // With a chain, Envoy tries these in order when an attempt fails.
            fallback: this.chain?.members.map((m) => m.deployment.id),
          }
        : undefined,
      redactions: this.redactionReport,
      budgetHeaders: this.admission?.headers ?? {},
      droppedCandidates: this.dropped,
    };
  }

  // ── helpers ────────────────────────────────────────────────────────────────
  // The phase methods above return timed()'s promise directly (they are not `async` themselves):
  // one async frame per phase instead of two, i.e. fewer microtask turns on every message.
  /**
   * timed() for a phase that does no I/O (the response phases): run at once and return the result
   * itself (the Processor continues in the same turn, see PhaseResult); an error is thrown.
   */
  private timedSync<T>(phase: string, fn: () => T): T {
    const t = process.hrtime.bigint();
    try {
      return fn();
    } catch (err) {
      this.noteError(err);
      throw err;
    } finally {
      this.phaseUs[phase] = (this.phaseUs[phase] ?? 0) + Number(process.hrtime.bigint() - t) / 1000;
    }
  }

  private async timed<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const t = process.hrtime.bigint();
    try {
      return await fn();
    } catch (err) {
      this.noteError(err);
      throw err;
    } finally {
      this.phaseUs[phase] = (this.phaseUs[phase] ?? 0) + Number(process.hrtime.bigint() - t) / 1000;
    }
  }

  private stripInternalHeaders(m: MutationBuilderType): void {
    const s = this.snap.core.settings;
    for (const k of this.headers.keys()) if (k.startsWith('x-tollgate-')) m.removeHeader(k);
    m.removeHeader(s.clusterHeader).removeHeader(s.hostHeader);
  }

  private credentialFor(c: Candidate): string | undefined | null {
    if (c.provider.credential.kind === 'none') return undefined;
    return this.snap.core.credentials.get(c.provider.name) ?? null;
  }

  private noteUpstreamError(status: number): void {
    if (!this.outcome) this.outcome = status === 429 || status >= 500 ? 'provider_error' : 'client_error';
  }

  /** The most this request can plausibly be billed at the deployment that served it. */
  private usageBounds(reserved: TokenCounts): TokenCounts {
    return plausibleBounds({
      contextWindow: this.candidate?.deployment.contextWindow ?? 0,
      requestBytes: this.requestBytes,
      reserved,
      explicitOutputLimit: this.explicitOutputLimit,
      choices: this.choices,
    });
  }

  /** Provider-reported usage, validated and bounded before anything (metadata, lineage, budgets) uses it. */
  private checkedUsage(u: Usage | undefined): Usage | undefined {
    if (!u || !this.reserved) return u;
    const v = validateUsage(u, this.reserved, this.usageBounds(this.reserved));
    if (v.anomaly) this.usageAnomaly = v.anomaly;
    return v.usage;
  }

  private costOf(u: Usage | undefined): number {
    return this.costComponents(u)?.totalUsd ?? 0;
  }

  /** The request's cost by billed token kind, at the serving deployment's catalog prices (budget/cost.ts). */
  private costComponents(u: Usage | undefined): CostComponents | undefined {
    if (!u || !this.candidate) return undefined;
    return costOfUsage(u, this.candidate.deployment);
  }

  private metadata(): Record<string, unknown> {
    const md: Record<string, unknown> = {
      request_id: this.requestId,
      tenant: this.principal?.tenant ?? '',
      team: this.principal?.team ?? '',
      key_id: this.principal?.keyId ?? '',
    };
    if (this.decision) {
      md.decision_id = this.decision.id;
      md.policy_revision = this.decision.revision;
    }
    if (this.clientReq) md.model = this.names.name(this.clientReq.model);
    if (this.candidate) {
      md.provider = this.candidate.provider.name;
      md.deployment = this.candidate.deployment.id;
      md.upstream_model = this.names.upstream(this.candidate.deployment.upstreamModel, this.candidate.model.name);
    }
    if (this.usage) {
      md.input_tokens = this.usage.inputTokens;
      md.output_tokens = this.usage.outputTokens;
      md.cost_usd = Number(this.costOf(this.usage).toFixed(8));
    }
    return md;
  }

  private async settleAndRecord(reason: EndReason, detail: string | undefined): Promise<void> {
    let budgets = this.admission?.effects ?? deniedBudgetEffects(this.error);
    try {
      if (this.admission) {
        // Whatever reached a provider is charged and counted (usage.ts): its validated usage, or an
        // estimate when it reported none (an aborted stream: what it reported so far, if anything).
        const reported = this.usage ?? this.stream?.usage();
        // count_tokens is free: it counts as a request, never as tokens or dollars.
        const free = this.clientReq?.op === 'count_tokens';
        const s = free && this.upstreamSentAt !== undefined
          ? { usage: { inputTokens: 0, outputTokens: 0 }, anomaly: undefined }
          : this.reserved
          ? settlementUsage({
              sentUpstream: this.upstreamSentAt !== undefined,
              status: this.upstreamStatus,
              reported,
              reserved: this.reserved,
              bounds: this.usageBounds(this.reserved),
              responseBytes: this.responseBytes,
              streamed: this.stream !== undefined,
            })
          : null;
        if (s && (reported || s.anomaly)) {
          this.usage = s.usage;
          this.usageAnomaly = s.anomaly ?? this.usageAnomaly;
        }
        const actual: CostEstimate | null = s ? { usd: this.costOf(s.usage), inputTokens: s.usage.inputTokens, outputTokens: s.usage.outputTokens } : null;
        budgets = await this.svc.budgets.settle(this.admission, actual);
      }
    } catch (err) {
      this.svc.log.error({ err, requestId: this.requestId }, 'budget settle failed');
    }
    publishOutcome(this.lineage(reason, detail, budgets), this.svc.lineage, this.svc.consumers, this.svc.log);
  }

  private lineage(reason: EndReason, detail: string | undefined, budgets: LineageRecord['budgets']): LineageRecord {
    const end = this.svc.now();
    const p = this.principal;
    const d = this.decision;
    const c = this.candidate;
    const u = this.usage;
    const procUs = Object.values(this.phaseUs).reduce((a, b) => a + b, 0);
    const upstreamTotalMs = this.upstreamSentAt ? Number(process.hrtime.bigint() - this.upstreamSentAt) / 1e6 : undefined;
    const err = this.error;
    const names = this.names;
    // Every client-chosen name first, so names.text() knows what to replace in messages and keys.
    const requestedModel = names.name(this.clientReq?.model);
    for (const m of this.namedModels) names.name(m);
    const dropped = this.dropped.map((x) => droppedCandidate(x, names));
    // Priced once for both costUsd and its components (costOf() would price the same usage again).
    const cost = u ? this.costComponents(u) : undefined;
    const outputRedactions = this.redaction?.output?.report();
    const record: LineageRecord = {
      requestId: this.requestId || newRequestId(),
      decisionId: d?.id ?? newHexId(),
      trace: this.trace
        ? { traceId: this.trace.traceId, spanId: this.trace.spanId, parentSpanId: this.trace.parentSpanId, sampled: this.trace.sampled }
        : undefined,
      startTime: this.started,
      endTime: end,
      principal: p
        ? {
            keyId: p.keyId || undefined,
            tenant: p.tenant,
            team: p.team || undefined,
            user: p.user || undefined,
            authMethod: p.authMethod === 'key' ? 'virtual_key' : 'jwt',
            groups: p.groups.length ? p.groups : undefined,
          }
        : { authMethod: 'none' },
      request: {
        clientApi: this.api,
        // A retrieved model's id is client text: lineage keeps the route, not the id.
        endpoint: this.endpoint?.kind === 'models' && this.endpoint.id !== undefined ? '/v1/models/{id}' : pathOnly(this.path) || '/',
        method: this.method || undefined,
        requestedModel,
        stream: this.clientReq?.stream,
        requestBytes: this.requestBytes,
        responseBytes: this.responseBytes,
        clientRequestId: this.clientRequestId,
      },
      served: c && this.upstreamSentAt && (!this.chain || this.servedAttempt > 0)
        ? {
            provider: c.provider.name,
            model: names.name(c.model.name),
            upstreamModel: names.upstream(c.deployment.upstreamModel, c.model.name),
            deployment: c.deployment.id,
            cluster: this.chain?.cluster ?? c.provider.cluster,
            region: c.deployment.region,
          }
        : undefined,
      attempts: this.chain
        ? this.chainAttempts(upstreamTotalMs)
        : c && this.upstreamSentAt
        ? [
            {
              provider: c.provider.name,
              deployment: c.deployment.id,
              status: this.upstreamStatus,
              latencyMs: round3(upstreamTotalMs ?? 0) ?? 0,
              errorClass: this.upstreamStatus >= 400 ? `http_${this.upstreamStatus}` : this.outcome === 'aborted' ? 'aborted' : undefined,
            },
          ]
        : undefined,
      policy: d
        ? {
            bundleRevision: d.revision,
            rules: d.rules.map((r) => ({
              policy: r.policy,
              rule: r.rule,
              kind: r.kind,
              outcome: ruleResult(r.outcome),
              message: names.text(r.message),
            })),
            dryRunDenies: d.dryRunDenials.map((x) => {
              const [policy, ...rest] = x.rule.split('/');
              return { policy: policy ?? x.rule, rule: rest.join('/') || x.rule, message: names.text(x.message) };
            }),
            labels: Object.keys(d.labels).length ? d.labels : undefined,
            droppedCandidates: dropped.length ? dropped : undefined,
          }
        : undefined,
      redactions: outputRedactions?.length ? this.redactionReport.concat(outputRedactions) : this.redactionReport.slice(),
      budgets: names.changed ? budgets?.map((b) => (b.scopeKey ? { ...b, scopeKey: names.text(b.scopeKey) } : b)) : budgets,
      tokens: u
        ? {
            input: u.inputTokens,
            output: u.outputTokens,
            cached: u.cachedInputTokens,
            reasoning: u.reasoningTokens,
            cacheWrite: u.cacheCreationInputTokens,
            cacheWrite1h: u.cacheCreation1hInputTokens,
            estimated: u.estimated,
            anomaly: this.usageAnomaly,
          }
        : undefined,
      costUsd: u ? (cost?.totalUsd ?? 0) : undefined,
      costComponents: lineageCost(cost),
      latency: {
        requestHeadersUs: round3(this.phaseUs.requestHeadersUs),
        requestBodyUs: round3(this.phaseUs.requestBodyUs),
        responseHeadersUs: round3(this.phaseUs.responseHeadersUs),
        responseBodyUs: round3(this.phaseUs.responseBodyUs),
        policyEvalUs: round3(this.policyUs),
        redactionUs: round3(this.redactionUs),
        processingTotalUs: round3(procUs),
        upstreamTtfbMs: this.firstByteAt && this.upstreamSentAt ? round3(Number(this.firstByteAt - this.upstreamSentAt) / 1e6) : undefined,
        upstreamTotalMs: upstreamTotalMs !== undefined ? round3(upstreamTotalMs) : undefined,
        totalMs: round3(Number(process.hrtime.bigint() - this.t0) / 1e6),
      },
      statusCode: reason === 'aborted' ? this.clientStatus || 499 : this.clientStatus,
      outcome: this.outcome ?? 'gateway_error',
      errorClass: err ? err.kind : reason === 'aborted' ? 'aborted' : reason === 'protocol_error' ? 'protocol_error' : undefined,
      errorCode: err?.code ?? (detail && reason !== 'completed' && reason !== 'rejected' ? truncate(detail, 120) : undefined),
      content: {
        promptSha256: this.promptHash,
        responseSha256: this.responseBytes ? this.responseHash.digestHex() : undefined,
      },
      gatewayInstance: this.svc.instance,
    };
    return record;
  }
}

/** Cost components for lineage (the total is `costUsd`). */
function lineageCost(c: CostComponents | undefined): LineageRecord['costComponents'] {
  if (!c) return undefined;
  return {
    inputUsd: c.inputUsd,
    cacheReadUsd: c.cacheReadUsd,
    cacheWrite5mUsd: c.cacheWrite5mUsd,
    cacheWrite1hUsd: c.cacheWrite1hUsd,
    outputUsd: c.outputUsd,
    reasoningUsd: c.reasoningUsd,
    longContext: c.longContext || undefined,
  };
}

/** A model verdict as the router's model check. */
function modelCheck(v: ModelVerdict): ModelCheckResult {
  if (!v.denied) return { ok: true, check: (d) => v.routeCheck(d) };
  return { ok: false, rule: v.denied.rule, message: v.denied.message, status: v.denied.status, code: v.denied.reason };
}

/**
 * Budgets and rate limits to admit: the verdict of the model that serves. A fallback chain's
 * members are deployments of one model (config validation), so one verdict covers every attempt
 * Envoy may make; anything else fails closed.
 */
function limitsFor(members: readonly Candidate[], verdicts: ReadonlyMap<string, ModelVerdict>): ModelVerdict {
  const names = new Set(members.map((c) => c.model.name));
  const v = names.size === 1 ? verdicts.get(members[0]!.model.name) : undefined;
  if (!v || v.denied) throw new GatewayError('internal', `no single policy verdict for the models routed to: ${[...names].join(', ')}`);
  return v;
}

function droppedCandidate(x: PolicyDrop, names: ModelNameScrubber): DroppedCandidate {
  const slash = x.rule.indexOf('/');
  return {
    model: names.name(x.model),
    param: x.param,
    ...(x.deployment !== undefined ? { deployment: x.deployment } : {}),
    // A denial without a rule is Tollgate failing closed (e.g. a model it could not evaluate).
    policy: slash > 0 ? x.rule.slice(0, slash) : 'tollgate',
    rule: slash > 0 ? x.rule.slice(slash + 1) : x.rule || 'policy_error',
    message: names.text(x.message),
  };
}

function round3(n: number | undefined): number | undefined {
  return n === undefined ? undefined : Math.round(n * 1000) / 1000;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function tooLarge(size: number, max: number): GatewayError {
  return new GatewayError('too_large', `Request body is ${size} bytes; the limit is ${max} bytes.`, { code: 'request_too_large' });
}

function validRequestId(v: string | undefined): string | undefined {
  return v && /^[A-Za-z0-9._:-]{8,128}$/.test(v) ? v : undefined;
}

function pickHeaders(h: Map<string, string>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = h.get(n);
    if (v !== undefined) out[n] = v;
  }
  return out;
}

function isStreamContentType(ct: string): boolean {
  return ct.startsWith('text/event-stream') || ct.startsWith('application/vnd.amazon.eventstream');
}

/** The reservation's price at a candidate's rates. */
function priceOf(c: Candidate, t: TokenCounts): number {
  return reservationCost(t.inputTokens, t.outputTokens, c.deployment);
}

const OUTPUT_LIMIT_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'];

/** The client set an output limit (providers never exceed it); else the provider's default applies. */
function hasOutputLimit(body: Record<string, unknown>): boolean {
  return OUTPUT_LIMIT_FIELDS.some((k) => {
    const v = body[k];
    return typeof v === 'number' && Number.isFinite(v) && v > 0;
  });
}

export function maxOutputTokens(body: Record<string, unknown>): number {
  for (const k of OUTPUT_LIMIT_FIELDS) {
    const v = body[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.floor(v);
  }
  return DEFAULT_MAX_OUTPUT_TOKENS;
}

function outcomeOfRejection(err: GatewayError | undefined): Outcome {
  if (!err) return 'gateway_error';
  switch (err.kind) {
    case 'permission':
      return 'denied';
    case 'rate_limit':
      if (err instanceof LimitExceededError) return err.limitKind === 'budget' ? 'budget_exceeded' : 'rate_limited';
      return err.code.includes('budget') ? 'budget_exceeded' : 'rate_limited';
    case 'internal':
      return 'gateway_error';
    case 'upstream':
    case 'unavailable':
    case 'timeout':
      return err.code === 'budget_store_unavailable' ? 'gateway_error' : 'provider_error';
    default:
      return 'client_error';
  }
}

/**
 * Sets each header of `h` on `m`, in order, but `except`. A for-in loop because this runs several times per request
 * and Object.entries builds an array per header; the objects are plain records (no inherited enumerable keys).
 */
function setHeaders(m: MutationBuilderType, h: Readonly<Record<string, string>>, except?: string): void {
  for (const k in h) if (k !== except) m.setHeader(k, h[k] as string);
}
