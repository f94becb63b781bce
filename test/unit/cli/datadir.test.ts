import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock, checkInitialised, dataDirPaths, readClusterFile, readControlToken, readSwarmKey, resolveDataDir } from '../../../node/datadir.js';
import { initDataDir } from '../../../node/runtime/init.js';
import { openStore, SEQ_BLOCK } from '../../../node/store/index.js';
import { runCli } from '../../../cli/run.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fednode-dd-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

describe('data directory', () => {
  it('resolves --data-dir over FEDNODE_DATA_DIR over ~/.fednode', () => {
    expect(resolveDataDir({ flag: '/x', env: { FEDNODE_DATA_DIR: '/y' }, home: '/h' })).toBe('/x');
    expect(resolveDataDir({ env: { FEDNODE_DATA_DIR: '/y' }, home: '/h' })).toBe('/y');
    expect(resolveDataDir({ env: {}, home: '/h' })).toBe('/h/.fednode');
  });

  it('`init --new-cluster` creates every file with private modes', async () => {
    const d = join(await tmp(), 'node');
    const r = await cli(['init', '--new-cluster', '--data-dir', d, '--json', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { peerId: string; cluster: string };
    expect(j.peerId).toMatch(/^12D3Koo/);
    expect(j.cluster).toMatch(/^fc[0-9a-f]{24}$/);
    const p = dataDirPaths(d);
    expect((await stat(p.root)).mode & 0o777).toBe(0o700);
    for (const f of [p.identity, p.config, p.cluster, p.swarmKey, p.controlToken]) {
      expect((await stat(f)).mode & 0o777, f).toBe(0o600);
    }
    expect((await stat(p.store)).isDirectory()).toBe(true);
    const cluster = await readClusterFile(p.cluster);
    expect(cluster.genesis).toEqual([expect.objectContaining({ peerId: j.peerId })]);
    expect(cluster.joinedWith).toBeNull();
    expect((await readSwarmKey(p.swarmKey)).raw).toHaveLength(32);
    expect(await readControlToken(p.controlToken)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const cfg = JSON.parse(await readFile(p.config, 'utf8')) as { mdns: { enabled: boolean }; listen: string[] };
    expect(cfg.mdns.enabled).toBe(false);
    expect(cfg.listen).toEqual(['/ip4/127.0.0.1/tcp/0']);
    // a second init refuses to replace the identity
    const again = await cli(['init', '--data-dir', d]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('already initialised');
  });

  it('start on a missing, half-made or corrupt data dir fails with a clear error and exit code', async () => {
    const base = await tmp();
    const missing = await cli(['start', '--data-dir', join(base, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.err).toContain('does not exist');
    const d = join(base, 'n');
    await initDataDir({ dir: d, newCluster: true, nowMs: Date.now() });
    await writeFile(join(d, 'config.json'), '{"adverts": {"periodMs": 100,}}');
    const corrupt = await cli(['start', '--data-dir', d]);
    expect(corrupt.code).toBe(5);
    expect(corrupt.err).toContain(`${join(d, 'config.json')}:1:30: invalid JSON`);
    await writeFile(join(d, 'config.json'), '{"advert": {}}');
    const unknown = await cli(['start', '--data-dir', d]);
    expect(unknown.code).toBe(5);
    expect(unknown.err).toContain('advert: unknown field');
    await writeFile(join(d, 'config.json'), '{}');
    await chmod(join(d, 'identity.key'), 0o644);
    const perms = await cli(['start', '--data-dir', d]);
    expect(perms.code).toBe(5);
    expect(perms.err).toContain('chmod 600');
    await rm(join(d, 'control.token'));
    await expect(checkInitialised(d)).rejects.toMatchObject({ code: 'ERR_DATADIR_NOT_INITIALISED' });
  });

  it('a locked data dir names the other pid; a dead owner`s lock is taken over', async () => {
    const d = await tmp();
    const lock = await acquireLock(d);
    await expect(acquireLock(d)).rejects.toMatchObject({ code: 'ERR_DATADIR_LOCKED', data: { pid: process.pid } });
    await lock.release();
    // a lock left by a process that no longer exists (kill -9)
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = child.pid ?? 0;
    await new Promise((r) => child.once('exit', r));
    await writeFile(join(d, 'node.lock'), `${deadPid}\n`);
    const l2 = await acquireLock(d);
    expect(l2.tookOver).toEqual({ pid: deadPid, reason: 'its process is gone' });
    expect((await readFile(join(d, 'node.lock'), 'utf8')).split(' ')[0]).toBe(String(process.pid));
    await l2.release();
  });

  it('a lock whose pid was reused, or (old format) names a live process that is no fednode, is taken over', async () => {
    const d = await tmp();
    // our own pid with another start time: the pid was reused since the lock was written
    await writeFile(join(d, 'node.lock'), `${process.pid} 1\n`);
    const a = await acquireLock(d);
    expect(a.tookOver).toEqual({ pid: process.pid, reason: 'its pid now belongs to another process' });
    await a.release();
    // pid-only lock naming a live `sleep`
    const sleeper = spawn('sleep', ['30']);
    try {
      await writeFile(join(d, 'node.lock'), `${sleeper.pid ?? 0}\n`);
      const b = await acquireLock(d);
      expect(b.tookOver).toEqual({ pid: sleeper.pid, reason: 'its pid runs something other than fednode' });
      await b.release();
    } finally {
      sleeper.kill('SIGKILL');
    }
    // and our own live lock (pid + matching start time) is still refused
    const mine = await acquireLock(d);
    expect(mine.tookOver).toBeNull();
    await expect(acquireLock(d)).rejects.toMatchObject({ code: 'ERR_DATADIR_LOCKED' });
    await mine.release();
  });

  it('`start` on a corrupt store exits 5 naming the store, and leaves no lock behind', async () => {
    const d = join(await tmp(), 'n');
    await initDataDir({ dir: d, newCluster: true, nowMs: Date.now(), config: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: { enabled: false }, api: { port: 0 } } });
    const { readdir } = await import('node:fs/promises');
    for (const f of await readdir(join(d, 'store'))) if (f.startsWith('MANIFEST-')) await writeFile(join(d, 'store', f), 'garbage\n');
    const r = await cli(['start', '--data-dir', d]);
    expect(r.code).toBe(5);
    expect(r.err).toContain(`store ${join(d, 'store')} is corrupt`);
    expect(await readFile(join(d, 'node.lock'), 'utf8').catch(() => 'gone')).toBe('gone');
  });

  it('`start` reports a locked data dir with exit 4 and the pid', async () => {
    const d = join(await tmp(), 'n');
    await initDataDir({ dir: d, newCluster: true, nowMs: Date.now() });
    const lock = await acquireLock(d);
    const r = await cli(['start', '--data-dir', d]);
    expect(r.code).toBe(4);
    expect(r.err).toContain(`in use by another fednode (pid ${process.pid})`);
    await lock.release();
  });
});

describe('store', () => {
  it('refuses a second opener with ERR_STORE_LOCKED', async () => {
    const d = await tmp();
    const s = await openStore(join(d, 'store'));
    await expect(openStore(join(d, 'store'))).rejects.toMatchObject({ code: 'ERR_STORE_LOCKED' });
    await s.close();
  });

  it('keeps sequence numbers growing across restarts and sections apart', async () => {
    const d = await tmp();
    let s = await openStore(join(d, 'store'));
    const a = s.seq('advert');
    const first = await a.next();
    const second = await a.next();
    expect(second).toBe(first + 1);
    await s.putJson('peers', 'p1', { addrs: ['/ip4/1.2.3.4/tcp/1'] });
    await s.section('meta').put('p1', new Uint8Array([9]));
    await s.close();
    s = await openStore(join(d, 'store'));
    const third = await s.seq('advert').next();
    expect(third).toBeGreaterThan(second);
    expect(third).toBeLessThanOrEqual(second + SEQ_BLOCK + 1);
    expect(await s.getJson('peers', 'p1')).toEqual({ addrs: ['/ip4/1.2.3.4/tcp/1'] });
    const keys: string[] = [];
    for await (const [k] of s.section('peers').entries()) keys.push(k);
    expect(keys).toEqual(['p1']);
    await s.close();
  });
});
