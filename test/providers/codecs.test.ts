// Wire codecs: SSE decoder, AWS eventstream decoder/encoder (checked against Smithy's codec as an oracle), and
// SigV4 signing (checked against AWS's published test vector and an independent verifier).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { GatewayError } from '../../service/errors.ts';
import { SseDecoder, type SseEvent } from '../../service/providers/sse.ts';
import { crc32, EventStreamDecoder, encodeEventStreamMessage, type EventStreamMessage } from '../../service/providers/eventstream.ts';
import { signBedrock } from '../../service/providers/bedrock.ts';
import { verifySigV4 } from '../support/fake-providers.ts';
import { splitEvery, splitRandom, target } from './helpers.ts';

function decodeAll(chunks: Buffer[]): SseEvent[] {
  const d = new SseDecoder();
  const out: SseEvent[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

describe('SSE decoder', () => {
  const CASES: Array<{ name: string; input: string; events: SseEvent[] }> = [
    { name: 'LF framing', input: 'data: a\n\ndata: b\n\n', events: [{ event: undefined, data: 'a' }, { event: undefined, data: 'b' }] },
    { name: 'CRLF framing', input: 'event: x\r\ndata: a\r\n\r\n', events: [{ event: 'x', data: 'a' }] },
    { name: 'CR framing', input: 'data: a\r\rdata: b\r\r', events: [{ event: undefined, data: 'a' }, { event: undefined, data: 'b' }] },
    { name: 'comments and keep-alives are ignored', input: ': ping\n\n:\ndata: a\n\n', events: [{ event: undefined, data: 'a' }] },
    { name: 'multi-line data joined with LF', input: 'data: a\ndata: b\n\n', events: [{ event: undefined, data: 'a\nb' }] },
    { name: 'no space after colon', input: 'event:e\ndata:{"x":1}\n\n', events: [{ event: 'e', data: '{"x":1}' }] },
    { name: 'id and retry fields ignored', input: 'id: 7\nretry: 10\ndata: a\n\n', events: [{ event: undefined, data: 'a' }] },
    { name: 'event without data is not dispatched', input: 'event: lonely\n\ndata: a\n\n', events: [{ event: undefined, data: 'a' }] },
    { name: 'last event without trailing blank line is delivered at end', input: 'data: a\n\ndata: tail', events: [{ event: undefined, data: 'a' }, { event: undefined, data: 'tail' }] },
    { name: 'multi-byte UTF-8', input: 'data: héllo 👋 世界\n\n', events: [{ event: undefined, data: 'héllo 👋 世界' }] },
  ];
  for (const c of CASES) {
    test(`${c.name}: identical for every chunking`, () => {
      const buf = Buffer.from(c.input, 'utf8');
      assert.deepEqual(decodeAll([buf]), c.events, 'whole');
      assert.deepEqual(decodeAll(splitEvery(buf, 1)), c.events, 'byte by byte');
      for (let seed = 1; seed <= 20; seed++) assert.deepEqual(decodeAll(splitRandom(buf, seed, 5)), c.events, `seed ${seed}`);
    });
  }

  test('a never-ending line is refused instead of buffering forever', () => {
    const d = new SseDecoder();
    const big = Buffer.alloc(1024 * 1024, 0x61);
    assert.throws(() => {
      for (let i = 0; i < 20; i++) d.push(big);
    }, (e: unknown) => e instanceof GatewayError && e.kind === 'upstream');
  });
});

const utf8 = {
  to: (u: Uint8Array): string => Buffer.from(u).toString('utf8'),
  from: (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8')),
};
const oracle = new EventStreamCodec(utf8.to, utf8.from);

describe('AWS eventstream codec', () => {
  test('CRC32 matches the standard check value', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  test('our encoder → Smithy decoder (all header types)', () => {
    const frame = encodeEventStreamMessage(
      {
        ':event-type': 'contentBlockDelta',
        t: true,
        f: false,
        i: -42,
        l: 1234567890123n,
        b: Buffer.from([1, 2, 3]),
        d: new Date(1700000000123),
      },
      Buffer.from('{"delta":{"text":"hé"}}'),
    );
    const m = oracle.decode(frame);
    assert.equal(Buffer.from(m.body).toString(), '{"delta":{"text":"hé"}}');
    assert.deepEqual(m.headers[':event-type'], { type: 'string', value: 'contentBlockDelta' });
    assert.deepEqual(m.headers.t, { type: 'boolean', value: true });
    assert.deepEqual(m.headers.f, { type: 'boolean', value: false });
    assert.deepEqual(m.headers.i, { type: 'integer', value: -42 });
    assert.equal(m.headers.l!.type, 'long');
    assert.equal(m.headers.l!.value.toString(), '1234567890123');
    assert.deepEqual(Buffer.from(m.headers.b!.value as Uint8Array), Buffer.from([1, 2, 3]));
    assert.equal((m.headers.d!.value as Date).getTime(), 1700000000123);
  });

  test('Smithy encoder → our decoder, fed whole, byte by byte, and in random chunks', () => {
    const frames = [0, 1, 2, 3].map((i) =>
      Buffer.from(
        oracle.encode({
          headers: {
            ':event-type': { type: 'string', value: `event${i}` },
            ':message-type': { type: 'string', value: 'event' },
            n: { type: 'short', value: i },
            x: { type: 'byte', value: i === 0 ? 0 : -i },
            u: { type: 'uuid', value: '123e4567-e89b-12d3-a456-426614174000' },
          },
          body: utf8.from(JSON.stringify({ i, pad: 'x'.repeat(i * 50) })),
        }),
      ),
    );
    const all = Buffer.concat(frames);
    const check = (chunks: Buffer[]): void => {
      const d = new EventStreamDecoder();
      const msgs: EventStreamMessage[] = [];
      for (const c of chunks) msgs.push(...d.push(c));
      assert.equal(msgs.length, 4);
      msgs.forEach((m, i) => {
        assert.equal(m.headers[':event-type'], `event${i}`);
        assert.equal(m.headers.n, i);
        assert.equal(m.headers.x, i === 0 ? 0 : -i);
        assert.equal((m.headers.u as Buffer).toString('hex'), '123e4567e89b12d3a456426614174000');
        assert.deepEqual(JSON.parse(m.payload.toString()), { i, pad: 'x'.repeat(i * 50) });
      });
      assert.equal(d.pending, false);
    };
    check([all]);
    check(splitEvery(all, 1));
    for (let seed = 1; seed <= 25; seed++) check(splitRandom(all, seed, 64));
  });

  test('a frame cut short leaves bytes pending and yields nothing', () => {
    const f = encodeEventStreamMessage({ ':event-type': 'x' }, Buffer.from('{}'));
    const d = new EventStreamDecoder();
    assert.deepEqual(d.push(f.subarray(0, f.length - 1)), []);
    assert.equal(d.pending, true);
  });

  const CORRUPT: Array<[string, (f: Buffer) => Buffer]> = [
    ['prelude CRC', (f) => {
      const c = Buffer.from(f);
      c[9] ^= 0xff;
      return c;
    }],
    ['message CRC', (f) => {
      const c = Buffer.from(f);
      c[c.length - 1] ^= 0xff;
      return c;
    }],
    ['payload byte', (f) => {
      const c = Buffer.from(f);
      c[c.length - 6] ^= 0x01;
      return c;
    }],
    ['absurd length', () => {
      const c = Buffer.alloc(16);
      c.writeUInt32BE(0x7fffffff, 0);
      c.writeUInt32BE(0, 4);
      c.writeUInt32BE(crc32(c, 0, 8), 8);
      return c;
    }],
  ];
  for (const [name, corrupt] of CORRUPT) {
    test(`corrupted ${name} → upstream protocol error`, () => {
      const f = corrupt(encodeEventStreamMessage({ ':event-type': 'x' }, Buffer.from('{"a":1}')));
      assert.throws(() => new EventStreamDecoder().push(f), (e: unknown) => e instanceof GatewayError && e.code === 'upstream_protocol');
    });
  }
});

describe('SigV4', () => {
  test("independent verifier agrees with AWS's published get-vanilla test vector", () => {
    const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
    const headers = {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    };
    assert.deepEqual(verifySigV4('GET', '/', headers, Buffer.alloc(0), creds, 'us-east-1', 'service'), { ok: true });
    assert.equal(verifySigV4('GET', '/x', headers, Buffer.alloc(0), creds, 'us-east-1', 'service').ok, false);
  });

  test('Bedrock requests are signed so that an independent verifier accepts them (model id with ":")', async () => {
    const t = target('bedrock', {}, 'AKIDTEST:secret/key+1:SESSIONTOKEN');
    const path = '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse';
    const body = Buffer.from('{"messages":[]}');
    const h = await signBedrock(t, path, body, new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));
    assert.equal(h['x-amz-date'], '20240102T030405Z');
    assert.equal(h['x-amz-security-token'], 'SESSIONTOKEN');
    assert.equal(h.host, undefined, 'host is set by Envoy from x-tollgate-host, not by us');
    const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret/key+1', sessionToken: 'SESSIONTOKEN' };
    const recv = { ...h, host: t.provider.host };
    assert.deepEqual(verifySigV4('POST', path, recv, body, creds, 'us-east-1', 'bedrock'), { ok: true });
    assert.equal(verifySigV4('POST', path, recv, Buffer.from('{"messages":[1]}'), creds, 'us-east-1', 'bedrock').ok, false, 'body tampering');
    assert.equal(verifySigV4('POST', path.replace('converse', 'converse-stream'), recv, body, creds, 'us-east-1', 'bedrock').ok, false, 'path tampering');
    assert.equal(verifySigV4('POST', path, { ...recv, host: 'evil.example.com' }, body, creds, 'us-east-1', 'bedrock').ok, false, 'host tampering');
  });

  test('missing or malformed AWS credential → internal config error, nothing signed', async () => {
    for (const bad of [undefined, '', 'AKIDONLY', ':secret']) {
      const t = target('bedrock');
      t.credential = bad;
      await assert.rejects(signBedrock(t, '/model/x/converse', Buffer.from('{}'), new Date()), (e: unknown) => {
        assert.ok(e instanceof GatewayError);
        assert.equal(e.code, 'provider_credential_invalid');
        return true;
      });
    }
  });

  test('missing region → config error', async () => {
    const t = target('bedrock', { region: undefined });
    t.deployment.region = '';
    await assert.rejects(signBedrock(t, '/model/x/converse', Buffer.from('{}'), new Date()), /region/);
  });
});
