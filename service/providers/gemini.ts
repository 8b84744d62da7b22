// OpenAI Chat Completions / Embeddings ⇄ Google Gemini API (generativelanguage `generateContent`,
// `streamGenerateContent?alt=sse`, `embedContent`, `batchEmbedContents`).
// Tool parameter schemas and json_schema response formats are sent as `parametersJsonSchema` /
// `responseJsonSchema` (full JSON Schema, v1beta), so OpenAI schemas need no lossy conversion to OpenAPI subsets.
import { GatewayError } from '../errors.ts';
import type { OpenAIChatBody, OpenAIMessage } from './schemas.ts';
import {
  basePathOf,
  contentText,
  decodeBody,
  defaultOptions,
  invalid,
  isObject,
  JSON_CT,
  jsonResponse,
  noConversation,
  notSupported,
  parseDataUrl,
  parseJson,
  parseToolArguments,
  rejectUnknown,
  SSE_CT,
  tokenCount,
  upstreamError,
  type Json,
} from './common.ts';
import { maxTokensOf, messageTexts, OPENAI_CHAT_FIELDS, rejectOpenAIOnlyParams, stopList } from './anthropic.ts';
import {
  assistantMessageChoice,
  chatCompletion,
  ChunkFactory,
  errorResponse,
  SseCoreStream,
  type ChatCompletion,
  type ChatCore,
  type CoreContext,
  type CoreEvent,
  type OAChoice,
  type OAToolCall,
} from './chat.ts';
import { embeddingsBody, noStream } from './openai.ts';
import type {
  ClientRequest,
  StreamTranslator,
  TranslatedResponse,
  Translator,
  TranslatorOptions,
  UpstreamRequest,
  UpstreamTarget,
  Usage,
} from './types.ts';

const P = 'gemini' as const;

/** `gemini-2.0-flash` → `models/gemini-2.0-flash`; `tunedModels/x` and `models/x` are kept. */
function resourceName(model: string): string {
  return model.includes('/') ? model : `models/${model}`;
}

function geminiPath(target: UpstreamTarget, method: string): string {
  const base = basePathOf(target.provider);
  const name = resourceName(target.deployment.upstreamModel).split('/').map(encodeURIComponent).join('/');
  return `${base}/${name}:${method}`;
}

function geminiHeaders(target: UpstreamTarget): Record<string, string> {
  const h: Record<string, string> = { 'content-type': JSON_CT, 'accept-encoding': 'identity' };
  if (target.credential) h['x-goog-api-key'] = target.credential;
  return h;
}

function mediaPart(url: string, param: string): Json {
  const d = parseDataUrl(url);
  if (d) return { inlineData: { mimeType: d.mediaType, data: d.data } };
  if (url.startsWith('gs://') || /^https:\/\/generativelanguage\.googleapis\.com\//.test(url)) {
    return { fileData: { fileUri: url } };
  }
  throw notSupported(param, P, 'web URLs cannot be fetched by Gemini; send a base64 data URL or a Files API URI');
}

function convertMessages(messages: OpenAIMessage[]): { system: Json[]; contents: Json[] } {
  const system: Json[] = [];
  const contents: Array<{ role: 'user' | 'model'; parts: Json[] }> = [];
  const toolNames = new Map<string, string>();
  const push = (role: 'user' | 'model', parts: Json[]): void => {
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    if (last && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        for (const text of messageTexts(m.content)) system.push({ text });
        break;
      case 'user': {
        if (typeof m.content === 'string') {
          push('user', [{ text: m.content }]);
          break;
        }
        const parts: Json[] = [];
        m.content.forEach((p, j) => {
          const pp = `${at}.content[${j}]`;
          if (p.type === 'text') parts.push({ text: p.text });
          else if (p.type === 'image_url') parts.push(mediaPart(p.image_url.url, `${pp}.image_url.url`));
          else if (p.type === 'input_audio') {
            parts.push({ inlineData: { mimeType: `audio/${p.input_audio.format}`, data: p.input_audio.data } });
          } else if (p.type === 'file') {
            if (!p.file.file_data) throw notSupported(`${pp}.file.file_id`, P, 'uploaded OpenAI file ids');
            parts.push(mediaPart(p.file.file_data, `${pp}.file.file_data`));
          }
        });
        push('user', parts);
        break;
      }
      case 'assistant': {
        const parts: Json[] = messageTexts(m.content).map((text) => ({ text }));
        m.tool_calls?.forEach((tc, j) => {
          toolNames.set(tc.id, tc.function.name);
          const args = parseToolArguments(tc.function.arguments, `${at}.tool_calls[${j}].function.arguments`);
          parts.push({ functionCall: { name: tc.function.name, args } });
        });
        push('model', parts);
        break;
      }
      case 'tool': {
        const name = toolNames.get(m.tool_call_id);
        if (!name) {
          throw invalid(`${at}.tool_call_id`, `Invalid value for '${at}.tool_call_id': no earlier assistant tool call has id '${m.tool_call_id}'.`);
        }
        push('user', [{ functionResponse: { name, response: { output: contentText(m.content) } } }]);
        break;
      }
      case 'function':
        throw notSupported(`${at}.role`, P, "the deprecated 'function' role; use tools");
    }
  });
  return { system, contents };
}

/** OpenAI body → Gemini GenerateContentRequest. Exported for tests. */
export function toGeminiBody(b: OpenAIChatBody): Json {
  rejectUnknown(b as Json, OPENAI_CHAT_FIELDS, P); // `user` (an abuse-monitoring id) has no Gemini field: dropped
  rejectOpenAIOnlyParams(b, P);
  if (b.parallel_tool_calls === false) {
    throw notSupported('parallel_tool_calls', P, 'Gemini cannot be told to avoid parallel calls');
  }
  const { system, contents } = convertMessages(b.messages);
  if (contents.length === 0) throw noConversation(P);
  const out: Json = { contents };
  if (system.length > 0) out.systemInstruction = { parts: system };
  const gc: Json = {};
  const maxTokens = b.max_completion_tokens ?? b.max_tokens;
  if (maxTokens != null) gc.maxOutputTokens = maxTokensOf(b);
  if (b.temperature != null) gc.temperature = b.temperature;
  if (b.top_p != null) gc.topP = b.top_p;
  if (b.top_k != null) gc.topK = b.top_k;
  if (b.n != null && b.n !== 1) gc.candidateCount = b.n;
  const stop = stopList(b);
  if (stop) {
    if (stop.length > 5) throw notSupported('stop', P, 'at most 5 stop sequences');
    gc.stopSequences = stop;
  }
  if (b.presence_penalty != null && b.presence_penalty !== 0) gc.presencePenalty = b.presence_penalty;
  if (b.frequency_penalty != null && b.frequency_penalty !== 0) gc.frequencyPenalty = b.frequency_penalty;
  if (b.seed != null) gc.seed = b.seed;
  const rf = b.response_format;
  if (rf && rf.type !== 'text') {
    gc.responseMimeType = 'application/json';
    if (rf.type === 'json_schema' && rf.json_schema.schema) gc.responseJsonSchema = rf.json_schema.schema;
  }
  if (Object.keys(gc).length > 0) out.generationConfig = gc;
  if (b.tools && b.tools.length > 0) {
    out.tools = [
      {
        functionDeclarations: b.tools.map((t) => ({
          name: t.function.name,
          ...(t.function.description ? { description: t.function.description } : {}),
          ...(t.function.parameters ? { parametersJsonSchema: t.function.parameters } : {}),
        })),
      },
    ];
    const tc = b.tool_choice;
    let fcc: Json | undefined;
    if (tc === 'none') fcc = { mode: 'NONE' };
    else if (tc === 'auto') fcc = { mode: 'AUTO' };
    else if (tc === 'required') fcc = { mode: 'ANY' };
    else if (tc && typeof tc === 'object') fcc = { mode: 'ANY', allowedFunctionNames: [tc.function.name] };
    if (fcc) out.toolConfig = { functionCallingConfig: fcc };
  }
  return out;
}

function finishFromGemini(reason: unknown, hasToolCalls: boolean): string {
  switch (reason) {
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
    case 'IMAGE_SAFETY':
      return 'content_filter';
    default:
      return hasToolCalls ? 'tool_calls' : 'stop';
  }
}

export function usageFromGemini(u: unknown): Usage | undefined {
  if (!isObject(u)) return undefined;
  const thoughts = tokenCount(u.thoughtsTokenCount);
  const usage: Usage = {
    inputTokens: tokenCount(u.promptTokenCount) + tokenCount(u.toolUsePromptTokenCount),
    outputTokens: tokenCount(u.candidatesTokenCount) + thoughts,
  };
  const cached = tokenCount(u.cachedContentTokenCount);
  if (cached > 0) usage.cachedInputTokens = cached;
  if (thoughts > 0) usage.reasoningTokens = thoughts;
  return usage;
}

interface PartsResult {
  text: string;
  hasText: boolean;
  calls: Array<{ id?: string; name: string; args: unknown }>;
}

function readParts(content: unknown): PartsResult {
  const r: PartsResult = { text: '', hasText: false, calls: [] };
  const parts = isObject(content) && Array.isArray(content.parts) ? content.parts : [];
  for (const p of parts) {
    if (!isObject(p) || p.thought === true) continue; // thought summaries are not part of the answer
    if (typeof p.text === 'string') {
      r.text += p.text;
      r.hasText = true;
    } else if (isObject(p.functionCall)) {
      const fc = p.functionCall;
      r.calls.push({ ...(typeof fc.id === 'string' ? { id: fc.id } : {}), name: String(fc.name), args: fc.args ?? {} });
    }
  }
  return r;
}

export class GeminiCore implements ChatCore {
  readonly provider = P;
  private readonly opts: Required<TranslatorOptions>;

  constructor(opts?: TranslatorOptions) {
    this.opts = defaultOptions(opts);
  }

  async request(body: OpenAIChatBody, ctx: CoreContext, target: UpstreamTarget): Promise<UpstreamRequest> {
    const out = toGeminiBody(body);
    const headers = geminiHeaders(target);
    if (ctx.stream) headers.accept = 'text/event-stream';
    const path = geminiPath(target, ctx.stream ? 'streamGenerateContent' : 'generateContent') + (ctx.stream ? '?alt=sse' : '');
    return { path, headers, body: Buffer.from(JSON.stringify(out)) };
  }

  parse(body: unknown, ctx: CoreContext): ChatCompletion {
    if (!isObject(body)) throw new GatewayError('upstream', 'upstream response is not a Gemini response', { code: 'upstream_protocol' });
    const id = typeof body.responseId === 'string' ? body.responseId : this.opts.newId('chatcmpl-');
    const choices: OAChoice[] = [];
    const candidates = Array.isArray(body.candidates) ? body.candidates : [];
    candidates.forEach((c, i) => {
      if (!isObject(c)) return;
      const r = readParts(c.content);
      const toolCalls: OAToolCall[] = r.calls.map((call, k) => ({
        id: call.id ?? `call_${id}_${i}_${k}`,
        type: 'function',
        function: { name: call.name, arguments: JSON.stringify(call.args) },
      }));
      const index = typeof c.index === 'number' ? c.index : i;
      choices.push(assistantMessageChoice(index, r.hasText ? r.text : null, toolCalls, finishFromGemini(c.finishReason, toolCalls.length > 0)));
    });
    if (choices.length === 0) {
      // The prompt itself was blocked (promptFeedback.blockReason): no candidates at all.
      choices.push(assistantMessageChoice(0, null, [], 'content_filter'));
    }
    const usage = usageFromGemini(body.usageMetadata);
    const model = typeof body.modelVersion === 'string' ? body.modelVersion : ctx.model;
    return chatCompletion(id, this.opts.now(), model, choices, usage);
  }

  stream(ctx: CoreContext): GeminiStream {
    return new GeminiStream(ctx, this.opts);
  }
}

class GeminiStream extends SseCoreStream {
  private readonly chunks: ChunkFactory;
  private readonly opts: Required<TranslatorOptions>;
  private readonly perCandidate = new Map<number, { started: boolean; tools: number; finished: boolean }>();
  private idKnown = false;
  private lastUsage: Usage | undefined;
  private finish: string | undefined;

  constructor(ctx: CoreContext, opts: Required<TranslatorOptions>) {
    super();
    this.opts = opts;
    this.chunks = new ChunkFactory('', ctx.model, opts.now());
  }

  protected onEvent(data: string, _event: string | undefined, out: CoreEvent[]): void {
    const ev = parseJson(data, 'upstream stream event');
    if (!isObject(ev)) return;
    if (ev.error !== undefined) {
      const e = isObject(ev.error) ? ev.error : {};
      const status = typeof e.code === 'number' ? e.code : 500;
      out.push({ type: 'error', error: upstreamError(P, status, {}, Buffer.from(data)) });
      return;
    }
    if (!this.idKnown) {
      this.idKnown = true;
      this.chunks.id = typeof ev.responseId === 'string' ? ev.responseId : this.opts.newId('chatcmpl-');
      if (typeof ev.modelVersion === 'string') this.chunks.model = ev.modelVersion;
    }
    const u = usageFromGemini(ev.usageMetadata);
    if (u) this.lastUsage = u;
    const candidates = Array.isArray(ev.candidates) ? ev.candidates : [];
    if (candidates.length === 0 && isObject(ev.promptFeedback) && ev.promptFeedback.blockReason) {
      out.push({ type: 'chunk', chunk: this.chunks.delta({ role: 'assistant', content: '' }) });
      out.push({ type: 'chunk', chunk: this.chunks.finish('content_filter') });
      this.finish = 'content_filter';
      this.completed = true;
      return;
    }
    candidates.forEach((c, i) => {
      if (!isObject(c)) return;
      const index = typeof c.index === 'number' ? c.index : i;
      let st = this.perCandidate.get(index);
      if (!st) {
        st = { started: false, tools: 0, finished: false };
        this.perCandidate.set(index, st);
      }
      const r = readParts(c.content);
      if (r.hasText && r.text !== '') {
        out.push({ type: 'chunk', chunk: this.chunks.delta(st.started ? { content: r.text } : { role: 'assistant', content: r.text }, index) });
        st.started = true;
      }
      for (const call of r.calls) {
        const k = st.tools++;
        const delta = {
          ...(st.started ? {} : { role: 'assistant' as const }),
          tool_calls: [
            {
              index: k,
              id: call.id ?? `call_${this.chunks.id}_${index}_${k}`,
              type: 'function' as const,
              function: { name: call.name, arguments: JSON.stringify(call.args) },
            },
          ],
        };
        out.push({ type: 'chunk', chunk: this.chunks.delta(delta, index) });
        st.started = true;
      }
      if (typeof c.finishReason === 'string' && c.finishReason !== 'FINISH_REASON_UNSPECIFIED' && !st.finished) {
        st.finished = true;
        if (!st.started) {
          out.push({ type: 'chunk', chunk: this.chunks.delta({ role: 'assistant', content: '' }, index) });
          st.started = true;
        }
        const finish = finishFromGemini(c.finishReason, st.tools > 0);
        if (index === 0) this.finish = finish;
        out.push({ type: 'chunk', chunk: this.chunks.finish(finish, index) });
      }
    });
    if (this.perCandidate.size > 0 && [...this.perCandidate.values()].every((s) => s.finished)) this.completed = true;
  }

  protected override onEnd(out: CoreEvent[]): void {
    if (this.completed && this.lastUsage) out.push({ type: 'chunk', chunk: this.chunks.usage(this.lastUsage) });
  }

  usage(): Usage | undefined {
    return this.lastUsage;
  }

  finishReason(): string | undefined {
    return this.finish;
  }
}

// ---------------------------------------------------------------- embeddings

/** Gemini returns no token counts for embeddings; budgets get an estimate (~4 characters per token). */
function estimateTokens(texts: string[]): number {
  let chars = 0;
  for (const t of texts) chars += t.length;
  return Math.max(1, Math.ceil(chars / 4));
}

function embeddingTexts(req: ClientRequest): { texts: string[]; single: boolean } {
  const b = embeddingsBody(req);
  if (typeof b.input === 'string') return { texts: [b.input], single: true };
  if (b.input.every((x): x is string => typeof x === 'string')) return { texts: b.input as string[], single: false };
  throw notSupported('input', P, 'token-id input; send text');
}

export class GeminiEmbeddingsTranslator implements Translator {
  readonly client = 'openai' as const;
  readonly provider = P;
  readonly op = 'embeddings' as const;
  readonly streamContentType = SSE_CT;

  async request(req: ClientRequest, target: UpstreamTarget): Promise<UpstreamRequest> {
    const b = embeddingsBody(req);
    const known = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);
    rejectUnknown(b as Json, known, P);
    const { texts, single } = embeddingTexts(req);
    const dims = b.dimensions !== undefined ? { outputDimensionality: b.dimensions } : {};
    let body: Json;
    if (single) body = { content: { parts: [{ text: texts[0] }] }, ...dims };
    else {
      const model = resourceName(target.deployment.upstreamModel);
      body = { requests: texts.map((text) => ({ model, content: { parts: [{ text }] }, ...dims })) };
    }
    return {
      path: geminiPath(target, single ? 'embedContent' : 'batchEmbedContents'),
      headers: geminiHeaders(target),
      body: Buffer.from(JSON.stringify(body)),
    };
  }

  response(status: number, headers: Record<string, string>, body: Buffer, req: ClientRequest): TranslatedResponse {
    try {
      if (status < 200 || status >= 300) throw upstreamError(P, status, headers, body);
      const json = parseJson(decodeBody(headers, body));
      const { texts } = embeddingTexts(req);
      const b = embeddingsBody(req);
      let vectors: unknown[] = [];
      if (isObject(json) && isObject(json.embedding)) vectors = [json.embedding];
      else if (isObject(json) && Array.isArray(json.embeddings)) vectors = json.embeddings;
      if (vectors.length !== texts.length) {
        throw new GatewayError('upstream', `upstream returned ${vectors.length} embeddings for ${texts.length} inputs`, { code: 'upstream_protocol' });
      }
      const data = vectors.map((v, index) => {
        const values = isObject(v) && Array.isArray(v.values) ? (v.values as number[]) : undefined;
        if (!values) throw new GatewayError('upstream', 'upstream embedding has no values', { code: 'upstream_protocol' });
        const embedding = b.encoding_format === 'base64' ? Buffer.from(new Float32Array(values).buffer).toString('base64') : values;
        return { object: 'embedding', index, embedding };
      });
      const tokens = estimateTokens(texts);
      const out = { object: 'list', data, model: req.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
      return jsonResponse(200, out, { usage: { inputTokens: tokens, outputTokens: 0, estimated: true } });
    } catch (err) {
      return errorResponse(err, 'openai');
    }
  }

  stream(): StreamTranslator {
    return noStream();
  }
}
