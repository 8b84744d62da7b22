// `tollgate test [DIR | FILE] [--dir DIR] [--run PATTERN]`: PolicyTest cases against the whole
// policy bundle of a config directory (every Policy in it compiled together, as the server runs them).
import { relative, resolve, sep } from 'node:path';
import { parseDocuments, type ConfigDocument } from '../config/documents.ts';
import { maxFileBytesFromEnv, readRegularFile } from '../config/files.ts';
import { buildSnapshot } from '../config/snapshot.ts';
import { runPolicyTests } from '../policy/index.ts';
import { existing, parse, str } from './args.ts';
import { configDir } from './check.ts';
import { CliError, UsageError } from './errors.ts';

function pattern(raw: string | undefined): RegExp | undefined {
  if (raw === undefined) return undefined;
  try {
    return new RegExp(raw);
  } catch (e) {
    throw new UsageError(`--run "${raw}" is not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** The PolicyTest documents of one file; its other documents must already be part of the bundle. */
function testsInFile(file: string, dir: string): ConfigDocument[] {
  const label = relative(process.cwd(), file) || file;
  const docs = parseDocuments(label, readRegularFile(file, maxFileBytesFromEnv(), label));
  const tests = docs.filter((d) => d.kind === 'PolicyTest');
  if (tests.length === 0) throw new UsageError(`${file} has no PolicyTest documents (kind: PolicyTest)`);
  const root = resolve(dir) + sep;
  const others = docs.filter((d) => d.kind !== 'PolicyTest');
  if (others.length && !resolve(file).startsWith(root))
    throw new UsageError(
      `${file} also holds ${others.map((d) => `${d.kind} "${d.name}"`).join(', ')}, which is not part of the bundle of ${dir}; tests run against the config directory's bundle, so put it there (or pass --dir)`,
    );
  return tests;
}

export async function runTest(args: string[]): Promise<number> {
  const p = parse(args, { dir: { type: 'string' }, run: { type: 'string' } }, 1);
  const only = pattern(str(p, 'run'));
  const target = p.positionals[0];
  const kind = target === undefined ? 'directory' : existing(target, ['file', 'directory'], 'test path');
  if (kind === 'directory' && target !== undefined && str(p, 'dir') !== undefined)
    throw new UsageError(`give either a config directory (${target}) or --dir, not both; --dir goes with a test FILE`);
  const dir = kind === 'directory' ? configDir(target) : configDir(str(p, 'dir'));
  const snap = buildSnapshot(dir);
  const testDocs = kind === 'file' ? testsInFile(target!, dir) : snap.core.otherDocs.filter((d) => d.kind === 'PolicyTest');
  if (testDocs.length === 0) throw new CliError(`no PolicyTest documents in ${dir} (kind: PolicyTest; see docs/policies.md)`);
  const deployments = snap.catalog.models().flatMap((m) => {
    const r = snap.catalog.resolve(m.name);
    return r ? r.entries.map((e) => e.info) : [];
  });
  const res = runPolicyTests(snap.policy, testDocs, deployments, {
    tenants: [...snap.core.tenants.values()],
    teams: [...snap.core.teams.values()],
    only: only ? (id) => only.test(id) : undefined,
  });
  for (const l of res.lines) process.stdout.write(`${l}\n`);
  if (only && res.passed + res.failed === 0)
    throw new CliError(`no test case matches --run "${str(p, 'run')}" (${res.skipped} cases, named <test>/<case>, e.g. ${firstCase(testDocs)})`);
  process.stdout.write(`${res.passed} passed, ${res.failed} failed${res.skipped ? `, ${res.skipped} not matching --run` : ''} (bundle: ${snap.policy.policies.length} policies in ${dir})\n`);
  return res.failed > 0 || res.passed === 0 ? 1 : 0;
}

function firstCase(docs: ConfigDocument[]): string {
  const d = docs[0]!;
  const cases = (d.spec as { cases?: { name?: unknown }[] }).cases;
  return `${d.name}/${String(cases?.[0]?.name ?? '…')}`;
}
