// JSON in and out for the admin API. Errors leave in the OpenAI error shape (service/errors.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, renderError } from '../errors.ts';

const MAX_BODY = 64 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const r = renderError(err, 'openai');
  res.writeHead(r.status, { ...r.headers, 'content-length': r.body.length, 'cache-control': 'no-store' });
  res.end(r.body);
}

/** The request's JSON object body (≤ 64 KiB, content-type application/json). */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new GatewayError('too_large', `Request body is larger than ${MAX_BODY} bytes.`, { code: 'body_too_large' });
    chunks.push(c);
  }
  if (size === 0) return {};
  if (ct !== 'application/json') throw new GatewayError('invalid_request', 'Send the body as JSON (content-type: application/json).', { code: 'unsupported_media_type', status: 415 });
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new GatewayError('invalid_request', 'The request body is not valid JSON.', { code: 'invalid_json' });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new GatewayError('invalid_request', 'The request body must be a JSON object.', { code: 'invalid_json' });
  return v as Record<string, unknown>;
}
