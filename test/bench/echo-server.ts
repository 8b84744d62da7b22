// The floor for the ext_proc benchmark: same gRPC stack, answers every phase with an empty
// CommonResponse of the matching type and does nothing else. With ECHO_STREAM_OVERRIDE=1 (the Envoy
// bench) it also switches an SSE response body to STREAMED, as any processor in front of streams must —
// otherwise Envoy's BUFFERED mode would hold the stream back and time to first token would mean nothing.
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';

const streamOverride = process.env.ECHO_STREAM_OVERRIDE === '1';
const isSse = (m: ProcessingRequest): boolean =>
  (m.response_headers?.headers?.headers ?? []).some(
    (h) => h.key === 'content-type' && (h.raw_value?.toString() ?? h.value ?? '').startsWith('text/event-stream'),
  );

const server = new grpc.Server();
server.addService(extProcService(), {
  Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
    call.on('data', (m: ProcessingRequest) => {
      const kind = m.request;
      if (kind === 'request_trailers' || kind === 'response_trailers') call.write({ [kind]: {} });
      else if (kind === 'response_headers' && streamOverride && isSse(m))
        call.write({ response_headers: { response: {} }, mode_override: { response_body_mode: 'STREAMED' } });
      else if (kind) call.write({ [kind]: { response: {} } });
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  },
});
const addr = process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:0';
server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`READY ${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
