// `npm run bench -- consensus [--json] [--n=4,7] [--heights=N] [--samples=N] [--patterns=N] [--in-process-only]`
//
// 1. Driver over real libp2p on loopback (issue 5 targets), for each cluster size of --n (comma
//    list, default 4,7; n = 4 gets --samples latency samples, other sizes half as many), every node
//    in this process with its own TCP host, LevelDB store and durable signer file (fsync on):
//    - commit latency p50/p99, one pattern submitted at a time (rotating submitter), two ways:
//      from submit() to the decision at ALL n nodes, and the measure, from the proposer's
//      proposal broadcast (its host.publish, or host.sendDirect where the host has one) to the
//      decision at ALL n nodes (target: p50 < 20 ms at n = 4);
//    - throughput with batching: many single-pattern submits in flight from all nodes, patterns
//      decided at all nodes per second (target: >= 500/s at n = 4).
//    The same measurements again with one child process per node (bench/consensus-child.ts), as
//    deployed: no cross-node contention on one event loop (but on this machine all n processes
//    share its cores and ONE disk, where a deployment has a machine and a disk per node). Each
//    child reports its own proposal broadcasts and decisions with its own epoch timestamps over
//    IPC. Disk baselines of the same run: the durable signer-file write alone, and with all n
//    children writing at the same instants (what a height's validators do on one shared disk).
//    No polling: every "decided at all" / "delivered at all" time is taken (performance.now, or
//    the child's epoch ms) inside the callback of the last node to report, and the waiting
//    promise is resolved from there, so no timer granularity is added to any sample.
// 2. Baseline in the same run: the pure core (no network): n in-process cores with real Ed25519
//    and BLAKE3, every broadcast delivered synchronously; CPU per decided height and pattern
//    throughput with batching; plus the irreducible crypto of one height. The driver figures are
//    reported as ratios to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ed25519 } from '../crypto/ed25519.js';
import { domain } from '../crypto/blake3.js';
import { createEnvelope, decodeEnvelope } from '../crypto/envelope.js';
import { decodeMessage } from '../consensus/codec.js';
import { identityFromSeed, type Identity } from '../crypto/keys.js';
import { createConsensusState, DEFAULT_LIMITS, LAN_TIMEOUTS, makeValidatorSet, step, voteDigest } from '../consensus/core.js';
import { contentHashOf, encodeBatch, type PatternOp } from '../consensus/patterns.js';
import { applyBatch, genesisRegistry, validityFor, validatorSetAt, type Registry } from '../consensus/registry.js';
import type { ConsensusState, Event } from '../consensus/types.js';
import { EMPTY_SIGNER_RECORD } from '../consensus/core.js';
import { KIND_PROPOSAL, openConsensus, type DriverConsensus } from '../node/consensus/driver.js';
import { SignerFile } from '../node/consensus/signer-file.js';
import { nullLogger } from '../node/log.js';
import type { TopicName } from '../node/p2p/gossip.js';
import { createHost, type Host } from '../node/p2p/host.js';
import { generateSwarmKey } from '../node/p2p/psk.js';
import { openStore, type Store } from '../node/store/index.js';

interface Row {
  n: number;
  heights: number;
  patternsPerBatch: number;
  msPerHeight: number;
  baselineCryptoMsPerHeight: number;
  ratioToCrypto: number;
  patternsPerSecond: number;
}

function ids(n: number): Identity[] {
  return Array.from({ length: n }, (_, i) => {
    const seed = new Uint8Array(32);
    seed[0] = i + 1;
    seed[1] = 0xbe;
    return identityFromSeed(seed);
  });
}

function runCluster(n: number, heights: number, patternsPerBatch: number): { ms: number; decided: number } {
  const idl = ids(n);
  const regs: Map<number, Registry>[] = idl.map(() => new Map([[0, genesisRegistry({ members: idl.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i}` })) })]]));
  const states: ConsensusState[] = idl.map((id, i) =>
    createConsensusState({
      cluster: 'bench',
      signer: { publicKey: id.publicKey, sign: (d) => ed25519.sign(id.secretKey, d) },
      verify: (pk, d, s) => ed25519.verify(pk, d, s),
      validateValue: validityFor((h) => regs[i]!.get(h - 1) ?? null),
      timeouts: LAN_TIMEOUTS,
      ...DEFAULT_LIMITS,
    }),
  );
  let decided = 0;
  const t0 = performance.now();
  for (let h = 1; h <= heights; h++) {
    const queue: { to: number; event: Event }[] = [];
    for (let i = 0; i < n; i++) queue.push({ to: i, event: { type: 'start-height', height: h, validators: validatorSetAt(regs[i]!.get(h - 1)!, h) } });
    while (queue.length > 0) {
      const { to, event } = queue.shift()!;
      const res = step(states[to]!, event);
      states[to] = res.state;
      for (const e of res.effects) {
        if (e.type === 'request-value') {
          const ops: PatternOp[] = Array.from({ length: patternsPerBatch }, (_, k) => {
            const content = `pattern ${h}/${k}: summarise {{input}} in one line`;
            return { kind: 'pattern', name: `p-${k}`, content, contentHash: contentHashOf(content), tags: ['bench'], quality: null };
          });
          queue.push({ to, event: { type: 'value-to-propose', height: e.height, round: e.round, value: encodeBatch(ops) } });
        } else if (e.type === 'broadcast') {
          for (let j = 0; j < n; j++) if (j !== to) queue.push({ to: j, event: e.message.type === 'vote' ? { type: 'vote', vote: e.message.vote } : { type: 'proposal', proposal: e.message.proposal } });
        } else if (e.type === 'decide') {
          regs[to]!.set(h, applyBatch(regs[to]!.get(h - 1)!, h, e.value));
          regs[to]!.delete(h - 2); // keep two registries per node
          decided++;
        }
      }
    }
  }
  return { ms: performance.now() - t0, decided };
}

function cryptoBaseline(n: number, heights: number): number {
  const idl = ids(n);
  makeValidatorSet(idl.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
  const t0 = performance.now();
  for (let h = 1; h <= heights; h++) {
    for (const type of ['prevote', 'precommit'] as const) {
      const sigs = idl.map((id) => {
        const d = voteDigest('bench', { type, height: h, round: 0, valueId: null });
        return { pk: id.publicKey, d, s: ed25519.sign(id.secretKey, d) };
      });
      for (let j = 0; j < n; j++) for (const x of sigs) if (x.pk !== idl[j]!.publicKey) ed25519.verify(x.pk, x.d, x.s);
    }
  }
  return performance.now() - t0;
}


// ---------------------------------------------------------------------------------------------
// Driver over libp2p

interface LiveNode {
  consensus: DriverConsensus;
  host: Host;
  store: Store;
}

interface DriverRow {
  n: number;
  /** Same-run network baseline: one signed gossip message from node 1 to ALL other nodes (p50). */
  gossipHopP50Ms: number;
  latencySamples: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** The measure: the proposer's proposal broadcast -> decided at ALL nodes (three message delays + durable writes). */
  proposeToDecideP50Ms: number;
  proposeToDecideP99Ms: number;
  throughputPatterns: number;
  throughputHeights: number;
  patternsPerSecond: number;
  /** Driver p50 latency / pure-core CPU ms per height (batch 1) at the same n. */
  latencyRatioToCore: number;
  /** Driver patterns/s / pure-core patterns/s (batch 256) at the same n. */
  throughputRatioToCore: number;
}

/**
 * Disk baseline of the same run: the driver's durable signer-file write (tmp, fsync, rename,
 * fsync dir). A decided height holds three such writes per node on its critical path (proposal
 * or prevote, precommit, then the synced log entry), so latency cannot beat ~3x this.
 */
async function durableWriteMs(root: string, count: number): Promise<{ p50: number; p99: number }> {
  const f = new SignerFile(join(root, 'disk-baseline'));
  const lat: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await f.write({ record: { ...EMPTY_SIGNER_RECORD, height: i + 1 }, own: [] });
    lat.push(performance.now() - t0);
  }
  await f.close();
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** When each (height:round) proposal was first broadcast (performance.now), by any node of this process. */
const proposedAt = new Map<string, number>();

/** sendDirect's signature on the hosts that have it (the direct-stream path for consensus messages). */
type SendDirect = (topic: TopicName, envelopeBytes: Uint8Array, to: readonly string[]) => unknown;

/**
 * Time this host's broadcasts of consensus proposals (bench only; also used by consensus-child.ts):
 * wraps host.publish and, where the host has one, host.sendDirect (the direct-stream path for
 * consensus messages). The clock is read on entry, the original send runs first with its arguments
 * and result untouched, and only then are the bytes decoded, so the decoding is off the critical
 * path; `seen` gets every proposal sent (a relayed one again: callers keep the earliest).
 * Call before consensus.start(host), which is when the driver starts sending.
 */
export function watchProposals(host: Host, clock: () => number, seen: (height: number, round: number, at: number) => void): void {
  const observe = (bytes: Uint8Array, at: number): void => {
    try {
      const d = decodeEnvelope(bytes, { kinds: [KIND_PROPOSAL], cluster: 'bench', maxBytes: 256 * 1024 });
      const m = d.ok && d.envelope.body instanceof Uint8Array ? decodeMessage(d.envelope.body) : null;
      if (m?.type === 'proposal') seen(m.proposal.proposal.height, m.proposal.proposal.round, at);
    } catch {
      // not a proposal we can read: nothing to time (a bench with no proposal seen fails loudly later)
    }
  };
  // Any method sending (topic, envelopeBytes, ...): same arguments in, same result out.
  const wrap =
    <A extends [TopicName, Uint8Array, ...unknown[]], R>(send: (...args: A) => R) =>
    (...args: A): R => {
      const at = clock();
      const r = send(...args);
      observe(args[1], at);
      return r;
    };
  host.publish = wrap(host.publish.bind(host));
  // sendDirect is looked up through this narrow structural view, not through Host, so the bench
  // type-checks whether or not the Host interface declares it (it is being added alongside publish).
  const direct = host as unknown as { sendDirect?: unknown };
  if (typeof direct.sendDirect === 'function') direct.sendDirect = wrap((direct.sendDirect as SendDirect).bind(host));
}

async function startLive(n: number, root: string): Promise<LiveNode[]> {
  const idl = ids(n);
  const genesis = { members: idl.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i}` })) };
  const swarmKey = generateSwarmKey();
  const nodes: LiveNode[] = [];
  for (let i = 0; i < n; i++) {
    const dir = join(root, `n${n}-${i}`);
    const store = await openStore(join(dir, 'store'));
    const consensus = await openConsensus({ identity: idl[i]!, cluster: 'bench', store, stateDir: join(dir, 'state'), genesis, logger: nullLogger, now: Date.now, timeouts: LAN_TIMEOUTS, auditLogPath: null });
    const host = await createHost({ identity: idl[i]!, cluster: 'bench', swarmKey, members: consensus.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await host.start();
    watchProposals(host, () => performance.now(), (height, round, at) => {
      const key = `${height}:${round}`;
      if (!proposedAt.has(key)) proposedAt.set(key, at);
    });
    await consensus.start(host);
    nodes.push({ consensus, host, store });
  }
  for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) await nodes[i]!.host.dial(nodes[j]!.host.addresses()[0]!).catch(() => undefined);
  const deadline = Date.now() + 20_000;
  while (!nodes.every((x) => x.host.meshPeers('consensus').length >= Math.min(3, n - 1))) {
    if (Date.now() > deadline) throw new Error('bench: gossipsub mesh did not form');
    await sleep(20);
  }
  return nodes;
}

async function stopLive(nodes: readonly LiveNode[]): Promise<void> {
  for (const x of nodes) {
    await x.consensus.stop();
    await x.host.stop();
    await x.store.close();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

let benchSeq = 0;
function benchPattern(): PatternOp {
  const k = benchSeq++;
  const content = `pattern ${k}: summarise {{input}} in one line`;
  // 256 names, replaced in turn: the registry stays bounded (MAX_PATTERNS) however long the run.
  return { kind: 'pattern', name: `bench-${k % 256}`, content, contentHash: contentHashOf(content), tags: ['bench'], quality: null };
}

/**
 * "Decided at all nodes", event-driven: `times[node]` holds each height's first report from that
 * node, and a waiter is resolved from inside the report that completes a height, with the latest
 * of the n times (each taken by the caller in its own callback, not when the waiter resumes).
 */
class AtAll {
  private readonly times: Map<number, number>[];
  private readonly waiters = new Map<number, ((at: number) => void)[]>();
  constructor(nodes: number) {
    this.times = Array.from({ length: nodes }, () => new Map<number, number>());
  }
  /** Node `i` reached `height` at `at`. */
  report(i: number, height: number, at: number): void {
    const t = this.times[i]!;
    if (t.has(height)) return;
    t.set(height, at);
    const ws = this.waiters.get(height);
    if (ws === undefined) return;
    const all = this.at(height);
    if (all === undefined) return;
    this.waiters.delete(height);
    for (const w of ws) w(all);
  }
  /** Resolves with the time the last node reached `height` (at once if they all have). */
  until(height: number): Promise<number> {
    const all = this.at(height);
    if (all !== undefined) return Promise.resolve(all);
    return new Promise((resolve) => {
      const ws = this.waiters.get(height);
      if (ws === undefined) this.waiters.set(height, [resolve]);
      else ws.push(resolve);
    });
  }
  private at(height: number): number | undefined {
    let last = -Infinity;
    for (const t of this.times) {
      const x = t.get(height);
      if (x === undefined) return undefined;
      if (x > last) last = x;
    }
    return last;
  }
}

/** Resolves when every node has decided `height`; returns the time (performance.now) the last one did. */
function decidedAtAll(nodes: readonly LiveNode[]): { until(height: number): Promise<number>; close(): void } {
  const all = new AtAll(nodes.length);
  const unsub = nodes.map((x, i) => x.consensus.onDecided((e) => all.report(i, e.height, performance.now())));
  return { until: (height) => all.until(height), close: () => unsub.forEach((u) => u()) };
}

/** p50 of publish -> delivered at every other node, for a vote-sized signed envelope (adverts topic). */
async function gossipHopMs(nodes: readonly LiveNode[], count: number): Promise<number> {
  const id = ids(nodes.length)[0]!;
  const others = nodes.length - 1;
  // Delivery of message k at node i (i >= 1), timed in the handler; the publisher's own copy is not counted.
  const all = new AtAll(others);
  const unsub = nodes.slice(1).map((x, i) => x.host.onMessage('adverts', (d) => all.report(i, d.envelope.seq, performance.now())));
  const lat: number[] = [];
  try {
    for (let k = 1; k <= count; k++) {
      const t0 = performance.now();
      await nodes[0]!.host.publish('adverts', createEnvelope(id, { kind: 'advert', cluster: 'bench', seq: k, time: Date.now(), body: { load: k, pad: new Uint8Array(200) } }));
      lat.push((await all.until(k)) - t0);
    }
  } finally {
    unsub.forEach((u) => u());
  }
  lat.sort((a, b) => a - b);
  return percentile(lat, 0.5);
}

async function runDriver(n: number, samples: number, patterns: number, root: string): Promise<Omit<DriverRow, 'latencyRatioToCore' | 'throughputRatioToCore'>> {
  proposedAt.clear(); // heights restart at 1 for each cluster size
  const nodes = await startLive(n, root);
  const watch = decidedAtAll(nodes);
  try {
    const gossipHopP50Ms = await gossipHopMs(nodes, 50);
    // Warm-up: a few heights (connections, JIT, first fsyncs).
    for (let i = 0; i < 5; i++) await nodes[i % n]!.consensus.submit([benchPattern()]);
    const lat: number[] = [];
    const fromProposal: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      const r = await nodes[i % n]!.consensus.submit([benchPattern()]);
      const all = await watch.until(r.height);
      lat.push(all - t0);
      const p = proposedAt.get(`${r.height}:${r.round}`);
      if (p !== undefined) fromProposal.push(all - p);
    }
    lat.sort((a, b) => a - b);
    fromProposal.sort((a, b) => a - b);
    if (fromProposal.length === 0) throw new Error('bench: no proposal broadcast was seen (publish wrapper not reached)');
    const startHeight = nodes[0]!.consensus.status().decidedHeight;
    const t0 = performance.now();
    const receipts = await Promise.all(Array.from({ length: patterns }, (_, i) => nodes[i % n]!.consensus.submit([benchPattern()], { timeoutMs: 120_000 })));
    const top = Math.max(...receipts.map((r) => r.height));
    const t1 = await watch.until(top);
    return {
      n,
      gossipHopP50Ms,
      latencySamples: samples,
      latencyP50Ms: percentile(lat, 0.5),
      latencyP99Ms: percentile(lat, 0.99),
      latencyMaxMs: lat[lat.length - 1]!,
      proposeToDecideP50Ms: percentile(fromProposal, 0.5),
      proposeToDecideP99Ms: percentile(fromProposal, 0.99),
      throughputPatterns: patterns,
      throughputHeights: top - startHeight,
      patternsPerSecond: patterns / ((t1 - t0) / 1000),
    };
  } finally {
    watch.close();
    await stopLive(nodes);
  }
}

// ---------------------------------------------------------------------------------------------
// Driver over libp2p, one process per node (as deployed)

interface ProcRow {
  n: number;
  latencySamples: number;
  /** submit() (parent's epoch ms, before the IPC request) -> decided at ALL nodes (each child's epoch ms). */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** The measure, as in the in-process rows: the earliest proposal broadcast of the height -> decided at ALL nodes (children's epoch ms). */
  proposeToDecideSamples: number;
  proposeToDecideP50Ms: number;
  proposeToDecideP99Ms: number;
  throughputPatterns: number;
  patternsPerSecond: number;
  /**
   * Same-run disk baseline of this mode: the durable signer-file write while all n children
   * write at the same instants (as a height's validators do), p50/p99 in ms. The deployed case
   * (one node per machine and disk) has the uncontended figure instead.
   */
  contendedWriteP50Ms: number;
  contendedWriteP99Ms: number;
}

type ChildMsg =
  | { t: 'ready'; addr: string }
  | { t: 'dialed' }
  | { t: 'mesh'; peers: number }
  | { t: 'decided'; height: number; atMs: number }
  | { t: 'proposed'; height: number; round: number; atMs: number }
  | { t: 'submitted'; k: number; heights: number[] }
  | { t: 'disk'; lat: number[] }
  | { t: 'stopped' };

const epochMs = (): number => performance.timeOrigin + performance.now();

async function runProcesses(n: number, samples: number, patterns: number, root: string): Promise<ProcRow> {
  const entry = join(dirname(fileURLToPath(import.meta.url)), import.meta.url.endsWith('.js') ? 'consensus-child.js' : 'consensus-child.ts');
  const psk = new TextDecoder().decode(generateSwarmKey());
  const decidedAt = new AtAll(n);
  /** Earliest proposal broadcast (a child's epoch ms) per height, whichever child and round. */
  const proposedAtMs = new Map<number, number>();
  const waiting = new Map<string, (m: ChildMsg) => void>();
  const kids: ChildProcess[] = [];
  const ask = (i: number, msg: unknown, reply: string): Promise<ChildMsg> =>
    new Promise((resolve) => {
      waiting.set(`${i}:${reply}`, resolve);
      kids[i]!.send(msg as object);
    });
  for (let i = 0; i < n; i++) {
    const p = spawn(process.execPath, [...process.execArgv, entry], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    p.on('message', (m: ChildMsg) => {
      // Times are the child's own (atMs, taken in its callback), never this process's receive time.
      if (m.t === 'decided') decidedAt.report(i, m.height, m.atMs);
      else if (m.t === 'proposed') {
        const p = proposedAtMs.get(m.height);
        if (p === undefined || m.atMs < p) proposedAtMs.set(m.height, m.atMs);
      }
      const key = m.t === 'submitted' ? `${i}:submitted:${m.k}` : `${i}:${m.t}`;
      const w = waiting.get(key);
      if (w !== undefined) {
        waiting.delete(key);
        w(m);
      }
    });
    kids.push(p);
  }
  const allAt = (height: number): Promise<number> => decidedAt.until(height);
  try {
    const addrs: string[] = [];
    for (let i = 0; i < n; i++) addrs.push(((await ask(i, { t: 'init', idx: i, n, psk, dir: join(root, `p${n}-${i}`) }, 'ready')) as { addr: string }).addr);
    for (let i = 1; i < n; i++) await ask(i, { t: 'dial', addrs: addrs.slice(0, i) }, 'dialed');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const peers = await Promise.all(kids.map(async (_, i) => ((await ask(i, { t: 'mesh' }, 'mesh')) as { peers: number }).peers));
      if (peers.every((p) => p >= Math.min(3, n - 1))) break;
      if (Date.now() > deadline) throw new Error('bench: gossipsub mesh did not form (processes)');
      await sleep(50);
    }
    let k = 0;
    const submit = async (i: number, count: number): Promise<number[]> => ((await ask(i, { t: 'submit', k: ++k, count }, `submitted:${k}`)) as { heights: number[] }).heights;
    for (let i = 0; i < 5; i++) await allAt((await submit(i % n, 1))[0]!); // warm-up
    const lat: number[] = [];
    const fromProposal: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = epochMs();
      const [h] = await submit(i % n, 1);
      const all = await allAt(h!);
      lat.push(all - t0);
      // Every child's 'proposed' for h went down its (ordered) IPC channel before its own 'decided'
      // for h, and allAt waited for all n of those: the proposal time, if any, is already here.
      const p = proposedAtMs.get(h!);
      if (p !== undefined) fromProposal.push(all - p);
    }
    lat.sort((a, b) => a - b);
    fromProposal.sort((a, b) => a - b);
    if (fromProposal.length === 0) throw new Error('bench: no proposal broadcast was reported by a child (publish wrapper not reached)');
    const t0 = epochMs();
    const heights = (await Promise.all(kids.map((_, i) => submit(i, Math.ceil(patterns / n))))).flat();
    const t1 = await allAt(Math.max(...heights));
    // Disk under the same contention: every child writes its signer file at the same instants.
    const startAtMs = epochMs() + 200;
    const disk = (await Promise.all(kids.map(async (_, i) => ((await ask(i, { t: 'disk', count: 100, startAtMs, everyMs: 10 }, 'disk')) as { lat: number[] }).lat))).flat().sort((a, b) => a - b);
    return {
      n,
      latencySamples: samples,
      latencyP50Ms: percentile(lat, 0.5),
      latencyP99Ms: percentile(lat, 0.99),
      proposeToDecideSamples: fromProposal.length,
      proposeToDecideP50Ms: percentile(fromProposal, 0.5),
      proposeToDecideP99Ms: percentile(fromProposal, 0.99),
      throughputPatterns: heights.length,
      patternsPerSecond: heights.length / ((t1 - t0) / 1000),
      contendedWriteP50Ms: percentile(disk, 0.5),
      contendedWriteP99Ms: percentile(disk, 0.99),
    };
  } finally {
    await Promise.all(kids.map((p, i) => (p.connected ? Promise.race([ask(i, { t: 'stop' }, 'stopped'), sleep(10_000)]) : Promise.resolve())));
    for (const p of kids) if (p.exitCode === null) p.kill();
  }
}

export async function run(opts: { json: boolean; args: readonly string[] }): Promise<unknown> {
  // The digest domains switch to their fast reusable hasher once ready (before, a slower exact fallback runs).
  await Promise.all(['fednode/v1/vote', 'fednode/v1/proposal'].map((c) => domain(c).ready));
  const heights = Number(opts.args.find((a) => a.startsWith('--heights='))?.slice('--heights='.length) ?? 100);
  const nArg = opts.args.find((a) => a.startsWith('--n='))?.slice('--n='.length) ?? '4,7';
  const sizes = nArg.split(',').map((x) => Number(x.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 64)) throw new Error(`bench: --n takes a comma list of cluster sizes from 2 to 64 (got '${nArg}')`);
  const rows: Row[] = [];
  for (const n of sizes) {
    for (const batch of [1, 256]) {
      runCluster(n, 5, batch); // warm-up
      const r = runCluster(n, heights, batch);
      if (r.decided !== n * heights) throw new Error(`bench cluster did not decide every height (${r.decided}/${n * heights})`);
      const base = cryptoBaseline(n, heights);
      rows.push({
        n,
        heights,
        patternsPerBatch: batch,
        msPerHeight: r.ms / heights,
        baselineCryptoMsPerHeight: base / heights,
        ratioToCrypto: r.ms / base,
        patternsPerSecond: (heights * batch) / (r.ms / 1000),
      });
    }
  }
  const arg = (name: string, dflt: number): number => Number(opts.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt);
  const samples = arg('samples', 100);
  const patterns = arg('patterns', 4000);
  const root = await mkdtemp(join(tmpdir(), 'fednode-bench-consensus-'));
  const driverRows: DriverRow[] = [];
  const procRows: ProcRow[] = [];
  let disk = { p50: 0, p99: 0 };
  try {
    disk = await durableWriteMs(root, 100);
    for (const n of sizes) {
      const d = await runDriver(n, n === 4 ? samples : Math.ceil(samples / 2), patterns, root);
      const core1 = rows.find((r) => r.n === n && r.patternsPerBatch === 1)!;
      const core256 = rows.find((r) => r.n === n && r.patternsPerBatch === 256)!;
      driverRows.push({ ...d, latencyRatioToCore: d.latencyP50Ms / core1.msPerHeight, throughputRatioToCore: d.patternsPerSecond / core256.patternsPerSecond });
    }
    if (!opts.args.includes('--in-process-only')) {
      for (const n of sizes) procRows.push(await runProcesses(n, n === 4 ? samples : Math.ceil(samples / 2), patterns, root));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  if (!opts.json) {
    console.log('consensus driver over libp2p on loopback (all nodes in this process; fsync on)');
    console.log('n  samples  p50 ms  p99 ms  max ms  p50/core-height  gossip-hop p50  patterns  heights  patterns/s  ratio-to-core');
    for (const r of driverRows) {
      console.log(
        `${String(r.n).padEnd(3)}${String(r.latencySamples).padEnd(9)}${r.latencyP50Ms.toFixed(1).padEnd(8)}${r.latencyP99Ms.toFixed(1).padEnd(8)}${r.latencyMaxMs.toFixed(1).padEnd(8)}${r.latencyRatioToCore.toFixed(1).padEnd(17)}${r.gossipHopP50Ms.toFixed(1).padEnd(16)}${String(r.throughputPatterns).padEnd(10)}${String(r.throughputHeights).padEnd(9)}${r.patternsPerSecond.toFixed(0).padEnd(12)}${r.throughputRatioToCore.toFixed(3)}`,
      );
    }
    console.log('propose -> decided at all nodes (the issue\'s measure: three message delays + durable writes), against the same-run gossip hop');
    console.log('n  p50 ms  p99 ms  p50/gossip-hop');
    for (const r of driverRows) console.log(`${String(r.n).padEnd(3)}${r.proposeToDecideP50Ms.toFixed(1).padEnd(8)}${r.proposeToDecideP99Ms.toFixed(1).padEnd(8)}${(r.proposeToDecideP50Ms / r.gossipHopP50Ms).toFixed(2)}`);
    if (procRows.length > 0) {
      console.log('');
      console.log('the same, one process per node (as deployed; parent drives them over IPC, times in epoch ms)');
      console.log('n  samples  p50 ms  p99 ms  patterns  patterns/s');
      for (const r of procRows) {
        console.log(`${String(r.n).padEnd(3)}${String(r.latencySamples).padEnd(9)}${r.latencyP50Ms.toFixed(1).padEnd(8)}${r.latencyP99Ms.toFixed(1).padEnd(8)}${String(r.throughputPatterns).padEnd(10)}${r.patternsPerSecond.toFixed(0)}`);
      }
      console.log('propose -> decided at all nodes, one process per node (earliest proposal broadcast of the height; each child\'s own epoch ms)');
      console.log('n  samples  p50 ms  p99 ms  in-process p50  in-process p99');
      for (const r of procRows) {
        const d = driverRows.find((x) => x.n === r.n);
        console.log(`${String(r.n).padEnd(3)}${String(r.proposeToDecideSamples).padEnd(9)}${r.proposeToDecideP50Ms.toFixed(1).padEnd(8)}${r.proposeToDecideP99Ms.toFixed(1).padEnd(8)}${(d?.proposeToDecideP50Ms.toFixed(1) ?? '-').padEnd(16)}${d?.proposeToDecideP99Ms.toFixed(1) ?? '-'}`);
      }
      console.log('disk under the same contention (all n children write their signer file at the same instants, as a height\'s validators do; one disk here, one per node when deployed)');
      console.log('n  write p50 ms  write p99 ms  p50/alone');
      for (const r of procRows) console.log(`${String(r.n).padEnd(3)}${r.contendedWriteP50Ms.toFixed(2).padEnd(14)}${r.contendedWriteP99Ms.toFixed(2).padEnd(14)}${(r.contendedWriteP50Ms / disk.p50).toFixed(1)}`);
    }
    console.log('targets (n = 4): p50 < 20 ms; >= 500 patterns/s');
    console.log(`disk baseline (same run): durable signer-file write p50 ${disk.p50.toFixed(2)} ms, p99 ${disk.p99.toFixed(2)} ms (3 per node on a height's critical path)`);
    console.log('');
    console.log('baseline: pure core (all n nodes in one process, real Ed25519; CPU per decided height)');
    console.log('n  batch  ms/height  crypto-baseline ms  ratio  patterns/s');
    for (const r of rows) {
      console.log(`${String(r.n).padEnd(3)}${String(r.patternsPerBatch).padEnd(7)}${r.msPerHeight.toFixed(2).padEnd(11)}${r.baselineCryptoMsPerHeight.toFixed(2).padEnd(20)}${r.ratioToCrypto.toFixed(2).padEnd(7)}${r.patternsPerSecond.toFixed(0)}`);
    }
  }
  return { suite: 'consensus', ed25519: ed25519.name, driver: driverRows, driverProcesses: procRows, diskDurableWriteMs: disk, core: rows };
}
