// power.actuate in a real node process, with the recording fake nvidia-smi (hand-written:
// test/fixtures/engines/README.md): the pinned profile's limit is applied at start, shown by
// `status`, and the original restored at stop; without root the refusal is shown and the node serves on.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Running } from '../../helpers/e2e.js';
import { fednode, spawnUntil, waitFor } from '../../helpers/e2e.js';

const FAKE = join(import.meta.dirname, '..', '..', 'fixtures', 'engines', 'fake-nvidia-smi', 'nvidia-smi');
const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  for (const k of ['FEDNODE_NVIDIA_SMI', 'FAKE_NVSMI_LOG', 'FAKE_NVSMI_DENY']) delete process.env[k];
});

async function nodeWithActuation(deny: boolean): Promise<{ dir: string; log: string; node: Running }> {
  const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-power-'));
  dirs.push(base);
  const dir = join(base, 'n');
  const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', '--simulated-model', 'sim']);
  expect(init.code, init.stderr).toBe(0);
  const cfgFile = join(dir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as { power: Record<string, unknown> };
  cfg.power['actuate'] = true;
  cfg.power['profile'] = 'boost';
  await writeFile(cfgFile, JSON.stringify(cfg, null, 2));
  const log = join(base, 'nvidia-smi.calls');
  process.env['FEDNODE_NVIDIA_SMI'] = FAKE;
  process.env['FAKE_NVSMI_LOG'] = log;
  if (deny) process.env['FAKE_NVSMI_DENY'] = '1';
  else delete process.env['FAKE_NVSMI_DENY'];
  const node = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready');
  running.push(node);
  return { dir, log, node };
}
const calls = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
const setCalls = (log: string): string[] => calls(log).filter((c) => c.startsWith('-i '));

describe('power.actuate (real node, fake nvidia-smi)', () => {
  it('applies the boost limit to each GPU (clamped), shows it, and restores the originals at stop', async () => {
    const { dir, log, node } = await nodeWithActuation(false);
    await waitFor('limits applied', () => Promise.resolve(setCalls(log).length >= 2 ? true : undefined), 20_000, 100);
    expect(setCalls(log)).toEqual(['-i 0 -pl 300', '-i 1 -pl 250']); // GPU 1's max is 250
    const st = await fednode(['status', '--data-dir', dir]);
    expect(st.stdout).toMatch(/profile\s+boost \(pinned\).*GPU limits gpu 0 300 W, gpu 1 250 W/);
    node.child.kill('SIGINT');
    expect((await node.exited).code).toBe(0);
    expect(setCalls(log)).toEqual(['-i 0 -pl 300', '-i 1 -pl 250', '-i 0 -pl 350']); // GPU 1 was already at its original 250
  });

  it('without root: status says refused, the node keeps serving and stops cleanly', async () => {
    const { dir, log, node } = await nodeWithActuation(true);
    await waitFor('refusal', () => Promise.resolve(setCalls(log).length >= 1 ? true : undefined), 20_000, 100);
    const st = await waitFor('status shows the refusal', async () => {
      const r = await fednode(['status', '--data-dir', dir]);
      return /power\.actuate refused: nvidia-smi -pl needs root/.test(r.stdout) ? r : undefined;
    }, 10_000, 200);
    expect(st.code).toBe(0);
    const inf = await fednode(['infer', '--json', '--data-dir', dir, '--model', 'sim', '--max-tokens', '3', 'hi']);
    expect(inf.code, inf.stderr).toBe(0);
    expect(node.stderr().match(/setting GPU power limits was refused/g)).toHaveLength(1);
    node.child.kill('SIGINT');
    expect((await node.exited).code).toBe(0);
    expect(setCalls(log)).toEqual(['-i 0 -pl 300']);
  });
});
