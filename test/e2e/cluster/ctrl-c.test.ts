/**
 * A terminal Ctrl-C sends SIGINT to the whole foreground process group. `fednode cluster`
 * must stop every node once and report a clean stop (exit 0): with the nodes in its own
 * group they used to get the SIGINT and then cluster's SIGTERM as a second signal, and exit 1.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { MAIN } from '../../helpers/e2e.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('fednode cluster and Ctrl-C', () => {
  it('SIGINT to the whole process group stops every node cleanly and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-ctrlc-'));
    dirs.push(dir);
    // detached: the cluster leads a process group of its own, as a shell's foreground job does
    const child = spawn(process.execPath, [MAIN, 'cluster', '--nodes', '2', '--dir', join(dir, 'c')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cluster not ready\n${err}`)), 60_000);
      createInterface({ input: child.stdout }).on('line', (l) => {
        if (l.startsWith('Ctrl-C stops all nodes')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    process.kill(-(child.pid ?? 0), 'SIGINT');
    expect(await exited).toBe(0);
    expect(err).toContain('all nodes stopped cleanly');
  });
});
