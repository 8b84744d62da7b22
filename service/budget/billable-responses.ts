// What one Responses API request may be billed (see billable.ts for the chat/messages rules): the prompt is
// `instructions` + every input item (message text, function calls and their outputs, media at MEDIA_TOKENS) + tool
// definitions, tool_choice and the text.format schema; the output is max_output_tokens (or the default).
import { estimateTokens } from './cost.ts';
import { MEDIA_TOKENS, type BillableEstimate } from './billable.ts';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const PER_ITEM = 4;
const PRIMER = 3;
const MEDIA = new Set(['input_image', 'input_file', 'input_audio']);

function json(v: unknown): number {
  if (v === undefined || v === null) return 0;
  return estimateTokens(typeof v === 'string' ? v : JSON.stringify(v));
}

export function estimateResponsesBillable(body: Json, maxOutputTokens: number): BillableEstimate {
  let tokens = PRIMER;
  let media = 0;
  const content = (c: unknown): void => {
    if (typeof c === 'string') {
      tokens += estimateTokens(c);
      return;
    }
    if (!Array.isArray(c)) {
      tokens += json(c);
      return;
    }
    for (const p of c) {
      if (isObj(p) && MEDIA.has(String(p.type))) {
        media++;
        tokens += MEDIA_TOKENS;
      } else if (isObj(p) && typeof p.text === 'string') tokens += estimateTokens(p.text);
      else if (isObj(p) && typeof p.refusal === 'string') tokens += estimateTokens(p.refusal);
      else tokens += json(p);
    }
  };
  if (typeof body.instructions === 'string') tokens += PER_ITEM + estimateTokens(body.instructions);
  const input = body.input;
  if (typeof input === 'string') tokens += PER_ITEM + estimateTokens(input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      tokens += PER_ITEM;
      if (!isObj(item)) continue;
      const type = item.type ?? 'message';
      if (type === 'message') content(item.content);
      else if (type === 'function_call') tokens += json(item.name) + json(item.arguments);
      else if (type === 'function_call_output') content(item.output);
      else tokens += json(item);
    }
  }
  for (const f of ['tools', 'tool_choice']) tokens += json(body[f]);
  if (isObj(body.text)) tokens += json(body.text.format);
  return { inputTokens: Math.ceil(tokens), outputTokens: Math.max(0, Math.ceil(maxOutputTokens)), choices: 1, media };
}
