// The echo processor of echo-server.ts on raw node:http2 instead of grpc-js (same codec, same replies):
// `npm run bench -- transport` compares the two, i.e. what the gRPC transport alone costs.
import * as http2 from 'node:http2';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';
import { MessageFramer, frame } from '../../service/extproc/h2/framing.ts';

const PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
const svc = extProcService().Process!;
const decode = (b: Buffer): ProcessingRequest => svc.requestDeserialize(b) as ProcessingRequest;
const encode = (m: ProcessingResponse): Buffer => svc.responseSerialize(m);

const server = http2.createServer({ settings: { maxConcurrentStreams: 1 << 20 }, maxSessionMemory: 64 });
server.on('stream', (stream, headers) => {
  stream.on('error', () => undefined);
  if (headers[':path'] !== PATH) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  const framer = new MessageFramer(128 * 1024 * 1024, (b) => {
    const m = decode(b);
    const kind = m.request;
    if (kind === 'request_trailers' || kind === 'response_trailers') stream.write(frame(encode({ [kind]: {} })));
    else if (kind) stream.write(frame(encode({ [kind]: { response: {} } })));
  });
  stream.on('data', (c: Buffer) => {
    if (framer.push(c)) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  stream.on('end', () => stream.end());
});
server.listen(Number((process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:0').split(':')[1]), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`READY ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
