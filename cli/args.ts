/**
 * A small hand-written argument parser: per-command flag specs, `--flag value`,
 * `--flag=value`, `-h`, `--` to end flags, repeatable flags. Every mistake is a
 * UsageError (exit 2) that names the flag or argument and the command.
 */
import { FednodeError } from '../base/errors.js';

export type FlagType = 'boolean' | 'string' | 'int' | 'duration';

export interface FlagSpec {
  readonly name: string; // without dashes: 'data-dir'
  readonly type: FlagType;
  readonly description: string;
  readonly short?: string; // one letter
  readonly repeatable?: boolean;
  readonly placeholder?: string; // shown in help: --ttl <duration>
  readonly defaultText?: string; // shown in help
  readonly min?: number; // for int
  readonly max?: number;
}

export interface PositionalSpec {
  readonly name: string;
  readonly description: string;
  readonly required: boolean;
  /** Takes all remaining arguments (last positional only). */
  readonly rest?: boolean;
}

export type FlagValue = boolean | string | number | string[];

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, FlagValue | undefined>>;
  readonly positionals: readonly string[];
}

export class UsageError extends FednodeError<'ERR_USAGE'> {
  constructor(
    message: string,
    readonly command: string | null,
  ) {
    super('ERR_USAGE', message, { command });
    this.name = 'UsageError';
  }
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'data-dir', type: 'string', placeholder: '<dir>', description: 'data directory (default: $FEDNODE_DATA_DIR or ~/.fednode)' },
  { name: 'json', type: 'boolean', description: 'machine-readable output: one JSON object on stdout' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show help for this command' },
];

/** `1h`, `30m`, `45s`, `2d`, `500ms`, or seconds. */
export function parseDurationMs(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (m?.[1] === undefined) return null;
  const unit = m[2] ?? 's';
  const mult = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : unit === 'h' ? 3600_000 : 86_400_000;
  const ms = Math.round(Number(m[1]) * mult);
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
}

function convert(spec: FlagSpec, raw: string, command: string): string | number {
  const where = `--${spec.name}`;
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw new UsageError(`${where} expects an integer, got '${raw}'`, command);
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`${where} must be between ${spec.min ?? '-inf'} and ${spec.max ?? 'inf'}, got ${n}`, command);
      }
      return n;
    }
    case 'duration': {
      const ms = parseDurationMs(raw);
      if (ms === null) throw new UsageError(`${where} expects a duration such as 1h, 30m, 45s or 500ms, got '${raw}'`, command);
      return ms;
    }
    case 'boolean':
      if (raw === 'true') return 'true';
      if (raw === 'false') return 'false';
      throw new UsageError(`${where} is a switch and takes no value (got '${raw}')`, command);
  }
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], positionals: readonly PositionalSpec[], command: string): ParsedArgs {
  const all = [...GLOBAL_FLAGS, ...specs];
  const byName = new Map(all.map((s) => [s.name, s]));
  const byShort = new Map(all.filter((s) => s.short !== undefined).map((s) => [s.short as string, s]));
  const flags: Record<string, FlagValue | undefined> = {};
  const pos: string[] = [];
  let i = 0;
  let flagsDone = false;
  const set = (spec: FlagSpec, value: FlagValue): void => {
    if (spec.repeatable === true) {
      const prev = flags[spec.name];
      flags[spec.name] = [...(Array.isArray(prev) ? prev : []), String(value)];
      return;
    }
    if (flags[spec.name] !== undefined) throw new UsageError(`--${spec.name} given twice`, command);
    flags[spec.name] = value;
  };
  while (i < argv.length) {
    const a = argv[i] as string;
    i++;
    if (flagsDone || a === '-' || !a.startsWith('-')) {
      pos.push(a);
      continue;
    }
    if (a === '--') {
      flagsDone = true;
      continue;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
      spec = byName.get(name);
      if (spec === undefined && name.startsWith('no-')) {
        const neg = byName.get(name.slice(3));
        if (neg?.type === 'boolean' && inline === undefined) {
          set(neg, false);
          continue;
        }
      }
      if (spec === undefined) {
        const close = [...byName.keys()].filter((k) => k.startsWith(name.slice(0, 3)));
        throw new UsageError(`unknown flag --${name} for \`fednode ${command}\`${close.length > 0 ? ` (did you mean ${close.map((c) => `--${c}`).join(', ')}?)` : ''}`, command);
      }
    } else {
      if (a.length !== 2) throw new UsageError(`unknown flag ${a} for \`fednode ${command}\` (short flags take one letter; long flags start with --)`, command);
      spec = byShort.get(a.slice(1));
      if (spec === undefined) throw new UsageError(`unknown flag ${a} for \`fednode ${command}\``, command);
    }
    if (spec.type === 'boolean') {
      set(spec, inline === undefined ? true : convert(spec, inline, command) === 'true');
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new UsageError(`--${spec.name} needs a value${spec.placeholder !== undefined ? ` ${spec.placeholder}` : ''}`, command);
      }
      raw = next;
      i++;
    }
    set(spec, convert(spec, raw, command));
  }
  if (flags['help'] === true) return { flags, positionals: pos };
  const last = positionals[positionals.length - 1];
  if (!(last?.rest === true) && pos.length > positionals.length) {
    throw new UsageError(`unexpected argument '${pos[positionals.length] ?? ''}' for \`fednode ${command}\``, command);
  }
  positionals.forEach((p, idx) => {
    if (p.required && pos[idx] === undefined) throw new UsageError(`missing argument <${p.name}> for \`fednode ${command}\``, command);
  });
  return { flags, positionals: pos };
}

export function formatHelp(command: string, summary: string, specs: readonly FlagSpec[], positionals: readonly PositionalSpec[], details?: string): string {
  const args = positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`) + (p.rest === true ? '...' : '')).join(' ');
  const lines = [`usage: fednode ${command}${specs.length > 0 ? ' [flags]' : ''}${args.length > 0 ? ' ' + args : ''}`, '', summary, ''];
  if (positionals.length > 0) {
    lines.push('arguments:');
    for (const p of positionals) lines.push(`  ${p.name.padEnd(22)} ${p.description}`);
    lines.push('');
  }
  const flagLine = (s: FlagSpec): string => {
    const left = `${s.short !== undefined ? `-${s.short}, ` : ''}--${s.name}${s.type === 'boolean' ? '' : ` ${s.placeholder ?? `<${s.type}>`}`}`;
    return `  ${left.padEnd(28)} ${s.description}${s.defaultText !== undefined ? ` (default: ${s.defaultText})` : ''}${s.repeatable === true ? ' (repeatable)' : ''}`;
  };
  if (specs.length > 0) {
    lines.push('flags:');
    for (const s of specs) lines.push(flagLine(s));
    lines.push('');
  }
  lines.push('global flags:');
  for (const s of GLOBAL_FLAGS) lines.push(flagLine(s));
  if (details !== undefined) lines.push('', details);
  return lines.join('\n') + '\n';
}
