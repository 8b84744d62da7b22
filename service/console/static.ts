// The web console: plain files from service/console/public, served on the telemetry HTTP port under
// /console with a strict CSP (no inline script or style, same-origin fetches only). The page holds
// no secret: the admin token is typed in, kept in sessionStorage and sent as a bearer to /admin/v1.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('./public/', import.meta.url));
const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/charts.js': { file: 'charts.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function consoleHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  // Read once at start: a request never touches the disk, and nothing outside the list is reachable.
  const cache = new Map(Object.entries(FILES).map(([p, f]) => [p, { body: readFileSync(DIR + f.file), type: f.type }]));
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const f = cache.get(path);
    const headers = {
      'content-security-policy': CONSOLE_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    if (!f) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': f.type, 'content-length': f.body.length });
    res.end(req.method === 'HEAD' ? undefined : f.body);
  };
}
