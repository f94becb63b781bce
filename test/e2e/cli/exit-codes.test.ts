/**
 * Issue #14 item 2: every exit status `fednode help exit-codes` lists is produced by the real
 * binary in the situation the table names, and a control request that fails or is cut exits
 * non-zero with a specific message (it used to exit 0 with no output when the connection was
 * dropped: undici's fetch never settled and nothing kept the process alive).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fednode, spawnUntil, type Running } from '../../helpers/e2e.js';

const NODE_FLAGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0'];

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fednode-exit-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A "control API" that accepts a connection and then does `behaviour` with it. */
async function fakeControl(behaviour: 'destroy' | 'http500'): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (behaviour === 'destroy') s.destroy();
    else {
      s.once('data', () => {
        const body = JSON.stringify({ error: { code: 'ERR_INTERNAL', message: 'the handler failed' } });
        s.end(`HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      });
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** An initialised data directory whose runtime.json points at `controlUrl`. */
async function dirPointingAt(name: string, controlUrl: string): Promise<string> {
  const dir = join(root, name);
  expect((await fednode(['init', '--new-cluster', '--data-dir', dir, '--name', name, ...NODE_FLAGS])).code).toBe(0);
  await writeFile(join(dir, 'runtime.json'), JSON.stringify({ pid: process.pid, peerId: 'x', cluster: null, addrs: [], controlUrl, apiUrl: null, startedAt: 1 }));
  await chmod(join(dir, 'runtime.json'), 0o600);
  return dir;
}

describe('exit codes', () => {
  it('help exit-codes lists exactly the statuses 0..8, each with its meaning', async () => {
    const r = await fednode(['help', 'exit-codes']);
    expect(r.code).toBe(0);
    const codes = r.stdout.split('\n').flatMap((l) => /^\s+(\d+)\s+\S/.exec(l)?.[1] ?? []).map(Number);
    expect(codes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('help errors lists the registry: each code with its exit status', async () => {
    const r = await fednode(['help', 'errors']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+ERR_STORE_CORRUPT\s+5\s+\S/m);
    expect(r.stdout).toMatch(/^\s+ERR_USAGE\s+2\s+\S/m);
    expect(r.stdout).toMatch(/^\s+ERR_NODE_NOT_RUNNING\s+6\s+\S/m);
  });

  it('0 ok, 2 usage, 3 no data dir, 6 no node, 7 bad token, 5 corrupt config', async () => {
    expect((await fednode(['--version'])).code).toBe(0);
    const usage = await fednode(['status', '--no-such-flag']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/no-such-flag/);
    const missing = await fednode(['status', '--data-dir', join(root, 'does-not-exist')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/does not exist/);
    const idle = join(root, 'idle');
    expect((await fednode(['init', '--new-cluster', '--data-dir', idle, ...NODE_FLAGS])).code).toBe(0);
    const notRunning = await fednode(['status', '--data-dir', idle]);
    expect(notRunning.code).toBe(6);
    expect(notRunning.stderr).toMatch(/no fednode is running/);
    const token = await fednode(['join', 'not-a-token', '--data-dir', join(root, 'joiner')]);
    expect(token.code).toBe(7);
    await writeFile(join(idle, 'config.json'), '{ this is not json');
    const corrupt = await fednode(['start', '--data-dir', idle]);
    expect(corrupt.code).toBe(5);
    expect(corrupt.stderr).toMatch(/config\.json/);
  });

  it('4 locked by a running node; 1 when the control API answers an error', async () => {
    const dir = join(root, 'live');
    expect((await fednode(['init', '--new-cluster', '--data-dir', dir, ...NODE_FLAGS])).code).toBe(0);
    const node: Running = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready');
    try {
      const second = await fednode(['start', '--data-dir', dir]);
      expect(second.code).toBe(4);
      expect(second.stderr).toMatch(/lock/i);
    } finally {
      node.child.kill('SIGTERM');
      await node.exited;
    }
    const srv = await fakeControl('http500');
    try {
      const failing = await dirPointingAt('failing', srv.url);
      const r = await fednode(['peers', '--data-dir', failing]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the handler failed/);
    } finally {
      await srv.close();
    }
  });

  it('8 with a specific message from every control command when the connection is dropped', async () => {
    const srv = await fakeControl('destroy');
    try {
      const dir = await dirPointingAt('dropped', srv.url);
      for (const argv of [['status'], ['peers'], ['log'], ['patterns'], ['approve'], ['models'], ['propose', 'model.alias', 'fast', 'simulated-7b'], ['invite'], ['route', '--model', 'm']]) {
        const r = await fednode([...argv, '--data-dir', dir]);
        expect({ argv, code: r.code }).toEqual({ argv, code: 8 });
        expect(r.stderr).toMatch(/was closed before it answered/);
        expect(r.stdout).toBe('');
      }
      const j = await fednode(['status', '--json', '--data-dir', dir]);
      expect(j.code).toBe(8);
      expect((JSON.parse(j.stdout) as { error: { code: string } }).error.code).toBe('ERR_CONTROL_CUT');
    } finally {
      await srv.close();
    }
  });
});
