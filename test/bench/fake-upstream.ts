// The provider behind Envoy in `npm run bench -- envoy`: answers every POST with a fixed OpenAI chat
// completion, or — when the request asks for `"stream": true` — an SSE stream whose first chunk is
// written at once and the rest after BENCH_STREAM_GAP_MS (so time to first token is measurable).
// It reads the whole request body (like a real provider) and keeps nothing per request.
import { createServer } from 'node:http';

const gapMs = Number(process.env.BENCH_STREAM_GAP_MS ?? 20);
const json = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: '1. Data drift. 2. GPU quota. 3. Holiday staffing.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 380, completion_tokens: 18, total_tokens: 398 },
  }),
);
const chunk = (content: string | null, finish: string | null, usage?: object): string =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: usage ? [] : [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
    ...(usage ? { usage } : {}),
  })}\n\n`;
const first = Buffer.from(chunk('1.', null));
const rest = Buffer.from(
  [' Data', ' drift.', ' 2.', ' GPU', ' quota.', ' 3.', ' Holiday', ' staffing.'].map((p) => chunk(p, null)).join('') +
    chunk(null, 'stop') +
    chunk(null, null, { prompt_tokens: 380, completion_tokens: 18, total_tokens: 398 }) +
    'data: [DONE]\n\n',
);

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    // A cheap look for "stream":true (the bench's bodies are compact JSON).
    if (body.includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(first);
      setTimeout(() => res.end(rest), gapMs);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(json.length) });
      res.end(json);
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.BENCH_UPSTREAM_PORT ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`READY ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
