// A guard for a measured cliff: once any loaded module defines `class X extends String`, V8 stops inlining
// String.prototype.charCodeAt (and slows other String methods) in the whole process — ioredis 6's
// VerbatimString made every scan loop (redaction, token estimates, the codec, SSE parsing) ~6x slower. The
// production dependency tree (package-lock entries not marked dev) must not contain such a class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

function jsFiles(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      if (name !== 'node_modules' && name !== 'test' && name !== 'tests') jsFiles(p, out);
    } else if (/\.(c|m)?js$/.test(name) && st.size < 5_000_000) out.push(p);
  }
}

test('no production dependency subclasses String', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const prod = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.devOptional).map(([path]) => path);
  assert.ok(prod.some((p) => p === 'node_modules/ioredis'), 'the scan covers the Redis client');
  const offenders: string[] = [];
  for (const pkg of prod) {
    const dir = join(ROOT, pkg);
    if (!existsSync(dir)) continue; // an optional platform package not installed here
    const files: string[] = [];
    jsFiles(dir, files);
    for (const f of files) if (/\bclass\s+\w+\s+extends\s+String\b/.test(readFileSync(f, 'utf8'))) offenders.push(f.slice(ROOT.length + 1));
  }
  assert.deepEqual(offenders, [], 'a String subclass in the production dependencies deoptimizes charCodeAt process-wide');
});
