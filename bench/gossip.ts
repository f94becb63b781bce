import '../node/polyfill.js';
// `npm run bench -- gossip [--json] [--quick] [--spacing-ms N]`: real libp2p nodes on loopback.
// - propagation: adverts published by every node in turn; latency from publish to
//   delivery at each peer (and to the LAST peer), p50/p99, for N = 5 and N = 10.
//   Baseline measured in the same run: N = 2 (one hop, no relaying).
// - validation: adverts/s one node's validator accepts (distinct, signed, fresh);
//   baseline: decodeEnvelope + verifyDecoded alone (the crypto floor).
// - memory: N = 10 nodes as separate child processes, RSS of each after an idle
//   period with normal advert traffic (one advert per node every 2 s).
// - start to ready: createHost + start() in-process, and child spawn -> host started.
// Targets (issue 3): p99 < 50 ms at N = 10; idle node < 120 MB RSS; start to ready < 1 s.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { getHeapSpaceStatistics } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { createEnvelope, decodeEnvelope, verifyDecoded } from '../crypto/envelope.js';
import { identityFromSeed } from '../crypto/keys.js';
import type { Identity } from '../crypto/keys.js';
import { GossipTopics } from '../node/p2p/gossip.js';
import { createHost } from '../node/p2p/host.js';
import type { Host } from '../node/p2p/host.js';
import { InviteMemberSource } from '../node/p2p/members.js';
import { formatSwarmKey, generateSwarmKey } from '../node/p2p/psk.js';

interface BenchOptions {
  json: boolean;
  args: readonly string[];
}

const CLUSTER = 'benchcluster';

function ident(n: number): Identity {
  const seed = new Uint8Array(32);
  seed[0] = n & 0xff;
  seed[1] = n >> 8;
  seed[31] = 0xb7;
  return identityFromSeed(seed);
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const r2 = (x: number): number => Math.round(x * 100) / 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface PropagationResult {
  n: number;
  /** libp2p Prometheus metrics on (the default, as a node runs) or off (the same-run baseline for their cost). */
  metrics: boolean;
  messages: number;
  deliveries: number;
  expected: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  lastPeerP50Ms: number;
  lastPeerP99Ms: number;
  readyMsMedian: number;
  readyMsMax: number;
  meshMs: number;
  /** Process CPU time (user + system) per delivery while publishing: insensitive to other load on the machine, unlike latency. */
  cpuUsPerDelivery: number;
}

async function propagation(n: number, messagesPerNode: number, spacingMs: number, metrics = true): Promise<PropagationResult> {
  const swarmKey = generateSwarmKey();
  const ids = Array.from({ length: n }, (_, i) => ident(i + 1));
  const genesis = ids.map((x) => x.peerId);
  const hosts: Host[] = [];
  const readyMs: number[] = [];
  for (const identity of ids) {
    const t0 = performance.now();
    const members = new InviteMemberSource({ cluster: CLUSTER, genesis, now: Date.now });
    const h = await createHost({ identity, cluster: CLUSTER, swarmKey, members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null, ...(metrics ? {} : { metrics: null }) });
    await h.start();
    readyMs.push(performance.now() - t0);
    hosts.push(h);
  }
  const tMesh = performance.now();
  // connected graph: everyone dials node 0 and its predecessor (relaying is exercised for N > 2)
  for (let i = 1; i < n; i++) {
    await hosts[i]!.dial(hosts[i - 1]!.addresses()[0]!);
    if (i > 1 && i % 2 === 0) await hosts[i]!.dial(hosts[0]!.addresses()[0]!);
  }
  await waitFor(() => hosts.every((h) => h.meshPeers('adverts').length >= Math.min(4, h.peers().length)), 20_000, 'mesh');
  const meshMs = performance.now() - tMesh;

  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const lastAt = new Map<string, number>();
  const count = new Map<string, number>();
  for (const h of hosts) {
    h.onMessage('adverts', (d) => {
      const key = `${d.envelope.signerId}/${d.envelope.seq}`;
      const t0 = sentAt.get(key);
      if (t0 === undefined) return;
      const ms = performance.now() - t0;
      lat.push(ms);
      lastAt.set(key, Math.max(lastAt.get(key) ?? 0, ms));
      count.set(key, (count.get(key) ?? 0) + 1);
    });
  }
  const cpu0 = process.cpuUsage();
  let seq = 0;
  const warmup = 3; // first rounds warm JIT and streams; not measured
  for (let r = 0; r < messagesPerNode + warmup; r++) {
    seq++;
    for (const [i, h] of hosts.entries()) {
      const env = createEnvelope(ids[i]!, { kind: 'advert', cluster: CLUSTER, seq, time: Date.now(), body: { load: r, pad: new Uint8Array(600) } });
      if (r >= warmup) sentAt.set(`${ids[i]!.peerId}/${seq}`, performance.now());
      await h.publish('adverts', env);
      // cluster-wide publish spacing (default 100 ms = 10 adverts/s, 2x the real rate of
      // 1 per node per 2 s at N = 10); all N in-process nodes share this process's CPU.
      await sleep(spacingMs);
    }
  }
  const expected = sentAt.size * (n - 1);
  await waitFor(() => lat.length >= expected, 10_000, 'all deliveries').catch(() => undefined);
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(hosts.map((h) => h.stop()));
  const sorted = [...lat].sort((a, b) => a - b);
  const last = [...lastAt.values()].sort((a, b) => a - b);
  const rs = [...readyMs].sort((a, b) => a - b);
  return {
    n,
    metrics,
    messages: sentAt.size,
    deliveries: lat.length,
    expected,
    p50Ms: r2(pct(sorted, 50)),
    p99Ms: r2(pct(sorted, 99)),
    maxMs: r2(sorted[sorted.length - 1] ?? NaN),
    lastPeerP50Ms: r2(pct(last, 50)),
    lastPeerP99Ms: r2(pct(last, 99)),
    readyMsMedian: r2(pct(rs, 50)),
    readyMsMax: r2(rs[rs.length - 1]!),
    meshMs: Math.round(meshMs),
    cpuUsPerDelivery: Math.round((cpu.user + cpu.system) / Math.max(1, lat.length)),
  };
}

interface ValidationResult {
  messages: number;
  validatorPerSec: number;
  cryptoFloorPerSec: number;
  ratio: number;
}

function validation(messages: number): ValidationResult {
  const senders = 64;
  const ids = Array.from({ length: senders }, (_, i) => ident(1000 + i));
  const now = Date.now();
  const members = new InviteMemberSource({ cluster: CLUSTER, genesis: ids.map((x) => x.peerId), now: () => now });
  const envs: Uint8Array[] = [];
  for (let i = 0; i < messages; i++) {
    envs.push(createEnvelope(ids[i % senders]!, { kind: 'advert', cluster: CLUSTER, seq: Math.floor(i / senders) + 1, time: now, body: { load: i, models: ['llama3:8b', 'qwen2.5:14b'], gpus: [{ name: 'RTX 4090', memMiB: 24564 }] } }));
  }
  // baseline: the crypto floor (decode + signature, no cache)
  let t0 = performance.now();
  let ok = 0;
  for (const e of envs) {
    const d = decodeEnvelope(e, { kinds: ['advert'], cluster: CLUSTER });
    if (d.ok && verifyDecoded(d)) ok++;
  }
  const floor = messages / ((performance.now() - t0) / 1000);
  if (ok !== messages) throw new Error('bench: baseline verification failed');
  const g = new GossipTopics({ cluster: CLUSTER, members, now: () => now, limits: { adverts: { maxBytes: 65536, kinds: ['advert'], maxAgeMs: 30_000, maxFutureMs: 5_000, queueMax: 1_000_000 } } });
  t0 = performance.now();
  let accepted = 0;
  for (const e of envs) if (g.validate('adverts', e, 'bench') === 'accept') accepted++;
  const rate = messages / ((performance.now() - t0) / 1000);
  g.stop();
  if (accepted !== messages) throw new Error(`bench: validator accepted ${accepted}/${messages}`);
  return { messages, validatorPerSec: Math.round(rate), cryptoFloorPerSec: Math.round(floor), ratio: r2(rate / floor) };
}

interface MemoryResult {
  n: number;
  idleSeconds: number;
  rssMiB: number[];
  rssMiBMax: number;
  rssMiBMedian: number;
  spawnToReadyMs: number[];
  spawnToReadyMsMedian: number;
  baselineNodeRssMiB: number;
  connectedPeersMin: number;
  /** Per node (index as rssMiB): MiB in V8 heap spaces, external and array buffers (see memBreakdown). */
  breakdownMiB: (Record<string, number> | null)[];
  baselineBreakdownMiB: Record<string, number> | null;
  /** Young-generation cap of node/metrics/heap.ts applied (as `fednode start` does). */
  heapCap: boolean;
  /** 'compiled' (dist/, as `fednode start` runs) or 'tsx' (from source, with the loader's own memory). */
  childRuntime: 'compiled' | 'tsx';
}

/**
 * The memory children run the compiled bench (dist/bench/gossip.js, plain node) when it
 * exists, because a deployed node runs compiled code: under tsx every child would also
 * carry the loader and esbuild (about 10 MiB more RSS). Run `npm run build` first.
 */
function childEntry(): { file: string; execArgv: string[]; runtime: 'compiled' | 'tsx' } {
  const here = dirname(fileURLToPath(import.meta.url));
  if (import.meta.url.endsWith('.js')) return { file: join(here, 'gossip-child.js'), execArgv: [], runtime: 'compiled' };
  const compiled = join(here, '..', 'dist', 'bench', 'gossip-child.js');
  if (existsSync(compiled)) return { file: compiled, execArgv: [], runtime: 'compiled' };
  return { file: join(here, 'gossip-child.ts'), execArgv: process.execArgv, runtime: 'tsx' }; // keeps tsx's loader
}

/** N child processes (this file with --gossip-child), node 0 the others' bootstrap. */
async function memory(n: number, idleSeconds: number, heapCap: boolean): Promise<MemoryResult> {
  const { file: entry, execArgv, runtime } = childEntry();
  const pskHex = randomBytes(32).toString('hex');
  const ids = Array.from({ length: n }, (_, i) => ident(500 + i));
  const genesis = ids.map((x) => x.peerId).join(',');
  interface Kid {
    rss: number | null;
    mem: Record<string, number> | null;
    ready: number | null;
    peers: number;
    addr: string | null;
    stop: () => void;
    done: Promise<void>;
  }
  const kids: Kid[] = [];
  const startKid = (seed: number, bootstrap: string): Kid => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [...execArgv, entry, String(seed), pskHex, genesis, bootstrap, heapCap ? 'cap' : 'nocap'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const k: Kid = { rss: null, mem: null, ready: null, peers: 0, addr: null, stop: () => p.stdin.end(), done: new Promise((r) => p.once('exit', () => r())) };
    createInterface({ input: p.stdout }).on('line', (l) => {
      try {
        const m = JSON.parse(l) as { event: string; addr?: string; rss?: number; peers?: number; mem?: Record<string, number> };
        if (m.event === 'ready') {
          k.ready = performance.now() - t0;
          k.addr = m.addr ?? null;
        }
        if (m.event === 'rss') {
          k.rss = m.rss ?? null;
          k.peers = m.peers ?? 0;
          k.mem = m.mem ?? null;
        }
      } catch {
        // ignore stray output
      }
    });
    return k;
  };
  // baseline: a child with the same modules loaded that never starts a host
  const base = startKid(0, 'none');
  await waitFor(() => base.rss !== null, 60_000, 'baseline child');
  base.stop();
  await base.done;
  const baseRss = base.rss!;
  // started one after another (as a real cluster would be), each bootstrapping to node 0
  for (let i = 0; i < n; i++) {
    const k = startKid(500 + i, i === 0 ? '-' : kids[0]!.addr!);
    kids.push(k);
    await waitFor(() => k.addr !== null, 60_000, `child ${i} ready`);
  }
  // idle with advert traffic, then take each node's latest RSS report
  await sleep(idleSeconds * 1000);
  await waitFor(() => kids.every((k) => k.rss !== null), 10_000, 'child RSS reports');
  const rssNow = kids.map((k) => k.rss!);
  const peersNow = kids.map((k) => k.peers);
  const memNow = kids.map((k) => k.mem);
  for (const k of kids) k.stop();
  await Promise.all(kids.map((k) => k.done));
  const rss = rssNow.map((x) => r2(x / 2 ** 20));
  const sortedRss = [...rss].sort((a, b) => a - b);
  const ready = kids.map((k) => Math.round(k.ready ?? NaN));
  return {
    n,
    idleSeconds,
    rssMiB: rss,
    rssMiBMax: sortedRss[sortedRss.length - 1]!,
    rssMiBMedian: pct(sortedRss, 50),
    spawnToReadyMs: ready,
    spawnToReadyMsMedian: pct([...ready].sort((a, b) => a - b), 50),
    baselineNodeRssMiB: r2(baseRss / 2 ** 20),
    connectedPeersMin: Math.min(...peersNow),
    breakdownMiB: memNow,
    baselineBreakdownMiB: base.mem,
    childRuntime: runtime,
    heapCap,
  };
}

/** Where a child's RSS goes (MiB): V8 heap spaces, off-heap external memory, and the rest (code, stacks, native). */
function memBreakdown(): Record<string, number> {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, r2(s.space_size / 2 ** 20)]));
  return { rss: r2(m.rss / 2 ** 20), heapTotal: r2(m.heapTotal / 2 ** 20), heapUsed: r2(m.heapUsed / 2 ** 20), external: r2(m.external / 2 ** 20), arrayBuffers: r2(m.arrayBuffers / 2 ** 20), newSpace: spaces['new_space'] ?? NaN, oldSpace: spaces['old_space'] ?? NaN, codeSpace: spaces['code_space'] ?? NaN };
}

/** Child mode (entry: bench/gossip-child.ts, which applies the heap cap first): one node; publishes an advert every 2 s; reports RSS every second; exits when stdin closes. */
export async function child(argv: readonly string[]): Promise<void> {
  const [seedStr, pskHex, genesisCsv, bootstrap] = argv;
  const say = (o: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  const waitStdinEnd = new Promise<void>((r) => {
    process.stdin.on('end', () => r());
    process.stdin.resume();
  });
  if (bootstrap === 'none') {
    // baseline process: same modules loaded, no host
    say({ event: 'rss', rss: process.memoryUsage().rss, peers: 0, mem: memBreakdown() });
    await waitStdinEnd;
    process.exit(0);
  }
  const identity = ident(Number(seedStr));
  const members = new InviteMemberSource({ cluster: CLUSTER, genesis: genesisCsv!.split(','), now: Date.now });
  const host = await createHost({
    identity,
    cluster: CLUSTER,
    swarmKey: formatSwarmKey(new Uint8Array(Buffer.from(pskHex!, 'hex'))),
    members,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: null,
    bootstrap: bootstrap === '-' ? [] : [bootstrap!],
  });
  await host.start();
  say({ event: 'ready', addr: host.addresses()[0] });
  let seq = 0;
  const tick = setInterval(() => {
    seq++;
    void host.publish('adverts', createEnvelope(identity, { kind: 'advert', cluster: CLUSTER, seq, time: Date.now(), body: { load: seq, pad: new Uint8Array(600) } })).catch(() => undefined);
  }, 2000);
  const report = setInterval(() => say({ event: 'rss', rss: process.memoryUsage().rss, peers: host.peers().length, mem: memBreakdown() }), 1000);
  await waitStdinEnd;
  clearInterval(tick);
  clearInterval(report);
  await host.stop();
  process.exit(0);
}

function printMemory(mem: MemoryResult): void {
  console.log(`memory${mem.heapCap ? ' (young generation capped, as fednode start runs)' : ' (V8 default young generation: baseline)'}: ${mem.n} nodes as child processes (${mem.childRuntime}), ${mem.idleSeconds} s idle after the last started, 1 advert/node/2 s`);
  console.log(`  RSS per node MiB: ${mem.rssMiB.join(' ')} (median ${mem.rssMiBMedian}, max ${mem.rssMiBMax}); same process without a host: ${mem.baselineNodeRssMiB} MiB`);
  const show = (b: Record<string, number> | null): string => (b === null ? '-' : `heap ${b['heapUsed']}/${b['heapTotal']} (new ${b['newSpace']}, old ${b['oldSpace']}, code ${b['codeSpace']}) external ${b['external']} arrayBuffers ${b['arrayBuffers']}`);
  console.log(`  node 0 (bootstrap hub): ${show(mem.breakdownMiB[0] ?? null)}`);
  console.log(`  node 1:                 ${show(mem.breakdownMiB[1] ?? null)}`);
  console.log(`  no host (baseline):     ${show(mem.baselineBreakdownMiB)}`);
  console.log(`  child spawn -> host ready ms: ${mem.spawnToReadyMs.join(' ')} (median ${mem.spawnToReadyMsMedian}; includes Node start + module load)`);
  console.log(`  min connected peers per node: ${mem.connectedPeersMin}`);
}

export async function run(opts: BenchOptions): Promise<unknown> {
  const quick = opts.args.includes('--quick');
  // Latency on a shared machine is dominated by other load: record it beside the figures.
  const loadBefore = loadavg()[0]!;
  const perNode = quick ? 8 : 20;
  const spacingArg = opts.args.indexOf('--spacing-ms');
  const spacingMs = spacingArg >= 0 ? Number(opts.args[spacingArg + 1]) : 100;
  const idleS = quick ? 6 : 15;
  if (opts.args.includes('--memory-only')) {
    const uncapped = await memory(10, idleS, false);
    const mem = await memory(10, idleS, true);
    if (!opts.json) for (const m of [uncapped, mem]) printMemory(m);
    return { suite: 'gossip', memory: mem, memoryUncapped: uncapped };
  }
  const base = await propagation(2, perNode * 4, spacingMs);
  const n5 = await propagation(5, perNode * 2, spacingMs);
  const n10 = await propagation(10, perNode, spacingMs);
  // same-run baseline for the cost of libp2p's metrics (stream byte counting etc.)
  const n10NoMetrics = await propagation(10, perNode, spacingMs, false);
  const val = validation(quick ? 2000 : 10_000);
  // baseline in the same run: V8's default young-generation sizing (what the hub did before the cap)
  const memUncapped = await memory(10, idleS, false);
  const mem = await memory(10, idleS, true);
  const result = {
    suite: 'gossip',
    machine: { cores: availableParallelism(), loadAvg1mBefore: r2(loadBefore), loadAvg1mAfter: r2(loadavg()[0]!) },
    propagation: {
      spacingMs,
      baselineN2: base,
      n5,
      n10,
      n10NoMetrics,
      p99RatioN10vsN2: r2(n10.p99Ms / base.p99Ms),
      p99RatioN10MetricsOnVsOff: r2(n10.p99Ms / n10NoMetrics.p99Ms),
      cpuRatioN10MetricsOnVsOff: r2(n10.cpuUsPerDelivery / n10NoMetrics.cpuUsPerDelivery),
    },
    validation: val,
    memory: mem,
    memoryUncapped: memUncapped,
    rssMaxRatioCappedVsUncapped: r2(mem.rssMiBMax / memUncapped.rssMiBMax),
    targets: {
      p99PropagationN10Under50Ms: n10.p99Ms < 50,
      idleRssUnder120MiB: mem.rssMiBMax < 120,
      startToReadyUnder1s: n10.readyMsMax < 1000,
    },
  };
  if (!opts.json) {
    console.log(`machine: ${result.machine.cores} cores, 1-min load average ${result.machine.loadAvg1mBefore} before / ${result.machine.loadAvg1mAfter} after`);
    console.log(`gossip propagation (loopback, in-process nodes; ms from publish to delivery; one advert every ${spacingMs} ms cluster-wide)`);
    console.log('  N   msgs  delivered/expected  p50    p99    max    last-peer p50/p99  ready med/max  mesh     cpu us/delivery');
    for (const p of [base, n5, n10, n10NoMetrics]) {
      console.log(`  ${`${p.n}${p.metrics ? '' : '*'}`.padEnd(3)} ${String(p.messages).padEnd(5)} ${`${p.deliveries}/${p.expected}`.padEnd(19)} ${String(p.p50Ms).padEnd(6)} ${String(p.p99Ms).padEnd(6)} ${String(p.maxMs).padEnd(6)} ${`${p.lastPeerP50Ms}/${p.lastPeerP99Ms}`.padEnd(18)} ${`${p.readyMsMedian}/${p.readyMsMax}`.padEnd(14)} ${`${p.meshMs} ms`.padEnd(8)} ${p.cpuUsPerDelivery}`);
    }
    console.log(`  p99 ratio N=10 vs N=2 baseline: ${result.propagation.p99RatioN10vsN2}x; * = libp2p metrics off (same-run baseline): p99 with/without metrics ${result.propagation.p99RatioN10MetricsOnVsOff}x, CPU per delivery ${result.propagation.cpuRatioN10MetricsOnVsOff}x`);
    console.log(`validation: ${val.validatorPerSec} adverts/s through the full validator; crypto floor (decode+verify) ${val.cryptoFloorPerSec}/s; ratio ${val.ratio}`);
    printMemory(memUncapped);
    printMemory(mem);
    console.log(`  max RSS capped / uncapped: ${result.rssMaxRatioCappedVsUncapped}`);
    console.log(`targets: ${JSON.stringify(result.targets)}`);
  }
  return result;
}

