// A pino logger at debug level writing into memory: everything Tollgate logs (lineage's stdout sink
// included), for tests that check what reached the logs — and what must not.
import { Writable } from 'node:stream';
import pino from 'pino';

export function memoryLogger(): { log: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => chunks.join('') };
}
