// The upstream stage's cost per Envoy attempt (plan check, parse, translate, header scrub), without
// gRPC: what each fallback attempt adds on top of the router stage. Example config, ~1.5 KB body.
import { buildSnapshot } from '../../service/config/snapshot.ts';
import { AttemptLog } from '../../service/fallback/attempts.ts';
import { DEPLOYMENT_ATTRIBUTE, PLAN_KEY, PLAN_NAMESPACE } from '../../service/fallback/contract.ts';
import type { FallbackPlan } from '../../service/fallback/plan.ts';
import { PlanSealer } from '../../service/fallback/seal.ts';
import { UpstreamExchange } from '../../service/gateway/upstream-exchange.ts';
import { HealthTracker } from '../../service/routing/index.ts';

export async function bench(): Promise<string[]> {
  Object.assign(process.env, { OPENAI_API_KEY: 'bench', AZURE_OPENAI_API_KEY: 'bench' });
  const snap = buildSnapshot('policies');
  const chain = snap.core.models.find((m) => m.fallbackChains.length)!;
  const plans = new PlanSealer({ key: 'bench-plan-key-bench-plan-key-0001' });
  const svc = { snapshot: () => snap, health: new HealthTracker(), attempts: new AttemptLog(), plans };
  const body = Buffer.from(
    JSON.stringify({
      model: chain.name,
      messages: [
        { role: 'system', content: 'You are a helpful assistant for the research team. Answer precisely and cite sources when you can.' },
        { role: 'user', content: 'Summarise the following notes for the weekly report. '.repeat(20) },
      ],
      max_tokens: 256,
    }),
  );
  const out: string[] = [];
  for (const id of chain.fallbackChains[0]!.deployments) {
    const plan: FallbackPlan = {
      v: 1,
      api: 'openai',
      op: 'chat',
      requestId: 'bench-request-0001',
      model: chain.name,
      stream: false,
      cluster: chain.fallbackChains[0]!.cluster,
      deployments: chain.fallbackChains[0]!.deployments,
      clientHeaders: {},
    };
    // Sealed once, as the router stage does; every attempt verifies it.
    const sealed = plans.seal(plan);
    const headers = new Map([
      [':path', '/v1/chat/completions'],
      ['content-length', String(body.length)],
      ['x-envoy-attempt-count', '2'],
    ]);
    const one = async (): Promise<void> => {
      const ex = new UpstreamExchange(svc);
      await ex.requestHeaders({ headers, endOfStream: false, metadata: { [PLAN_NAMESPACE]: { [PLAN_KEY]: sealed } }, attributes: { [DEPLOYMENT_ATTRIBUTE]: id } });
      await ex.requestBody(body);
      await ex.responseHeaders(200, new Map([[':status', '200']]));
      ex.end('completed');
      svc.attempts.take('bench-request-0001');
    };
    for (let i = 0; i < 2000; i++) await one();
    const n = 20_000;
    const samples = new Float64Array(n);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint();
      await one();
      samples[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
    const cpu = process.cpuUsage(cpu0);
    samples.sort();
    const p = (q: number): string => samples[Math.min(n - 1, Math.floor(q * n))]!.toFixed(1);
    out.push(`upstream stage, one attempt → ${id} (${body.length} B body): p50 ${p(0.5)}µs p99 ${p(0.99)}µs; ${((cpu.user + cpu.system) / n).toFixed(1)}µs CPU/attempt`);
  }
  return out;
}
