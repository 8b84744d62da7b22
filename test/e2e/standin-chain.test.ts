// The stand-in's router retries, priority "chain" clusters and per-attempt upstream ext_proc filter
// (docs/design/provider-fallback.md §1.2, §2.6). A scripted processor plays both filters (the
// upstream one is told apart by its gRPC initial metadata) and tiny loopback upstreams answer as
// told, so each case checks what Envoy would do with that traffic.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { fromPbStruct, toPbStruct } from '../../service/extproc/mutations.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import {
  DEPLOYMENT_ATTRIBUTE,
  ENDPOINT_DEPLOYMENT_KEY,
  ENDPOINT_METADATA_NAMESPACE,
  PLAN_NAMESPACE,
  STAGE_METADATA_KEY,
  UPSTREAM_STAGE,
} from '../../service/fallback/contract.ts';
import { startStandin, type Standin, type StandinOptions, type StandinUpstreamExtProc } from '../support/standin.ts';

const raw = (v: string) => Buffer.from(v);
const set = (key: string, value: string) => ({ header: { key, raw_value: raw(value) } });
const headerValue = (m: ProcessingRequest, key: string): string | undefined => {
  const h = (m.request_headers ?? m.response_headers)?.headers?.headers?.find((x) => x.key === key);
  return h ? Buffer.from(h.raw_value ?? Buffer.alloc(0)).toString('latin1') : undefined;
};

// ---- scripted upstreams ----

/** What an upstream does with one request: answer with this status, reset the socket, or never answer. */
type Action = number | 'reset' | 'hang';
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
interface Upstream {
  name: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers requests with `script` in order, then `then` (default 200); the body names the upstream. */
async function startUpstream(name: string, script: Action[] = [], then: Action = 200): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const action = script[seen.length - 1] ?? then;
      if (action === 'reset') return req.socket.destroy();
      if (action === 'hang') return;
      const out = JSON.stringify({ from: name, n: seen.length });
      res.writeHead(action, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nothing listens on (connect failure). */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// ---- the scripted processor (both filters) ----

interface StreamLog {
  stage: 'router' | 'upstream';
  /** 0-based, per stage: the n-th upstream stream is attempt n+1's. */
  index: number;
  metadata: Record<string, string>;
  messages: ProcessingRequest[];
  /** Sequence numbers (shared by all streams) of the stream's opening and of its half-close. */
  openedAt: number;
  endedAt?: number;
}
type Script = (m: ProcessingRequest, s: StreamLog) => ProcessingResponse | null;

async function startProcessor(router: Script, upstream: Script): Promise<{ addr: string; streams: StreamLog[]; close(): void }> {
  const streams: StreamLog[] = [];
  let seq = 0;
  const server = new grpc.Server();
  server.addService(extProcService(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
      const stage = metadata[STAGE_METADATA_KEY] === UPSTREAM_STAGE ? 'upstream' : 'router';
      const log: StreamLog = { stage, index: streams.filter((s) => s.stage === stage).length, metadata, messages: [], openedAt: seq++ };
      streams.push(log);
      call.on('data', (m: ProcessingRequest) => {
        log.messages.push(m);
        const r = (stage === 'upstream' ? upstream : router)(m, log);
        if (r) call.write(r);
      });
      call.on('end', () => {
        log.endedAt = seq++;
        call.end();
      });
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { addr: `127.0.0.1:${port}`, streams, close: () => server.forceShutdown() };
}

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
  (m, s) =>
    m.request === 'request_headers'
      ? { request_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', cluster)] }, clear_route_cache: true } } }
      : routeTo(cluster)(m, s);

/** Upstream stage that changes nothing. */
const passUpstream: Script = (m) => {
  if (m.request === 'request_headers') return { request_headers: { response: {} } };
  if (m.request === 'request_body') return { request_body: { response: {} } };
  if (m.request === 'response_headers') return { response_headers: { response: {} } };
  return null;
};

/**
 * The upstream filter as envoy/envoy.yaml configures it (harness UPSTREAM_EXTPROC), plus
 * xds.cluster_name, on an Envoy with envoyproxy/envoy#41231 (its local replies reach the client).
 */
const FILTER: StandinUpstreamExtProc = {
  localReplies: 'downstream',
  initialMetadata: { [STAGE_METADATA_KEY]: UPSTREAM_STAGE },
  requestAttributes: [DEPLOYMENT_ATTRIBUTE, 'xds.cluster_name', "xds.upstream_host_metadata.filter_metadata['tollgate']['missing']"],
  forwardingNamespaces: [PLAN_NAMESPACE],
  mutationRules: { allowAllRouting: true },
  messageTimeoutMs: 2000,
};

interface Setup {
  /** Scripts for the two chain endpoints (priority 0 = a, 1 = b). */
  a?: Action[];
  b?: Action[];
  /** Script for the plain cluster 'plain'. */
  plain?: Action[];
  /** Endpoint a is a port nothing listens on. */
  aDead?: boolean;
  router?: Script;
  upstream?: Script;
  /** The chain's upstream filter; null = none. */
  filter?: StandinUpstreamExtProc | null;
  standin?: Partial<StandinOptions>;
  /** Router routes here (default the chain). */
  cluster?: string;
}

interface Fixture {
  standin: Standin;
  streams: StreamLog[];
  a: Upstream;
  b: Upstream;
  plain: Upstream;
  upstreamStreams(): StreamLog[];
  routerStream(): StreamLog;
  send(body?: string): Promise<{ status: number; text: string; headers: Headers }>;
}

async function withChain(setup: Setup, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const p = await startProcessor(setup.router ?? routeTo(setup.cluster ?? 'tgc.test'), setup.upstream ?? passUpstream);
  const a = await startUpstream('a', setup.a);
  const b = await startUpstream('b', setup.b);
  const plain = await startUpstream('plain', setup.plain);
  const aPort = setup.aDead ? await deadPort() : a.port;
  const endpoint = (port: number, deployment: string) => ({ host: '127.0.0.1', port, metadata: { [ENDPOINT_METADATA_NAMESPACE]: { [ENDPOINT_DEPLOYMENT_KEY]: deployment } } });
  const standin = await startStandin({
    extProcAddr: p.addr,
    clusters: { plain: { host: '127.0.0.1', port: plain.port } },
    chains: {
      'tgc.test': {
        priorities: [endpoint(aPort, 'd-a'), endpoint(b.port, 'd-b')],
        ...(setup.filter === null ? {} : { upstreamExtProc: setup.filter ?? FILTER }),
      },
    },
    retry: { retryOn: ['5xx', 'reset', 'connect-failure'], numRetries: 2, previousPriorities: true, backoffMs: 5 },
    messageTimeoutMs: 2000,
    ...setup.standin,
  });
  try {
    await fn({
      standin,
      streams: p.streams,
      a,
      b,
      plain,
      upstreamStreams: () => p.streams.filter((s) => s.stage === 'upstream'),
      routerStream: () => p.streams.find((s) => s.stage === 'router')!,
      send: async (body = '{"model":"m","n":1}') => {
        const res = await fetch(`${standin.url}/v1/chat/completions`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(10000),
        });
        return { status: res.status, text: await res.text(), headers: res.headers };
      },
    });
  } finally {
    await standin.close();
    p.close();
    await Promise.all([a.close(), b.close(), plain.close()]);
  }
}

/** Waits (bounded) for a condition the stand-in reaches after the client already has its response. */
async function eventually(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const attemptsOf = (s: Standin) => s.exchanges.at(-1)!.attempts ?? [];
const kinds = (s: Standin, kind: string) => s.events.filter((e) => e.kind === kind);

describe('stand-in: retries over a priority chain', { timeout: 60000 }, () => {
  it('a 503 moves to the next priority with previous_priorities; a third attempt starts over at priority 0', async () => {
    await withChain({ a: [503], b: [503] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'a', n: 2 });
      assert.deepEqual(
        attemptsOf(f.standin).map((x) => [x.priority, x.status]),
        [
          [0, 503],
          [1, 503],
          [0, 200],
        ],
      );
      assert.equal(f.a.seen.length, 2);
      assert.equal(f.b.seen.length, 1);
      assert.equal(kinds(f.standin, 'retry').length, 2);
      assert.equal(f.standin.exchanges.at(-1)!.cluster, 'tgc.test');
    });
  });

  it('without previous_priorities every attempt stays on priority 0', async () => {
    await withChain({ a: [503], standin: { retry: { retryOn: ['5xx'], numRetries: 2, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'a', n: 2 });
      assert.deepEqual(attemptsOf(f.standin).map((x) => x.priority), [0, 0]);
      assert.equal(f.b.seen.length, 0);
    });
  });

  it('a plain cluster with a retry policy retries its one host', async () => {
    await withChain({ cluster: 'plain', plain: [502], standin: { retry: { retryOn: ['gateway-error'], numRetries: 1, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'plain', n: 2 });
      assert.deepEqual(
        attemptsOf(f.standin).map((x) => [x.port, x.status, x.priority]),
        [
          [f.plain.port, 502, undefined],
          [f.plain.port, 200, undefined],
        ],
      );
      assert.equal(f.a.seen.length + f.b.seen.length, 0);
      assert.equal(f.upstreamStreams().length, 0, 'plain clusters have no upstream filter');
    });
  });

  it('429 is retried only when retriable-status-codes lists it', async () => {
    await withChain({ a: [429], standin: { retry: { retryOn: ['5xx', 'reset'], numRetries: 2, previousPriorities: true, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 429, '5xx does not cover 429');
      assert.deepEqual(JSON.parse(r.text), { from: 'a', n: 1 });
      assert.equal(f.b.seen.length, 0);
      assert.equal(kinds(f.standin, 'retry').length, 0);
    });
    await withChain(
      { a: [429], standin: { retry: { retryOn: ['5xx', 'retriable-status-codes'], retriableStatusCodes: [429], numRetries: 2, previousPriorities: true, backoffMs: 5 } } },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
        assert.match(kinds(f.standin, 'retry')[0]!.detail, /429/);
      },
    );
  });

  it('a reset before the response is retried; so is a connect failure', async () => {
    await withChain({ a: ['reset'] }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
      const [first] = attemptsOf(f.standin);
      assert.equal(first!.status, 0);
      assert.match(first!.localReplyDetails ?? '', /^upstream_reset_before_response_started\{connection_termination\}$/);
      assert.equal(f.a.seen.length, 1, 'the request did reach a');
    });
    await withChain({ aDead: true, standin: { retry: { retryOn: ['connect-failure'], numRetries: 1, previousPriorities: true, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
      assert.match(attemptsOf(f.standin)[0]!.localReplyDetails ?? '', /remote_connection_failure/);
    });
  });

  it('connect-failure alone does not retry a reset: the client gets the 503 reset reply', async () => {
    await withChain({ a: ['reset'], standin: { retry: { retryOn: ['connect-failure'], numRetries: 2, previousPriorities: true, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.match(r.text, /reset reason: connection termination/);
      assert.doesNotMatch(r.text, /retried/);
      assert.equal(f.b.seen.length, 0);
    });
  });

  it('a per-try timeout is retried (a hangs, b answers)', async () => {
    await withChain({ a: ['hang'], standin: { retry: { retryOn: ['5xx'], numRetries: 1, previousPriorities: true, perTryTimeoutMs: 300, backoffMs: 5 } } }, async (f) => {
      const t0 = Date.now();
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
      assert.ok(Date.now() - t0 >= 300);
      assert.equal(attemptsOf(f.standin)[0]!.localReplyDetails, 'upstream_per_try_timeout');
    });
  });

  it('when the attempts run out the client sees the last error', async () => {
    await withChain({ a: [503, 503], b: [503, 503], standin: { retry: { retryOn: ['5xx'], numRetries: 1, previousPriorities: true, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 }, "the last attempt's own response");
      assert.equal(attemptsOf(f.standin).length, 2);
      assert.equal(kinds(f.standin, 'retry_limit_exceeded').length, 1);
      assert.equal(f.a.seen.length + f.b.seen.length, 2);
    });
    await withChain({ a: ['reset'], b: ['reset'], standin: { retry: { retryOn: ['reset'], numRetries: 1, previousPriorities: true, backoffMs: 5 } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 503);
      assert.match(r.text, /retried and the latest reset reason: connection termination/);
      assert.equal(f.standin.exchanges.at(-1)!.localReplyDetails, 'upstream_reset_before_response_started{connection_termination}');
    });
  });

  it('a request body over the buffer limit disables retries (router-level body mode NONE)', async () => {
    await withChain(
      {
        a: [503],
        router: routeOnHeaders('tgc.test'),
        filter: null,
        standin: { processingMode: { request_body_mode: 'NONE' }, bufferLimitBytes: 1000 },
      },
      async (f) => {
        const r = await f.send('x'.repeat(5000));
        assert.equal(r.status, 503);
        assert.equal(f.b.seen.length, 0);
        assert.equal(kinds(f.standin, 'retry_disabled').length, 1);
      },
    );
  });
});

describe('stand-in: the upstream ext_proc filter, once per attempt', { timeout: 60000 }, () => {
  it('opens a new Process stream per attempt with the initial metadata, the endpoint attribute and the forwarded plan', async () => {
    await withChain({ a: [503], standin: { extProcMetadata: { 'x-router-probe': 'router-level' } } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      const ups = f.upstreamStreams();
      assert.equal(ups.length, 2, 'one stream per attempt');
      assert.equal(f.streams.filter((s) => s.stage === 'router').length, 1);
      assert.equal(f.routerStream().metadata[STAGE_METADATA_KEY], undefined);
      assert.equal(f.routerStream().metadata['x-router-probe'], 'router-level', "the router-level filter's own initial metadata");
      const deployments = ups.map((s) => {
        const first = s.messages[0]!;
        assert.equal(first.request, 'request_headers');
        const attrs = fromPbStruct(first.attributes?.['envoy.filters.http.ext_proc']);
        assert.equal(attrs['xds.cluster_name'], 'tgc.test');
        assert.ok(!("xds.upstream_host_metadata.filter_metadata['tollgate']['missing']" in attrs), 'an unresolved attribute is omitted');
        for (const m of s.messages.slice(1)) assert.equal(m.attributes?.['envoy.filters.http.ext_proc'], undefined, 'attributes only on the first message');
        assert.deepEqual(fromPbStruct(first.metadata_context?.filter_metadata?.[PLAN_NAMESPACE]), { plan: 'plan-1' });
        assert.equal(s.metadata[STAGE_METADATA_KEY], UPSTREAM_STAGE);
        assert.equal(s.metadata['x-router-probe'], undefined);
        return attrs[DEPLOYMENT_ATTRIBUTE];
      });
      assert.deepEqual(deployments, ['d-a', 'd-b']);
      assert.deepEqual(
        ups.map((s) => s.messages.map((m) => m.request)),
        [
          ['request_headers', 'request_body', 'response_headers'],
          ['request_headers', 'request_body', 'response_headers'],
        ],
      );
      // The discarded attempt's filter is closed (half-close) before the next attempt opens its own;
      // the final one lives until the exchange is over, then is closed the same way.
      assert.ok(ups[0]!.endedAt !== undefined && ups[0]!.endedAt < ups[1]!.openedAt, JSON.stringify(ups.map((s) => [s.openedAt, s.endedAt])));
      await eventually(() => ups[1]!.endedAt !== undefined, 'the final attempt stream to be half-closed');
      // Only the final attempt's response reaches the router-level filter.
      const routerMsgs = f.routerStream().messages.filter((m) => m.request === 'response_headers');
      assert.equal(routerMsgs.length, 1);
      assert.equal(headerValue(routerMsgs[0]!, ':status'), '200');
    });
  });

  it('a header the filter set on attempt 1 is still there on attempt 2, while the body is the router-level body again', async () => {
    const translated = '{"translated":true,"for":"d-a"}';
    await withChain(
      {
        a: [503],
        upstream: (m, s) => {
          if (m.request === 'request_body' && s.index === 0)
            return {
              request_body: {
                response: {
                  header_mutation: { set_headers: [set('x-set-on-attempt', '1'), set('content-length', String(translated.length))] },
                  body_mutation: { body: raw(translated) },
                },
              },
            };
          return passUpstream(m, s);
        },
      },
      async (f) => {
        const original = '{"model":"m","n":1}';
        const r = await f.send(original);
        assert.equal(r.status, 200);
        assert.equal(f.a.seen[0]!.body, translated);
        assert.equal(f.b.seen[0]!.headers['x-set-on-attempt'], '1', 'the shared header list kept attempt 1 mutation');
        assert.equal(f.b.seen[0]!.body, original, 'a fresh copy of the router-level body');
        const second = f.upstreamStreams()[1]!;
        assert.equal(headerValue(second.messages[0]!, 'x-set-on-attempt'), '1', 'the filter sees it on attempt 2 too');
        assert.equal(Buffer.from(second.messages[1]!.request_body!.body!).toString(), original);
        // Attempt 1's content-length is stale for attempt 2's body: flagged, since Envoy would send it as is.
        assert.match(kinds(f.standin, 'upstream_content_length_mismatch')[0]?.detail ?? '', /attempt 2/);
        const [one, two] = attemptsOf(f.standin);
        assert.equal(one!.upstreamBody, translated);
        assert.equal(two!.upstreamHeaders['x-set-on-attempt'], '1');
      },
    );
  });

  it('x-envoy-attempt-count counts attempts when include_request_attempt_count is set', async () => {
    await withChain(
      { a: [503, 200], b: [503], standin: { retry: { retryOn: ['5xx'], numRetries: 2, previousPriorities: true, includeAttemptCount: true, backoffMs: 5 } } },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(
          [...f.a.seen, ...f.b.seen].map((s) => s.headers['x-envoy-attempt-count']).sort(),
          ['1', '2', '3'],
        );
        assert.deepEqual(
          f.upstreamStreams().map((s) => headerValue(s.messages[0]!, 'x-envoy-attempt-count')),
          ['1', '2', '3'],
        );
      },
    );
    await withChain({}, async (f) => {
      await f.send();
      assert.equal(f.a.seen[0]!.headers['x-envoy-attempt-count'], undefined);
    });
  });

  it('clear_route_cache from the upstream filter is ignored: no re-routing', async () => {
    await withChain(
      {
        upstream: (m, s) =>
          m.request === 'request_body'
            ? { request_body: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', 'plain')] }, clear_route_cache: true } } }
            : passUpstream(m, s),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.text), { from: 'a', n: 1 });
        assert.equal(f.plain.seen.length, 0);
        assert.equal(kinds(f.standin, 'clear_route_cache_upstream_ignored').length, 1);
        assert.equal(f.a.seen[0]!.headers['x-tollgate-cluster'], 'plain', 'the header mutation itself applies');
      },
    );
  });

  it('an immediate_response from the upstream filter goes to the client, with no retry', async () => {
    await withChain(
      {
        upstream: (m, s) =>
          m.request === 'request_headers'
            ? { immediate_response: { status: { code: 503 }, body: raw('deployment not in plan'), details: 'tollgate_plan_mismatch' } }
            : passUpstream(m, s),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 503);
        assert.equal(r.text, 'deployment not in plan');
        assert.equal(f.a.seen.length + f.b.seen.length, 0, 'no upstream contacted, no retry although 5xx is retriable');
        assert.equal(f.upstreamStreams().length, 1);
        assert.equal(f.standin.exchanges.at(-1)!.localReplyDetails, 'tollgate_plan_mismatch');
        assert.equal(kinds(f.standin, 'retry').length, 0);
      },
    );
  });

  it('without envoyproxy/envoy#41231 (localReplies: stall) a refusal stalls the attempt until the per-try timeout, which is retried; no upstream is ever contacted', async () => {
    await withChain(
      {
        upstream: (m, s) =>
          m.request === 'request_headers'
            ? { immediate_response: { status: { code: 503 }, body: raw('deployment not in plan'), details: 'tollgate_plan_mismatch' } }
            : passUpstream(m, s),
        filter: { ...FILTER, localReplies: 'stall' },
        standin: { retry: { retryOn: ['5xx', 'reset'], numRetries: 2, previousPriorities: true, backoffMs: 5, perTryTimeoutMs: 150 } },
      },
      async (f) => {
        const t0 = Date.now();
        const r = await f.send();
        assert.equal(r.status, 504);
        assert.ok(Date.now() - t0 >= 3 * 150, 'each attempt waited out its per-try timeout');
        assert.equal(f.a.seen.length + f.b.seen.length, 0, 'the refused request never reached an upstream');
        assert.equal(f.upstreamStreams().length, 3);
        assert.equal(kinds(f.standin, 'upstream_local_reply_stalled').length, 3);
        assert.equal(f.standin.exchanges.at(-1)!.localReplyDetails, 'upstream_per_try_timeout');
      },
    );
  });

  it(':authority is refused without allow_all_routing and becomes the Host with it', async () => {
    const setAuthority: Script = (m, s) =>
      m.request === 'request_body' ? { request_body: { response: { header_mutation: { set_headers: [set(':authority', 'api.provider.example')] } } } } : passUpstream(m, s);
    await withChain({ upstream: setAuthority, filter: { ...FILTER, mutationRules: {} } }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.notEqual(f.a.seen[0]!.headers.host, 'api.provider.example');
      assert.match(kinds(f.standin, 'rejected_mutation')[0]?.detail ?? '', /:authority/);
    });
    await withChain({ upstream: setAuthority }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.equal(f.a.seen[0]!.headers.host, 'api.provider.example');
      assert.equal(kinds(f.standin, 'rejected_mutation').length, 0);
    });
  });

  it("the filter's response-header mutation reaches the router-level filter, and the retry decision sees a mutated status", async () => {
    await withChain(
      {
        upstream: (m, s) =>
          m.request === 'response_headers'
            ? { response_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-served', `d-${s.index === 0 ? 'a' : 'b'};attempt=${s.index + 1}`)] } } } }
            : passUpstream(m, s),
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
        upstream: (m, s) =>
          m.request === 'response_headers' && s.index === 0 ? { response_headers: { response: { header_mutation: { set_headers: [set(':status', '503')] } } } } : passUpstream(m, s),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
        const [one] = attemptsOf(f.standin);
        assert.deepEqual([one!.upstreamStatus, one!.status], [200, 503]);
      },
    );
  });

  it('a body mutation without a matching content-length → 500 to the client, not retried', async () => {
    await withChain(
      {
        upstream: (m, s) => (m.request === 'request_body' ? { request_body: { response: { body_mutation: { body: raw('{"much":"longer than before"}') } } } } : passUpstream(m, s)),
      },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 500);
        assert.match(f.standin.exchanges.at(-1)!.localReplyDetails ?? '', /mismatch between content length/);
        assert.equal(f.a.seen.length + f.b.seen.length, 0);
        assert.equal(f.upstreamStreams().length, 1);
      },
    );
  });

  it('a silent upstream filter → 504 after its message timeout, not retried', async () => {
    await withChain(
      { upstream: (m, s) => (m.request === 'request_body' ? null : passUpstream(m, s)), filter: { ...FILTER, messageTimeoutMs: 200 } },
      async (f) => {
        const r = await f.send();
        assert.equal(r.status, 504);
        assert.equal(f.standin.exchanges.at(-1)!.localReplyDetails, 'ext_proc_error_per-message_timeout_exceeded');
        assert.equal(f.upstreamStreams().length, 1);
        assert.equal(f.a.seen.length, 0);
      },
    );
  });

  it('a spurious reply from the upstream filter → 500', async () => {
    await withChain({ upstream: (m, s) => (m.request === 'request_headers' ? { request_body: { response: {} } } : passUpstream(m, s)) }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 500);
      assert.equal(f.standin.exchanges.at(-1)!.localReplyDetails, 'spurious_message');
      assert.equal(f.a.seen.length, 0);
    });
  });

  it('a chain without an upstream filter sends attempts straight to the endpoints', async () => {
    await withChain({ a: [503], filter: null }, async (f) => {
      const r = await f.send();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { from: 'b', n: 1 });
      assert.equal(f.upstreamStreams().length, 0);
    });
  });
});
