// `/mcp/<server>`: which MCP server a request is for, and the upstream request headers that reach it
// through Envoy (cluster, host, path, the server's own credential; never the client's).
import { GatewayError } from '../errors.ts';
import type { McpServerConfig } from '../config/types.ts';
import { MutationBuilder } from '../extproc/mutations.ts';
import type { Snapshot } from '../gateway/context.ts';
import { isMcpPath, MCP_PREFIX, pathOnly } from '../gateway/endpoints.ts';

export { isMcpPath, MCP_PREFIX };
/** Links an MCP call to the LLM request that led to it (its x-request-id); docs/mcp.md. */
export const PARENT_HEADER = 'x-tollgate-parent-request-id';
export const SESSION_HEADER = 'mcp-session-id';
/** HTTP methods of MCP's Streamable HTTP transport. */
export const MCP_METHODS = ['POST', 'GET', 'DELETE'] as const;

/** Client headers never forwarded to an MCP server: the caller's credentials. */
const CLIENT_CREDENTIALS = ['authorization', 'x-api-key', 'cookie', 'proxy-authorization'];

/** The configured server a path names; GatewayError (404) when there is none. */
export function serverFor(snap: Snapshot, path: string): McpServerConfig {
  const name = pathOnly(path).slice(MCP_PREFIX.length);
  const server = /^[a-z0-9][a-z0-9._-]*$/.test(name) ? snap.core.mcpServers.get(name) : undefined;
  if (!server) throw new GatewayError('not_found', `No MCP server is configured at ${pathOnly(path)}.`, { code: 'unknown_mcp_server' });
  return server;
}

/** Mcp-Session-Id as the spec allows it (visible ASCII), else undefined. */
export function validSessionId(v: string | undefined): string | undefined {
  return v && v.length <= 256 && /^[\x21-\x7e]+$/.test(v) ? v : undefined;
}

/** A request id someone else issued (x-request-id shape), else undefined. */
export function validRequestId(v: string | undefined): string | undefined {
  return v && /^[A-Za-z0-9._:-]{8,128}$/.test(v) ? v : undefined;
}

/**
 * Header mutations that send the request to the server: Envoy routes on the cluster header, the
 * server's credential replaces the caller's, and Tollgate's own headers never leave.
 */
export function upstreamMutation(snap: Snapshot, server: McpServerConfig, clientHeaders: ReadonlyMap<string, string>, requestId: string): MutationBuilder {
  const s = snap.core.settings;
  const m = new MutationBuilder();
  for (const k of clientHeaders.keys()) if (k.startsWith('x-tollgate-')) m.removeHeader(k);
  for (const h of CLIENT_CREDENTIALS) m.removeHeader(h);
  m.removeHeader(s.clusterHeader).removeHeader(s.hostHeader);
  if (server.credential.kind !== 'none') {
    const secret = snap.core.mcpCredentials.get(server.name);
    if (secret === undefined)
      throw new GatewayError('unavailable', `MCP server ${server.name} has no credential configured.`, { code: 'mcp_server_unavailable' });
    m.setHeader(server.credentialHeader, `${server.credentialPrefix}${secret}`);
  }
  const q = (clientHeaders.get(':path') ?? '').indexOf('?');
  const query = q >= 0 ? (clientHeaders.get(':path') ?? '').slice(q) : '';
  m.setHeader(':path', `${server.path}${query}`)
    .setHeader(s.clusterHeader, server.cluster)
    .setHeader(s.hostHeader, server.host)
    .setHeader('accept-encoding', 'identity')
    .setHeader('x-request-id', requestId);
  return m;
}
