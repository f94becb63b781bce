import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/run.js';
import { initDataDir } from '../../../node/runtime/init.js';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix: string | null;
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function doctor(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; checks: Check[] }> {
  let out = '';
  const code = await runCli(['doctor', '--json', '--data-dir', dir], { out: (s) => (out += s), err: () => undefined, env });
  return { code, checks: (JSON.parse(out) as { checks: Check[] }).checks };
}

const byName = (checks: Check[], name: string): Check | undefined => checks.find((c) => c.name === name);

describe('fednode doctor', () => {
  it('says how to create a missing data directory', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-doc-'));
    dirs.push(base);
    const r = await doctor(join(base, 'none'));
    expect(r.code).toBe(1);
    expect(byName(r.checks, 'data directory')).toMatchObject({ status: 'fail', fix: expect.stringContaining('fednode init --new-cluster') });
  });

  it('passes on a fresh node (not running), reads a GPU through nvidia-smi, and flags an unsafe key file with its fix', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-doc-'));
    dirs.push(base);
    const d = join(base, 'n');
    await initDataDir({ dir: d, newCluster: true, nowMs: Date.now(), config: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: { enabled: false }, api: { port: 0 } } });
    // a stand-in nvidia-smi printing one recorded-format line (the only fake allowed: the GPU)
    const smi = join(base, 'nvidia-smi');
    await writeFile(smi, '#!/bin/sh\necho "0, GPU-1234, NVIDIA GeForce RTX 4090, 24564, 1024, 37, 51, 78.40, 450.00"\n');
    await chmod(smi, 0o755);
    const ok = await doctor(d, { FEDNODE_NVIDIA_SMI: smi });
    expect(ok.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(ok.code).toBe(0);
    expect(byName(ok.checks, 'identity key permissions')?.status).toBe('ok');
    expect(byName(ok.checks, 'node')).toMatchObject({ status: 'warn', detail: 'not running' });
    expect(byName(ok.checks, 'store')?.status).toBe('ok');
    expect(byName(ok.checks, 'mdns')?.status).toBe('skip');
    expect(byName(ok.checks, 'nvidia-smi')).toMatchObject({ status: 'ok', detail: expect.stringContaining('RTX 4090') });

    const noGpu = await doctor(d, { FEDNODE_NVIDIA_SMI: join(base, 'missing-nvidia-smi') });
    expect(byName(noGpu.checks, 'nvidia-smi')).toMatchObject({ status: 'warn', fix: expect.stringContaining('NVIDIA driver') });

    await chmod(join(d, 'control.token'), 0o644);
    const bad = await doctor(d);
    expect(bad.code).toBe(1);
    expect(byName(bad.checks, 'control token permissions')).toMatchObject({ status: 'fail', fix: `chmod 600 ${join(d, 'control.token')}` });

    await chmod(join(d, 'control.token'), 0o600);
    await writeFile(join(d, 'config.json'), '{"mdns": {"enabled": "yes"}}');
    const cfg = await doctor(d);
    expect(byName(cfg.checks, 'config')).toMatchObject({ status: 'fail', detail: expect.stringContaining('mdns.enabled') });
  });
});
