// Pseudonymization round trip and response-path redaction, end to end through the real Envoy.
//
// The stock fake providers split streams at whitespace, so a surrogate (`EMAIL_7F3KQ9PX`) always arrives in one
// piece. This file adds "echo" fakes (OpenAI-compatible and Anthropic) that answer with the text they RECEIVED,
// streamed 3 characters per SSE delta: the surrogates the provider saw come back split across chunks, and the
// client must still get its originals. Response-path redaction (`responses: true`) is checked with both the stock
// fakes (setNext) and the echo fakes.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { LineageRecord } from '../../service/lineage/record.ts';
import { anthropicReply, openAIReply, type ToolCallSpec } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';
import type { RenderCluster } from '../../service/envoy/render.ts';

// ---------------------------------------------------------------------------------------------- echo fakes

interface EchoRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}

interface EchoAnswer {
  text: string;
  toolCalls?: ToolCallSpec[];
}

interface EchoFake {
  kind: 'openai' | 'anthropic';
  port: number;
  requests: EchoRequest[];
  /** What was answered to each request, as generated (before Tollgate touched it). */
  answers: EchoAnswer[];
  /** Stream deltas sent for each streamed request. */
  deltas: string[][];
  /** Builds the answer from the text of the last user message received (default: echo it). */
  answer: (userText: string) => EchoAnswer;
  close(): Promise<void>;
}

const CHUNK = 3;
const chop = (s: string, n = CHUNK): string[] => s.match(new RegExp(`[\\s\\S]{1,${n}}`, 'g')) ?? [];

/** Text of the last user message, whatever the provider format (string content, parts, blocks). */
function lastUserText(json: any): string {
  const msgs: any[] = Array.isArray(json?.messages) ? json.messages : [];
  const last = [...msgs].reverse().find((m) => m.role === 'user');
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) return last.content.map((p: any) => (typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

function sse(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

function openaiEvents(a: EchoAnswer, includeUsage: boolean, deltas: string[]): string[] {
  const base = { id: 'chatcmpl-echo', object: 'chat.completion.chunk', created: 1700000000, model: 'echo-upstream' };
  const chunk = (delta: object, finish: string | null = null) => sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const out = [chunk({ role: 'assistant', content: '' })];
  for (const p of chop(a.text)) {
    deltas.push(p);
    out.push(chunk({ content: p }));
  }
  (a.toolCalls ?? []).forEach((t, index) => {
    out.push(chunk({ tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] }));
    for (const p of chop(JSON.stringify(t.args))) {
      deltas.push(p);
      out.push(chunk({ tool_calls: [{ index, function: { arguments: p } }] }));
    }
  });
  out.push(chunk({}, a.toolCalls?.length ? 'tool_calls' : 'stop'));
  if (includeUsage) out.push(sse({ ...base, choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } }));
  out.push('data: [DONE]\n\n');
  return out;
}

function anthropicEvents(a: EchoAnswer, deltas: string[]): string[] {
  const ev = (type: string, body: object) => sse({ type, ...body }, type);
  const out = [
    ev('message_start', {
      message: { id: 'msg_echo', type: 'message', role: 'assistant', model: 'echo-upstream', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 11, output_tokens: 1 } },
    }),
  ];
  let index = 0;
  if (a.text) {
    out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    for (const p of chop(a.text)) {
      deltas.push(p);
      out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } }));
    }
    out.push(ev('content_block_stop', { index }));
    index++;
  }
  for (const t of a.toolCalls ?? []) {
    out.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} } }));
    for (const p of chop(JSON.stringify(t.args))) {
      deltas.push(p);
      out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
    }
    out.push(ev('content_block_stop', { index }));
    index++;
  }
  out.push(ev('message_delta', { delta: { stop_reason: a.toolCalls?.length ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } }));
  out.push(ev('message_stop', {}));
  return out;
}

async function startEchoFake(kind: 'openai' | 'anthropic'): Promise<EchoFake> {
  const sockets = new Set<Socket>();
  const fake: EchoFake = {
    kind,
    port: 0,
    requests: [],
    answers: [],
    deltas: [],
    answer: (t) => ({ text: `Echo: ${t}` }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    let json: any;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    fake.requests.push({ path: req.url ?? '', headers: req.headers, body, json });
    const expected = kind === 'openai' ? '/v1/chat/completions' : '/v1/messages';
    if (req.url !== expected || !json) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"not found"}}');
      return;
    }
    const a = fake.answer(lastUserText(json));
    fake.answers.push(a);
    if (json.stream !== true) {
      const spec = { text: a.text, toolCalls: a.toolCalls, usage: { input: 11, output: 7 } };
      const b = Buffer.from(JSON.stringify(kind === 'openai' ? openAIReply(spec) : anthropicReply(spec)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(b.length) });
      res.end(b);
      return;
    }
    const deltas: string[] = [];
    fake.deltas.push(deltas);
    const events = kind === 'openai' ? openaiEvents(a, json.stream_options?.include_usage === true, deltas) : anthropicEvents(a, deltas);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const e of events) {
      if (res.destroyed) return;
      res.write(e);
      await new Promise((r) => setTimeout(r, 1));
    }
    res.end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.port = (server.address() as AddressInfo).port;
  return fake;
}

function echoYaml(openaiPort: number, anthropicPort: number): string {
  process.env.TG_TEST_ECHO_KEY = 'echo-upstream-key';
  const provider = (name: string, api: string, cluster: string, port: number, extra = '') => `apiVersion: tollgate.dev/v1alpha1
kind: Provider
metadata: {name: ${name}}
spec:
  api: ${api}
  cluster: ${cluster}
  host: 127.0.0.1:${port}
  basePath: "/v1"
  credential: {env: TG_TEST_ECHO_KEY}
${extra}---
`;
  const model = (name: string, provider: string) => `apiVersion: tollgate.dev/v1alpha1
kind: Model
metadata: {name: ${name}}
spec:
  kind: chat
  deployments:
  - {provider: ${provider}, model: echo-upstream, region: us-east-1, pricing: {inputPerMillion: 1, outputPerMillion: 2}}
---
`;
  return (
    provider('echo-openai', 'openai', 'echo_openai', openaiPort) +
    provider('echo-anthropic', 'anthropic', 'echo_anthropic', anthropicPort, '  apiVersion: "2023-06-01"\n') +
    model('echo-gpt', 'echo-openai') +
    model('echo-claude', 'echo-anthropic')
  );
}

// ---------------------------------------------------------------------------------------------- policies + data

const policy = (name: string, mode: string, rules: string): string => `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: ${name}}
spec:
  matchConditions:
    - name: selected
      expression: "'x-redaction-mode' in request.headers && request.headers['x-redaction-mode'] == '${mode}'"
  rules:
${rules}
---
`;

const POLICIES =
  policy('pseudo', 'pseudo', `    - name: contact\n      redact: {detectors: [email, phone, credit_card, iban], action: pseudonymize}\n    - name: secrets\n      redact: {detectors: [secrets], action: mask}`) +
  policy('pseudo-out', 'pseudo-out', `    - name: contact\n      redact: {detectors: [email, phone], action: pseudonymize, responses: true}`) +
  policy('respond', 'respond', `    - name: everything\n      redact: {detectors: ['*'], action: mask, responses: true}`) +
  // Originals that need escaping inside JSON: a PEM block (newlines) and a custom match with quotes and a backslash.
  `apiVersion: tollgate.dev/v1alpha1
kind: Policy
metadata: {name: pseudo-json}
spec:
  matchConditions:
    - name: selected
      expression: "'x-redaction-mode' in request.headers && request.headers['x-redaction-mode'] == 'pseudo-json'"
  detectors:
    - {name: quoted_ref, regex: 'ref="[a-z]+\\\\[0-9]+"'}
  rules:
    - name: reversible
      redact: {detectors: [private_key, quoted_ref, email], action: pseudonymize}
---
`;

const ORIG = {
  EMAIL: 'jane.doe@example.com',
  PHONE: '+1 415-555-2671',
  CREDIT_CARD: '4111 1111 1111 1111',
  IBAN: 'DE89 3704 0044 0532 0130 00',
};
const USER_TEXT = `Please email ${ORIG.EMAIL} or call ${ORIG.PHONE}; charge card ${ORIG.CREDIT_CARD} or IBAN ${ORIG.IBAN}.`;
const SURROGATE = /\b(EMAIL|PHONE|CREDIT_CARD|IBAN)_[0-9A-HJKMNP-TV-Z]{8}\b/g;

const PEM_LINES = ['MIIEowIBAAKCAQEA7bq98dZXkS2pQh3V9xYkLm4nTqWcZ8rU1jFa0oPe2sGh6Ty', 'q3RbXc5vLp0Ww8sN2mKdF7hJg4aZe1tYu9iOo6P5lAs3DfGh2JkLz8XcVbNm4QwE'];
/** PII the MODEL generates (response path): value → the placeholder whole-text masking gives it. */
const MODEL_PII: [string, string][] = [
  ['jane.doe@example.com', '[EMAIL_1]'],
  ['+1 415-555-2671', '[PHONE_1]'],
  ['4111 1111 1111 1111', '[CREDIT_CARD_1]'],
  ['123-45-6789', '[SSN_1]'],
  ['DE89 3704 0044 0532 0130 00', '[IBAN_1]'],
  ['sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456', '[OPENAI_KEY_1]'],
  ['AKIAQ3EGRTZL5XWN7J2B', '[AWS_ACCESS_KEY_1]'],
  ['wJalrXUtnFEMI/K7MDENG/bPxRfiCY3XAMPLEKEY', '[AWS_SECRET_KEY_1]'],
  [
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
    '[JWT_1]',
  ],
  [`-----BEGIN RSA PRIVATE KEY-----\n${PEM_LINES.join('\n')}\n-----END RSA PRIVATE KEY-----`, '[PRIVATE_KEY_1]'],
];
const pii = (i: number) => MODEL_PII[i]![0];
const MODEL_TEXT =
  `Sure. Contact ${pii(0)} or call ${pii(1)}. Card ${pii(2)}, SSN ${pii(3)}, IBAN ${pii(4)}. ` +
  `OpenAI key ${pii(5)}. AWS access key ${pii(6)} secret ${pii(7)}. Token ${pii(8)}. Key:\n${pii(9)}\nDone.`;
const MODEL_TEXT_MASKED = MODEL_PII.reduce((t, [v, p]) => t.split(v).join(p), MODEL_TEXT);
const MODEL_NEEDLES = [...MODEL_PII.map(([v]) => v).filter((v) => !v.startsWith('-----')), ...PEM_LINES, '4155552671', '4111111111111111'];
const leaked = (s: string) => MODEL_NEEDLES.filter((n) => s.includes(n) || s.replace(/[^0-9A-Za-z]/g, '').includes(n.replace(/[^0-9A-Za-z]/g, '')));

// ---------------------------------------------------------------------------------------------- clients

type ClientKind = 'openai' | 'anthropic';

const openai = (h: Harness, mode: string) =>
  new OpenAI({ apiKey: KEYS.acme, baseURL: h.baseURL, maxRetries: 0, timeout: 20000, defaultHeaders: { 'x-redaction-mode': mode } });
const anthropic = (h: Harness, mode: string) =>
  new Anthropic({ apiKey: KEYS.acme, baseURL: h.url, maxRetries: 0, timeout: 20000, defaultHeaders: { 'x-redaction-mode': mode } });

interface ChatResult {
  text: string;
  /** Text deltas as the client received them (stream only). */
  deltas: string[];
  /** Tool call arguments as the client got them (JSON text). */
  toolArgs: string[];
  requestId: string | null;
}

/** One chat turn with the given SDK; stream or not. Returns the assistant text the client saw. */
async function chat(h: Harness, client: ClientKind, model: string, mode: string, text: string, stream: boolean): Promise<ChatResult> {
  const deltas: string[] = [];
  if (client === 'openai') {
    const c = openai(h, mode);
    if (!stream) {
      const { data, response } = await c.chat.completions.create({ model, messages: [{ role: 'user', content: text }] }).withResponse();
      const m = data.choices[0]!.message;
      return {
        text: m.content ?? '',
        deltas,
        toolArgs: (m.tool_calls ?? []).map((t) => (t.type === 'function' ? t.function.arguments : '')),
        requestId: response.headers.get('x-request-id'),
      };
    }
    const { data, response } = await c.chat.completions.create({ model, messages: [{ role: 'user', content: text }], stream: true }).withResponse();
    const args: string[] = [];
    for await (const ch of data) {
      const d = ch.choices[0]?.delta;
      if (typeof d?.content === 'string' && d.content !== '') deltas.push(d.content);
      for (const t of d?.tool_calls ?? []) args[t.index] = (args[t.index] ?? '') + (t.function?.arguments ?? '');
    }
    return { text: deltas.join(''), deltas, toolArgs: args, requestId: response.headers.get('x-request-id') };
  }
  const c = anthropic(h, mode);
  if (!stream) {
    const { data, response } = await c.messages.create({ model, max_tokens: 256, messages: [{ role: 'user', content: text }] }).withResponse();
    return {
      text: data.content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
      deltas,
      toolArgs: data.content.flatMap((b) => (b.type === 'tool_use' ? [JSON.stringify(b.input)] : [])),
      requestId: response.headers.get('x-request-id'),
    };
  }
  const { data, response } = await c.messages.create({ model, max_tokens: 256, messages: [{ role: 'user', content: text }], stream: true }).withResponse();
  const args: string[] = [];
  for await (const ev of data) {
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') deltas.push(ev.delta.text);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') args[ev.index] = (args[ev.index] ?? '') + ev.delta.partial_json;
  }
  return { text: deltas.join(''), deltas, toolArgs: args.filter((a) => a !== undefined), requestId: response.headers.get('x-request-id') };
}

async function lineageFor(h: Harness, requestId: string | null): Promise<LineageRecord> {
  assert.ok(requestId, 'x-request-id header');
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

// ---------------------------------------------------------------------------------------------- tests

describe('e2e redaction: pseudonyms restored, response-path redaction', { timeout: 180000 }, () => {
  let h: Harness;
  let echo: Record<'openai' | 'anthropic', EchoFake>;
  const MODELS = { openai: 'echo-gpt', anthropic: 'echo-claude' } as const;

  before(async () => {
    echo = { openai: await startEchoFake('openai'), anthropic: await startEchoFake('anthropic') };
    // Extra Envoy clusters for the echo upstreams; the harness adds its fakes.
    const clusters: Record<string, RenderCluster> = {
      echo_openai: { host: '127.0.0.1', port: echo.openai.port },
      echo_anthropic: { host: '127.0.0.1', port: echo.anthropic.port },
    };
    h = await startHarness({ extraYaml: echoYaml(echo.openai.port, echo.anthropic.port) + POLICIES, envoy: { clusters } });
    // (fake provider clusters come from the harness)
    // (fake provider clusters come from the harness)
  });
  after(async () => {
    await h?.close();
    await echo?.openai.close();
    await echo?.anthropic.close();
  });

  describe('pseudonymize: provider sees surrogates, client gets originals', () => {
    for (const client of ['openai', 'anthropic'] as const) {
      for (const provider of ['openai', 'anthropic'] as const) {
        for (const stream of [false, true]) {
          it(`${client} SDK → ${provider} provider, ${stream ? 'SSE stream (surrogates split across 3-char deltas)' : 'non-stream'}`, async () => {
            const fake = echo[provider];
            const before = fake.requests.length;
            fake.answer = (t) => ({ text: `Echo: ${t}` });
            const r = await chat(h, client, MODELS[provider], 'pseudo', USER_TEXT, stream);

            assert.equal(fake.requests.length, before + 1);
            const raw = fake.requests.at(-1)!.body.toString('utf8');
            for (const v of Object.values(ORIG)) assert.ok(!raw.includes(v), `provider saw ${v}: ${raw}`);
            assert.ok(!raw.replace(/\D/g, '').includes('4111111111111111'));
            const seen = fake.requests.at(-1)!.json;
            const upText = lastUserText(seen);
            const surrogates = [...new Set(upText.match(SURROGATE))];
            assert.deepEqual(surrogates.map((s) => s.replace(/_[^_]+$/, '')).sort(), ['CREDIT_CARD', 'EMAIL', 'IBAN', 'PHONE']);
            // The model really answered with the surrogates (so the restore is what puts the originals back).
            assert.ok(surrogates.every((s) => fake.answers.at(-1)!.text.includes(s)));
            if (stream) {
              const sent = fake.deltas.at(-1)!;
              assert.ok(surrogates.every((s) => !sent.some((d) => d.includes(s))), 'every surrogate was split across provider deltas');
              assert.ok(r.deltas.length > 10, `many deltas reached the client (${r.deltas.length})`);
            }

            assert.equal(r.text, `Echo: ${USER_TEXT}`, 'the client gets exactly its originals back');
            assert.ok(!SURROGATE.test(r.text));
            SURROGATE.lastIndex = 0;
            const rec = await lineageFor(h, r.requestId);
            const rows = rec.redactions ?? [];
            for (const d of ['email', 'phone', 'credit_card', 'iban']) {
              const row = rows.find((x) => x.detector === d && x.direction === 'request');
              assert.equal(row?.action, 'pseudonymize', `${d}: ${JSON.stringify(rows)}`);
              assert.equal(row?.count, 1);
              assert.deepEqual(row?.locations, ['messages[0].content']);
            }
            const json = JSON.stringify(rec);
            for (const v of Object.values(ORIG)) assert.ok(!json.includes(v), 'lineage never holds the originals');
            for (const s of surrogates) assert.ok(!json.includes(s), 'nor the surrogates (they map back to the originals)');
          });
        }
      }
    }

    it('surrogates are random per request (the provider cannot correlate two requests)', async () => {
      const fake = echo.openai;
      const before = fake.requests.length;
      await chat(h, 'openai', MODELS.openai, 'pseudo', `mail ${ORIG.EMAIL}`, false);
      await chat(h, 'openai', MODELS.openai, 'pseudo', `mail ${ORIG.EMAIL}`, false);
      const [a, b] = fake.requests.slice(before).map((r) => lastUserText(r.json));
      assert.match(a!, /^mail EMAIL_[0-9A-HJKMNP-TV-Z]{8}$/);
      assert.match(b!, /^mail EMAIL_[0-9A-HJKMNP-TV-Z]{8}$/);
      assert.notEqual(a, b);
    });

    it('one value used twice gets one surrogate, restored at both places, in a stream split at every character', async () => {
      const fake = echo.anthropic;
      fake.answer = (t) => ({ text: t.split('').join('') });
      const text = `to ${ORIG.EMAIL}, cc ${ORIG.EMAIL.toUpperCase()}`;
      const before = fake.requests.length;
      const r = await chat(h, 'openai', MODELS.anthropic, 'pseudo', text, true);
      const up = lastUserText(fake.requests[before]!.json);
      assert.equal(new Set(up.match(SURROGATE)).size, 1, up);
      // The original of the first spelling comes back for both: a surrogate maps to one original.
      assert.equal(r.text, `to ${ORIG.EMAIL}, cc ${ORIG.EMAIL}`);
    });

    for (const client of ['openai', 'anthropic'] as const) {
      for (const provider of ['openai', 'anthropic'] as const) {
        for (const stream of [false, true]) {
          it(`tool-call arguments the model fills with a surrogate are restored: ${client} SDK → ${provider} provider, ${stream ? 'stream' : 'non-stream'}`, async () => {
            const fake = echo[provider];
            fake.answer = (t) => ({ text: '', toolCalls: [{ id: 'call_echo_1', name: 'send_email', args: { to: (t.match(SURROGATE) ?? ['none'])[0]!, body: 'hello' } }] });
            SURROGATE.lastIndex = 0;
            const r = await chat(h, client, MODELS[provider], 'pseudo', `Write to ${ORIG.EMAIL}`, stream);
            assert.match(JSON.stringify(fake.answers.at(-1)), /EMAIL_[0-9A-HJKMNP-TV-Z]{8}/, 'the model called the tool with the surrogate');
            assert.equal(r.toolArgs.length, 1, JSON.stringify(r));
            assert.deepEqual(JSON.parse(r.toolArgs[0]!), { to: ORIG.EMAIL, body: 'hello' }, 'the tool receives the original address');
          });
        }
      }
    }

    for (const client of ['openai', 'anthropic'] as const) {
      for (const provider of ['openai', 'anthropic'] as const) {
        for (const stream of [false, true]) {
          it(`restored tool arguments stay valid JSON when originals hold newlines, quotes, backslashes: ${client} SDK → ${provider} provider, ${stream ? 'stream' : 'non-stream'}`, async () => {
            const fake = echo[provider];
            const pem = `-----BEGIN PRIVATE KEY-----\n${PEM_LINES.join('\n')}\n-----END PRIVATE KEY-----`;
            const quoted = 'ref="abc\\42"';
            fake.answer = (t) => {
              const sur = t.match(/\b(?:PRIVATE_KEY|QUOTED_REF|EMAIL)_[0-9A-HJKMNP-TV-Z]{8}\b/g) ?? [];
              return { text: '', toolCalls: [{ id: 'call_echo_2', name: 'store', args: { values: sur, note: `first=${sur[0]}` } }] };
            };
            const before = fake.requests.length;
            const r = await chat(h, client, MODELS[provider], 'pseudo-json', `key ${pem} and ${quoted} for ${ORIG.EMAIL}`, stream);
            const up = fake.requests[before]!.body.toString('utf8');
            for (const l of PEM_LINES) assert.ok(!up.includes(l), 'the key never reached the provider');
            assert.ok(!up.includes('abc\\\\42') && !up.includes(ORIG.EMAIL));
            assert.equal((fake.answers.at(-1)!.toolCalls![0]!.args.values as string[]).length, 3, 'the model echoed three surrogates');
            assert.equal(r.toolArgs.length, 1, JSON.stringify(r));
            assert.deepEqual(JSON.parse(r.toolArgs[0]!), { values: [pem, quoted, ORIG.EMAIL], note: `first=${pem}` });
          });
        }
      }
    }

    it('with responses: true, a NEW email the model invents is masked while the restored original is kept', async () => {
      const fake = echo.openai;
      fake.answer = (t) => ({ text: `${t} — also try bob.smith@other-corp.org` });
      for (const stream of [false, true]) {
        const r = await chat(h, 'openai', MODELS.openai, 'pseudo-out', `Contact ${ORIG.EMAIL}`, stream);
        assert.match(r.text, /^Contact jane\.doe@example\.com — also try \[EMAIL_\d+\]$/, r.text);
        const rec = await lineageFor(h, r.requestId);
        const out = rec.redactions!.find((x) => x.direction === 'response' && x.detector === 'email');
        assert.equal(out?.count, 1, JSON.stringify(rec.redactions));
        assert.ok(!JSON.stringify(rec).includes('bob.smith@other-corp.org'));
      }
    });
  });

  describe('response-path redaction (responses: true): PII the model generates is masked', () => {
    for (const client of ['openai', 'anthropic'] as const) {
      for (const provider of ['openai', 'anthropic'] as const) {
        for (const stream of [false, true]) {
          it(`in tool-call arguments the model writes: ${client} SDK → ${provider} provider, ${stream ? 'stream' : 'non-stream'}`, async () => {
            echo[provider].answer = () => ({
              text: '',
              toolCalls: [{ id: 'call_echo_3', name: 'charge', args: { card: pii(2), contact: { email: pii(0) }, amount: 12 } }],
            });
            const r = await chat(h, client, MODELS[provider], 'respond', 'Charge the customer', stream);
            assert.equal(r.toolArgs.length, 1, JSON.stringify(r));
            assert.deepEqual(leaked(r.toolArgs[0]!), [], r.toolArgs[0]);
            assert.deepEqual(JSON.parse(r.toolArgs[0]!), { card: '[CREDIT_CARD_1]', contact: { email: '[EMAIL_1]' }, amount: 12 });
            const rec = await lineageFor(h, r.requestId);
            const rows = (rec.redactions ?? []).filter((x) => x.direction === 'response');
            assert.equal(rows.find((x) => x.detector === 'credit_card')?.count, 1, JSON.stringify(rows));
            assert.equal(rows.find((x) => x.detector === 'email')?.count, 1);
          });
        }
      }
    }

    const cases: { name: string; client: ClientKind; model: string; via: 'stock' | 'echo'; fake: 'openai' | 'anthropic' }[] = [
      { name: 'OpenAI SDK → stock OpenAI fake (word-split stream)', client: 'openai', model: 'gpt-4o-mini', via: 'stock', fake: 'openai' },
      { name: 'OpenAI SDK → stock Anthropic fake', client: 'openai', model: 'claude-sonnet', via: 'stock', fake: 'anthropic' },
      { name: 'Anthropic SDK → stock Anthropic fake', client: 'anthropic', model: 'claude-sonnet', via: 'stock', fake: 'anthropic' },
      { name: 'Anthropic SDK → stock OpenAI fake', client: 'anthropic', model: 'gpt-4o-mini', via: 'stock', fake: 'openai' },
      { name: 'OpenAI SDK → echo OpenAI fake (3-char deltas)', client: 'openai', model: 'echo-gpt', via: 'echo', fake: 'openai' },
      { name: 'Anthropic SDK → echo Anthropic fake (3-char deltas)', client: 'anthropic', model: 'echo-claude', via: 'echo', fake: 'anthropic' },
    ];
    for (const c of cases) {
      for (const stream of [false, true]) {
        it(`${c.name}, ${stream ? 'stream' : 'non-stream'}: client text is exactly the whole-text masking`, async () => {
          if (c.via === 'stock') h.fakes[c.fake]!.setNext({ type: 'reply', reply: { text: MODEL_TEXT } });
          else echo[c.fake].answer = () => ({ text: MODEL_TEXT });
          const r = await chat(h, c.client, c.model, 'respond', 'Tell me something', stream);
          assert.deepEqual(leaked(r.text), [], `PII reached the client: ${r.text}`);
          assert.equal(r.text, MODEL_TEXT_MASKED);
          if (stream) {
            assert.ok(r.deltas.length > 5, `streamed in pieces (${r.deltas.length})`);
            for (const d of r.deltas) assert.deepEqual(leaked(d), []);
          }
          const rec = await lineageFor(h, r.requestId);
          const rows = (rec.redactions ?? []).filter((x) => x.direction === 'response');
          for (const d of ['email', 'phone', 'credit_card', 'ssn', 'iban', 'openai_key', 'aws_access_key', 'aws_secret_key', 'jwt', 'private_key']) {
            const row = rows.find((x) => x.detector === d);
            assert.equal(row?.count, 1, `${d}: ${JSON.stringify(rows)}`);
            assert.equal(row?.action, 'mask');
            assert.ok((row?.locations ?? []).length > 0, 'a location (output channel) is recorded');
          }
          assert.deepEqual(leaked(JSON.stringify(rec)), [], 'lineage has no values');
        });
      }
    }
  });
});
