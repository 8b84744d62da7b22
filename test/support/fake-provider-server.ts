// Standalone fake providers for docker-compose: OpenAI on FAKE_PROVIDER_PORT, Anthropic +1,
// Azure +2, an auth-less OpenAI-compatible "vLLM" +3. They answer realistic canned replies.
import http from 'node:http';
import { startFakeProvider } from './fake-providers.ts';

const base = Number(process.env.FAKE_PROVIDER_PORT ?? 8000);
const kinds = [
  { kind: 'openai' as const, port: base, opts: { apiKey: 'test-openai-key' } },
  { kind: 'anthropic' as const, port: base + 1, opts: { apiKey: 'test-anthropic-key' } },
  { kind: 'azure' as const, port: base + 2, opts: { apiKey: 'test-azure-key' } },
  { kind: 'openai' as const, port: base + 3, opts: { apiKey: null } },
];
for (const k of kinds) {
  const fake = await startFakeProvider(k.kind, k.opts);
  // Expose the loopback fake on all interfaces at the fixed port through a tiny TCP-level proxy.
  const proxy = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: fake.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  proxy.listen(k.port, '0.0.0.0');
  process.stdout.write(`fake ${k.kind} on :${k.port}\n`);
}
