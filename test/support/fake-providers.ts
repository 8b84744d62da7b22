// Loopback fake LLM providers for tests. Each checks auth and request shape the way the real API does, records
// everything it received, and answers realistic JSON, SSE or AWS eventstream bodies (written in several TCP
// writes so chunk boundaries split events). Also exports the canned-body builders the conformance tests use.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createHash, createHmac } from 'node:crypto';
import type { ProviderApi } from '../../service/config/types.ts';
import { encodeEventStreamMessage } from '../../service/providers/eventstream.ts';

// ---------------------------------------------------------------- canned answers

export interface ToolCallSpec {
  id: string;
  name: string;
  args: Record<string, unknown>;
}

/** What the fake model "says". Builders turn it into each provider's wire format. */
export interface ReplySpec {
  text?: string;
  toolCalls?: ToolCallSpec[];
  finish?: 'stop' | 'length' | 'tool_calls';
  /** `input` counts every prompt token; `cached` (reads) and `cacheWrite` (of which `cacheWrite1h` 1-hour) are parts of it. `reasoning` is part of `output`. */
  usage?: { input: number; output: number; cached?: number; cacheWrite?: number; cacheWrite1h?: number; reasoning?: number };
  /** Anthropic (and Claude on Bedrock/Vertex): a thinking block before the text. */
  thinking?: string;
  /** Provider-side message/response id (Bedrock has none). */
  id?: string;
  model?: string;
}

export const DEFAULT_REPLY: Required<Pick<ReplySpec, 'text' | 'finish' | 'usage'>> = {
  text: 'Hello from the fake provider.',
  finish: 'stop',
  usage: { input: 12, output: 7 },
};

type Json = Record<string, unknown>;

function norm(r: ReplySpec): Required<Omit<ReplySpec, 'toolCalls' | 'thinking'>> & { toolCalls: ToolCallSpec[]; cached: number; thinking?: string } {
  const toolCalls = r.toolCalls ?? [];
  return {
    text: r.text ?? (toolCalls.length > 0 ? '' : DEFAULT_REPLY.text),
    toolCalls,
    finish: r.finish ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage: r.usage ?? DEFAULT_REPLY.usage,
    cached: r.usage?.cached ?? 0,
    id: r.id ?? 'resp_fake_0001',
    model: r.model ?? 'fake-model-001',
    ...(r.thinking ? { thinking: r.thinking } : {}),
  };
}

/** Anthropic usage object: `input_tokens` excludes cache reads and writes, `cache_creation` splits writes by TTL. */
function anthropicUsage(r: ReturnType<typeof norm>, output: number): Json {
  const write = r.usage.cacheWrite ?? 0;
  const write1h = r.usage.cacheWrite1h ?? 0;
  return {
    input_tokens: r.usage.input - r.cached - write,
    cache_creation_input_tokens: write,
    cache_read_input_tokens: r.cached,
    cache_creation: { ephemeral_5m_input_tokens: write - write1h, ephemeral_1h_input_tokens: write1h },
    output_tokens: output,
    service_tier: 'standard',
  };
}

/** Split text into small pieces (words with their trailing space), like token-by-token streaming. */
export function pieces(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

function splitInTwo(s: string): string[] {
  if (s.length < 2) return [s];
  const mid = Math.floor(s.length / 2);
  return [s.slice(0, mid), s.slice(mid)];
}

function sse(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

const ANTHROPIC_STOP = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' } as const;
const GEMINI_STOP = { stop: 'STOP', length: 'MAX_TOKENS', tool_calls: 'STOP' } as const;

// ---- OpenAI / Azure

export function openAIReply(spec: ReplySpec, azure = false): Json {
  const r = norm(spec);
  const message: Json = { role: 'assistant', content: r.text === '' ? null : r.text, refusal: null, annotations: [] };
  if (r.toolCalls.length > 0) {
    message.tool_calls = r.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.args) } }));
  }
  const choice: Json = { index: 0, message, logprobs: null, finish_reason: r.finish };
  if (azure) choice.content_filter_results = { hate: { filtered: false, severity: 'safe' } };
  const out: Json = {
    id: `chatcmpl-${r.id}`,
    object: 'chat.completion',
    created: 1700000000,
    model: r.model,
    choices: [choice],
    usage: {
      prompt_tokens: r.usage.input,
      completion_tokens: r.usage.output,
      total_tokens: r.usage.input + r.usage.output,
      prompt_tokens_details: { cached_tokens: r.cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: r.usage.reasoning ?? 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    system_fingerprint: 'fp_fake',
  };
  if (azure) out.prompt_filter_results = [{ prompt_index: 0, content_filter_results: {} }];
  return out;
}

export function openAIStream(spec: ReplySpec, includeUsage: boolean, azure = false): string[] {
  const r = norm(spec);
  const base = { id: `chatcmpl-${r.id}`, object: 'chat.completion.chunk', created: 1700000000, model: r.model, system_fingerprint: 'fp_fake' };
  const u = includeUsage ? { usage: null } : {};
  const chunk = (delta: Json, finish: string | null = null): string =>
    sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...u });
  const out: string[] = [];
  if (azure) out.push(sse({ id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] }));
  out.push(chunk({ role: 'assistant', content: r.text === '' && r.toolCalls.length > 0 ? null : '', refusal: null }));
  for (const p of pieces(r.text)) out.push(chunk({ content: p }));
  r.toolCalls.forEach((t, index) => {
    out.push(chunk({ tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] }));
    for (const a of splitInTwo(JSON.stringify(t.args))) out.push(chunk({ tool_calls: [{ index, function: { arguments: a } }] }));
  });
  out.push(chunk({}, r.finish));
  if (includeUsage) {
    out.push(
      sse({
        ...base,
        choices: [],
        usage: {
          prompt_tokens: r.usage.input,
          completion_tokens: r.usage.output,
          total_tokens: r.usage.input + r.usage.output,
          prompt_tokens_details: { cached_tokens: r.cached, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: r.usage.reasoning ?? 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        },
      }),
    );
  }
  out.push('data: [DONE]\n\n');
  return out;
}

// ---- OpenAI / Azure Responses API (`/responses`)

function responsesOutput(r: ReturnType<typeof norm>): Json[] {
  const out: Json[] = [];
  if (r.text !== '') {
    out.push({ id: `msg_${r.id}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: r.text, annotations: [], logprobs: [] }] });
  }
  for (const t of r.toolCalls) out.push({ id: `fc_${t.id}`, type: 'function_call', status: 'completed', arguments: JSON.stringify(t.args), call_id: t.id, name: t.name });
  return out;
}

function responsesUsage(r: ReturnType<typeof norm> & { reasoning: number }): Json {
  return {
    input_tokens: r.usage.input,
    input_tokens_details: { cached_tokens: r.cached },
    output_tokens: r.usage.output,
    output_tokens_details: { reasoning_tokens: r.reasoning },
    total_tokens: r.usage.input + r.usage.output,
  };
}

export function openAIResponsesReply(spec: ReplySpec & { reasoning?: number }): Json {
  const r = { ...norm(spec), reasoning: spec.reasoning ?? 0 };
  const incomplete = r.finish === 'length';
  return {
    id: `resp_${r.id}`, object: 'response', created_at: 1700000000, status: incomplete ? 'incomplete' : 'completed', error: null,
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null, model: r.model, output: responsesOutput(r),
    parallel_tool_calls: true, store: true, tools: [], usage: responsesUsage(r), metadata: {},
  };
}

export function openAIResponsesStream(spec: ReplySpec & { reasoning?: number }): string[] {
  const r = { ...norm(spec), reasoning: spec.reasoning ?? 0 };
  const full = openAIResponsesReply(spec);
  let seq = 0;
  const ev = (type: string, fields: Json): string => sse({ type, sequence_number: seq++, ...fields }, type);
  const out: string[] = [];
  const pending = { ...full, status: 'in_progress', output: [], usage: null };
  out.push(ev('response.created', { response: pending }), ev('response.in_progress', { response: pending }));
  let oi = 0;
  if (r.text !== '') {
    const id = `msg_${r.id}`;
    out.push(ev('response.output_item.added', { output_index: oi, item: { id, type: 'message', status: 'in_progress', role: 'assistant', content: [] } }));
    out.push(ev('response.content_part.added', { item_id: id, output_index: oi, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }));
    for (const p of pieces(r.text)) out.push(ev('response.output_text.delta', { item_id: id, output_index: oi, content_index: 0, delta: p, logprobs: [] }));
    out.push(ev('response.output_text.done', { item_id: id, output_index: oi, content_index: 0, text: r.text, logprobs: [] }));
    out.push(ev('response.content_part.done', { item_id: id, output_index: oi, content_index: 0, part: { type: 'output_text', text: r.text, annotations: [] } }));
    out.push(ev('response.output_item.done', { output_index: oi, item: (full.output as Json[])[oi] }));
    oi++;
  }
  for (const t of r.toolCalls) {
    const id = `fc_${t.id}`;
    const args = JSON.stringify(t.args);
    out.push(ev('response.output_item.added', { output_index: oi, item: { id, type: 'function_call', status: 'in_progress', arguments: '', call_id: t.id, name: t.name } }));
    for (const a of splitInTwo(args)) out.push(ev('response.function_call_arguments.delta', { item_id: id, output_index: oi, delta: a }));
    out.push(ev('response.function_call_arguments.done', { item_id: id, output_index: oi, arguments: args }));
    out.push(ev('response.output_item.done', { output_index: oi, item: (full.output as Json[])[oi] }));
    oi++;
  }
  out.push(ev(full.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: full }));
  return out;
}

// ---- Anthropic

export function anthropicReply(spec: ReplySpec): Json {
  const r = norm(spec);
  const content: Json[] = [];
  if (r.thinking) content.push({ type: 'thinking', thinking: r.thinking, signature: 'sig_fake_EqQBCkYIBRgCIkB' });
  if (r.text !== '') content.push({ type: 'text', text: r.text });
  for (const t of r.toolCalls) content.push({ type: 'tool_use', id: t.id, name: t.name, input: t.args });
  return {
    id: `msg_${r.id}`,
    type: 'message',
    role: 'assistant',
    model: r.model,
    content,
    stop_reason: ANTHROPIC_STOP[r.finish],
    stop_sequence: null,
    usage: anthropicUsage(r, r.usage.output),
  };
}

export function anthropicStream(spec: ReplySpec): string[] {
  const r = norm(spec);
  const out: string[] = [];
  const ev = (type: string, body: Json): void => {
    out.push(sse({ type, ...body }, type));
  };
  ev('message_start', {
    message: {
      id: `msg_${r.id}`,
      type: 'message',
      role: 'assistant',
      model: r.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: anthropicUsage(r, 1),
    },
  });
  let index = 0;
  if (r.thinking) {
    ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
    for (const p of pieces(r.thinking)) ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p } });
    ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: 'sig_fake_EqQBCkYIBRgCIkB' } });
    ev('content_block_stop', { index });
    index++;
  }
  if (r.text !== '') {
    ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
    out.push(sse({ type: 'ping' }, 'ping'));
    for (const p of pieces(r.text)) ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } });
    ev('content_block_stop', { index });
    index++;
  }
  for (const t of r.toolCalls) {
    ev('content_block_start', { index, content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} } });
    ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const a of splitInTwo(JSON.stringify(t.args))) ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: a } });
    ev('content_block_stop', { index });
    index++;
  }
  ev('message_delta', { delta: { stop_reason: ANTHROPIC_STOP[r.finish], stop_sequence: null }, usage: { output_tokens: r.usage.output } });
  ev('message_stop', {});
  return out;
}

// ---- Gemini

function geminiUsage(r: ReturnType<typeof norm>): Json {
  const u: Json = {
    promptTokenCount: r.usage.input,
    // Gemini counts thinking apart from the candidates.
    candidatesTokenCount: r.usage.output - (r.usage.reasoning ?? 0),
    totalTokenCount: r.usage.input + r.usage.output,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: r.usage.input }],
  };
  if (r.cached > 0) u.cachedContentTokenCount = r.cached;
  if (r.usage.reasoning) u.thoughtsTokenCount = r.usage.reasoning;
  return u;
}

export function geminiReply(spec: ReplySpec): Json {
  const r = norm(spec);
  const parts: Json[] = [];
  if (r.text !== '') parts.push({ text: r.text });
  for (const t of r.toolCalls) parts.push({ functionCall: { name: t.name, args: t.args } });
  return {
    candidates: [{ content: { parts, role: 'model' }, finishReason: GEMINI_STOP[r.finish], avgLogprobs: -0.1, index: 0 }],
    usageMetadata: geminiUsage(r),
    modelVersion: r.model,
    responseId: r.id,
  };
}

export function geminiStream(spec: ReplySpec): string[] {
  const r = norm(spec);
  const out: string[] = [];
  const words = pieces(r.text);
  const groups: string[] = [];
  for (let i = 0; i < words.length; i += 2) groups.push(words.slice(i, i + 2).join(''));
  const last = groups.length - 1;
  groups.forEach((g, i) => {
    const cand: Json = { content: { parts: [{ text: g }], role: 'model' }, index: 0 };
    const msg: Json = { candidates: [cand], modelVersion: r.model, responseId: r.id };
    if (i === last && r.toolCalls.length === 0) {
      cand.finishReason = GEMINI_STOP[r.finish];
      msg.usageMetadata = geminiUsage(r);
    } else {
      msg.usageMetadata = { promptTokenCount: r.usage.input, totalTokenCount: r.usage.input };
    }
    out.push(sse(msg));
  });
  if (r.toolCalls.length > 0 || groups.length === 0) {
    const parts = r.toolCalls.map((t) => ({ functionCall: { name: t.name, args: t.args } }));
    out.push(
      sse({
        candidates: [{ content: { parts: parts.length > 0 ? parts : [{ text: '' }], role: 'model' }, finishReason: GEMINI_STOP[r.finish], index: 0 }],
        usageMetadata: geminiUsage(r),
        modelVersion: r.model,
        responseId: r.id,
      }),
    );
  }
  return out;
}

// ---- Bedrock Converse

function bedrockUsage(r: ReturnType<typeof norm>): Json {
  const write = r.usage.cacheWrite ?? 0;
  const u: Json = { inputTokens: r.usage.input - r.cached - write, outputTokens: r.usage.output, totalTokens: r.usage.input + r.usage.output };
  if (r.cached > 0 || write > 0) {
    u.cacheReadInputTokens = r.cached;
    u.cacheWriteInputTokens = write;
  }
  const write1h = r.usage.cacheWrite1h ?? 0;
  if (write > 0) u.cacheDetails = [{ ttl: '5m', inputTokens: write - write1h }, ...(write1h > 0 ? [{ ttl: '1h', inputTokens: write1h }] : [])];
  return u;
}

const BEDROCK_STOP = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' } as const;

export function bedrockReply(spec: ReplySpec): Json {
  const r = norm(spec);
  const content: Json[] = [];
  if (r.text !== '') content.push({ text: r.text });
  for (const t of r.toolCalls) content.push({ toolUse: { toolUseId: t.id, name: t.name, input: t.args } });
  return { output: { message: { role: 'assistant', content } }, stopReason: BEDROCK_STOP[r.finish], usage: bedrockUsage(r), metrics: { latencyMs: 321 } };
}

function bedrockEvent(type: string, payload: Json): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify({ ...payload, p: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN'.slice(0, 8 + (type.length % 9)) })),
  );
}

export function bedrockExceptionFrame(type: string, message: string): Buffer {
  return encodeEventStreamMessage(
    { ':exception-type': type, ':content-type': 'application/json', ':message-type': 'exception' },
    Buffer.from(JSON.stringify({ message })),
  );
}

export function bedrockStream(spec: ReplySpec): Buffer[] {
  const r = norm(spec);
  const out: Buffer[] = [bedrockEvent('messageStart', { role: 'assistant' })];
  let index = 0;
  if (r.text !== '') {
    for (const p of pieces(r.text)) out.push(bedrockEvent('contentBlockDelta', { contentBlockIndex: index, delta: { text: p } }));
    out.push(bedrockEvent('contentBlockStop', { contentBlockIndex: index }));
    index++;
  }
  for (const t of r.toolCalls) {
    out.push(bedrockEvent('contentBlockStart', { contentBlockIndex: index, start: { toolUse: { toolUseId: t.id, name: t.name } } }));
    for (const a of splitInTwo(JSON.stringify(t.args))) out.push(bedrockEvent('contentBlockDelta', { contentBlockIndex: index, delta: { toolUse: { input: a } } }));
    out.push(bedrockEvent('contentBlockStop', { contentBlockIndex: index }));
    index++;
  }
  out.push(bedrockEvent('messageStop', { stopReason: BEDROCK_STOP[r.finish] }));
  out.push(bedrockEvent('metadata', { usage: bedrockUsage(r), metrics: { latencyMs: 321 } }));
  return out;
}

// ---- Claude on Bedrock (InvokeModelWithResponseStream): each Anthropic event base64'd in a `chunk` frame

export function bedrockAnthropicStream(spec: ReplySpec): Buffer[] {
  const r = norm(spec);
  const events = anthropicStream(spec).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as Json);
  const last = events.at(-1)!;
  // Bedrock adds its invocation metrics to message_stop.
  last['amazon-bedrock-invocationMetrics'] = { inputTokenCount: r.usage.input, outputTokenCount: r.usage.output, invocationLatency: 321, firstByteLatency: 123 };
  return events.map((ev) =>
    encodeEventStreamMessage(
      { ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' },
      Buffer.from(JSON.stringify({ bytes: Buffer.from(JSON.stringify(ev)).toString('base64'), p: 'abcdefgh' })),
    ),
  );
}

// ---- errors in each provider's real shape

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export function providerError(kind: ProviderApi, status: number, message?: string, retryAfter?: number): ErrorAnswer {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  const msg = message ?? (status === 429 ? 'Rate limit reached for requests' : status >= 500 ? 'The server had an error while processing your request.' : 'Invalid request.');
  let body: unknown;
  switch (kind) {
    case 'openai': {
      const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
      const code = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? null : 'invalid_value';
      body = { error: { message: msg, type, param: null, code } };
      break;
    }
    case 'azure':
      body = { error: { code: String(status === 429 ? '429' : status >= 500 ? 'InternalServerError' : 'BadRequest'), message: msg } };
      if (status === 429) headers['retry-after-ms'] = String((retryAfter ?? 2) * 1000);
      break;
    case 'anthropic': {
      const type = status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
      body = { type: 'error', error: { type, message: msg }, request_id: 'req_fake_1' };
      headers['request-id'] = 'req_fake_1';
      break;
    }
    case 'gemini': {
      const s = status === 429 ? 'RESOURCE_EXHAUSTED' : status >= 500 ? 'INTERNAL' : status === 401 || status === 403 ? 'PERMISSION_DENIED' : 'INVALID_ARGUMENT';
      body = { error: { code: status, message: msg, status: s } };
      break;
    }
    case 'vertex': {
      const s = status === 429 ? 'RESOURCE_EXHAUSTED' : status >= 500 ? 'INTERNAL' : status === 401 || status === 403 ? 'PERMISSION_DENIED' : 'INVALID_ARGUMENT';
      body = { error: { code: status, message: msg, status: s } };
      break;
    }
    case 'bedrock': {
      const t = status === 429 ? 'ThrottlingException' : status >= 500 ? 'InternalServerException' : status === 403 ? 'AccessDeniedException' : 'ValidationException';
      headers['x-amzn-errortype'] = `${t}:http://internal.amazon.com/coral/com.amazon.bedrock/`;
      headers['x-amzn-requestid'] = '0d8f8a2e-fake';
      body = { message: msg };
      break;
    }
  }
  return { status, headers, body: Buffer.from(JSON.stringify(body)) };
}

// ---------------------------------------------------------------- SigV4 verification (independent of the signer)

function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface SigV4Check {
  ok: boolean;
  reason?: string;
}

/**
 * Recomputes an AWS SigV4 signature from the raw request as received (service URI escaping: each path segment
 * escaped once more, as AWS does for every service but S3) and compares it with the Authorization header.
 */
export function verifySigV4(
  method: string,
  rawPath: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  region: string,
  service: string,
): SigV4Check {
  const auth = String(headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, reason: 'missing or malformed SigV4 Authorization header' };
  const [, akid, date, reg, svc, signedHeaders, signature] = m as unknown as string[];
  if (akid !== creds.accessKeyId) return { ok: false, reason: 'unknown access key id' };
  if (reg !== region || svc !== service) return { ok: false, reason: `credential scope ${reg}/${svc} does not match ${region}/${service}` };
  const amzDate = String(headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(date!)) return { ok: false, reason: 'x-amz-date does not match the credential scope date' };
  if (creds.sessionToken && headers['x-amz-security-token'] !== creds.sessionToken) return { ok: false, reason: 'missing session token' };
  const names = signedHeaders!.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return { ok: false, reason: 'host and x-amz-date must be signed' };
  const [pathOnly, query = ''] = rawPath.split('?');
  const canonicalUri = pathOnly!.split('/').map(uriEscape).join('/');
  const canonicalQuery = query
    .split('&')
    .filter((q) => q !== '')
    .map((q) => q.split('=').map((x) => uriEscape(decodeURIComponent(x ?? ''))).join('='))
    .sort()
    .join('&');
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  if (headers['x-amz-content-sha256'] !== undefined && headers['x-amz-content-sha256'] !== payloadHash) {
    return { ok: false, reason: 'x-amz-content-sha256 does not match the body' };
  }
  const canonical = [method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date!), region), service), 'aws4_request');
  const expected = createHmac('sha256', kSigning).update(toSign).digest('hex');
  return expected === signature ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

// ---------------------------------------------------------------- the fake servers

export interface RecordedRequest {
  method: string;
  /** Path including the query string, as received. */
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Parsed body, or undefined when it was not JSON. */
  json: Json | undefined;
  /** TLS fakes: the server name the client sent (SNI). */
  sni?: string;
}

export type Behaviour =
  /** `delayMs`: wait this long before answering (requests overlap, e.g. for concurrency tests). */
  | { type: 'reply'; reply?: ReplySpec; delayMs?: number }
  /** An error in the provider's real shape (429 carries `retry-after`). */
  | { type: 'error'; status: number; message?: string; retryAfter?: number }
  /** A streamed answer that fails half-way with the provider's in-stream error (Anthropic `error` event, Bedrock exception frame, OpenAI `{"error":…}` data). */
  | { type: 'stream_error'; message?: string }
  /** Accept the request and never answer (for timeout tests). */
  | { type: 'hang' }
  /** Drop the connection before any response byte (a reset Envoy may retry). */
  | { type: 'reset' }
  /** Send the headers and the first part of a stream, then drop the connection. */
  | { type: 'truncate' }
  | { type: 'raw'; status: number; headers?: Record<string, string>; body: string | Buffer };

export interface FakeProviderOptions {
  /** Expected API key (default `test-<kind>-key`); `null` requires no auth header (e.g. Ollama). */
  apiKey?: string | null;
  /** Bedrock: "AKID:SECRET[:TOKEN]" used to verify SigV4 (default `AKIDFAKE:fake-secret`). */
  awsCredential?: string;
  region?: string;
  /** Path prefix the fake serves (default: /v1 openai+anthropic, /openai azure, /v1beta gemini, '' bedrock). */
  basePath?: string;
  /** Default answer when no `setNext` behaviour is queued. */
  reply?: ReplySpec;
  /** Milliseconds between the TCP writes of a streamed answer (default 2). */
  writeDelayMs?: number;
  /** Serve HTTPS with this certificate (from test/support/test-ca.ts); `host` is then `hostname` (the name Envoy must send as SNI and check the SAN of). */
  tls?: { key: string; cert: string; hostname: string };
}

export interface FakeProvider {
  kind: ProviderApi;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`: use as ProviderConfig.host (Bedrock signs it). */
  host: string;
  basePath: string;
  apiKey: string | null;
  /** The credential string to hand to translators (Bedrock: AKID:SECRET). */
  credential: string | undefined;
  requests: RecordedRequest[];
  /** Queue one behaviour for the next request (FIFO); without one, the default reply is sent. */
  setNext(b: Behaviour): void;
  /** Replace the default behaviour (used when nothing is queued); undefined restores the default reply. */
  setDefault(b: Behaviour | undefined): void;
  close(): Promise<void>;
}

const DEFAULT_BASE: Record<ProviderApi, string> = {
  openai: '/v1',
  anthropic: '/v1',
  azure: '/openai',
  gemini: '/v1beta',
  bedrock: '',
  vertex: '/v1/projects/test-project/locations/us-east5',
};

class Reject extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function need(cond: unknown, status: number, message: string): asserts cond {
  if (!cond) throw new Reject(status, message);
}

const ANTHROPIC_FIELDS = new Set([
  'model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k', 'metadata',
  'tools', 'tool_choice', 'thinking', 'service_tier', 'container', 'mcp_servers',
]);
const GEMINI_FIELDS = new Set(['contents', 'systemInstruction', 'generationConfig', 'tools', 'toolConfig', 'safetySettings', 'cachedContent']);
const BEDROCK_FIELDS = new Set([
  'messages', 'system', 'inferenceConfig', 'toolConfig', 'guardrailConfig', 'additionalModelRequestFields',
  'additionalModelResponseFieldPaths', 'promptVariables', 'requestMetadata', 'performanceConfig',
]);

/** Claude on Bedrock / Vertex: the Anthropic body without `model` (it is in the path), with `anthropic_version`. */
const NATIVE_ANTHROPIC_FIELDS = new Set([...ANTHROPIC_FIELDS, 'anthropic_version', 'anthropic_beta'].filter((k) => k !== 'model'));

function checkNativeAnthropic(body: Json | undefined, version: string, streamInBody: boolean | undefined): void {
  need(body, 400, 'invalid JSON');
  need(body.anthropic_version === version, 400, `anthropic_version: must be ${version}`);
  for (const k of Object.keys(body)) need(NATIVE_ANTHROPIC_FIELDS.has(k) && !(k === 'stream' && streamInBody === undefined), 400, `Malformed input request: extraneous key [${k}] is not permitted`);
  need(Number.isInteger(body.max_tokens) && (body.max_tokens as number) > 0, 400, 'max_tokens: Field required');
  need(Array.isArray(body.messages) && body.messages.length > 0, 400, 'messages: at least one message is required');
  if (body.anthropic_beta !== undefined) need(Array.isArray(body.anthropic_beta) && body.anthropic_beta.every((b) => typeof b === 'string'), 400, 'anthropic_beta: must be a list of strings');
}

/** Anthropic's count_tokens body (also Vertex's, which names the model in the body): a prompt, no output settings. */
function checkCountTokens(body: Json | undefined): void {
  need(body, 400, 'invalid JSON');
  const allowed = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers']);
  for (const k of Object.keys(body)) need(allowed.has(k), 400, `${k}: Extra inputs are not permitted`);
  need(typeof body.model === 'string', 400, 'model: Field required');
  need(Array.isArray(body.messages) && body.messages.length > 0, 400, 'messages: Field required');
}

interface Route {
  /** `native`: Claude's Anthropic body (Bedrock InvokeModel, Vertex rawPredict) answered in Anthropic's shape. */
  native?: boolean;
  /** `count_tokens`: the provider's token counter (Anthropic, Bedrock CountTokens, Vertex count-tokens). */
  op: 'chat' | 'embeddings' | 'responses' | 'count_tokens';
  stream: boolean;
  /** Gemini: single embedContent vs batch. */
  single?: boolean;
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** OpenAI/Azure `POST /responses`: `input` (string or items) is required; items need a type or a role. */
function responsesRoute(body: Json | undefined): Route {
  need(body, 400, 'We could not parse the JSON body of your request.');
  need(typeof body.model === 'string', 400, 'you must provide a model parameter');
  need(typeof body.input === 'string' || Array.isArray(body.input), 400, "Missing required parameter: 'input'.");
  if (Array.isArray(body.input)) for (const i of body.input as unknown[]) need(isObj(i) && (typeof i.type === 'string' || typeof i.role === 'string'), 400, 'Invalid input item');
  need(body.messages === undefined, 400, "Unknown parameter: 'messages'.");
  return { op: 'responses', stream: body.stream === true };
}

/** Checks a request the way the real API would; returns what was asked for, or throws Reject. */
function validateRequest(kind: ProviderApi, f: FakeProvider, req: RecordedRequest, awsCreds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, region: string): Route {
  const h = req.headers;
  const [path, query = ''] = req.path.split('?');
  const params = new URLSearchParams(query);
  need(req.method === 'POST', 405, `method ${req.method} not allowed`);
  const body = req.json;
  switch (kind) {
    case 'openai': {
      if (f.apiKey === null) need(h.authorization === undefined, 400, 'unexpected Authorization header');
      else need(h.authorization === `Bearer ${f.apiKey}`, 401, 'Incorrect API key provided.');
      need(h['content-type']?.startsWith('application/json'), 400, 'content-type must be application/json');
      need(body, 400, 'We could not parse the JSON body of your request.');
      need(typeof body.model === 'string', 400, "you must provide a model parameter");
      if (path === `${f.basePath}/embeddings`) {
        need(body.input !== undefined, 400, "'input' is a required property");
        return { op: 'embeddings', stream: false };
      }
      if (path === `${f.basePath}/responses`) return responsesRoute(body);
      need(path === `${f.basePath}/chat/completions`, 404, `Invalid URL (POST ${path})`);
      need(Array.isArray(body.messages) && body.messages.length > 0, 400, "[] is too short - 'messages'");
      for (const m of body.messages as unknown[]) {
        need(isObj(m) && ['system', 'developer', 'user', 'assistant', 'tool', 'function'].includes(String(m.role)), 400, 'invalid message role');
      }
      return { op: 'chat', stream: body.stream === true };
    }
    case 'azure': {
      need(h.authorization === undefined, 401, 'Azure OpenAI uses the api-key header');
      need(h['api-key'] === f.apiKey, 401, 'Access denied due to invalid subscription key or wrong API endpoint.');
      if (path === `${f.basePath}/v1/responses`) return responsesRoute(body); // Azure's v1 API: no api-version
      need(params.get('api-version'), 404, 'Resource not found (missing api-version)');
      const m = new RegExp(`^${f.basePath}/deployments/([^/]+)/(chat/completions|embeddings)$`).exec(path!);
      need(m, 404, 'Resource not found');
      need(body, 400, 'invalid JSON body');
      if (m[2] === 'embeddings') return { op: 'embeddings', stream: false };
      need(Array.isArray(body.messages) && body.messages.length > 0, 400, "'messages' is a required property");
      return { op: 'chat', stream: body.stream === true };
    }
    case 'anthropic': {
      need(h.authorization === undefined, 401, 'authorization header is not accepted; use x-api-key');
      need(h['x-api-key'] === f.apiKey, 401, 'invalid x-api-key');
      need(h['anthropic-version'], 400, 'anthropic-version: header is required');
      if (path === `${f.basePath}/messages/count_tokens`) {
        checkCountTokens(body);
        return { op: 'count_tokens', stream: false };
      }
      need(path === `${f.basePath}/messages`, 404, 'Not Found');
      need(body, 400, 'invalid JSON');
      for (const k of Object.keys(body)) need(ANTHROPIC_FIELDS.has(k), 400, `${k}: Extra inputs are not permitted`);
      need(typeof body.model === 'string', 400, 'model: Field required');
      need(Number.isInteger(body.max_tokens) && (body.max_tokens as number) > 0, 400, 'max_tokens: Field required');
      need(Array.isArray(body.messages) && body.messages.length > 0, 400, 'messages: at least one message is required');
      (body.messages as unknown[]).forEach((m, i) => {
        need(isObj(m) && (m.role === 'user' || m.role === 'assistant'), 400, `messages.${i}.role: Input should be 'user' or 'assistant'`);
        need(typeof m.content === 'string' || Array.isArray(m.content), 400, `messages.${i}.content: Input should be a valid list`);
      });
      if (body.system !== undefined) need(typeof body.system === 'string' || Array.isArray(body.system), 400, 'system: Input should be a valid string');
      if (body.temperature !== undefined) need(typeof body.temperature === 'number' && body.temperature <= 1, 400, 'temperature: range: 0 <= temperature <= 1');
      if (body.tool_choice !== undefined) need(isObj(body.tool_choice), 400, 'tool_choice: Input should be an object');
      return { op: 'chat', stream: body.stream === true };
    }
    case 'gemini': {
      need(h['x-goog-api-key'] === f.apiKey, 403, 'Method doesn\'t allow unregistered callers. Please use API Key.');
      const m = new RegExp(`^${f.basePath}/models/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$`).exec(path!);
      need(m, 404, 'Not Found');
      need(body, 400, 'Invalid JSON payload received.');
      if (m[2] === 'embedContent') {
        need(isObj(body.content) && Array.isArray(body.content.parts), 400, 'content is required');
        return { op: 'embeddings', stream: false, single: true };
      }
      if (m[2] === 'batchEmbedContents') {
        need(Array.isArray(body.requests) && body.requests.length > 0, 400, 'requests is required');
        return { op: 'embeddings', stream: false, single: false };
      }
      for (const k of Object.keys(body)) need(GEMINI_FIELDS.has(k), 400, `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
      need(Array.isArray(body.contents) && body.contents.length > 0, 400, '* GenerateContentRequest.contents: contents is not specified');
      for (const c of body.contents as unknown[]) {
        need(isObj(c) && (c.role === 'user' || c.role === 'model') && Array.isArray(c.parts) && c.parts.length > 0, 400, 'invalid content');
      }
      const stream = m[2] === 'streamGenerateContent';
      if (stream) need(params.get('alt') === 'sse', 400, 'streamGenerateContent without alt=sse returns a JSON array; this fake only serves SSE');
      return { op: 'chat', stream };
    }
    case 'vertex': {
      need(h['x-api-key'] === undefined, 401, 'unexpected x-api-key header');
      need(h.authorization === `Bearer ${f.apiKey}`, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
      if (path === `${f.basePath}/publishers/anthropic/models/count-tokens:rawPredict`) {
        checkCountTokens(body);
        return { op: 'count_tokens', stream: false };
      }
      const m = new RegExp(`^${f.basePath}/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$`).exec(path!);
      need(m, 404, 'Not Found');
      const stream = m[2] === 'streamRawPredict';
      checkNativeAnthropic(body, 'vertex-2023-10-16', stream);
      need((body!.stream === true) === stream, 400, stream ? 'streamRawPredict needs stream: true' : 'rawPredict cannot stream');
      return { op: 'chat', stream, native: true };
    }
    case 'bedrock': {
      const check = verifySigV4(req.method, req.path, h, req.body, awsCreds, region, 'bedrock');
      need(check.ok, 403, `The request signature we calculated does not match the signature you provided. (${check.reason})`);
      const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$/.exec(path!.slice(f.basePath.length));
      need(m, 404, 'UnknownOperationException');
      if (m[2] === 'count-tokens') {
        const inner = isObj(body) && isObj(body.input) && isObj(body.input.invokeModel) ? body.input.invokeModel.body : undefined;
        need(typeof inner === 'string', 400, 'input.invokeModel.body is required');
        let invoke: unknown;
        try {
          invoke = JSON.parse(Buffer.from(inner, 'base64').toString('utf8'));
        } catch {
          invoke = undefined;
        }
        checkNativeAnthropic(isObj(invoke) ? invoke : undefined, 'bedrock-2023-05-31', undefined);
        return { op: 'count_tokens', stream: false };
      }
      if (m[2] === 'invoke' || m[2] === 'invoke-with-response-stream') {
        need(decodeURIComponent(m[1]!).includes('anthropic.claude'), 400, 'this fake serves InvokeModel for Claude models only');
        checkNativeAnthropic(body, 'bedrock-2023-05-31', undefined);
        return { op: 'chat', stream: m[2] === 'invoke-with-response-stream', native: true };
      }
      need(body, 400, 'invalid JSON');
      for (const k of Object.keys(body)) need(BEDROCK_FIELDS.has(k), 400, `Malformed input request: extraneous key [${k}] is not permitted`);
      need(Array.isArray(body.messages) && body.messages.length > 0, 400, 'A conversation must start with a user message.');
      for (const msg of body.messages as unknown[]) {
        need(isObj(msg) && (msg.role === 'user' || msg.role === 'assistant') && Array.isArray(msg.content), 400, 'invalid message');
      }
      return { op: 'chat', stream: m[2] === 'converse-stream' };
    }
  }
}

function streamPieces(kind: ProviderApi, reply: ReplySpec, req: RecordedRequest, route: Route): Buffer[] {
  if (route.native) return kind === 'bedrock' ? bedrockAnthropicStream(reply) : anthropicStream(reply).map((s) => Buffer.from(s));
  switch (kind) {
    case 'openai':
    case 'azure': {
      if (req.path.split('?')[0]!.endsWith('/responses')) return openAIResponsesStream(reply).map((s) => Buffer.from(s));
      const so = req.json?.stream_options;
      const includeUsage = isObj(so) && so.include_usage === true;
      return openAIStream(reply, includeUsage, kind === 'azure').map((s) => Buffer.from(s));
    }
    case 'anthropic':
      return anthropicStream(reply).map((s) => Buffer.from(s));
    case 'gemini':
      return geminiStream(reply).map((s) => Buffer.from(s));
    case 'bedrock':
      return bedrockStream(reply);
    case 'vertex':
      return anthropicStream(reply).map((s) => Buffer.from(s));
  }
}

function jsonReply(kind: ProviderApi, reply: ReplySpec, route: Route): Json {
  if (route.native) return anthropicReply(reply);
  switch (kind) {
    case 'openai':
      return openAIReply(reply);
    case 'azure':
      return openAIReply(reply, true);
    case 'anthropic':
      return anthropicReply(reply);
    case 'gemini':
      return geminiReply(reply);
    case 'bedrock':
      return bedrockReply(reply);
    case 'vertex':
      return anthropicReply(reply);
  }
}

function embeddingsReply(kind: ProviderApi, req: RecordedRequest, route: Route): Json {
  const vec = (i: number): number[] => [0.1 + i, -0.2, 0.3, 0.5];
  if (kind === 'gemini') {
    if (route.single) return { embedding: { values: vec(0) } };
    const n = Array.isArray(req.json?.requests) ? req.json.requests.length : 0;
    return { embeddings: Array.from({ length: n }, (_, i) => ({ values: vec(i) })) };
  }
  const input = req.json?.input;
  const n = Array.isArray(input) && (typeof input[0] === 'string' || Array.isArray(input[0])) ? input.length : 1;
  const base64 = req.json?.encoding_format === 'base64';
  return {
    object: 'list',
    data: Array.from({ length: n }, (_, i) => ({
      object: 'embedding',
      index: i,
      embedding: base64 ? Buffer.from(new Float32Array(vec(i)).buffer).toString('base64') : vec(i),
    })),
    model: 'fake-embedding-001',
    usage: { prompt_tokens: 5 * n, total_tokens: 5 * n },
  };
}

/** Split each piece in two at an odd offset so TCP writes cut events (and eventstream frames) in the middle. */
function awkward(pieces: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const all = Buffer.concat(pieces);
  let pos = 0;
  let step = 7;
  while (pos < all.length) {
    out.push(all.subarray(pos, pos + step));
    pos += step;
    step = step * 3 > 400 ? 5 : step * 3;
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function streamContentType(kind: ProviderApi): string {
  return kind === 'bedrock' ? 'application/vnd.amazon.eventstream' : 'text/event-stream; charset=utf-8';
}

function midStreamError(kind: ProviderApi, message: string): Buffer {
  switch (kind) {
    case 'anthropic':
    case 'vertex':
      return Buffer.from(sse({ type: 'error', error: { type: 'overloaded_error', message } }, 'error'));
    case 'bedrock':
      return bedrockExceptionFrame('throttlingException', message);
    case 'gemini':
      return Buffer.from(sse({ error: { code: 503, message, status: 'UNAVAILABLE' } }));
    default:
      return Buffer.from(sse({ error: { message, type: 'server_error', param: null, code: null } }));
  }
}

export async function startFakeProvider(kind: ProviderApi, opts: FakeProviderOptions = {}): Promise<FakeProvider> {
  const queue: Behaviour[] = [];
  let fallback: Behaviour | undefined;
  const sockets = new Set<Socket>();
  const awsCredential = opts.awsCredential ?? 'AKIDFAKE:fake-secret';
  const [akid, secret, token] = awsCredential.split(':');
  const awsCreds = { accessKeyId: akid!, secretAccessKey: secret!, ...(token ? { sessionToken: token } : {}) };
  const region = opts.region ?? 'us-east-1';
  const delay = opts.writeDelayMs ?? 2;
  const apiKey = opts.apiKey === undefined ? `test-${kind}-key` : opts.apiKey;

  const fake: FakeProvider = {
    kind,
    port: 0,
    url: '',
    host: '',
    basePath: opts.basePath ?? DEFAULT_BASE[kind],
    apiKey: kind === 'bedrock' ? null : apiKey,
    credential: kind === 'bedrock' ? awsCredential : apiKey ?? undefined,
    requests: [],
    setNext: (b) => {
      queue.push(b);
    },
    setDefault: (b) => {
      fallback = b;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const send = (res: ServerResponse, a: ErrorAnswer): void => {
    res.writeHead(a.status, { ...a.headers, 'content-length': String(a.body.length) });
    res.end(a.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    let json: Json | undefined;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      json = isObj(parsed) ? parsed : undefined;
    } catch {
      json = undefined;
    }
    const servername = (req.socket as TLSSocket).servername;
    const rec: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers, body, json, ...(typeof servername === 'string' ? { sni: servername } : {}) };
    fake.requests.push(rec);

    let route: Route;
    try {
      route = validateRequest(kind, fake, rec, awsCreds, region);
    } catch (err) {
      if (err instanceof Reject) return send(res, providerError(kind, err.status, err.message));
      throw err;
    }
    const behaviour = queue.shift() ?? fallback ?? { type: 'reply' as const, reply: opts.reply };
    if (behaviour.type === 'reply' && behaviour.delayMs) await sleep(behaviour.delayMs);
    switch (behaviour.type) {
      case 'hang':
        return; // the socket stays open until the client gives up or close() destroys it
      case 'reset':
        req.socket.destroy();
        return;
      case 'error':
        return send(res, providerError(kind, behaviour.status, behaviour.message, behaviour.retryAfter ?? (behaviour.status === 429 ? 2 : undefined)));
      case 'raw': {
        const b = Buffer.from(behaviour.body);
        res.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers, 'content-length': String(b.length) });
        res.end(b);
        return;
      }
      default:
        break;
    }
    const reply = behaviour.type === 'reply' ? behaviour.reply ?? opts.reply ?? {} : opts.reply ?? {};
    if (route.op === 'count_tokens') {
      const n = (reply.usage ?? DEFAULT_REPLY.usage).input;
      const b = Buffer.from(JSON.stringify(kind === 'bedrock' ? { inputTokens: n } : { input_tokens: n }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(b.length) });
      res.end(b);
      return;
    }
    if (route.op === 'embeddings') {
      const b = Buffer.from(JSON.stringify(embeddingsReply(kind, rec, route)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(b.length) });
      res.end(b);
      return;
    }
    if (!route.stream) {
      const b = Buffer.from(JSON.stringify(route.op === 'responses' ? openAIResponsesReply(reply) : jsonReply(kind, reply, route)));
      const h: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(b.length) };
      if (kind === 'bedrock') h['x-amzn-requestid'] = '5b1f0c8e-fake';
      res.writeHead(200, h);
      res.end(b);
      return;
    }
    let parts = streamPieces(kind, reply, rec, route);
    if (behaviour.type === 'stream_error' || behaviour.type === 'truncate') parts = parts.slice(0, Math.max(2, Math.floor(parts.length / 2)));
    if (behaviour.type === 'stream_error') parts.push(midStreamError(kind, behaviour.message ?? 'Overloaded'));
    res.writeHead(200, { 'content-type': streamContentType(kind), 'cache-control': 'no-cache' });
    const writes = awkward(parts);
    for (const w of writes) {
      if (res.destroyed) return;
      res.write(w);
      if (delay > 0) await sleep(delay);
    }
    if (behaviour.type === 'truncate') {
      res.socket?.destroy();
      return;
    }
    res.end();
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, providerError(kind, 500, `fake provider crashed: ${String(err)}`));
      else res.destroy();
    });
  };
  const server: Server = opts.tls ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  fake.port = port;
  fake.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  fake.host = opts.tls ? opts.tls.hostname : `127.0.0.1:${port}`;
  return fake;
}
