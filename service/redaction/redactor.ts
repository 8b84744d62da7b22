// compileRedactor(rules, custom) → Redactor: redacts every string (and long integer) in a client request body,
// whatever its shape, and builds the response-side transform (output redaction + surrogate restoration).

import { createHmac, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.ts';
import type { CustomDetectorSpec, RedactionAction, RedactionRule } from './types.ts';
import type { Detector } from './detectors.ts';
import { BUILTIN_BY_NAME, DETECTOR_GROUPS } from './detectors.ts';
import { compileCustomDetector, customDetectorProblems } from './custom.ts';
import { Scanner, foldString, type Finding } from './scan.ts';
import { base64Text, toBase64Like } from './encoded.ts';
import { Restorer, type TextStream } from './restore.ts';
import { RedactionBlockedError, ReportBuilder, emptyReport, type RedactionReport } from './report.ts';
import { RedactStream } from './stream.ts';

export interface RequestContext {
  /** Per-tenant HMAC key for the `hash` action (≥ 16 bytes). Wins over a key derived from `tenant`. */
  tenantKey?: Buffer;
  /** Tenant id: with the redactor's `secret`, derives the tenant's HMAC key (HMAC-SHA256(secret, tenant)). */
  tenant?: string;
}

export interface RedactorOptions {
  /** Gateway secret from which per-tenant `hash` keys are derived (≥ 16 bytes). */
  secret?: string | Buffer;
  /** Tests only: false turns the scanners' shortcuts off (the reference they are compared against). */
  prefilter?: boolean;
}

/** How an output channel's text is written. */
export interface OutputTextOptions {
  /**
   * The text is JSON source, whole or a streamed fragment (OpenAI tool-call `arguments`, Anthropic
   * `input_json_delta.partial_json`): restored originals are inserted JSON-string-escaped so it stays valid JSON.
   */
  json?: boolean;
}

/** Response-side work for one request: redact model output (rules with `responses: true`), then restore surrogates. */
export interface OutputTransform {
  /** A whole (non-streamed) text field of the response. `channel` names it in the report. */
  text(text: string, channel?: string, opts?: OutputTextOptions): string;
  /** One stream per text channel (e.g. per choice's `delta.content`, per tool call's arguments). */
  stream(channel?: string, opts?: OutputTextOptions): TextStream;
  /** Findings on the response path so far. */
  report(): RedactionReport;
}

export interface RedactionResult {
  /**
   * The redacted body: the same object that was passed in, redacted in place (each changed top-level property is
   * replaced by a redacted copy; nested objects of the original are not modified).
   */
  body: Record<string, unknown>;
  report: RedactionReport;
  /** Present when the request was pseudonymized: puts originals back into model output. */
  restorer?: Restorer;
  /**
   * Present when a rule has `responses: true`: redacts model output only. It never touches surrogates nor the
   * originals they stand for, so it may run before or after the restorer.
   */
  responseFilter?: OutputTransform;
  /** Present when either is: output redaction then restoration, in one transform. Prefer this. */
  output?: OutputTransform;
}

export const REDACTION_LIMITS = {
  /** Deepest JSON nesting walked (including JSON inside strings); deeper bodies are rejected. */
  maxDepth: 128,
  /** Strings that hold JSON are parsed and walked up to this size; larger ones are scanned as text. */
  maxEmbeddedJson: 4 * 1024 * 1024,
  /** Keys used as left context (`"phone": "…"`) up to this length. */
  maxContextKey: 40,
} as const;

// Strength when several rules cover one detector: the most protective wins.
const STRENGTH: Record<RedactionAction, number> = { block: 3, mask: 2, hash: 1, pseudonymize: 0 };

interface Plan {
  action: RedactionAction;
  rule: string;
}

/** Expands rule detector names (groups, `*`, custom) to detectors; lists problems instead of throwing. */
function resolve(
  rules: readonly RedactionRule[],
  custom: ReadonlyMap<string, Detector>,
  problems: string[],
): { request: Map<Detector, Plan>; response: Map<Detector, Plan> } {
  const request = new Map<Detector, Plan>();
  const response = new Map<Detector, Plan>();
  const put = (map: Map<Detector, Plan>, d: Detector, plan: Plan): void => {
    const cur = map.get(d);
    if (cur === undefined || STRENGTH[plan.action] > STRENGTH[cur.action]) map.set(d, plan);
  };
  for (const rule of rules) {
    if (!(rule.action in STRENGTH)) {
      problems.push(`rule ${rule.source}: unknown action "${String(rule.action)}"`);
      continue;
    }
    if (rule.detectors.length === 0) problems.push(`rule ${rule.source}: no detectors`);
    for (const name of rule.detectors) {
      const group = DETECTOR_GROUPS[name];
      const ds: Detector[] = [];
      if (group !== undefined) for (const n of group) ds.push(BUILTIN_BY_NAME.get(n) as Detector);
      else if (BUILTIN_BY_NAME.has(name)) ds.push(BUILTIN_BY_NAME.get(name) as Detector);
      else if (custom.has(name)) ds.push(custom.get(name) as Detector);
      else {
        problems.push(`rule ${rule.source}: unknown detector "${name}"`);
        continue;
      }
      for (const d of ds) {
        put(request, d, { action: rule.action, rule: rule.source });
        // Output can be neither blocked (headers are gone) nor usefully pseudonymized: both mask.
        if (rule.responses) {
          const action = rule.action === 'hash' ? 'hash' : 'mask';
          put(response, d, { action, rule: rule.source });
        }
      }
    }
  }
  return { request, response };
}

/**
 * Every problem with a redaction configuration, as human messages ([] when fine). For load-time validation:
 * unknown detector names, bad custom detectors (invalid RE2, bad names, empty keyword lists), unknown actions.
 */
export function redactionConfigProblems(
  rules: readonly RedactionRule[],
  custom: readonly CustomDetectorSpec[],
): string[] {
  const problems: string[] = [];
  const compiled = new Map<string, Detector>();
  const seen = new Set<string>();
  for (const spec of custom) {
    if (seen.has(spec.name)) problems.push(`custom detector "${spec.name}" is defined twice`);
    seen.add(spec.name);
    const p = customDetectorProblems(spec);
    problems.push(...p);
    if (p.length === 0) compiled.set(spec.name, compileCustomDetector(spec));
  }
  resolve(rules, compiled, problems);
  return problems;
}

function configError(problems: string[]): GatewayError {
  return new GatewayError('internal', `redaction is misconfigured: ${problems.join('; ')}`, {
    code: 'redaction_config_error',
  });
}

// ----------------------------------------------------------------------------------------------------------------
// Walking the body

// Values of `role` and `type` are enum discriminators; skipped only when they look like one (lower-case letters and
// `_`), which no built-in detector can match, so the skip only protects them from custom keywords ("user", "tool").
// Top-level enum-like parameters, same rule. `model` is skipped outright: it must name a catalog model, which the
// router checks, and it is replaced by the deployment's upstream model before anything leaves the gateway.
const TOP_ENUM_KEYS = new Set(['tool_choice', 'reasoning_effort', 'service_tier', 'encoding_format', 'verbosity', 'truncation']);

/**
 * An enum-like value: 1–40 lower-case letters and `_` (/^[a-z_]{1,40}$/), checked without a regex call since it
 * runs on every message's `role` (exported for the test comparing the two).
 */
export function isEnumValue(v: string): boolean {
  if (v.length === 0 || v.length > 40) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 97 || c > 122) && c !== 95) return false;
  }
  return true;
}

// Base64 payloads (images, audio, files): a data URL, or a blob key's value that is entirely base64. Binary ones
// are skipped (they cannot carry readable text; scanning them only yields false positives); text ones (a
// `text/plain` document, an Anthropic base64 text source, JSON, CSV…) are decoded, redacted, and re-encoded.
// Cost: binaries are judged on their first 3 KiB (encoded.ts); text is scanned once, like the same text sent plain.
const DATA_URL = /^data:[\w.+\/-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,/;
const BASE64 = /^[A-Za-z0-9+\/=\r\n_-]*$/;
const BLOB_KEYS = new Set(['data', 'file_data', 'b64_json', 'image_base64', 'audio_base64']);
const IDENT = /^[A-Za-z_$][\w$]*$/;
// Property names that are left context for a detector ("phone": "4155552671", "aws_secret": "…").
const CONTEXT_KEY = /phone|tel|mobile|cell|fax|sms|whatsapp|call|contact|ssn|social|soc_?sec|secret|aws|amazon|akia|asia/i;
const CLEAN_KEY_CACHE = 10_000;
const IDENT_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

type Seg = string | number;

function formatPath(segs: readonly Seg[]): string {
  let out = '';
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (s.startsWith('\u0000')) out += s.slice(1); // pre-rendered step: [json], [#key3]
    else if (IDENT.test(s)) out += out.length === 0 ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

const SURROGATE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32

/**
 * Per-request state: placeholder numbering, surrogates, report. Shared by the request and response paths.
 * Each part is built on first use: most requests find nothing, and a session is built for every one of them.
 */
class Session {
  private requestReport: ReportBuilder | undefined;
  private outputReport: ReportBuilder | undefined;
  private surrogateMap: Restorer | undefined;
  private placeholders: Map<string, string> | undefined;
  private counters: Map<string, number> | undefined;
  private surrogates: Map<string, string> | undefined;

  constructor(private readonly tenantKey: Buffer | undefined) {}

  get report(): ReportBuilder {
    return (this.requestReport ??= new ReportBuilder());
  }

  get responseReport(): ReportBuilder {
    return (this.outputReport ??= new ReportBuilder());
  }

  get restorer(): Restorer {
    return (this.surrogateMap ??= new Restorer());
  }

  /** Request-path findings so far. */
  get findings(): number {
    return this.requestReport === undefined ? 0 : this.requestReport.size;
  }

  /** Surrogates minted so far. */
  get pseudonyms(): number {
    return this.surrogateMap === undefined ? 0 : this.surrogateMap.size;
  }

  /** The request-path report (the same shape ReportBuilder.build gives for no findings when there were none). */
  buildReport(): RedactionReport {
    return this.requestReport === undefined ? emptyReport() : this.requestReport.build();
  }

  replacement(d: Detector, action: RedactionAction, value: string): string {
    // Folded first, so `٤١١١…`, `jane\u2063@x.com` or `%40` spellings share the plain value's placeholder.
    const norm = d.normalize(foldString(value));
    const key = `${d.label}\u0000${norm}`;
    if (action === 'pseudonymize') {
      const surrogates = (this.surrogates ??= new Map());
      let s = surrogates.get(key);
      if (s === undefined) {
        do s = `${d.label}_${randomToken(8)}`;
        while (this.restorer.has(s));
        surrogates.set(key, s);
        this.restorer.add(s, value);
      }
      return s;
    }
    if (action === 'hash') {
      // Keyed, so stable per tenant but useless for dictionary attacks without the key.
      const mac = createHmac('sha256', this.tenantKey as Buffer).update(key).digest('hex');
      return `[${d.label}:${mac.slice(0, 8)}]`;
    }
    const mkey = `m${key}`;
    const placeholders = (this.placeholders ??= new Map());
    const counters = (this.counters ??= new Map());
    let p = placeholders.get(mkey);
    if (p === undefined) {
      const n = (counters.get(d.label) ?? 0) + 1;
      counters.set(d.label, n);
      p = `[${d.label}_${n}]`;
      placeholders.set(mkey, p);
    }
    return p;
  }
}

function randomToken(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += SURROGATE_ALPHABET[bytes[i] & 31];
  return s;
}

export class Redactor {
  readonly rules: readonly RedactionRule[];
  /** Detector names active on the request path (after expanding groups). */
  readonly requestDetectors: readonly string[];
  /** Detector names active on the response path. */
  readonly responseDetectors: readonly string[];
  private readonly requestPlans: Map<Detector, Plan>;
  private readonly responsePlans: Map<Detector, Plan>;
  private readonly requestScanner: Scanner;
  /** For object keys that are plain identifiers ("text", "content"): built-ins only, so a custom keyword can't
   * rename a structural field; built-ins still catch identifier-shaped secrets (AKIA…, ghp_…). */
  private readonly identKeyScanner: Scanner;
  private readonly responseScanner: Scanner | undefined;
  private readonly needsKey: boolean;
  private readonly cleanKeys = new Set<string>();
  private readonly contextKeys = new Map<string, boolean>();
  private readonly secret: Buffer | undefined;
  private readonly tenantKeys = new Map<string, Buffer>();

  /** Use compileRedactor(). */
  constructor(rules: readonly RedactionRule[], custom: readonly CustomDetectorSpec[], opts: RedactorOptions = {}) {
    this.secret = opts.secret === undefined ? undefined : Buffer.from(opts.secret);
    const problems = redactionConfigProblems(rules, custom);
    if (problems.length > 0) throw configError(problems);
    const compiled = new Map<string, Detector>();
    for (const spec of custom) compiled.set(spec.name, compileCustomDetector(spec));
    const { request, response } = resolve(rules, compiled, problems);
    this.rules = rules;
    this.requestPlans = request;
    this.responsePlans = response;
    const scan = { prefilter: opts.prefilter !== false };
    this.requestScanner = new Scanner([...request.keys()], scan);
    this.identKeyScanner = new Scanner([...request.keys()].filter((d) => BUILTIN_BY_NAME.get(d.name) === d), scan);
    this.responseScanner = response.size > 0 ? new Scanner([...response.keys()], scan) : undefined;
    this.requestDetectors = [...request.keys()].map((d) => d.name);
    this.responseDetectors = [...response.keys()].map((d) => d.name);
    this.needsKey = [...request.values(), ...response.values()].some((p) => p.action === 'hash');
  }

  /** True when the redactor does nothing (no rules). */
  get empty(): boolean {
    return this.requestPlans.size === 0 && this.responsePlans.size === 0;
  }

  private session(ctx: RequestContext): Session {
    if (!this.needsKey) return new Session(undefined);
    let key = ctx.tenantKey;
    if (key === undefined && ctx.tenant !== undefined && this.secret !== undefined) key = this.tenantKey(ctx.tenant);
    if (key === undefined || key.length < 16) {
      // Fail closed: hashing without a secret key would make the hashes guessable.
      throw new GatewayError('internal', 'redaction rule uses `hash` but no tenant key or redaction secret (≥16 bytes) is configured', {
        code: 'redaction_config_error',
      });
    }
    return new Session(key);
  }

  private tenantKey(tenant: string): Buffer {
    let k = this.tenantKeys.get(tenant);
    if (k === undefined) {
      k = createHmac('sha256', this.secret as Buffer).update(`tollgate/redaction/v1/${tenant}`).digest();
      if (this.tenantKeys.size >= 10_000) this.tenantKeys.clear();
      this.tenantKeys.set(tenant, k);
    }
    return k;
  }

  /**
   * Redacts a parsed client request (OpenAI chat/responses, Anthropic messages, embeddings, or anything else):
   * every string leaf, object key and long integer is scanned, except the documented enum/binary fields.
   * Throws RedactionBlockedError (a GatewayError, 403 `pii_blocked`) when a `block` rule matched, and
   * GatewayError for a body nested deeper than REDACTION_LIMITS.maxDepth.
   */
  redactRequest(body: Record<string, unknown>, ctx: RequestContext = {}): RedactionResult {
    if (this.empty) return { body, report: emptyReport() };
    const session = this.session(ctx);
    let out = body;
    if (this.requestPlans.size > 0) {
      const segs: Seg[] = [];
      out = this.walk(body, segs, 0, undefined, session, true) as Record<string, unknown>;
    }
    const report = session.buildReport();
    if (report.blocked.length > 0) throw new RedactionBlockedError(report, session.report.firstBlockedPath);
    if (out !== body) {
      for (const k of Object.keys(body)) if (!(k in out)) delete body[k];
      for (const k of Object.keys(out)) if (body[k] !== out[k]) body[k] = out[k];
    }
    const result: RedactionResult = { body, report };
    if (session.pseudonyms > 0) result.restorer = session.restorer;
    if (this.responseScanner !== undefined) result.responseFilter = this.output(session, false);
    if (session.pseudonyms > 0 || this.responseScanner !== undefined) result.output = this.output(session, true);
    return result;
  }

  /** Redacts one free-standing text with request-path semantics (e.g. a prompt template). Throws on `block`. */
  redactText(text: string, ctx: RequestContext = {}, path = 'text'): { text: string; report: RedactionReport; restorer?: Restorer } {
    const session = this.session(ctx);
    const out = this.redactString(text, [path], undefined, session);
    const report = session.buildReport();
    if (report.blocked.length > 0) throw new RedactionBlockedError(report, path);
    return session.pseudonyms > 0 ? { text: out, report, restorer: session.restorer } : { text: out, report };
  }

  /** Output redaction for a response whose request went through no redactRequest (e.g. a cached replay). */
  outputTransform(ctx: RequestContext = {}): OutputTransform | undefined {
    if (this.responseScanner === undefined) return undefined;
    return this.output(this.session(ctx), false);
  }

  // --------------------------------------------------------------------------------------------------------------

  private walk(v: unknown, segs: Seg[], depth: number, key: string | undefined, s: Session, top: boolean): unknown {
    if (depth > REDACTION_LIMITS.maxDepth) {
      throw new GatewayError('invalid_request', `request body is nested more than ${REDACTION_LIMITS.maxDepth} levels deep`, {
        code: 'body_too_deep',
      });
    }
    if (typeof v === 'string') return this.walkBase64(v, key, segs, depth, s) ?? this.walkString(v, segs, depth, key, s);
    if (typeof v === 'number') return this.walkNumber(v, segs, key, s);
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        segs.push(i);
        const nv = this.walk(v[i], segs, depth + 1, key, s, false);
        segs.pop();
        if (nv !== v[i]) {
          copy ??= v.slice();
          copy[i] = nv;
        }
      }
      return copy ?? v;
    }
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    // Allocated at the first change only: most objects come through unchanged.
    let newKeys: string[] | undefined;
    let newVals: unknown[] | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const val = obj[k];
      // The key itself can carry text (`{"john@x.com": …}`).
      let nk = k;
      if (!this.cleanKeys.has(k)) {
        segs.push(`\u0000[#key${i}]`);
        const before = s.findings;
        nk = this.redactString(k, segs, undefined, s, IDENT_KEY.test(k) ? this.identKeyScanner : this.requestScanner);
        segs.pop();
        // Keys repeat across requests ("role", "content"…): remember the ones that matched nothing.
        if (s.findings === before && this.cleanKeys.size < CLEAN_KEY_CACHE) this.cleanKeys.add(k);
      }
      segs.push(nk);
      let nv: unknown;
      if (typeof val === 'string' && this.skipString(val, k, top)) nv = val;
      else if (top && k === 'model' && typeof val === 'string') nv = val;
      else nv = this.walk(val, segs, depth + 1, k, s, false);
      segs.pop();
      if (newKeys === undefined && (nk !== k || nv !== val)) {
        newKeys = keys.slice(0, i);
        newVals = new Array(keys.length);
        for (let j = 0; j < i; j++) newVals[j] = obj[keys[j]];
      }
      if (newKeys !== undefined) {
        newKeys[i] = nk;
        (newVals as unknown[])[i] = nv;
      }
    }
    if (newKeys === undefined || newVals === undefined) return obj;
    const res: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) res[newKeys[i]] = newVals[i];
    return res;
  }

  /** CONTEXT_KEY.test(key), remembered: the same few property names come with every string. */
  private isContextKey(key: string): boolean {
    let hit = this.contextKeys.get(key);
    if (hit === undefined) {
      hit = CONTEXT_KEY.test(key);
      if (this.contextKeys.size >= CLEAN_KEY_CACHE) this.contextKeys.clear();
      this.contextKeys.set(key, hit);
    }
    return hit;
  }

  private skipString(v: string, key: string, top: boolean): boolean {
    return (key === 'role' || key === 'type' || (top && TOP_ENUM_KEYS.has(key))) && isEnumValue(v);
  }

  /**
   * A base64 payload (data URL, or a blob key's all-base64 value of ≥ 64 chars): undefined when `v` is not one;
   * else `v` itself when binary or unchanged, or the payload with its text redacted and re-encoded.
   */
  private walkBase64(v: string, key: string | undefined, segs: Seg[], depth: number, s: Session): string | undefined {
    if (v.length < 64) return undefined;
    let head = '';
    if (v.startsWith('data:')) {
      const m = DATA_URL.exec(v);
      if (m === null) return undefined;
      head = m[0];
    } else if (key === undefined || !BLOB_KEYS.has(key)) {
      return undefined;
    }
    const payload = head === '' ? v : v.slice(head.length);
    if (!BASE64.test(payload)) return undefined;
    const text = base64Text(payload, 1);
    if (text === undefined) return v;
    segs.push('\u0000[base64]');
    const out = this.walkString(text, segs, depth + 1, undefined, s);
    segs.pop();
    return out === text ? v : head + toBase64Like(out, payload);
  }

  private walkString(v: string, segs: Seg[], depth: number, key: string | undefined, s: Session): string {
    // JSON inside a string (tool-call arguments, tool results): walk it parsed, so escapes like \u0040 can't hide
    // an '@', and re-serialize only if something changed (it stays valid JSON).
    const c = v.length >= 2 ? v.charCodeAt(0) : 0;
    const isJsonish = c === 123 || c === 91 || ((c === 32 || c === 10 || c === 13 || c === 9) && /^\s*[[{]/.test(v));
    if (isJsonish && v.length <= REDACTION_LIMITS.maxEmbeddedJson) {
      let parsed: unknown;
      let ok = false;
      try {
        parsed = JSON.parse(v);
        ok = typeof parsed === 'object' && parsed !== null;
      } catch {
        ok = false;
      }
      if (ok) {
        segs.push('\u0000[json]');
        const nv = this.walk(parsed, segs, depth + 1, undefined, s, false);
        segs.pop();
        return nv === parsed ? v : JSON.stringify(nv);
      }
    }
    return this.redactString(v, segs, key, s);
  }

  private walkNumber(n: number, segs: Seg[], key: string | undefined, s: Session): unknown {
    // Card numbers and phone numbers sent as JSON numbers; small numbers (params, counts) can't match anything.
    if (!Number.isSafeInteger(n) || Math.abs(n) < 1_000_000) return n;
    const str = String(n);
    const out = this.redactString(str, segs, key, s);
    return out === str ? n : out;
  }

  /** Redacts one string; `key` (the property name) is left context for detectors that need it. */
  private redactString(
    text: string,
    segs: readonly Seg[],
    key: string | undefined,
    s: Session,
    scanner: Scanner = this.requestScanner,
  ): string {
    if (text.length === 0) return text;
    let findings: Finding[];
    if (key !== undefined && key.length <= REDACTION_LIMITS.maxContextKey && this.isContextKey(key)) {
      const prefix = `${key}: `;
      findings = scanner.scan(prefix + text);
      const p = prefix.length;
      findings = findings.filter((f) => f.end > p);
      for (const f of findings) {
        f.start = Math.max(0, f.start - p);
        f.end -= p;
      }
    } else {
      findings = scanner.scan(text);
    }
    if (findings.length === 0) return text;
    const path = formatPath(segs);
    let out = '';
    let last = 0;
    for (const f of findings) {
      const plan = planFor(f, this.requestPlans);
      s.report.add({ detector: f.detector.name, action: plan.action, rule: plan.rule, path, start: f.start, end: f.end });
      if (plan.action === 'block') continue;
      out += text.slice(last, f.start) + s.replacement(f.detector, plan.action, text.slice(f.start, f.end));
      last = f.end;
    }
    return last === 0 && out === '' ? text : out + text.slice(last);
  }

  // --------------------------------------------------------------------------------------------------------------
  // Response path

  private output(s: Session, restore: boolean): OutputTransform {
    return new SessionOutput(this.responseScanner, this.responsePlans, s, restore);
  }
}

/**
 * One request's response-side transform. A class rather than closures: one is built per redacted request (two
 * with `responseFilter`), and the methods need no per-request function objects.
 */
class SessionOutput implements OutputTransform {
  constructor(
    private readonly scanner: Scanner | undefined,
    private readonly plans: Map<Detector, Plan>,
    private readonly s: Session,
    private readonly restore: boolean,
  ) {}

  // Surrogates in the output are ours (restored, not redacted), and so are the originals they restore to: the
  // client chose to get its own pseudonymized data back.
  private scan(text: string): Finding[] {
    const scanner = this.scanner;
    if (scanner === undefined) return [];
    let fs = scanner.scan(text);
    if (fs.length === 0 || this.s.pseudonyms === 0) return fs;
    const restorer = this.s.restorer;
    fs = fs.filter((f) => !restorer.isOriginal(text.slice(f.start, f.end)));
    const protectedSpans = restorer.spans(text);
    if (protectedSpans.length === 0) return fs;
    return fs.filter((f) => !protectedSpans.some((p) => p.start < f.end && f.start < p.end));
  }

  private apply(text: string, findings: readonly Finding[], base: number, channel: string): string {
    const s = this.s;
    let out = '';
    let last = 0;
    for (const f of findings) {
      const plan = planFor(f, this.plans);
      s.responseReport.add({ detector: f.detector.name, action: plan.action, rule: plan.rule, path: channel, start: base + f.start, end: base + f.end });
      out += text.slice(last, f.start) + s.replacement(f.detector, plan.action, text.slice(f.start, f.end));
      last = f.end;
    }
    return out + text.slice(last);
  }

  text(text: string, channel = 'response', opts: OutputTextOptions = {}): string {
    const redacted = this.scanner === undefined ? text : this.apply(text, this.scan(text), 0, channel);
    return this.restore ? this.s.restorer.restoreText(redacted, opts.json === true) : redacted;
  }

  stream(channel = 'response', opts: OutputTextOptions = {}): TextStream {
    const scanner = this.scanner;
    const redact =
      scanner === undefined
        ? undefined
        : new RedactStream((t) => scanner.holdFrom(t), (t) => this.scan(t), (t, f, base) => this.apply(t, f, base, channel));
    if (!this.restore) return redact ?? { push: (t: string) => t, end: () => '' };
    const back = this.s.restorer.stream({ json: opts.json === true });
    if (redact === undefined) return back;
    return {
      push: (t: string): string => back.push(redact.push(t)),
      end: (): string => back.push(redact.end()) + back.end(),
    };
  }

  report(): RedactionReport {
    return this.s.responseReport.build();
  }
}

function planFor(f: Finding, plans: Map<Detector, Plan>): Plan {
  let best = plans.get(f.detector) as Plan;
  for (const m of f.members) {
    const p = plans.get(m) as Plan;
    if (STRENGTH[p.action] > STRENGTH[best.action]) best = p;
  }
  return best;
}

/** Compiles rules + custom detectors. Throws GatewayError('internal', code `redaction_config_error`) on bad config. */
export function compileRedactor(
  rules: readonly RedactionRule[],
  custom: readonly CustomDetectorSpec[] = [],
  opts: RedactorOptions = {},
): Redactor {
  return new Redactor(rules, custom, opts);
}

/** Cache key for a (rules, custom detectors) pair: only the fields that change behaviour, in a stable order. */
export function redactorKey(rules: readonly RedactionRule[], custom: readonly CustomDetectorSpec[]): string {
  const used = new Set(rules.flatMap((r) => r.detectors));
  return JSON.stringify([
    rules.map((r) => [r.source, r.action, r.responses, [...r.detectors].sort()]),
    custom
      .filter((c) => used.has(c.name))
      .map((c) => [c.name, c.regex ?? null, c.keywords ?? null, c.caseInsensitive === true])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  ]);
}

/** Default `hash` secret when none is configured: random, one per process. */
const PROCESS_SECRET = randomBytes(32);

/**
 * Compiled redactors by rule set (LRU). Keep one per config snapshot so a reload drops stale entries;
 * a request's policy decision yields (rules, custom) and get() returns the compiled redactor in ~µs.
 */
export class RedactorCache {
  private readonly map = new Map<string, Redactor>();
  /** The last key of `map` (its most recently used entry). */
  private newest: string | undefined;
  private readonly max: number;
  private readonly opts: RedactorOptions;

  constructor(opts: RedactorOptions & { max?: number } = {}) {
    this.max = opts.max ?? 256;
    // No configured secret (TOLLGATE_REDACTION_SECRET unset or empty): a random one per process, as documented —
    // `hash` stays keyed (unguessable) and stable for the life of the process instead of failing every request.
    const configured = opts.secret !== undefined && opts.secret.length > 0 ? opts.secret : undefined;
    this.opts = { secret: configured ?? PROCESS_SECRET };
  }

  get(rules: readonly RedactionRule[], custom: readonly CustomDetectorSpec[] = []): Redactor {
    const key = this.keyOf(rules, custom);
    const hit = this.map.get(key);
    if (hit !== undefined) {
      // Moved to the end (most recent) unless it is there already: one rule set serves most requests in a row,
      // and delete + set reshuffles the map's table each time.
      if (key !== this.newest) {
        this.map.delete(key);
        this.map.set(key, hit);
        this.newest = key;
      }
      return hit;
    }
    const r = compileRedactor(rules, custom.filter((c) => rules.some((rule) => rule.detectors.includes(c.name))), this.opts);
    this.map.set(key, r);
    this.newest = key;
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
    return r;
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * redactorKey(rules, custom), memoized: a request's decision builds new rule objects, but their
   * `detectors` arrays and the custom detector specs are the compiled policy's own (never mutated), so
   * the same (source, action, responses, detectors array, custom specs) always yields the same key.
   */
  private readonly keys: { rules: readonly RedactionRule[]; custom: readonly CustomDetectorSpec[]; key: string }[] = [];

  private keyOf(rules: readonly RedactionRule[], custom: readonly CustomDetectorSpec[]): string {
    for (const k of this.keys) if (sameRules(k.rules, rules) && sameRefs(k.custom, custom)) return k.key;
    const key = redactorKey(rules, custom);
    if (this.keys.length >= KEY_MEMO) this.keys.shift();
    this.keys.push({ rules: rules.map((r) => ({ ...r })), custom: [...custom], key });
    return key;
  }
}

const KEY_MEMO = 16;

function sameRules(a: readonly RedactionRule[], b: readonly RedactionRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.source !== y.source || x.action !== y.action || x.responses !== y.responses || x.detectors !== y.detectors) return false;
  }
  return true;
}

function sameRefs<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One lineage row per (detector, action): the shape of lineage's RedactionCount. */
export interface RedactionCountRow {
  detector: string;
  direction: 'request' | 'response';
  action: RedactionAction;
  count: number;
  /** Distinct paths (never values), at most `maxLocations`. */
  locations: string[];
}

/** Folds a report into per-(detector, action) rows for lineage records and metrics. */
export function toRedactionCounts(
  report: RedactionReport,
  direction: 'request' | 'response',
  maxLocations = 32,
): RedactionCountRow[] {
  if (report.tally.length === 0) return []; // the common case: nothing found
  const rows = new Map<string, RedactionCountRow>();
  for (const t of report.tally) {
    rows.set(`${t.detector}\u0000${t.action}`, { detector: t.detector, direction, action: t.action, count: t.count, locations: [] });
  }
  for (const f of report.findings) {
    const row = rows.get(`${f.detector}\u0000${f.action}`);
    if (row !== undefined && row.locations.length < maxLocations && !row.locations.includes(f.path)) row.locations.push(f.path);
  }
  return [...rows.values()];
}
