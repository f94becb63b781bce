/**
 * `npm run bench -- cli [--runs=N]`: wall time of short `fednode` commands against `node -e 0`
 * measured in the same run (issue #15 item 1; goals: `--help` <= 1.5x, `status` <= 2.5x).
 * Runs are interleaved (one of each command per round) so machine noise hits all alike;
 * medians and p90 are reported with each command's ratio to the node baseline. `status`,
 * `peers` and `infer` talk to a real node started for the run (simulated backend).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from './main.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

function timeOnce(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    execFile(process.execPath, args, (err) => {
      if (err !== null) reject(new Error(`${args.join(' ')}: ${err.message}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function startNode(dir: string): Promise<() => Promise<void>> {
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [MAIN, 'init', '--new-cluster', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', '--simulated-model', 'bench-model', '--simulated-tps', '0'], (e) => (e === null ? resolve() : reject(new Error(`init: ${e.message}`)))),
  );
  const child = spawn(process.execPath, [MAIN, 'start', '--json', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (l) => {
      if (l.includes('"ready"')) resolve();
    });
    child.once('exit', (c: number | null) => reject(new Error(`node exited ${String(c)} before ready`)));
  });
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const runsArg = opts.args.find((a) => a.startsWith('--runs='));
  const runs = runsArg !== undefined ? Math.max(3, Number(runsArg.slice('--runs='.length))) : 15;
  const dir = await mkdtemp(join(tmpdir(), 'fednode-bench-cli-'));
  const stop = await startNode(join(dir, 'n'));
  const dd = ['--data-dir', join(dir, 'n')];
  const cases: Record<string, readonly string[]> = {
    'node -e 0': ['-e', '0'],
    '--help': [MAIN, '--help'],
    status: [MAIN, 'status', ...dd],
    peers: [MAIN, 'peers', ...dd],
    infer: [MAIN, 'infer', ...dd, '--model', 'bench-model', '--max-tokens', '4', 'hi'],
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  try {
    for (const args of Object.values(cases)) await timeOnce(args); // warm the fs cache
    for (let i = 0; i < runs; i++) for (const [k, args] of Object.entries(cases)) samples[k]!.push(await timeOnce(args));
  } finally {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }
  const base = quantile(samples['node -e 0']!, 0.5);
  const rows = Object.entries(samples).map(([k, xs]) => ({ command: k, p50Ms: quantile(xs, 0.5), p90Ms: quantile(xs, 0.9), ratioToNode: quantile(xs, 0.5) / base }));
  if (!opts.json) {
    console.log(`fednode CLI wall time, ${runs} interleaved runs each (ratio = p50 / p50 of node -e 0 in this run)`);
    for (const r of rows) console.log(`  ${r.command.padEnd(10)} p50 ${r.p50Ms.toFixed(1).padStart(7)} ms  p90 ${r.p90Ms.toFixed(1).padStart(7)} ms  ${r.ratioToNode.toFixed(2)}x`);
  }
  return { runs, rows };
}
