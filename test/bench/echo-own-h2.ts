// The echo processor of echo-h2.ts (same proto-loader codec, same replies) on Tollgate's own HTTP/2 layer
// (service/extproc/h2/connection.ts through listenGrpc) instead of node:http2: `npm run bench -- transport`
// runs it next to the node:http2 and grpc-js echoes, i.e. what each HTTP/2 layer costs per four-phase exchange.
import { GrpcCall } from '../../service/extproc/h2/call.ts';
import { MessageFramer, frame } from '../../service/extproc/h2/framing.ts';
import { Status } from '../../service/extproc/h2/status.ts';
import { listenGrpc } from '../../service/extproc/h2/transport.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcService } from '../../service/extproc/proto.ts';

const PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
const svc = extProcService().Process!;
const decode = (b: Buffer): ProcessingRequest => svc.requestDeserialize(b) as ProcessingRequest;
const encode = (m: ProcessingResponse): Buffer => svc.responseSerialize(m);

const t = await listenGrpc(process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:0', {
  kind: 'h2',
  route: (path) =>
    path !== PATH
      ? undefined
      : (stream) => {
          const call = new GrpcCall(stream);
          call.sendHeaders();
          const framer = new MessageFramer(128 * 1024 * 1024, (b) => {
            const kind = decode(b).request;
            if (kind === 'request_trailers' || kind === 'response_trailers') call.write(frame(encode({ [kind]: {} })));
            else if (kind) call.write(frame(encode({ [kind]: { response: {} } })));
          });
          stream.on('data', (c: Buffer) => {
            const err = framer.push(c);
            if (err) call.end(err.code, err.detail);
          });
          stream.on('end', () => call.end(Status.OK));
        },
});
process.stdout.write(`READY ${t.port}\n`);
process.on('SIGTERM', () => void t.shutdown().then(() => process.exit(0)));
