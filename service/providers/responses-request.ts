// Responses API request → the Chat Completions body a provider core translates (Anthropic Messages, Gemini
// generateContent, Bedrock Converse). What has no equivalent there is refused with a 422 naming the field:
// server-side state (previous_response_id, store:true, conversation, background), built-in tools the provider cannot
// run, stored prompts, logprobs. `reasoning.effort` is returned apart: each provider carries it differently
// (responses-reasoning.ts).
import type { ProviderApi } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import { isObject, notSupported, type Json } from './common.ts';
import type { ResponsesBody, ResponsesMessageItem } from './responses-schema.ts';

/** Top-level Responses fields a cross-provider translator understands (anything else → 422). */
const KNOWN: ReadonlySet<string> = new Set([
  'model', 'input', 'instructions', 'stream', 'max_output_tokens', 'temperature', 'top_p', 'tools', 'tool_choice',
  'parallel_tool_calls', 'text', 'reasoning', 'store', 'previous_response_id', 'background', 'conversation',
  'metadata', 'user', 'safety_identifier', 'prompt_cache_key', 'service_tier', 'truncation', 'include',
  'stream_options',
]);

/** `include` values that only ask for more detail in the answer; harmless to drop where it does not exist. */
const HARMLESS_INCLUDES: ReadonlySet<string> = new Set(['reasoning.encrypted_content', 'message.output_text.logprobs']);

export type ReasoningEffort = 'minimal' | 'low' | 'medium' | 'high';

export interface PivotRequest {
  /** A Chat Completions body (validated by the core's own schema before use). */
  chat: Json;
  /** Where each chat message came from in the client's body (`instructions`, `input`, `input[3]`), for error params. */
  origins: string[];
  /** `reasoning.effort`, when the client asked for reasoning ('none' → undefined). */
  effort: ReasoningEffort | undefined;
}

function stateful(param: string, provider: ProviderApi, why: string): GatewayError {
  return notSupported(param, provider, `${why}; Tollgate keeps no response state, only OpenAI and Azure do (send the full conversation in 'input' instead)`);
}

/** The server-side state fields: honoured by OpenAI/Azure only, refused elsewhere rather than silently ignored. */
function rejectState(b: ResponsesBody, provider: ProviderApi): void {
  if (b.previous_response_id != null) throw stateful('previous_response_id', provider, 'continuing a stored response needs the provider to have stored it');
  if (b.conversation != null) throw stateful('conversation', provider, 'conversations are stored by OpenAI');
  if (b.store === true) throw stateful('store', provider, 'responses cannot be stored');
  if (b.background === true) throw stateful('background', provider, 'background responses are polled from stored state');
}

function textOfParts(parts: ResponsesMessageItem['content'], at: string, provider: ProviderApi): string {
  if (typeof parts === 'string') return parts;
  let out = '';
  parts.forEach((p, j) => {
    if (p.type === 'input_text' || p.type === 'output_text') out += p.text;
    else if (p.type === 'refusal') out += p.refusal;
    else throw notSupported(`${at}.content[${j}].type`, provider, `'${p.type}' is only supported in user messages`);
  });
  return out;
}

/** A user message's parts → Chat Completions user parts. */
function userParts(content: ResponsesMessageItem['content'], at: string, provider: ProviderApi): string | Json[] {
  if (typeof content === 'string') return content;
  return content.map((p, j): Json => {
    const pp = `${at}.content[${j}]`;
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        return { type: 'text', text: p.text };
      case 'input_image':
        if (p.file_id) throw notSupported(`${pp}.file_id`, provider, 'uploaded files live at OpenAI; send image_url');
        if (!p.image_url) throw new GatewayError('invalid_request', `Missing required parameter: '${pp}.image_url'.`, { param: `${pp}.image_url` });
        return { type: 'image_url', image_url: { url: p.image_url, ...(p.detail ? { detail: p.detail } : {}) } };
      case 'input_file':
        if (p.file_id || p.file_url || !p.file_data) throw notSupported(`${pp}`, provider, 'only inline file_data is supported');
        return { type: 'file', file: { file_data: p.file_data, ...(p.filename ? { filename: p.filename } : {}) } };
      case 'refusal':
        return { type: 'text', text: p.refusal };
    }
  });
}

function toolOutputText(output: unknown, at: string, provider: ProviderApi): string {
  if (typeof output === 'string') return output;
  let out = '';
  (output as Json[]).forEach((p, j) => {
    if (p.type === 'input_text' && typeof p.text === 'string') out += p.text;
    else throw notSupported(`${at}.output[${j}].type`, provider, 'tool outputs can only carry text there');
  });
  return out;
}

/** Responses `input` (+ `instructions`) → Chat Completions messages; `origins[k]` names where message k came from. */
function convertInput(b: ResponsesBody, provider: ProviderApi, origins: string[]): Json[] {
  const messages: Json[] = [];
  if (b.instructions != null && b.instructions !== '') {
    messages.push({ role: 'system', content: b.instructions });
    origins.push('instructions');
  }
  if (b.input == null) throw new GatewayError('invalid_request', "Missing required parameter: 'input'.", { param: 'input', code: 'invalid_request' });
  if (typeof b.input === 'string') {
    messages.push({ role: 'user', content: b.input });
    origins.push('input');
    return messages;
  }
  // Consecutive function_call items (and a directly preceding assistant text) form one assistant turn.
  let assistant: Json | undefined;
  b.input.forEach((raw, i) => {
    const at = `input[${i}]`;
    const item = raw as Json;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const m = raw as ResponsesMessageItem;
      origins.push(at);
      if (m.role === 'assistant') {
        assistant = { role: 'assistant', content: textOfParts(m.content, at, provider) };
        messages.push(assistant);
        return;
      }
      assistant = undefined;
      if (m.role === 'user') messages.push({ role: 'user', content: userParts(m.content, at, provider) });
      else messages.push({ role: m.role, content: textOfParts(m.content, at, provider) });
    } else if (type === 'function_call') {
      if (!assistant) {
        assistant = { role: 'assistant', content: null };
        messages.push(assistant);
        origins.push(at);
      }
      const calls = (assistant.tool_calls as Json[] | undefined) ?? (assistant.tool_calls = []);
      (calls as Json[]).push({ id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } });
    } else if (type === 'function_call_output') {
      assistant = undefined;
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: toolOutputText(item.output, at, provider) });
      origins.push(at);
    } else if (type === 'reasoning') {
      // Earlier reasoning is history only (encrypted for OpenAI); no other provider can read it.
    } else if (type === 'item_reference') {
      throw stateful(`${at}.type`, provider, "'item_reference' points at stored items");
    } else {
      throw notSupported(`${at}.type`, provider, `input item type '${String(type)}' (a built-in tool's call) cannot be carried`);
    }
  });
  return messages;
}

/** Function tools → Chat Completions tools; built-in tools (web_search, file_search, …) → 422 naming the tool. */
function convertTools(b: ResponsesBody, provider: ProviderApi): Json[] | undefined {
  if (!b.tools || b.tools.length === 0) return undefined;
  return b.tools.map((t, i) => {
    if (t.type !== 'function') {
      throw new GatewayError('unprocessable', `built-in tool '${t.type}' (tools[${i}]) cannot run on provider ${provider}; only function tools can be translated`, {
        param: `tools[${i}].type`,
        code: 'unsupported_tool',
      });
    }
    const f = t as Json;
    return {
      type: 'function',
      function: {
        name: f.name,
        ...(typeof f.description === 'string' ? { description: f.description } : {}),
        ...(isObject(f.parameters) ? { parameters: f.parameters } : {}),
      },
    };
  });
}

function convertToolChoice(b: ResponsesBody, provider: ProviderApi): unknown {
  const tc = b.tool_choice;
  if (tc == null || typeof tc === 'string') return tc ?? undefined;
  if (tc.type === 'function' && typeof tc.name === 'string') return { type: 'function', function: { name: tc.name } };
  throw notSupported('tool_choice', provider, `tool_choice type '${tc.type}' names a built-in tool`);
}

function convertFormat(b: ResponsesBody): Json | undefined {
  const f = b.text?.format;
  if (!f || f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'json_object' };
  const fs = f as Json;
  return {
    type: 'json_schema',
    json_schema: {
      name: fs.name,
      schema: fs.schema,
      ...(typeof fs.description === 'string' ? { description: fs.description } : {}),
      ...(typeof fs.strict === 'boolean' ? { strict: fs.strict } : {}),
    },
  };
}

/** Responses body → Chat Completions body for a provider core; 422 for what cannot be carried. */
export function responsesToChat(b: ResponsesBody, provider: ProviderApi, stream: boolean): PivotRequest {
  for (const key of Object.keys(b)) {
    if (!KNOWN.has(key) && (b as Json)[key] !== undefined && (b as Json)[key] !== null) throw notSupported(key, provider);
  }
  rejectState(b, provider);
  const include = (b as Json).include;
  if (Array.isArray(include)) {
    include.forEach((v, i) => {
      if (!HARMLESS_INCLUDES.has(String(v))) throw notSupported(`include[${i}]`, provider, `'${String(v)}' is not available there`);
    });
  }
  const origins: string[] = [];
  const chat: Json = { model: b.model, messages: convertInput(b, provider, origins) };
  if (stream) chat.stream = true;
  if (b.max_output_tokens != null) chat.max_completion_tokens = b.max_output_tokens;
  if (b.temperature != null) chat.temperature = b.temperature;
  if (b.top_p != null) chat.top_p = b.top_p;
  const tools = convertTools(b, provider);
  if (tools) chat.tools = tools;
  const tc = convertToolChoice(b, provider);
  if (tc !== undefined && tools) chat.tool_choice = tc;
  if (b.parallel_tool_calls != null && tools) chat.parallel_tool_calls = b.parallel_tool_calls;
  const rf = convertFormat(b);
  if (rf) chat.response_format = rf;
  if (b.user) chat.user = b.user;
  const e = b.reasoning?.effort;
  return { chat, origins, effort: e == null || e === 'none' ? undefined : e };
}

/** Chat Completions field names a core may name in an error → the Responses field the client sent. */
const FIELD: Record<string, string> = {
  max_completion_tokens: 'max_output_tokens',
  max_tokens: 'max_output_tokens',
  response_format: 'text.format',
  'response_format.json_schema.schema': 'text.format.schema',
};

/**
 * A core's error names a field of the internal Chat Completions body (`messages[2].content[1].image_url.url`); the
 * client must hear about its own (`input[1].content[1].image_url`). Other errors pass unchanged.
 */
export function clientError(err: unknown, pivot: PivotRequest): unknown {
  if (!(err instanceof GatewayError) || err.param === undefined) return err;
  let param = FIELD[err.param];
  const m = /^messages\[(\d+)\](.*)$/.exec(err.param);
  if (m) {
    const origin = pivot.origins[Number(m[1])];
    if (origin === undefined) return err;
    const rest = origin.startsWith('input[') ? m[2]!.replace(/\.image_url\.url$/, '.image_url').replace(/\.tool_calls\[\d+\]\.function\.arguments$/, '.arguments') : '';
    param = origin + rest;
  }
  if (param === undefined) return err;
  const message = err.message.split(`'${err.param}'`).join(`'${param}'`);
  return new GatewayError(err.kind, message, { code: err.code, param, headers: err.headers, status: err.status, cause: err });
}
