// One ext_proc Process stream from a real grpc-js client: request headers for GET /v1/models (plus
// `headers`), the replies counted, the final gRPC status returned. What an unauthenticated or
// authenticated peer sees, for the security tests.
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from '../../service/extproc/messages.ts';
import { extProcClientCtor } from '../../service/extproc/proto.ts';

type ProcessCall = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;

export async function processOnce(
  target: string,
  creds: grpc.ChannelCredentials,
  md: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ code: number; details: string; replies: number }> {
  const Ctor = extProcClientCtor();
  const client = new Ctor(target, creds);
  try {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(md)) metadata.set(k, v);
    const call = (client as unknown as { Process(md: grpc.Metadata, o: grpc.CallOptions): ProcessCall }).Process(metadata, { deadline: Date.now() + 5000 });
    let replies = 0;
    call.on('data', () => {
      replies++;
      call.end();
    });
    const done = new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.on('error', () => undefined);
    });
    const all = { ':method': 'GET', ':path': '/v1/models', ...headers };
    call.write({ request_headers: { headers: { headers: Object.entries(all).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: true } });
    const status = await done;
    return { code: status.code, details: status.details, replies };
  } finally {
    client.close();
  }
}
