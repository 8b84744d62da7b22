// One conformance table, run against every translator. For each scenario and (client, provider) pair:
//  1. translate the client request; read the upstream body back through an independent per-provider normalizer
//     and compare it with the scenario's expectation (same expectation for every provider);
//  2. build the provider's canned answer for the scenario (JSON and stream), translate it back, and compare the
//     client's view (text, tool calls, finish, usage) with the scenario's expectation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientApi } from '../../service/errors.ts';
import { GatewayError } from '../../service/errors.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { UpstreamRequest } from '../../service/providers/types.ts';
import {
  anthropicReply,
  anthropicStream,
  bedrockAnthropicStream,
  bedrockReply,
  bedrockStream,
  geminiReply,
  geminiStream,
  openAIReply,
  openAIResponsesReply,
  openAIResponsesStream,
  openAIStream,
  providerError,
  type ReplySpec,
} from '../support/fake-providers.ts';
import { freshOptions, runStream, splitRandom, target, UPSTREAM_MODEL, viewJson, viewResponsesJson, viewResponsesStream, viewStream, type ClientView } from './helpers.ts';

type J = Record<string, any>; // test-only: reading arbitrary provider JSON

// ---------------------------------------------------------------- normalized upstream request

type NPart =
  | { text: string }
  | { image: { url?: string; mediaType?: string; data?: string } }
  | { toolCall: { id?: string; name: string; args: unknown } }
  | { toolResult: { id?: string; name?: string; content: string } };

interface NormReq {
  system: string[];
  turns: Array<{ role: 'user' | 'assistant'; parts: NPart[] }>;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  tools?: Array<{ name: string; description?: string; parameters: unknown }>;
  toolChoice?: 'auto' | 'required' | 'none' | { name: string };
  json?: 'object' | { schema: unknown };
  stream: boolean;
}

function pushTurn(turns: NormReq['turns'], role: 'user' | 'assistant', parts: NPart[]): void {
  if (parts.length === 0) return;
  const last = turns.at(-1);
  if (last && last.role === role) last.parts.push(...parts);
  else turns.push({ role, parts });
}

const LOOSE_OBJECT = { type: 'object', additionalProperties: true };

function normOpenAI(b: J, path: string): NormReq {
  const n: NormReq = { system: [], turns: [], stream: b.stream === true || path.includes('stream') };
  const text = (c: unknown): string => (typeof c === 'string' ? c : (c as J[]).map((p) => p.text).join(''));
  for (const m of b.messages) {
    if (m.role === 'system' || m.role === 'developer') {
      if (typeof m.content === 'string') n.system.push(m.content);
      else for (const p of m.content) n.system.push(p.text);
    } else if (m.role === 'user') {
      const parts: NPart[] = typeof m.content === 'string' ? [{ text: m.content }] : m.content.map((p: J): NPart => {
        if (p.type === 'text') return { text: p.text };
        const url: string = p.image_url.url;
        const d = /^data:([^;]+);base64,(.*)$/.exec(url);
        return { image: d ? { mediaType: d[1], data: d[2] } : { url } };
      });
      pushTurn(n.turns, 'user', parts);
    } else if (m.role === 'assistant') {
      const parts: NPart[] = [];
      if (m.content) parts.push({ text: text(m.content) });
      for (const tc of m.tool_calls ?? []) parts.push({ toolCall: { id: tc.id, name: tc.function.name, args: JSON.parse(tc.function.arguments) } });
      pushTurn(n.turns, 'assistant', parts);
    } else if (m.role === 'tool') {
      pushTurn(n.turns, 'user', [{ toolResult: { id: m.tool_call_id, content: text(m.content) } }]);
    }
  }
  const max = b.max_completion_tokens ?? b.max_tokens;
  if (max !== undefined) n.maxTokens = max;
  if (b.temperature !== undefined) n.temperature = b.temperature;
  if (b.top_p !== undefined) n.topP = b.top_p;
  if (b.stop !== undefined) n.stop = typeof b.stop === 'string' ? [b.stop] : b.stop;
  if (b.tools) n.tools = b.tools.map((t: J) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters }));
  if (b.tool_choice !== undefined) n.toolChoice = typeof b.tool_choice === 'string' ? (b.tool_choice as NormReq['toolChoice']) : { name: b.tool_choice.function.name as string };
  if (b.response_format?.type === 'json_object') n.json = 'object';
  if (b.response_format?.type === 'json_schema') n.json = { schema: b.response_format.json_schema.schema };
  return n;
}

function normAnthropic(b: J): NormReq {
  const n: NormReq = { system: [], turns: [], stream: b.stream === true };
  if (typeof b.system === 'string') n.system.push(b.system);
  else for (const s of b.system ?? []) n.system.push(s.text);
  for (const m of b.messages) {
    const blocks: J[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    pushTurn(
      n.turns,
      m.role,
      blocks.map((blk): NPart => {
        switch (blk.type) {
          case 'text':
            return { text: blk.text };
          case 'image':
            return { image: blk.source.type === 'url' ? { url: blk.source.url } : { mediaType: blk.source.media_type, data: blk.source.data } };
          case 'tool_use':
            return { toolCall: { id: blk.id, name: blk.name, args: blk.input } };
          case 'tool_result':
            return { toolResult: { id: blk.tool_use_id, content: typeof blk.content === 'string' ? blk.content : blk.content.map((c: J) => c.text).join('') } };
          default:
            throw new Error(`unexpected block ${blk.type}`);
        }
      }),
    );
  }
  n.maxTokens = b.max_tokens;
  if (b.temperature !== undefined) n.temperature = b.temperature;
  if (b.top_p !== undefined) n.topP = b.top_p;
  if (b.stop_sequences) n.stop = b.stop_sequences;
  const tools = (b.tools ?? []) as J[];
  const jsonTool = tools.find((t) => t.name === 'json_response');
  if (jsonTool && b.tool_choice?.type === 'tool' && b.tool_choice.name === 'json_response') {
    n.json = JSON.stringify(jsonTool.input_schema) === JSON.stringify(LOOSE_OBJECT) ? 'object' : { schema: jsonTool.input_schema };
  } else {
    if (tools.length > 0) n.tools = tools.map((t) => ({ name: t.name, description: t.description, parameters: t.input_schema }));
    const tc = b.tool_choice;
    if (tc) n.toolChoice = tc.type === 'any' ? 'required' : tc.type === 'tool' ? { name: tc.name } : tc.type;
  }
  return n;
}

function normGemini(b: J, path: string): NormReq {
  const n: NormReq = { system: [], turns: [], stream: path.includes(':streamGenerateContent') };
  for (const p of b.systemInstruction?.parts ?? []) n.system.push(p.text);
  for (const c of b.contents) {
    pushTurn(
      n.turns,
      c.role === 'model' ? 'assistant' : 'user',
      c.parts.map((p: J): NPart => {
        if (p.text !== undefined) return { text: p.text };
        if (p.inlineData) return { image: { mediaType: p.inlineData.mimeType, data: p.inlineData.data } };
        if (p.fileData) return { image: { url: p.fileData.fileUri } };
        if (p.functionCall) return { toolCall: { name: p.functionCall.name, args: p.functionCall.args } };
        if (p.functionResponse) return { toolResult: { name: p.functionResponse.name, content: p.functionResponse.response.output } };
        throw new Error(`unexpected part ${JSON.stringify(p)}`);
      }),
    );
  }
  const g = b.generationConfig ?? {};
  if (g.maxOutputTokens !== undefined) n.maxTokens = g.maxOutputTokens;
  if (g.temperature !== undefined) n.temperature = g.temperature;
  if (g.topP !== undefined) n.topP = g.topP;
  if (g.stopSequences) n.stop = g.stopSequences;
  if (g.responseMimeType === 'application/json') n.json = g.responseJsonSchema ? { schema: g.responseJsonSchema } : 'object';
  const decls = b.tools?.[0]?.functionDeclarations as J[] | undefined;
  if (decls) n.tools = decls.map((d) => ({ name: d.name, description: d.description, parameters: d.parametersJsonSchema }));
  const fcc = b.toolConfig?.functionCallingConfig;
  if (fcc) {
    n.toolChoice = fcc.mode === 'NONE' ? 'none' : fcc.mode === 'AUTO' ? 'auto' : fcc.allowedFunctionNames ? { name: fcc.allowedFunctionNames[0] } : 'required';
  }
  return n;
}

function normBedrock(b: J, path: string): NormReq {
  const n: NormReq = { system: (b.system ?? []).map((s: J) => s.text), turns: [], stream: path.endsWith('/converse-stream') };
  const fmt: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };
  for (const m of b.messages) {
    pushTurn(
      n.turns,
      m.role,
      m.content.map((c: J): NPart => {
        if (c.text !== undefined) return { text: c.text };
        if (c.image) return { image: { mediaType: fmt[c.image.format], data: c.image.source.bytes } };
        if (c.toolUse) return { toolCall: { id: c.toolUse.toolUseId, name: c.toolUse.name, args: c.toolUse.input } };
        if (c.toolResult) return { toolResult: { id: c.toolResult.toolUseId, content: c.toolResult.content.map((x: J) => x.text).join('') } };
        throw new Error(`unexpected block ${JSON.stringify(c)}`);
      }),
    );
  }
  const inf = b.inferenceConfig ?? {};
  if (inf.maxTokens !== undefined) n.maxTokens = inf.maxTokens;
  if (inf.temperature !== undefined) n.temperature = inf.temperature;
  if (inf.topP !== undefined) n.topP = inf.topP;
  if (inf.stopSequences) n.stop = inf.stopSequences;
  const tools = (b.toolConfig?.tools ?? []) as J[];
  const choice = b.toolConfig?.toolChoice;
  if (tools.length === 1 && tools[0]!.toolSpec.name === 'json_response' && choice?.tool?.name === 'json_response') {
    const schema = tools[0]!.toolSpec.inputSchema.json;
    n.json = JSON.stringify(schema) === JSON.stringify(LOOSE_OBJECT) ? 'object' : { schema };
  } else {
    if (tools.length > 0) n.tools = tools.map((t) => ({ name: t.toolSpec.name, description: t.toolSpec.description, parameters: t.toolSpec.inputSchema.json }));
    if (choice) n.toolChoice = choice.auto ? 'auto' : choice.any ? 'required' : { name: choice.tool.name };
  }
  return n;
}

function normalize(provider: ProviderApi, up: UpstreamRequest): NormReq {
  const b = JSON.parse(up.body.toString()) as J;
  switch (provider) {
    case 'openai':
    case 'azure':
      return normOpenAI(b, up.path);
    case 'anthropic':
      return normAnthropic(b);
    case 'gemini':
      return normGemini(b, up.path);
    case 'bedrock':
      // Claude on Bedrock via InvokeModel: the Anthropic body; streaming is in the path.
      if (/\/invoke(-with-response-stream)?$/.test(up.path)) return { ...normAnthropic(b), stream: up.path.endsWith('-with-response-stream') };
      return normBedrock(b, up.path);
    case 'vertex':
      return normAnthropic(b);
  }
}

/** Partial deep match: every key in `expected` must match; arrays must match element-wise and in length. */
function assertMatches(actual: unknown, expected: unknown, path = '$'): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: length (actual ${JSON.stringify(actual)})`);
    expected.forEach((e, i) => assertMatches(actual[i], e, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertMatches((actual as J)[k], v, `${path}.${k}`);
  } else {
    assert.deepEqual(actual, expected, path);
  }
}

// ---------------------------------------------------------------- canned answers per provider

/** Anthropic/Bedrock carry JSON mode through a forced `json_response` tool: their canned answer is that tool call. */
function adaptReply(provider: ProviderApi, reply: ReplySpec, jsonMode: boolean): ReplySpec {
  if (!jsonMode || (provider !== 'anthropic' && provider !== 'bedrock')) return reply;
  return { ...reply, text: '', toolCalls: [{ id: 'toolu_json', name: 'json_response', args: JSON.parse(reply.text!) }], finish: 'tool_calls' };
}

function cannedJson(provider: ProviderApi, reply: ReplySpec): Buffer {
  const body = { openai: openAIReply, azure: (r: ReplySpec) => openAIReply(r, true), anthropic: anthropicReply, gemini: geminiReply, bedrock: bedrockReply, vertex: anthropicReply }[provider](reply);
  return Buffer.from(JSON.stringify(body));
}

function cannedStream(provider: ProviderApi, reply: ReplySpec): Buffer {
  switch (provider) {
    case 'openai':
    case 'azure':
      return Buffer.from(openAIStream(reply, true, provider === 'azure').join(''));
    case 'anthropic':
      return Buffer.from(anthropicStream(reply).join(''));
    case 'gemini':
      return Buffer.from(geminiStream(reply).join(''));
    case 'bedrock':
      return Buffer.concat(bedrockStream(reply));
    case 'vertex':
      return Buffer.from(anthropicStream(reply).join(''));
  }
}

/** Claude on Bedrock through InvokeModel (Anthropic clients): Anthropic's body and events in eventstream frames. */
function cannedNative(provider: ProviderApi, reply: ReplySpec, stream: boolean): Buffer {
  if (provider !== 'bedrock') return stream ? cannedStream(provider, reply) : cannedJson(provider, reply);
  return stream ? Buffer.concat(bedrockAnthropicStream(reply)) : Buffer.from(JSON.stringify(anthropicReply(reply)));
}

// ---------------------------------------------------------------- scenarios

interface Scenario {
  name: string;
  openai?: J;
  anthropic?: J;
  /** Expected normalized upstream request (partial). */
  expect?: Partial<NormReq>;
  /** Per-provider additions/overrides. */
  expectBy?: Partial<Record<ProviderApi, Partial<NormReq>>>;
  /** Providers that must refuse with 422 naming this param (per client API). */
  unsupported?: Partial<Record<ProviderApi, string>>;
  /** Same, for the Anthropic client only. */
  unsupportedAnthropic?: Partial<Record<ProviderApi, string>>;
  reply?: ReplySpec;
  /** Expected client view (partial); defaults derived from reply. */
  view?: Partial<ClientView>;
}

const WEATHER_SCHEMA = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const user = (text: string): J => ({ role: 'user', content: text });

const SCENARIOS: Scenario[] = [
  {
    name: 'simple text',
    openai: { model: 'smart', messages: [user('Hello')] },
    anthropic: { model: 'smart', max_tokens: 64, messages: [user('Hello')] },
    expect: { system: [], turns: [{ role: 'user', parts: [{ text: 'Hello' }] }] },
    expectBy: { anthropic: {} },
    reply: { text: 'Hi! How can I help?' },
  },
  {
    name: 'system prompt (two system messages kept in order)',
    openai: {
      model: 'smart',
      messages: [{ role: 'system', content: 'You are terse.' }, { role: 'developer', content: 'Answer in French.' }, user('Hello')],
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      system: [{ type: 'text', text: 'You are terse.' }, { type: 'text', text: 'Answer in French.' }],
      messages: [user('Hello')],
    },
    expect: { system: ['You are terse.', 'Answer in French.'], turns: [{ role: 'user', parts: [{ text: 'Hello' }] }] },
    reply: { text: 'Bonjour.' },
  },
  {
    name: 'multi-turn',
    openai: { model: 'smart', messages: [user('What is 2+2?'), { role: 'assistant', content: '4.' }, user('And times 3?')] },
    anthropic: { model: 'smart', max_tokens: 64, messages: [user('What is 2+2?'), { role: 'assistant', content: '4.' }, user('And times 3?')] },
    expect: {
      turns: [
        { role: 'user', parts: [{ text: 'What is 2+2?' }] },
        { role: 'assistant', parts: [{ text: '4.' }] },
        { role: 'user', parts: [{ text: 'And times 3?' }] },
      ],
    },
    reply: { text: '12.' },
  },
  {
    name: 'tools + forced tool_choice → tool call answer',
    openai: {
      model: 'smart',
      messages: [user('Weather in Paris?')],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_SCHEMA } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      messages: [user('Weather in Paris?')],
      tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: WEATHER_SCHEMA }],
      tool_choice: { type: 'tool', name: 'get_weather' },
    },
    expect: { tools: [{ name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_SCHEMA }], toolChoice: { name: 'get_weather' } },
    reply: { toolCalls: [{ id: 'call_w1', name: 'get_weather', args: { city: 'Paris' } }] },
    view: { finish: 'tool_calls', toolCalls: [{ name: 'get_weather', args: { city: 'Paris' } } as ClientView['toolCalls'][number]] },
  },
  {
    name: "tool_choice 'required'",
    openai: {
      model: 'smart',
      messages: [user('Weather?')],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER_SCHEMA } }],
      tool_choice: 'required',
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      messages: [user('Weather?')],
      tools: [{ name: 'get_weather', input_schema: WEATHER_SCHEMA }],
      tool_choice: { type: 'any' },
    },
    expect: { toolChoice: 'required' },
    reply: { toolCalls: [{ id: 'call_w2', name: 'get_weather', args: { city: 'Oslo' } }] },
  },
  {
    name: 'tool results in history',
    openai: {
      model: 'smart',
      messages: [
        user('Weather in Paris?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '18C and sunny' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER_SCHEMA } }],
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      messages: [
        user('Weather in Paris?'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '18C and sunny' }] },
      ],
      tools: [{ name: 'get_weather', input_schema: WEATHER_SCHEMA }],
    },
    expect: {
      turns: [
        { role: 'user', parts: [{ text: 'Weather in Paris?' }] },
        { role: 'assistant', parts: [{ toolCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
        { role: 'user', parts: [{ toolResult: { content: '18C and sunny' } }] },
      ],
    },
    expectBy: {
      openai: { turns: [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }, { role: 'assistant', parts: [{ toolCall: { id: 'call_1', name: 'get_weather', args: { city: 'Paris' } } }] }, { role: 'user', parts: [{ toolResult: { id: 'call_1', content: '18C and sunny' } }] }] },
      gemini: { turns: [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }, { role: 'assistant', parts: [{ toolCall: { name: 'get_weather', args: { city: 'Paris' } } }] }, { role: 'user', parts: [{ toolResult: { name: 'get_weather', content: '18C and sunny' } }] }] },
      bedrock: { turns: [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }, { role: 'assistant', parts: [{ toolCall: { id: 'call_1', name: 'get_weather', args: { city: 'Paris' } } }] }, { role: 'user', parts: [{ toolResult: { id: 'call_1', content: '18C and sunny' } }] }] },
    },
    reply: { text: 'It is 18C and sunny in Paris.' },
  },
  {
    name: 'image by URL and as base64',
    openai: {
      model: 'smart',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'low' } },
          ],
        },
      ],
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          ],
        },
      ],
    },
    expect: {
      turns: [{ role: 'user', parts: [{ text: 'Compare these.' }, { image: { url: 'https://example.com/cat.png' } }, { image: { mediaType: 'image/png', data: PNG } }] }],
    },
    unsupported: { gemini: 'messages[0].content[1].image_url.url', bedrock: 'messages[0].content[1].image_url.url' },
    unsupportedAnthropic: { gemini: 'messages[0].content[1].image_url.url', bedrock: 'messages[0].content[1].image_url.url' },
    reply: { text: 'Both are cats.' },
  },
  {
    name: 'image as base64 only',
    openai: {
      model: 'smart',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }, { type: 'text', text: 'What is it?' }] }],
    },
    anthropic: {
      model: 'smart',
      max_tokens: 64,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }, { type: 'text', text: 'What is it?' }] }],
    },
    expect: { turns: [{ role: 'user', parts: [{ image: { mediaType: 'image/png', data: PNG } }, { text: 'What is it?' }] }] },
    reply: { text: 'A single pixel.' },
  },
  {
    name: 'json mode (json_object)',
    openai: { model: 'smart', messages: [user('Give me JSON with answer=42')], response_format: { type: 'json_object' } },
    expect: { json: 'object' },
    reply: { text: '{"answer":42}' },
    view: { text: '{"answer":42}', finish: 'stop', toolCalls: [] },
  },
  {
    name: 'json mode (json_schema)',
    openai: {
      model: 'smart',
      messages: [user('Answer as JSON')],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'] } } },
    },
    expect: { json: { schema: { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'] } } },
    reply: { text: '{"answer":42}' },
    view: { text: '{"answer":42}', finish: 'stop', toolCalls: [] },
  },
  {
    name: 'stop sequences',
    openai: { model: 'smart', messages: [user('Count')], stop: ['END', 'STOP'] },
    anthropic: { model: 'smart', max_tokens: 64, messages: [user('Count')], stop_sequences: ['END', 'STOP'] },
    expect: { stop: ['END', 'STOP'] },
    reply: { text: '1 2 3' },
  },
  {
    name: 'sampling and token limits; length finish',
    openai: { model: 'smart', messages: [user('Write a poem')], temperature: 0.3, top_p: 0.9, max_completion_tokens: 256 },
    anthropic: { model: 'smart', max_tokens: 256, messages: [user('Write a poem')], temperature: 0.3, top_p: 0.9 },
    expect: { temperature: 0.3, topP: 0.9, maxTokens: 256 },
    reply: { text: 'Roses are', finish: 'length' },
    view: { finish: 'length' },
  },
  {
    name: 'Anthropic needs max_tokens: default when the OpenAI client sends none',
    openai: { model: 'smart', messages: [user('Hi')] },
    expectBy: { anthropic: { maxTokens: 4096 } },
    reply: { text: 'Hi.' },
  },
  {
    name: 'unsupported parameter (logit_bias) → 422 where it cannot be carried',
    openai: { model: 'smart', messages: [user('Hi')], logit_bias: { '50256': -100 } },
    unsupported: { anthropic: 'logit_bias', gemini: 'logit_bias', bedrock: 'logit_bias' },
    reply: { text: 'Hi.' },
  },
  {
    name: 'unsupported parameter (n=2) → 422 where there is no n',
    openai: { model: 'smart', messages: [user('Hi')], n: 2 },
    unsupported: { anthropic: 'n', bedrock: 'n' },
    reply: { text: 'Hi.' },
  },
  {
    name: 'temperature above 1 → 422 where the provider caps it at 1',
    openai: { model: 'smart', messages: [user('Hi')], temperature: 1.5 },
    unsupported: { anthropic: 'temperature', bedrock: 'temperature' },
    reply: { text: 'Hi.' },
  },
  {
    name: 'unknown field is refused by cross-provider translators',
    openai: { model: 'smart', messages: [user('Hi')], web_search_options: {} },
    anthropic: { model: 'smart', max_tokens: 64, messages: [user('Hi')], container: 'c1' },
    unsupported: { anthropic: 'web_search_options', gemini: 'web_search_options', bedrock: 'web_search_options' },
    unsupportedAnthropic: { openai: 'container', azure: 'container', gemini: 'container', bedrock: 'container' },
    reply: { text: 'Hi.' },
  },
  {
    name: 'extended thinking cannot be carried to non-Anthropic providers',
    anthropic: { model: 'smart', max_tokens: 2048, messages: [user('Think')], thinking: { type: 'enabled', budget_tokens: 1024 } },
    unsupportedAnthropic: { openai: 'thinking', azure: 'thinking', gemini: 'thinking', bedrock: 'thinking' },
    reply: { text: 'Done.' },
  },
  {
    name: 'usage including cached tokens',
    openai: { model: 'smart', messages: [user('Hello again')] },
    anthropic: { model: 'smart', max_tokens: 64, messages: [user('Hello again')] },
    reply: { text: 'Welcome back.', usage: { input: 1200, output: 15, cached: 1024 } },
    view: { usage: { input: 1200, output: 15, cached: 1024 } },
  },
];

const PAIRS: Array<[ClientApi, ProviderApi, 'invoke'?]> = [
  ['openai', 'openai'],
  ['openai', 'azure'],
  ['openai', 'anthropic'],
  ['openai', 'gemini'],
  ['openai', 'bedrock'],
  ['anthropic', 'anthropic'],
  ['anthropic', 'openai'],
  ['anthropic', 'azure'],
  ['anthropic', 'gemini'],
  ['anthropic', 'bedrock'],
  ['openai', 'vertex'],
  ['anthropic', 'vertex'],
  // Anthropic-native paths: the client's body as is (scenarios judged as for Anthropic itself).
  ['anthropic', 'bedrock', 'invoke'],
];

function expectedView(s: Scenario): Partial<ClientView> {
  const r = s.reply ?? {};
  const v: Partial<ClientView> = {
    text: r.text ?? '',
    finish: r.finish ?? (r.toolCalls?.length ? 'tool_calls' : 'stop'),
  };
  if (r.usage) v.usage = { input: r.usage.input, output: r.usage.output, cached: r.usage.cached ?? 0 };
  return { ...v, ...s.view };
}

for (const [client, provider, variant] of PAIRS) {
  // Native pairs (Anthropic → Claude on Vertex / Bedrock InvokeModel) carry everything Anthropic itself does.
  const native = client === 'anthropic' && (provider === 'vertex' || variant === 'invoke');
  const like: ProviderApi = native || provider === 'vertex' ? 'anthropic' : provider;
  const model = variant === 'invoke' ? UPSTREAM_MODEL.bedrock : undefined;
  describe(`conformance: ${client} client → ${provider}${variant ? ` (${variant})` : ''}`, () => {
    for (const s of SCENARIOS) {
      const body = client === 'openai' ? s.openai : s.anthropic;
      if (!body) continue; // scenario has no equivalent in this client API
      const refusal = client === 'openai' ? s.unsupported?.[like] : s.unsupportedAnthropic?.[like];
      const jsonMode = client === 'openai' && body.response_format !== undefined && body.response_format.type !== 'text';

      test(s.name, async () => {
        const tr = getTranslator(client, 'chat', provider, freshOptions(), model);
        for (const stream of [false, true]) {
          // OpenAI stream clients see usage only when they ask for it (covered in roundtrip.test.ts).
          const usageOpt = stream && client === 'openai' ? { stream_options: { include_usage: true } } : {};
          const req = parseClientRequest(client, 'chat', Buffer.from(JSON.stringify({ ...body, stream, ...usageOpt })));
          if (refusal) {
            await assert.rejects(tr.request(req, target(provider)), (e: unknown) => {
              assert.ok(e instanceof GatewayError, String(e));
              assert.equal(e.status, 422);
              assert.equal(e.param, refusal);
              assert.match(e.message, new RegExp(`provider ${provider}`));
              return true;
            });
            continue;
          }
          const up = await tr.request(req, target(provider));
          const norm = normalize(provider, up);
          assert.equal(norm.stream, stream, 'stream flag reaches the provider');
          assertMatches(norm, { ...s.expect, ...s.expectBy?.[like] });

          const reply = adaptReply(like, s.reply ?? {}, jsonMode);
          let view: ClientView;
          if (!stream) {
            const r = tr.response(200, { 'content-type': 'application/json' }, native ? cannedNative(provider, reply, false) : cannedJson(provider, reply), req);
            assert.equal(r.status, 200, r.body.toString());
            view = viewJson(client, r.body);
          } else {
            const st = tr.stream(req);
            const text = runStream(st, splitRandom(native ? cannedNative(provider, reply, true) : cannedStream(provider, reply), 99));
            view = viewStream(client, text);
            assert.equal(view.error, undefined, text);
          }
          const want = expectedView(s);
          assertMatches({ ...view, toolCalls: view.toolCalls.map((t) => ({ name: t.name, args: t.args })) }, want);
        }
      });
    }

    const ERRORS: Array<[number, number]> = [
      [400, 400],
      [401, 502],
      [404, 404],
      [429, 429],
      [500, 502],
      [503, 503],
    ];
    test('provider errors → client error shape and status', async () => {
      const tr = getTranslator(client, 'chat', provider, freshOptions(), model);
      const body = client === 'openai' ? SCENARIOS[0]!.openai! : SCENARIOS[0]!.anthropic!;
      const req = parseClientRequest(client, 'chat', Buffer.from(JSON.stringify(body)));
      for (const [upstream, expected] of ERRORS) {
        const e = providerError(provider, upstream, upstream === 401 ? 'Incorrect API key provided: sk-abc***xyz' : `upstream says ${upstream}`);
        const r = tr.response(e.status, e.headers, e.body, req);
        assert.equal(r.status, expected, `upstream ${upstream}`);
        assert.match(r.headers['content-type']!, /^application\/json/);
        const j = JSON.parse(r.body.toString()) as J;
        const err = client === 'openai' ? j.error : (assert.equal(j.type, 'error'), j.error);
        assert.equal(typeof err.type, 'string');
        if (upstream === 401) assert.doesNotMatch(err.message, /sk-abc/, 'provider auth errors never echo key fragments');
        else assert.equal(err.message, `upstream says ${upstream}`);
      }
    });

    test('non-JSON upstream error body (e.g. an HTML 502 page) → 502 without echoing the page', () => {
      const tr = getTranslator(client, 'chat', provider, freshOptions());
      const body = client === 'openai' ? SCENARIOS[0]!.openai! : SCENARIOS[0]!.anthropic!;
      const req = parseClientRequest(client, 'chat', Buffer.from(JSON.stringify(body)));
      const r = tr.response(502, { 'content-type': 'text/html' }, Buffer.from('<html>Bad gateway</html>'), req);
      assert.equal(r.status, 502);
      assert.doesNotMatch(r.body.toString(), /<html>/);
    });

    test('malformed 200 body → 502 in the client error shape', () => {
      const tr = getTranslator(client, 'chat', provider, freshOptions());
      const body = client === 'openai' ? SCENARIOS[0]!.openai! : SCENARIOS[0]!.anthropic!;
      const req = parseClientRequest(client, 'chat', Buffer.from(JSON.stringify(body)));
      const r = tr.response(200, { 'content-type': 'application/json' }, Buffer.from('{"not":"what we expect"'), req);
      assert.equal(r.status, 502);
      const j = JSON.parse(r.body.toString()) as J;
      assert.ok(client === 'openai' ? j.error : j.type === 'error');
    });
  });
}

// ---------------------------------------------------------------- Responses API clients: the same scenarios

/** Fields of a chat scenario the Responses API has no counterpart for: such scenarios do not apply to it. */
const CHAT_ONLY = ['stop', 'n', 'logit_bias', 'logprobs', 'top_logprobs', 'presence_penalty', 'frequency_penalty', 'web_search_options', 'seed'];

/** A chat scenario's OpenAI body as the equivalent Responses request (undefined when it has none). */
function chatToResponses(b: J): J | undefined {
  if (CHAT_ONLY.some((k) => b[k] !== undefined)) return undefined;
  const input: J[] = [];
  for (const m of b.messages as J[]) {
    if (m.role === 'tool') input.push({ type: 'function_call_output', call_id: m.tool_call_id, output: m.content });
    else if (m.role === 'assistant') {
      if (m.content) input.push({ role: 'assistant', content: [{ type: 'output_text', text: m.content }] });
      for (const tc of m.tool_calls ?? []) input.push({ type: 'function_call', call_id: tc.id, name: tc.function.name, arguments: tc.function.arguments });
    } else if (typeof m.content === 'string') input.push({ role: m.role, content: m.content });
    else {
      input.push({
        role: m.role,
        content: (m.content as J[]).map((p) =>
          p.type === 'text' ? { type: 'input_text', text: p.text } : { type: 'input_image', image_url: p.image_url.url, ...(p.image_url.detail ? { detail: p.image_url.detail } : {}) },
        ),
      });
    }
  }
  const out: J = { model: b.model, input };
  const max = b.max_completion_tokens ?? b.max_tokens;
  if (max !== undefined) out.max_output_tokens = max;
  for (const k of ['temperature', 'top_p', 'parallel_tool_calls', 'user']) if (b[k] !== undefined) out[k] = b[k];
  if (b.tools) out.tools = b.tools.map((t: J) => ({ type: 'function', name: t.function.name, ...(t.function.description ? { description: t.function.description } : {}), ...(t.function.parameters ? { parameters: t.function.parameters } : {}) }));
  if (b.tool_choice !== undefined) out.tool_choice = typeof b.tool_choice === 'string' ? b.tool_choice : { type: 'function', name: b.tool_choice.function.name };
  const rf = b.response_format;
  if (rf?.type === 'json_object') out.text = { format: { type: 'json_object' } };
  if (rf?.type === 'json_schema') out.text = { format: { type: 'json_schema', name: rf.json_schema.name, schema: rf.json_schema.schema } };
  return out;
}

/** A chat-shaped refusal param as the Responses client must see it (the field it sent). */
function responsesParam(chatParam: string): string {
  return chatParam.replace(/^messages\[/, 'input[').replace(/\.image_url\.url$/, '.image_url');
}

/** OpenAI/Azure passthrough: the Responses body the provider got, normalized like the others. */
function normResponses(b: J): NormReq {
  const n: NormReq = { system: [], turns: [], stream: b.stream === true };
  if (typeof b.instructions === 'string') n.system.push(b.instructions);
  const items: J[] = typeof b.input === 'string' ? [{ role: 'user', content: b.input }] : b.input;
  const text = (c: unknown): string => (typeof c === 'string' ? c : (c as J[]).map((p) => p.text).join(''));
  for (const it of items) {
    if (it.type === 'function_call') pushTurn(n.turns, 'assistant', [{ toolCall: { id: it.call_id, name: it.name, args: JSON.parse(it.arguments) } }]);
    else if (it.type === 'function_call_output') pushTurn(n.turns, 'user', [{ toolResult: { id: it.call_id, content: text(it.output) } }]);
    else if (it.role === 'system' || it.role === 'developer') n.system.push(text(it.content));
    else if (typeof it.content === 'string') pushTurn(n.turns, it.role, [{ text: it.content }]);
    else {
      pushTurn(
        n.turns,
        it.role,
        (it.content as J[]).map((p): NPart => {
          if (p.type !== 'input_image') return { text: p.text };
          const d = /^data:([^;]+);base64,(.*)$/.exec(p.image_url);
          return { image: d ? { mediaType: d[1], data: d[2] } : { url: p.image_url } };
        }),
      );
    }
  }
  if (b.max_output_tokens !== undefined) n.maxTokens = b.max_output_tokens;
  if (b.temperature !== undefined) n.temperature = b.temperature;
  if (b.top_p !== undefined) n.topP = b.top_p;
  if (b.tools) n.tools = b.tools.map((t: J) => ({ name: t.name, description: t.description, parameters: t.parameters }));
  if (b.tool_choice !== undefined) n.toolChoice = typeof b.tool_choice === 'string' ? (b.tool_choice as NormReq['toolChoice']) : { name: b.tool_choice.name as string };
  const f = b.text?.format;
  if (f?.type === 'json_object') n.json = 'object';
  if (f?.type === 'json_schema') n.json = { schema: f.schema };
  return n;
}

const RESPONSES_PROVIDERS: ProviderApi[] = ['openai', 'azure', 'anthropic', 'gemini', 'bedrock'];
const passthrough = (p: ProviderApi): boolean => p === 'openai' || p === 'azure';

for (const provider of RESPONSES_PROVIDERS) {
  describe(`conformance: responses client → ${provider}`, () => {
    for (const s of SCENARIOS) {
      const body = s.openai ? chatToResponses(s.openai) : undefined;
      if (!body) continue;
      const chatRefusal = passthrough(provider) ? undefined : s.unsupported?.[provider];
      const jsonMode = body.text?.format !== undefined;
      test(s.name, async () => {
        const tr = getTranslator('openai', 'responses', provider, freshOptions());
        for (const stream of [false, true]) {
          const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ ...body, stream })));
          if (chatRefusal) {
            await assert.rejects(tr.request(req, target(provider)), (e: unknown) => {
              assert.ok(e instanceof GatewayError, String(e));
              assert.equal(e.status, 422);
              assert.equal(e.param, responsesParam(chatRefusal));
              assert.match(e.message, new RegExp(`provider ${provider}`));
              return true;
            });
            continue;
          }
          const up = await tr.request(req, target(provider));
          const norm = passthrough(provider) ? normResponses(JSON.parse(up.body.toString()) as J) : normalize(provider, up);
          if (passthrough(provider)) assert.equal(up.path, provider === 'openai' ? '/v1/responses' : '/openai/v1/responses');
          assert.equal(norm.stream, stream, 'stream flag reaches the provider');
          // The Anthropic max_tokens default is a property of the chat pivot, not of the Responses API.
          const want: Partial<NormReq> = { ...s.expect, ...s.expectBy?.[provider] };
          assertMatches(norm, want);

          const reply = adaptReply(provider, s.reply ?? {}, jsonMode);
          let view: ClientView;
          if (!stream) {
            const canned = passthrough(provider) ? Buffer.from(JSON.stringify(openAIResponsesReply(reply))) : cannedJson(provider, reply);
            const r = tr.response(200, { 'content-type': 'application/json' }, canned, req);
            assert.equal(r.status, 200, r.body.toString());
            view = viewResponsesJson(r.body);
          } else {
            const canned = passthrough(provider) ? Buffer.from(openAIResponsesStream(reply).join('')) : cannedStream(provider, reply);
            const st = tr.stream(req);
            const text = runStream(st, splitRandom(canned, 99));
            view = viewResponsesStream(text);
            assert.equal(view.error, undefined, text);
            assert.equal(st.error?.(), undefined);
          }
          assertMatches({ ...view, toolCalls: view.toolCalls.map((t) => ({ name: t.name, args: t.args })) }, expectedView(s));
        }
      });
    }

    test('provider errors → OpenAI error shape and status', async () => {
      const tr = getTranslator('openai', 'responses', provider, freshOptions());
      const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', input: 'Hello' })));
      for (const [upstream, expected] of [[400, 400], [401, 502], [429, 429], [500, 502], [503, 503]] as const) {
        const e = providerError(provider, upstream, upstream === 401 ? 'Incorrect API key provided: sk-abc***xyz' : `upstream says ${upstream}`);
        const r = tr.response(e.status, e.headers, e.body, req);
        assert.equal(r.status, expected, `upstream ${upstream}`);
        const err = (JSON.parse(r.body.toString()) as J).error;
        if (upstream === 401) assert.doesNotMatch(err.message, /sk-abc/);
        else assert.equal(err.message, `upstream says ${upstream}`);
      }
    });

    test('a stream cut before its end → an error event, and error() reports it', () => {
      const tr = getTranslator('openai', 'responses', provider, freshOptions());
      const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', input: 'Hello', stream: true })));
      const full = passthrough(provider) ? Buffer.from(openAIResponsesStream({ text: 'one two three four' }).join('')) : cannedStream(provider, { text: 'one two three four' });
      const st = tr.stream(req);
      const text = runStream(st, [full.subarray(0, Math.floor(full.length / 2))]);
      const view = viewResponsesStream(text);
      assert.equal(view.terminal, 'error', text);
      assert.ok(st.error?.(), 'the failure is reported to the caller');
    });

    if (passthrough(provider)) {
      test('passthrough: state fields and built-in tools are the provider\'s business (forwarded untouched)', async () => {
        const tr = getTranslator('openai', 'responses', provider, freshOptions());
        const body = { model: 'smart', input: 'Hi', previous_response_id: 'resp_1', store: true, tools: [{ type: 'web_search' }], reasoning: { effort: 'high' } };
        const up = await tr.request(parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify(body))), target(provider));
        assert.deepEqual(JSON.parse(up.body.toString()), { ...body, model: target(provider).deployment.upstreamModel });
        // A stored prompt supplies the input at OpenAI: no `input` is fine there.
        const stored = { model: 'smart', prompt: { id: 'pmpt_1', variables: { city: 'Paris' } } };
        const up2 = await tr.request(parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify(stored))), target(provider));
        assert.deepEqual(JSON.parse(up2.body.toString()).prompt, stored.prompt);
      });
      return;
    }

    const refusals: Array<[string, J, string]> = [
      ['built-in tool', { tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'tools[0].type'],
      ['computer use tool', { tools: [{ type: 'function', name: 'f' }, { type: 'computer_use_preview', display_width: 1, display_height: 1, environment: 'browser' }] }, 'tools[1].type'],
      ['previous_response_id', { previous_response_id: 'resp_1' }, 'previous_response_id'],
      ['store: true', { store: true }, 'store'],
      ['conversation', { conversation: 'conv_1' }, 'conversation'],
      ['background', { background: true }, 'background'],
      ['item_reference', { input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type'],
      ['a built-in tool call in history', { input: [{ type: 'web_search_call', id: 'ws_1', status: 'completed' }] }, 'input[0].type'],
      ['unknown field', { prompt: { id: 'pmpt_1' } }, 'prompt'],
    ];
    for (const [name, extra, param] of refusals) {
      test(`${name} → 422 naming '${param}'`, async () => {
        const tr = getTranslator('openai', 'responses', provider, freshOptions());
        const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', input: 'Hi', ...extra })));
        await assert.rejects(tr.request(req, target(provider)), (e: unknown) => {
          assert.ok(e instanceof GatewayError, String(e));
          assert.equal(e.status, 422);
          assert.equal(e.param, param);
          return true;
        });
      });
    }

    test('no input → 400 naming it (only OpenAI can take it from a stored prompt)', async () => {
      const tr = getTranslator('openai', 'responses', provider, freshOptions());
      const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', instructions: 'Hi' })));
      await assert.rejects(tr.request(req, target(provider)), (e: unknown) => e instanceof GatewayError && e.status === 400 && e.param === 'input');
    });

    test('store: false and an absent store are fine (nothing is stored anyway)', async () => {
      const tr = getTranslator('openai', 'responses', provider, freshOptions());
      const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', input: 'Hi', store: false })));
      await tr.request(req, target(provider));
    });

    test('reasoning.effort → the provider\'s thinking budget', async () => {
      const tr = getTranslator('openai', 'responses', provider, freshOptions());
      const req = parseClientRequest('openai', 'responses', Buffer.from(JSON.stringify({ model: 'smart', input: 'Think', reasoning: { effort: 'low' }, max_output_tokens: 5000 })));
      const up = await tr.request(req, target(provider));
      const b = JSON.parse(up.body.toString()) as J;
      if (provider === 'anthropic') assert.deepEqual({ t: b.thinking, max: b.max_tokens }, { t: { type: 'enabled', budget_tokens: 2048 }, max: 5000 });
      if (provider === 'gemini') assert.deepEqual(b.generationConfig, { maxOutputTokens: 5000, thinkingConfig: { thinkingBudget: 2048 } });
      if (provider === 'bedrock') {
        assert.deepEqual(b.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2048 } });
        assert.equal(b.inferenceConfig.maxTokens, 5000);
      }
    });
  });
}
