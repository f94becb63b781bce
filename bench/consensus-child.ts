// One node of the consensus bench's multi-process cluster (spawned by bench/consensus.ts), driven
// over the IPC channel. A deployed node runs alone in its process; so does this one, so the
// process-per-node figures have no cross-node contention on one event loop.
//   parent -> child: {t:'init', idx, n, psk, dir} | {t:'dial', addrs} | {t:'mesh'} | {t:'submit', k, count} | {t:'stop'}
//   child -> parent: {t:'ready', addr} | {t:'dialed'} | {t:'mesh', peers} | {t:'proposed', height, round, atMs} | {t:'decided', height, atMs}
//                    | {t:'submitted', k, heights} | {t:'stopped'}
// 'proposed': this node broadcast a consensus proposal (host.publish, or host.sendDirect where the host has it), once per height:round;
// 'decided': this node decided the height. Both are sent from inside the callback, timed there.
// Times are epoch ms with sub-ms precision (performance.timeOrigin + performance.now()), comparable across processes.
import '../node/polyfill.js';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EMPTY_SIGNER_RECORD, LAN_TIMEOUTS } from '../consensus/core.js';
import { contentHashOf } from '../consensus/patterns.js';
import { identityFromSeed } from '../crypto/keys.js';
import { openConsensus, type DriverConsensus } from '../node/consensus/driver.js';
import { SignerFile } from '../node/consensus/signer-file.js';
import { nullLogger } from '../node/log.js';
import { createHost, type Host } from '../node/p2p/host.js';
import { openStore, type Store } from '../node/store/index.js';
import { watchProposals } from './consensus.js';

type Msg =
  | { t: 'init'; idx: number; n: number; psk: string; dir: string }
  | { t: 'dial'; addrs: string[] }
  | { t: 'mesh' }
  | { t: 'submit'; k: number; count: number }
  | { t: 'disk'; count: number; startAtMs: number; everyMs: number }
  | { t: 'stop' };

const epochMs = (): number => performance.timeOrigin + performance.now();
const send = (m: unknown): void => void process.send?.(m);

function seedId(i: number): ReturnType<typeof identityFromSeed> {
  const seed = new Uint8Array(32);
  seed[0] = i + 1;
  seed[1] = 0xbe;
  return identityFromSeed(seed);
}

let node: { consensus: DriverConsensus; host: Host; store: Store; idx: number } | null = null;
let seq = 0;
/** This node's directory (the disk baseline writes next to its state). */
let diskDir = '';

process.on('message', (raw: Msg) => {
  void (async () => {
    switch (raw.t) {
      case 'init': {
        const ids = Array.from({ length: raw.n }, (_, i) => seedId(i));
        const genesis = { members: ids.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i}` })) };
        diskDir = raw.dir;
        const store = await openStore(join(raw.dir, 'store'));
        const consensus = await openConsensus({ identity: ids[raw.idx]!, cluster: 'bench', store, stateDir: join(raw.dir, 'state'), genesis, logger: nullLogger, now: Date.now, timeouts: LAN_TIMEOUTS, auditLogPath: null });
        const host = await createHost({ identity: ids[raw.idx]!, cluster: 'bench', swarmKey: new TextEncoder().encode(raw.psk), members: consensus.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
        await host.start();
        const proposed = new Set<string>();
        watchProposals(host, epochMs, (height, round, atMs) => {
          const key = `${height}:${round}`;
          if (proposed.has(key)) return;
          proposed.add(key);
          send({ t: 'proposed', height, round, atMs });
        });
        await consensus.start(host);
        consensus.onDecided((e) => send({ t: 'decided', height: e.height, atMs: epochMs() }));
        node = { consensus, host, store, idx: raw.idx };
        send({ t: 'ready', addr: host.addresses()[0] });
        return;
      }
      case 'dial':
        for (const a of raw.addrs) await node!.host.dial(a).catch(() => undefined);
        send({ t: 'dialed' });
        return;
      case 'mesh':
        send({ t: 'mesh', peers: node!.host.meshPeers('consensus').length });
        return;
      case 'submit': {
        const c = node!.consensus;
        const rs = await Promise.all(
          Array.from({ length: raw.count }, () => {
            const k = seq++;
            const content = `pattern ${node!.idx}/${k}: summarise {{input}} in one line`;
            return c.submit([{ kind: 'pattern', name: `bench-${node!.idx}-${k % 64}`, content, contentHash: contentHashOf(content), tags: ['bench'], quality: null }], { timeoutMs: 120_000 });
          }),
        );
        send({ t: 'submitted', k: raw.k, heights: rs.map((r) => r.height) });
        return;
      }
      case 'disk': {
        // Disk baseline under contention: `count` durable signer-file writes (the driver's own
        // SignerFile) at the same epoch instants in every child, as the validators of a height write theirs.
        const f = new SignerFile(join(diskDir, 'disk-baseline'));
        const lat: number[] = [];
        for (let i = 0; i < raw.count; i++) {
          const at = raw.startAtMs + i * raw.everyMs;
          const wait = at - epochMs();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const t0 = performance.now();
          await f.write({ record: { ...EMPTY_SIGNER_RECORD, height: i + 1 }, own: [] });
          lat.push(performance.now() - t0);
        }
        await f.close();
        send({ t: 'disk', lat });
        return;
      }
      case 'stop':
        if (node !== null) {
          await node.consensus.stop();
          await node.host.stop();
          await node.store.close();
        }
        send({ t: 'stopped' });
        process.exit(0);
    }
  })().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
});
