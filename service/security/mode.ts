// Run mode. `production` refuses to start without peer authentication on the ext_proc port and
// without a shared plan key; `development` allows an unauthenticated ext_proc port on loopback only.
// TOLLGATE_MODE decides; when it is unset, NODE_ENV=production also means production.

export type RunMode = 'production' | 'development';

export class SecurityConfigError extends Error {
  override readonly name = 'SecurityConfigError';
}

export function modeFromEnv(env: NodeJS.ProcessEnv): RunMode {
  const m = env.TOLLGATE_MODE?.trim();
  if (m === 'production' || m === 'development') return m;
  if (m) throw new SecurityConfigError(`TOLLGATE_MODE must be "production" or "development", not ${JSON.stringify(m)}`);
  return env.NODE_ENV === 'production' ? 'production' : 'development';
}
