// The docs tell the truth: every environment variable the code reads is in the README's tables, and
// the docs link only inside the repository (to files that exist).
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');

function files(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** Environment variables read by the code: process.env.X, env.X / env['X'] (an env parameter), readSecret(…, 'X') (also X_FILE). */
export function envVarsInCode(sources: string[]): { names: Set<string>; fileForms: Set<string> } {
  const names = new Set<string>();
  const fileForms = new Set<string>();
  for (const f of sources) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\b(?:process\.)?env(?:\.([A-Z][A-Z0-9_]+)|\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\])/g)) names.add((m[1] ?? m[2])!);
    for (const m of text.matchAll(/readSecret(?:List)?\(\s*[\w.]+\s*,\s*['"]([A-Z][A-Z0-9_]+)['"]/g)) {
      names.add(m[1]!);
      fileForms.add(m[1]!);
    }
    for (const m of text.matchAll(/(?:FromEnv|positive)\(\s*(?:[\w.]+\s*,\s*)?['"]([A-Z][A-Z0-9_]+)['"]/g)) names.add(m[1]!);
  }
  return { names, fileForms };
}

/** Names in the first cell of the README's table rows (`| \`NAME\` | …`). */
function readmeTableVars(readme: string): Set<string> {
  const out = new Set<string>();
  for (const line of readme.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** Operating-system variables the code reads that are not Tollgate's to document. */
const OS_VARS = new Set(['PATH', 'HOME']);

describe('docs: environment variables', () => {
  const sources = [...files(join(ROOT, 'service'), '.ts'), ...files(join(ROOT, 'bin'), '.js')];
  const { names, fileForms } = envVarsInCode(sources);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it('finds the variables the code reads (the scan itself works)', () => {
    for (const n of ['TOLLGATE_CONFIG', 'REDIS_URL', 'TOLLGATE_ADMIN_TOKEN', 'TOLLGATE_GRPC_TLS_REFRESH_MS', 'TOLLGATE_LOG_FORMAT']) assert.ok(names.has(n), n);
    assert.ok(fileForms.has('TOLLGATE_PLAN_KEY'));
    assert.ok(names.size > 25, [...names].join(' '));
  });

  it('every one is a row of the README environment tables', () => {
    const table = readmeTableVars(readme);
    // X_FILE of a secret with a `_FILE` form is documented by that paragraph (next test), not a row of its own.
    const fileForm = (n: string) => n.endsWith('_FILE') && fileForms.has(n.slice(0, -'_FILE'.length));
    const missing = [...names].filter((n) => !OS_VARS.has(n) && !table.has(n) && !fileForm(n)).sort();
    assert.deepEqual(missing, [], `read by the code, missing from README.md's tables: ${missing.join(', ')}`);
  });

  it('every secret read with a _FILE form is named where the README explains the _FILE form', () => {
    const para = readme.split(/\n\s*\n/).find((p) => p.includes('`_FILE` form')) ?? '';
    const missing = [...fileForms].filter((n) => !para.includes(`\`${n}\``));
    assert.deepEqual(missing, [], `README's _FILE paragraph does not name: ${missing.join(', ')}`);
  });
});

describe('docs: links stay inside the repository', () => {
  const docs = [
    join(ROOT, 'README.md'),
    ...files(join(ROOT, 'docs'), '.md'),
    ...files(join(ROOT, 'dashboards'), '.md'),
    ...files(join(ROOT, 'policies'), '.md'),
    ...files(join(ROOT, 'service'), '.md'),
    ...files(join(ROOT, 'envoy'), '.md'),
  ].filter((f) => existsSync(f));

  it('no link or URL to another site (loopback URLs in examples are fine)', () => {
    const bad: string[] = [];
    for (const f of docs) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const m of line.matchAll(/\b(?:https?|ftp):\/\/([^\s/)>`'"]+)/g)) {
            const host = m[1]!.replace(/^[^@]*@/, '').replace(/[:.,;]+$/, '').replace(/:\d+$/, '');
            if (!['localhost', '127.0.0.1', '[::1]', '0.0.0.0'].includes(host)) bad.push(`${relative(ROOT, f)}:${i + 1}: ${m[0]}`);
          }
        });
    }
    assert.deepEqual(bad, []);
  });

  it('every relative link points at a file or directory that exists', () => {
    const broken: string[] = [];
    for (const f of docs) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(f), target))) broken.push(`${relative(ROOT, f)}: ${m[1]}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
