/**
 * Issue #15 item 1: commands load only what they use. `--help`, `status`, `peers` and
 * `infer` run the real binary with a resolve hook that lists every module loaded; none of
 * them may pull in libp2p, LevelDB, zod, sodium or the simulator. (Their speed is measured
 * by `npm run bench -- cli`, not asserted here.)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ROOT } from '../../helpers/e2e.js';
import { COMMANDS } from '../../../cli/commands/index.js';

const TRACE = join(ROOT, 'test', 'helpers', 'module-trace.mjs');
/** Packages that belong to a running node, never to a short CLI command. */
const HEAVY = ['zod', 'libp2p', '@libp2p/', '@chainsafe/', 'classic-level', 'level', 'sodium-native', 'hash-wasm', '@noble/', 'multiformats', 'undici', 'prom-client'];

function loadedBy(args: readonly string[]): Promise<{ modules: string[]; code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TRACE, MAIN, ...args], { env: { ...process.env, FEDNODE_DATA_DIR: '' } }, (err, _out, stderr) => {
      const modules = stderr.split('\n').filter((l) => l.startsWith('MODULE ')).map((l) => l.slice('MODULE '.length));
      resolve({ modules, code: err === null ? 0 : Number((err as { code?: unknown }).code ?? 1) });
    });
  });
}

function heavyIn(modules: readonly string[]): string[] {
  return modules.filter((u) => {
    const i = u.indexOf('/node_modules/');
    if (i < 0) return u.includes('/dist/simnet/') || u.includes('/dist/consensus/') || u.includes('/dist/node/p2p/');
    const pkg = u.slice(i + '/node_modules/'.length);
    return HEAVY.some((h) => pkg === h || pkg.startsWith(h.endsWith('/') ? h : h + '/'));
  });
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fednode-startup-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CLI start-up loads only what the command uses', () => {
  it('the trace hook sees heavy packages when a command does load them (control)', async () => {
    const r = await loadedBy(['help', 'config']);
    expect(r.code).toBe(0);
    expect(heavyIn(r.modules).some((u) => u.includes('/node_modules/zod/'))).toBe(true);
  });

  for (const argv of [['--help'], ['status'], ['peers'], ['infer', 'hello']]) {
    it(`fednode ${argv.join(' ')} loads no libp2p, LevelDB, zod, sodium or simulator module`, async () => {
      const r = await loadedBy([...argv, '--data-dir', join(dir, 'none')]);
      expect(r.modules.length).toBeGreaterThan(5); // the hook saw the CLI itself
      expect(heavyIn(r.modules)).toEqual([]);
    });
  }

  it('every entry of the command table loads a command of its own name', async () => {
    for (const e of COMMANDS) expect((await e.load()).name).toBe(e.name);
  });
});
