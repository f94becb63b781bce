/**
 * Crash test: 4 real `fednode` processes (1 genesis member + 3 admitted by consensus), a load
 * of proposals through the control API, and 50 times: kill -9 a random node at a random point
 * while the cluster votes, then restart it. Afterwards:
 *  - no conflicting signature was ever produced: in every node's consensus audit log (written
 *    and fsynced before a message leaves the node) no two entries share height/round/type with
 *    different values;
 *  - no decided height was lost: every height a node reported decided before a kill is in its
 *    LevelDB with the same value id, read between the kill and the restart (so catch-up cannot
 *    refill a lost one), and in its log at the end;
 *  - every node is at the same height with the same registry hash (and the same value per height).
 * Randomness is seeded: FEDNODE_CRASH_SEED=<n> replays a run; the seed is printed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { valueIdOf } from '../../../consensus/core.js';
import { decodeDecision, heightKey } from '../../../node/consensus/decided-log.js';
import type { NodeStatus } from '../../../node/runtime/node.js';
import { openStore } from '../../../node/store/index.js';
import type { LogJson } from '../../../node/runtime/consensus-routes.js';
import type { Running } from '../../helpers/e2e.js';
import { control, fednode, freePort, spawnUntil, waitFor } from '../../helpers/e2e.js';
import { Prng } from '../../../base/prng.js';

const KILLS = 50;
const NODES = 4;
/** Proposal loops running at once: enough to keep every height busy, few enough for 2 cores. */
const LOAD_LOOPS = 2;
/** Bound on proposals in one run (the loops stop at this count even if kills are slow). */
const PROPOSALS_MAX = 5000;
/** Pattern names cycle through this many, so the registry stays small (replacements are valid). */
const NAMES = 64;
// Fixed ports, so a restarted node is found again at its address (with port 0 it would come
// back elsewhere and its peers would redial the old address).
const NODE_FLAGS = ['--no-mdns', '--api-port', '0', '--advert-period', '500ms', '--log-level', 'warn'];

/** The project's one seeded PRNG (base/prng.ts), as a float source to pick victims and delays. */
function rng(seed: number): () => number {
  const p = new Prng(seed >>> 0);
  return () => p.float();
}

interface Node {
  name: string;
  port: number;
  peerId: string;
  dir: string;
  audit: string;
  proc: Running | null;
  /** height -> value id, as this node reported decided (before kills). */
  seen: Map<number, string>;
}

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function start(n: Node): Promise<void> {
  n.proc = await spawnUntil(['start', '--json', '--data-dir', n.dir], 'ready', 60_000);
  running.push(n.proc);
}

async function post(dir: string, path: string, body: unknown, timeoutMs: number): Promise<number> {
  const rt = JSON.parse(await readFile(join(dir, 'runtime.json'), 'utf8')) as { controlUrl: string };
  const token = (await readFile(join(dir, 'control.token'), 'utf8')).trim();
  const r = await fetch(rt.controlUrl + path, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  await r.arrayBuffer();
  return r.status;
}

/** Everything a node's log holds from `from` on (paged by the route's bound). */
async function logOf(dir: string, from: number): Promise<LogJson['entries']> {
  const out: LogJson['entries'] = [];
  for (let h = from; ; ) {
    const page = await control<LogJson>(dir, `/consensus/log?from=${h}&limit=1000`);
    out.push(...page.entries);
    const last = page.entries[page.entries.length - 1];
    if (last === undefined || last.height >= page.decidedHeight) return out; // the reply may be cut by size: page on
    h = last.height + 1;
  }
}

/**
 * Read the killed node's own LevelDB (its lock died with it) BEFORE it restarts: every height
 * it reported decided must be there with the same value, so catch-up cannot mask a loss.
 */
async function lostHeights(n: Node): Promise<string[]> {
  const store = await openStore(join(n.dir, 'store'), { createIfMissing: false });
  const lost: string[] = [];
  try {
    const section = store.section('consensus');
    for (const [h, v] of n.seen) {
      const bytes = await section.get(heightKey(h));
      const d = bytes === undefined ? null : decodeDecision(h, bytes);
      const found = d === null ? 'missing' : d.ok ? valueIdOf(d.d.value) : `undecodable (${d.reason})`;
      if (found !== v) lost.push(`${n.name} height ${h}: reported ${v}, on disk ${found}`);
    }
  } finally {
    await store.close();
  }
  return lost;
}

async function record(n: Node): Promise<void> {
  const from = n.seen.size === 0 ? 1 : Math.max(...n.seen.keys()) + 1;
  for (const e of await logOf(n.dir, from)) n.seen.set(e.height, e.valueId);
}

describe('crash safety (real processes, kill -9)', () => {
  it(`${KILLS} kill -9 / restart cycles during voting: no conflicting signature, no decided height lost, equal registry hashes`, async () => {
    const seed = Number(process.env['FEDNODE_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    process.stderr.write(`crash test seed ${seed} (replay: FEDNODE_CRASH_SEED=${seed} npx vitest run test/e2e/consensus/crash.test.ts)\n`);
    const rand = rng(seed);
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-crash-'));
    dirs.push(base);
    const nodes: Node[] = [];
    for (let i = 0; i < NODES; i++) {
      const name = `n${i + 1}`;
      nodes.push({ name, port: await freePort(), peerId: '', dir: join(base, name), audit: join(base, `${name}.audit.jsonl`), proc: null, seen: new Map() });
    }
    const listen = (n: Node): string[] => ['--listen', `/ip4/127.0.0.1/tcp/${n.port}`];
    const [first, ...rest] = nodes as [Node, ...Node[]];

    // the cluster: n1 founds it, the others join one at a time and are admitted by consensus
    const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', first.dir, '--name', first.name, '--consensus-audit', first.audit, ...listen(first), ...NODE_FLAGS]);
    expect(init.code, init.stderr).toBe(0);
    first.peerId = (JSON.parse(init.stdout) as { peerId: string }).peerId;
    await start(first);
    for (const n of rest) {
      const inv = await fednode(['invite', '--json', '--data-dir', first.dir]);
      expect(inv.code, inv.stderr).toBe(0);
      const { token } = JSON.parse(inv.stdout) as { token: string };
      const j = await fednode(['join', token, '--json', '--data-dir', n.dir, '--name', n.name, '--consensus-audit', n.audit, ...listen(n), ...NODE_FLAGS]);
      expect(j.code, j.stderr).toBe(0);
      n.peerId = (JSON.parse(j.stdout) as { peerId: string }).peerId;
      await start(n);
      await waitFor(`${n.name} admitted`, async () => ((await control<NodeStatus>(n.dir, '/status')).consensus.admission.admitted ? true : undefined), 30_000, 100);
    }

    // every node bootstraps from all the others after a restart (read at start)
    for (const n of nodes) {
      const file = join(n.dir, 'config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as { bootstrap: string[] };
      cfg.bootstrap = nodes.filter((o) => o !== n).map((o) => `/ip4/127.0.0.1/tcp/${o.port}/p2p/${o.peerId}`);
      await writeFile(file, JSON.stringify(cfg, null, 2));
    }

    // load: proposals to random live nodes until the kills are done
    let done = false;
    let proposals = 0;
    let committed = 0;
    const live = (): Node[] => nodes.filter((n) => n.proc !== null);
    const loop = async (k: number): Promise<void> => {
      const r = rng(seed + 1 + k); // its own stream, so the kill schedule replays whatever the load's timing
      while (!done && proposals < PROPOSALS_MAX) {
        const targets = live();
        const n = targets[Math.floor(r() * targets.length)];
        if (n === undefined) {
          await new Promise((res) => setTimeout(res, 20));
          continue;
        }
        const i = proposals++;
        const op = { kind: 'pattern', name: `load-${i % NAMES}`, content: `proposal ${i} of loop ${k}`, tags: ['crash'] };
        const status = await post(n.dir, '/consensus/propose', { ops: [op], waitMs: 3000 }, 5000).catch(() => 0);
        if (status === 200) committed++;
        else await new Promise((res) => setTimeout(res, 20)); // a killed node or a timeout: try elsewhere
      }
    };
    const loads = Array.from({ length: LOAD_LOOPS }, (_, k) => loop(k));

    // the 4-validator set is in force once two more heights are decided after the last member.add
    const lastAdd = (await control<NodeStatus>(first.dir, '/status')).consensus.decidedHeight;
    await waitFor('4 validators voting', async () => {
      const s = await control<NodeStatus>(first.dir, '/status');
      return s.consensus.validators.length === NODES && s.consensus.decidedHeight >= lastAdd + 2 ? true : undefined;
    }, 60_000, 100);

    const kills: string[] = [];
    const loopStartMs = Date.now();
    let restartMs = 0;
    let checkedHeights = 0;
    for (let k = 0; k < KILLS; k++) {
      const victim = nodes[Math.floor(rand() * NODES)]!;
      const delayMs = Math.floor(rand() * 400);
      await record(victim).catch(() => undefined); // what it reports decided now must survive the kill
      await new Promise((res) => setTimeout(res, delayMs));
      victim.proc!.child.kill('SIGKILL');
      await victim.proc!.exited;
      victim.proc = null;
      expect(await lostHeights(victim)).toEqual([]);
      checkedHeights += victim.seen.size;
      kills.push(`${victim.name}+${delayMs}ms`);
      const t0 = Date.now();
      await start(victim);
      restartMs += Date.now() - t0;
      if (k % 10 === 9) {
        const heights = await Promise.all(live().map((n) => control<NodeStatus>(n.dir, '/status').then((x) => x.consensus.decidedHeight, () => -1)));
        process.stderr.write(`crash test: ${k + 1} kills, decided heights ${heights.join(' ')}, ${committed} committed\n`);
      }
    }
    done = true;
    await Promise.all(loads);
    process.stderr.write(`crash test: ${kills.length} kills (${kills.join(' ')}), ${proposals} proposals, ${committed} committed; ${checkedHeights} reported heights found on disk after the kills; kill loop ${Date.now() - loopStartMs} ms of which restarts ${restartMs} ms\n`);
    expect(checkedHeights).toBeGreaterThan(0);
    expect(committed).toBeGreaterThan(0);

    // every node converges: same decided height, same registry hash
    const final = await waitFor('all nodes at the same height and registry hash', async () => {
      const ss = await Promise.all(nodes.map((n) => control<NodeStatus>(n.dir, '/status')));
      const h = ss[0]!.consensus.decidedHeight;
      return ss.every((s) => s.consensus.decidedHeight === h && s.consensus.registryHash === ss[0]!.consensus.registryHash) ? { height: h, hash: ss[0]!.consensus.registryHash } : undefined;
    }, 90_000, 250);
    expect(final.height).toBeGreaterThan(lastAdd + 2);

    // no decided height lost, and every node decided the same value at every height
    const logs = await Promise.all(nodes.map((n) => logOf(n.dir, 1)));
    const reference = new Map(logs[0]!.map((e) => [e.height, e.valueId]));
    for (const [i, n] of nodes.entries()) {
      const byHeight = new Map(logs[i]!.map((e) => [e.height, e.valueId]));
      expect(logs[i]!.map((e) => e.height)).toEqual(Array.from({ length: final.height }, (_, h) => h + 1));
      for (const [h, v] of n.seen) expect(byHeight.get(h), `${n.name} height ${h}`).toBe(v);
      for (const [h, v] of byHeight) expect(v, `${n.name} height ${h} vs ${nodes[0]!.name}`).toBe(reference.get(h));
    }

    // no conflicting signature: per node, one value per (height, round, type)
    for (const n of nodes) {
      const text = await readFile(n.audit, 'utf8');
      const signed = new Map<string, string | null>();
      let lines = 0;
      let torn = 0;
      for (const line of text.split('\n')) {
        if (line === '') continue;
        let e: { height: number; round: number; type: string; valueId: string | null };
        try {
          e = JSON.parse(line) as typeof e;
        } catch {
          torn++; // a line cut by kill -9 mid-append: that message never left the node
          continue;
        }
        lines++;
        const key = `${e.height}/${e.round}/${e.type}`;
        if (signed.has(key)) expect(signed.get(key), `${n.name} signed two values at ${key}`).toBe(e.valueId);
        else signed.set(key, e.valueId);
      }
      expect(lines, `${n.name} audit log`).toBeGreaterThan(0);
      expect(torn).toBeLessThanOrEqual(KILLS);
    }
  }, 600_000);
});
