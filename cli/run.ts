/**
 * Dispatch: `fednode <command> [flags] [args]`, `fednode help [command|config|exit-codes|errors]`,
 * `fednode --version`. Errors print one line (`fednode <cmd>: <message>`) on stderr,
 * or `{"error":{code,message,data}}` on stdout with --json, and map to exit codes in cli/exit.ts.
 */
import { formatHelp, parseArgs, UsageError } from './args.js';
import type { CommandContext } from './command.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import { EXIT, errorCodesHelp, exitCodeFor, exitCodesHelp } from './exit.js';
import { FednodeError } from '../base/errors.js';
import { connectControl } from '../node/control/client.js';
import { dataDirPaths, resolveDataDir } from '../node/datadir-files.js';
import { FEDNODE_VERSION } from '../node/runtime/version.js';

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  now?: () => number;
}

function topHelp(commands: readonly CommandEntry[]): string {
  const lines = ['usage: fednode <command> [flags]', '', 'fednode: peer-to-peer federation node for home-lab GPU clusters.', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
  lines.push('', 'help topics: fednode help <command> | fednode help config | fednode help exit-codes | fednode help errors', 'every command takes --data-dir <dir> (or $FEDNODE_DATA_DIR; default ~/.fednode) and --json');
  return lines.join('\n') + '\n';
}

/** Loaded on demand: node/config.ts carries zod, which `--help` and `status` need not load. */
async function configHelp(): Promise<string> {
  const { CONFIG_FIELDS } = await import('../node/config.js');
  const lines = ['config file: <data dir>/config.json (JSON; every field optional; unknown fields are rejected)', ''];
  for (const f of CONFIG_FIELDS) lines.push(`  ${f.path.padEnd(28)} default ${JSON.stringify(f.default)}`, `  ${''.padEnd(28)} ${f.why}`);
  return lines.join('\n') + '\n';
}


export async function runCli(argv: readonly string[], io: CliIo, commands: readonly CommandEntry[] = COMMANDS): Promise<number> {
  const name = argv[0];
  const jsonWanted = argv.includes('--json');
  const fail = (e: unknown, cmd: string | null): number => {
    const code = exitCodeFor(e);
    const message = e instanceof Error ? e.message : String(e);
    if (jsonWanted) {
      const fe: FednodeError | null = e instanceof FednodeError ? (e as FednodeError) : null;
      io.out(JSON.stringify({ error: { code: fe?.code ?? 'ERR_INTERNAL', message, data: fe?.data ?? {} }, exitCode: code }) + '\n');
    }
    io.err(`fednode${cmd !== null ? ` ${cmd}` : ''}: ${message}\n`);
    if (e instanceof UsageError) io.err(`run \`fednode ${cmd !== null ? `${cmd} ` : ''}--help\` for usage\n`);
    if (code === EXIT.failure && !(e instanceof FednodeError) && e instanceof Error && e.stack !== undefined) io.err(e.stack + '\n');
    return code;
  };
  if (name === undefined || name === '--help' || name === '-h') {
    io.out(topHelp(commands));
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    io.out(jsonWanted ? JSON.stringify({ version: FEDNODE_VERSION }) + '\n' : `fednode ${FEDNODE_VERSION}\n`);
    return EXIT.ok;
  }
  if (name === 'help') {
    const topic = argv[1];
    if (topic === undefined) io.out(topHelp(commands));
    else if (topic === 'config') io.out(await configHelp());
    else if (topic === 'exit-codes') io.out(exitCodesHelp());
    else if (topic === 'errors') io.out(errorCodesHelp());
    else {
      const entry = commands.find((x) => x.name === topic);
      if (entry === undefined) return fail(new UsageError(`no help topic '${topic}' (commands: ${commands.map((x) => x.name).join(', ')}; topics: config, exit-codes, errors)`, null), null);
      const c = await entry.load();
      io.out(formatHelp(c.name, entry.summary, c.flags, c.positionals, c.details));
    }
    return EXIT.ok;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    return fail(new UsageError(`unknown command '${name}' (commands: ${commands.map((c) => c.name).join(', ')})`, null), null);
  }
  try {
    const cmd = await entry.load();
    const args = parseArgs(argv.slice(1), cmd.flags, cmd.positionals, cmd.name);
    if (args.flags['help'] === true) {
      io.out(formatHelp(cmd.name, entry.summary, cmd.flags, cmd.positionals, cmd.details));
      return EXIT.ok;
    }
    const dataDirFlag = args.flags['data-dir'];
    const dataDir = resolveDataDir({ flag: typeof dataDirFlag === 'string' ? dataDirFlag : undefined, env: io.env });
    const paths = dataDirPaths(dataDir);
    const json = args.flags['json'] === true;
    const ctx: CommandContext = {
      args,
      json,
      dataDir,
      paths,
      env: io.env,
      out: (s) => io.out(s),
      err: (s) => io.err(s),
      result: (j, human) => {
        if (json) io.out(JSON.stringify(j) + '\n');
        else if (human !== '') io.out(human);
      },
      control: () => connectControl(paths),
      now: io.now ?? Date.now,
    };
    return await cmd.run(ctx);
  } catch (e) {
    return fail(e, entry.name);
  }
}
