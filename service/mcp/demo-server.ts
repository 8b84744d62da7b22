// A small MCP server (official SDK, Streamable HTTP, stateful sessions) for the demo under `npm start`
// and for the e2e tests. It records what each tool call received, so a test can prove what reached
// the server (e.g. an e-mail address masked by Tollgate before it left the gateway).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface DemoMcpOptions {
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Path of the MCP endpoint (default `/mcp`). */
  path?: string;
  /** When set, every request must carry `authorization: Bearer <token>` (the credential Tollgate injects). */
  token?: string;
  /** Answer POSTs with plain JSON instead of an SSE stream (the transport's enableJsonResponse). */
  json?: boolean;
}

export interface DemoToolCall {
  tool: string;
  arguments: Record<string, unknown>;
  sessionId: string | undefined;
}

export interface DemoMcpServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:PORT/mcp */
  url: string;
  host: string;
  port: number;
  path: string;
  /** Every tool call the server executed, in order. */
  calls: DemoToolCall[];
  /** Every HTTP request it answered: method and the headers that matter for tests. */
  requests: { method: string; authorization?: string; sessionId?: string; parentRequestId?: string }[];
  close(): Promise<void>;
}

/** The tools the demo offers (docs/mcp.md walks through policies over them). */
function buildServer(calls: DemoToolCall[], sessionOf: () => string | undefined): McpServer {
  const server = new McpServer({ name: 'tollgate-demo', version: '1.0.0' }, { capabilities: { logging: {} } });
  const record = (tool: string, args: Record<string, unknown>): void => {
    calls.push({ tool, arguments: structuredClone(args), sessionId: sessionOf() });
  };
  server.registerTool('echo', { description: 'Echoes the text back.', inputSchema: { text: z.string() } }, async (args) => {
    record('echo', args);
    return { content: [{ type: 'text', text: args.text }] };
  });
  server.registerTool(
    'send_email',
    { description: 'Sends an e-mail (demo: only records it).', inputSchema: { to: z.string(), subject: z.string(), body: z.string().optional() } },
    async (args) => {
      record('send_email', args);
      return { content: [{ type: 'text', text: `queued mail to ${args.to}: ${args.subject}` }] };
    },
  );
  server.registerTool('lookup_customer', { description: 'Looks up a customer record by id.', inputSchema: { id: z.string() } }, async (args) => {
    record('lookup_customer', args);
    return { content: [{ type: 'text', text: `customer ${args.id}: Jane Roe, jane.roe@example.com, +1 415 555 0100` }] };
  });
  server.registerTool('delete_repo', { description: 'Deletes a repository (dangerous).', inputSchema: { repo: z.string() } }, async (args) => {
    record('delete_repo', args);
    return { content: [{ type: 'text', text: `deleted ${args.repo}` }] };
  });
  server.registerTool(
    'countdown',
    { description: 'Counts down, streaming a progress notification per step.', inputSchema: { from: z.number().int().min(1).max(10) } },
    async (args, extra) => {
      record('countdown', args);
      const token = extra._meta?.progressToken;
      for (let i = args.from; i > 0; i--) {
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `t-${i}` } });
        if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: args.from - i + 1, total: args.from } });
        await new Promise((r) => setTimeout(r, 20));
      }
      return { content: [{ type: 'text', text: 'liftoff' }] };
    },
  );
  server.registerResource('readme', 'demo://readme', { description: 'About this server', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, text: 'Tollgate demo MCP server' }],
  }));
  server.registerPrompt('greet', { description: 'A greeting', argsSchema: { name: z.string() } }, (args) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${args.name}` } }],
  }));
  return server;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text; // the transport answers the parse error
  }
}

function isInitialize(body: unknown): boolean {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.some((m) => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'initialize');
}

export async function startDemoMcpServer(opts: DemoMcpOptions = {}): Promise<DemoMcpServer> {
  const host = opts.host ?? '127.0.0.1';
  const path = opts.path ?? '/mcp';
  const calls: DemoToolCall[] = [];
  const requests: DemoMcpServer['requests'] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sid = req.headers['mcp-session-id'];
    const sessionId = typeof sid === 'string' ? sid : undefined;
    const parent = req.headers['x-tollgate-parent-request-id'];
    requests.push({
      method: req.method ?? '',
      authorization: req.headers.authorization,
      sessionId,
      parentRequestId: typeof parent === 'string' ? parent : undefined,
    });
    if ((req.url ?? '').split('?')[0] !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let transport = sessionId ? sessions.get(sessionId) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || sessionId || !isInitialize(body)) {
        res.writeHead(sessionId ? 404 : 400, { 'content-type': 'application/json' }).end(
          JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: sessionId ? 'Session not found' : 'No session: initialize first' }, id: null }),
        );
        return;
      }
      let created: string | undefined;
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: opts.json === true,
        onsessioninitialized: (id) => {
          created = id;
          sessions.set(id, t);
        },
      });
      t.onclose = () => {
        if (created) sessions.delete(created);
      };
      await buildServer(calls, () => t.sessionId).connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}${path}`,
    host,
    port,
    path,
    calls,
    requests,
    close: async () => {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
