// The admin credential for the telemetry HTTP server's state endpoints (/v1/spend, /readyz detail):
// `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>`. /metrics and /healthz never ask for it.
import type { IncomingMessage } from 'node:http';
import { SecretSet } from './secrets.ts';

export type AdminVerdict = 'allowed' | 'unauthenticated' | 'disabled';

export interface AdminGuard {
  check(req: IncomingMessage): AdminVerdict;
  /** For the start-up log. */
  readonly summary: string;
}

/** With a token: bearer required. Without: `open` (development, loopback listener) or disabled. */
export function adminGuard(opts: { tokens?: string[]; openWithoutToken: boolean }): AdminGuard {
  if (opts.tokens?.length) {
    const tokens = new SecretSet(opts.tokens);
    return {
      summary: 'bearer token required',
      check: (req) => {
        const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '');
        return m && tokens.matches(m[1]) ? 'allowed' : 'unauthenticated';
      },
    };
  }
  if (opts.openWithoutToken) return { summary: 'OPEN (no TOLLGATE_ADMIN_TOKEN; loopback listener, development mode)', check: () => 'allowed' };
  return { summary: 'disabled (set TOLLGATE_ADMIN_TOKEN)', check: () => 'disabled' };
}
