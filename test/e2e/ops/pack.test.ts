/**
 * The npm package (issue 17): `npm pack` of this checkout, installed into a clean prefix
 * (`npm install -g --prefix <tmp> <tarball>`; --prefer-offline: the tarballs come from the npm
 * cache that `npm ci` filled, the registry is asked only for package metadata that cache lacks),
 * ships dist and the dashboard files and no tests; its `fednode --help`, `fednode service print`
 * and `fednode cluster --nodes 2` run, the cluster stopping cleanly on SIGTERM (exit 0); its
 * dashboard page is served from the installed files.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/e2e.js';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

function run(cmd: string, args: readonly string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) =>
    execFile(cmd, [...args], { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (e, stdout, stderr) => res({ code: e === null ? 0 : typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : 1, stdout, stderr })),
  );
}

describe('npm pack -> install into a clean prefix', () => {
  it('installs; --help, service print and cluster --nodes 2 run from the installed package', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-pack-'));
    cleanup.push(() => rm(base, { recursive: true, force: true }));
    const pack = await run('npm', ['pack', '--json', '--pack-destination', base]);
    expect(pack.code, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('node/dashboard/assets/app.js');
    expect(files).toContain('node/dashboard/assets/index.html');
    expect(files).toContain('contrib/systemd/fednode.service');
    expect(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.endsWith('.ts'))).toEqual([]);

    const prefix = join(base, 'prefix');
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(base, info!.filename)], base);
    expect(inst.code, inst.stderr).toBe(0);
    const bin = join(prefix, 'bin', 'fednode');
    const help = await run(bin, ['--help'], base);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: fednode <command>');
    expect(help.stdout).toContain('top');
    const unit = await run(bin, ['service', 'print', '--data-dir', join(base, 'data')], base);
    expect(unit.code, unit.stderr).toBe(0);
    expect(unit.stdout).toMatch(new RegExp(`ExecStart=\\S+ ${join(prefix, 'lib', 'node_modules', 'fednode', 'dist', 'cli', 'main.js').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} start --data-dir ${join(base, 'data')}`));

    const cluster = spawn(bin, ['cluster', '--nodes', '2', '--json', '--dir', join(base, 'c')], { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((res) => cluster.once('exit', (code) => res(code)));
    cleanup.push(async () => {
      if (cluster.exitCode === null) cluster.kill('SIGKILL');
      await exited;
    });
    let err = '';
    cluster.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
    const ready = await new Promise<{ nodes: Array<{ api: string }> }>((res, rej) => {
      createInterface({ input: cluster.stdout }).on('line', (l) => {
        try {
          const j = JSON.parse(l) as { event?: string };
          if (j.event === 'cluster-ready') res(j as unknown as { nodes: Array<{ api: string }> });
        } catch {
          // not JSON
        }
      });
      void exited.then((c) => rej(new RangeError(`cluster exited ${String(c)} before ready: ${err}`)));
    });
    expect(ready.nodes).toHaveLength(2);
    const page = await fetch(`${ready.nodes[0]!.api}/dashboard/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>fednode dashboard</title>');
    cluster.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await readdir(join(base, 'c'))).toEqual(expect.arrayContaining(['node-1', 'node-2']));
  }, 300_000);
});
