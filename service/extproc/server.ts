// Thin gRPC layer: one Processor per `Process` stream, messages handled strictly in order
// (Envoy pipelines STREAMED chunks and applies each reply to the oldest outstanding one).
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import type { ProcessingRequest, ProcessingResponse } from './messages.ts';
import { Processor, ProtocolError, type Exchange } from './processor.ts';
import { extProcService } from './proto.ts';
import { STAGE_METADATA_KEY, UPSTREAM_STAGE } from '../fallback/contract.ts';
import type { GrpcAuth } from '../security/index.ts';

export const EXTPROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';
/** End detail of a stream still open when drain() ran out of time (lineage `errorCode`). */
export const DRAIN_DEADLINE_DETAIL = 'cut at the shutdown drain deadline';

/** Which of Envoy's two ext_proc filters opened the stream (gRPC initial metadata, see fallback/contract.ts). */
export type Stage = 'router' | 'upstream';

export interface ExtProcServerOptions {
  newExchange: (stage: Stage) => Exchange;
  log: Logger;
  /** Called with each finished stream's protocol error, for metrics. */
  onProtocolError?: (err: ProtocolError) => void;
  /** Peer authentication (security/grpc-auth.ts): TLS credentials and the interceptor that refuses unauthenticated calls. Unset: plaintext, none. */
  auth?: Pick<GrpcAuth, 'credentials' | 'interceptors'>;
}

export interface ExtProcServer {
  server: grpc.Server;
  port: number;
  /** In-flight streams right now. */
  active(): number;
  /** Stop accepting, let in-flight streams finish within `graceMs`, then cut the rest (each ends as aborted first). */
  drain(graceMs: number): Promise<void>;
}

type Call = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export async function startExtProcServer(addr: string, opts: ExtProcServerOptions): Promise<ExtProcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 128 * 1024 * 1024,
    'grpc.max_send_message_length': 128 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors: opts.auth?.interceptors ?? [],
  });
  const health = new HealthImplementation({ '': 'SERVING', [EXTPROC_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  /** Open streams, each with the function that ends it. */
  const streams = new Map<Call, (reason: 'aborted' | 'protocol_error', detail: string) => void>();

  server.addService(extProcService(), {
    Process: (call: Call) => {
      const stage: Stage = call.metadata.get(STAGE_METADATA_KEY)[0] === UPSTREAM_STAGE ? 'upstream' : 'router';
      const processor = new Processor(opts.newExchange(stage));
      let queue: Promise<void> = Promise.resolve();
      let closed = false;

      const close = (reason: 'aborted' | 'protocol_error', detail: string): void => {
        if (closed) return;
        closed = true;
        streams.delete(call);
        processor.abort(reason, detail);
      };
      streams.set(call, close);

      call.on('data', (msg: ProcessingRequest) => {
        queue = queue.then(async () => {
          if (closed) return;
          try {
            const early = processor.preflight(msg);
            if (early && !closed) call.write(early);
            const reply = await processor.handle(msg);
            if (reply && !closed) call.write(reply);
            // Typed errors are the client's answer; anything else is our bug and must be visible.
            if (processor.lastError !== undefined && !(processor.lastError instanceof GatewayError)) {
              opts.log.error({ err: processor.lastError }, 'request failed with an internal error');
              processor.lastError = undefined;
            }
          } catch (err) {
            const detail = err instanceof Error ? err.message : String(err);
            if (err instanceof ProtocolError) {
              opts.log.warn({ detail }, 'ext_proc protocol violation; failing the stream');
              opts.onProtocolError?.(err);
            } else opts.log.error({ err }, 'ext_proc stream failed');
            close('protocol_error', detail);
            // grpc-js ends a server stream with a status when 'error' is emitted on the call.
            call.emit('error', {
              code: err instanceof ProtocolError ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL,
              details: detail,
            });
          }
        });
      });
      call.on('end', () => {
        // Envoy half-closes when the HTTP exchange is over; finish our side after pending replies.
        void queue.then(() => {
          if (!processor.finished) close('aborted', 'stream ended by Envoy before the exchange finished');
          else {
            closed = true;
            streams.delete(call);
          }
          call.end();
        });
      });
      call.on('cancelled', () => close('aborted', 'stream cancelled'));
      call.on('error', (err) => close('aborted', `stream error: ${err.message}`));
      call.on('close', () => {
        void queue.then(() => {
          if (!processor.finished) close('aborted', 'stream closed');
        });
      });
    },
  });

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, opts.auth?.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );

  return {
    server,
    port,
    active: () => streams.size,
    drain: async (graceMs: number) => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(EXTPROC_SERVICE_NAME, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // End what is left ourselves, now: each exchange records itself as aborted before the server goes.
          for (const cut of [...streams.values()]) cut('aborted', DRAIN_DEADLINE_DETAIL);
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
