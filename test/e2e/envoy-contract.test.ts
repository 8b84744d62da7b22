// Envoy contract: the router-level ext_proc filter of the shipped envoy/envoy.yaml, run by a REAL
// Envoy (every pinned version, test/run.ts), against a deliberately misbehaving scripted processor.
// Each case pins down Envoy's observable reaction — status, body, access-log details/flags, ext_proc
// counters, what the processor and the upstream saw — so Tollgate can rely on it. These replaced the
// old stand-in's strictness tests; where the stand-in had said otherwise, docs/envoy.md ("Where the
// stand-in was wrong") lists it. Routing as shipped: the processor sets x-tollgate-cluster and clears
// the route cache, else the request gets the direct 404 route.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcTrouble, startEnvoy, type AccessLogEntry, type EnvoyFront, type EnvoyFrontOptions } from '../support/envoy.ts';
import { eventually, startScriptedProcessor, startScriptedUpstream, type Script, type ScriptedUpstream, type StreamLog } from '../support/scripted.ts';

const raw = (v: string) => Buffer.from(v);
const set = (key: string, value: string) => ({ header: { key, raw_value: raw(value) } });
const route = { header_mutation: { set_headers: [set('x-tollgate-cluster', 'up')] }, clear_route_cache: true };
const ROUTER_STATS = 'http.llm_ingress.ext_proc.';

/** A well-behaved processor: routes to `up` on the body reply, changes nothing else. */
const ok: Script = (m) => {
  if (m.request === 'request_headers') return { request_headers: { response: {} } };
  if (m.request === 'request_body') return { request_body: { response: route } };
  if (m.request === 'response_headers') return { response_headers: { response: {} } };
  if (m.request === 'response_body') return { response_body: { response: {} } };
  return null;
};
/** `ok`, except for one message kind. */
const except =
  (kind: NonNullable<Parameters<Script>[0]['request']>, reply: (later: (r: ProcessingResponse) => void) => ProcessingResponse | null): Script =>
  (m, s, later) =>
    m.request === kind ? reply(later) : ok(m, s, later);

interface Outcome {
  status: number;
  text: string;
  ms: number;
  /** The request's access log line. */
  log: AccessLogEntry;
  /** Nonzero router-level ext_proc counters, by short name. */
  counters: Record<string, number>;
  trouble: Record<string, number>;
  streams: StreamLog[];
  envoy: EnvoyFront;
}

describe('Envoy contract: router-level ext_proc filter vs a misbehaving processor', { timeout: 120_000 }, () => {
  let up: ScriptedUpstream;
  before(async () => {
    up = await startScriptedUpstream('up');
  });
  after(() => up.close());

  async function run(script: Script, opts: Partial<EnvoyFrontOptions> & { body?: string; processorAddr?: string } = {}): Promise<Outcome> {
    const p = await startScriptedProcessor(script);
    const { body = '{"a":1}', processorAddr, ...envoyOpts } = opts;
    const envoy = await startEnvoy({
      extProcAddrs: [processorAddr ?? p.addr],
      clusters: { up: { host: '127.0.0.1', port: up.port } },
      messageTimeoutMs: 2000,
      ...envoyOpts,
    });
    up.seen.length = 0;
    try {
      const t0 = Date.now();
      const res = await fetch(`${envoy.url}/v1/x`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      const ms = Date.now() - t0;
      await eventually(() => envoy.accessLog.length > 0, 'the access log line');
      const counters: Record<string, number> = {};
      for (const [k, v] of Object.entries(await envoy.stats('ext_proc')))
        if (k.startsWith(ROUTER_STATS) && v > 0 && !/stream_msgs|streams_(started|closed)/.test(k)) counters[k.slice(ROUTER_STATS.length)] = v;
      return { status: res.status, text, ms, log: envoy.accessLog.at(-1)!, counters, trouble: await extProcTrouble(envoy), streams: p.streams, envoy };
    } finally {
      await envoy.close();
      p.close();
    }
  }
  const kinds = (s: StreamLog | undefined) => s?.messages.map((m) => m.request);

  it('a well-behaved processor gets the request routed (control case)', async () => {
    const r = await run(ok);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { from: 'up', n: 1 });
    assert.deepEqual([r.log.details, r.log.upstream_cluster, r.log.attempts], ['via_upstream', 'up', 1]);
    assert.deepEqual(r.trouble, {});
    assert.deepEqual(kinds(r.streams[0]), ['request_headers', 'request_body', 'response_headers', 'response_body']);
    assert.equal(up.seen[0]!.headers['x-tollgate-cluster'], 'up');
  });

  it('body changed without fixing content-length → 500 (details mismatch_between_content_length_…), upstream never contacted', async () => {
    const r = await run(except('request_body', () => ({ request_body: { response: { ...route, body_mutation: { body: raw('{"a":12345}') } } } })));
    assert.equal(r.status, 500);
    assert.equal(r.text, '');
    // The stand-in wrote this detail with spaces and the lengths ("mismatch between content length (7) …").
    assert.equal(r.log.details, 'mismatch_between_content_length_and_the_length_of_the_mutated_body');
    assert.equal(r.counters.immediate_responses_sent, 1);
    assert.equal(up.seen.length, 0);
  });

  it('a reply of the wrong type is a spurious message → 500 spurious_message', async () => {
    const r = await run(except('request_headers', () => ({ request_body: { response: {} } })));
    assert.equal(r.status, 500);
    assert.equal(r.log.details, 'spurious_message');
    assert.equal(r.counters.spurious_msgs_received, 1);
    assert.deepEqual(kinds(r.streams[0]), ['request_headers']);
    assert.equal(up.seen.length, 0);
  });

  it('no reply within message_timeout → 504 ext_proc_error_per-message_timeout_exceeded', async () => {
    const r = await run(except('request_body', () => null), { messageTimeoutMs: 300 });
    assert.equal(r.status, 504);
    assert.equal(r.log.details, 'ext_proc_error_per-message_timeout_exceeded');
    assert.equal(r.counters.message_timeouts, 1);
    assert.ok(r.ms >= 300, `${r.ms} ms`);
    assert.equal(up.seen.length, 0);
  });

  it('override_message_timeout extends the wait for that message only with max_message_timeout set', async () => {
    const slow: Script = except('request_body', (later) => {
      setTimeout(() => later({ request_body: { response: route } }), 600);
      return { override_message_timeout: { seconds: 5 } };
    });
    const withMax = await run(slow, { messageTimeoutMs: 200, maxMessageTimeoutMs: 10_000 });
    assert.equal(withMax.status, 200);
    assert.ok(withMax.ms >= 600, `${withMax.ms} ms`);
    assert.deepEqual(withMax.counters, { override_message_timeout_received: 1 });
    // max_message_timeout 0s is its proto default (unset): overrides are not allowed.
    const withoutMax = await run(slow, { messageTimeoutMs: 200, maxMessageTimeoutMs: 0 });
    assert.equal(withoutMax.status, 504);
    assert.equal(withoutMax.log.details, 'ext_proc_error_per-message_timeout_exceeded');
    assert.equal(withoutMax.counters.override_message_timeout_ignored, 1);
    assert.equal(withoutMax.counters.message_timeouts, 1);
  });

  it('clear_route_cache without a header mutation is ignored: the route picked at request start (direct 404) stays', async () => {
    let first = true;
    const r = await run((m, s, later) => {
      // The cluster header is set in the headers phase WITHOUT clear_route_cache …
      if (m.request === 'request_headers') return { request_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', 'up')] } } } };
      // … and the body reply clears the route cache without mutating any header.
      if (m.request === 'request_body' && first) {
        first = false;
        return { request_body: { response: { clear_route_cache: true } } };
      }
      return ok(m, s, later);
    });
    // The stand-in said 503 ("route stays unresolved"); Envoy had already matched the shipped direct 404 route.
    assert.equal(r.status, 404);
    assert.match(r.text, /"code":"no_route"/);
    assert.equal(r.log.details, 'direct_response');
    assert.equal(r.counters.clear_route_cache_ignored, 1);
    assert.equal(up.seen.length, 0);
  });

  it('a value-only header mutation writes an empty header (Envoy reads raw_value only)', async () => {
    const r = await run(except('request_body', () => ({ request_body: { response: { ...route, header_mutation: { set_headers: [...route.header_mutation.set_headers, { header: { key: 'x-probe', value: 'hello' } }] } } } })));
    assert.equal(r.status, 200);
    assert.equal(up.seen[0]!.headers['x-probe'], '');
  });

  it('setting host is refused by the shipped mutation rules (counted, not an error)', async () => {
    const r = await run(except('request_body', () => ({ request_body: { response: { ...route, header_mutation: { set_headers: [...route.header_mutation.set_headers, set('host', 'evil.example')] } } } })));
    assert.equal(r.status, 200);
    assert.equal(r.counters.rejected_header_mutations, 1);
    assert.notEqual(up.seen[0]!.headers.host, 'evil.example');
  });

  it('mode_override on the response headers is honoured with allow_mode_override (shipped), ignored without', async () => {
    const noBody = except('response_headers', () => ({ response_headers: { response: {} }, mode_override: { response_body_mode: 'NONE' } }));
    const allowed = await run(noBody);
    assert.equal(allowed.status, 200);
    assert.deepEqual(kinds(allowed.streams[0]), ['request_headers', 'request_body', 'response_headers']);
    const refused = await run(noBody, { allowModeOverride: false });
    assert.equal(refused.status, 200);
    assert.deepEqual(kinds(refused.streams[0]), ['request_headers', 'request_body', 'response_headers', 'response_body']);
  });

  it('failure_mode_allow: a processor that stops answering on the response path is skipped, the response passes through', async () => {
    const r = await run(except('response_headers', () => null), { messageTimeoutMs: 300, failureModeAllow: true });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { from: 'up', n: 1 });
    assert.deepEqual(r.counters, { failure_mode_allowed: 1, message_timeouts: 1 });
  });

  it('the same processor without failure_mode_allow → 504 (fail closed), after the upstream already answered', async () => {
    const r = await run(except('response_headers', () => null), { messageTimeoutMs: 300 });
    assert.equal(r.status, 504);
    assert.equal(r.log.details, 'ext_proc_error_per-message_timeout_exceeded');
    assert.deepEqual([r.log.upstream_cluster, r.log.attempts], ['up', 1]);
    assert.equal(up.seen.length, 1);
  });

  it('processor down → 500 ext_proc_error_gRPC_error_14 (fail closed)', async () => {
    const r = await run(ok, { processorAddr: '127.0.0.1:1', messageTimeoutMs: 500, body: '{}' });
    assert.equal(r.status, 500);
    assert.match(String(r.log.details), /^ext_proc_error_gRPC_error_14\{/);
    assert.equal(r.counters.streams_failed, 1);
    assert.equal(up.seen.length, 0);
  });

  it('a body over the buffer limit → 413 before the processor sees the body; the 413 itself goes through the response path', async () => {
    const r = await run(ok, { bufferLimitBytes: 1000, body: 'x'.repeat(5000) });
    assert.equal(r.status, 413);
    assert.equal(r.text, 'Payload Too Large');
    assert.equal(r.log.details, 'request_payload_too_large');
    // The stand-in said the processor saw nothing; Envoy sends the request headers first, then its
    // own 413 local reply to the same stream (response_headers + response_body).
    assert.deepEqual(kinds(r.streams[0]), ['request_headers', 'response_headers', 'response_body']);
    assert.equal(up.seen.length, 0);
  });
});
