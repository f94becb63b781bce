/**
 * Issue #14 item 6: `start` right after a kill -9 is not refused by the dead node's lock.
 * The killed node is kept a zombie on purpose (its parent is a `sleep` that never reaps), so
 * `kill(pid, 0)` still succeeds on it: the state the old pid-only check mistook for a live node.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, fednode, spawnUntil, waitFor } from '../../helpers/e2e.js';

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fednode-lock-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('restart hygiene', () => {
  it('a node killed with -9 and not yet reaped leaves a lock the next start takes over, with a log line', async () => {
    const dir = join(root, 'n');
    expect((await fednode(['init', '--new-cluster', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0'])).code).toBe(0);
    // sh starts the node in the background, prints its pid, then becomes `sleep`, which never reaps it.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${MAIN}" start --json --data-dir "${dir}" 2>/dev/null & echo "pid $!"; exec sleep 120`], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const lines = createInterface({ input: parent.stdout });
      const pid = await new Promise<number>((resolve, reject) => {
        let p = 0;
        const timer = setTimeout(() => reject(new Error('first node not ready')), 30_000);
        lines.on('line', (l) => {
          if (l.startsWith('pid ')) p = Number(l.slice(4));
          else if (l.includes('"ready"')) {
            clearTimeout(timer);
            resolve(p);
          }
        });
      });
      expect(pid).toBeGreaterThan(0);
      process.kill(pid, 'SIGKILL');
      await waitFor('the killed node to be a zombie', async () => ((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.startsWith('Z') ? true : undefined));
      expect((await readFile(join(dir, 'node.lock'), 'utf8')).split(' ')[0]).toBe(String(pid));

      const again = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready');
      try {
        expect(again.stderr()).toContain('took over a stale data-directory lock');
        expect(again.stderr()).toContain('killed and is not yet reaped');
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
