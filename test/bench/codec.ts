// The ext_proc codec alone: decoding Envoy's four messages and encoding four typical replies, the
// hand-written codec (service/extproc/codec.ts, what the server uses) against proto-loader's dynamic one.
// Interleaved rounds in one process; CPU time, so other load on the machine moves both alike.
import type { HeaderMutation, ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { JsonStruct, MutationBuilder, toPbStruct } from '../../service/extproc/mutations.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { decodeRequest, encodeResponse } from '../../service/extproc/codec.ts';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { median, spread } from './noise.ts';

const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });

export async function bench(): Promise<string[]> {
  // First, while only the Processor's kind of replies (views, JsonStruct) have run through the codec: the
  // plain-object replies below leave the codec's functions with type feedback the server never gives them.
  const replies = await processorReplies();
  const svc = extProcService().Process!;
  const body = Buffer.from(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the notes. '.repeat(60) }] }));
  const reqs: ProcessingRequest[] = [
    { request_headers: { headers: { headers: [hv(':method', 'POST'), hv(':path', '/v1/chat/completions'), hv(':authority', 'llm.internal'), hv(':scheme', 'https'), hv('content-type', 'application/json'), hv('authorization', 'Bearer tg-demo-0000000000000001'), hv('x-request-id', '0d6c2f5e-bench-4a1b-9a3e-000000000001')] }, end_of_stream: false } },
    { request_body: { body, end_of_stream: true } },
    { response_headers: { headers: { headers: [hv(':status', '200'), hv('content-type', 'application/json'), hv('content-length', '380')] }, end_of_stream: false } },
    { response_body: { body: Buffer.from('{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":380,"completion_tokens":18}}'), end_of_stream: true } },
  ];
  // The four replies Tollgate sends for a routed chat request, as the Processor builds them (header names,
  // values, metadata as the exchange bench's real replies have them; metadata as JsonStruct, as sent).
  const set = (k: string, v: string) => ({ header: { key: k, raw_value: Buffer.from(v, 'latin1') }, append: { value: false } });
  const md = (extra: Record<string, unknown> = {}) =>
    new JsonStruct({
      tollgate: {
        request_id: 'f567965c-23be-4a29-aa2c-a0ba940eb110',
        tenant: 'acme',
        team: 'research',
        key_id: 'demo-acme-research',
        decision_id: '03f3654445dc341739ecb125d5e4df8a',
        policy_revision: '4d97cc0337de6cef',
        model: 'gpt-4o-mini',
        provider: 'azure-eu',
        deployment: 'gpt-4o-mini/azure-eu/1',
        upstream_model: 'gpt-4o-mini-eu',
        ...extra,
      },
    });
  const cred = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'openai-organization', 'openai-project', 'cookie', 'proxy-authorization', 'anthropic-version', 'anthropic-beta', 'content-encoding'];
  const reps: ProcessingResponse[] = [
    { request_headers: { response: { header_mutation: { set_headers: [], remove_headers: ['x-tollgate-cluster', 'x-tollgate-host'] } } } },
    { request_body: { response: { header_mutation: { set_headers: [set('api-key', 'bench-azure'), set(':path', '/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21'), set('content-length', String(body.length)), set('accept-encoding', 'identity'), set('x-tollgate-cluster', 'azure_eu'), set('x-tollgate-host', 'tollgate-demo.openai.azure.com'), set('x-request-id', 'f567965c-23be-4a29-aa2c-a0ba940eb110'), set('content-type', 'application/json')], remove_headers: ['x-tollgate-cluster', 'x-tollgate-host', ...cred] }, body_mutation: { body }, clear_route_cache: true } }, dynamic_metadata: md() },
    { response_headers: { response: { header_mutation: { set_headers: Object.entries({ 'x-request-id': 'f567965c-23be-4a29-aa2c-a0ba940eb110', 'x-tollgate-provider': 'azure-eu', 'x-tollgate-model': 'gpt-4o-mini', 'x-tollgate-decision-id': '03f3654445dc341739ecb125d5e4df8a', 'x-ratelimit-limit-requests': '100000000', 'x-ratelimit-remaining-requests': '99999999', 'x-ratelimit-limit-tokens': '100000000', 'x-ratelimit-remaining-tokens': '99999505', 'x-tollgate-budget-name': 'spend-controls/key-daily', 'x-tollgate-budget-limit-usd': '1000000000.00', 'x-tollgate-budget-remaining-usd': '999999999.999792', 'x-tollgate-budget-reset': '2026-12-07T00:00:00.000Z' }).map(([k, v]) => set(k, v)), remove_headers: [] } } } },
    { response_body: { response: { body_mutation: { body: Buffer.from('{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":380,"completion_tokens":18}}') }, header_mutation: { set_headers: [set('content-length', '104'), set('content-type', 'application/json')], remove_headers: [] } } }, dynamic_metadata: md({ input_tokens: 380, output_tokens: 18, cost_usd: 0.0000746 }) },
  ];
  // proto-loader is given the same replies with the Struct tree (what it needs; JsonStruct would build it inside the timing).
  const plReps = reps.map((r) => (r.dynamic_metadata instanceof JsonStruct ? { ...r, dynamic_metadata: toPbStruct(r.dynamic_metadata.json) } : r));
  for (let i = 0; i < reps.length; i++) if (!encodeResponse(reps[i]!).equals(svc.responseSerialize(plReps[i]!) as Buffer)) throw new Error(`codec bench: reply ${i} differs from proto-loader's bytes`);
  const wires = reqs.map((r) => svc.requestSerialize(r) as Buffer);
  const plDecode = () => {
    for (const w of wires) svc.requestDeserialize(w);
  };
  const plEncode = () => {
    for (const r of plReps) svc.responseSerialize(r);
  };
  const ourDecode = () => {
    for (const w of wires) decodeRequest(w);
  };
  const ourEncode = () => {
    for (const r of reps) encodeResponse(r);
  };
  // The same replies' header mutations as the Processor makes them from a MutationBuilder: build() (objects and a
  // Buffer per header, the reference) against view() (written straight from the builder's strings).
  const builders = reps.map((r) => {
    const c = r.request_headers?.response ?? r.request_body?.response ?? r.response_headers?.response ?? r.response_body?.response;
    const hm = c!.header_mutation!;
    return () => {
      const b = new MutationBuilder();
      for (const n of hm.remove_headers ?? []) b.removeHeader(n);
      for (const o of hm.set_headers ?? []) b.setHeader(o.header.key, o.header.raw_value!.toString('latin1'));
      return b;
    };
  });
  const withMutation = (i: number, hm: HeaderMutation | undefined): ProcessingResponse => {
    const r = reps[i]!;
    const phase = r.request_headers ? 'request_headers' : r.request_body ? 'request_body' : r.response_headers ? 'response_headers' : 'response_body';
    return { ...r, [phase]: { response: { ...r[phase]!.response, header_mutation: hm } } };
  };
  for (let i = 0; i < reps.length; i++)
    if (!encodeResponse(withMutation(i, builders[i]!().view())).equals(encodeResponse(withMutation(i, builders[i]!().build())))) throw new Error(`codec bench: view() reply ${i} differs from build()'s`);
  const viaBuild = () => {
    for (let i = 0; i < reps.length; i++) encodeResponse(withMutation(i, builders[i]!().build()));
  };
  const viaView = () => {
    for (let i = 0; i < reps.length; i++) encodeResponse(withMutation(i, builders[i]!().view()));
  };
  const time = (f: () => void, n: number): number => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / n;
  };
  const n = Number(process.env.BENCH_CODEC_N ?? 20000);
  const r: Record<string, number[]> = { plDecode: [], ourDecode: [], plEncode: [], ourEncode: [], viaBuild: [], viaView: [] };
  for (const f of [plDecode, ourDecode, plEncode, ourEncode, viaBuild, viaView]) time(f, 2000); // warm up
  for (let round = 0; round < 5; round++) {
    r.plDecode!.push(time(plDecode, n));
    r.ourDecode!.push(time(ourDecode, n));
    r.plEncode!.push(time(plEncode, n));
    r.ourEncode!.push(time(ourEncode, n));
    r.viaBuild!.push(time(viaBuild, n));
    r.viaView!.push(time(viaView, n));
  }
  const m = (k: string) => median(r[k]!);
  return [
    ...replies,
    `decode Envoy's 4 messages: proto-loader ${m('plDecode').toFixed(1)} µs, codec ${m('ourDecode').toFixed(1)} µs (${(m('plDecode') / m('ourDecode')).toFixed(1)}x)`,
    `encode a routed request's 4 replies: proto-loader ${m('plEncode').toFixed(1)} µs, codec ${m('ourEncode').toFixed(1)} µs (${(m('plEncode') / m('ourEncode')).toFixed(1)}x)`,
    `the same 4 replies with their header mutations from a MutationBuilder (builder included): build() + encode ${m('viaBuild').toFixed(1)} µs, view() + encode ${m('viaView').toFixed(1)} µs (${(m('viaBuild') / m('viaView')).toFixed(2)}x)`,
  ];
}

interface CodecModules {
  encodeResponse: (m: ProcessingResponse, framed?: boolean) => Buffer;
  MutationBuilder: typeof MutationBuilder;
  JsonStruct: typeof JsonStruct;
}

/**
 * A routed chat request's 4 replies as the Processor sends them (header mutations as MutationBuilder
 * views, metadata as JsonStruct), with the per-request values (request and decision ids, remaining
 * budget, content lengths) different for each of `n` requests — so caches of recurring values see
 * what they see in production, not one request repeated.
 */
function processorReplies4(mods: CodecModules, n: number): ProcessingResponse[][] {
  const { MutationBuilder: MB, JsonStruct: JS } = mods;
  const out: ProcessingResponse[][] = [];
  const cred = ['authorization', 'x-api-key', 'x-goog-api-key', 'openai-organization', 'openai-project', 'cookie', 'proxy-authorization', 'anthropic-version', 'anthropic-beta', 'content-encoding'];
  for (let i = 0; i < n; i++) {
    const rid = `f567965c-23be-4a29-aa2c-${String(100000000000 + i)}`;
    const did = `03f3654445dc341739ecb125d5e${String(10000 + i)}`;
    const body = Buffer.from(JSON.stringify({ model: 'gpt-4o-mini-eu', messages: [{ role: 'user', content: 'Summarise the notes. '.repeat(50 + (i % 7)) }] }));
    const resp = Buffer.from(JSON.stringify({ id: `chatcmpl-${i}`, choices: [{ message: { content: 'ok' } }], usage: { prompt_tokens: 300 + i, completion_tokens: 5 } }));
    const md: Record<string, unknown> = { request_id: rid, tenant: 'acme', team: 'research', key_id: 'demo-acme-research', decision_id: did, policy_revision: '4d97cc0337de6cef', model: 'gpt-4o-mini', provider: 'azure-eu', deployment: 'gpt-4o-mini/azure-eu/1', upstream_model: 'gpt-4o-mini-eu' };
    const rh = new MB().removeHeader('x-tollgate-cluster').removeHeader('x-tollgate-host');
    const rb = new MB();
    for (const c of cred) rb.removeHeader(c);
    rb.setHeader('content-type', 'application/json').setHeader('accept-encoding', 'identity').setHeader('api-key', 'bench-azure');
    rb.setHeader(':path', '/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21').setHeader('content-length', String(body.length));
    rb.setHeader('x-tollgate-cluster', 'azure_eu').setHeader('x-tollgate-host', 'tollgate-demo.openai.azure.com').setHeader('x-request-id', rid);
    rb.setHeader('traceparent', `00-633db316b36e1f44be4d56f6${String(100000 + i)}-19555252719efb3b-01`);
    const hh = new MB().setHeader('x-request-id', rid).setHeader('x-tollgate-provider', 'azure-eu').setHeader('x-tollgate-model', 'gpt-4o-mini').setHeader('x-tollgate-decision-id', did);
    hh.setHeader('x-ratelimit-limit-requests', '100000000').setHeader('x-ratelimit-remaining-requests', String(99999999 - i)).setHeader('x-ratelimit-limit-tokens', '100000000');
    hh.setHeader('x-ratelimit-remaining-tokens', String(99999500 - 305 * i)).setHeader('x-tollgate-budget-name', 'spend-controls/key-daily').setHeader('x-tollgate-budget-limit-usd', '1000000000.00');
    hh.setHeader('x-tollgate-budget-remaining-usd', (999999999.999791 - i * 0.0000528).toFixed(6)).setHeader('x-tollgate-budget-reset', '2026-12-07T00:00:00.000Z');
    const bb = new MB().setHeader('content-length', String(resp.length)).setHeader('content-type', 'application/json');
    out.push([
      { request_headers: { response: { header_mutation: rh.view() } } },
      { request_body: { response: { header_mutation: rb.view(), body_mutation: { body }, clear_route_cache: true } }, dynamic_metadata: new JS({ tollgate: md }) },
      { response_headers: { response: { header_mutation: hh.view() } } },
      { response_body: { response: { header_mutation: bb.view(), body_mutation: { body: resp } } }, dynamic_metadata: new JS({ tollgate: { ...md, input_tokens: 300 + i, output_tokens: 5, cost_usd: 0.0000528 } }) },
    ]);
  }
  return out;
}

/**
 * Encoding the Processor's replies (framed, as the server sends them). With BENCH_CODEC_BASE=<another
 * checkout> (e.g. a pristine export of main), the same replies built with that checkout's modules are
 * encoded by its codec in interleaved rounds, and the ratio is printed (CPU time, median of rounds).
 */
async function processorReplies(): Promise<string[]> {
  const svc = extProcService().Process!;
  const ours: CodecModules = { encodeResponse, MutationBuilder, JsonStruct };
  const sides: [string, CodecModules][] = [['this checkout', ours]];
  const base = process.env.BENCH_CODEC_BASE;
  if (base) {
    const load = (f: string) => import(pathToFileURL(join(base, 'service/extproc', f)).href);
    const [codec, mutations] = await Promise.all([load('codec.ts'), load('mutations.ts')]);
    sides.push([base, { encodeResponse: codec.encodeResponse, MutationBuilder: mutations.MutationBuilder, JsonStruct: mutations.JsonStruct }]);
  }
  const n = 256;
  const sets = sides.map(([, mods]) => processorReplies4(mods, n));
  // Both sides must send the same bytes, and those are proto-loader's.
  for (let i = 0; i < n; i += 37)
    for (let k = 0; k < 4; k++) {
      const want = svc.responseSerialize(plTree(sets[0]![i]![k]!)) as Buffer;
      for (let s = 0; s < sides.length; s++) if (!sides[s]![1].encodeResponse(sets[s]![i]![k]!).equals(want)) throw new Error(`codec bench: ${sides[s]![0]} reply ${k} of request ${i} differs from proto-loader's bytes`);
    }
  const time = (s: number, reps: number): number => {
    const enc = sides[s]![1].encodeResponse;
    const set = sets[s]!;
    const t0 = process.cpuUsage();
    for (let r = 0; r < reps; r++) for (const four of set) for (const m of four) enc(m, true);
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / (reps * set.length);
  };
  for (let s = 0; s < sides.length; s++) time(s, 40); // warm up
  const res: number[][] = sides.map(() => []);
  const reps = Number(process.env.BENCH_CODEC_N ?? 20000) / n;
  for (let round = 0; round < 9; round++) for (let s = 0; s < sides.length; s++) res[s]!.push(time(s, reps));
  const out = [`encode the Processor's 4 replies of a routed request (views, JsonStruct, per-request ids varying): ${median(res[0]!).toFixed(1)} µs per request`];
  if (sides.length > 1) {
    const ratios = res[0]!.map((v, i) => v / res[1]![i]!);
    out.push(`  vs ${sides[1]![0]}: ${median(res[1]!).toFixed(1)} µs; this/base ${spread(ratios, 3)}`);
  }
  return out;
}

/** The reply as proto-loader takes it: Struct tree and plain header objects (what view()/JsonStruct stand for). */
function plTree(m: ProcessingResponse): ProcessingResponse {
  const out: ProcessingResponse = { ...m };
  for (const k of ['request_headers', 'request_body', 'response_headers', 'response_body'] as const) {
    const c = m[k]?.response;
    const hm = c?.header_mutation;
    if (c && hm) out[k] = { response: { ...c, header_mutation: { set_headers: hm.set_headers ?? [], remove_headers: hm.remove_headers ?? [] } } };
  }
  if (m.dynamic_metadata instanceof JsonStruct) out.dynamic_metadata = toPbStruct(m.dynamic_metadata.json);
  return out;
}
