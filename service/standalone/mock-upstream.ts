// The mock provider's server: a loopback HTTP upstream `tollgate run` starts and points the `mock`
// providers' Envoy clusters at. It checks the credential Tollgate injects (Bearer for OpenAI paths,
// x-api-key + anthropic-version for Anthropic), validates the request shape, and answers from
// mock-answers.ts, as JSON or SSE. Errors are in the provider's own shape, as a real one's would be.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  anthropicEvents,
  anthropicMessage,
  MockRequestError,
  openAIChatChunks,
  openAIChatCompletion,
  openAIEmbeddings,
  planAnthropicMessage,
  planOpenAIChat,
  type Json,
} from './mock-answers.ts';

export interface MockUpstreamOptions {
  /** The credential requests must carry; unset = any (a mock provider with `credential: {none: true}`). */
  key?: string;
  /** Path prefix (the provider's basePath), default `/v1`. */
  basePath?: string;
  /** Largest request body, bytes (default 8 MiB). */
  maxBodyBytes?: number;
}

export interface MockUpstream {
  host: string;
  port: number;
  /** Requests answered so far, by path (for tests and the curious). */
  served: Map<string, number>;
  close(): Promise<void>;
}

type Api = 'openai' | 'anthropic';

function sameSecret(given: string | undefined, want: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function sendJson(res: ServerResponse, status: number, body: Json): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, api: Api, status: number, type: string, message: string, param?: string): void {
  if (api === 'anthropic') sendJson(res, status, { type: 'error', error: { type, message } });
  else sendJson(res, status, { error: { message, type, param: param ?? null, code: null } });
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        resolve(undefined);
        req.resume();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(size > max ? undefined : Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function sse(res: ServerResponse, events: { event?: string; data: string }[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const e of events) res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${e.data}\n\n`);
  res.end();
}

export async function startMockUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const base = (opts.basePath ?? '/v1').replace(/\/+$/, '');
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const served = new Map<string, number>();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const endpoint = path.startsWith(`${base}/`) ? path.slice(base.length) : undefined;
    const api: Api = endpoint === '/messages' ? 'anthropic' : 'openai';
    if (endpoint !== '/chat/completions' && endpoint !== '/messages' && endpoint !== '/embeddings')
      return sendError(res, api, 404, 'not_found_error', `the mock provider has no endpoint ${path}`);
    if (req.method !== 'POST') return sendError(res, api, 405, 'invalid_request_error', `${req.method} is not allowed; use POST`);
    if (opts.key !== undefined) {
      const ok =
        api === 'anthropic'
          ? sameSecret(req.headers['x-api-key'] as string | undefined, opts.key)
          : sameSecret(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1], opts.key);
      if (!ok) return sendError(res, api, 401, api === 'anthropic' ? 'authentication_error' : 'invalid_request_error', 'invalid credential for the mock provider');
    }
    if (api === 'anthropic' && !req.headers['anthropic-version'])
      return sendError(res, api, 400, 'invalid_request_error', 'anthropic-version header is required');
    const raw = await readBody(req, maxBody);
    if (!raw) return sendError(res, api, 413, 'request_too_large', `request body over ${maxBody} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendError(res, api, 400, 'invalid_request_error', 'the request body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return sendError(res, api, 400, 'invalid_request_error', 'the request body must be a JSON object');
    const b = body as Json;
    const id = randomBytes(12).toString('hex');
    try {
      if (endpoint === '/embeddings') sendJson(res, 200, openAIEmbeddings(b));
      else if (endpoint === '/chat/completions') {
        const plan = planOpenAIChat(b, `chatcmpl-mock-${id}`, Math.floor(Date.now() / 1000));
        if (plan.stream) sse(res, openAIChatChunks(plan).map((data) => ({ data })));
        else sendJson(res, 200, openAIChatCompletion(plan));
      } else {
        const plan = planAnthropicMessage(b, `msg_mock_${id}`);
        if (plan.stream) sse(res, anthropicEvents(plan).map(([event, data]) => ({ event, data: JSON.stringify(data) })));
        else sendJson(res, 200, anthropicMessage(plan));
      }
      served.set(endpoint, (served.get(endpoint) ?? 0) + 1);
    } catch (err) {
      if (err instanceof MockRequestError) return sendError(res, api, 400, 'invalid_request_error', err.message, err.param);
      throw err;
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 'openai', 500, 'api_error', 'the mock provider failed');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    served,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
