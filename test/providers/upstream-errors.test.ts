// Provider error bodies are untrusted text: an upstream that echoes request headers (or the key
// itself) must not hand the gateway's provider credential to the client, in any client shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerSecrets, renderError, GatewayError } from '../../service/errors.ts';
import { getTranslator } from '../../service/providers/index.ts';
import type { ClientRequest } from '../../service/providers/types.ts';
import type { ProviderApi } from '../../service/config/types.ts';
import type { ClientApi } from '../../service/errors.ts';
import { runStream } from './helpers.ts';

// A key with no recognisable shape: only the registry of configured credentials can catch it.
const KEY = 'zq7Yt0pLainKeyValue42';
registerSecrets([KEY, 'AKIDEXAMPLE0000:aws-secret-example-1234']);

function req(api: ClientApi, stream = false): ClientRequest {
  const body = api === 'anthropic' ? { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream } : { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream };
  return { api, op: 'chat', model: 'm', stream, body };
}

const echoes: Array<[string, string]> = [
  ['bare key', `The key ${KEY} is not valid for this model`],
  ['Authorization header', `Invalid header received: Authorization: Bearer ${KEY}`],
  ['header map', `bad request, headers were {"authorization":"Bearer sk-proj-Abc123Def456Ghi789","x-api-key":"${KEY}"}`],
  ['SigV4', 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE0000/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0123456789abcdef and aws-secret-example-1234'],
];

const pairs: Array<[ClientApi, ProviderApi]> = [
  ['openai', 'openai'],
  ['openai', 'anthropic'],
  ['anthropic', 'anthropic'],
  ['anthropic', 'openai'],
  ['openai', 'gemini'],
  ['openai', 'bedrock'],
];

for (const [client, provider] of pairs) {
  test(`${client} client ← ${provider}: a provider error echoing credentials reaches the client scrubbed, in the client's error shape`, () => {
    const tr = getTranslator(client, 'chat', provider);
    for (const [what, message] of echoes) {
      for (const status of [400, 422, 500]) {
        const body = Buffer.from(JSON.stringify({ error: { message, type: 'invalid_request_error', code: `bad ${KEY}`, param: KEY.slice(0, 4) + ' x' } }));
        const out = tr.response(status, { 'content-type': 'application/json' }, body, req(client)).body.toString('utf8');
        for (const secret of [KEY, 'sk-proj-Abc123Def456Ghi789', 'AKIDEXAMPLE0000', 'aws-secret-example-1234', '0123456789abcdef']) {
          assert.ok(!out.includes(secret), `${what} (${status}) leaked ${secret}: ${out}`);
        }
        const j = JSON.parse(out) as { error: { message: string; code?: string } };
        assert.match(j.error.message, /\[redacted\]/, `${what}: ${out}`);
        if (client === 'openai') assert.equal(j.error.code, `upstream_${status}`, 'a code that does not look like one is replaced');
      }
    }
  });
}

test('anthropic passthrough stream: an in-stream error event echoing the key is re-rendered scrubbed', () => {
  const tr = getTranslator('anthropic', 'chat', 'anthropic');
  const st = tr.stream(req('anthropic', true));
  const events = [
    `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', model: 'x', content: [], usage: { input_tokens: 5, output_tokens: 1 } } })}\n\n`,
    `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: `Overloaded; request had x-api-key: ${KEY}` } })}\n\n`,
  ];
  const out = runStream(st, [Buffer.from(events.join(''))]);
  assert.ok(!out.includes(KEY), out);
  assert.match(out, /event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error","message":"Overloaded; request had x-api-key: \[redacted\]"/);
  assert.equal(st.error?.()?.kind, 'unavailable');
});

test('openai stream: an in-stream {"error":…} echoing the key is scrubbed', () => {
  const tr = getTranslator('openai', 'chat', 'openai');
  const st = tr.stream(req('openai', true));
  const out = runStream(st, [Buffer.from(`data: ${JSON.stringify({ error: { message: `boom ${KEY}`, type: 'server_error' } })}\n\n`)]);
  assert.ok(!out.includes(KEY), out);
});

test('renderError never shows a configured credential, whoever built the message; ordinary text is untouched', () => {
  const r = renderError(new GatewayError('upstream', `something quoted ${KEY}`), 'openai').body.toString();
  assert.ok(!r.includes(KEY));
  const plain = 'max_tokens: Field required; a basic request needs a Bearer token header';
  const tr = getTranslator('openai', 'chat', 'openai');
  const out = tr.response(400, {}, Buffer.from(JSON.stringify({ error: { message: plain, code: 'invalid_value', param: 'messages[0].content' } })), req('openai'));
  const j = JSON.parse(out.body.toString()) as { error: { message: string; code: string; param: string } };
  assert.deepEqual(j.error.message, plain);
  assert.equal(j.error.code, 'invalid_value');
  assert.equal(j.error.param, 'messages[0].content');
});
