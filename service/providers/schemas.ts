// Request schemas for the client APIs Tollgate accepts. Loose objects: unknown fields pass validation (each
// translator decides whether it can carry them), but every field we read is typed and checked here.
import { z } from 'zod';
import { GatewayError } from '../errors.ts';

const str = z.string();
const int = z.number().int();

// ---------------------------------------------------------------- OpenAI Chat Completions

const OTextPart = z.looseObject({ type: z.literal('text'), text: str });
const OImagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: str, detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const OAudioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: str, format: str }),
});
const OFilePart = z.looseObject({
  type: z.literal('file'),
  file: z.looseObject({ file_data: str.optional(), file_id: str.optional(), filename: str.optional() }),
});
const ORefusalPart = z.looseObject({ type: z.literal('refusal'), refusal: str });

const OUserPart = z.discriminatedUnion('type', [OTextPart, OImagePart, OAudioPart, OFilePart]);
const OAssistantPart = z.discriminatedUnion('type', [OTextPart, ORefusalPart]);

const OToolCall = z.looseObject({
  id: str,
  type: z.literal('function'),
  function: z.looseObject({ name: str, arguments: str }),
});

const OMessage = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('system'), content: z.union([str, z.array(OTextPart)]), name: str.optional() }),
  z.looseObject({ role: z.literal('developer'), content: z.union([str, z.array(OTextPart)]), name: str.optional() }),
  z.looseObject({ role: z.literal('user'), content: z.union([str, z.array(OUserPart)]), name: str.optional() }),
  z.looseObject({
    role: z.literal('assistant'),
    content: z.union([str, z.array(OAssistantPart)]).nullish(),
    tool_calls: z.array(OToolCall).optional(),
    refusal: str.nullish(),
    name: str.optional(),
  }),
  z.looseObject({ role: z.literal('tool'), content: z.union([str, z.array(OTextPart)]), tool_call_id: str }),
  z.looseObject({ role: z.literal('function'), content: str.nullable(), name: str }),
]);

const OTool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: str.min(1),
    description: str.optional(),
    parameters: z.record(str, z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

const OToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: str }) }),
]);

const OResponseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: str,
      description: str.optional(),
      schema: z.record(str, z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

export const OpenAIChatBody = z.looseObject({
  model: str.min(1),
  messages: z.array(OMessage).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: int.positive().nullish(),
  max_completion_tokens: int.positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: int.nonnegative().nullish(),
  n: int.min(1).max(128).nullish(),
  stop: z.union([str, z.array(str).max(16)]).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(str, z.number()).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int.min(0).max(20).nullish(),
  seed: int.nullish(),
  tools: z.array(OTool).nullish(),
  tool_choice: OToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: OResponseFormat.nullish(),
  user: str.nullish(),
  reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(),
});
export type OpenAIChatBody = z.infer<typeof OpenAIChatBody>;
export type OpenAIMessage = z.infer<typeof OMessage>;
export type OpenAIUserPart = z.infer<typeof OUserPart>;
export type OpenAIToolCall = z.infer<typeof OToolCall>;

// ---------------------------------------------------------------- OpenAI Embeddings

export const OpenAIEmbeddingsBody = z.looseObject({
  model: str.min(1),
  input: z.union([str, z.array(str).min(1), z.array(int).min(1), z.array(z.array(int).min(1)).min(1)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: int.positive().optional(),
  user: str.optional(),
});
export type OpenAIEmbeddingsBody = z.infer<typeof OpenAIEmbeddingsBody>;

// ---------------------------------------------------------------- Anthropic Messages

const ACacheControl = z.looseObject({ type: z.literal('ephemeral') }).nullish();
const ATextBlock = z.looseObject({ type: z.literal('text'), text: str, cache_control: ACacheControl });
const AImageBlock = z.looseObject({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.looseObject({ type: z.literal('base64'), media_type: str, data: str }),
    z.looseObject({ type: z.literal('url'), url: str }),
  ]),
  cache_control: ACacheControl,
});
const ADocumentBlock = z.looseObject({
  type: z.literal('document'),
  source: z.looseObject({ type: str }),
  cache_control: ACacheControl,
});
const AToolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: str,
  name: str,
  input: z.unknown(),
  cache_control: ACacheControl,
});
const AToolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: str,
  content: z.union([str, z.array(z.discriminatedUnion('type', [ATextBlock, AImageBlock]))]).optional(),
  is_error: z.boolean().optional(),
  cache_control: ACacheControl,
});
const AThinkingBlock = z.looseObject({ type: z.literal('thinking'), thinking: str, signature: str.optional() });
const ARedactedThinkingBlock = z.looseObject({ type: z.literal('redacted_thinking'), data: str });

const AKnownBlock = z.discriminatedUnion('type', [
  ATextBlock,
  AImageBlock,
  ADocumentBlock,
  AToolUseBlock,
  AToolResultBlock,
  AThinkingBlock,
  ARedactedThinkingBlock,
]);
const KNOWN_BLOCKS = new Set(['text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking']);
type RefineIssue = Parameters<Parameters<z.ZodType['superRefine']>[0]>[1]['addIssue'] extends (i: infer I) => void ? I : never;

/**
 * Known block types are fully validated; other types (server tool results, search results, …) still pass, so
 * Anthropic → Anthropic passthrough keeps working as the API grows. Cross-provider translators refuse them (422).
 */


const AContentBlock = z.looseObject({ type: str }).superRefine((block, ctx) => {
  if (!KNOWN_BLOCKS.has(block.type)) return;
  const r = AKnownBlock.safeParse(block);
  if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue } as unknown as RefineIssue);
}) as unknown as z.ZodType<AnthropicContentBlock>; // the refinement guarantees known kinds have their full shape

const AMessage = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([str, z.array(AContentBlock)]),
});
type AKnown = z.infer<typeof AKnownBlock>;
type AOther = { type: string; [k: string]: unknown };
/** Content blocks as translators see them: the typed known kinds, or an opaque other kind. */
export type AnthropicContentBlock = AKnown | AOther;

const ATool = z.looseObject({
  name: str.min(1),
  type: str.optional(),
  description: str.optional(),
  input_schema: z.record(str, z.unknown()).optional(),
  cache_control: ACacheControl,
});

export const AnthropicMessagesBody = z.looseObject({
  model: str.min(1),
  messages: z.array(AMessage),
  max_tokens: int.positive(),
  system: z.union([str, z.array(ATextBlock)]).optional(),
  stop_sequences: z.array(str).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: int.nonnegative().optional(),
  metadata: z.looseObject({ user_id: str.nullish() }).optional(),
  tools: z.array(ATool).optional(),
  tool_choice: z
    .discriminatedUnion('type', [
      z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
      z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
      z.looseObject({ type: z.literal('tool'), name: str, disable_parallel_tool_use: z.boolean().optional() }),
      z.looseObject({ type: z.literal('none') }),
    ])
    .optional(),
  thinking: z.looseObject({ type: z.enum(['enabled', 'disabled']), budget_tokens: int.optional() }).optional(),
});
export type AnthropicMessagesBody = z.infer<typeof AnthropicMessagesBody>;
/** `POST /v1/messages/count_tokens`: a Messages body without the output settings (max_tokens optional). */
export const AnthropicCountTokensBody = AnthropicMessagesBody.extend({ max_tokens: int.positive().optional() });
export type AnthropicMessage = z.infer<typeof AMessage>;

// ---------------------------------------------------------------- validation → GatewayError

type Path = ReadonlyArray<PropertyKey>;

/** `['messages', 0, 'role']` → `messages[0].role` (the `param` form OpenAI uses). */
export function formatParam(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  expected?: unknown;
  input?: unknown;
  errors?: Issue[][];
  options?: unknown[];
  values?: unknown[];
  note?: string;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function valueAt(root: unknown, path: Path): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg as string];
  }
  return cur;
}

/**
 * For `string | array` unions zod reports every branch; pick the branch that got furthest into the value
 * (a nested path) so the message names the real culprit, e.g. `messages[0].content[1].text`.
 */
function deepestIssue(issue: Issue): { issue: Issue; path: PropertyKey[] } {
  if (issue.code === 'invalid_union' && issue.errors && issue.errors.length > 0) {
    let best: Issue | undefined;
    for (const branch of issue.errors) {
      const first = branch[0];
      // The catch-all "unknown block type" branch fails with a custom issue; it never names the real culprit.
      if (!first || (first.code === 'custom' && issue.errors.length > 1)) continue;
      if (!best || first.path.length > best.path.length) best = first;
    }
    if (best && best.path.length > 0) {
      const inner = deepestIssue(best);
      return { issue: inner.issue, path: [...issue.path, ...inner.path] };
    }
  }
  return { issue, path: issue.path };
}

function issueToError(raw: Issue, root: unknown): GatewayError {
  const { issue, path } = deepestIssue(raw);
  const param = formatParam(path);
  const value = valueAt(root, path);
  let message: string;
  if (value === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union')) {
    message = `Missing required parameter: '${param}'.`;
  } else if (issue.code === 'invalid_union' && issue.note === 'No matching discriminator') {
    const opts = (issue.options ?? []).map((o) => `'${String(o)}'`).join(', ');
    message = `Invalid value for '${param}': ${JSON.stringify(value)}. Supported values are: ${opts}.`;
  } else if (issue.code === 'invalid_value') {
    const opts = (issue.values ?? []).map((o) => `'${String(o)}'`).join(', ');
    message = `Invalid value for '${param}': ${JSON.stringify(value)}. Supported values are: ${opts}.`;
  } else if (issue.code === 'invalid_type' || (issue.code === 'invalid_union' && raw === issue)) {
    const names: Record<string, string> = { int: 'an integer', number: 'a number', string: 'a string', boolean: 'a boolean', array: 'an array', object: 'an object', record: 'an object' };
    const expected = issue.expected !== undefined ? (names[String(issue.expected)] ?? String(issue.expected)) : 'a different type';
    message = `Invalid type for '${param}': expected ${expected}, but got ${describe(value)} instead.`;
  } else {
    message = `Invalid value for '${param}': ${issue.message.replace(/^Invalid input: /, '')}.`;
  }
  return new GatewayError('invalid_request', message, { param, code: 'invalid_request' });
}

/** Validate with a schema; the first problem becomes a 400 naming the offending field. */
export function validate<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0] as unknown as Issue;
  throw issueToError(first, value);
}
