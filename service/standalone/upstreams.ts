// Loopback upstreams `tollgate run` starts next to Tollgate and Envoy, and the Envoy clusters that
// point at them. THE place to add another one (e.g. a demo MCP server): start it in
// startLoopbackUpstreams and return its clusters; run.ts renders them into Envoy, prints its banner
// lines and closes it on shutdown.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { ProviderConfig } from '../config/types.ts';
import type { Snapshot } from '../gateway/context.ts';
import { startDemoMcpServer } from '../mcp/demo-server.ts';
import { startMockUpstream } from './mock-upstream.ts';

export interface LoopbackUpstream {
  /** What it is, for messages. */
  name: string;
  /** Envoy clusters to point at it (cluster name → loopback address). */
  clusters: Record<string, { host: string; port: number }>;
  close(): Promise<void>;
}

export interface UpstreamContext {
  /** The config as loaded before anything started (which providers are `mock`, where the config lives). */
  snapshot: Snapshot;
  /** Sets an environment variable the config reads (a provider credential) before Tollgate loads it. */
  setEnv(name: string, value: string): void;
}

/**
 * The credential a mock provider's requests must carry: `env` — a fresh random key, put in that variable
 * (unless it is already set) so Tollgate injects it; `file` — the file's content; `none` — no check.
 */
function mockKey(p: ProviderConfig, ctx: UpstreamContext): string | undefined {
  const c = p.credential;
  if (c.kind === 'none') return undefined;
  if (c.kind === 'file') {
    const path = isAbsolute(c.path) ? c.path : resolve(ctx.snapshot.core.dir, c.path);
    return readFileSync(path, 'utf8').trim();
  }
  const have = process.env[c.name];
  if (have) return have;
  const key = `tg-mock-${randomBytes(18).toString('hex')}`;
  ctx.setEnv(c.name, key);
  return key;
}

/** One mock upstream per `mock` provider in the config. */
async function startMocks(ctx: UpstreamContext): Promise<LoopbackUpstream[]> {
  const out: LoopbackUpstream[] = [];
  for (const p of ctx.snapshot.core.providers.values()) {
    if (p.api !== 'mock') continue;
    const m = await startMockUpstream({ key: mockKey(p, ctx), basePath: p.basePath || '/v1' });
    out.push({ name: `mock provider "${p.name}"`, clusters: { [p.cluster]: { host: m.host, port: m.port } }, close: () => m.close() });
  }
  return out;
}

/** The cluster the shipped config gives the demo MCP server (envoy/envoy.yaml, policies/mcp-servers.yaml). */
export const DEMO_MCP_CLUSTER = 'mcp_demo';

/**
 * The demo MCP server (service/mcp/demo-server.ts) for every McpServer document on the shipped demo
 * cluster, on loopback, requiring the credential Tollgate injects for it (if the document has one).
 */
async function startDemoMcp(ctx: UpstreamContext): Promise<LoopbackUpstream[]> {
  const out: LoopbackUpstream[] = [];
  for (const m of ctx.snapshot.core.mcpServers.values()) {
    if (m.cluster !== DEMO_MCP_CLUSTER) continue;
    const token = m.credential.kind === 'none' ? undefined : ctx.snapshot.core.mcpCredentials.get(m.name);
    const d = await startDemoMcpServer({ host: '127.0.0.1', port: 0, path: m.path, ...(token ? { token } : {}) });
    out.push({ name: `demo MCP server "${m.name}"`, clusters: { [m.cluster]: { host: d.host, port: d.port } }, close: () => d.close() });
  }
  return out;
}

export async function startLoopbackUpstreams(ctx: UpstreamContext): Promise<LoopbackUpstream[]> {
  const started: LoopbackUpstream[] = [];
  try {
    started.push(...(await startMocks(ctx)));
    started.push(...(await startDemoMcp(ctx)));
    return started;
  } catch (err) {
    await closeUpstreams(started);
    throw err;
  }
}

export async function closeUpstreams(ups: LoopbackUpstream[]): Promise<void> {
  await Promise.allSettled(ups.map((u) => u.close()));
}
