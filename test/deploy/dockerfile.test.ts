// The Dockerfile, checked without Docker: pinned bases, a build stage that compiles (`npm run build`), a
// runtime stage that is the default target, runs as a non-root user, writes only its spool, exposes the ports
// its environment listens on — and whose ENTRYPOINT/CMD, run with the image's environment, starts a Tollgate
// that its HEALTHCHECK command reports healthy (and reports a dead one as unhealthy).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../service/envoy/provision.ts';
import { envOf, execForm, parseDockerfile, type Stage } from './support/dockerfile.ts';
import { freePort, run } from './support/run.ts';

const DOCKERFILE = join(REPO_ROOT, 'Dockerfile');
const df = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const runtime = df.stages[df.stages.length - 1]!;
const stageNamed = (n: string): Stage | undefined => df.stages.find((s) => s.name === n);
const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op);
const last = (s: Stage, op: string) => ops(s, op).at(-1);
const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };

/** The stage chain of a stage (FROM <stage> AS …) down to its image. */
function baseImage(s: Stage): string {
  const parent = stageNamed(s.from);
  return parent ? baseImage(parent) : s.from;
}

function ignored(path: string): boolean {
  const rules = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let out = false;
  for (const r of rules) {
    const neg = r.startsWith('!');
    const p = neg ? r.slice(1) : r;
    if (path === p || path.startsWith(`${p}/`)) out = !neg;
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'tollgate-dockerfile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('Dockerfile', () => {
  it('every base image is pinned to an exact release or digest (no floating tags), on the Node major the tests run on', () => {
    for (const s of df.stages) {
      if (stageNamed(s.from)) continue;
      assert.match(s.from, /(@sha256:[0-9a-f]{64}|:v?\d+\.\d+\.\d+[^:@\s]*)$/, `FROM ${s.from} (stage ${s.name ?? '?'}) is not pinned`);
      assert.doesNotMatch(s.from, /latest/);
    }
    const node = /^node:(\d+)\./.exec(baseImage(runtime));
    assert.ok(node, `runtime base ${baseImage(runtime)} is a node image`);
    assert.equal(node[1], process.versions.node.split('.')[0], 'the image runs the Node major the test suite runs on');
  });

  it('multi-stage: the build stage runs `npm run build` (a real package.json script); the runtime stage takes dist/ from it and installs nothing', () => {
    assert.ok(df.stages.length >= 2);
    const build = df.stages.find((s) => ops(s, 'RUN').some((r) => /\bnpm run build\b/.test(r.args)));
    assert.ok(build, 'a stage runs `npm run build`');
    assert.ok(PACKAGE.scripts?.build, 'package.json has the `build` script the Dockerfile runs');
    assert.ok(ops(build, 'RUN').some((r) => /npm prune --omit=dev/.test(r.args)), 'dev dependencies are pruned after the build');
    assert.ok(ops(runtime, 'COPY').some((c) => new RegExp(`--from=${build.name}\\s+\\S*dist\\s`).test(c.args)), 'the runtime stage copies dist/ from the build stage');
    for (const r of ops(runtime, 'RUN')) assert.doesNotMatch(r.args, /\bnpm\b|\btsx\b|\btsc\b/, `runtime RUN ${r.args}`);
    assert.equal(runtime.name, 'runtime', 'the production stage is last (the default `docker build` target) and named runtime');
  });

  it('every COPY from the build context exists and is not excluded by .dockerignore', () => {
    for (const s of df.stages)
      for (const c of ops(s, 'COPY')) {
        if (/--from=/.test(c.args)) continue;
        const parts = c.args.replace(/--\S+\s+/g, '').split(/\s+/);
        for (const src of parts.slice(0, -1)) {
          const matches = src.includes('*')
            ? readdirSync(REPO_ROOT).filter((f) => new RegExp(`^${src.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`).test(f))
            : existsSync(join(REPO_ROOT, src)) ? [src] : [];
          assert.ok(matches.length > 0, `COPY ${src} (line ${c.line}): not in the repository`);
          for (const m of matches) assert.ok(!ignored(m.replace(/^\.\//, '').replace(/\/$/, '')), `COPY ${m} (line ${c.line}) is excluded by .dockerignore`);
        }
      }
  });

  it('runs as a non-root numeric user; the spool is the only writable path; EXPOSE = the ports its environment listens on', () => {
    const user = last(runtime, 'USER')?.args;
    assert.ok(user, 'the runtime stage sets USER');
    const [uid, gid] = user.split(':');
    assert.match(uid!, /^\d+$/, 'numeric, so Kubernetes runAsNonRoot can verify it');
    assert.notEqual(Number(uid), 0);
    if (gid !== undefined) assert.notEqual(Number(gid), 0);
    const env = envOf(runtime);
    assert.equal(env.TOLLGATE_MODE, 'production');
    const spool = env.TOLLGATE_SPOOL_DIR;
    assert.ok(spool, 'TOLLGATE_SPOOL_DIR is set (the default, ./var/spool, is inside the read-only app directory)');
    assert.ok(ops(runtime, 'RUN').some((r) => r.args.includes(`mkdir -p ${spool}`) && new RegExp(`chown -R ${uid}:${gid ?? uid} `).test(r.args)), 'the spool directory belongs to the runtime user');
    const exposed = ops(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, '')).sort();
    const listening = [env.TOLLGATE_GRPC_ADDR, env.TOLLGATE_HTTP_ADDR].map((a) => a?.split(':').at(-1)).sort();
    assert.deepEqual(exposed, listening);
  });

  it('ENTRYPOINT + CMD starts `tollgate serve` with the image environment, the HEALTHCHECK passes against it and fails against nothing', { timeout: 90_000 }, async () => {
    const argv = [...execForm(last(runtime, 'ENTRYPOINT')?.args ?? '[]'), ...execForm(last(runtime, 'CMD')?.args ?? '[]')];
    assert.equal(argv[0], 'node');
    assert.ok(argv.includes('bin/tollgate.js') && argv.at(-1) === 'serve', `the container runs \`tollgate serve\`: ${argv.join(' ')}`);
    const hc = last(runtime, 'HEALTHCHECK');
    assert.ok(hc, 'the runtime stage has a HEALTHCHECK');
    const hcArgs = /^(?:--\S+\s+)*CMD\s+(.*)$/.exec(hc.args);
    assert.ok(hcArgs, `HEALTHCHECK ${hc.args}`);
    const probe = execForm(hcArgs[1]!);
    assert.equal(probe[0], 'node');

    const httpPort = await freePort();
    // The image's environment, with the listeners on loopback and the secrets production mode demands.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...envOf(runtime),
      TOLLGATE_GRPC_ADDR: '127.0.0.1:0',
      TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TOLLGATE_CONFIG: join(REPO_ROOT, 'policies'),
      TOLLGATE_SPOOL_DIR: join(tmp, 'spool'),
      TOLLGATE_LINEAGE: 'none',
      TOLLGATE_GRPC_SHARED_SECRET: 'dockerfile-test-shared-secret-0123456789',
      TOLLGATE_PLAN_KEY: 'dockerfile-test-plan-key-0123456789abcdef0123',
    };
    const proc = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      let healthy: { code: number; out: string } = { code: -1, out: '' };
      for (let i = 0; i < 120 && healthy.code !== 0 && proc.exitCode === null; i++) {
        healthy = await run(probe[0] === 'node' ? process.execPath : probe[0]!, probe.slice(1), { cwd: REPO_ROOT, env, timeoutMs: 10_000 });
        if (healthy.code !== 0) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(healthy.code, 0, `HEALTHCHECK never passed: ${healthy.out}\n${output}`);
      assert.match(output, /tollgate started/);
      assert.match(output, /"mode":"production"/);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `SIGTERM drains and exits 0\n${output}`);
    const dead = await run(process.execPath, probe.slice(1), { cwd: REPO_ROOT, env, timeoutMs: 10_000 });
    assert.equal(dead.code, 1, 'the HEALTHCHECK fails when nothing answers');
  });

  it('the runtime stage alone serves: its COPYs assembled into a directory (no service/, no TypeScript) run `tollgate serve` and pass the HEALTHCHECK', { timeout: 90_000 }, async () => {
    // The build stage works in the repository layout (WORKDIR /src = the repository root after `npm run build`).
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.js')), 'dist/cli.js: run `npm run build` first (npm test does)');
    const workdir = last(runtime, 'WORKDIR')!.args;
    const root = join(tmp, 'image');
    const place = (dest: string) => join(root, posix.isAbsolute(dest) ? dest : posix.join(workdir, dest));
    for (const c of ops(runtime, 'COPY')) {
      const from = /--from=(\S+)/.exec(c.args)?.[1];
      const [src, dest] = c.args.replace(/--\S+\s+/g, '').split(/\s+/) as [string, string];
      const stage = from ? stageNamed(from) : undefined;
      const stageDir = stage ? [stage, ...df.stages].map((s) => last(s, 'WORKDIR')?.args).find(Boolean)! : '';
      const repoPath = from ? join(REPO_ROOT, posix.relative(stageDir, src)) : join(REPO_ROOT, src);
      assert.ok(existsSync(repoPath), `COPY ${c.args}: ${repoPath}`);
      const target = place(dest);
      mkdirSync(dirname(target), { recursive: true });
      // node_modules: the repository's (a superset of the pruned one) by link; the rest copied.
      if (src.endsWith('node_modules')) symlinkSync(repoPath, target);
      else cpSync(repoPath, target, { recursive: true });
    }
    const app = place('.');
    assert.ok(!existsSync(join(app, 'service')), 'no TypeScript sources in the image');
    const argv = [...execForm(last(runtime, 'ENTRYPOINT')!.args), ...execForm(last(runtime, 'CMD')!.args)];
    const probe = execForm(/CMD\s+(.*)$/.exec(last(runtime, 'HEALTHCHECK')!.args)![1]!);
    const httpPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...envOf(runtime),
      TOLLGATE_GRPC_ADDR: '127.0.0.1:0',
      TOLLGATE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TOLLGATE_CONFIG: join(app, 'policies'),
      TOLLGATE_SPOOL_DIR: join(tmp, 'image-spool'),
      TOLLGATE_LINEAGE: 'none',
      TOLLGATE_GRPC_SHARED_SECRET: 'dockerfile-test-shared-secret-0123456789',
      TOLLGATE_PLAN_KEY: 'dockerfile-test-plan-key-0123456789abcdef0123',
    };
    const proc = spawn(process.execPath, argv.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      let healthy = { code: -1, out: '' };
      for (let i = 0; i < 120 && healthy.code !== 0 && proc.exitCode === null; i++) {
        healthy = await run(process.execPath, probe.slice(1), { cwd: app, env, timeoutMs: 10_000 });
        if (healthy.code !== 0) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(healthy.code, 0, `HEALTHCHECK never passed in the assembled image: ${healthy.out}\n${output}`);
      assert.match(output, /tollgate started/);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output);
  });
});
