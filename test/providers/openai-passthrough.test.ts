// The OpenAI chat → OpenAI/Azure translator (openai.ts OpenAIChatPassthroughTranslator) against the general one
// (OpenAIChatTranslator over OpenAICore, what served these pairs before): same upstream requests, same client
// responses byte for byte, same errors, over varied bodies, writers, edits and upstream answers. Each comparison also
// counts how often the fast paths were taken, so the general path is never only compared with itself.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { OpenAIChatTranslator } from '../../service/providers/chat.ts';
import { OpenAIChatPassthroughTranslator, OpenAICore, openAIEndpoint, utf8Length } from '../../service/providers/openai.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import { provenOpenAIChat } from '../../service/providers/chat-fast-check.ts';
import { decodedExactly } from '../../service/providers/json-match.ts';
import { GatewayError } from '../../service/errors.ts';
import type { ClientRequest, TranslatedResponse, UpstreamRequest } from '../../service/providers/types.ts';
import { CLIENT_WRITERS, target } from './helpers.ts';
import { seeded } from '../support/seeded.ts';

type Json = Record<string, unknown>;
const PROVIDERS = ['openai', 'azure'] as const;

const user = { role: 'user', content: 'Summarise the notes, please.' };
const BODIES: Array<[string, Json]> = [
  ['bench workload', { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, user, { role: 'assistant', content: 'Sure.' }, user], max_tokens: 256, temperature: 0.2 }],
  ['stream', { model: 'smart', messages: [user], stream: true }],
  ['stream with include_usage', { model: 'smart', messages: [user], stream: true, stream_options: { include_usage: true } }],
  ['stream with include_usage false', { model: 'smart', messages: [user], stream: true, stream_options: { include_usage: false } }],
  ['tools', { model: 'smart', messages: [user, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } }] }, { role: 'tool', content: 'hits', tool_call_id: 'c1' }], tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object' } } }], tool_choice: 'auto' }],
  ['images (left to zod)', { model: 'smart', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] }],
  ['unknown key (left to zod)', { model: 'smart', messages: [user], metadata: { team: 'r&d' } }],
  ['unicode and escapes', { model: 'smärt-模型', messages: [{ role: 'user', content: 'Grüße 😀 "q" back\\slash\nnl \u0001 \u2028 </x>' }] }],
  ['model not first', { messages: [user], model: 'smart' }],
  ['undeclared key before a declared one (zod reorders)', { model: 'smart', metadata: { team: 'r&d' }, messages: [user], temperature: 1 }],
];

/** Edits a policy or redaction could make between parse and translation; some make the body invalid. */
const EDITS: Array<[string, (b: Json) => void]> = [
  ['none', () => {}],
  ['content masked, same length', (b) => {
    const m = (b.messages as Json[])[0]!;
    if (typeof m.content === 'string') m.content = '*'.repeat(m.content.length);
  }],
  ['model set', (b) => {
    b.model = 'other';
  }],
  ['temperature out of range', (b) => {
    b.temperature = 5;
  }],
  ['content no longer a string', (b) => {
    (b.messages as Json[])[0]!.content = 42;
  }],
  ['key added', (b) => {
    b.user = 'u-1';
  }],
  ['key removed and added back (order changes)', (b) => {
    const model = b.model;
    delete b.model;
    b.model = model;
  }],
];

type Outcome = { ok: UpstreamRequest } | { error: { kind: string; message: string; param: string | undefined } };

async function outcome(run: () => Promise<UpstreamRequest>): Promise<Outcome> {
  try {
    return { ok: await run() };
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return { error: { kind: err.kind, message: err.message, param: err.param } };
  }
}

function sameRequest(got: Outcome, want: Outcome, what: string): void {
  if ('error' in want) {
    assert.deepEqual(got, want, what);
    return;
  }
  assert.ok('ok' in got, `${what}: ${JSON.stringify(got)}`);
  assert.equal(got.ok.path, want.ok.path, what);
  assert.deepEqual(got.ok.headers, want.ok.headers, what);
  assert.ok(got.ok.body.equals(want.ok.body), `${what}: ${got.ok.body.toString('utf8').slice(0, 160)}`);
}

function general(provider: 'openai' | 'azure'): OpenAIChatTranslator {
  return new OpenAIChatTranslator(new OpenAICore(provider));
}

describe('OpenAI chat → OpenAI/Azure: the passthrough translator equals the general one', () => {
  test('getTranslator serves both providers with the passthrough translator', () => {
    for (const p of PROVIDERS) assert.ok(getTranslator('openai', 'chat', p) instanceof OpenAIChatPassthroughTranslator, p);
  });

  test('request: every body, writer and edit (valid or not), both providers', async () => {
    let unchangedProven = 0;
    let cases = 0;
    for (const [name, body] of BODIES) {
      for (const [writer, write] of CLIENT_WRITERS) {
        for (const [edit, apply] of EDITS) {
          for (const provider of PROVIDERS) {
            const raw = Buffer.from(write(body));
            // Two parses: each translator gets its own (mutable) request, edited the same way.
            const a = parseClientRequest('openai', 'chat', raw);
            const b = parseClientRequest('openai', 'chat', raw);
            apply(a.body);
            apply(b.body);
            if (a.proven === true && edit === 'none' && writer === 'compact' && name !== 'model not first') unchangedProven++;
            const t = target(provider);
            const want = await outcome(() => general(provider).request(b, t));
            const got = await outcome(() => new OpenAIChatPassthroughTranslator(provider).request(a, t));
            sameRequest(got, want, `${name} / ${writer} / ${edit} / ${provider}`);
            cases++;
          }
        }
      }
    }
    assert.ok(unchangedProven >= 10 && unchangedProven < cases / 4, `unchanged proven ${unchangedProven} of ${cases}`);
  });

  test('request: generated bodies and edits', async () => {
    const r = seeded(23);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const strings = ['hi', '', 'é', '"', '\\', '\n', '😀', 'a'.repeat(40), '</x>'];
    for (let i = 0; i < 600; i++) {
      const messages = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({ role: pick(['user', 'system', 'assistant']), content: pick(strings) + pick(strings) }));
      const body: Json = { model: pick(['m', 'gpt-4o', 'é']), messages };
      if (r() < 0.4) body.stream = r() < 0.7;
      if (r() < 0.3) body.temperature = pick([0, 0.2, 1, 2, 2.5]);
      if (r() < 0.2) body.max_tokens = pick([1, 256, 0, 1.5]);
      const raw = Buffer.from(r() < 0.8 ? JSON.stringify(body) : JSON.stringify(body, null, 1));
      let a: ClientRequest;
      let b: ClientRequest;
      try {
        a = parseClientRequest('openai', 'chat', raw);
        b = parseClientRequest('openai', 'chat', raw);
      } catch {
        continue; // invalid as sent: rejected at parse, before either translator
      }
      const e = r();
      for (const req of [a, b]) {
        const ms = req.body.messages as Json[];
        if (e < 0.2) ms[0]!.content = '*';
        else if (e < 0.3) req.body.temperature = 3;
        else if (e < 0.4) ms.push({ role: 'user', content: 'more' });
        else if (e < 0.5) req.body.n = 2;
      }
      const provider = pick(PROVIDERS);
      const want = await outcome(() => general(provider).request(b, target(provider)));
      const got = await outcome(() => new OpenAIChatPassthroughTranslator(provider).request(a, target(provider)));
      sameRequest(got, want, raw.toString('utf8'));
    }
  });

  test('parseClientRequest: `proven` is the proof of the body as parsed; a blank body is still "empty"', () => {
    for (const [name, body] of BODIES) {
      const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(body)));
      assert.equal(req.proven, provenOpenAIChat(JSON.parse(JSON.stringify(body)) as Json), name);
    }
    for (const blank of ['', '  \n\t ', '\uFEFF']) {
      assert.throws(
        () => parseClientRequest('openai', 'chat', Buffer.from(blank)),
        (err: unknown) => err instanceof GatewayError && err.message === 'The request body is empty; expected a JSON object.' && err.code === 'invalid_json',
        JSON.stringify(blank),
      );
    }
  });
});

// ---------------------------------------------------------------- responses

const completion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1700000000,
  model: 'gpt-4o-mini-eu',
  choices: [{ index: 0, message: { role: 'assistant', content: '1. Data drift. 2. GPU quota.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 380, completion_tokens: 18, total_tokens: 398, prompt_tokens_details: { cached_tokens: 12 }, completion_tokens_details: { reasoning_tokens: 0 } },
};

/** Upstream answers: [name, status, headers, bytes, forwardable (the bytes are JSON.stringify of their parse)]. */
function answers(): Array<[string, number, Record<string, string>, Buffer, boolean]> {
  const ct = { 'content-type': 'application/json' };
  const compact = JSON.stringify(completion);
  const unicode = JSON.stringify({ ...completion, choices: [{ ...completion.choices[0], message: { role: 'assistant', content: 'Grüße 😀 "q" \\ \n \u2028 </x> \uFFFD' } }] });
  const invalidUtf8 = Buffer.concat([Buffer.from(compact.slice(0, 120)), Buffer.from([0xf0, 0x90, 0x80]), Buffer.from(compact.slice(120))]);
  return [
    ['compact', 200, ct, Buffer.from(compact), true],
    ['compact, 201', 201, ct, Buffer.from(compact), true],
    ['unicode, escapes and a real U+FFFD', 200, ct, Buffer.from(unicode), true],
    ['pretty (as api.openai.com writes)', 200, ct, Buffer.from(JSON.stringify(completion, null, 2)), false],
    ['escaped slash', 200, ct, Buffer.from(JSON.stringify({ ...completion, id: 'a/b' }).replace('a/b', 'a\\/b')), false],
    ['\\u escapes', 200, ct, Buffer.from(compact.replace('Data', '\\u0044ata')), false],
    ['number written 1.0', 200, ct, Buffer.from(compact.replace('"index":0', '"index":0.0')), false],
    ['duplicate key', 200, ct, Buffer.from(compact.replace('"id":"chatcmpl-1"', '"id":"x","id":"chatcmpl-1"')), false],
    ['invalid UTF-8 in a string', 200, ct, invalidUtf8, false],
    ['gzip', 200, { ...ct, 'content-encoding': 'gzip' }, gzipSync(Buffer.from(compact)), true],
    ['no usage, no finish', 200, ct, Buffer.from(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [] })), true],
    ['not a completion', 200, ct, Buffer.from('{"id":"x"}'), false],
    ['an array', 200, ct, Buffer.from('[1]'), false],
    ['not JSON', 200, ct, Buffer.from('{"id":'), false],
    ['empty', 200, ct, Buffer.alloc(0), false],
    ['bad gzip', 200, { ...ct, 'content-encoding': 'gzip' }, Buffer.from('nope'), false],
    ['400 with param', 400, ct, Buffer.from('{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":"bad"}}'), false],
    ['429', 429, { ...ct, 'retry-after': '3' }, Buffer.from('{"error":{"message":"slow down"}}'), false],
    ['500', 500, ct, Buffer.from('oops'), false],
  ];
}

function sameResponse(got: TranslatedResponse, want: TranslatedResponse, what: string): void {
  assert.equal(got.status, want.status, what);
  assert.deepEqual(got.headers, want.headers, what);
  assert.ok(got.body.equals(want.body), `${what}: ${got.body.toString('utf8').slice(0, 160)} vs ${want.body.toString('utf8').slice(0, 160)}`);
  assert.deepEqual(got.json, want.json, what);
  assert.deepEqual(got.usage, want.usage, what);
  assert.equal(got.finishReason, want.finishReason, what);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), what);
}

describe('OpenAI/Azure chat responses: the passthrough translator equals the general one', () => {
  test('every upstream answer, both providers', () => {
    const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(BODIES[0]![1])));
    let forwarded = 0;
    for (const [name, status, headers, bytes, forwardable] of answers()) {
      for (const provider of PROVIDERS) {
        const want = general(provider).response(status, headers, bytes, req);
        const got = new OpenAIChatPassthroughTranslator(provider).response(status, headers, bytes, req);
        sameResponse(got, want, `${name} / ${provider}`);
        // A forwardable answer is passed on as the bytes themselves, no serialization.
        if (forwardable && !headers['content-encoding']) {
          assert.equal(got.body, bytes, `${name}: forwarded`);
          forwarded++;
        }
      }
    }
    assert.ok(forwarded >= 8, `forwarded ${forwarded}`);
  });

  test('generated completions, compact or not', () => {
    const r = seeded(31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(BODIES[0]![1])));
    const texts = ['ok', '', 'é', '"', '\\', '\n', '😀', '\ud800', '\u001f', '</x>', '\uFFFD'];
    for (let i = 0; i < 500; i++) {
      const c: Json = { id: pick(texts), object: 'chat.completion', created: pick([0, 1.5, -1, 1e21, 1700000000]), model: pick(texts), choices: [{ index: 0, message: { role: 'assistant', content: pick([null, pick(texts) + pick(texts)]) }, finish_reason: pick(['stop', 'length', null]) }] };
      if (r() < 0.7) c.usage = { prompt_tokens: pick([0, 3, 2.5]), completion_tokens: pick([1, 7]), total_tokens: 9 };
      if (r() < 0.2) c.extra = { nested: [pick(texts), 1, null, true] };
      const w = r();
      const text = w < 0.6 ? JSON.stringify(c) : w < 0.8 ? JSON.stringify(c, null, 1) : JSON.stringify(c).replaceAll(':', ': ');
      const bytes = Buffer.from(text);
      const provider = pick(PROVIDERS);
      const h = { 'content-type': 'application/json' };
      sameResponse(new OpenAIChatPassthroughTranslator(provider).response(200, h, bytes, req), general(provider).response(200, h, bytes, req), text);
    }
  });

  test('decodedExactly answers isUtf8 for the bytes behind a decoded text', () => {
    const r = seeded(41);
    const pieces = [[0x41], [0xc3, 0xa9], [0xef, 0xbf, 0xbd], [0xf0, 0x9f, 0x98, 0x80], [0xff], [0xc3], [0xf0, 0x90, 0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80], [0x22]];
    let invalid = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(r() * 6) }, () => pieces[Math.floor(r() * pieces.length)]!).flat());
      const expected = isUtf8(bytes);
      if (!expected) invalid++;
      assert.equal(decodedExactly(bytes, bytes.toString('utf8')), expected, bytes.toString('hex'));
    }
    assert.ok(invalid > 500 && invalid < 2500, `invalid ${invalid}`);
  });
});

describe('small helpers of the OpenAI/Azure request path equal the built-ins they stand in for', () => {
  const r = seeded(53);
  const pieces = ['a', 'Z', '0', '-', '_', '.', '~', '!', '*', "'", '(', ')', ' ', '/', '?', '#', '%', '@', ':', 'é', '模', '😀', '\ud800', '\udc00', '"', '\\', '\n'];
  const gen = (): string => {
    let s = '';
    for (let n = Math.floor(r() * 6); n > 0; n--) s += pieces[Math.floor(r() * pieces.length)]!;
    return s;
  };

  test('utf8Length(JSON.stringify(s)) is Buffer.byteLength of it', () => {
    for (let i = 0; i < 5000; i++) {
      const json = JSON.stringify(gen());
      assert.equal(utf8Length(json), Buffer.byteLength(json), json);
    }
  });

  test('the Azure path encodes the deployment and version as encodeURIComponent does', () => {
    let plain = 0;
    for (let i = 0; i < 3000; i++) {
      const model = gen() || 'm';
      const version = r() < 0.5 ? '2024-10-21' : gen();
      const t = target('azure', { apiVersion: version });
      t.deployment.upstreamModel = model;
      let want: string;
      try {
        want = `/openai/deployments/${encodeURIComponent(model)}/chat/completions?api-version=${encodeURIComponent(version)}`;
      } catch (err) {
        // A lone surrogate: encodeURIComponent throws, and so does the path.
        assert.throws(() => openAIEndpoint('azure', t, 'chat/completions'), { name: (err as Error).name });
        continue;
      }
      assert.equal(openAIEndpoint('azure', t, 'chat/completions').path, want, JSON.stringify([model, version]));
      if (encodeURIComponent(model) === model) plain++;
    }
    assert.ok(plain > 200 && plain < 2800, `plain ${plain}`);
  });
});
