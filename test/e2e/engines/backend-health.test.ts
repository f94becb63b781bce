// A real node process whose backends are broken in two ways: the embedded engine's package
// is missing (FEDNODE_LLAMA_CPP_PACKAGE names one that does not exist) and an OpenAI-compatible
// server that does not answer. The node starts and serves its healthy backend; `status` and
// `doctor` say which backend is unhealthy and why, and its models are not advertised.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Running } from '../../helpers/e2e.js';
import { fednode, spawnUntil, waitFor } from '../../helpers/e2e.js';
import { writeTinyModel } from '../../helpers/tiny-model.js';

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  delete process.env['FEDNODE_LLAMA_CPP_PACKAGE'];
});

describe('backend health in a real node', () => {
  it('a missing engine package and a dead server: the node serves the rest, status and doctor say why', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-health-'));
    dirs.push(base);
    const dir = join(base, 'n');
    const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', '--simulated-model', 'sim']);
    expect(init.code, init.stderr).toBe(0);
    const cfgFile = join(dir, 'config.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as { backends: unknown[] };
    cfg.backends.push(
      { kind: 'llama-cpp', id: 'engine', models: [writeTinyModel({ dir: base })], gpu: false, threads: 1, health: { failureThreshold: 1, intervalMs: 200 } },
      { kind: 'openai', id: 'dead', baseUrl: 'http://127.0.0.1:1/v1', health: { failureThreshold: 1, intervalMs: 200, timeoutMs: 500 } },
    );
    await writeFile(cfgFile, JSON.stringify(cfg, null, 2));
    process.env['FEDNODE_LLAMA_CPP_PACKAGE'] = 'node-llama-cpp-not-installed';
    const node = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready', 60_000);
    running.push(node);
    const st = await waitFor(
      'status names both unhealthy backends',
      async () => {
        const r = await fednode(['status', '--data-dir', dir]);
        return /backend\s+engine \(llama-cpp\) UNHEALTHY/.test(r.stdout) && /backend\s+dead \(openai\) UNHEALTHY/.test(r.stdout) ? r.stdout : undefined;
      },
      20_000,
      200,
    );
    expect(st).toMatch(/engine \(llama-cpp\) UNHEALTHY: health check failed 1x: the llama-cpp backend needs node-llama-cpp, which is not installed here.*npm install node-llama-cpp@3\.22\.1/);
    expect(st).toMatch(/dead \(openai\) UNHEALTHY: health check failed 1x: .*127\.0\.0\.1:1/);
    expect(st).toMatch(/backend\s+simulated \(simulated\) healthy/);
    expect(st).toMatch(/models\s+sim\n/); // only the healthy backend's model
    const doc = await fednode(['doctor', '--json', '--data-dir', dir]);
    const checks = (JSON.parse(doc.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }).checks;
    expect(checks.find((c) => c.name === 'backend dead health')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^unhealthy \(its models are not advertised\)/) as unknown });
    expect(checks.find((c) => c.name === 'backend engine health')?.status).toBe('warn');
    expect(checks.find((c) => c.name === 'backend simulated')?.status).toBe('ok');
    const inf = await fednode(['infer', '--json', '--data-dir', dir, '--model', 'sim', '--max-tokens', '3', 'hi']);
    expect(inf.code, inf.stderr).toBe(0);
    node.child.kill('SIGINT');
    expect((await node.exited).code).toBe(0);
  }, 120_000);
});
