/**
 * #14 item 1, end to end: a 4-node cluster of real `fednode` processes on 127.0.0.1 (fixed
 * ports, so a restarted node is found again), real LevelDB. One node (the victim) is stopped and
 * damaged in each way the issue lists:
 *   truncate the newest store/<n>.log, scribble on it, rm store/CURRENT, rm -rf store,
 *   rm consensus/consensus-signer.cbor.
 * For each: `fednode start` exits 5 naming the damaged file and `fednode repair --from-peers`;
 * nothing is reset (the file stays missing, a second start fails the same way, the manifest is
 * unchanged); `fednode repair --from-peers` exits 0; the victim then starts, takes part, and ends
 * at the same decided height with the same registry hash as the other three.
 */
import { mkdtemp, open, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../../node/runtime/node.js';
import type { Running } from '../../helpers/e2e.js';
import { control, fednode, freePort, spawnUntil, waitFor } from '../../helpers/e2e.js';
import { heightKey } from '../../../node/consensus/decided-log.js';

const NODE_FLAGS = ['--no-mdns', '--api-port', '0', '--advert-period', '500ms', '--log-level', 'warn'];

interface Node {
  name: string;
  port: number;
  peerId: string;
  dir: string;
  proc: Running | null;
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

async function stop(n: Node): Promise<void> {
  const p = n.proc;
  if (p === null) return;
  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  expect(code, `${n.name} stops cleanly`).toBe(0);
  n.proc = null;
}

const status = (n: Node): Promise<NodeStatus> => control<NodeStatus>(n.dir, '/status');

let seq = 0;
/** One pattern through `from`; resolves with its height once committed. */
async function propose(from: Node): Promise<number> {
  seq++;
  const r = await fednode(['propose', 'pattern', '--name', `p${seq}`, '--content', `content ${seq}`, '--json', '--data-dir', from.dir]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { height: number }).height;
}

/** All `nodes` at one decided height >= `atLeast` with one registry hash; returns it. */
async function level(nodes: readonly Node[], atLeast: number): Promise<{ height: number; hash: string }> {
  return waitFor(
    `nodes level at >= ${atLeast}`,
    async () => {
      const s = await Promise.all(nodes.map((n) => status(n)));
      const hs = new Set(s.map((x) => `${x.consensus.decidedHeight}:${x.consensus.registryHash}`));
      const h = s[0]!.consensus.decidedHeight;
      return hs.size === 1 && h >= atLeast ? { height: h, hash: s[0]!.consensus.registryHash } : undefined;
    },
    60_000,
    200,
  );
}

interface Manifest {
  decided: { height: number; registryHash: string };
  signerHeight: number;
  signerCeiling: number;
}
const manifestOf = async (n: Node): Promise<Manifest> => JSON.parse(await readFile(join(n.dir, 'store-manifest.json'), 'utf8')) as Manifest;

/** The write-ahead log holding height `h`'s decided entry, and the offset of its key there. */
async function logWith(n: Node, h: number): Promise<{ file: string; offset: number }> {
  const key = Buffer.from(`!consensus!${heightKey(h)}`);
  for (const f of (await readdir(join(n.dir, 'store'))).filter((x) => /^\d+\.log$/.test(x))) {
    const file = join(n.dir, 'store', f);
    const offset = (await readFile(file)).indexOf(key);
    if (offset >= 0) return { file, offset };
  }
  throw new Error(`no write-ahead log holds height ${h}`);
}

describe('store integrity and repair (real processes, 4 nodes)', () => {
  it('each damage stops the node with exit 5 naming the file, nothing is reset, and repair --from-peers restores an equal registry hash', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-integrity-'));
    dirs.push(base);
    const nodes: Node[] = [];
    for (let i = 0; i < 4; i++) nodes.push({ name: `n${i + 1}`, port: await freePort(), peerId: '', dir: join(base, `n${i + 1}`), proc: null });
    const listen = (n: Node): string[] => ['--listen', `/ip4/127.0.0.1/tcp/${n.port}`];
    const [first, ...rest] = nodes as [Node, ...Node[]];
    const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', first.dir, '--name', first.name, ...listen(first), ...NODE_FLAGS]);
    expect(init.code, init.stderr).toBe(0);
    first.peerId = (JSON.parse(init.stdout) as { peerId: string }).peerId;
    await start(first);
    for (const n of rest) {
      const inv = await fednode(['invite', '--json', '--data-dir', first.dir]);
      expect(inv.code, inv.stderr).toBe(0);
      const j = await fednode(['join', (JSON.parse(inv.stdout) as { token: string }).token, '--json', '--data-dir', n.dir, '--name', n.name, ...listen(n), ...NODE_FLAGS]);
      expect(j.code, j.stderr).toBe(0);
      n.peerId = (JSON.parse(j.stdout) as { peerId: string }).peerId;
      await start(n);
      await waitFor(`${n.name} admitted`, async () => ((await status(n)).consensus.admission.admitted ? true : undefined), 60_000, 200);
    }
    const victim = nodes[3]!;
    const others = nodes.slice(0, 3);
    const peerArgs = others.flatMap((n) => ['--peer', `/ip4/127.0.0.1/tcp/${n.port}/p2p/${n.peerId}`]);

    let topHeight = 0;
    const top = (): number => topHeight;
    const cases: Array<{ name: string; damage: () => Promise<string>; stillDamaged: () => Promise<void>; movedAside: boolean }> = [
      {
        name: 'truncated write-ahead log',
        // the store opens and replays (LevelDB dropped the unreadable tail): kept, catch-up goes on from it
        movedAside: false,
        damage: async () => {
          // cut just before the entry of the height below the top: the two newest heights go
          const { file, offset } = await logWith(victim, top() - 1);
          await truncate(file, offset - 8);
          return file;
        },
        stillDamaged: () => Promise.resolve(),
      },
      {
        name: 'scribbled write-ahead log',
        // the store opens and replays (LevelDB dropped the unreadable tail): kept, catch-up goes on from it
        movedAside: false,
        damage: async () => {
          // 64 bytes of 'X' over the entry of the height below the top (its record's checksum fails)
          const { file, offset } = await logWith(victim, top() - 1);
          const fh = await open(file, 'r+');
          try {
            await fh.write(Buffer.alloc(64, 0x58), 0, 64, offset);
          } finally {
            await fh.close();
          }
          return file;
        },
        stillDamaged: () => Promise.resolve(),
      },
      {
        name: 'rm store/CURRENT',
        // LevelDB cannot open it: moved aside
        movedAside: true,
        damage: async () => {
          const f = join(victim.dir, 'store', 'CURRENT');
          await rm(f);
          return f;
        },
        stillDamaged: async () => {
          await expect(stat(join(victim.dir, 'store', 'CURRENT')), 'CURRENT not recreated').rejects.toThrow(/ENOENT/);
        },
      },
      {
        name: 'rm -rf store',
        // nothing to move
        movedAside: false,
        damage: async () => {
          const f = join(victim.dir, 'store');
          await rm(f, { recursive: true });
          return f;
        },
        stillDamaged: async () => {
          await expect(stat(join(victim.dir, 'store')), 'store not recreated').rejects.toThrow(/ENOENT/);
        },
      },
      {
        name: 'rm consensus/consensus-signer.cbor',
        // nothing to move
        movedAside: false,
        damage: async () => {
          const f = join(victim.dir, 'consensus', 'consensus-signer.cbor');
          await rm(f);
          return f;
        },
        stillDamaged: async () => {
          await expect(stat(join(victim.dir, 'consensus', 'consensus-signer.cbor')), 'signer record not recreated').rejects.toThrow(/ENOENT/);
        },
      },
    ];

    for (const c of cases) {
      // Fresh heights in the victim's newest log, and its manifest's floor at the top of them.
      for (let k = 0; k < 4; k++) await propose(first);
      const lv = await level(nodes, 1);
      topHeight = lv.height;
      await waitFor(`${c.name}: manifest floor at ${lv.height}`, async () => ((await manifestOf(victim)).decided.height === lv.height ? true : undefined), 20_000, 100);
      await stop(victim);
      const before = await readFile(join(victim.dir, 'store-manifest.json'), 'utf8');
      const file = await c.damage();

      const refused = await fednode(['start', '--data-dir', victim.dir]);
      expect(refused.code, `${c.name}: start exits 5 (corrupt)\n${refused.stderr}`).toBe(5);
      expect(refused.stderr, `${c.name}: names the file`).toContain(file);
      expect(refused.stderr, `${c.name}: names the recovery`).toContain('fednode repair --from-peers');
      // Nothing reset: the damage is still there, the manifest is untouched, and a second start fails too.
      await c.stillDamaged();
      expect(await readFile(join(victim.dir, 'store-manifest.json'), 'utf8'), `${c.name}: manifest unchanged`).toBe(before);
      const again = await fednode(['start', '--data-dir', victim.dir]);
      expect(again.code, `${c.name}: a second start is refused too\n${again.stderr}`).toBe(5);

      const rep = await fednode(['repair', '--from-peers', '--json', '--wait', '90s', '--data-dir', victim.dir, ...peerArgs]);
      expect(rep.code, `${c.name}: repair\n${rep.stderr.slice(-3000)}`).toBe(0);
      const r = JSON.parse(rep.stdout) as { repaired: boolean; decidedHeight: number; registryHash: string; fence: number | null; storeMovedTo: string | null };
      expect(r.repaired).toBe(true);
      expect(r.storeMovedTo !== null, `${c.name}: store moved aside`).toBe(c.movedAside);
      if (r.storeMovedTo !== null) expect((await stat(r.storeMovedTo)).isDirectory(), 'the damaged store is kept').toBe(true);
      expect(r.decidedHeight, `${c.name}: rebuilt up to the manifest's floor`).toBeGreaterThanOrEqual(topHeight);
      if (c.name.includes('signer')) expect(r.fence, 'the lost signer record is fenced').not.toBeNull();

      await start(victim);
      const after = await level(nodes, topHeight);
      expect(after.height).toBeGreaterThanOrEqual(topHeight);
      // The cluster goes on with the repaired node in it: one more height, still one hash everywhere.
      const h = await propose(first);
      const end = await level(nodes, h);
      expect(end.height).toBeGreaterThanOrEqual(h);
      const vs = await status(victim);
      expect(vs.consensus.registryHash).toBe(end.hash);
    }
    // The damaged store was kept aside, never deleted.
    const kept = (await readdir(victim.dir)).filter((f) => f.startsWith('store.damaged-'));
    expect(kept).toHaveLength(cases.filter((c) => c.movedAside).length);
  }, 600_000);
});
