// The few lines `tollgate run` prints once the gateway answers: where to send requests, with which key,
// where metrics and lineage are, and which models the mock provider answers because no credential is set.
import type { Snapshot } from '../gateway/context.ts';
import { hashKey } from '../identity/keys.ts';

/** The README's first demo key (policies/keys.yaml stores only its hash). */
export const DEMO_KEY = 'tg-demo-acme-research-0000000000000001';

export interface BannerInput {
  gatewayUrl: string;
  metricsUrl: string;
  envoyAdminUrl: string;
  envoyVersion: string;
  envoyPid: number | undefined;
  lineage: string[];
  /** The admin credential for the console and admin API: the one generated for this run, or where it comes from. */
  adminToken: string;
  snapshot: Snapshot;
  /** Set when the real provider clusters were dropped (no CA bundle). */
  realProvidersOff?: string;
}

/** Models the mock answers (it is among their deployments after the load-time stand-in rule). */
export function mockedModels(snap: Snapshot): string[] {
  const isMock = (provider: string) => snap.core.providers.get(provider)?.api === 'mock';
  return snap.core.models.filter((m) => m.deployments.some((d) => isMock(d.provider))).map((m) => m.name);
}

/** Credential variables of the real providers that are not set. */
function missingCredentials(snap: Snapshot): string[] {
  const out: string[] = [];
  for (const p of snap.core.providers.values())
    if (p.api !== 'mock' && p.credential.kind === 'env' && !snap.core.credentials.has(p.name)) out.push(p.credential.name);
  return out;
}

function lineageWhere(sinks: string[]): string {
  const parts = sinks.filter((s) => s && s !== 'none').map((s) => (s.startsWith('file:') ? `${s.slice(5)} (read it: tollgate lineage --file ${s.slice(5)})` : s));
  return parts.length ? parts.join(', ') : 'nowhere (TOLLGATE_LINEAGE=none)';
}

export function banner(b: BannerInput): string {
  const snap = b.snapshot;
  const demo = snap.core.keys.find((k) => k.sha256 === hashKey(DEMO_KEY) && !k.disabled);
  const mocked = mockedModels(snap);
  const missing = missingCredentials(snap);
  const row = (label: string, value: string) => `  ${label.padEnd(14)} ${value}`;
  const lines = [
    `Tollgate gateway ready: Envoy ${b.envoyVersion} on ${b.gatewayUrl}, Tollgate policies from ${snap.core.dir}`,
    '',
    row('LLM endpoint', `${b.gatewayUrl}/v1   (OpenAI SDK baseURL; Anthropic SDK baseURL ${b.gatewayUrl})`),
    row('demo key', demo ? `${DEMO_KEY}   (tenant ${demo.tenant}${demo.team ? ` / team ${demo.team}` : ''}; more in the README)` : 'none in this config (create one: tollgate keys create --tenant T)'),
    row('metrics', `${b.metricsUrl}/metrics   health ${b.metricsUrl}/healthz   ready ${b.metricsUrl}/readyz`),
    row('lineage', lineageWhere(b.lineage)),
    row('console', `${b.metricsUrl}/console   (admin token ${b.adminToken})`),
    ...[...snap.core.mcpServers.values()].map((m) => row('MCP server', `${b.gatewayUrl}/mcp/${m.name}   (MCP Streamable HTTP; the same keys)`)),
    row('envoy admin', `${b.envoyAdminUrl}   (pid ${b.envoyPid ?? '?'})`),
    row(
      'mock provider',
      mocked.length
        ? `answers ${mocked.join(', ')}: no credential set${missing.length ? ` (${missing.join(', ')})` : ''}`
        : 'answers nothing: every model has a real provider credential',
    ),
  ];
  if (b.realProvidersOff) lines.push(row('real providers', b.realProvidersOff));
  if (demo) {
    lines.push('', 'Try it:');
    lines.push(
      `  curl ${b.gatewayUrl}/v1/chat/completions -H 'authorization: Bearer ${DEMO_KEY}' \\`,
      `    -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'`,
    );
  }
  lines.push('', 'Ctrl-C stops Envoy and Tollgate.', '');
  return lines.join('\n');
}
