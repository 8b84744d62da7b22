// The ext_proc codec alone: decoding Envoy's four messages and encoding four typical replies, the
// hand-written codec (service/extproc/codec.ts, what the server uses) against proto-loader's dynamic one.
// Interleaved rounds in one process; CPU time, so other load on the machine moves both alike.
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { toPbStruct } from '../../service/extproc/mutations.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { decodeRequest, encodeResponse } from '../../service/extproc/codec.ts';
import { median } from './noise.ts';

const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });

export async function bench(): Promise<string[]> {
  const svc = extProcService().Process!;
  const body = Buffer.from(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the notes. '.repeat(60) }] }));
  const reqs: ProcessingRequest[] = [
    { request_headers: { headers: { headers: [hv(':method', 'POST'), hv(':path', '/v1/chat/completions'), hv(':authority', 'llm.internal'), hv(':scheme', 'https'), hv('content-type', 'application/json'), hv('authorization', 'Bearer tg-demo-0000000000000001'), hv('x-request-id', '0d6c2f5e-bench-4a1b-9a3e-000000000001')] }, end_of_stream: false } },
    { request_body: { body, end_of_stream: true } },
    { response_headers: { headers: { headers: [hv(':status', '200'), hv('content-type', 'application/json'), hv('content-length', '380')] }, end_of_stream: false } },
    { response_body: { body: Buffer.from('{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":380,"completion_tokens":18}}'), end_of_stream: true } },
  ];
  const set = (k: string, v: string) => ({ header: { key: k, raw_value: Buffer.from(v, 'latin1') }, append: { value: false } });
  const reps: ProcessingResponse[] = [
    { request_headers: { response: {} } },
    { request_body: { response: { header_mutation: { set_headers: [set('x-tollgate-cluster', 'azure_eu'), set('x-tollgate-host', 'tollgate-demo.openai.azure.com'), set(':path', '/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21'), set('api-key', 'bench-azure')], remove_headers: ['authorization'] }, body_mutation: { body }, clear_route_cache: true } } },
    { response_headers: { response: { header_mutation: { set_headers: [set('x-tollgate-decision', 'd-0123456789'), set('x-tollgate-model', 'gpt-4o-mini')], remove_headers: [] } } }, dynamic_metadata: toPbStruct({ tollgate: { decision_id: 'd-0123456789', tenant: 'acme', team: 'research', key_id: 'demo-acme-research', model: 'gpt-4o-mini', provider: 'azure-eu', upstream_model: 'gpt-4o-mini-eu' } }) },
    { response_body: { response: {} }, dynamic_metadata: toPbStruct({ tollgate: { input_tokens: 380, output_tokens: 18, cost_usd: 0.0000746 } }) },
  ];
  const wires = reqs.map((r) => svc.requestSerialize(r) as Buffer);
  const plDecode = () => {
    for (const w of wires) svc.requestDeserialize(w);
  };
  const plEncode = () => {
    for (const r of reps) svc.responseSerialize(r);
  };
  const ourDecode = () => {
    for (const w of wires) decodeRequest(w);
  };
  const ourEncode = () => {
    for (const r of reps) encodeResponse(r);
  };
  const time = (f: () => void, n: number): number => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / n;
  };
  const n = Number(process.env.BENCH_CODEC_N ?? 20000);
  const r: Record<string, number[]> = { plDecode: [], ourDecode: [], plEncode: [], ourEncode: [] };
  for (const f of [plDecode, ourDecode, plEncode, ourEncode]) time(f, 2000); // warm up
  for (let round = 0; round < 5; round++) {
    r.plDecode!.push(time(plDecode, n));
    r.ourDecode!.push(time(ourDecode, n));
    r.plEncode!.push(time(plEncode, n));
    r.ourEncode!.push(time(ourEncode, n));
  }
  const m = (k: string) => median(r[k]!);
  return [
    `decode Envoy's 4 messages: proto-loader ${m('plDecode').toFixed(1)} µs, codec ${m('ourDecode').toFixed(1)} µs (${(m('plDecode') / m('ourDecode')).toFixed(1)}x)`,
    `encode 4 typical replies:  proto-loader ${m('plEncode').toFixed(1)} µs, codec ${m('ourEncode').toFixed(1)} µs (${(m('plEncode') / m('ourEncode')).toFixed(1)}x)`,
  ];
}
