// JSON-RPC 2.0 as MCP's Streamable HTTP carries it: a POST body is one message or a batch (array);
// each message is a request (method + id), a notification (method, no id) or a response (id +
// result/error, sent by a client answering a server's request). Parsing never throws: a body that
// is not JSON is a parse error (-32700), a message that is not JSON-RPC an invalid request (-32600).

export type JsonRpcId = string | number;

export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  /** Tollgate: a policy rule denied the message (data.rule names it). */
  POLICY_DENIED: -32001,
  /** Tollgate: a call-count limit (mcpRateLimit) is exhausted (data.retryAfterSeconds when known). */
  RATE_LIMITED: -32002,
  /** Tollgate: authentication, configuration or store failure while judging the message. */
  GATEWAY_ERROR: -32003,
} as const;

export type JsonRpcMessage =
  | { kind: 'request'; id: JsonRpcId; method: string; params: Record<string, unknown> | undefined; raw: Record<string, unknown> }
  | { kind: 'notification'; method: string; params: Record<string, unknown> | undefined; raw: Record<string, unknown> }
  | { kind: 'response'; id: JsonRpcId | null; error?: { code: number; message: string }; raw: Record<string, unknown> }
  /** Not a JSON-RPC 2.0 message; `id` when one could be read (for the error reply). */
  | { kind: 'invalid'; id: JsonRpcId | null; why: string; raw: unknown };

export type ParsedBody =
  | { ok: true; batch: boolean; messages: JsonRpcMessage[] }
  | { ok: false; code: number; message: string };

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validId(v: unknown): v is JsonRpcId {
  return (typeof v === 'string' && v.length <= 256) || (typeof v === 'number' && Number.isFinite(v));
}

/** Classifies one parsed JSON value as a JSON-RPC message. */
export function classify(v: unknown): JsonRpcMessage {
  if (!isObj(v)) return { kind: 'invalid', id: null, why: 'a JSON-RPC message must be an object', raw: v };
  const id = validId(v.id) ? v.id : null;
  if (v.jsonrpc !== '2.0') return { kind: 'invalid', id, why: 'jsonrpc must be "2.0"', raw: v };
  if (typeof v.method === 'string') {
    if (v.method === '') return { kind: 'invalid', id, why: 'method must not be empty', raw: v };
    if (v.params !== undefined && !isObj(v.params)) return { kind: 'invalid', id, why: 'params must be an object', raw: v };
    const params = v.params as Record<string, unknown> | undefined;
    if (!('id' in v)) return { kind: 'notification', method: v.method, params, raw: v };
    if (!validId(v.id)) return { kind: 'invalid', id: null, why: 'id must be a string or a number', raw: v };
    return { kind: 'request', id: v.id, method: v.method, params, raw: v };
  }
  if ('result' in v || 'error' in v) {
    if (v.id !== null && !validId(v.id)) return { kind: 'invalid', id: null, why: 'id must be a string, a number or null', raw: v };
    const e = isObj(v.error) ? { code: typeof v.error.code === 'number' ? v.error.code : 0, message: typeof v.error.message === 'string' ? v.error.message : '' } : undefined;
    return { kind: 'response', id: v.id as JsonRpcId | null, ...(e ? { error: e } : {}), raw: v };
  }
  return { kind: 'invalid', id, why: 'neither a request, a notification nor a response', raw: v };
}

/** Parses a POST body. Never throws. */
export function parseBody(body: Buffer | string): ParsedBody {
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return { ok: false, code: RPC.PARSE_ERROR, message: 'Parse error: the body is not valid JSON' };
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return { ok: false, code: RPC.INVALID_REQUEST, message: 'Invalid Request: empty batch' };
    return { ok: true, batch: true, messages: v.map(classify) };
  }
  return { ok: true, batch: false, messages: [classify(v)] };
}

export interface RpcError {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

export function errorResponse(id: JsonRpcId | null, error: RpcError): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error };
}

/** The `(server, tool)` a message names, for policies and lineage. */
export function toolOf(m: JsonRpcMessage): string {
  if (m.kind !== 'request' && m.kind !== 'notification') return '';
  if (m.method !== 'tools/call' && m.method !== 'prompts/get') return '';
  const n = m.params?.name;
  return typeof n === 'string' ? n : '';
}

export function argumentsOf(m: JsonRpcMessage): Record<string, unknown> {
  if (m.kind !== 'request' || (m.method !== 'tools/call' && m.method !== 'prompts/get')) return {};
  const a = m.params?.arguments;
  return isObj(a) ? a : {};
}
