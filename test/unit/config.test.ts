// Config loading: precise file:line:col errors, cross references, credentials never inline, the
// example config loads, and `tollgate keys create` stores only a hash.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigErrors, parseDocuments } from '../../service/config/documents.ts';
import { buildCoreConfig } from '../../service/config/loader.ts';
import { buildSnapshot } from '../../service/config/snapshot.ts';
import { hashKey } from '../../service/identity/keys.ts';

const HEAD = 'apiVersion: tollgate.dev/v1alpha1\n';

function errorsOf(yaml: string): string[] {
  try {
    buildCoreConfig('.', parseDocuments('cfg.yaml', yaml));
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

describe('config loader errors name file:line:col', () => {
  const cases: { name: string; yaml: string; want: RegExp }[] = [
    { name: 'YAML syntax', yaml: `${HEAD}kind: Tenant\nmetadata: {name: a\n`, want: /^cfg\.yaml:\d+:\d+: YAML syntax/ },
    { name: 'wrong apiVersion', yaml: 'apiVersion: v1\nkind: Tenant\nmetadata: {name: a}\n', want: /^cfg\.yaml:1:\d+: apiVersion must be/ },
    { name: 'unknown field', yaml: `${HEAD}kind: Tenant\nmetadata: {name: a}\nspec:\n  timezone: UTC\n`, want: /^cfg\.yaml:5:\d+: Tenant "a": spec: Unrecognized key.*timezone/ },
    {
      name: 'wrong type deep inside',
      yaml: `${HEAD}kind: Provider\nmetadata: {name: p}\nspec: {api: openai, cluster: c, host: h, credential: {env: K}}\n---\n${HEAD}kind: Model\nmetadata: {name: m}\nspec:\n  deployments:\n  - provider: p\n    model: x\n    region: r\n    pricing: {inputPerMillion: cheap, outputPerMillion: 1}\n`,
      want: /^cfg\.yaml:14:\d+: Model "m": spec\.deployments\.0\.pricing\.inputPerMillion/,
    },
    { name: 'inline credential refused', yaml: `${HEAD}kind: Provider\nmetadata: {name: p}\nspec:\n  api: openai\n  cluster: c\n  host: h\n  credential: {value: sk-123}\n`, want: /^cfg\.yaml:8:\d+: Provider "p": spec\.credential/ },
    { name: 'unknown provider reference', yaml: `${HEAD}kind: Model\nmetadata: {name: m}\nspec:\n  deployments:\n  - {provider: nope, model: x, region: r}\n`, want: /^cfg\.yaml:6:\d+: Model "m": unknown provider "nope"/ },
    { name: 'key for an unknown tenant', yaml: `${HEAD}kind: VirtualKey\nmetadata: {name: k}\nspec:\n  sha256: ${'a'.repeat(64)}\n  tenant: ghost\n`, want: /^cfg\.yaml:6:\d+: VirtualKey "k": unknown tenant "ghost"/ },
    { name: 'plaintext key instead of a hash', yaml: `${HEAD}kind: Tenant\nmetadata: {name: t}\n---\n${HEAD}kind: VirtualKey\nmetadata: {name: k}\nspec:\n  sha256: tg-my-secret-key\n  tenant: t\n`, want: /^cfg\.yaml:9:\d+: .*hex SHA-256/ },
    { name: 'duplicate name', yaml: `${HEAD}kind: Tenant\nmetadata: {name: t}\n---\n${HEAD}kind: Tenant\nmetadata: {name: t}\n`, want: /^cfg\.yaml:7:\d+: duplicate Tenant\/t \(first defined at cfg\.yaml:3\)/ },
    { name: 'bad time zone', yaml: `${HEAD}kind: Tenant\nmetadata: {name: t}\nspec: {timeZone: Mars/Olympus}\n`, want: /^cfg\.yaml:4:\d+: unknown time zone/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const errs = errorsOf(c.yaml);
      assert.ok(errs.some((e) => c.want.test(e)), `got: ${JSON.stringify(errs)}`);
    });
  }

  it('reports every problem in one pass', () => {
    const errs = errorsOf(`${HEAD}kind: Tenant\nmetadata: {name: t}\nspec: {nope: 1}\n---\n${HEAD}kind: Team\nmetadata: {name: x}\nspec: {tenant: ghost}\n`);
    assert.equal(errs.length, 2, JSON.stringify(errs));
  });
});

describe('the example config', () => {
  it('loads, with policies, and names unset credentials as warnings', () => {
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const snap = buildSnapshot('policies');
      assert.ok(snap.core.models.length >= 5);
      assert.ok(snap.policy.policies.length >= 1);
      assert.ok(snap.core.warnings.some((w) => /openai/.test(w) && /OPENAI_API_KEY/.test(w)));
      assert.ok(!snap.core.credentials.has('openai'));
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
  });
  it('documents demo keys whose hashes are in keys.yaml', () => {
    const readme = readFileSync('README.md', 'utf8');
    const keys = [...readme.matchAll(/`(tg-demo-[a-z0-9-]+)`/g)].map((m) => m[1]!);
    assert.equal(keys.length, 3);
    const yaml = readFileSync('policies/keys.yaml', 'utf8');
    for (const k of keys) assert.ok(yaml.includes(hashKey(k)), `hash of ${k} in keys.yaml`);
    for (const k of keys) assert.ok(!yaml.includes(k), 'never the key itself');
  });
});

describe('tollgate CLI', { timeout: 60000 }, () => {
  it('keys create prints the key once and stores only its hash; check accepts the result', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-keys-'));
    try {
      cpSync('policies', dir, { recursive: true });
      const out = execFileSync(process.execPath, ['bin/tollgate.js', 'keys', 'create', '--tenant', 'acme', '--team', 'research', '--user', 'dave', '--dir', dir], { encoding: 'utf8' });
      const key = out.trim().split('\n').at(-1)!;
      assert.match(key, /^tg-[A-Za-z0-9_-]{40,}$/);
      const yaml = readFileSync(join(dir, 'keys.yaml'), 'utf8');
      assert.ok(yaml.includes(hashKey(key)));
      assert.ok(!yaml.includes(key));
      const check = spawnSync(process.execPath, ['bin/tollgate.js', 'check', dir], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stderr);
      const bad = spawnSync(process.execPath, ['bin/tollgate.js', 'keys', 'create', '--tenant', 'nobody', '--dir', dir], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /unknown tenant/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('check exits 1 with file:line:col on a broken config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-check-'));
    try {
      writeFileSync(join(dir, 'bad.yaml'), `${HEAD}kind: Tenant\nmetadata: {name: t}\nspec:\n  colour: blue\n`);
      const r = spawnSync(process.execPath, ['bin/tollgate.js', 'check', dir], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /bad\.yaml:5:3: Tenant "t": spec: Unrecognized key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
