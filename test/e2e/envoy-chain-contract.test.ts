// Envoy contract: the shipped chain route (retry policy with previous_priorities) and chain cluster
// (one priority per deployment, Tollgate's upstream ext_proc filter run once per attempt), run by a
// REAL Envoy (every pinned version) — docs/design/provider-fallback.md §1.2, §2. A scripted processor
// plays both ext_proc filters (the upstream one is told apart by its gRPC initial metadata) and tiny
// loopback upstreams answer, reset or hang as told. These replaced the old stand-in's chain tests;
// where the stand-in had said otherwise, docs/envoy.md ("Where the stand-in was wrong") lists it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProcessingRequest } from '../../service/extproc/messages.ts';
import { fromPbStruct, toPbStruct } from '../../service/extproc/mutations.ts';
import { DEPLOYMENT_ATTRIBUTE, PLAN_NAMESPACE, STAGE_METADATA_KEY, UPSTREAM_STAGE } from '../../service/fallback/contract.ts';
import { startEnvoy, testEnvoyBinary, type AccessLogEntry, type EnvoyFront, type EnvoyFrontOptions } from '../support/envoy.ts';
import {
  eventually,
  headerValue,
  startScriptedProcessor,
  startScriptedUpstream,
  type Action,
  type Script,
  type ScriptedUpstream,
  type StreamLog,
} from '../support/scripted.ts';

const raw = (v: string) => Buffer.from(v);
const set = (key: string, value: string) => ({ header: { key, raw_value: raw(value) } });
const CHAIN = 'tgc.test';
const MISSING_ATTRIBUTE = "xds.upstream_host_metadata.filter_metadata['tollgate']['missing']";

/** Router-level stage: routes to `cluster` on the body reply and writes the plan into dynamic metadata. */
const routeTo =
  (cluster: string): Script =>
  (m) => {
    if (m.request === 'request_headers') return { request_headers: { response: {} } };
    if (m.request === 'request_body')
      return {
        request_body: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', cluster)] }, clear_route_cache: true } },
        dynamic_metadata: toPbStruct({ [PLAN_NAMESPACE]: { plan: 'plan-1' } }),
      };
    if (m.request === 'response_headers') return { response_headers: { response: {} } };
    if (m.request === 'response_body') return { response_body: { response: {} } };
    return null;
  };

/** Router-level stage for request_body_mode NONE: routes on the headers reply. */
const routeOnHeaders =
  (cluster: string): Script =>
  (m, s, later) =>
    m.request === 'request_headers'
      ? { request_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', cluster)] }, clear_route_cache: true } } }
      : routeTo(cluster)(m, s, later);

/** Upstream stage that changes nothing. */
const passUpstream: Script = (m) => {
  if (m.request === 'request_headers') return { request_headers: { response: {} } };
  if (m.request === 'request_body') return { request_body: { response: {} } };
  if (m.request === 'response_headers') return { response_headers: { response: {} } };
  return null;
};

interface Setup {
  /** Scripts for the two chain endpoints (priority 0 = a, 1 = b). */
  a?: Action[];
  b?: Action[];
  /** Script for the single cluster `plain`. */
  plain?: Action[];
  /** Endpoint a is 127.0.0.1:1 (connection refused). */
  aDead?: boolean;
  /** Extra chain `tgc.one` with `plain` as its only priority. */
  oneMemberChain?: boolean;
  router?: Script;
  upstream?: Script;
  /** Chain without the upstream ext_proc filter. */
  noUpstreamFilter?: boolean;
  envoy?: Partial<EnvoyFrontOptions>;
  /** The router stage routes here (default the chain). */
  cluster?: string;
}

interface Fixture {
  envoy: EnvoyFront;
  version: string;
  streams: StreamLog[];
  a: ScriptedUpstream;
  b: ScriptedUpstream;
  plain: ScriptedUpstream;
  upstreamStreams(): StreamLog[];
  routerStream(): StreamLog;
  send(body?: string): Promise<{ status: number; text: string; headers: Headers; ms: number }>;
  /** The request's access log line (waits for it). */
  log(): Promise<AccessLogEntry>;
  /** A counter of the chain cluster (`upstream_rq_retry`, …); 0 if absent. */
  clusterStat(name: string): Promise<number>;
  /** A counter of the chain's upstream ext_proc filter; 0 if absent. */
  filterStat(name: string): Promise<number>;
}

async function withChain(setup: Setup, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const p = await startScriptedProcessor(setup.router ?? routeTo(setup.cluster ?? CHAIN), setup.upstream ?? passUpstream);
  const a = await startScriptedUpstream('a', setup.a);
  const b = await startScriptedUpstream('b', setup.b);
  const plain = await startScriptedUpstream('plain', setup.plain);
  const { version } = await testEnvoyBinary();
  const envoy = await startEnvoy({
    extProcAddrs: [p.addr],
    clusters: { plain: { host: '127.0.0.1', port: plain.port } },
    chains: {
      [CHAIN]: {
        priorities: [
          { host: '127.0.0.1', port: setup.aDead ? 1 : a.port, deployment: 'd-a' },
          { host: '127.0.0.1', port: b.port, deployment: 'd-b' },
        ],
        ...(setup.noUpstreamFilter ? { upstreamExtProc: false } : {}),
      },
      ...(setup.oneMemberChain ? { 'tgc.one': { priorities: [{ host: '127.0.0.1', port: plain.port, deployment: 'd-plain' }] } } : {}),
    },
    upstreamExtProc: { extraRequestAttributes: ['xds.cluster_name', MISSING_ATTRIBUTE], ...setup.envoy?.upstreamExtProc },
    ...setup.envoy,
  });
  const stat = async (name: string): Promise<number> => (await envoy.stats(name))[name] ?? 0;
  try {
    await fn({
      envoy,
      version,
      streams: p.streams,
      a,
      b,
      plain,
      upstreamStreams: () => p.streams.filter((s) => s.stage === 'upstream'),
      routerStream: () => p.streams.find((s) => s.stage === 'router')!,
      send: async (body = '{"model":"m","n":1}') => {
        const t0 = Date.now();
        const res = await fetch(`${envoy.url}/v1/chat/completions`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(10_000),
        });
        return { status: res.status, text: await res.text(), headers: res.headers, ms: Date.now() - t0 };
      },
      log: async () => {
        await eventually(() => envoy.accessLog.length > 0, 'the access log line');
        return envoy.accessLog.at(-1)!;
      },
      clusterStat: (name) => stat(`cluster.${CHAIN}.${name}`),
      // Envoy 1.37 names the upstream filter's stats `cluster.<c>.cluster.<c>ext_proc.<prefix>.*` (the
      // cluster's scope prefix twice, no dot before ext_proc); 1.40 names them `cluster.<c>.ext_proc.<prefix>.*`.
      filterStat: (name) =>
        stat(version.startsWith('1.37.') ? `cluster.${CHAIN}.cluster.${CHAIN}ext_proc.tollgate_upstream.${name}` : `cluster.${CHAIN}.ext_proc.tollgate_upstream.${name}`),
    });
  } finally {
    await envoy.close();
    p.close();
    await Promise.all([a.close(), b.close(), plain.close()]);
  }
}

const body = (r: { text: string }) => JSON.parse(r.text) as { from: string; n: number };
/** What the router-level filter saw on its response path: the :status of each response_headers, and whether a response_body followed. */
const routerResponse = (f: Fixture) => {
  const msgs = f.routerStream().messages;
  return { statuses: msgs.filter((m) => m.request === 'response_headers').map((m) => headerValue(m, ':status')), body: msgs.some((m) => m.request === 'response_body') };
};
const attrs = (m: ProcessingRequest) => fromPbStruct(m.attributes?.['envoy.filters.http.ext_proc']);

describe('Envoy contract: retries over a priority chain (shipped chain route)', { timeout: 120_000 }, () => {
  it('a 503 moves to the next priority with previous_priorities; a third attempt starts over at priority 0', async () => {
    await withChain({ a: [503], b: [503] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'a', n: 2 });
      const log = await f.log();
      assert.deepEqual([log.details, log.upstream_cluster, log.attempts], ['via_upstream', CHAIN, 3]);
      assert.equal(f.a.seen.length, 2);
      assert.equal(f.b.seen.length, 1);
      assert.deepEqual(f.upstreamStreams().map((s) => attrs(s.messages[0]!)[DEPLOYMENT_ATTRIBUTE]), ['d-a', 'd-b', 'd-a']);
      assert.equal(await f.clusterStat('upstream_rq_retry'), 2);
    });
  });

  it('without previous_priorities every attempt stays on priority 0', async () => {
    await withChain({ a: [503], envoy: { retry: { previousPriorities: false } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'a', n: 2 });
      assert.equal((await f.log()).attempts, 2);
      assert.equal(f.b.seen.length, 0);
    });
  });

  it('the single-cluster route has no retry policy: a 502 goes to the client; a one-member chain retries its one host', async () => {
    await withChain({ cluster: 'plain', plain: [502] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 502);
      assert.deepEqual(body(r), { from: 'plain', n: 1 });
      const log = await f.log();
      assert.deepEqual([log.upstream_cluster, log.attempts], ['plain', 1]);
      assert.equal(f.upstreamStreams().length, 0, 'plain clusters have no upstream filter');
    });
    await withChain({ cluster: 'tgc.one', oneMemberChain: true, plain: [502] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'plain', n: 2 });
      assert.deepEqual([(await f.log()).upstream_cluster, (await f.log()).attempts], ['tgc.one', 2]);
      assert.equal(f.a.seen.length + f.b.seen.length, 0);
    });
  });

  it('429 is retried because the shipped policy lists it in retriable_status_codes; with 5xx,reset only it is not', async () => {
    await withChain({ a: [429] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.equal(await f.clusterStat('retry.upstream_rq_429'), 1);
    });
    await withChain({ a: [429], envoy: { retry: { retryOn: ['5xx', 'reset'] } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 429, '5xx does not cover 429');
      assert.deepEqual(body(r), { from: 'a', n: 1 });
      assert.equal(f.b.seen.length, 0);
      assert.equal(await f.clusterStat('upstream_rq_retry'), 0);
    });
  });

  it('a reset before the response is retried; so is a connect failure', async () => {
    await withChain({ a: ['reset'] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.equal(f.a.seen.length, 1, 'the request did reach a');
      assert.equal(await f.clusterStat('upstream_rq_retry'), 1);
      // The reset attempt's filter stream is half-closed; the answered one is cancelled (see below).
      await eventually(() => f.upstreamStreams().every((s) => s.end), 'both attempt streams to end');
      assert.deepEqual(f.upstreamStreams().map((s) => s.end), ['half-close', 'cancel']);
    });
    await withChain({ aDead: true }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.equal(await f.clusterStat('upstream_cx_connect_fail'), 1);
      assert.equal((await f.log()).attempts, 2);
    });
  });

  it('connect-failure alone does not retry a reset: the client gets the 503 reset reply', async () => {
    await withChain({ a: ['reset'], envoy: { retry: { retryOn: ['connect-failure'] } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.match(r.text, /reset reason: connection termination/);
      assert.doesNotMatch(r.text, /retried/);
      const log = await f.log();
      assert.deepEqual([log.details, log.flags, log.attempts], ['upstream_reset_before_response_started{connection_termination}', 'UC', 1]);
      assert.equal(f.b.seen.length, 0);
      // The router's own local reply goes through the router-level filter's response path (the
      // stand-in sent it straight to the client).
      assert.deepEqual(routerResponse(f), { statuses: ['503'], body: true });
    });
  });

  it('a per-try timeout is retried (a hangs, b answers)', async () => {
    await withChain({ a: ['hang'], envoy: { retry: { perTryTimeoutMs: 300, numRetries: 1 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.ok(r.ms >= 300, `${r.ms} ms`);
      assert.equal(await f.clusterStat('upstream_rq_per_try_timeout'), 1);
    });
  });

  it('when the attempts run out the client sees the last error (URX)', async () => {
    await withChain({ a: [503, 503], b: [503, 503], envoy: { retry: { numRetries: 1 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.deepEqual(body(r), { from: 'b', n: 1 }, "the last attempt's own response");
      const log = await f.log();
      assert.deepEqual([log.details, log.flags, log.attempts], ['via_upstream', 'URX', 2]);
      assert.equal(await f.clusterStat('upstream_rq_retry_limit_exceeded'), 1);
    });
    await withChain({ a: ['reset'], b: ['reset'], envoy: { retry: { numRetries: 1, retryOn: ['reset'] } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.match(r.text, /retried and the latest reset reason: connection termination/);
      const log = await f.log();
      assert.deepEqual([log.details, log.flags, log.attempts], ['upstream_reset_before_response_started{connection_termination}', 'URX,UC', 2]);
      assert.deepEqual(routerResponse(f), { statuses: ['503'], body: true });
    });
  });

  it('a request body over the buffer limit disables retries (router-level body mode NONE)', async () => {
    await withChain(
      {
        a: [503],
        router: routeOnHeaders(CHAIN),
        noUpstreamFilter: true,
        envoy: { processingMode: { request_body_mode: 'NONE' }, bufferLimitBytes: 1000 },
      },
      async (f) => {
        const r = await f.send('x'.repeat(5000));
        assert.equal(r.status, 503);
        assert.deepEqual(body(r), { from: 'a', n: 1 });
        assert.equal(f.a.seen[0]!.body.length, 5000);
        assert.equal(f.b.seen.length, 0);
        assert.equal(await f.clusterStat('retry_or_shadow_abandoned'), 1);
      },
    );
  });
});

describe('Envoy contract: the upstream ext_proc filter, once per attempt', { timeout: 120_000 }, () => {
  it('opens a new Process stream per attempt with the initial metadata, the endpoint attribute and the forwarded plan', async () => {
    await withChain({ a: [503] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      const ups = f.upstreamStreams();
      assert.equal(ups.length, 2, 'one stream per attempt');
      assert.equal(f.streams.filter((s) => s.stage === 'router').length, 1);
      assert.equal(f.routerStream().metadata[STAGE_METADATA_KEY], undefined);
      const deployments = ups.map((s) => {
        const first = s.messages[0]!;
        assert.equal(first.request, 'request_headers');
        const a = attrs(first);
        assert.equal(a['xds.cluster_name'], CHAIN);
        assert.ok(!(MISSING_ATTRIBUTE in a), 'an unresolved attribute is omitted');
        for (const m of s.messages.slice(1)) assert.equal(m.attributes?.['envoy.filters.http.ext_proc'], undefined, 'attributes only on the first message');
        for (const m of s.messages) assert.deepEqual(fromPbStruct(m.metadata_context?.filter_metadata?.[PLAN_NAMESPACE]), { plan: 'plan-1' }, 'the plan on every message');
        assert.equal(s.metadata[STAGE_METADATA_KEY], UPSTREAM_STAGE);
        return a[DEPLOYMENT_ATTRIBUTE];
      });
      assert.deepEqual(deployments, ['d-a', 'd-b']);
      assert.deepEqual(
        ups.map((s) => s.messages.map((m) => m.request)),
        [
          ['request_headers', 'request_body', 'response_headers'],
          ['request_headers', 'request_body', 'response_headers'],
        ],
      );
      // The discarded attempt's stream ends before the next attempt opens its own; the final one
      // when the exchange is over. Both are cancelled (gRPC RST_STREAM, no half-close first) — the
      // stand-in half-closed them.
      assert.ok(ups[0]!.endedAt !== undefined && ups[0]!.endedAt < ups[1]!.openedAt, JSON.stringify(ups.map((s) => [s.openedAt, s.endedAt])));
      await eventually(() => ups[1]!.endedAt !== undefined, 'the final attempt stream to end');
      assert.deepEqual(ups.map((s) => s.end), ['cancel', 'cancel']);
      // Only the final attempt's response reaches the router-level filter.
      const routerMsgs = f.routerStream().messages.filter((m) => m.request === 'response_headers');
      assert.equal(routerMsgs.length, 1);
      assert.equal(headerValue(routerMsgs[0]!, ':status'), '200');
    });
  });

  it('attempts share one header list: a content-length set on attempt 1 is stale on attempt 2 and stalls it; resetting it per attempt works', async () => {
    const original = '{"model":"m","n":1}';
    const translated = (dep: string) => `{"translated":true,"for":"${dep}"}`;
    const translate =
      (everyAttempt: boolean): Script =>
      (m, s, later) => {
        if (m.request !== 'request_body' || (s.index > 0 && !everyAttempt)) return passUpstream(m, s, later);
        const out = translated(s.index === 0 ? 'd-a' : 'd-b');
        const headers = [set('content-length', String(out.length)), ...(s.index === 0 ? [set('x-set-on-attempt', '1')] : [])];
        return { request_body: { response: { header_mutation: { set_headers: headers }, body_mutation: { body: raw(out) } } } };
      };
    // Attempt 2's filter leaves the body alone: the router-level body (19 bytes) goes out under
    // attempt 1's content-length (31), so b waits for bytes that never come — until the per-try timeout.
    await withChain({ a: [503], upstream: translate(false), envoy: { retry: { numRetries: 1, perTryTimeoutMs: 500 } } }, async (f) => {
      const r = await f.send(original);
      assert.equal(f.a.seen[0]!.body, translated('d-a'));
      const second = f.upstreamStreams()[1]!;
      assert.equal(headerValue(second.messages[0]!, 'x-set-on-attempt'), '1', "attempt 1's header mutation is still there");
      assert.equal(headerValue(second.messages[0]!, 'content-length'), String(translated('d-a').length), "and so is attempt 1's content-length");
      assert.equal(Buffer.from(second.messages[1]!.request_body!.body!).toString(), original, 'the body is a fresh copy of the router-level body');
      // The stand-in said b received the original body; Envoy sends the stale content-length and b never gets a whole request.
      assert.equal(r.status, 504);
      assert.equal(f.b.seen.length, 0);
      const log = await f.log();
      assert.deepEqual([log.details, log.flags], ['upstream_per_try_timeout', 'URX,UT']);
      assert.deepEqual(routerResponse(f), { statuses: ['504'], body: true });
    });
    await withChain({ a: [503], upstream: translate(true) }, async (f) => {
      const r = await f.send(original);
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.equal(f.b.seen[0]!.body, translated('d-b'));
      assert.equal(f.b.seen[0]!.headers['x-set-on-attempt'], '1');
    });
  });

  it('x-envoy-attempt-count (include_request_attempt_count) counts attempts, at the upstream and in the filter', async () => {
    await withChain({ a: [503, 200], b: [503] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual([...f.a.seen, ...f.b.seen].map((s) => s.headers['x-envoy-attempt-count']).sort(), ['1', '2', '3']);
      assert.deepEqual(
        f.upstreamStreams().map((s) => headerValue(s.messages[0]!, 'x-envoy-attempt-count')),
        ['1', '2', '3'],
      );
    });
  });

  it('clear_route_cache from the upstream filter is ignored (clear_route_cache_upstream_ignored): no re-routing', async () => {
    await withChain(
      {
        upstream: (m, s, later) =>
          m.request === 'request_body'
            ? { request_body: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', 'plain')] }, clear_route_cache: true } } }
            : passUpstream(m, s, later),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(body(r), { from: 'a', n: 1 });
        assert.equal(f.plain.seen.length, 0);
        assert.equal(await f.filterStat('clear_route_cache_upstream_ignored'), 1);
        assert.equal(f.a.seen[0]!.headers['x-tollgate-cluster'], 'plain', 'the header mutation itself applies');
      },
    );
  });

  it('an immediate_response from the upstream filter goes to the client at once, with no retry (both versions have envoyproxy/envoy#41231)', async () => {
    await withChain(
      {
        upstream: (m, s, later) =>
          m.request === 'request_headers'
            ? { immediate_response: { status: { code: 503 }, body: raw('deployment not in plan'), details: 'tollgate_plan_mismatch' } }
            : passUpstream(m, s, later),
        // A short per-try timeout: were the refusal stalled (Envoy without #41231), it would fire and retry.
        envoy: { retry: { perTryTimeoutMs: 200 } },
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 503);
        assert.equal(r.text, 'deployment not in plan');
        const log = await f.log();
        assert.deepEqual([log.details, log.attempts], ['tollgate_plan_mismatch', 1]);
        assert.equal(f.a.seen.length + f.b.seen.length, 0, 'no upstream contacted, no retry although 5xx is retriable');
        await new Promise((res) => setTimeout(res, 400));
        assert.equal(f.upstreamStreams().length, 1);
        assert.equal(await f.clusterStat('upstream_rq_retry'), 0);
        assert.equal(await f.clusterStat('upstream_rq_per_try_timeout'), 0);
        assert.equal(await f.filterStat('immediate_responses_sent'), 1);
        // The router-level filter sees the refusal on its response path.
        assert.deepEqual(routerResponse(f), { statuses: ['503'], body: true });
      },
    );
  });

  it(':authority is refused without allow_all_routing (rejected_header_mutations) and becomes the Host with it (shipped)', async () => {
    const setAuthority: Script = (m, s, later) =>
      m.request === 'request_body' ? { request_body: { response: { header_mutation: { set_headers: [set(':authority', 'api.provider.example')] } } } } : passUpstream(m, s, later);
    await withChain({ upstream: setAuthority, envoy: { upstreamExtProc: { allowAllRouting: false } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.notEqual(f.a.seen[0]!.headers.host, 'api.provider.example');
      assert.equal(await f.filterStat('rejected_header_mutations'), 1);
    });
    await withChain({ upstream: setAuthority }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.equal(f.a.seen[0]!.headers.host, 'api.provider.example');
      assert.equal(await f.filterStat('rejected_header_mutations'), 0);
    });
  });

  it("the filter's response-header mutation reaches the router-level filter, and the retry decision sees a mutated status", async () => {
    await withChain(
      {
        upstream: (m, s, later) =>
          m.request === 'response_headers'
            ? { response_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-served', `d-${s.index === 0 ? 'a' : 'b'};attempt=${s.index + 1}`)] } } } }
            : passUpstream(m, s, later),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        const rh = f.routerStream().messages.find((m) => m.request === 'response_headers')!;
        assert.equal(headerValue(rh, 'x-tollgate-served'), 'd-a;attempt=1');
        assert.equal(r.headers.get('x-tollgate-served'), 'd-a;attempt=1');
      },
    );
    // The upstream answers 200 but the filter turns it into a 503: the router retries.
    await withChain(
      {
        upstream: (m, s, later) =>
          m.request === 'response_headers' && s.index === 0 ? { response_headers: { response: { header_mutation: { set_headers: [set(':status', '503')] } } } } : passUpstream(m, s, later),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(body(r), { from: 'b', n: 1 });
        assert.equal(f.a.seen.length, 1, 'a answered 200');
        assert.equal(headerValue(f.upstreamStreams()[0]!.messages.find((m) => m.request === 'response_headers')!, ':status'), '200');
        assert.equal(await f.clusterStat('retry.upstream_rq_503'), 1);
      },
    );
  });

  it('a body mutation without a matching content-length → 500 to the client, not retried', async () => {
    await withChain(
      {
        upstream: (m, s, later) =>
          m.request === 'request_body' ? { request_body: { response: { body_mutation: { body: raw('{"much":"longer than before"}') } } } } : passUpstream(m, s, later),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 500);
        const log = await f.log();
        assert.deepEqual([log.details, log.attempts], ['mismatch_between_content_length_and_the_length_of_the_mutated_body', 1]);
        assert.equal(f.a.seen.length + f.b.seen.length, 0);
        assert.equal(f.upstreamStreams().length, 1);
        // The upstream filter's error reply (empty body) reaches the router-level filter as headers only.
        assert.deepEqual(routerResponse(f), { statuses: ['500'], body: false });
      },
    );
  });

  it('a silent upstream filter → 504 after its message timeout, not retried', async () => {
    await withChain(
      { upstream: (m, s, later) => (m.request === 'request_body' ? null : passUpstream(m, s, later)), envoy: { upstreamExtProc: { messageTimeoutMs: 200 } } },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 504);
        assert.equal((await f.log()).details, 'ext_proc_error_per-message_timeout_exceeded');
        assert.equal(await f.filterStat('message_timeouts'), 1);
        assert.deepEqual(routerResponse(f), { statuses: ['504'], body: false });
        assert.equal(f.upstreamStreams().length, 1);
        assert.equal(f.a.seen.length, 0);
      },
    );
  });

  it('a spurious reply from the upstream filter → 500 spurious_message', async () => {
    await withChain({ upstream: (m, s, later) => (m.request === 'request_headers' ? { request_body: { response: {} } } : passUpstream(m, s, later)) }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 500);
      assert.equal((await f.log()).details, 'spurious_message');
      assert.equal(await f.filterStat('spurious_msgs_received'), 1);
      assert.equal(f.a.seen.length, 0);
    });
  });

  it('a chain without an upstream filter sends attempts straight to the endpoints', async () => {
    await withChain({ a: [503], noUpstreamFilter: true }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(body(r), { from: 'b', n: 1 });
      assert.equal(f.upstreamStreams().length, 0);
    });
  });
});
