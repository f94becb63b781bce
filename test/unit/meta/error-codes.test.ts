// One error-code registry (issue #12 item 3): every code the sources name is listed once in
// base/error-codes.ts with its room, exit class and meaning; every listed code is raised or
// matched somewhere; the CLI's exit status comes from the registry's class.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode } from '../../../base/error-codes.js';
import { FednodeError } from '../../../base/errors.js';
import { EXIT, errorCodesHelp, exitCodeFor } from '../../../cli/exit.js';
import { NodeAnswerError } from '../../../cli/commands/consensus-common.js';

const ROOT = join(import.meta.dirname, '../../..');
const SOURCE_DIRS = ['base', 'crypto', 'consensus', 'routing', 'node', 'cli', 'simnet'];
const REGISTRY = 'base/error-codes.ts';
/** Codes of Node.js itself that the sources compare against: not ours, never raised by us. */
const NODE_OWN_CODES = new Set(['ERR_CHILD_PROCESS_STDIO_MAXBUFFER']);

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await sources(p)));
    else if (d.name.endsWith('.ts') && !d.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

async function literalsByFile(): Promise<Map<string, Set<string>>> {
  const files = (await Promise.all(SOURCE_DIRS.map(sources))).flat();
  const m = new Map<string, Set<string>>();
  for (const f of files) {
    const text = await readFile(join(ROOT, f), 'utf8');
    m.set(relative(ROOT, join(ROOT, f)), new Set([...text.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((x) => x[1]!)));
  }
  return m;
}

describe('the error-code registry', () => {
  it('lists every ERR_ code the sources name (Node.js own codes excepted)', async () => {
    const unlisted: string[] = [];
    for (const [file, codes] of await literalsByFile()) {
      if (file === REGISTRY) continue;
      for (const c of codes) if (!isErrorCode(c) && !NODE_OWN_CODES.has(c)) unlisted.push(`${c} (${file})`);
    }
    expect(unlisted).toEqual([]);
  });

  it('lists no code that nothing raises or matches', async () => {
    const used = new Set<string>();
    for (const [file, codes] of await literalsByFile()) if (file !== REGISTRY) for (const c of codes) used.add(c);
    expect(Object.keys(ERROR_CODES).filter((c) => !used.has(c))).toEqual([]);
    for (const c of NODE_OWN_CODES) expect(isErrorCode(c)).toBe(false);
  });

  it('gives every code a room, an exit class the CLI knows and a meaning', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^ERR_[A-Z0-9_]+$/);
      expect(info.meaning.length, code).toBeGreaterThan(10);
      expect(EXIT[info.exit], code).toBeGreaterThanOrEqual(1);
    }
  });

  it('turns a code into the exit status of its class', () => {
    expect(exitCodeFor(new FednodeError('ERR_USAGE', 'x'))).toBe(EXIT.usage);
    expect(exitCodeFor(new FednodeError('ERR_STORE_CORRUPT', 'x'))).toBe(EXIT.corrupt);
    expect(exitCodeFor(new FednodeError('ERR_CONTROL_TIMEOUT', 'x'))).toBe(EXIT.noAnswer);
    expect(exitCodeFor(new FednodeError('ERR_TOKEN_EXPIRED', 'x'))).toBe(EXIT.badToken);
    expect(exitCodeFor(new FednodeError('ERR_DATADIR_LOCKED', 'x'))).toBe(EXIT.locked);
    expect(exitCodeFor(new Error('plain'))).toBe(EXIT.failure);
    for (const [code, info] of Object.entries(ERROR_CODES)) expect(exitCodeFor(new FednodeError(code as keyof typeof ERROR_CODES, 'x')), code).toBe(EXIT[info.exit]);
  });

  it('keeps a node answer code it knows, and names one it does not (a newer node) ERR_REMOTE_CODE', () => {
    const known = new NodeAnswerError('ERR_PATTERN_REJECTED', 'rejected', { status: 409 });
    expect(known.code).toBe('ERR_PATTERN_REJECTED');
    const unknown = new NodeAnswerError('ERR_FROM_THE_FUTURE', 'new', { status: 400 });
    expect(unknown.code).toBe('ERR_REMOTE_CODE');
    expect(unknown.data).toEqual({ status: 400, code: 'ERR_FROM_THE_FUTURE' });
    expect(exitCodeFor(unknown)).toBe(EXIT.failure);
  });

  it('`fednode help errors` prints every code once with its exit status', () => {
    const lines = errorCodesHelp().split('\n');
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      const rows = lines.filter((l) => l.trimStart().startsWith(`${code} `));
      expect(rows, code).toHaveLength(1);
      expect(rows[0]!.slice(rows[0]!.indexOf(code) + code.length).trimStart().startsWith(`${EXIT[info.exit]}  `), code).toBe(true);
    }
  });
});
