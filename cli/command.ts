/**
 * What a `fednode` command is. The table of commands (names, one-line summaries, lazy loaders) is cli/commands/index.ts:
 * to add one (`infer`, `models`, `propose`, `patterns`, `log`, `approve`, `simnet`),
 * write cli/commands/<name>.ts exporting a `Command` and add it to that table.
 * A command talks to a running node with `ctx.control()` (node/control/client.ts)
 * and registers its server side as a control route or a NodeExtension (node/runtime/node.ts).
 */
import type { FlagSpec, ParsedArgs, PositionalSpec } from './args.js';
import type { ControlClient } from '../node/control/client.js';
import type { DataDirPaths } from '../node/datadir.js';

export interface CommandContext {
  readonly args: ParsedArgs;
  readonly json: boolean;
  /** Resolved data directory (flag > env > default). */
  readonly dataDir: string;
  readonly paths: DataDirPaths;
  readonly env: NodeJS.ProcessEnv;
  /** stdout / stderr writers (tests capture them). */
  out(text: string): void;
  err(text: string): void;
  /** Print the command's result: JSON when --json, else the human text. */
  result(json: unknown, human: string): void;
  /** A client for the node running on this data directory (ERR_NODE_NOT_RUNNING otherwise). */
  control(): Promise<ControlClient>;
  now(): number;
}

export interface Command {
  readonly name: string;
  readonly flags: readonly FlagSpec[];
  readonly positionals: readonly PositionalSpec[];
  /** Extra help text (examples, notes). */
  readonly details?: string;
  /** Returns the exit code (see cli/exit.ts). */
  run(ctx: CommandContext): Promise<number>;
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
}
export function flagNumber(args: ParsedArgs, name: string): number | undefined {
  const v = args.flags[name];
  return typeof v === 'number' ? v : undefined;
}
export function flagBool(args: ParsedArgs, name: string): boolean | undefined {
  const v = args.flags[name];
  return typeof v === 'boolean' ? v : undefined;
}
export function flagList(args: ParsedArgs, name: string): string[] {
  const v = args.flags[name];
  return Array.isArray(v) ? v : [];
}
