// Runs in a worker thread: reads, parses, validates and sample-checks a config directory, then hands
// the result to the main thread one part at a time, each when asked for (config/reload.ts), so the
// main thread never deserializes more than one bounded chunk per event-loop turn.
import { parentPort, workerData } from 'node:worker_threads';
import { validateConfigDir } from './snapshot.ts';
import { detachCore, failureData, type CorePart } from './transfer.ts';

export interface ReloadWorkerInput {
  dir: string;
  /** The main thread's clock at the start of the reload (sample evaluation uses it). */
  nowIso: string;
}

export type ReloadWorkerMessage = { type: 'part'; part: CorePart } | { type: 'done' } | { type: 'failed'; failure: ReturnType<typeof failureData> };

const port = parentPort;
if (!port) throw new Error('reload-worker.ts runs only as a worker thread');
const input = workerData as ReloadWorkerInput;
const send = (m: ReloadWorkerMessage): void => port.postMessage(m);

let parts: CorePart[];
try {
  const now = new Date(input.nowIso);
  parts = detachCore(validateConfigDir(input.dir, { now: () => now }).core);
} catch (err) {
  parts = [];
  send({ type: 'failed', failure: failureData(err) });
}
if (parts.length) {
  let next = 0;
  const sendNext = (): void => send(next < parts.length ? { type: 'part', part: parts[next++] as CorePart } : { type: 'done' });
  port.on('message', (m: unknown) => {
    if (m === 'next') sendNext();
  });
  sendNext();
}
