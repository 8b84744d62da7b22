// `tollgate <command> [options]`: dispatches to the commands in cli/commands.ts. Every error ends in
// cli/errors.ts renderCliError: one line (plus the command's usage for a usage mistake), no stack trace.
import { COMMANDS, findCommand, helpText } from './cli/commands.ts';
import { renderCliError, UsageError } from './cli/errors.ts';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      process.stdout.write(helpText());
      return 0;
    }
    const cmd = findCommand(topic);
    if (!cmd) return fail(new UsageError(`unknown command "${topic}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})`), undefined, helpText());
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  const cmd = findCommand(name);
  if (!cmd) {
    const what = name.startsWith('-') ? `unknown option "${name}"` : `unknown command "${name}"`;
    return fail(new UsageError(`${what} (commands: ${COMMANDS.map((c) => c.name).join(', ')})`), undefined, helpText());
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    const run = await cmd.load();
    return (await run(rest)) ?? 0;
  } catch (err) {
    return fail(err, cmd.name, cmd.usage);
  }
}

function fail(err: unknown, command: string | undefined, usage: string): number {
  const out = renderCliError(err, command, usage);
  process.stderr.write(out.stderr);
  return out.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    // `serve` keeps running (its servers hold the event loop); everything else ends here.
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => process.exit(fail(err, undefined, helpText())),
);
