/**
 * `fednode top` against a real 2-node cluster (real processes): `--once` prints one plain frame
 * naming both members live, consensus and traffic; the live view redraws in place (ANSI home +
 * clear per frame) and exits 0 on SIGINT; a too-short interval is a usage error (exit 2); with no
 * node running it exits 6.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Running } from '../../helpers/e2e.js';
import { MAIN, fednode, spawnUntil } from '../../helpers/e2e.js';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe('fednode top (real processes)', () => {
  it('--once frame, live redraws until SIGINT (exit 0), usage error, node not running', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-top-'));
    cleanup.push(() => rm(base, { recursive: true, force: true }));
    const cluster: Running = await spawnUntil(['cluster', '--nodes', '2', '--json', '--dir', join(base, 'c'), '--advert-period', '300ms'], 'cluster-ready', 90_000);
    cleanup.push(async () => {
      if (cluster.child.exitCode === null) {
        cluster.child.kill('SIGTERM');
        await cluster.exited;
      }
    });
    const n1 = join(base, 'c', 'node-1');
    // wait until node-1 sees node-2's advert
    let once = await fednode(['top', '--once', '--data-dir', n1]);
    for (let i = 0; i < 50 && !/node-2\s+LIVE/.test(once.stdout); i++) {
      await new Promise((r) => setTimeout(r, 200));
      once = await fednode(['top', '--once', '--data-dir', n1]);
    }
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/node-1\*\s+LIVE\s+self/);
    expect(once.stdout).toMatch(/node-2\s+LIVE\s+(\d+ms|up)\s/);
    expect(once.stdout).toContain('members 2 live of 2');
    expect(once.stdout).toMatch(/consensus height \d+ round \d+/);
    expect(once.stdout).toContain('no routing decisions yet');
    expect(once.stdout).not.toContain('\x1b[');

    // one request shows up in the next frame
    const api = ((cluster.ready as { nodes: Array<{ api: string }> }).nodes[0]!).api;
    const r = await fetch(`${api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'simulated-7b', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }) });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const after = await fednode(['top', '--once', '--data-dir', n1]);
    expect(after.stdout).toContain('total 1');
    expect(after.stdout).toMatch(/simulated-7b\s+node-\d/);

    // live: frames redraw in place; SIGINT ends it with 0
    const live = spawn(process.execPath, [MAIN, 'top', '--interval', '300ms', '--data-dir', n1], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const frames = new Promise<void>((res) => {
      live.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.split('\x1b[H\x1b[2J').length - 1 >= 3) res();
      });
    });
    await frames;
    const exited = new Promise<number | null>((res) => live.once('exit', (code) => res(code)));
    live.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('fednode top  cluster');

    expect((await fednode(['top', '--interval', '10ms', '--data-dir', n1])).code).toBe(2);
    const none = await fednode(['top', '--once', '--data-dir', join(base, 'nothing')]);
    expect(none.code).not.toBe(0);
  }, 150_000);
});
