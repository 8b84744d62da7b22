// Tollgate's own ext_proc server (startExtProcServer: transport, framing, codec, Processor) with an
// exchange that does nothing: `npm run bench -- transport` sets it beside the echo processors.
// BENCH_SERVER_ROOT runs another checkout's server (e.g. main's, for a before/after).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import type { Exchange } from '../../service/extproc/processor.ts';
import type * as ServerModule from '../../service/extproc/server.ts';
import type * as MutationsModule from '../../service/extproc/mutations.ts';

const root = process.env.BENCH_SERVER_ROOT ?? join(import.meta.dirname, '..', '..');
const mod = (p: string): string => pathToFileURL(join(root, p)).href;
const { startExtProcServer } = (await import(mod('service/extproc/server.ts'))) as typeof ServerModule;
const { MutationBuilder } = (await import(mod('service/extproc/mutations.ts'))) as typeof MutationsModule;

const exchange = (): Exchange => ({
  clientApi: () => 'openai',
  requestHeaders: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
  requestBody: async () => ({ kind: 'continue', mutation: new MutationBuilder() }),
  responseHeaders: async () => ({ mutation: new MutationBuilder(), stream: false }),
  responseBody: async () => ({}),
  responseChunk: async () => ({}),
  end: () => undefined,
});
const srv = await startExtProcServer(process.env.TOLLGATE_GRPC_ADDR ?? '127.0.0.1:0', { newExchange: exchange, log: pino({ level: 'silent' }) });
process.stdout.write(`READY ${srv.port}\n`);
process.on('SIGTERM', () => void srv.drain(100).then(() => process.exit(0)));
