// The Responses API answer shape: a `response` object built from a translated Chat Completion (or from stream
// state), and usage in both directions (Responses `usage` ⇄ gateway Usage).
import { isObject, tokenCount, type Json } from './common.ts';
import type { ChatCompletion } from './chat.ts';
import type { ResponsesBody } from './responses-schema.ts';
import type { Usage } from './types.ts';

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function usageToResponses(u: Usage): ResponsesUsage {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedInputTokens ?? 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

/** Responses `usage` (OpenAI/Azure) → gateway Usage; cached and reasoning tokens are subsets, as in OpenAI chat. */
export function usageFromResponses(u: unknown): Usage | undefined {
  if (!isObject(u) || typeof u.input_tokens !== 'number') return undefined;
  const usage: Usage = { inputTokens: u.input_tokens, outputTokens: tokenCount(u.output_tokens) };
  const cached = isObject(u.input_tokens_details) ? tokenCount(u.input_tokens_details.cached_tokens) : 0;
  const reasoning = isObject(u.output_tokens_details) ? tokenCount(u.output_tokens_details.reasoning_tokens) : 0;
  if (cached > 0) usage.cachedInputTokens = cached;
  if (reasoning > 0) usage.reasoningTokens = reasoning;
  return usage;
}

/** A Responses `status` (+ output) in the gateway's finish vocabulary (stop | length | tool_calls | content_filter). */
export function finishFromResponse(r: Json): string | undefined {
  const status = r.status;
  if (status === 'incomplete') {
    const reason = isObject(r.incomplete_details) ? r.incomplete_details.reason : undefined;
    return reason === 'content_filter' ? 'content_filter' : 'length';
  }
  if (status !== 'completed') return undefined;
  const output = Array.isArray(r.output) ? r.output : [];
  return output.some((o) => isObject(o) && o.type === 'function_call') ? 'tool_calls' : 'stop';
}

/** Status and incomplete_details for a chat finish reason. */
export function statusOf(finish: string | undefined): { status: 'completed' | 'incomplete'; incomplete_details: Json | null } {
  if (finish === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

export function responseId(completionId: string): string {
  return completionId.startsWith('resp_') ? completionId : `resp_${completionId.replace(/^(msg_|chatcmpl-)/, '')}`;
}

export function messageItemId(completionId: string): string {
  return `msg_${completionId.replace(/^(msg_|resp_|chatcmpl-)/, '')}`;
}

export function functionCallItemId(callId: string): string {
  return `fc_${callId.replace(/^(call_|toolu_|fc_)/, '')}`;
}

export function messageItem(id: string, text: string, status: 'in_progress' | 'completed'): Json {
  return { id, type: 'message', status, role: 'assistant', content: status === 'in_progress' ? [] : [outputTextPart(text)] };
}

export function outputTextPart(text: string): Json {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function functionCallItem(callId: string, name: string, args: string, status: 'in_progress' | 'completed'): Json {
  return { id: functionCallItemId(callId), type: 'function_call', status, arguments: args, call_id: callId, name };
}

/**
 * The `response` object: request settings echoed the way OpenAI does, `output` and `usage` from the provider.
 * `store` is false: nothing is kept (see docs on Responses state).
 */
export function responseObject(
  id: string,
  createdAt: number,
  model: string,
  req: ResponsesBody,
  output: Json[],
  finish: string | undefined,
  usage: Usage | undefined,
  inProgress = false,
): Json {
  const st = inProgress ? { status: 'in_progress', incomplete_details: null } : statusOf(finish);
  const tools = Array.isArray(req.tools) ? req.tools : [];
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: st.status,
    background: false,
    error: null,
    incomplete_details: st.incomplete_details,
    instructions: req.instructions ?? null,
    max_output_tokens: req.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: req.reasoning?.effort ?? null, summary: null },
    store: false,
    temperature: req.temperature ?? 1,
    text: { format: req.text?.format ?? { type: 'text' } },
    tool_choice: req.tool_choice ?? 'auto',
    tools,
    top_p: req.top_p ?? 1,
    truncation: 'disabled',
    usage: usage ? usageToResponses(usage) : null,
    user: req.user ?? null,
    metadata: req.metadata ?? {},
  };
}

/** A translated Chat Completion (first choice) as a Responses `response`. */
export function completionToResponse(c: ChatCompletion, req: ResponsesBody, usage: Usage | undefined): Json {
  const choice = c.choices[0];
  const output: Json[] = [];
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') output.push(messageItem(messageItemId(c.id), text, 'completed'));
  for (const tc of choice?.message.tool_calls ?? []) output.push(functionCallItem(tc.id, tc.function.name, tc.function.arguments, 'completed'));
  return responseObject(responseId(c.id), c.created, c.model, req, output, choice?.finish_reason, usage);
}
