// Policy engine benchmark: evaluation of the whole example bundle (policies/policies) for a
// realistic chat request, plus route checks over a handful of candidate deployments, and the cost of
// judging one more candidate model (a `models` fallback).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { readConfigDir } from '../../service/config/documents.ts';
import * as policyIndex from '../../service/policy/index.ts';
import * as configDocs from '../../service/config/documents.ts';
import { buildRequestInput, compilePolicies, type DeploymentInfo, type PolicyInput } from '../../service/policy/index.ts';
import { abAlloc, abCpu, baseSource, importBase } from './ab.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as snapshotMod from '../../service/config/snapshot.ts';
import * as policyInputMod from '../../service/gateway/policy-input.ts';
import { authenticate } from '../../service/identity/principal.ts';
import type { Snapshot } from '../../service/gateway/context.ts';
import { benchBundle } from './bench-bundle.ts';
import { chatWorkload } from './chat-workload.ts';
import { median } from './noise.ts';

const ITERATIONS = 20_000;
const WARMUP = 2_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function fmt(us: number): string {
  return `${us.toFixed(1)}µs`;
}

export async function bench(): Promise<string[]> {
  const root = join(import.meta.dirname, '../../policies/policies');
  const t0 = performance.now();
  const bundle = compilePolicies(readConfigDir(root));
  const compileMs = performance.now() - t0;

  const body = {
    model: 'gpt-4o',
    temperature: 0.2,
    max_tokens: 800,
    messages: [
      { role: 'system', content: 'You are a helpful assistant for the ACME research team. Answer concisely and cite sources.' },
      { role: 'user', content: 'Summarise the attached notes. '.repeat(20) },
      { role: 'assistant', content: 'Here is a summary of the notes you sent. '.repeat(10) },
      { role: 'user', content: 'Thanks. Now list three follow-up questions, and email them to jane@example.com.' },
    ],
  };
  // One tenant/team context object per tier, shared by every request (as the gateway's config snapshot does).
  const tenants = { free: { name: 'globex', attributes: { tier: 'free', residency: 'any' } }, enterprise: { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu' } } };
  const teams = { free: { name: 'default', attributes: {} }, enterprise: { name: 'research', attributes: { costCenter: 'r-and-d' } } };
  const makeInput = (tier: 'enterprise' | 'free'): PolicyInput => ({
    request: buildRequestInput({
      method: 'POST',
      path: '/v1/chat/completions',
      api: 'openai',
      headers: { 'user-agent': 'openai-node/4', 'content-type': 'application/json', 'x-request-id': 'r' },
      body: structuredClone(body),
    }),
    principal: tier === 'free'
      ? { keyId: 'demo-globex', tenant: 'globex', team: 'default', user: 'carol', groups: [], claims: {}, authMethod: 'key' }
      : { keyId: 'demo-acme-research', tenant: 'acme', team: 'research', user: 'alice', groups: ['engineering'], claims: {}, authMethod: 'key' },
    tenant: tenants[tier],
    team: teams[tier],
    now: new Date('2025-01-15T10:00:00Z'),
  });
  const size = Buffer.byteLength(JSON.stringify(body));
  const deployments: DeploymentInfo[] = [
    { id: 'gpt-4o/0', model: 'gpt-4o', provider: 'openai', providerApi: 'openai', region: 'us-east-1', selfHosted: false, dataRetention: true, inputPricePerM: 2.5, outputPricePerM: 10, contextWindow: 128000 },
    { id: 'gpt-4o/1', model: 'gpt-4o', provider: 'azure-eu', providerApi: 'azure', region: 'eu-west-1', selfHosted: false, dataRetention: false, inputPricePerM: 2.75, outputPricePerM: 11, contextWindow: 128000 },
    { id: 'llama/0', model: 'llama-3.1-8b', provider: 'vllm-local', providerApi: 'openai', region: 'self-hosted', selfHosted: true, dataRetention: false, inputPricePerM: 0, outputPricePerM: 0, contextWindow: 32768 },
  ];

  const lines: string[] = [`policy: compile example bundle (${bundle.policies.length} policies) ${compileMs.toFixed(0)}ms`];
  for (const tier of ['enterprise', 'free'] as const) {
    const inputs = Array.from({ length: 64 }, () => makeInput(tier));
    const evalUs: number[] = [];
    const routeUs: number[] = [];
    let ruleCount = 0;
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const inp = inputs[i % inputs.length] as PolicyInput;
      // Transforms mutate the body; start every iteration from the client's body (outside the timing).
      if (i % inputs.length === 0) for (let j = 0; j < inputs.length; j++) (inputs[j] as PolicyInput).request.body = structuredClone(body);
      const a = performance.now();
      const d = bundle.evaluate(inp);
      const b = performance.now();
      for (const dep of deployments) d.routeCheck(dep);
      const c = performance.now();
      if (i >= WARMUP) {
        evalUs.push((b - a) * 1000);
        routeUs.push((c - b) * 1000);
        ruleCount = d.rules.length;
      }
    }
    evalUs.sort((x, y) => x - y);
    routeUs.sort((x, y) => x - y);
    const throughput = (1e6 / (evalUs.reduce((s, x) => s + x, 0) / evalUs.length)).toFixed(0);
    lines.push(
      `policy: evaluate ${tier} request (${(size / 1024).toFixed(1)}KB, ${ruleCount} rule records) p50 ${fmt(percentile(evalUs, 50))} p99 ${fmt(percentile(evalUs, 99))}; ${throughput} decisions/s`,
      `policy: routeCheck x${deployments.length} deployments (${tier}) p50 ${fmt(percentile(routeUs, 50))} p99 ${fmt(percentile(routeUs, 99))}`,
    );
  }
  // What the gateway does per request (service/gateway/policy-input.ts + exchange.ts): build the
  // input from the header Map and the parsed body, evaluate, check the route constraints. CPU time,
  // with and without the per-caller cache (blocks alternated in this process; median of the rounds).
  const uncached = compilePolicies(readConfigDir(root), { callerCache: false });
  {
    const headers = new Map([[':method', 'POST'], [':path', '/v1/chat/completions'], ['content-type', 'application/json'], ['authorization', 'Bearer tg-x'], ['user-agent', 'openai-node/4'], ['x-request-id', 'r']]);
    const bodies = Array.from({ length: ITERATIONS }, () => structuredClone(body));
    const who = makeInput('enterprise');
    const run = (b: typeof bundle, i: number): void => {
      const request = buildRequestInput({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers, body: bodies[i] as Record<string, unknown>, size });
      const d = b.evaluate({ request, principal: { ...who.principal }, tenant: who.tenant, team: who.team, now: new Date() });
      for (const dep of deployments) d.routeCheck(dep);
    };
    const block = ITERATIONS / 4;
    const cpu = (b: typeof bundle, from: number): number => {
      const c0 = process.cpuUsage();
      for (let i = from; i < from + block; i++) run(b, i);
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / block;
    };
    for (let i = 0; i < WARMUP; i++) {
      run(bundle, i);
      run(uncached, i);
    }
    const withCache: number[] = [];
    const without: number[] = [];
    for (let r = 0; r < 8; r++) {
      const from = (r % 4) * block;
      if (r % 2) {
        without.push(cpu(uncached, from));
        withCache.push(cpu(bundle, from));
      } else {
        withCache.push(cpu(bundle, from));
        without.push(cpu(uncached, from));
      }
      // Transforms mutate the bodies; give the next round fresh ones (outside the timing).
      for (let i = from; i < from + block; i++) bodies[i] = structuredClone(body);
    }
    const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1] as number;
    lines.push(
      `policy: gateway-shaped request (input from the header Map, evaluate, routeCheck x${deployments.length}; enterprise) CPU ${med(withCache).toFixed(1)}µs/request; without the per-caller cache ${med(without).toFixed(1)}µs (ratio ${(med(withCache) / med(without)).toFixed(2)})`,
    );
  }
  // A request with `models` fallbacks: each other candidate model re-runs only the model-dependent rules.
  for (const tier of ['enterprise', 'free'] as const) {
    const input = makeInput(tier);
    const candUs: number[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS / 4; i++) {
      input.request.body = structuredClone(body);
      const d = bundle.evaluate(input, { candidates: true });
      const a = performance.now();
      d.forModel('claude-sonnet');
      d.forModel('llama-3.1-8b');
      const b = performance.now();
      if (i >= WARMUP) candUs.push(((b - a) * 1000) / 2);
    }
    candUs.sort((x, y) => x - y);
    lines.push(`policy: forModel per fallback candidate (${tier}) p50 ${fmt(percentile(candUs, 50))} p99 ${fmt(percentile(candUs, 99))}`);
  }
  if (baseSource()) lines.push(...(await abLines(root, body, size, makeInput('enterprise'), deployments)));
  lines.push(...(await workloadLines()));
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const l of await bench()) console.log(l);
}

/**
 * BENCH_BASE_SRC set: the gateway-shaped enterprise request (input, evaluate, forModel of the primary,
 * routeCheck x3) on this checkout's engine and on the base's, interleaved; once at the current time and
 * once at instants in the first minute of a 15-minute bucket (time-zone getters: ./fast.ts timeParts).
 */
async function abLines(root: string, body: Record<string, unknown>, size: number, who: PolicyInput, deployments: DeploymentInfo[]): Promise<string[]> {
  const base = await importBase('service/policy/index.ts', policyIndex);
  const baseDocs = await importBase('service/config/documents.ts', configDocs);
  const fresh = compilePolicies(readConfigDir(root));
  const old = base.compilePolicies(baseDocs.readConfigDir(root));
  const headers = new Map([[':method', 'POST'], [':path', '/v1/chat/completions'], ['content-type', 'application/json'], ['authorization', 'Bearer tg-x'], ['user-agent', 'openai-node/4'], ['x-request-id', 'r']]);
  const bucketStart = Math.floor(Date.now() / 900_000) * 900_000;
  const out: string[] = [];
  for (const when of ['now', 'first minute of a bucket'] as const) {
    const at = (i: number): Date => (when === 'now' ? new Date() : new Date(bucketStart + ((i * 7919) % 60_000)));
    const run = (b: typeof fresh, build: typeof buildRequestInput, i: number): void => {
      const request = build({ method: 'POST', path: '/v1/chat/completions', api: 'openai', headers, body, size });
      const d = b.evaluate({ request, principal: { ...who.principal }, tenant: who.tenant, team: who.team, now: at(i) });
      const v = d.forModel(request.model);
      for (const dep of deployments) v.routeCheck(dep);
    };
    out.push(abCpu(`policy gateway-shaped request (${when})`, (i) => run(fresh, buildRequestInput, i), (i) => run(old, base.buildRequestInput, i), 4000).line);
    if (when === 'now') out.push(await abAlloc('policy gateway-shaped request', (i) => run(fresh, buildRequestInput, i), (i) => run(old, base.buildRequestInput, i)));
  }
  return out;
}

/**
 * The extproc/envoy benches' request as the gateway judges it (exchange.ts requestBody): the example bundle with the
 * benches' raised limits (bench-bundle.ts), the ~1.2 KB chat request of chat-workload.ts from the demo acme/research
 * key with the headers Envoy delivers (run.ts), buildPolicyInput from the config snapshot, evaluate, the router's
 * model check (forModel) and route check of every deployment of the model. CPU per request; with BENCH_BASE_SRC,
 * the base checkout's modules on the same request, blocks interleaved (median of the rounds), and heap allocated.
 */
export async function workloadLines(): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'tg-bench-policy-'));
  try {
    const dir = benchBundle(tmp);
    const make = (snapMod: typeof snapshotMod, inputMod: typeof policyInputMod): Promise<(i: number) => number> => workloadRequest(dir, snapMod, inputMod);
    const fresh = await make(snapshotMod, policyInputMod);
    const lines: string[] = [];
    if (baseSource()) {
      const old = await make(await importBase('service/config/snapshot.ts', snapshotMod), await importBase('service/gateway/policy-input.ts', policyInputMod));
      if (fresh(0) !== old(0)) throw new Error('this checkout and the base disagree on the bench request');
      lines.push(abCpu('policy bench workload (chat-workload.ts, bench bundle, acme/research key)', fresh, old, 4000, 12).line);
      lines.push(await abAlloc('policy bench workload', fresh, old));
    } else {
      const xs: number[] = [];
      for (let r = 0; r < 8; r++) {
        const c0 = process.cpuUsage();
        for (let i = 0; i < 4000; i++) fresh(i);
        const c = process.cpuUsage(c0);
        xs.push((c.user + c.system) / 4000);
      }
      lines.push(`policy: bench workload (chat-workload.ts, bench bundle, acme/research key: input, evaluate, forModel, routeCheck) CPU ${median(xs).toFixed(1)}µs/request (median of 8 blocks)`);
    }
    return lines;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One bench request as a function of its index (the clock moves a second per request); returns a checksum. */
export async function workloadRequest(dir: string, snapMod: typeof snapshotMod, inputMod: typeof policyInputMod): Promise<(i: number) => number> {
  const { body: raw } = chatWorkload();
  const headers = new Map([
    [':method', 'POST'],
    [':path', '/v1/chat/completions'],
    [':authority', 'llm.internal'],
    [':scheme', 'https'],
    ['content-type', 'application/json'],
    ['content-length', String(raw.length)],
    ['authorization', 'Bearer tg-demo-acme-research-0000000000000001'],
    ['x-request-id', '0d6c2f5e-bench-4a1b-9a3e-000000000001'],
  ]);
  const snap: Snapshot = snapMod.buildSnapshot(dir);
  const principal = await authenticate({ token: 'tg-demo-acme-research-0000000000000001', jwtNamespace: undefined }, snap.core, snap.keys, new Date());
  const resolved = snap.catalog.resolve('gpt-4o-mini');
  if (!resolved) throw new Error('bench bundle has no gpt-4o-mini');
  const infos = resolved.entries.map((e) => e.info);
  // No rule of the bundle transforms this caller's body: one parsed body serves every request.
  const parsed = JSON.parse(raw.toString()) as Record<string, unknown>;
  return (i: number): number => {
    const input = inputMod.buildPolicyInput(snap, 'openai', parsed, principal, headers, 'POST', '/v1/chat/completions', raw.length, new Date(1_765_000_000_000 + i * 1000));
    const d = snap.policy.evaluate(input, { candidates: false });
    if (d.denied) throw new Error(`bench request denied: ${d.denied.message}`);
    const v = d.forModel('gpt-4o-mini', resolved.model.name);
    let ok = 0;
    for (const info of infos) if (v.routeCheck(info).ok) ok++;
    return ok + d.rules.length;
  };
}
