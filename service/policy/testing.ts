// `kind: PolicyTest` documents: cases of request + principal → expected decision, run against a
// compiled bundle (in the spirit of `opa test`). Output is one line per case, print-ready.
import { ConfigErrors, type ConfigDocument, type ConfigError } from '../config/documents.ts';
import type { TeamConfig, TenantConfig } from '../config/types.ts';
import { buildRequestInput } from './context.ts';
import { At, NAME_HINT, NAME_RE } from './spec.ts';
import type { Decision, DeploymentInfo, McpContext, McpDecision, PolicyBundle, PolicyInput } from './types.ts';

export interface PolicyTestOptions {
  /** Fill `tenant.attributes` / `team.attributes` from config when a case names only the tenant/team. */
  tenants?: readonly TenantConfig[];
  teams?: readonly TeamConfig[];
  /** Clock for cases without `now`. */
  now?: Date;
  /** Runs only the cases whose `<test>/<case>` id this accepts (`tollgate test --run`); the rest count as skipped. */
  only?: (id: string) => boolean;
}

export interface PolicyTestResult {
  passed: number;
  failed: number;
  /** Cases left out by `only`. */
  skipped: number;
  lines: string[];
}

type Json = Record<string, unknown>;

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const CASE_KEYS = ['name', 'description', 'request', 'principal', 'tenant', 'team', 'mcp', 'now', 'expect'];
const INPUT_KEYS = ['request', 'principal', 'tenant', 'team', 'mcp', 'now'];
/** An MCP case (docs/mcp.md): the JSON-RPC message judged by the mcp* rules instead of an LLM request. */
const MCP_KEYS = ['server', 'method', 'tool', 'arguments', 'sessionId'];
const REQUEST_KEYS = ['api', 'method', 'path', 'headers', 'body'];
const PRINCIPAL_KEYS = ['keyId', 'tenant', 'team', 'user', 'groups', 'claims', 'authMethod'];
const EXPECT_KEYS = [
  'allowed',
  'status',
  'reason',
  'message',
  'deniedBy',
  'routes',
  'redactions',
  'customDetectors',
  'budgets',
  'rateLimits',
  'transforms',
  'labels',
  'body',
  'dryRunDenials',
  'rules',
  'toolVisible',
];

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Case values over defaults, one level deep: `principal.user` in a case replaces only the user,
 * but `tenant.attributes` or `request.body` in a case replace the default's value wholesale.
 */
function mergeInput(defaults: Json, c: Json): Json {
  const out: Json = {};
  for (const k of INPUT_KEYS) {
    const d = defaults[k];
    const v = c[k];
    if (isObj(d) && isObj(v)) out[k] = structuredClone({ ...d, ...v });
    else if (v !== undefined) out[k] = structuredClone(v);
    else if (d !== undefined) out[k] = structuredClone(d);
  }
  return out;
}

/** Whether `actual` contains everything in `expected` (objects: subset of keys; arrays: same length). */
export function subsetMatch(expected: unknown, actual: unknown): boolean {
  if (isObj(expected)) {
    if (!isObj(actual)) return false;
    return Object.entries(expected).every(([k, v]) => subsetMatch(v, actual[k]));
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((v, i) => subsetMatch(v, actual[i]));
  }
  return expected === actual;
}

const show = (v: unknown): string => JSON.stringify(v);

function validateCaseShape(c: At, where: string): void {
  if (!c.object(CASE_KEYS, `a ${where}`)) return;
  validateInputShape(c);
  const e = c.key('expect');
  if (e.missing) {
    c.fail(`${c.label}: expect is required`);
    return;
  }
  if (!e.object(EXPECT_KEYS, 'expect')) return;
  e.key('allowed').bool();
  e.key('toolVisible').bool();
  e.key('status').number({ integer: true });
  for (const k of ['reason', 'message', 'deniedBy']) e.key(k).string();
  const r = e.key('routes');
  if (!r.missing && r.object(['allowed', 'denied', 'message'], 'expect.routes')) {
    r.key('allowed').stringList();
    r.key('denied').stringList();
    r.key('message').string();
  }
  for (const k of ['redactions', 'budgets', 'rateLimits']) e.key(k).list();
  for (const k of ['customDetectors', 'transforms', 'dryRunDenials']) e.key(k).stringList();
  if (!e.key('labels').missing) e.key('labels').entries();
  if (!e.key('rules').missing) e.key('rules').entries();
}

function validateInputShape(c: At): void {
  const r = c.key('request');
  if (!r.missing && r.object(REQUEST_KEYS, 'a test request')) {
    r.key('api').oneOf(['openai', 'anthropic'] as const);
    r.key('method').string();
    r.key('path').string();
    if (!r.key('headers').missing) r.key('headers').entries();
    if (!r.key('body').missing) r.key('body').entries();
  }
  const p = c.key('principal');
  if (!p.missing && p.object(PRINCIPAL_KEYS, 'a test principal')) {
    p.key('authMethod').oneOf(['key', 'jwt'] as const);
    p.key('groups').stringList();
  }
  for (const k of ['tenant', 'team']) {
    const t = c.key(k);
    if (!t.missing && t.object(k === 'tenant' ? ['name', 'attributes', 'timeZone'] : ['name', 'attributes'], `a test ${k}`)) t.key('name').string();
  }
  const m = c.key('mcp');
  if (!m.missing && m.object(MCP_KEYS, 'a test MCP message')) {
    for (const k of ['server', 'method', 'tool', 'sessionId']) m.key(k).string();
    if (!m.key('arguments').missing) m.key('arguments').entries();
  }
  const tz = c.key('tenant').key('timeZone').string();
  if (tz !== undefined && !validZone(tz)) c.fail(`${c.label}.tenant.timeZone: unknown time zone ${show(tz)}`, [...c.path, 'tenant', 'timeZone']);
  const now = c.key('now').string();
  if (now !== undefined && Number.isNaN(Date.parse(now))) c.fail(`${c.label}.now: ${show(now)} is not an RFC 3339 timestamp`, [...c.path, 'now']);
}

const PROVIDER_APIS = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock', 'vertex', 'mock'] as const;

/** A deployment declared by the test document itself (so tests do not depend on models.yaml ids). */
function readDeployment(at: At): DeploymentInfo | undefined {
  const keys = ['id', 'model', 'provider', 'providerApi', 'region', 'selfHosted', 'dataRetention', 'inputPricePerM', 'outputPricePerM', 'contextWindow'];
  if (!at.object(keys, 'a test deployment')) return undefined;
  const id = at.key('id').string({ required: true });
  const provider = at.key('provider').string({ required: true });
  const region = at.key('region').string({ required: true });
  if (id === undefined || provider === undefined || region === undefined) return undefined;
  return {
    id,
    model: at.key('model').string() ?? '',
    provider,
    providerApi: at.key('providerApi').oneOf(PROVIDER_APIS) ?? 'openai',
    region,
    selfHosted: at.key('selfHosted').bool() ?? false,
    dataRetention: at.key('dataRetention').bool() ?? false,
    inputPricePerM: at.key('inputPricePerM').number({ min: 0 }) ?? 0,
    outputPricePerM: at.key('outputPricePerM').number({ min: 0 }) ?? 0,
    contextWindow: at.key('contextWindow').number({ integer: true, positive: true }) ?? 128000,
  };
}

function buildInput(raw: Json, opts: PolicyTestOptions): PolicyInput {
  const req = isObj(raw.request) ? raw.request : {};
  const api = req.api === 'anthropic' ? 'anthropic' : 'openai';
  const body = isObj(req.body) ? req.body : {};
  const headers: Record<string, string> = {};
  if (isObj(req.headers)) for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = String(v);
  const path = typeof req.path === 'string' ? req.path : api === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
  const p = isObj(raw.principal) ? raw.principal : {};
  const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);
  const tenantRaw = isObj(raw.tenant) ? raw.tenant : {};
  const teamRaw = isObj(raw.team) ? raw.team : {};
  const tenantName = str(tenantRaw.name, str(p.tenant, 'default'));
  const teamName = str(teamRaw.name, str(p.team, ''));
  const tenantCfg = opts.tenants?.find((t) => t.name === tenantName);
  const teamCfg = opts.teams?.find((t) => t.name === teamName && t.tenant === tenantName);
  return {
    request: buildRequestInput({ method: str(req.method, 'POST'), path, api, headers, body }),
    principal: {
      keyId: str(p.keyId, 'test-key'),
      tenant: tenantName,
      team: teamName,
      user: str(p.user, ''),
      groups: Array.isArray(p.groups) ? p.groups.map(String) : [],
      claims: isObj(p.claims) ? p.claims : {},
      authMethod: p.authMethod === 'jwt' ? 'jwt' : 'key',
    },
    tenant: {
      name: tenantName,
      attributes: isObj(tenantRaw.attributes) ? tenantRaw.attributes : (tenantCfg?.attributes ?? {}),
      timeZone: typeof tenantRaw.timeZone === 'string' ? tenantRaw.timeZone : (tenantCfg?.timeZone ?? 'UTC'),
    },
    team: { name: teamName, attributes: isObj(teamRaw.attributes) ? teamRaw.attributes : (teamCfg?.attributes ?? {}) },
    now: typeof raw.now === 'string' ? new Date(raw.now) : (opts.now ?? new Date()),
    ...(isObj(raw.mcp) ? { mcp: mcpInput(raw.mcp) } : {}),
  };
}

function mcpInput(m: Json): McpContext {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return { server: str(m.server), method: str(m.method) || 'tools/call', tool: str(m.tool), arguments: isObj(m.arguments) ? m.arguments : {}, sessionId: str(m.sessionId) };
}

function describeDenial(d: Decision | McpDecision): string {
  return d.denied ? `denied by ${d.denied.rule} (${d.denied.status} ${d.denied.reason}: ${d.denied.message})` : 'allowed';
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

function checkList(label: string, expected: unknown, actual: readonly object[], problems: string[]): void {
  if (!Array.isArray(expected)) return;
  if (expected.length === 0) {
    if (actual.length) problems.push(`expected no ${label}, got ${show(actual)}`);
    return;
  }
  for (const e of expected) {
    const ok = actual.some((a) => {
      if (!isObj(e)) return false;
      // detectors: every expected name present (order-free), the rest a plain subset match.
      const { detectors, ...rest } = e;
      if (Array.isArray(detectors)) {
        const got = (a as { detectors?: unknown }).detectors;
        if (!Array.isArray(got) || !detectors.every((x) => got.includes(x))) return false;
      }
      return subsetMatch(rest, a);
    });
    if (!ok) problems.push(`expected ${label} matching ${show(e)}, got ${show(actual)}`);
  }
}

function checkCase(expect: Json, input: PolicyInput, d: Decision | McpDecision, deployments: readonly DeploymentInfo[]): string[] {
  const problems: string[] = [];
  // Routing: check every known deployment, as the router would (also records route dry-runs).
  const routeResults = new Map<string, ReturnType<Decision['routeCheck']>>();
  if (!d.denied && 'routeCheck' in d) for (const dep of deployments) routeResults.set(dep.id, d.routeCheck(dep));

  if (typeof expect.allowed === 'boolean' && expect.allowed !== !d.denied) {
    problems.push(`expected ${expect.allowed ? 'allowed' : 'denied'}, got ${describeDenial(d)}`);
  }
  if (typeof expect.status === 'number' && d.denied?.status !== expect.status) problems.push(`expected status ${expect.status}, got ${describeDenial(d)}`);
  if (typeof expect.reason === 'string' && d.denied?.reason !== expect.reason) problems.push(`expected reason ${show(expect.reason)}, got ${describeDenial(d)}`);
  if (typeof expect.deniedBy === 'string' && d.denied?.rule !== expect.deniedBy) problems.push(`expected denial by ${expect.deniedBy}, got ${describeDenial(d)}`);
  if (typeof expect.message === 'string' && !d.denied?.message.includes(expect.message)) {
    problems.push(`expected denial message containing ${show(expect.message)}, got ${describeDenial(d)}`);
  }

  if (isObj(expect.routes)) {
    const r = expect.routes;
    for (const id of Array.isArray(r.allowed) ? r.allowed : []) {
      const res = routeResults.get(String(id));
      if (!res) problems.push(`route: deployment ${show(id)} is not among the deployments under test${d.denied ? ' (request was denied before routing)' : ''}`);
      else if (!res.ok) problems.push(`expected deployment ${id} to be allowed, got excluded by ${res.rule}: ${res.message}`);
    }
    for (const id of Array.isArray(r.denied) ? r.denied : []) {
      const res = routeResults.get(String(id));
      if (!res) problems.push(`route: deployment ${show(id)} is not among the deployments under test${d.denied ? ' (request was denied before routing)' : ''}`);
      else if (res.ok) problems.push(`expected deployment ${id} to be excluded, but it passed every route rule`);
      else if (typeof r.message === 'string' && !res.message.includes(r.message)) problems.push(`expected route message containing ${show(r.message)} for ${id}, got ${show(res.message)}`);
    }
  }

  checkList('redactions', expect.redactions, d.redactions, problems);
  checkList('budgets', expect.budgets, d.budgets, problems);
  checkList('rateLimits', expect.rateLimits, 'rateLimits' in d ? d.rateLimits : [], problems);
  if (Array.isArray(expect.customDetectors) && !sameSet(expect.customDetectors.map(String), d.customDetectors.map((c) => c.name))) {
    problems.push(`expected custom detectors ${show(expect.customDetectors)}, got ${show(d.customDetectors.map((c) => c.name))}`);
  }
  const transforms = 'transforms' in d ? d.transforms : [];
  if (Array.isArray(expect.transforms) && show(expect.transforms) !== show(transforms)) {
    problems.push(`expected transforms ${show(expect.transforms)}, got ${show(transforms)}`);
  }
  if (isObj(expect.labels)) {
    for (const [k, v] of Object.entries(expect.labels)) {
      if (d.labels[k] !== String(v)) problems.push(`expected label ${k}=${show(String(v))}, got ${show(d.labels[k])}`);
    }
  }
  if (expect.body !== undefined && !subsetMatch(expect.body, input.request.body)) {
    problems.push(`expected body to contain ${show(expect.body)}, got ${show(input.request.body)}`);
  }
  if (Array.isArray(expect.dryRunDenials)) {
    const got = [...new Set(d.dryRunDenials.map((x) => x.rule))];
    if (!sameSet(expect.dryRunDenials.map(String), got)) problems.push(`expected dry-run denials ${show(expect.dryRunDenials)}, got ${show(d.dryRunDenials)}`);
  }
  if (isObj(expect.rules)) {
    for (const [id, outcome] of Object.entries(expect.rules)) {
      const got = d.rules.filter((r) => `${r.policy}/${r.rule}` === id).map((r) => r.outcome);
      if (!got.includes(outcome as never)) problems.push(`expected rule ${id} outcome ${show(outcome)}, got ${got.length ? show(got) : 'not evaluated'}`);
    }
  }
  return problems;
}

/**
 * Runs every case of every `kind: PolicyTest` document (others are ignored). Throws ConfigErrors
 * for malformed test documents; a failing case is a FAIL line, never an exception.
 */
export function runPolicyTests(bundle: PolicyBundle, testDocs: ConfigDocument[], deployments: DeploymentInfo[], opts: PolicyTestOptions = {}): PolicyTestResult {
  const errors: ConfigError[] = [];
  const docs = testDocs.filter((d) => d.kind === 'PolicyTest');
  const seenDocs = new Set<string>();
  for (const doc of docs) {
    const root = new At(doc, errors, [], doc.spec);
    if (!NAME_RE.test(doc.name)) errors.push(doc.error(`metadata.name ${show(doc.name)} ${NAME_HINT}`, ['metadata', 'name']));
    if (seenDocs.has(doc.name)) errors.push(doc.error(`duplicate PolicyTest name "${doc.name}"`, ['metadata', 'name']));
    seenDocs.add(doc.name);
    if (!root.object(['description', 'defaults', 'deployments', 'cases'], 'a PolicyTest spec')) continue;
    for (const dep of root.key('deployments').list() ?? []) readDeployment(dep);
    const defaults = root.key('defaults');
    if (!defaults.missing && defaults.object(INPUT_KEYS, 'test defaults')) validateInputShape(defaults);
    const names = new Set<string>();
    for (const c of root.key('cases').list({ required: true, nonEmpty: true }) ?? []) {
      validateCaseShape(c, 'test case');
      const n = c.key('name').string({ required: true, pattern: NAME_RE, patternHint: NAME_HINT });
      if (n !== undefined && names.has(n)) c.fail(`${c.label}: duplicate case name "${n}"`, [...c.path, 'name']);
      if (n !== undefined) names.add(n);
    }
  }
  if (errors.length) throw new ConfigErrors(errors);

  const lines: string[] = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const doc of docs) {
    const spec = doc.spec as Json;
    const defaults = isObj(spec.defaults) ? spec.defaults : {};
    const deps = Array.isArray(spec.deployments)
      ? (new At(doc, [], [], spec).key('deployments').list() ?? []).map((d) => readDeployment(d) as DeploymentInfo)
      : deployments;
    (spec.cases as Json[]).forEach((c, i) => {
      const id = `${doc.name}/${String(c.name)}`;
      if (opts.only && !opts.only(id)) {
        skipped++;
        return;
      }
      const pos = doc.specPos(['cases', i]);
      const raw = mergeInput(defaults, c);
      let problems: string[];
      try {
        const input = buildInput(raw, opts);
        const expect = c.expect as Json;
        if (input.mcp) {
          const mcpIn = { ...input, mcp: input.mcp };
          problems = checkCase(expect, input, bundle.evaluateMcp(mcpIn), deps);
          // Whether a tools/list answer shows this tool to this caller.
          if (typeof expect.toolVisible === 'boolean') {
            const listed = bundle.evaluateMcp({ ...mcpIn, mcp: { ...input.mcp, method: 'tools/call', arguments: {} } }, { listing: true });
            if (expect.toolVisible !== !listed.denied) problems.push(`expected tool ${expect.toolVisible ? 'visible' : 'hidden'} in tools/list, got ${describeDenial(listed)}`);
          }
        } else {
          problems = checkCase(expect, input, bundle.evaluate(input), deps);
        }
      } catch (e) {
        problems = [`evaluation threw: ${(e as Error).message}`];
      }
      if (problems.length === 0) {
        passed++;
        lines.push(`PASS ${id}`);
      } else {
        failed++;
        lines.push(`FAIL ${id} (${pos.file}:${pos.line}:${pos.col}): ${problems.join('; ')}`);
      }
    });
  }
  return { passed, failed, skipped, lines };
}
