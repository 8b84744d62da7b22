// Every message shape: after redaction, none of the original PII appears anywhere in the serialized body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRedactor } from '../../service/redaction/index.ts';

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const PHONE = '+1 (415) 555-2671';
const SSN = '123-45-6789';
const KEY = 'sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const PII = [EMAIL, CARD, PHONE, SSN, KEY, IBAN];
const TEXT = `Email ${EMAIL}, card ${CARD}, phone ${PHONE}, ssn ${SSN}, key ${KEY}, iban ${IBAN}.`;
// Other spellings of the same values that must not survive either.
const FORMS = [EMAIL, '4111111111111111', '4155552671', '123456789', KEY, 'DE89370400440532013000', CARD, PHONE, SSN, IBAN];

function leaks(body: unknown): string[] {
  const s = JSON.stringify(body);
  const digitsOnly = s.replace(/[^0-9A-Za-z@.]/g, '');
  return FORMS.filter((v) => s.includes(v) || digitsOnly.includes(v.replace(/[^0-9A-Za-z@.]/g, '')));
}

const image = 'data:image/png;base64,' + 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='.repeat(3);

const shapes: { name: string; body: () => Record<string, unknown>; keep?: (b: Record<string, unknown>) => void }[] = [
  {
    name: 'openai chat: string content',
    body: () => ({ model: 'gpt-4o', messages: [{ role: 'user', content: TEXT }] }),
  },
  {
    name: 'openai chat: content parts (text + image)',
    body: () => ({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: TEXT }, { type: 'image_url', image_url: { url: image } }] }],
    }),
    keep: (b) => {
      const parts = (b.messages as { content: { image_url?: { url: string } }[] }[])[0].content;
      assert.equal(parts[1].image_url?.url, image, 'base64 image left byte-identical');
    },
  },
  {
    name: 'openai chat: system and developer messages',
    body: () => ({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: TEXT },
        { role: 'developer', content: [{ type: 'text', text: TEXT }] },
        { role: 'user', content: 'hi' },
      ],
    }),
  },
  {
    name: 'openai chat: tool definitions (descriptions, schema descriptions, enums, defaults)',
    body: () => ({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'lookup',
            description: `Look up ${EMAIL}`,
            parameters: {
              type: 'object',
              properties: {
                who: { type: 'string', description: `e.g. ${PHONE} or ${SSN}`, enum: [CARD, KEY], default: IBAN },
              },
            },
          },
        },
      ],
    }),
  },
  {
    name: 'openai chat: tool-call arguments (JSON string, \\u escapes, numbers) stay valid JSON',
    body: () => ({
      model: 'gpt-4o',
      messages: [
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: {
                name: 'pay',
                arguments: JSON.stringify({ email: EMAIL, note: TEXT, card_number: 4111111111111111 }).replace('@', '\\u0040'),
              },
            },
          ],
        },
      ],
    }),
    keep: (b) => {
      const args = (b.messages as { tool_calls: { function: { arguments: string } }[] }[])[0].tool_calls[0].function.arguments;
      const parsed = JSON.parse(args) as Record<string, unknown>;
      assert.deepEqual(Object.keys(parsed), ['email', 'note', 'card_number']);
    },
  },
  {
    name: 'openai chat: tool result message',
    body: () => ({
      model: 'gpt-4o',
      messages: [{ role: 'tool', tool_call_id: 'call_1', content: TEXT }],
    }),
  },
  {
    name: 'anthropic messages: top-level system string',
    body: () => ({ model: 'claude-3-5-sonnet', max_tokens: 100, system: TEXT, messages: [{ role: 'user', content: 'hi' }] }),
  },
  {
    name: 'anthropic messages: system blocks with cache_control',
    body: () => ({
      model: 'claude-3-5-sonnet',
      max_tokens: 100,
      system: [{ type: 'text', text: TEXT, cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    }),
  },
  {
    name: 'anthropic messages: tool_use input object and tool_result blocks',
    body: () => ({
      model: 'claude-3-5-sonnet',
      max_tokens: 100,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'pay', input: { card: CARD, contact: { email: EMAIL, phone: PHONE } } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: TEXT },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: TEXT }] },
          ],
        },
      ],
      tools: [{ name: 'pay', description: `Pays ${IBAN}`, input_schema: { type: 'object', properties: { ssn: { type: 'string', description: SSN } } } }],
    }),
  },
  {
    name: 'anthropic messages: base64 image block left intact',
    body: () => ({
      model: 'claude-3-5-sonnet',
      max_tokens: 100,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: image.slice(22) } },
            { type: 'text', text: TEXT },
          ],
        },
      ],
    }),
  },
  {
    name: 'embeddings: input string',
    body: () => ({ model: 'text-embedding-3-small', input: TEXT }),
  },
  {
    name: 'embeddings: input array',
    body: () => ({ model: 'text-embedding-3-small', input: [TEXT, 'plain', EMAIL] }),
  },
  {
    name: 'responses API: instructions and input items',
    body: () => ({
      model: 'gpt-4o',
      instructions: TEXT,
      input: [{ role: 'user', content: [{ type: 'input_text', text: TEXT }] }, { type: 'function_call_output', call_id: 'c1', output: TEXT }],
    }),
  },
  {
    name: 'unknown fields: metadata, user, stop, nested custom objects',
    body: () => ({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      user: EMAIL,
      stop: [SSN],
      metadata: { customer: { phone: PHONE, cards: [CARD], notes: TEXT } },
      x_vendor_extension: { deeply: { nested: [{ value: KEY }, { iban: IBAN }] } },
    }),
  },
  {
    name: 'PII in object keys and as JSON numbers',
    body: () => ({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      metadata: { [EMAIL]: 'owner', [KEY]: true, card: 4111111111111111, phone: 4155552671, ssn: 123456789, [CARD]: 1 },
    }),
  },
  {
    name: 'PII hidden with zero-width characters, full-width digits and non-breaking spaces',
    body: () => ({
      model: 'gpt-4o',
      messages: [
        { role: 'user', content: 'mail jane.doe\u200b@example.com or jane.doe@exa\u200dmple.com' },
        { role: 'user', content: 'card ４１１１ １１１１ １１１１ １１１１ and 4111\u00a01111\u00a01111\u00a01111' },
      ],
    }),
  },
  {
    name: 'role/type string that is not an enum value is still scanned',
    body: () => ({ model: 'gpt-4o', messages: [{ role: EMAIL, type: CARD, content: 'hi' }] }),
  },
];

const redactor = compileRedactor([{ source: 'test/all', detectors: ['*'], action: 'mask', responses: false }]);

for (const shape of shapes) {
  test(`no PII survives: ${shape.name}`, () => {
    const original = shape.body();
    assert.ok(leaks(original).length > 0 || JSON.stringify(original).includes('\u200b') || JSON.stringify(original).includes('１'), 'fixture carries PII');
    const body = shape.body();
    const { body: out, report } = redactor.redactRequest(body);
    assert.equal(out, body, 'redacted in place and returned');
    const serialized = JSON.stringify(out).replace(/[\u200b\u200d]/g, '');
    assert.deepEqual(leaks(JSON.parse(serialized)), [], `leaked in ${serialized}`);
    assert.ok(!/jane\.doe/.test(serialized), 'obfuscated email fully masked');
    assert.ok(!/[４１]{4}/.test(serialized) && !serialized.includes('4111'), 'full-width / nbsp card masked');
    assert.ok(report.total > 0);
    assert.ok(report.findings.every((f) => !JSON.stringify(f).includes('jane') && !JSON.stringify(f).includes('4111')), 'report carries no values');
    // Structure survives: model and roles untouched.
    assert.equal(out.model, original.model);
    shape.keep?.(out);
  });
}

test('structure of a realistic chat request is preserved exactly apart from the redacted spans', () => {
  const body = {
    model: 'gpt-4o',
    stream: true,
    temperature: 0.2,
    max_tokens: 500,
    tool_choice: 'auto',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: `My mail is ${EMAIL}.` },
    ],
  };
  const before = structuredClone(body);
  const { body: out } = redactor.redactRequest(body);
  assert.deepEqual(out, { ...before, messages: [before.messages[0], { role: 'user', content: 'My mail is [EMAIL_1].' }] });
});

test('a body without findings is returned untouched (same nested objects)', () => {
  const messages = [{ role: 'user', content: 'What is the capital of France? Version 1.2.3.4 of the app, order 100234.' }];
  const body = { model: 'gpt-4o', messages };
  const { body: out, report } = redactor.redactRequest(body);
  assert.equal(out.messages, messages);
  assert.equal(report.total, 0);
});
