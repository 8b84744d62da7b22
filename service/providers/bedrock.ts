// OpenAI Chat Completions ⇄ AWS Bedrock Converse / ConverseStream, SigV4-signed (service `bedrock`).
// ConverseStream answers in the binary `application/vnd.amazon.eventstream` framing (eventstream.ts).
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { GatewayError } from '../errors.ts';
import type { OpenAIChatBody, OpenAIMessage } from './schemas.ts';
import { EventStreamDecoder } from './eventstream.ts';
import {
  basePathOf,
  contentText,
  defaultOptions,
  isObject,
  JSON_CT,
  noConversation,
  notSupported,
  parseDataUrl,
  parseJson,
  parseToolArguments,
  rejectUnknown,
  tokenCount,
  upstreamError,
  type Json,
} from './common.ts';
import {
  JSON_TOOL,
  JSON_TOOL_DESCRIPTION,
  OPENAI_CHAT_FIELDS,
  StreamedBlocks,
  appendTurn,
  assistantChoice,
  isJsonMode,
  jsonModeSchema,
  messageTexts,
  rejectOpenAIOnlyParams,
  stopList,
  usageWithCache,
  type AssistantPart,
} from './anthropic.ts';
import {
  chatCompletion,
  ChunkFactory,
  streamEnded,
  type ChatCompletion,
  type ChatCore,
  type CoreContext,
  type CoreEvent,
  type CoreStream,
} from './chat.ts';
import type { TranslatorOptions, UpstreamRequest, UpstreamTarget, Usage } from './types.ts';

const P = 'bedrock' as const;
const IMAGE_FORMATS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

function contentBlocks(m: OpenAIMessage, at: string): Json[] {
  const blocks: Json[] = [];
  if (m.role === 'user') {
    if (typeof m.content === 'string') return m.content === '' ? [] : [{ text: m.content }];
    m.content.forEach((p, j) => {
      const pp = `${at}.content[${j}]`;
      if (p.type === 'text') {
        if (p.text !== '') blocks.push({ text: p.text });
      } else if (p.type === 'image_url') {
        const d = parseDataUrl(p.image_url.url);
        if (!d) throw notSupported(`${pp}.image_url.url`, P, 'image URLs; send a base64 data URL');
        const format = IMAGE_FORMATS[d.mediaType];
        if (!format) throw notSupported(`${pp}.image_url.url`, P, `image type ${d.mediaType}`);
        blocks.push({ image: { format, source: { bytes: d.data } } });
      } else if (p.type === 'file') {
        const d = p.file.file_data ? parseDataUrl(p.file.file_data) : undefined;
        if (!d || d.mediaType !== 'application/pdf') throw notSupported(pp, P, 'only inline PDF files are supported');
        blocks.push({ document: { format: 'pdf', name: `document-${j}`, source: { bytes: d.data } } });
      } else throw notSupported(`${pp}.type`, P, `content part type '${p.type}'`);
    });
    return blocks;
  }
  if (m.role === 'assistant') {
    for (const text of messageTexts(m.content)) blocks.push({ text });
    m.tool_calls?.forEach((tc, j) => {
      const input = parseToolArguments(tc.function.arguments, `${at}.tool_calls[${j}].function.arguments`);
      blocks.push({ toolUse: { toolUseId: tc.id, name: tc.function.name, input } });
    });
  }
  return blocks;
}

/** OpenAI body → Converse request body (model goes in the path). Exported for the benchmark and tests. */
export function toBedrockBody(b: OpenAIChatBody): Json {
  // `user` is dropped: Converse only has `requestMetadata` for invocation logs.
  rejectUnknown(b as Json, OPENAI_CHAT_FIELDS, P);
  rejectOpenAIOnlyParams(b, P);
  if (b.parallel_tool_calls === false) throw notSupported('parallel_tool_calls', P, 'Converse has no such setting');
  const system: Json[] = [];
  const messages: Array<{ role: 'user' | 'assistant'; content: Json[] }> = [];
  let usesTools = false;
  const push = (role: 'user' | 'assistant', content: Json[]): void => appendTurn(messages, role, content);
  b.messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (m.role === 'system' || m.role === 'developer') {
      for (const text of messageTexts(m.content)) system.push({ text });
    } else if (m.role === 'user' || m.role === 'assistant') {
      if (m.role === 'assistant' && m.tool_calls && m.tool_calls.length > 0) usesTools = true;
      push(m.role, contentBlocks(m, at));
    } else if (m.role === 'tool') {
      usesTools = true;
      push('user', [{ toolResult: { toolUseId: m.tool_call_id, content: [{ text: contentText(m.content) }] } }]);
    } else {
      throw notSupported(`${at}.role`, P, "the deprecated 'function' role; use tools");
    }
  });
  if (messages.length === 0) throw noConversation(P);
  const out: Json = { messages };
  if (system.length > 0) out.system = system;
  const inf: Json = {};
  const maxTokens = b.max_completion_tokens ?? b.max_tokens;
  if (maxTokens != null) inf.maxTokens = maxTokens;
  if (b.temperature != null) inf.temperature = b.temperature;
  if (b.top_p != null) inf.topP = b.top_p;
  const stop = stopList(b);
  if (stop) inf.stopSequences = stop;
  if (Object.keys(inf).length > 0) out.inferenceConfig = inf;
  if (b.top_k != null) out.additionalModelRequestFields = { top_k: b.top_k };

  const jsonSchema = jsonModeSchema(b, P);
  if (jsonSchema) {
    out.toolConfig = {
      tools: [{ toolSpec: { name: JSON_TOOL, description: JSON_TOOL_DESCRIPTION, inputSchema: { json: jsonSchema } } }],
      toolChoice: { tool: { name: JSON_TOOL } },
    };
  } else if (b.tools && b.tools.length > 0) {
    const tc = b.tool_choice;
    if (tc === 'none') {
      // Converse cannot forbid tool use; leaving the tools out does, unless the history needs toolConfig.
      if (usesTools) throw notSupported('tool_choice', P, "'none' while the conversation contains tool calls");
    } else {
      const toolConfig: Json = {
        tools: b.tools.map((t) => ({
          toolSpec: {
            name: t.function.name,
            ...(t.function.description ? { description: t.function.description } : {}),
            inputSchema: { json: t.function.parameters ?? { type: 'object', properties: {} } },
          },
        })),
      };
      if (tc === 'auto') toolConfig.toolChoice = { auto: {} };
      else if (tc === 'required') toolConfig.toolChoice = { any: {} };
      else if (tc && typeof tc === 'object') toolConfig.toolChoice = { tool: { name: tc.function.name } };
      out.toolConfig = toolConfig;
    }
  }
  return out;
}

/** "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]" → credentials. */
function parseCredential(credential: string | undefined, provider: string): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } {
  const parts = (credential ?? '').split(':');
  if (parts.length < 2 || !parts[0] || !parts[1]) {
    throw new GatewayError('internal', `provider ${provider} has no usable AWS credential (expected ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN])`, {
      code: 'provider_credential_invalid',
    });
  }
  const token = parts.slice(2).join(':');
  return { accessKeyId: parts[0], secretAccessKey: parts[1], ...(token ? { sessionToken: token } : {}) };
}

/** SigV4-sign a POST for service `bedrock`; returns the headers to send (everything but `host`). */
export async function signBedrock(
  target: UpstreamTarget,
  path: string,
  body: Buffer,
  date: Date,
): Promise<Record<string, string>> {
  const region = target.provider.region ?? target.deployment.region;
  if (!region) {
    throw new GatewayError('internal', `provider ${target.provider.name} has no AWS region configured`, { code: 'provider_config' });
  }
  const signer = new SignatureV4({
    service: 'bedrock',
    region,
    credentials: parseCredential(target.credential, target.provider.name),
    sha256: Hash.bind(null, 'sha256'),
  });
  const [hostname, port] = target.provider.host.split(':');
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname: hostname!,
      ...(port ? { port: Number(port) } : {}),
      path,
      query: {},
      headers: { host: target.provider.host, 'content-type': JSON_CT },
      body,
    },
    { signingDate: date },
  );
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') out[k.toLowerCase()] = String(v);
  return out;
}

function finishFromBedrock(stop: unknown): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export function usageFromBedrock(u: unknown): Usage | undefined {
  if (!isObject(u)) return undefined;
  const usage = usageWithCache(
    tokenCount(u.inputTokens),
    tokenCount(u.outputTokens),
    tokenCount(u.cacheReadInputTokens),
    tokenCount(u.cacheWriteInputTokens),
  );
  // Cache writes by TTL (`cacheDetails: [{ttl: "1h", inputTokens}]`): 1-hour writes are billed higher.
  if (Array.isArray(u.cacheDetails)) {
    let oneHour = 0;
    for (const d of u.cacheDetails) if (isObject(d) && d.ttl === '1h') oneHour += tokenCount(d.inputTokens);
    if (oneHour > 0) usage.cacheCreation1hInputTokens = Math.min(oneHour, usage.cacheCreationInputTokens ?? 0);
  }
  return usage;
}

/** HTTP status of a Bedrock stream exception frame's `:exception-type`. */
export const BEDROCK_EXCEPTION_STATUS: Record<string, number> = {
  throttlingException: 429,
  validationException: 400,
  accessDeniedException: 403,
  resourceNotFoundException: 404,
  serviceUnavailableException: 503,
  modelTimeoutException: 504,
  modelNotReadyException: 503,
};

export class BedrockCore implements ChatCore {
  readonly provider = P;
  private readonly opts: Required<TranslatorOptions>;

  constructor(opts?: TranslatorOptions) {
    this.opts = defaultOptions(opts);
  }

  async request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest> {
    const payload = Buffer.from(JSON.stringify(toBedrockBody(body)));
    const path = `${basePathOf(target.provider)}/model/${encodeURIComponent(target.deployment.upstreamModel)}/${ctx.stream ? 'converse-stream' : 'converse'}`;
    const headers = await signBedrock(target, path, payload, new Date(this.opts.now() * 1000));
    headers.accept = ctx.stream ? 'application/vnd.amazon.eventstream' : JSON_CT;
    headers['accept-encoding'] = 'identity';
    return { path, headers, body: payload };
  }

  parse(body: unknown, ctx: CoreContext, requestBody: OpenAIChatBody): ChatCompletion {
    const output = isObject(body) && isObject(body.output) ? body.output : undefined;
    const message = output && isObject(output.message) ? output.message : undefined;
    if (!isObject(body) || !message || !Array.isArray(message.content)) {
      throw new GatewayError('upstream', 'upstream response is not a Converse response', { code: 'upstream_protocol' });
    }
    const parts: AssistantPart[] = [];
    for (const block of message.content) {
      if (!isObject(block)) continue;
      if (typeof block.text === 'string') parts.push({ text: block.text });
      else if (isObject(block.toolUse)) {
        const tu = block.toolUse;
        parts.push({ toolUse: { id: String(tu.toolUseId), name: String(tu.name), input: tu.input } });
      }
    }
    const choice = assistantChoice(parts, isJsonMode(requestBody), finishFromBedrock(body.stopReason));
    const usage = usageFromBedrock(body.usage);
    return chatCompletion(this.opts.newId('chatcmpl-'), this.opts.now(), ctx.model, [choice], usage);
  }

  stream(ctx: CoreContext, requestBody: OpenAIChatBody): BedrockStream {
    return new BedrockStream(ctx, isJsonMode(requestBody), this.opts);
  }
}

/** ConverseStream eventstream frames → OpenAI chunks. */
export class BedrockStream implements CoreStream {
  private readonly decoder = new EventStreamDecoder();
  private readonly chunks: ChunkFactory;
  private readonly blocks: StreamedBlocks;
  private started = false;
  private stopped = false;
  private completed = false;
  private failed = false;
  private lastUsage: Usage | undefined;
  private finish: string | undefined;

  constructor(ctx: CoreContext, json: boolean, opts: Required<TranslatorOptions>) {
    this.chunks = new ChunkFactory(opts.newId('chatcmpl-'), ctx.model, opts.now());
    this.blocks = new StreamedBlocks(json, this.chunks);
  }

  push(chunk: Buffer): CoreEvent[] {
    const out: CoreEvent[] = [];
    if (this.failed) return out;
    for (const msg of this.decoder.push(chunk)) {
      this.onMessage(msg.headers, msg.payload, out);
      if (this.failed) break;
    }
    return out;
  }

  end(): CoreEvent[] {
    if (this.failed) return [];
    if (!this.completed) {
      this.failed = true;
      const why = this.decoder.pending ? 'in the middle of an event' : 'before the response was complete';
      return [{ type: 'error', error: streamEnded(why) }];
    }
    return [];
  }

  usage(): Usage | undefined {
    return this.lastUsage;
  }

  finishReason(): string | undefined {
    return this.finish;
  }

  private startIfNeeded(out: CoreEvent[]): void {
    if (this.started) return;
    this.started = true;
    out.push({ type: 'chunk', chunk: this.chunks.delta({ role: 'assistant', content: '' }) });
  }

  private onMessage(headers: Record<string, unknown>, payload: Buffer, out: CoreEvent[]): void {
    const messageType = headers[':message-type'];
    if (messageType === 'exception' || messageType === 'error') {
      const kind = String(headers[':exception-type'] ?? headers[':error-code'] ?? 'internalServerException');
      const status = BEDROCK_EXCEPTION_STATUS[kind] ?? 500;
      const err = upstreamError(P, status, { 'x-amzn-errortype': kind }, payload);
      out.push({ type: 'error', error: err });
      this.failed = true;
      return;
    }
    const ev = parseJson(payload, 'upstream stream event');
    if (!isObject(ev)) return;
    switch (headers[':event-type']) {
      case 'messageStart':
        this.startIfNeeded(out);
        break;
      case 'contentBlockStart': {
        this.startIfNeeded(out);
        const idx = Number(ev.contentBlockIndex);
        const start = isObject(ev.start) ? ev.start : {};
        if (isObject(start.toolUse)) this.blocks.openToolUse(idx, start.toolUse.toolUseId, start.toolUse.name, out);
        break;
      }
      case 'contentBlockDelta': {
        this.startIfNeeded(out);
        const d = isObject(ev.delta) ? ev.delta : {};
        if (typeof d.text === 'string' && d.text !== '') {
          out.push({ type: 'chunk', chunk: this.chunks.delta({ content: d.text }) });
        } else if (isObject(d.toolUse) && typeof d.toolUse.input === 'string' && d.toolUse.input !== '') {
          this.blocks.toolInput(Number(ev.contentBlockIndex), d.toolUse.input, out);
        }
        // reasoningContent deltas have no Chat Completions equivalent.
        break;
      }
      case 'messageStop': {
        this.startIfNeeded(out);
        const finish = this.blocks.finish(finishFromBedrock(ev.stopReason));
        this.finish = finish;
        this.stopped = true;
        this.completed = true;
        out.push({ type: 'chunk', chunk: this.chunks.finish(finish) });
        break;
      }
      case 'metadata': {
        const u = usageFromBedrock(ev.usage);
        if (u) {
          this.lastUsage = u;
          if (this.stopped) out.push({ type: 'chunk', chunk: this.chunks.usage(u) });
        }
        break;
      }
      default:
        break; // contentBlockStop and future event types
    }
  }
}

