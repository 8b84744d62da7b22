// The "forward the client's bytes" fast path (json-match.ts, openai.ts forwardedChatBody) against the general path:
// isJsonOf must answer exactly JSON.stringify(value) === text, and the upstream body of an OpenAI/Azure chat request
// must be byte-identical to the spread + JSON.stringify copy Tollgate always sent, for every request, whether the
// fast path takes it or not.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesAreJsonOf, isJsonOf } from '../../service/providers/json-match.ts';
import { forwardedChatBody } from '../../service/providers/openai.ts';
import { openAIBody } from '../../service/providers/chat.ts';
import { getTranslator, parseClientRequest } from '../../service/providers/index.ts';
import type { ClientRequest } from '../../service/providers/types.ts';
import { CLIENT_WRITERS, target, UPSTREAM_MODEL } from './helpers.ts';
import { seeded } from '../support/seeded.ts';

type Json = Record<string, unknown>;

const PIECES = ['hello', ' world', '"', '\\', '\n', '\t', '\r', '\b', '\f', '\u0001', '\u001f', '\u007f', 'é', '日本語', '😀', '\ud800', '\udc00', '\u2028', '/', '</x>', 'a'.repeat(40), ''];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.2, 0.7, 1e21, 1e-7, 123456789012345680000, 5e-324, 1.7976931348623157e308, 3.14159, -2.5, 42, 9007199254740993];
const KEYS = ['model', 'messages', 'content', 'a', 'b', '1', '0', 'é', 'q"uote', 'back\\slash', 'new\nline', '', 'x'.repeat(20)];

function genString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)]!;
  return s;
}

function genValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 0 ? 8 : 5));
  switch (k) {
    case 0:
      return genString(r);
    case 1:
      return NUMBERS[Math.floor(r() * NUMBERS.length)]!;
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return genString(r);
    case 5:
    case 6: {
      const o: Json = {};
      const n = Math.floor(r() * 4);
      for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = genValue(r, depth - 1);
      return o;
    }
    default: {
      const n = Math.floor(r() * 4);
      return Array.from({ length: n }, () => genValue(r, depth - 1));
    }
  }
}

/** Texts that parse to (nearly) the same value but are not, or not always, its JSON.stringify form. */
function variants(canonical: string, r: () => number): string[] {
  const out = [canonical, JSON.stringify(JSON.parse(canonical), null, 2), ` ${canonical}`];
  // Python's json.dumps defaults: ", " and ": " separators, non-ASCII written as \uXXXX.
  out.push(canonical.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  out.push(canonical.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`));
  out.push(canonical.replaceAll('/', '\\/'));
  out.push(canonical.replaceAll('\\n', '\\u000a'));
  out.push(canonical.replaceAll('\\u001f', '\\u001F'));
  out.push(canonical.replace(/:0([,}\]])/, ':0.0$1'));
  out.push(canonical.replace(/:1([,}\]])/, ':1e0$1'));
  out.push(canonical.replace(/^\{"/, '{"a":0,"'));
  if (r() < 0.5) out.push(canonical.replace(/^\{"([^"\\]*)":/, '{"$1":1,"$1":'));
  return out.filter((t) => {
    try {
      JSON.parse(t);
      return true;
    } catch {
      return false;
    }
  });
}

/** Edits a policy or redaction could make after parsing (in place, on a copy). */
function mutate(v: unknown, r: () => number): unknown {
  if (Array.isArray(v)) {
    if (v.length > 0 && r() < 0.5) v[Math.floor(r() * v.length)] = mutate(v[Math.floor(r() * v.length)], r);
    else if (r() < 0.3) v.push('x');
    return v;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Json;
    const keys = Object.keys(o);
    const pick = r();
    if (keys.length > 0 && pick < 0.5) {
      const key = keys[Math.floor(r() * keys.length)]!;
      o[key] = mutate(o[key], r);
    } else if (pick < 0.6) o.added = undefined;
    else if (pick < 0.7) o.nan = Number.NaN;
    else if (keys.length > 0 && pick < 0.85) delete o[keys[0]!];
    else o.extra = 'e';
    return o;
  }
  if (typeof v === 'string') {
    // Same length, other characters (as masking does), or a character JSON.stringify escapes.
    if (v.length > 0 && r() < 0.6) return `${'*'.repeat(v.length)}`;
    return `${v}"`;
  }
  if (typeof v === 'number') return v === 0 ? -0 : v + 1;
  return v === null ? 0 : null;
}

function hasUndefined(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasUndefined);
  if (v !== null && typeof v === 'object') return Object.values(v).some((x) => x === undefined || hasUndefined(x));
  return false;
}

describe('isJsonOf agrees with JSON.stringify', () => {
  test('over generated values, texts and edits', () => {
    const r = seeded(17);
    let same = 0;
    let differ = 0;
    for (let i = 0; i < 3000; i++) {
      const v = genValue(r, 4);
      for (const text of variants(JSON.stringify(v), r)) {
        const parsed = JSON.parse(text) as unknown;
        const candidates = [parsed, mutate(structuredClone(parsed), r)];
        for (const value of candidates) {
          // Undefined members (which JSON.stringify leaves out) are answered "no" by design: the caller serializes.
          const expected = JSON.stringify(value) === text && !hasUndefined(value);
          assert.equal(isJsonOf(text, value), expected, `text ${JSON.stringify(text)} value ${JSON.stringify(value)}`);
          if (expected) same++;
          else differ++;
        }
      }
    }
    // Both answers must be exercised, or the comparison proves nothing.
    assert.ok(same > 3000 && differ > 3000, `same ${same}, differ ${differ}`);
  });

  test('values JSON.stringify writes differently from what they look like', () => {
    // Never a false "yes"; members JSON.stringify leaves out are a "no" by design.
    assert.equal(isJsonOf('{"a":1}', { a: 1, b: undefined }), false);
    assert.equal(isJsonOf('[null]', [undefined]), false);
    assert.equal(isJsonOf('{"a":"x"}', Object.assign(Object.create({ inherited: 1 }) as Json, { a: 'x' })), false);
    const cases: Array<[string, unknown]> = [
      ['{"a":null}', { a: Number.NaN }],
      ['{"a":null}', { a: Number.POSITIVE_INFINITY }],
      ['{"1":2,"b":1}', { b: 1, 1: 2 }],
      ['{"a":"x"}', { a: 'x', toJSON: () => ({ a: 'y' }) }],
      ['{"a":"\\ud800"}', { a: '\ud800' }],
      ['{"a":"😀"}', { a: '😀' }],
      ['{"a":"\\ud83d\\ude00"}', { a: '😀' }],
      ['{"a":"b","c":1}', { 'a":"b': undefined, c: 1 }],
      ['{"a":1,"b":2}', { 'a":1,"b': 2 }],
    ];
    for (const [text, value] of cases) {
      let expected: boolean;
      try {
        expected = JSON.stringify(value) === text;
      } catch {
        expected = false;
      }
      assert.equal(isJsonOf(text, value), expected, text);
    }
  });

  test('strings written into the text as they are, escapes or not (the short-string shortcut)', () => {
    // A string placed raw between quotes is JSON only sometimes, and JSON.stringify's form of it only sometimes:
    // `\"` raw is the JSON of `"`, not of `\"`. Both answers must match JSON.stringify, for keys and values.
    const r = seeded(29);
    const pieces = ['a', 'role', '"', '\\', '\\"', '\\n', '\\u0041', '\n', '\u0001', 'é', '😀', '\\ud800', '\\udc00', '\ud83d', 'x'.repeat(31), 'y'.repeat(33), ''];
    let yes = 0;
    let no = 0;
    for (let i = 0; i < 20000; i++) {
      let s = '';
      for (let n = Math.floor(r() * 4); n > 0; n--) s += pieces[Math.floor(r() * pieces.length)]!;
      for (const text of [`"${s}"`, `{"${s}":1}`, `["${s}","${s}"]`]) {
        // A text decoded from UTF-8 holds no lone surrogate (isJsonOf's precondition).
        if (Buffer.from(text).toString('utf8') !== text) continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          continue;
        }
        const literal = text.startsWith('"') ? s : text.startsWith('{') ? { [s]: 1 } : [s, s];
        for (const value of [literal, parsed]) {
          const expected = JSON.stringify(value) === text;
          assert.equal(isJsonOf(text, value), expected, `text ${JSON.stringify(text)} value ${JSON.stringify(value)}`);
          if (expected) yes++;
          else no++;
        }
      }
    }
    assert.ok(yes > 5000 && no > 5000, `yes ${yes}, no ${no}`);
  });

  test('an enumerable key on Object.prototype is never taken for a member', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1;
    try {
      // for…in would visit `polluted` on every plain object; JSON.stringify does not write it.
      assert.equal(isJsonOf('{"a":1,"polluted":1}', { a: 1 }), false);
      assert.equal(isJsonOf('{"a":1}', { a: 1 }), false); // "no" is always safe
    } finally {
      delete proto.polluted;
    }
    assert.equal(isJsonOf('{"a":1}', { a: 1 }), true);
  });

  test('bytes that are not valid UTF-8 are never taken for their text', () => {
    const bytes = Buffer.concat([Buffer.from('{"a":"x'), Buffer.from([0xff]), Buffer.from('"}')]);
    const text = bytes.toString('utf8');
    const value = JSON.parse(text) as unknown;
    assert.equal(isJsonOf(text, value), true);
    assert.equal(bytesAreJsonOf(bytes, text, value), false);
    assert.equal(bytesAreJsonOf(Buffer.from(text), text, value), true);
  });
});

// ---------------------------------------------------------------- the upstream body of an OpenAI/Azure chat request

/** Tollgate's upstream body before the fast path existed (openai.ts at a487bce), the oracle. */
function previousUpstreamBody(body: Json, stream: boolean, upstreamModel: string): Buffer {
  const out: Json = { ...body, model: upstreamModel };
  if (stream) {
    const so = body.stream_options !== null && typeof body.stream_options === 'object' && !Array.isArray(body.stream_options) ? body.stream_options : {};
    out.stream = true;
    out.stream_options = { ...so, include_usage: true };
  }
  return Buffer.from(JSON.stringify(out));
}

const user = { role: 'user', content: 'Summarise the notes, please.' };
const REQUESTS: Array<[string, Json]> = [
  ['bench workload', { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, user, { role: 'assistant', content: 'Sure.' }, user], max_tokens: 256, temperature: 0.2 }],
  ['stream without stream_options', { model: 'smart', messages: [user], stream: true }],
  ['stream with include_usage', { model: 'smart', messages: [user], stream: true, stream_options: { include_usage: true } }],
  ['stream with include_usage false', { model: 'smart', messages: [user], stream: true, stream_options: { include_usage: false } }],
  ['stream with empty stream_options', { model: 'smart', messages: [user], stream: true, stream_options: {} }],
  ['stream with null stream_options', { model: 'smart', messages: [user], stream: true, stream_options: null }],
  ['stream false', { model: 'smart', messages: [user], stream: false, stream_options: { include_usage: true } }],
  ['tools and tool calls', { model: 'smart', messages: [user, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: '{"q":"caf\\u00e9 \\"x\\""}' } }] }, { role: 'tool', content: '{"hits":[1,2]}', tool_call_id: 'c1' }], tools: [{ type: 'function', function: { name: 'search', description: 'Search docs', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } }], tool_choice: 'auto' }],
  ['images', { model: 'smart', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } }] }] }],
  ['n > 1 and numbers', { model: 'smart', messages: [user], n: 3, temperature: 0.7, top_p: 0.95, seed: -12345, presence_penalty: -1.5, frequency_penalty: 1e-7, max_completion_tokens: 9007199254740991 }],
  ['unicode and escapes', { model: 'smärt-模型', messages: [{ role: 'user', content: 'Grüße 日本語 😀 "quoted" back\\slash\nnew line\ttab \u0001 \u2028 </script>' }] }],
  ['nested objects and unknown keys', { model: 'smart', messages: [user], response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object', properties: { a: { type: 'array', items: { type: 'number' } } } } } }, metadata: { team: 'r&d', tags: ['a', 'b'] }, models: ['smart', 'fast'] }],
  ['model not first', { messages: [user], model: 'smart' }],
  ['long conversation', { model: 'smart', messages: Array.from({ length: 40 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `turn ${i}: ${'lorem ipsum '.repeat(i)}` })) }],
];

/** Edits made between parsing and translation (policies, redaction). */
const EDITS: Array<[string, (b: Json) => void]> = [
  ['none', () => {}],
  ['content masked, same length', (b) => {
    const m = (b.messages as Json[])[0]!;
    if (typeof m.content === 'string') m.content = '*'.repeat(m.content.length);
  }],
  ['content grew an escape', (b) => {
    const m = (b.messages as Json[])[0]!;
    if (typeof m.content === 'string') m.content = `${m.content}"`;
  }],
  ['model set by a policy', (b) => {
    b.model = 'other';
  }],
  ['stream_options dropped', (b) => {
    delete b.stream_options;
  }],
  ['key added', (b) => {
    b.user = 'u-1';
  }],
];

async function upstreamBody(provider: 'openai' | 'azure', req: ClientRequest): Promise<Buffer> {
  return (await getTranslator('openai', 'chat', provider).request(req, target(provider))).body;
}

describe('OpenAI/Azure chat upstream body: forwarded bytes equal the serialized copy', () => {
  test('every request, writer and edit, both providers', async () => {
    let forwarded = 0;
    let cases = 0;
    for (const [name, body] of REQUESTS) {
      for (const [writer, write] of CLIENT_WRITERS) {
        for (const [edit, apply] of EDITS) {
          for (const provider of ['openai', 'azure'] as const) {
            const raw = Buffer.from(write(body));
            const req = parseClientRequest('openai', 'chat', raw);
            apply(req.body);
            const expected = previousUpstreamBody(openAIBody(req, true) as Json, req.stream, UPSTREAM_MODEL[provider]);
            const got = await upstreamBody(provider, req);
            // Buffer.equals, not a string diff: node's diff of two long strings can take minutes.
            assert.ok(got.equals(expected), `${name} / ${writer} / ${edit} / ${provider}: ${got.toString('utf8').slice(0, 200)}`);
            const ctx = { model: req.model, stream: req.stream, raw: req.raw, rawText: req.rawText };
            if (forwardedChatBody(openAIBody(req, true), ctx, UPSTREAM_MODEL[provider])) forwarded++;
            cases++;
          }
        }
      }
    }
    // The fast path must carry the common cases (compact, unedited), or this compares the general path with itself.
    assert.ok(forwarded >= 2 * 10 && forwarded < cases, `forwarded ${forwarded} of ${cases}`);
  });

  test('the common requests take the fast path', () => {
    for (const name of ['bench workload', 'stream without stream_options', 'stream with include_usage', 'tools and tool calls', 'unicode and escapes', 'long conversation']) {
      const body = REQUESTS.find(([n]) => n === name)![1];
      const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(body)));
      const ctx = { model: req.model, stream: req.stream, raw: req.raw, rawText: req.rawText };
      const fast = forwardedChatBody(openAIBody(req, true), ctx, 'up');
      assert.ok(fast, name);
      assert.ok(fast.equals(previousUpstreamBody(openAIBody(req, true) as Json, req.stream, 'up')), name);
    }
  });

  test('a body that is not valid UTF-8 is re-serialized, as before', async () => {
    const raw = Buffer.concat([Buffer.from('{"model":"m","messages":[{"role":"user","content":"a'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]);
    const req = parseClientRequest('openai', 'chat', raw);
    const got = await upstreamBody('openai', req);
    assert.ok(got.equals(previousUpstreamBody(req.body, false, UPSTREAM_MODEL.openai)), got.toString('utf8'));
    assert.ok(!got.subarray(got.length - 10).equals(raw.subarray(raw.length - 10)), 'the invalid byte is not forwarded');
  });

  test('generated bodies with random edits', async () => {
    const r = seeded(5);
    for (let i = 0; i < 500; i++) {
      const extra = genValue(r, 3);
      const content = genString(r);
      const body: Json = { model: genString(r) || 'm', messages: [{ role: 'user', content }], ...(r() < 0.5 ? { stream: true } : {}), ...(r() < 0.3 ? { stream_options: { include_usage: true } } : {}), metadata: extra, temperature: NUMBERS[Math.floor(r() * 3)] };
      const req = parseClientRequest('openai', 'chat', Buffer.from(JSON.stringify(body)));
      if (r() < 0.5) mutate(req.body, r);
      let expected: Buffer;
      try {
        expected = previousUpstreamBody(openAIBody(req, true) as Json, req.stream, UPSTREAM_MODEL.openai);
      } catch {
        continue; // an edit made it invalid: validation rejects it either way
      }
      assert.ok((await upstreamBody('openai', req)).equals(expected), JSON.stringify(body));
    }
  });
});
