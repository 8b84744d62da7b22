// The container HEALTHCHECK: GET /healthz on Tollgate's telemetry listener (TOLLGATE_HTTP_ADDR, default
// 127.0.0.1:9464; a wildcard address is probed on loopback). Exit 0 when it answers 200, else 1, within 2 s.
const addr = (process.env.TOLLGATE_HTTP_ADDR || '127.0.0.1:9464').trim();
const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(addr);
if (!m) {
  process.stderr.write(`healthcheck: TOLLGATE_HTTP_ADDR ${JSON.stringify(addr)} is not host:port\n`);
  process.exit(1);
}
let host = m[1] ?? m[2];
if (host === '0.0.0.0') host = '127.0.0.1';
else if (host === '::') host = '::1';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${m[3]}/healthz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (res.status !== 200) {
    process.stderr.write(`healthcheck: ${url} answered ${res.status}\n`);
    process.exit(1);
  }
} catch (err) {
  process.stderr.write(`healthcheck: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
