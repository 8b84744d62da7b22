// Test helpers: provider targets, a tiny HTTP client for the fake providers, and parsers that reduce a client-API
// answer (JSON or SSE, OpenAI or Anthropic) to one comparable shape.
import { request as httpRequest } from 'node:http';
import assert from 'node:assert/strict';
import type { ClientApi } from '../../service/errors.ts';
import type { ProviderApi, ProviderConfig, DeploymentConfig } from '../../service/config/types.ts';
import type { StreamTranslator, UpstreamRequest, UpstreamTarget } from '../../service/providers/types.ts';
import type { FakeProvider } from '../support/fake-providers.ts';

export const FIXED_NOW = 1_700_000_000;
/** Deterministic ids per test (golden files must not depend on test order). */
export function freshOptions(): { now: () => number; newId: (p: string) => string } {
  let n = 0;
  return { now: () => FIXED_NOW, newId: (p) => `${p}fixed${String(++n).padStart(4, '0')}` };
}

export const UPSTREAM_MODEL: Record<ProviderApi, string> = {
  openai: 'gpt-4o-2024-08-06',
  azure: 'prod-gpt4o',
  anthropic: 'claude-sonnet-4-20250514',
  gemini: 'gemini-2.0-flash',
  bedrock: 'anthropic.claude-3-5-sonnet-20240620-v1:0',
  vertex: 'claude-sonnet-4@20250514',
};

export function target(kind: ProviderApi, over: Partial<ProviderConfig> = {}, credential?: string): UpstreamTarget {
  const provider: ProviderConfig = {
    name: `${kind}-main`,
    api: kind,
    cluster: `${kind}_cluster`,
    host: kind === 'bedrock' ? 'bedrock-runtime.us-east-1.amazonaws.com' : `${kind}.example.com`,
    basePath: { openai: '/v1', anthropic: '/v1', azure: '/openai', gemini: '/v1beta', bedrock: '', vertex: '/v1/projects/p1/locations/us-east5' }[kind],
    credential: { kind: 'env', name: 'X' },
    ...(kind === 'azure' ? { apiVersion: '2024-10-21' } : {}),
    ...(kind === 'bedrock' ? { region: 'us-east-1' } : {}),
    dataRetention: false,
    selfHosted: false,
    ...over,
  };
  const deployment: DeploymentConfig = {
    id: `m/${kind}`,
    provider: provider.name,
    upstreamModel: UPSTREAM_MODEL[kind],
    region: 'us-east-1',
    inputPricePerM: 1,
    outputPricePerM: 2,
    contextWindow: 128000,
    weight: 1,
    priority: 0,
  };
  return { provider, deployment, credential: credential ?? (kind === 'bedrock' ? 'AKIDFAKE:fake-secret' : `test-${kind}-key`) };
}

export function fakeTarget(fake: FakeProvider): UpstreamTarget {
  return target(fake.kind, { host: fake.host, basePath: fake.basePath }, fake.credential);
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
  body: Buffer;
}

/** Send an UpstreamRequest to a fake provider the way Envoy would (host = provider host). */
export function send(fake: FakeProvider, up: UpstreamRequest, timeoutMs = 5000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: fake.port,
        method: 'POST',
        path: up.path,
        headers: { ...up.headers, host: fake.host, 'content-length': String(up.body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
          resolve({ status: res.statusCode ?? 0, headers, chunks, body: Buffer.concat(chunks) });
        });
        // A provider that drops the connection mid-stream: hand back what arrived, like Envoy would.
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, headers: {}, chunks, body: Buffer.concat(chunks) }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: {}, chunks, body: Buffer.concat(chunks) }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(up.body);
  });
}

/** Feed chunks through a stream translator and return all client bytes. */
export function runStream(st: StreamTranslator, chunks: Buffer[]): string {
  const out: Buffer[] = [];
  for (const c of chunks) out.push(st.push(c));
  out.push(st.end());
  return Buffer.concat(out).toString('utf8');
}

export function splitEvery(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** Deterministic pseudo-random chunk sizes (1..max). */
export function splitRandom(buf: Buffer, seed: number, max = 40): Buffer[] {
  let s = seed >>> 0 || 1;
  const rnd = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + (rnd() % max);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------- client-side view

export interface ClientView {
  text: string;
  toolCalls: Array<{ id: string; name: string; args: unknown }>;
  /** Finish in OpenAI vocabulary (Anthropic stop reasons are mapped back for comparison). */
  finish: string | undefined;
  usage: { input: number; output: number; cached: number } | undefined;
  model: string | undefined;
  id: string | undefined;
  error?: { status?: number; type: string; message: string };
}

const ANTHROPIC_TO_OPENAI: Record<string, string> = { end_turn: 'stop', max_tokens: 'length', tool_use: 'tool_calls', stop_sequence: 'stop', refusal: 'content_filter' };

type J = Record<string, any>; // test-only: reading arbitrary client JSON

export function viewOpenAIJson(body: Buffer): ClientView {
  const j = JSON.parse(body.toString('utf8')) as J;
  const msg = j.choices[0].message;
  return {
    text: msg.content ?? '',
    toolCalls: (msg.tool_calls ?? []).map((t: J) => ({ id: t.id, name: t.function.name, args: JSON.parse(t.function.arguments) })),
    finish: j.choices[0].finish_reason,
    usage: j.usage ? { input: j.usage.prompt_tokens, output: j.usage.completion_tokens, cached: j.usage.prompt_tokens_details?.cached_tokens ?? 0 } : undefined,
    model: j.model,
    id: j.id,
  };
}

export function viewAnthropicJson(body: Buffer): ClientView {
  const j = JSON.parse(body.toString('utf8')) as J;
  assert.equal(j.type, 'message');
  let text = '';
  const toolCalls: ClientView['toolCalls'] = [];
  for (const b of j.content) {
    if (b.type === 'text') text += b.text;
    if (b.type === 'tool_use') toolCalls.push({ id: b.id, name: b.name, args: b.input });
  }
  const cached = j.usage.cache_read_input_tokens ?? 0;
  return {
    text,
    toolCalls,
    finish: ANTHROPIC_TO_OPENAI[j.stop_reason] ?? j.stop_reason,
    usage: { input: j.usage.input_tokens + cached + (j.usage.cache_creation_input_tokens ?? 0), output: j.usage.output_tokens, cached },
    model: j.model,
    id: j.id,
  };
}

/** Parse client SSE text strictly: every event must be complete and well-formed. */
export function sseEvents(text: string): Array<{ event?: string; data: string }> {
  assert.ok(text === '' || text.endsWith('\n\n'), 'client stream must end on an event boundary');
  const out: Array<{ event?: string; data: string }> = [];
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
      else if (line.startsWith(':')) continue;
      else assert.fail(`unexpected SSE line: ${JSON.stringify(line)}`);
    }
    out.push({ ...(event ? { event } : {}), data: data.join('\n') });
  }
  return out;
}

export function viewOpenAIStream(text: string): ClientView & { done: boolean; usageChunks: number } {
  const v: ClientView & { done: boolean; usageChunks: number } = { text: '', toolCalls: [], finish: undefined, usage: undefined, model: undefined, id: undefined, done: false, usageChunks: 0 };
  const args: string[] = [];
  for (const ev of sseEvents(text)) {
    assert.equal(v.done, false, 'nothing may follow [DONE]');
    if (ev.data === '[DONE]') {
      v.done = true;
      continue;
    }
    const j = JSON.parse(ev.data) as J;
    if (j.error) {
      v.error = { type: j.error.type, message: j.error.message };
      continue;
    }
    v.model ??= j.model;
    v.id ??= j.id;
    if (j.usage) {
      v.usage = { input: j.usage.prompt_tokens, output: j.usage.completion_tokens, cached: j.usage.prompt_tokens_details?.cached_tokens ?? 0 };
      if (j.choices.length === 0) v.usageChunks++;
    }
    for (const c of j.choices) {
      if (c.index !== 0) continue;
      if (typeof c.delta.content === 'string') v.text += c.delta.content;
      for (const tc of c.delta.tool_calls ?? []) {
        if (tc.id) v.toolCalls[tc.index] = { id: tc.id, name: tc.function.name, args: undefined };
        args[tc.index] = (args[tc.index] ?? '') + (tc.function?.arguments ?? '');
      }
      if (c.finish_reason) v.finish = c.finish_reason;
    }
  }
  v.toolCalls.forEach((t, i) => {
    t.args = JSON.parse(args[i] || '{}');
  });
  return v;
}

export function viewAnthropicStream(text: string): ClientView & { stopped: boolean } {
  const v: ClientView & { stopped: boolean } = { text: '', toolCalls: [], finish: undefined, usage: undefined, model: undefined, id: undefined, stopped: false };
  const blocks = new Map<number, { type: string; json: string; idx?: number }>();
  let usage: J = {};
  for (const ev of sseEvents(text)) {
    const j = JSON.parse(ev.data) as J;
    assert.equal(ev.event, j.type, 'event: name must match data.type');
    assert.equal(v.stopped, false, 'nothing may follow message_stop');
    switch (j.type) {
      case 'message_start':
        v.model = j.message.model;
        v.id = j.message.id;
        usage = { ...j.message.usage };
        break;
      case 'content_block_start':
        assert.ok(!blocks.has(j.index), 'block indexes are unique');
        if (j.content_block.type === 'tool_use') {
          v.toolCalls.push({ id: j.content_block.id, name: j.content_block.name, args: undefined });
          blocks.set(j.index, { type: 'tool_use', json: '', idx: v.toolCalls.length - 1 });
        } else blocks.set(j.index, { type: j.content_block.type, json: '' });
        break;
      case 'content_block_delta': {
        const b = blocks.get(j.index);
        assert.ok(b, 'delta for a started block');
        if (j.delta.type === 'text_delta') v.text += j.delta.text;
        if (j.delta.type === 'input_json_delta') b.json += j.delta.partial_json;
        break;
      }
      case 'message_delta':
        v.finish = ANTHROPIC_TO_OPENAI[j.delta.stop_reason] ?? j.delta.stop_reason;
        for (const [k, val] of Object.entries(j.usage ?? {})) if (val != null) usage[k] = val;
        break;
      case 'message_stop':
        v.stopped = true;
        break;
      case 'error':
        v.error = { type: j.error.type, message: j.error.message };
        break;
      default:
        break;
    }
  }
  for (const b of blocks.values()) if (b.type === 'tool_use') v.toolCalls[b.idx!]!.args = JSON.parse(b.json || '{}');
  if (usage.output_tokens !== undefined) {
    const cached = usage.cache_read_input_tokens ?? 0;
    v.usage = { input: usage.input_tokens + cached + (usage.cache_creation_input_tokens ?? 0), output: usage.output_tokens, cached };
  }
  return v;
}

export function viewJson(api: ClientApi, body: Buffer): ClientView {
  return api === 'openai' ? viewOpenAIJson(body) : viewAnthropicJson(body);
}

export function viewStream(api: ClientApi, text: string): ClientView {
  return api === 'openai' ? viewOpenAIStream(text) : viewAnthropicStream(text);
}

// ---------------------------------------------------------------- Responses API client view

function responsesFinish(r: J): string | undefined {
  if (r.status === 'incomplete') return r.incomplete_details?.reason === 'content_filter' ? 'content_filter' : 'length';
  if (r.status !== 'completed') return undefined;
  return (r.output as J[]).some((o) => o.type === 'function_call') ? 'tool_calls' : 'stop';
}

function responsesUsage(u: J | null | undefined): ClientView['usage'] {
  return u ? { input: u.input_tokens, output: u.output_tokens, cached: u.input_tokens_details?.cached_tokens ?? 0 } : undefined;
}

/** A `response` object → the comparable view. */
export function viewResponsesJson(body: Buffer): ClientView {
  const r = JSON.parse(body.toString('utf8')) as J;
  assert.equal(r.object, 'response');
  let text = '';
  const toolCalls: ClientView['toolCalls'] = [];
  for (const o of r.output as J[]) {
    if (o.type === 'message') for (const c of o.content) if (c.type === 'output_text') text += c.text;
    if (o.type === 'function_call') toolCalls.push({ id: o.call_id, name: o.name, args: JSON.parse(o.arguments) });
  }
  return { text, toolCalls, finish: responsesFinish(r), usage: responsesUsage(r.usage), model: r.model, id: r.id };
}

/**
 * Responses events → the view, checking the protocol strictly: `event:` equals `data.type`, sequence numbers count
 * 0,1,2…, deltas belong to an added item, the `.done` texts equal the concatenated deltas, nothing follows the
 * terminal event, and the final response repeats the streamed output.
 */
export function viewResponsesStream(text: string): ClientView & { terminal: string | undefined } {
  const v: ClientView & { terminal: string | undefined } = { text: '', toolCalls: [], finish: undefined, usage: undefined, model: undefined, id: undefined, terminal: undefined };
  const items = new Map<number, J>();
  const deltas = new Map<string, string>();
  let seq = 0;
  for (const ev of sseEvents(text)) {
    const j = JSON.parse(ev.data) as J;
    assert.equal(ev.event, j.type, 'event: name must match data.type');
    assert.equal(v.terminal, undefined, `nothing may follow ${v.terminal}`);
    assert.equal(j.sequence_number, seq++, 'sequence_number counts up from 0');
    switch (j.type) {
      case 'response.created':
        v.id = j.response.id;
        v.model = j.response.model;
        break;
      case 'response.output_item.added':
        assert.ok(!items.has(j.output_index), 'output indexes are unique');
        items.set(j.output_index, j.item);
        break;
      case 'response.output_text.delta':
        assert.ok(items.get(j.output_index)?.type === 'message', 'text delta for an added message');
        deltas.set(`t${j.output_index}`, (deltas.get(`t${j.output_index}`) ?? '') + j.delta);
        v.text += j.delta;
        break;
      case 'response.output_text.done':
        assert.equal(j.text, deltas.get(`t${j.output_index}`) ?? '', 'output_text.done repeats the deltas');
        break;
      case 'response.function_call_arguments.delta':
        assert.ok(items.get(j.output_index)?.type === 'function_call', 'arguments delta for an added function call');
        deltas.set(`a${j.output_index}`, (deltas.get(`a${j.output_index}`) ?? '') + j.delta);
        break;
      case 'response.function_call_arguments.done':
        assert.equal(j.arguments, deltas.get(`a${j.output_index}`) ?? '', 'function_call_arguments.done repeats the deltas');
        break;
      case 'response.output_item.done':
        if (j.item.type === 'function_call') v.toolCalls.push({ id: j.item.call_id, name: j.item.name, args: JSON.parse(j.item.arguments) });
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        v.terminal = j.type;
        v.finish = responsesFinish(j.response);
        v.usage = responsesUsage(j.response.usage);
        assert.equal(viewResponsesJson(Buffer.from(JSON.stringify(j.response))).text, v.text, 'the final response repeats the streamed text');
        break;
      case 'error':
        v.terminal = 'error';
        v.error = { type: String(j.code ?? 'error'), message: j.message };
        break;
      default:
        break;
    }
  }
  return v;
}

/** How a client may have written a JSON body: compact (the OpenAI SDKs), pretty, Python's json.dumps defaults, escaped slashes. */
export const CLIENT_WRITERS: Array<[string, (b: Record<string, unknown>) => string]> = [
  ['compact', (b) => JSON.stringify(b)],
  ['pretty', (b) => JSON.stringify(b, null, 2)],
  ['python', (b) => JSON.stringify(b).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).replaceAll('":', '": ').replaceAll(',"', ', "')],
  ['escaped slash', (b) => JSON.stringify(b).replaceAll('/', '\\/')],
];
