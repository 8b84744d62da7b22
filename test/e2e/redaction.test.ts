// PII redaction end to end: official SDK → real Envoy → Tollgate (gRPC) → fake providers.
// Every message shape, for the OpenAI-compatible and the Anthropic fake provider: the provider's raw request body
// holds none of the original PII, and the lineage record has counts and locations, never the values.
// Then the actions (mask, hash, block, pseudonymize), each selected by a CEL policy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { LineageRecord } from '../../service/lineage/record.ts';
import type { RecordedRequest } from '../support/fake-providers.ts';
import { KEYS, eventually, startHarness, type Harness } from '../support/harness.ts';

// ---------------------------------------------------------------------------------------------- test data

const PEM_LINES = [
  'MIIEowIBAAKCAQEA7bq98dZXkS2pQh3V9xYkLm4nTqWcZ8rU1jFa0oPe2sGh6Ty',
  'q3RbXc5vLp0Ww8sN2mKdF7hJg4aZe1tYu9iOo6P5lAs3DfGh2JkLz8XcVbNm4QwE',
];
const PII = {
  email: 'jane.doe@example.com',
  phone: '+1 415-555-2671',
  credit_card: '4111 1111 1111 1111',
  ssn: '123-45-6789',
  iban: 'DE89 3704 0044 0532 0130 00',
  openai_key: 'sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456',
  aws_access_key: 'AKIAQ3EGRTZL5XWN7J2B',
  aws_secret_key: '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',
  jwt: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  private_key: `-----BEGIN RSA PRIVATE KEY-----\n${PEM_LINES.join('\n')}\n-----END RSA PRIVATE KEY-----`,
} as const;
type Det = keyof typeof PII;
const DETECTORS = Object.keys(PII) as Det[];

/** One text holding every kind of PII once. */
const TEXT =
  `Contact ${PII.email} or call ${PII.phone}. Card ${PII.credit_card}, SSN ${PII.ssn}, IBAN ${PII.iban}. ` +
  `OpenAI key ${PII.openai_key}. AWS access key ${PII.aws_access_key} secret ${PII.aws_secret_key}. ` +
  `Token ${PII.jwt}. Key:\n${PII.private_key}\nThanks.`;

/** Every spelling of the values that must not reach a provider (or lineage). */
const NEEDLES: string[] = [
  PII.email,
  PII.phone,
  PII.credit_card,
  PII.ssn,
  PII.iban,
  PII.openai_key,
  PII.aws_access_key,
  PII.aws_secret_key,
  PII.jwt.split('.')[1]!, // the payload and the signature of the token
  PII.jwt.split('.')[2]!,
  ...PEM_LINES,
];
/** Digit/letter-only forms, searched in text squeezed to [0-9A-Za-z@.]. */
const SQUEEZED = ['4155552671', '4111111111111111', '123456789', 'DE89370400440532013000'];

/** Every string leaf (and the leaves of JSON held in strings), for an escape-proof search. */
function leaves(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') {
    out.push(v);
    if (/^\s*[[{]/.test(v)) {
      try {
        leaves(JSON.parse(v), out);
      } catch {
        /* not JSON */
      }
    }
  } else if (Array.isArray(v)) for (const x of v) leaves(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      leaves(x, out);
    }
  }
  return out;
}

/** The PII spellings found in `raw` (a request body, a serialized lineage record, …). */
function leaksIn(raw: string): string[] {
  let decoded = raw;
  try {
    decoded = `${raw}\n${leaves(JSON.parse(raw)).join('\n')}`;
  } catch {
    /* raw text only */
  }
  const squeezed = decoded.replace(/[^0-9A-Za-z@.]/g, '');
  return [...NEEDLES.filter((n) => decoded.includes(n)), ...SQUEEZED.filter((n) => squeezed.includes(n))];
}

// ---------------------------------------------------------------------------------------------- config

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

const EXTRA =
  policy('mask-all', 'mask', `    - name: everything\n      redact: {detectors: ['*'], action: mask}`) +
  policy('hash-pii', 'hash', `    - name: pii\n      redact: {detectors: [pii, secrets], action: hash}`) +
  policy(
    'block-cards',
    'block',
    `    - name: cards-and-ssn\n      redact: {detectors: [credit_card, ssn], action: block}\n    - name: the-rest\n      redact: {detectors: ['*'], action: mask}`,
  ) +
  policy('pseudo', 'pseudo', `    - name: contact\n      redact: {detectors: [email, phone, credit_card, iban], action: pseudonymize}\n    - name: secrets\n      redact: {detectors: [secrets], action: mask}`);

const REDACTION_SECRET = 'e2e-redaction-secret-0123456789abcdef';

// ---------------------------------------------------------------------------------------------- helpers

const openai = (h: Harness, mode: string, key = KEYS.acme) =>
  new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0, timeout: 20000, defaultHeaders: { 'x-redaction-mode': mode } });
const anthropic = (h: Harness, mode: string, key = KEYS.acme) =>
  new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, timeout: 20000, defaultHeaders: { 'x-redaction-mode': mode } });

async function lineageFor(h: Harness, requestId: string | null): Promise<LineageRecord> {
  assert.ok(requestId, 'x-request-id header');
  await eventually(() => h.lineage.some((r) => r.requestId === requestId), 5000);
  return h.lineage.find((r) => r.requestId === requestId)!;
}

/** Waits for the next request a fake records after `before`. */
function lastRequest(h: Harness, kind: 'openai' | 'anthropic', before: number): RecordedRequest {
  const reqs = h.fakes[kind]!.requests;
  assert.equal(reqs.length, before + 1, `exactly one request reached the ${kind} fake`);
  return reqs.at(-1)!;
}

// ---------------------------------------------------------------------------------------------- shapes

type Target = { model: string; fake: 'openai' | 'anthropic' };
const OPENAI_UP: Target = { model: 'gpt-4o-mini', fake: 'openai' };
const ANTHROPIC_UP: Target = { model: 'claude-sonnet', fake: 'anthropic' };
const EMBED_UP: Target = { model: 'text-embedding-3-small', fake: 'openai' };

interface Shape {
  name: string;
  client: 'openai' | 'anthropic';
  endpoint: 'chat' | 'embeddings';
  targets: Target[];
  /** Body without `model`; PII appears only in the slot under test. */
  body: Record<string, unknown>;
  /** Where the lineage record must say the PII was (JSON path into the client request). */
  location: string;
  /** How many times TEXT appears (each detector's count). */
  copies?: number;
}

const toolDef = (description: string) => ({
  type: 'function' as const,
  function: {
    name: 'lookup_customer',
    description,
    parameters: { type: 'object', properties: { q: { type: 'string', description: 'what to look up' } }, required: ['q'] },
  },
});

const SHAPES: Shape[] = [
  {
    name: 'OpenAI chat: plain string content',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: { messages: [{ role: 'user', content: TEXT }] },
    location: 'messages[0].content',
  },
  {
    name: 'OpenAI chat: content-part array',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: { messages: [{ role: 'user', content: [{ type: 'text', text: 'Please help.' }, { type: 'text', text: TEXT }] }] },
    location: 'messages[0].content[1].text',
  },
  {
    name: 'OpenAI chat: system message',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: { messages: [{ role: 'system', content: TEXT }, { role: 'user', content: 'Hello' }] },
    location: 'messages[0].content',
  },
  {
    name: 'OpenAI chat: developer message (content parts)',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: { messages: [{ role: 'developer', content: [{ type: 'text', text: TEXT }] }, { role: 'user', content: 'Hello' }] },
    location: 'messages[0].content[0].text',
  },
  {
    name: 'OpenAI chat: tool definition description',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: { messages: [{ role: 'user', content: 'Find the customer' }], tools: [toolDef(TEXT)] },
    location: 'tools[0].function.description',
  },
  {
    name: 'OpenAI chat: assistant tool_calls arguments',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: {
      messages: [
        { role: 'user', content: 'Find the customer' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_customer', arguments: JSON.stringify({ q: TEXT }) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'found' },
      ],
      tools: [toolDef('Looks a customer up')],
    },
    location: 'messages[1].tool_calls[0].function.arguments[json].q',
  },
  {
    name: 'OpenAI chat: tool result',
    client: 'openai',
    endpoint: 'chat',
    targets: [OPENAI_UP, ANTHROPIC_UP],
    body: {
      messages: [
        { role: 'user', content: 'Find the customer' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_customer', arguments: '{"q":"jane"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: TEXT },
      ],
      tools: [toolDef('Looks a customer up')],
    },
    location: 'messages[2].content',
  },
  {
    name: 'OpenAI embeddings: input string',
    client: 'openai',
    endpoint: 'embeddings',
    targets: [EMBED_UP],
    body: { input: TEXT },
    location: 'input',
  },
  {
    name: 'OpenAI embeddings: input array',
    client: 'openai',
    endpoint: 'embeddings',
    targets: [EMBED_UP],
    body: { input: ['plain words', TEXT, TEXT] },
    location: 'input[1]',
    copies: 2,
  },
  {
    name: 'Anthropic messages: top-level system string',
    client: 'anthropic',
    endpoint: 'chat',
    targets: [ANTHROPIC_UP, OPENAI_UP],
    body: { max_tokens: 64, system: TEXT, messages: [{ role: 'user', content: 'Hello' }] },
    location: 'system',
  },
  {
    name: 'Anthropic messages: system blocks',
    client: 'anthropic',
    endpoint: 'chat',
    targets: [ANTHROPIC_UP, OPENAI_UP],
    body: { max_tokens: 64, system: [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: TEXT }], messages: [{ role: 'user', content: 'Hello' }] },
    location: 'system[1].text',
  },
  {
    name: 'Anthropic messages: user text blocks',
    client: 'anthropic',
    endpoint: 'chat',
    targets: [ANTHROPIC_UP, OPENAI_UP],
    body: { max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: TEXT }] }] },
    location: 'messages[0].content[0].text',
  },
  {
    name: 'Anthropic messages: tool_result blocks (string and block content)',
    client: 'anthropic',
    endpoint: 'chat',
    targets: [ANTHROPIC_UP, OPENAI_UP],
    body: {
      max_tokens: 64,
      tools: [{ name: 'lookup_customer', description: 'Looks a customer up', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }],
      messages: [
        { role: 'user', content: 'Find the customer' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'toolu_1', name: 'lookup_customer', input: { q: 'jane' } },
            { type: 'tool_use', id: 'toolu_2', name: 'lookup_customer', input: { q: 'doe' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: TEXT },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: TEXT }] },
          ],
        },
      ],
    },
    location: 'messages[2].content[0].content',
    copies: 2,
  },
  {
    name: 'Anthropic messages: tool definition and tool_use input',
    client: 'anthropic',
    endpoint: 'chat',
    targets: [ANTHROPIC_UP, OPENAI_UP],
    body: {
      max_tokens: 64,
      tools: [{ name: 'lookup_customer', description: TEXT, input_schema: { type: 'object', properties: { q: { type: 'string' } } } }],
      messages: [
        { role: 'user', content: 'Find the customer' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup_customer', input: { q: TEXT } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'found' }] },
      ],
    },
    location: 'tools[0].description',
    copies: 2,
  },
];

async function send(h: Harness, shape: Shape, target: Target, mode = 'mask'): Promise<string | null> {
  const body = { ...structuredClone(shape.body), model: target.model };
  if (shape.client === 'anthropic') {
    const { response } = await anthropic(h, mode)
      .messages.create(body as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    return response.headers.get('x-request-id');
  }
  if (shape.endpoint === 'embeddings') {
    const { data, response } = await openai(h, mode)
      .embeddings.create(body as unknown as OpenAI.EmbeddingCreateParams)
      .withResponse();
    assert.ok(data.data.length >= 1);
    return response.headers.get('x-request-id');
  }
  const { data, response } = await openai(h, mode)
    .chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  return response.headers.get('x-request-id');
}

describe('e2e redaction: every message shape, both provider kinds', { timeout: 180000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ extraYaml: EXTRA, tollgate: { redactionSecret: REDACTION_SECRET } });
  });
  after(async () => {
    await h.close();
  });

  it('sanity: without a redaction policy the PII does reach the provider (the leak check can fail)', async () => {
    const before = h.fakes.openai!.requests.length;
    await openai(h, 'none').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: TEXT }] });
    const raw = lastRequest(h, 'openai', before).body.toString('utf8');
    assert.deepEqual(leaksIn(raw).sort(), [...NEEDLES, ...SQUEEZED].sort());
  });

  for (const shape of SHAPES) {
    for (const target of shape.targets) {
      it(`${shape.name} → ${target.fake} provider (${target.model}): no PII upstream, lineage has counts + locations`, async () => {
        const before = h.fakes[target.fake]!.requests.length;
        const requestId = await send(h, shape, target);
        const got = lastRequest(h, target.fake, before);
        const raw = got.body.toString('utf8');
        assert.deepEqual(leaksIn(raw), [], `PII reached the provider: ${raw.slice(0, 2000)}`);
        // The placeholders took their place (the content was not simply dropped).
        for (const d of DETECTORS) assert.ok(raw.includes(`[${d.toUpperCase()}_1]`), `placeholder for ${d} in ${raw.slice(0, 1500)}`);

        const rec = await lineageFor(h, requestId);
        assert.equal(rec.outcome, 'success');
        const rows = (rec.redactions ?? []).filter((r) => r.direction === 'request');
        const copies = shape.copies ?? 1;
        for (const d of DETECTORS) {
          const row = rows.find((r) => r.detector === d);
          assert.ok(row, `lineage row for ${d}: ${JSON.stringify(rows)}`);
          assert.equal(row.action, 'mask');
          assert.equal(row.count, copies, `${d} count`);
          assert.ok(row.locations?.includes(shape.location), `${d} location ${shape.location} in ${JSON.stringify(row.locations)}`);
        }
        assert.deepEqual(leaksIn(JSON.stringify(rec)), [], 'the lineage record never holds the values');
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------- actions

describe('e2e redaction actions selected by CEL policies', { timeout: 120000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ extraYaml: EXTRA, tollgate: { redactionSecret: REDACTION_SECRET } });
  });
  after(async () => {
    await h.close();
  });

  it('mask: the same value in another spelling gets the same placeholder; different values get different ones', async () => {
    const before = h.fakes.openai!.requests.length;
    await openai(h, 'mask').chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'user', content: `Card 4111 1111 1111 1111, again 4111-1111-1111-1111, other card 5555 5555 5555 4444. Mail ${PII.email} and JANE.DOE@EXAMPLE.COM` },
      ],
    });
    const content = (lastRequest(h, 'openai', before).json as any).messages[0].content as string;
    assert.equal(content, 'Card [CREDIT_CARD_1], again [CREDIT_CARD_1], other card [CREDIT_CARD_2]. Mail [EMAIL_1] and [EMAIL_1]');
  });

  describe('hash', () => {
    const HASH = /\[EMAIL:([0-9a-f]{8})\]/;
    async function hashed(key: string, text: string): Promise<string> {
      const before = h.fakes.openai!.requests.length;
      await openai(h, 'hash', key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
      return (lastRequest(h, 'openai', before).json as any).messages[0].content as string;
    }

    it('is stable per tenant across requests, differs across tenants and values, never shows the value', async () => {
      const a1 = await hashed(KEYS.acme, `mail ${PII.email}`);
      const a2 = await hashed(KEYS.acmeSupport, `write to ${PII.email} now`); // same tenant, other team/key
      const g1 = await hashed(KEYS.globex, `mail ${PII.email}`);
      const other = await hashed(KEYS.acme, 'mail john.roe@example.org');
      for (const s of [a1, a2, g1, other]) {
        assert.match(s, HASH);
        assert.ok(!s.includes('@example'), s);
      }
      const tag = (s: string) => HASH.exec(s)![1];
      assert.equal(tag(a1), tag(a2), 'stable within tenant acme');
      assert.notEqual(tag(a1), tag(g1), 'globex gets a different hash for the same value');
      assert.notEqual(tag(a1), tag(other), 'another value, another hash');
    });

    it('hashes every detector of the rule (no value survives) and lineage records action hash', async () => {
      const before = h.fakes.openai!.requests.length;
      const { response } = await openai(h, 'hash')
        .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: TEXT }] })
        .withResponse();
      const raw = lastRequest(h, 'openai', before).body.toString('utf8');
      assert.deepEqual(leaksIn(raw), []);
      assert.match(raw, /\[CREDIT_CARD:[0-9a-f]{8}\]/);
      assert.match(raw, /\[PRIVATE_KEY:[0-9a-f]{8}\]/);
      const rec = await lineageFor(h, response.headers.get('x-request-id'));
      const card = rec.redactions!.find((r) => r.detector === 'credit_card')!;
      assert.equal(card.action, 'hash');
      assert.deepEqual(card.locations, ['messages[0].content']);
      assert.deepEqual(leaksIn(JSON.stringify(rec)), []);
    });
  });

  describe('block', () => {
    const blockCases: { name: string; run: (h: Harness) => Promise<unknown>; detector: string; param: string }[] = [
      {
        name: 'OpenAI SDK, card in a tool result',
        detector: 'credit_card',
        param: 'messages[2].content',
        run: (h) =>
          openai(h, 'block').chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [
              { role: 'user', content: 'pay' },
              { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'pay', arguments: '{}' } }] },
              { role: 'tool', tool_call_id: 'c1', content: `card on file: ${PII.credit_card}` },
            ],
          }),
      },
      {
        name: 'OpenAI SDK, SSN in a stream request to the Anthropic provider',
        detector: 'ssn',
        param: 'messages[0].content',
        run: (h) => openai(h, 'block').chat.completions.create({ model: 'claude-sonnet', stream: true, messages: [{ role: 'user', content: `my ssn is ${PII.ssn}` }] }),
      },
      {
        name: 'OpenAI SDK, embeddings array',
        detector: 'credit_card',
        param: 'input[1]',
        run: (h) => openai(h, 'block').embeddings.create({ model: 'text-embedding-3-small', input: ['fine', `card ${PII.credit_card}`] }),
      },
      {
        name: 'Anthropic SDK, SSN in the system prompt',
        detector: 'ssn',
        param: 'system',
        run: (h) =>
          anthropic(h, 'block').messages.create({ model: 'claude-sonnet', max_tokens: 32, system: `Customer SSN ${PII.ssn}`, messages: [{ role: 'user', content: 'hi' }] }),
      },
    ];
    for (const c of blockCases) {
      it(`${c.name} → 403 naming ${c.detector}, never the value; provider never called`, async () => {
        const before = { openai: h.fakes.openai!.requests.length, anthropic: h.fakes.anthropic!.requests.length };
        const lineageBefore = h.lineage.length;
        let err: unknown;
        try {
          const r = await c.run(h);
          if (r && typeof (r as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') for await (const _ of r as AsyncIterable<unknown>);
        } catch (e) {
          err = e;
        }
        const isAnthropic = err instanceof Anthropic.APIError;
        assert.ok(err instanceof OpenAI.PermissionDeniedError || err instanceof Anthropic.PermissionDeniedError, `403 expected, got ${String(err)}`);
        const e = err as { status: number; error: any; message: string };
        assert.equal(e.status, 403);
        const body = isAnthropic ? e.error : { error: e.error };
        const message: string = isAnthropic ? body.error.message : body.error.message;
        assert.match(message, new RegExp(`\\b${c.detector}\\b`));
        if (isAnthropic) {
          assert.equal(body.type, 'error');
          assert.equal(body.error.type, 'permission_error');
        } else {
          assert.equal(body.error.code, 'pii_blocked');
          assert.equal(body.error.param, c.param);
        }
        assert.deepEqual(leaksIn(JSON.stringify(body)), [], 'the error never echoes the value');
        assert.equal(h.fakes.openai!.requests.length, before.openai, 'OpenAI fake never called');
        assert.equal(h.fakes.anthropic!.requests.length, before.anthropic, 'Anthropic fake never called');
        await eventually(() => h.lineage.length > lineageBefore);
        const rec = h.lineage.at(-1)!;
        assert.equal(rec.outcome, 'denied');
        assert.equal(rec.statusCode, 403);
        assert.equal(rec.errorCode, 'pii_blocked');
        assert.deepEqual(leaksIn(JSON.stringify(rec)), []);
      });
    }

    it('lineage of a blocked request names the blocking detector, action and path (never the value)', async () => {
      const lineageBefore = h.lineage.length;
      await assert.rejects(
        openai(h, 'block').chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `card ${PII.credit_card}, mail ${PII.email}` }],
        }),
        (e: unknown) => e instanceof OpenAI.PermissionDeniedError,
      );
      await eventually(() => h.lineage.length > lineageBefore);
      const rec = h.lineage.at(-1)!;
      assert.equal(rec.errorCode, 'pii_blocked');
      const row = (rec.redactions ?? []).find((r) => r.detector === 'credit_card');
      assert.ok(row, `the blocking detector is in lineage: ${JSON.stringify(rec.redactions)}`);
      assert.equal(row.action, 'block');
      assert.equal(row.count, 1);
      assert.deepEqual(row.locations, ['messages[0].content']);
      assert.deepEqual(leaksIn(JSON.stringify(rec)), []);
    });

    it('with no blocked detector present the same policy masks the rest and forwards', async () => {
      const before = h.fakes.openai!.requests.length;
      await openai(h, 'block').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${PII.email}` }] });
      assert.equal((lastRequest(h, 'openai', before).json as any).messages[0].content, 'mail [EMAIL_1]');
    });
  });
});

// ---------------------------------------------------------------------------------------------- hash without a secret

describe('e2e redaction: hash with no configured secret (TOLLGATE_REDACTION_SECRET unset)', { timeout: 60000 }, () => {
  let h: Harness;
  let saved: string | undefined;
  before(async () => {
    saved = process.env.TOLLGATE_REDACTION_SECRET;
    delete process.env.TOLLGATE_REDACTION_SECRET;
    h = await startHarness({ extraYaml: EXTRA });
  });
  after(async () => {
    await h.close();
    if (saved !== undefined) process.env.TOLLGATE_REDACTION_SECRET = saved;
  });

  it('uses a random per-process key as documented: requests succeed, hashes are keyed and stable', async () => {
    const contents: string[] = [];
    for (let i = 0; i < 2; i++) {
      const before = h.fakes.openai!.requests.length;
      const r = await openai(h, 'hash').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${PII.email}` }] });
      assert.equal(r.object, 'chat.completion');
      contents.push((lastRequest(h, 'openai', before).json as any).messages[0].content);
    }
    assert.match(contents[0]!, /^mail \[EMAIL:[0-9a-f]{8}\]$/);
    assert.equal(contents[0], contents[1]);
  });
});
