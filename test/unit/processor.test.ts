// The ext_proc state machine against every message sequence Envoy can produce, and hostile ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../service/errors.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { MutationBuilder } from '../../service/extproc/mutations.ts';
import { Processor, ProtocolError, type EndReason, type Exchange, type PhaseResult } from '../../service/extproc/processor.ts';

const hdrs = (pairs: Record<string, string>) => ({
  headers: Object.entries(pairs).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })),
});

const M = {
  reqHeaders: (eos: boolean): ProcessingRequest => ({
    request: 'request_headers',
    request_headers: { headers: hdrs({ ':method': 'POST', ':path': '/v1/chat/completions' }), end_of_stream: eos },
  }),
  reqBody: (s: string, eos = true): ProcessingRequest => ({ request: 'request_body', request_body: { body: Buffer.from(s), end_of_stream: eos } }),
  reqTrailers: (): ProcessingRequest => ({ request: 'request_trailers', request_trailers: { trailers: hdrs({ 'x-t': '1' }) } }),
  respHeaders: (status: number, eos = false): ProcessingRequest => ({
    request: 'response_headers',
    response_headers: { headers: hdrs({ ':status': String(status), 'content-type': 'application/json' }), end_of_stream: eos },
  }),
  respBody: (s: string, eos = true): ProcessingRequest => ({ request: 'response_body', response_body: { body: Buffer.from(s), end_of_stream: eos } }),
  respTrailers: (): ProcessingRequest => ({ request: 'response_trailers', response_trailers: { trailers: hdrs({ 'grpc-status': '0' }) } }),
};

interface FakeOptions {
  stream?: boolean;
  failOn?: 'headers' | 'body' | 'responseHeaders' | 'responseBody';
  /** Phases answer with values and throw (as GatewayExchange's response phases do), instead of promises. */
  sync?: boolean;
}

class FakeExchange implements Exchange {
  ends: { reason: EndReason; detail?: string }[] = [];
  chunks: { data: string; last: boolean }[] = [];
  constructor(private readonly o: FakeOptions = {}) {}
  clientApi() {
    return 'openai' as const;
  }
  /** The phase's result as a value (sync) or from an async function (a promise; a throw rejects it). */
  private answer<T>(f: () => T): PhaseResult<T> {
    return this.o.sync ? f() : (async () => f())();
  }
  requestHeaders() {
    return this.answer(() => {
      if (this.o.failOn === 'headers') throw new GatewayError('authentication', 'no key', { code: 'missing_api_key' });
      return { kind: 'continue' as const, mutation: new MutationBuilder().removeHeader('x-tollgate-cluster') };
    });
  }
  requestBody(body: Buffer) {
    return this.answer(() => {
      if (this.o.failOn === 'body') throw new GatewayError('permission', 'denied by policy', { code: 'policy_denied' });
      const out = Buffer.from(body.toString().toUpperCase());
      return {
        kind: 'continue' as const,
        mutation: new MutationBuilder().setHeader('x-tollgate-cluster', 'c1').setHeader('content-length', String(out.length)),
        replaceBody: out,
        clearRouteCache: true,
        metadata: { tenant: 'acme' },
      };
    });
  }
  responseHeaders() {
    return this.answer(() => {
      if (this.o.failOn === 'responseHeaders') throw new Error('boom');
      return { mutation: new MutationBuilder().setHeader('x-request-id', 'r1'), stream: this.o.stream === true };
    });
  }
  responseBody(body: Buffer) {
    return this.answer(() => {
      if (this.o.failOn === 'responseBody') throw new GatewayError('upstream', 'bad upstream');
      const out = Buffer.from(`[${body.toString()}]`);
      return { body: out, mutation: new MutationBuilder().setHeader('content-length', String(out.length)) };
    });
  }
  responseChunk(chunk: Buffer, last: boolean) {
    return this.answer(() => {
      this.chunks.push({ data: chunk.toString(), last });
      return { body: Buffer.from(chunk.toString().toUpperCase() + (last ? '|END' : '')) };
    });
  }
  end(reason: EndReason, detail?: string) {
    this.ends.push({ reason, detail });
  }
}

async function run(p: Processor, msgs: ProcessingRequest[]): Promise<(ProcessingResponse | undefined)[]> {
  const out: (ProcessingResponse | undefined)[] = [];
  for (const m of msgs) out.push(await p.handle(m));
  return out;
}

const setHeader = (r: ProcessingResponse | undefined, phase: keyof ProcessingResponse, name: string): string | undefined => {
  const common = (r?.[phase] as { response?: { header_mutation?: { set_headers?: { header: { key: string; raw_value?: Buffer; value?: string } }[] } } })?.response;
  const h = common?.header_mutation?.set_headers?.find((s) => s.header.key === name)?.header;
  if (h) assert.equal(h.value, undefined, 'mutations must use raw_value only');
  return h?.raw_value?.toString();
};

describe('Processor: legal sequences', () => {
  it('request without body (end_of_stream on headers), response without body', async () => {
    const ex = new FakeExchange();
    const p = new Processor(ex);
    const [a, b] = await run(p, [M.reqHeaders(true), M.respHeaders(204, true)]);
    assert.equal(a?.request_headers !== undefined, true);
    assert.equal(b?.response_headers !== undefined, true);
    assert.deepEqual(ex.ends.map((e) => e.reason), ['completed']);
    assert.ok(p.finished);
  });

  it('BUFFERED request and response bodies: body replaced, content-length in the same reply, route cache cleared with the cluster header', async () => {
    const ex = new FakeExchange();
    const p = new Processor(ex);
    const [, body, , rbody] = await run(p, [M.reqHeaders(false), M.reqBody('hello'), M.respHeaders(200), M.respBody('ok')]);
    const c = body!.request_body!.response!;
    assert.equal(c.body_mutation?.body?.toString(), 'HELLO');
    assert.equal(setHeader(body, 'request_body', 'content-length'), '5');
    assert.equal(setHeader(body, 'request_body', 'x-tollgate-cluster'), 'c1');
    assert.equal(c.clear_route_cache, true);
    assert.equal(rbody!.response_body!.response!.body_mutation?.body?.toString(), '[ok]');
    assert.equal(setHeader(rbody, 'response_body', 'content-length'), '4');
    assert.ok(body!.dynamic_metadata?.fields?.tollgate, 'dynamic metadata in namespace tollgate');
    assert.deepEqual(ex.ends.map((e) => e.reason), ['completed']);
  });

  it('STREAMED response via mode_override: every chunk answered in order, one-to-one, header mutations never on chunk replies', async () => {
    const ex = new FakeExchange({ stream: true });
    const p = new Processor(ex);
    const out = await run(p, [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200), M.respBody('a', false), M.respBody('b', false), M.respBody('', true)]);
    assert.equal(out[2]!.mode_override?.response_body_mode, 'STREAMED');
    const bodies = out.slice(3).map((r) => r!.response_body!.response!);
    assert.deepEqual(bodies.map((b) => b.body_mutation?.body?.toString()), ['A', 'B', '|END']);
    for (const b of bodies) assert.equal(b.header_mutation, undefined);
    assert.deepEqual(ex.chunks, [{ data: 'a', last: false }, { data: 'b', last: false }, { data: '', last: true }]);
    assert.deepEqual(ex.ends.map((e) => e.reason), ['completed']);
  });

  it('request trailers after a body with end_of_stream=false, response trailers after a streamed body', async () => {
    const ex = new FakeExchange({ stream: true });
    const p = new Processor(ex);
    const out = await run(p, [M.reqHeaders(false), M.reqBody('x', false), M.reqTrailers(), M.respHeaders(200), M.respBody('a', false), M.respTrailers()]);
    assert.ok(out[2]!.request_trailers);
    assert.ok(out[5]!.response_trailers);
    assert.deepEqual(ex.chunks.at(-1), { data: '', last: true }, 'trailers end the stream for the exchange');
    assert.deepEqual(ex.ends.map((e) => e.reason), ['completed']);
  });

  it('response headers may arrive before the request body finished (a local reply downstream)', async () => {
    const ex = new FakeExchange();
    const p = new Processor(ex);
    const out = await run(p, [M.reqHeaders(false), M.respHeaders(503, true)]);
    assert.ok(out[1]!.response_headers);
    assert.deepEqual(ex.ends.map((e) => e.reason), ['completed']);
  });

  it('observability_mode: processes but sends no reply', async () => {
    const p = new Processor(new FakeExchange());
    const r = await p.handle({ ...M.reqHeaders(true), observability_mode: true });
    assert.equal(r, undefined);
  });
});

describe('Processor: preflight override_message_timeout', () => {
  it('asks for the exchange\'s timeout before a request body it says is large, never otherwise', async () => {
    const ex = Object.assign(new FakeExchange(), { requestBodyTimeoutMs: (n: number) => (n >= 10 ? 12500 : undefined) });
    const p = new Processor(ex);
    assert.equal(p.preflight(M.reqBody('0123456789')), undefined, 'not in the request_body state yet');
    await p.handle(M.reqHeaders(false));
    assert.equal(p.preflight(M.reqBody('small')), undefined);
    assert.deepEqual(p.preflight(M.reqBody('0123456789abc')), { override_message_timeout: { seconds: 12, nanos: 500e6 } });
    assert.equal(p.preflight({ ...M.reqBody('0123456789abc'), observability_mode: true }), undefined);
  });
});

describe('Processor: decisions and errors', () => {
  const table: { name: string; opts: FakeOptions; msgs: ProcessingRequest[]; status: number; errType: string }[] = [
    { name: 'auth failure on headers', opts: { failOn: 'headers' }, msgs: [M.reqHeaders(false)], status: 401, errType: 'authentication_error' },
    { name: 'policy deny on body', opts: { failOn: 'body' }, msgs: [M.reqHeaders(false), M.reqBody('x')], status: 403, errType: 'permission_error' },
    { name: 'internal error on response headers', opts: { failOn: 'responseHeaders' }, msgs: [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200)], status: 500, errType: 'server_error' },
    { name: 'upstream error on response body', opts: { failOn: 'responseBody' }, msgs: [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200), M.respBody('x')], status: 502, errType: 'server_error' },
  ];
  for (const t of table) {
    it(`${t.name} → immediate_response ${t.status} in OpenAI error shape, end('rejected') once`, async () => {
      const ex = new FakeExchange(t.opts);
      const p = new Processor(ex);
      const out = await run(p, t.msgs);
      const ir = out.at(-1)!.immediate_response!;
      assert.equal(ir.status.code, t.status);
      const body = JSON.parse(ir.body!.toString());
      assert.equal(body.error.type, t.errType);
      assert.equal(typeof body.error.message, 'string');
      assert.ok(!/boom/.test(body.error.message), 'internal error details are not leaked');
      assert.deepEqual(ex.ends.map((e) => e.reason), ['rejected']);
      await assert.rejects(p.handle(M.respBody('late')), ProtocolError, 'nothing may follow an immediate response');
    });
  }

  it('abort mid-stream ends the exchange exactly once', async () => {
    const ex = new FakeExchange({ stream: true });
    const p = new Processor(ex);
    await run(p, [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200), M.respBody('a', false)]);
    p.abort('aborted', 'client went away');
    p.abort('aborted', 'again');
    assert.deepEqual(ex.ends, [{ reason: 'aborted', detail: 'client went away' }]);
  });
});

describe('Processor: a stream that starts with response headers (a filter before ext_proc answered)', () => {
  it('passes Envoy\'s reply through untouched; an error body becomes JSON both SDKs parse; nothing reaches the exchange', async () => {
    const ex = new FakeExchange();
    const p = new Processor(ex);
    const h = await p.handle(M.respHeaders(401));
    assert.deepEqual(h, { response_headers: { response: {} } });
    const b = await p.handle(M.respBody('Jwt is expired', true));
    const body = JSON.parse(Buffer.from(b!.response_body!.response!.body_mutation!.body!).toString()) as { type: string; error: { type: string; message: string; code: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'authentication_error');
    assert.match(body.error.message, /^Jwt is expired/);
    assert.equal(body.error.code, 'invalid_api_key');
    assert.ok(p.finished);
    assert.deepEqual(ex.ends, [], 'the exchange never started, so it records nothing');
  });
  it('a 2xx local reply (e.g. a direct response) is left exactly as it is', async () => {
    const p = new Processor(new FakeExchange());
    await p.handle(M.respHeaders(200));
    assert.deepEqual(await p.handle(M.respBody('ok', true)), { response_body: { response: {} } });
  });
});

describe('Processor: hostile sequences fail the stream, never the process', () => {
  const cases: [string, ProcessingRequest[]][] = [
    ['body before headers', [M.reqBody('x')]],
    ['response body first', [M.respBody('x')]],
    ['request headers after a local reply went through', [M.respHeaders(401), M.reqHeaders(false)]],
    ['duplicate request headers', [M.reqHeaders(false), M.reqHeaders(false)]],
    ['response body before response headers', [M.reqHeaders(false), M.reqBody('x'), M.respBody('x')]],
    ['message after the exchange finished', [M.reqHeaders(true), M.respHeaders(200, true), M.respBody('x')]],
    ['empty oneof', [{} as ProcessingRequest]],
    ['response headers without :status', [M.reqHeaders(true), { request: 'response_headers', response_headers: { headers: hdrs({ 'content-type': 'x' }) } }]],
    ['request trailers before any body', [M.reqHeaders(true), M.reqTrailers()]],
  ];
  for (const [name, msgs] of cases) {
    it(name, async () => {
      const p = new Processor(new FakeExchange());
      const last = msgs.at(-1)!;
      for (const m of msgs.slice(0, -1)) await p.handle(m);
      await assert.rejects(p.handle(last), ProtocolError);
    });
  }
});

describe('Processor: an exchange that answers synchronously', () => {
  // handleNow() continues in the same turn when a phase returns a value (no promise per message); it must
  // give exactly what the promise path gives, for every sequence, error and hostile message.
  const seqs: [string, FakeOptions, ProcessingRequest[]][] = [
    ['no bodies', {}, [M.reqHeaders(true), M.respHeaders(204, true)]],
    ['buffered bodies', {}, [M.reqHeaders(false), M.reqBody('hello'), M.respHeaders(200), M.respBody('ok')]],
    ['streamed response', { stream: true }, [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200), M.respBody('a', false), M.respBody('b', false), M.respBody('', true)]],
    ['trailers', { stream: true }, [M.reqHeaders(false), M.reqBody('x', false), M.reqTrailers(), M.respHeaders(200), M.respBody('a', false), M.respTrailers()]],
    ['trailers instead of a body', {}, [M.reqHeaders(false), M.reqTrailers(), M.respHeaders(200), M.respBody('ok')]],
    ['local reply downstream', {}, [M.reqHeaders(false), M.respHeaders(503, true)]],
    ['passthrough', {}, [M.respHeaders(401), M.respBody('Jwt is expired', true)]],
    ['observability mode', {}, [{ ...M.reqHeaders(false), observability_mode: true }, { ...M.reqBody('x'), observability_mode: true }]],
    ['fail on headers', { failOn: 'headers' }, [M.reqHeaders(false), M.respBody('late')]],
    ['fail on body', { failOn: 'body' }, [M.reqHeaders(false), M.reqBody('x')]],
    ['fail on body after trailers', { failOn: 'body' }, [M.reqHeaders(false), M.reqTrailers()]],
    ['fail on response headers', { failOn: 'responseHeaders' }, [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200)]],
    ['fail on response body', { failOn: 'responseBody' }, [M.reqHeaders(false), M.reqBody('x'), M.respHeaders(200), M.respBody('x')]],
    ['fail quietly in observability mode', { failOn: 'body' }, [M.reqHeaders(false), { ...M.reqBody('x'), observability_mode: true }]],
    ['hostile: body first', {}, [M.reqBody('x')]],
    ['hostile: bad :status', {}, [M.reqHeaders(true), { request: 'response_headers', response_headers: { headers: hdrs({ 'content-type': 'x' }) } }]],
    ['hostile: after the end', {}, [M.reqHeaders(true), M.respHeaders(200, true), M.respBody('x')]],
  ];
  type Outcome = { replies: unknown[]; ends: FakeExchange['ends']; chunks: FakeExchange['chunks']; finished: boolean; lastError: unknown };
  async function outcome(opts: FakeOptions, msgs: ProcessingRequest[], sync: boolean): Promise<Outcome> {
    const ex = new FakeExchange({ ...opts, sync });
    const p = new Processor(ex);
    const replies: unknown[] = [];
    for (const m of msgs) {
      if (!sync) {
        replies.push(await p.handle(m).catch((e: unknown) => (e instanceof ProtocolError ? `protocol: ${e.message}` : e)));
        continue;
      }
      try {
        const r = p.handleNow(m);
        assert.ok(!(r instanceof Promise), 'a synchronous exchange is answered without a promise');
        replies.push(r);
      } catch (e) {
        replies.push(e instanceof ProtocolError ? `protocol: ${e.message}` : e);
      }
    }
    // Replies as Envoy reads them (the encoded bytes' fields), not object identity.
    return { replies: JSON.parse(JSON.stringify(replies, (_k, v: unknown) => (v instanceof MutationBuilder ? undefined : v))), ends: ex.ends, chunks: ex.chunks, finished: p.finished, lastError: p.lastError };
  }
  for (const [name, opts, msgs] of seqs)
    it(`${name}: the same replies, ends and errors as through promises`, async () => {
      const a = await outcome(opts, msgs, false);
      const b = await outcome(opts, msgs, true);
      assert.deepEqual(b, a);
    });
}
);
