// Request schema of the OpenAI Responses API (`POST /v1/responses`). Loose objects, like schemas.ts: unknown
// fields pass validation (OpenAI/Azure passthrough carries them; cross-provider translators refuse them), but
// every field a translator reads is typed and checked here, so bad input is a precise 400 naming the field.
import { z } from 'zod';

const str = z.string();
const int = z.number().int();

const InputText = z.looseObject({ type: z.literal('input_text'), text: str });
const InputImage = z.looseObject({
  type: z.literal('input_image'),
  image_url: str.nullish(),
  file_id: str.nullish(),
  detail: z.enum(['auto', 'low', 'high']).nullish(),
});
const InputFile = z.looseObject({
  type: z.literal('input_file'),
  file_data: str.nullish(),
  file_id: str.nullish(),
  file_url: str.nullish(),
  filename: str.nullish(),
});
const OutputText = z.looseObject({ type: z.literal('output_text'), text: str });
const Refusal = z.looseObject({ type: z.literal('refusal'), refusal: str });

const ContentPart = z.discriminatedUnion('type', [InputText, InputImage, InputFile, OutputText, Refusal]);

const MessageItem = z.looseObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([str, z.array(ContentPart)]),
});

const FunctionCallItem = z.looseObject({
  type: z.literal('function_call'),
  call_id: str.min(1),
  name: str.min(1),
  arguments: str,
  id: str.nullish(),
});

const FunctionCallOutputItem = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: str.min(1),
  output: z.union([str, z.array(z.discriminatedUnion('type', [InputText, InputImage, InputFile]))]),
});

/** Items with a `type` other than message/function_call/function_call_output are checked by the translator. */
const OtherItem = z.looseObject({ type: str });

const InputItem = z.union([MessageItem, FunctionCallItem, FunctionCallOutputItem, OtherItem]).superRefine((item, ctx) => {
  // The union above accepts any typed object; validate the known kinds fully so a broken one names its field.
  const t = (item as { type?: unknown }).type;
  const schema = t === 'function_call' ? FunctionCallItem : t === 'function_call_output' ? FunctionCallOutputItem : t === undefined || t === 'message' ? MessageItem : undefined;
  if (!schema) return;
  const r = schema.safeParse(item);
  if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue } as never);
});

const FunctionTool = z.looseObject({
  type: z.literal('function'),
  name: str.min(1),
  description: str.nullish(),
  parameters: z.record(str, z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
const Tool = z.looseObject({ type: str }).superRefine((tool, ctx) => {
  if (tool.type !== 'function') return;
  const r = FunctionTool.safeParse(tool);
  if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue } as never);
});

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), name: str.min(1) }),
  z.looseObject({ type: str }),
]);

const TextFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    name: str.min(1),
    schema: z.record(str, z.unknown()),
    description: str.nullish(),
    strict: z.boolean().nullish(),
  }),
]);

export const ResponsesBody = z.looseObject({
  model: str.min(1),
  /** Optional for OpenAI (a stored `prompt` or `conversation` can supply it); translators require it. */
  input: z.union([str, z.array(InputItem)]).nullish(),
  instructions: str.nullish(),
  stream: z.boolean().nullish(),
  max_output_tokens: int.positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  tools: z.array(Tool).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.looseObject({ format: TextFormat.nullish(), verbosity: z.enum(['low', 'medium', 'high']).nullish() }).nullish(),
  reasoning: z
    .looseObject({
      effort: z.enum(['none', 'minimal', 'low', 'medium', 'high']).nullish(),
      summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
    })
    .nullish(),
  store: z.boolean().nullish(),
  previous_response_id: str.nullish(),
  background: z.boolean().nullish(),
  conversation: z.union([str, z.looseObject({ id: str })]).nullish(),
  metadata: z.record(str, str).nullish(),
  user: str.nullish(),
});
export type ResponsesBody = z.infer<typeof ResponsesBody>;
export type ResponsesMessageItem = z.infer<typeof MessageItem>;
export type ResponsesFunctionCallItem = z.infer<typeof FunctionCallItem>;
export type ResponsesFunctionCallOutputItem = z.infer<typeof FunctionCallOutputItem>;
export type ResponsesFunctionTool = z.infer<typeof FunctionTool>;
