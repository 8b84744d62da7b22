// The hand-written ext_proc codec (service/extproc/codec.ts) must read and write exactly what
// proto-loader does with the same .proto files: every request shape Envoy sends decodes to the same
// object, every reply Tollgate builds decodes (by proto-loader, i.e. as Envoy's schema says) to the same
// object as proto-loader's own encoding of it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { JsonStruct, MutationBuilder, toPbStruct } from '../../service/extproc/mutations.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { decodeRequest, encodeResponse } from '../../service/extproc/codec.ts';

const svc = extProcService().Process!;
const pl = {
  encodeRequest: (m: ProcessingRequest) => svc.requestSerialize(m) as Buffer,
  decodeRequest: (b: Buffer) => svc.requestDeserialize(b) as ProcessingRequest,
  encodeResponse: (m: ProcessingResponse) => svc.responseSerialize(m) as Buffer,
  decodeResponse: (b: Buffer) => svc.responseDeserialize(b) as ProcessingResponse,
};

const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });

/** The reply with its MutationBuilder views as build()'s plain objects (what proto-loader's encoder reads). */
function plain(m: ProcessingResponse): ProcessingResponse {
  const out: ProcessingResponse = { ...m };
  for (const k of ['request_headers', 'request_body', 'response_headers', 'response_body'] as const) {
    const c = m[k]?.response;
    const hm = c?.header_mutation;
    if (c && hm) out[k] = { response: { ...c, header_mutation: { set_headers: hm.set_headers ?? [], remove_headers: hm.remove_headers ?? [] } } };
  }
  return out;
}
const nested = { a: 1.5, b: 'x', c: true, d: null, e: [1, 'two', { f: false }], g: { h: { i: -3 } } };

const REQUESTS: [string, ProcessingRequest][] = [
  ['request headers', { request_headers: { headers: { headers: [hv(':method', 'POST'), hv(':path', '/v1/chat/completions'), hv('authorization', 'Bearer x')] }, end_of_stream: false } }],
  ['headers with value (not raw_value) and end_of_stream', { response_headers: { headers: { headers: [{ key: ':status', value: '200' }] }, end_of_stream: true } }],
  ['empty header map', { request_headers: { headers: {} } }],
  ['request body', { request_body: { body: Buffer.from('{"model":"gpt-4o-mini","messages":[]}'), end_of_stream: true } }],
  ['empty body chunk', { response_body: { body: Buffer.alloc(0), end_of_stream: false } }],
  ['binary body', { response_body: { body: Buffer.from([0, 1, 2, 255, 254, 0x80]), end_of_stream: true } }],
  ['trailers', { request_trailers: { trailers: { headers: [hv('grpc-status', '0')] } } }],
  ['response trailers, empty', { response_trailers: {} }],
  [
    'metadata context and attributes',
    {
      request_headers: { headers: { headers: [hv(':path', '/')] } },
      metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': toPbStruct({ payload: nested }) } },
      attributes: { 'envoy.filters.http.ext_proc': toPbStruct({ 'request.id': 'r-1', 'xds.cluster_name': 'tgc.x', n: 3 }) },
      observability_mode: false,
    },
  ],
  ['observability mode', { request_body: { body: Buffer.from('x') }, observability_mode: true }],
];

const RESPONSES: [string, ProcessingResponse][] = [
  ['empty request_headers (continue)', { request_headers: { response: {} } }],
  ['oneof member without response', { response_body: {} }],
  [
    'header mutation, route cache, body mutation',
    {
      request_body: {
        response: {
          status: 'CONTINUE',
          header_mutation: {
            set_headers: [
              { header: { key: 'x-tollgate-cluster', raw_value: Buffer.from('openai', 'latin1') }, append: { value: false } },
              { header: { key: 'authorization', raw_value: Buffer.from('Bearer sk-ü', 'latin1') }, append: { value: false } },
            ],
            remove_headers: ['x-api-key', 'content-length'],
          },
          body_mutation: { body: Buffer.from('{"model":"gpt-4o-mini-eu"}') },
          clear_route_cache: true,
        },
      },
    },
  ],
  ['clear body', { response_body: { response: { body_mutation: { clear_body: true } } } }],
  ['continue and replace', { response_headers: { response: { status: 'CONTINUE_AND_REPLACE', body_mutation: { body: Buffer.alloc(0) } } } }],
  ['trailers mutation', { response_trailers: { header_mutation: { set_headers: [{ header: { key: 'x-t', value: 'v' } }] } }, request_trailers: {} }],
  [
    'immediate response',
    {
      immediate_response: {
        status: { code: 429 },
        headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') }, append: { value: false } }] },
        body: Buffer.from('{"error":{"message":"slow down"}}'),
        details: 'tollgate_rate_limited',
      },
    },
  ],
  [
    'dynamic metadata (every Value kind), mode override, message timeout',
    {
      response_headers: { response: {} },
      dynamic_metadata: toPbStruct({ tollgate: { decision_id: 'd-1', input_tokens: 380, cost_usd: 0.000123, ok: true, none: null, list: [1, 'a', [true]], deep: nested } }),
      mode_override: { response_body_mode: 'STREAMED', request_header_mode: 'SEND', response_trailer_mode: 'SKIP', request_body_mode: 'NONE' },
      override_message_timeout: { seconds: 30, nanos: 5 },
    },
  ],
  ['message timeout with string seconds', { request_body: { response: {} }, override_message_timeout: { seconds: '12' } }],
  ['empty struct', { request_headers: { response: {} }, dynamic_metadata: { fields: {} } }],
];

describe('ext_proc codec', () => {
  for (const [name, m] of REQUESTS)
    it(`decodes a ProcessingRequest like proto-loader: ${name}`, () => {
      const wire = pl.encodeRequest(m);
      assert.deepEqual(decodeRequest(wire), pl.decodeRequest(wire));
    });

  it('skips fields it does not know (a newer Envoy), as proto-loader does', () => {
    const base = pl.encodeRequest(REQUESTS[0]![1]);
    const w = protobuf.Writer.create();
    w.uint32((11 << 3) | 2).bytes(Buffer.from([8, 1])); // an unknown sub-message
    w.uint32((99 << 3) | 0).uint64(12345); // an unknown varint
    w.uint32((98 << 3) | 1).fixed64(7); // an unknown 64-bit
    w.uint32((97 << 3) | 5).fixed32(7); // an unknown 32-bit
    const wire = Buffer.concat([base, w.finish()]);
    assert.deepEqual(decodeRequest(wire), pl.decodeRequest(wire));
    assert.deepEqual(decodeRequest(wire), decodeRequest(base));
  });

  it('reads two oneof members on the wire as proto-loader does', () => {
    for (const [x, y] of [[0, 3], [3, 0]] as const) {
      const wire = Buffer.concat([pl.encodeRequest(REQUESTS[x]![1]), pl.encodeRequest(REQUESTS[y]![1])]);
      const got = decodeRequest(wire);
      assert.deepEqual(got, pl.decodeRequest(wire));
      assert.equal(got.request, 'request_body');
    }
  });

  for (const [name, m] of RESPONSES)
    it(`encodes a ProcessingResponse that decodes like proto-loader's encoding: ${name}`, () => {
      assert.deepEqual(pl.decodeResponse(encodeResponse(m)), pl.decodeResponse(pl.encodeResponse(m)));
    });

  it('encodes byte-for-byte what proto-loader encodes for the replies Tollgate sends most', () => {
    for (const [, m] of RESPONSES.slice(0, 7)) assert.deepEqual(encodeResponse(m), pl.encodeResponse(m));
  });

  it('matches proto-loader on random replies', () => {
    let seed = 17;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const str = () => Math.random().toString(36).slice(2, 2 + Math.floor(rnd() * 8)) + pick(['', 'é', '💥', '\u0000']);
    for (let i = 0; i < 300; i++) {
      const set_headers = Array.from({ length: Math.floor(rnd() * 4) }, () => ({ header: { key: str() || 'k', raw_value: Buffer.from(str()) }, ...(rnd() < 0.5 ? { append: { value: rnd() < 0.5 } } : {}) }));
      const common = { ...(rnd() < 0.5 ? { header_mutation: { set_headers, remove_headers: Array.from({ length: Math.floor(rnd() * 3) }, str) } } : {}), ...(rnd() < 0.3 ? { body_mutation: { body: Buffer.from(str()) } } : {}), ...(rnd() < 0.3 ? { clear_route_cache: rnd() < 0.5 } : {}) };
      const phase = pick(['request_headers', 'response_headers', 'request_body', 'response_body'] as const);
      const m: ProcessingResponse = rnd() < 0.15 ? { immediate_response: { status: { code: 400 + Math.floor(rnd() * 200) }, body: Buffer.from(str()), details: str() } } : { [phase]: { response: common } };
      const md = { tollgate: { [str() || 'a']: pick<unknown>([rnd() * 1000, str(), rnd() < 0.5, null, [str(), rnd()], { x: str() }]) } };
      if (rnd() < 0.4) m.dynamic_metadata = rnd() < 0.5 ? toPbStruct(md) : new JsonStruct(md);
      if (rnd() < 0.2) m.mode_override = { response_body_mode: pick(['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL'] as const) };
      assert.deepEqual(pl.decodeResponse(encodeResponse(m)), pl.decodeResponse(pl.encodeResponse(m)), JSON.stringify(m));
      assert.deepEqual(encodeResponse(m), pl.encodeResponse(m), JSON.stringify(m));
    }
  });

  it('encodes byte-for-byte what proto-loader encodes for every reply shape, long and non-ASCII strings included', () => {
    const long = 'x-tollgate-' + 'ü'.repeat(30) + '💥'.repeat(20) + 'a'.repeat(200);
    const extra: ProcessingResponse[] = [
      { request_body: { response: { header_mutation: { set_headers: [{ header: { key: long, value: long }, append: {} as { value: boolean } }], remove_headers: [long, ''] }, body_mutation: { body: Buffer.alloc(70000, 7) } } } },
      { immediate_response: { status: { code: 503 }, body: Buffer.alloc(200, 1), details: long }, dynamic_metadata: toPbStruct({ t: { s: long, n: -1.25, big: 1e300, neg: -7 } }) },
      { override_message_timeout: { seconds: -3, nanos: -1 }, mode_override: { request_header_mode: 'DEFAULT' } },
      { request_headers: { response: { body_mutation: { body: Buffer.from('aGVsbG8=', 'base64') } } }, immediate_response: { status: { code: 200 } } },
    ];
    for (const m of [...RESPONSES.map(([, r]) => r), ...extra]) assert.deepEqual(encodeResponse(m), pl.encodeResponse(m), JSON.stringify(m).slice(0, 200));
  });

  it('writes dynamic metadata given as plain JSON (JsonStruct) byte-for-byte as proto-loader writes toPbStruct of it', () => {
    const fn = function named() {};
    const json: Record<string, unknown> = {
      tollgate: {
        request_id: 'f567965c-23be-4a29-aa2c-a0ba940eb110', // long: not cached
        tenant: 'acme', // short: cached name
        'clé-é': 'välue', // non-ASCII key and value: never cached
        surrogate: '\ud800x', // a lone surrogate (protobufjs's writer, not Buffer's)
        emoji: '💥'.repeat(30),
        n: 380,
        f: -0.0000528,
        inf: Infinity,
        big: 12n,
        ok: true,
        no: false,
        none: null,
        skipped: undefined,
        when: new Date(Date.UTC(2026, 11, 7)),
        list: [1, 'a', [true, null], undefined, { x: 'y' }],
        empty: {},
        emptyList: [],
        deep: nested,
        other: fn,
      },
      plan: { v: 1, deployments: ['a/b/1', 'c/d/2'] },
    };
    for (const reply of [
      { response_body: { response: {} }, dynamic_metadata: new JsonStruct(json) },
      { immediate_response: { status: { code: 403 }, body: Buffer.from('{}'), details: 'tollgate_denied' }, dynamic_metadata: new JsonStruct({}) },
      { request_headers: { response: {} }, dynamic_metadata: new JsonStruct({ tollgate: { only: undefined } }) },
    ] as ProcessingResponse[]) {
      const tree = { ...reply, dynamic_metadata: toPbStruct((reply.dynamic_metadata as JsonStruct).json) };
      // Twice: the second run goes through the name cache the first one filled.
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(encodeResponse(reply), pl.encodeResponse(tree));
        assert.deepEqual(encodeResponse(reply), encodeResponse(tree));
      }
      // Readers of the reply (tests, proto-loader) see the Struct tree.
      assert.deepEqual(reply.dynamic_metadata!.fields, tree.dynamic_metadata.fields);
      assert.deepEqual(pl.encodeResponse(reply), pl.encodeResponse(tree));
    }
  });

  it('stays exact when the name cache fills and is cleared in the middle of a reply', () => {
    // More distinct names than the cache keeps, in one reply and across replies (client-chosen names).
    const names = Array.from({ length: 5000 }, (_, i) => `x-client-${i}`);
    const set_headers = names.map((key, i) => ({ header: { key, raw_value: Buffer.from(String(i)) }, append: { value: false } }));
    const m: ProcessingResponse = { request_headers: { response: { header_mutation: { set_headers, remove_headers: names.slice(0, 300) } } }, dynamic_metadata: new JsonStruct({ tollgate: Object.fromEntries(names.slice(0, 2500).map((k) => [k, k])) }) };
    const tree = { ...m, dynamic_metadata: toPbStruct((m.dynamic_metadata as JsonStruct).json) };
    for (let i = 0; i < 3; i++) assert.deepEqual(encodeResponse(m), pl.encodeResponse(tree));
  });

  it('writes a MutationBuilder view() byte-for-byte as build() and as proto-loader, in every place a mutation goes', () => {
    // view() is written straight from the builder's strings (no per-header objects): random sets/removes,
    // names and values short and long (the byte loop and the native write), empty, latin1, and characters
    // above U+00FF (latin1 keeps their low byte, as Buffer.from(v, 'latin1') does).
    let seed = 11;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const names = ['x-request-id', 'Content-Length', ':path', 'x-tollgate-cluster', 'x-élan', `x-${'long-name-'.repeat(15)}`, 'api-key'];
    const values = ['', '1', 'azure_eu', 'caf\xe9', 'price \u20ac5', 'x'.repeat(48), 'y'.repeat(49), `/openai/deployments/${'d'.repeat(200)}/chat/completions?api-version=2024-10-21`, '\u00ff\u0100\ud83d\ude00', 'caf\xe9 \u20ac '.repeat(12)];
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    let views = 0;
    for (let t = 0; t < 400; t++) {
      const b = new MutationBuilder();
      for (let i = Math.floor(rnd() * 14); i > 0; i--) if (rnd() < 0.65) b.setHeader(pick(names), pick(values));
      else b.removeHeader(pick(names));
      const view = b.view();
      const built = b.build();
      assert.equal(view === undefined, built === undefined);
      if (!view || !built) continue;
      views++;
      assert.deepEqual(view.set_headers, built.set_headers);
      assert.deepEqual(view.remove_headers, built.remove_headers);
      const shapes = (hm: typeof built): ProcessingResponse[] => [
        { request_headers: { response: { header_mutation: hm, clear_route_cache: true } } },
        { response_body: { response: { header_mutation: hm, body_mutation: { body: Buffer.from('{"a":1}') } } }, dynamic_metadata: new JsonStruct({ tollgate: { request_id: 'r' } }) },
        { immediate_response: { status: { code: 429 }, headers: hm, body: Buffer.from('{}'), details: 'tollgate_rate_limited' } },
      ];
      const a = shapes(view);
      const r = shapes(built);
      for (let i = 0; i < a.length; i++) {
        const want = encodeResponse(r[i]!);
        assert.deepEqual(encodeResponse(a[i]!), want, JSON.stringify(r[i]));
        assert.deepEqual(encodeResponse(a[i]!, true).subarray(5), want);
        assert.deepEqual(pl.encodeResponse({ ...r[i]!, dynamic_metadata: undefined }), encodeResponse({ ...a[i]!, dynamic_metadata: undefined }));
      }
    }
    assert.ok(views > 300, `${views} non-empty mutations`);
  });

  it('writes recurring headers and metadata fields (cached whole-field bytes) byte-for-byte as the general path and proto-loader', () => {
    // pair-bytes.ts: a (name, value) pair seen twice is written from bytes encoded once. Values here recur
    // (cache hits), change every reply (per-request ids), alternate among more values than a name keeps,
    // cross the 48-byte copy threshold and the 256-character cache limit, and are non-ASCII or above U+00FF.
    let seed = 23;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const names = ['content-type', 'x-tollgate-cluster', ':path', 'x-request-id', 'content-length', 'x-élan', 'api-key', `x-${'n'.repeat(130)}`];
    const values = ['application/json', 'azure_eu', '/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21', 'x'.repeat(48), 'y'.repeat(49), 'z'.repeat(257), 'caf\xe9', '\u00ff\u0100', '', '1', '2', '3', '4', '5'];
    const fieldValues = ['acme', 'research', 'gpt-4o-mini/azure-eu/1', 'x'.repeat(24), 'x'.repeat(25), 'välue', '', 'a', 'b', 'c', 'd', 'e'];
    let i = 0;
    for (let t = 0; t < 600; t++) {
      const b = new MutationBuilder();
      for (let k = Math.floor(rnd() * 10); k > 0; k--) b.setHeader(pick(names), rnd() < 0.2 ? `id-${t}-${k}` : pick(values));
      if (rnd() < 0.3) b.removeHeader(pick(names));
      const md: Record<string, unknown> = { request_id: `f567965c-${t}`, n: t };
      for (const key of ['tenant', 'team', 'model', 'deployment', 'clé']) if (rnd() < 0.8) md[key] = rnd() < 0.15 ? `v${t}` : pick(fieldValues);
      const view = b.view();
      const reply: ProcessingResponse = { request_body: { response: { ...(view ? { header_mutation: view } : {}), body_mutation: { body: Buffer.from('{}') } } }, dynamic_metadata: new JsonStruct({ tollgate: md }) };
      const tree: ProcessingResponse = { request_body: { response: { ...(view ? { header_mutation: b.build()! } : {}), body_mutation: { body: Buffer.from('{}') } } }, dynamic_metadata: toPbStruct({ tollgate: md }) };
      const want = pl.encodeResponse(tree);
      assert.deepEqual(encodeResponse(reply), want, JSON.stringify(tree).slice(0, 300));
      assert.deepEqual(encodeResponse(tree), want);
      assert.deepEqual(encodeResponse(reply, true).subarray(5), want);
      i++;
    }
    assert.equal(i, 600);
  });

  it('writes every length exactly in one pass: sub-messages and strings whose length crosses a varint size, hinted and not', () => {
    // The writer reserves one length byte per sub-message (or varintLen of a hint: the body a phase holds)
    // and one per short string, then moves the body when the length needs more (or fewer) bytes. Lengths
    // here sit on both sides of 128 and 16384 at every nesting level, with bodies just under and over them.
    const around = (n: number): number[] => [n - 3, n - 2, n - 1, n, n + 1, n + 2];
    const lengths = [0, 1, ...around(128), ...around(16384)];
    const replies: ProcessingResponse[] = [];
    for (const n of lengths) {
      const v = 'v'.repeat(n);
      const b = new MutationBuilder().setHeader('x-len', v).setHeader('x-id', `r-${n}`).removeHeader('x-gone');
      replies.push({ request_headers: { response: { header_mutation: b.view()!, clear_route_cache: true } } });
      // A body alone and with a mutation: the phase's hint (the body's length) is right, short or over a varint size.
      for (const d of [0, 3, 40, 125]) {
        replies.push({ response_body: { response: { body_mutation: { body: Buffer.alloc(Math.max(0, n - d), 0x61) } } } });
        // A body given as base64 (proto-loader's object form for bytes): the hint, its character count, is too
        // long, so the reserved length shrinks.
        const b64 = Buffer.alloc(Math.max(0, n - d), 0x63).toString('base64') as unknown as Buffer;
        replies.push({ response_body: { response: { body_mutation: { body: b64 } } } });
        replies.push({ request_body: { response: { header_mutation: b.view()!, body_mutation: { body: Buffer.alloc(Math.max(0, n - d), 0x62) } } }, dynamic_metadata: new JsonStruct({ tollgate: { s: 'w'.repeat(Math.max(0, n - d)) } }) });
      }
      // Strings: ASCII, 2-byte and 4-byte characters (the UTF-8 length's varint is longer than the character count's).
      for (const ch of ['a', '\u00e9', '\u{1F4A5}', '\ud800']) {
        const str = ch.repeat(Math.max(1, Math.floor(n / ch.length)));
        replies.push({ immediate_response: { status: { code: 429 }, details: str, body: Buffer.from(str) }, dynamic_metadata: new JsonStruct({ t: { str, short: str.slice(0, 39), list: [str.slice(0, 41), { deep: { deeper: str } }] } }) });
        replies.push({ response_trailers: { header_mutation: { set_headers: [{ header: { key: 'x-t', value: str }, append: { value: true } }], remove_headers: [str.slice(0, 60)] } } });
      }
    }
    for (const m of replies) {
      const tree = m.dynamic_metadata instanceof JsonStruct ? { ...m, dynamic_metadata: toPbStruct(m.dynamic_metadata.json) } : m;
      const want = pl.encodeResponse(plain(tree));
      assert.deepEqual(encodeResponse(m), want, JSON.stringify(m).slice(0, 200));
      const framed = encodeResponse(m, true);
      assert.equal(framed.readUInt32BE(1), want.length);
      assert.deepEqual(framed.subarray(5), want);
    }
  });

  it('hands out replies that stay intact while later ones are written (shared slab, replies that outgrow it, a reply that fails half-way)', () => {
    // Replies are views of a shared slab: none may be overwritten by the next ones, whatever their sizes
    // (many small, some larger than the slab's free space or the slab itself), nor by a reply that throws.
    let seed = 5;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const kept: [Buffer, Buffer][] = [];
    for (let i = 0; i < 400; i++) {
      const size = rnd() < 0.05 ? Math.floor(rnd() * 150_000) : Math.floor(rnd() * 9000);
      const body = Buffer.alloc(size, i & 0xff);
      const b = new MutationBuilder().setHeader('content-length', String(size)).setHeader('x-request-id', `req-${i}`);
      const m: ProcessingResponse = { request_body: { response: { header_mutation: b.view()!, body_mutation: { body } } }, dynamic_metadata: new JsonStruct({ tollgate: { request_id: `req-${i}`, tenant: 'acme', n: i } }) };
      const tree: ProcessingResponse = { request_body: { response: { header_mutation: b.build()!, body_mutation: { body } } }, dynamic_metadata: toPbStruct({ tollgate: { request_id: `req-${i}`, tenant: 'acme', n: i } }) };
      kept.push([encodeResponse(m, i % 2 === 0), i % 2 === 0 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), pl.encodeResponse(tree)]) : pl.encodeResponse(tree)]);
      if (i % 2 === 0) kept.at(-1)![1].writeUInt32BE(kept.at(-1)![1].length - 5, 1);
      if (rnd() < 0.1) {
        // Fails after writing a header mutation and a body: nothing of it may show up anywhere.
        const bad = { request_body: { response: { header_mutation: b.view()!, body_mutation: { body: Buffer.alloc(Math.floor(rnd() * 20000), 0xee) } } }, mode_override: { request_body_mode: 'SOMETIMES' } } as unknown as ProcessingResponse;
        assert.throws(() => encodeResponse(bad, true), /enum value expected/);
      }
    }
    for (const [got, want] of kept) assert.ok(got.equals(want), `reply of ${want.length} bytes changed after later replies`);
  });

  it('refuses an enum name the schema does not have (instead of sending a wrong value)', () => {
    assert.throws(() => encodeResponse({ mode_override: { response_body_mode: 'SOMETIMES' as never } }), /enum value expected/);
  });
});
