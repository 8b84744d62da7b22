// Secrets from the environment (`NAME`) or a mounted file (`NAME_FILE`, e.g. a Kubernetes Secret),
// and constant-time comparison of a presented credential against the configured ones.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SecurityConfigError } from './mode.ts';

/**
 * `NAME` or the contents of the file `NAME_FILE` (surrounding whitespace trimmed); both set is an
 * error. With `list`, the file may hold several values, one per line (key rotation).
 */
export function readSecret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return readSecretList(env, name)?.[0];
}

export function readSecretList(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new SecurityConfigError(`set ${name} or ${name}_FILE, not both`);
  if (direct) return [direct.trim()];
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecurityConfigError(`${name}_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  const values = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (values.length === 0) throw new SecurityConfigError(`${name}_FILE: ${file} is empty`);
  return values;
}

/** Refuses short secrets and unsubstituted template placeholders (`${...}`) before they are used. */
export function checkSecretStrength(name: string, value: string, minLength = 16): void {
  if (value.includes('${')) throw new SecurityConfigError(`${name} looks like an unsubstituted placeholder (${'${...}'}); set the real value`);
  if (Buffer.byteLength(value) < minLength) throw new SecurityConfigError(`${name} must be at least ${minLength} bytes (e.g. \`openssl rand -hex 32\`)`);
}

/** Compares in constant time for equal-length digests; the configured side is pre-hashed. */
export class SecretSet {
  private readonly digests: Buffer[];

  constructor(secrets: readonly string[]) {
    this.digests = secrets.map(sha256);
  }

  get size(): number {
    return this.digests.length;
  }

  matches(presented: string | Buffer | undefined): boolean {
    if (presented === undefined) return false;
    const d = sha256(presented);
    let ok = false;
    // No early exit: every configured secret is compared.
    for (const x of this.digests) ok = timingSafeEqual(x, d) || ok;
    return ok;
  }
}

function sha256(v: string | Buffer): Buffer {
  return createHash('sha256').update(v).digest();
}

/** A URL fit for a log line or a message: its password (or a lone user part, which may be a token) as ***. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    else if (u.username) u.username = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
