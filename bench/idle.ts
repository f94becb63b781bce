/**
 * `npm run bench -- idle [--quick] [--cpu-prof DIR] [--advert-period D] [--no-build] [--json]`:
 * what an idle cluster costs. Starts a real 3-node cluster (the compiled `fednode` binary,
 * loopback, mDNS off, no backends, as the e2e tests do), waits until every node sees the other
 * two and lets it settle (15 s, 5 s with --quick), then samples each node's CPU and RSS over 60 s
 * (15 s with --quick).
 *
 * What the figures are: CPU is utime + stime of the whole process from /proc/<pid>/stat (every
 * thread: the JS thread, V8's GC and compiler threads, libuv's pool), as % of one core over the
 * window; RSS is VmRSS from /proc/<pid>/status sampled each second (median and max). Same-run
 * baseline: an idle `node -e "setInterval(()=>{},1e9)"` sampled the same way over the same window
 * (what the runtime itself costs on this machine: ~0 % and ~39 MB). The machine is shared, so the
 * 1-minute load average before and after is printed: CPU time per process grows with contention,
 * compare runs at similar load and take medians of several.
 *
 * --cpu-prof DIR: node 1 runs with --cpu-prof (its profile is written to DIR on stop; the
 * profiler itself adds ~2-4 % to node 1, so read n2/n3 for the figures). --advert-period D: the
 * nodes' adverts.periodMs (e.g. 2s, the old default) to measure what the advert keep-alive costs.
 *
 * An idle node's periodic work (issue 15): gossipsub heartbeat (1 s), consensus status tick (1 s;
 * a status is published every 5 ticks when nothing changed), advert collect (event-driven: on a
 * hardware sample or a load change, at most every 250 ms; it was a 250 ms poll) and
 * keep-alive (adverts.periodMs), hardware sampling (2 s), mesh keeper tick (1 s), backend health
 * (1 s; nothing without backends), RTT poll (2 s), libp2p's connection monitor ping (10 s per
 * connection, a new stream each), member sync (2 s; silent unless a join claim is pending).
 * Goal: < 1 % of a core and < 100 MB RSS per node.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeStatus } from '../node/runtime/node.js';
import { control, fednode, ROOT, spawnUntil, waitFor } from '../test/helpers/e2e.js';
import type { Running } from '../test/helpers/e2e.js';
import type { BenchOptions } from './main.js';

const FLAGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0'];
const GOAL_CPU_PCT = 1;
const GOAL_RSS_MB = 100;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

interface Sample {
  ticks: number;
  rssKiB: number;
}

async function sample(pid: number): Promise<Sample> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised command name: state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return { ticks, rssKiB: m === null ? NaN : Number(m[1]) };
}

interface Usage {
  name: string;
  cpuPct: number;
  rssMB: { median: number; max: number };
}

/** Sample every pid each second for `seconds`; CPU % of one core over the window, RSS median and max. */
async function measure(procs: ReadonlyArray<{ name: string; pid: number }>, seconds: number): Promise<Usage[]> {
  const first = await Promise.all(procs.map((p) => sample(p.pid)));
  const t0 = performance.now();
  const rss: number[][] = procs.map(() => []);
  let last = first;
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await Promise.all(procs.map((p) => sample(p.pid)));
    last.forEach((x, i) => rss[i]!.push(x.rssKiB / 1024));
  }
  const elapsedS = (performance.now() - t0) / 1000;
  return procs.map((p, i) => {
    const sorted = [...rss[i]!].sort((a, b) => a - b);
    return {
      name: p.name,
      cpuPct: +((((last[i]!.ticks - first[i]!.ticks) / CLK_TCK) / elapsedS) * 100).toFixed(2),
      rssMB: { median: +(sorted[Math.floor(sorted.length / 2)] ?? NaN).toFixed(1), max: +(sorted[sorted.length - 1] ?? NaN).toFixed(1) },
    };
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** `fednode start` on `dir`; node 1 gets --cpu-prof when asked. */
function startNode(dir: string, cpuProfDir: string | null): Promise<Running> {
  return spawnUntil(['start', '--json', '--data-dir', dir], 'ready', 90_000, cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`]);
}

export async function cluster(base: string, cpuProfDir: string | null, extraFlags: readonly string[] = []): Promise<{ dirs: string[]; procs: Running[] }> {
  const dirs = [1, 2, 3].map((i) => join(base, `n${i}`));
  const flags = [...FLAGS, ...extraFlags];
  const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', dirs[0]!, '--name', 'n1', ...flags]);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const procs = [await startNode(dirs[0]!, cpuProfDir)];
  for (let i = 1; i < dirs.length; i++) {
    const inv = await fednode(['invite', '--json', '--ttl', '10m', '--data-dir', dirs[0]!]);
    if (inv.code !== 0) throw new Error(`invite failed: ${inv.stderr}`);
    const { token } = JSON.parse(inv.stdout) as { token: string };
    const j = await fednode(['join', token, '--json', '--data-dir', dirs[i]!, '--name', `n${i + 1}`, ...flags]);
    if (j.code !== 0) throw new Error(`join failed: ${j.stderr}`);
    procs.push(await startNode(dirs[i]!, null));
    await waitFor(`admission of n${i + 1}`, async () => (await control<NodeStatus>(dirs[i]!, '/status')).consensus.admission.admittedAtHeight ?? undefined, 90_000, 500);
  }
  await waitFor('every node connected to both others', async () => {
    const ss = await Promise.all(dirs.map((d) => control<NodeStatus>(d, '/status')));
    return ss.every((s) => s.connectedPeers === 2) ? true : undefined;
  }, 90_000, 500);
  return { dirs, procs };
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const quick = opts.args.includes('--quick');
  const profAt = opts.args.indexOf('--cpu-prof');
  const cpuProfDir = profAt >= 0 ? (opts.args[profAt + 1] ?? null) : null;
  if (profAt >= 0 && cpuProfDir === null) throw new Error('--cpu-prof needs a directory');
  const periodAt = opts.args.indexOf('--advert-period');
  const advertPeriod = periodAt >= 0 ? (opts.args[periodAt + 1] ?? null) : null;
  if (periodAt >= 0 && advertPeriod === null) throw new Error('--advert-period needs a duration');
  const windowS = quick ? 15 : 60;
  const settleS = quick ? 5 : 15;
  if (!opts.args.includes('--no-build')) execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit', cwd: ROOT });
  const base = await mkdtemp(join(tmpdir(), 'fednode-bench-idle-'));
  const children: ChildProcess[] = [];
  try {
    const { procs } = await cluster(base, cpuProfDir, advertPeriod === null ? [] : ['--advert-period', advertPeriod]);
    children.push(...procs.map((p) => p.child));
    const baseline = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' });
    children.push(baseline);
    await new Promise((r) => setTimeout(r, settleS * 1000));
    const loadBefore = loadavg()[0] ?? NaN;
    const targets = [...procs.map((p, i) => ({ name: `n${i + 1}`, pid: p.child.pid ?? -1 })), { name: 'baseline', pid: baseline.pid ?? -1 }];
    const usage = await measure(targets, windowS);
    const nodes = usage.filter((u) => u.name !== 'baseline');
    const base0 = usage.find((u) => u.name === 'baseline')!;
    const result = {
      suite: 'idle',
      node: process.version,
      advertPeriod: advertPeriod ?? 'default',
      windowS,
      settleS,
      loadAverage1m: { before: +loadBefore.toFixed(2), after: +(loadavg()[0] ?? NaN).toFixed(2) },
      nodes,
      baseline: base0,
      ratios: Object.fromEntries(nodes.map((n) => [n.name, { cpu: base0.cpuPct > 0 ? +(n.cpuPct / base0.cpuPct).toFixed(1) : null, rss: +(n.rssMB.median / base0.rssMB.median).toFixed(2) }])),
      goals: { cpuPctBelow: GOAL_CPU_PCT, rssMBBelow: GOAL_RSS_MB, cpuMet: nodes.every((n) => n.cpuPct < GOAL_CPU_PCT), rssMet: nodes.every((n) => n.rssMB.max < GOAL_RSS_MB) },
    };
    if (!opts.json) {
      console.log(`idle benchmark — 3 fednode processes on loopback, ${windowS} s window after ${settleS} s settle, load ${result.loadAverage1m.before} -> ${result.loadAverage1m.after}`);
      for (const u of usage) console.log(`  ${u.name.padEnd(9)} CPU ${u.cpuPct.toFixed(2).padStart(6)} % of a core   RSS median ${u.rssMB.median} MB, max ${u.rssMB.max} MB`);
      console.log(`  ratios to the idle node baseline: ${Object.entries(result.ratios).map(([k, v]) => `${k} cpu ${v.cpu ?? 'n/a'}x rss ${v.rss}x`).join('; ')}`);
      console.log(`goals: cpu<${GOAL_CPU_PCT}%=${result.goals.cpuMet ? 'met' : 'MISSED'} rss<${GOAL_RSS_MB}MB=${result.goals.rssMet ? 'met' : 'MISSED'}`);
    }
    return result;
  } finally {
    for (const c of children) await stopChild(c);
    await rm(base, { recursive: true, force: true });
  }
}
