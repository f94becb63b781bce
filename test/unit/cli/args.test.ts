import { describe, expect, it } from 'vitest';
import { parseArgs, parseDurationMs, UsageError } from '../../../cli/args.js';
import type { FlagSpec, PositionalSpec } from '../../../cli/args.js';
import { runCli } from '../../../cli/run.js';

const flags: FlagSpec[] = [
  { name: 'ttl', type: 'duration', description: 'ttl' },
  { name: 'nodes', type: 'int', min: 1, max: 16, description: 'n' },
  { name: 'listen', type: 'string', repeatable: true, description: 'l' },
  { name: 'mdns', type: 'boolean', description: 'm' },
];
const pos: PositionalSpec[] = [{ name: 'token', required: true, description: 't' }];

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('cli argument parser', () => {
  it('parses flags, inline values, repeatable flags, --no-x and positionals', () => {
    const a = parseArgs(['tok', '--ttl', '2h', '--nodes=3', '--listen', '/a', '--listen', '/b', '--no-mdns', '--json'], flags, pos, 'join');
    expect(a.positionals).toEqual(['tok']);
    expect(a.flags).toMatchObject({ ttl: 7_200_000, nodes: 3, listen: ['/a', '/b'], mdns: false, json: true });
  });

  it('names the unknown flag and the command', () => {
    const e = usage(() => parseArgs(['tok', '--frobnicate'], flags, pos, 'join'));
    expect(e.message).toContain('unknown flag --frobnicate');
    expect(e.message).toContain('fednode join');
  });

  it('rejects a missing value, a missing argument and an extra argument', () => {
    expect(usage(() => parseArgs(['tok', '--ttl'], flags, pos, 'join')).message).toBe('--ttl needs a value');
    expect(usage(() => parseArgs([], flags, pos, 'join')).message).toContain('missing argument <token>');
    expect(usage(() => parseArgs(['a', 'b'], flags, pos, 'join')).message).toContain("unexpected argument 'b'");
  });

  it('rejects bad numbers, bad durations, values on switches and repeated single flags', () => {
    expect(usage(() => parseArgs(['t', '--nodes', 'x'], flags, pos, 'c')).message).toContain('expects an integer');
    expect(usage(() => parseArgs(['t', '--nodes', '99'], flags, pos, 'c')).message).toContain('between 1 and 16');
    expect(usage(() => parseArgs(['t', '--ttl', 'soon'], flags, pos, 'c')).message).toContain('expects a duration');
    expect(usage(() => parseArgs(['t', '--mdns=maybe'], flags, pos, 'c')).message).toContain('takes no value');
    expect(usage(() => parseArgs(['t', '--ttl', '1h', '--ttl', '2h'], flags, pos, 'c')).message).toContain('given twice');
  });

  it('parses durations with units', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('1h')).toBe(3_600_000);
    expect(parseDurationMs('30')).toBe(30_000);
    expect(parseDurationMs('0s')).toBeNull();
    expect(parseDurationMs('-1h')).toBeNull();
  });
});

describe('cli dispatch', () => {
  const run = async (argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runCli(argv, { out: (s) => (out += s), err: (s) => (err += s), env: { FEDNODE_DATA_DIR: '/nonexistent/fednode-test' } });
    return { code, out, err };
  };

  it('exits 2 with a specific message on an unknown command or flag', async () => {
    const a = await run(['frob']);
    expect(a.code).toBe(2);
    expect(a.err).toContain("unknown command 'frob'");
    const b = await run(['status', '--bogus']);
    expect(b.code).toBe(2);
    expect(b.err).toContain('unknown flag --bogus for `fednode status`');
    expect(b.err).toContain('fednode status --help');
  });

  it('exits 2 on a missing argument and prints a JSON error with --json', async () => {
    const r = await run(['join', '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.out) as { error: { code: string; message: string }; exitCode: number };
    expect(j.error.code).toBe('ERR_USAGE');
    expect(j.error.message).toContain('missing argument <token>');
    expect(j.exitCode).toBe(2);
  });

  it('prints per-command help and the config documentation', async () => {
    const h = await run(['invite', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('usage: fednode invite');
    expect(h.out).toContain('--ttl <duration>');
    const c = await run(['help', 'config']);
    expect(c.out).toContain('adverts.periodMs');
    expect(c.out).toContain('default 15000');
  });

  it('exits 3 when the data directory is missing, for start and for the control commands alike', async () => {
    const s = await run(['start']);
    expect(s.code).toBe(3);
    expect(s.err).toContain('/nonexistent/fednode-test does not exist');
    // It used to be 6 ("no node running") for status: the directory itself is what is missing.
    const st = await run(['status']);
    expect(st.code).toBe(3);
    expect(st.err).toContain('/nonexistent/fednode-test does not exist');
  });

  it('exits 7 on a bad invite token, before touching the disk', async () => {
    const r = await run(['join', 'not*a*token']);
    expect(r.code).toBe(7);
    expect(r.err).toContain('not a fednode invite token');
  });
});
