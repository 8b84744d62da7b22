// The Redis the tests share: a private redis-server that `npm test` (test/run.ts) starts on a free
// loopback port for the run and passes as TEST_REDIS_URL. Nothing assumes one at 127.0.0.1:6379.
export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url)
    throw new Error(
      'TEST_REDIS_URL is not set. Run tests through `npm test` (it starts a private redis-server), e.g. `npm test -- test/budget/conformance.test.ts`, or start one yourself and set TEST_REDIS_URL=redis://127.0.0.1:PORT.',
    );
  return url;
}
