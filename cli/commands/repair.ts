/**
 * `fednode repair --from-peers`: rebuild a damaged store (and fence a lost signer record) from the
 * live members, for a node that `start` refused with exit 5. The node must be stopped. Steps:
 *   1. prepareRepair (node/store/repair.ts): damaged parts are moved aside (never deleted); a lost
 *      signer record is replaced by a fence at the manifest's signer ceiling.
 *   2. the node runs in repair mode (no inference load is taken: the API and adverts run as in
 *      `start`, but nothing is printed as ready) until its decided log, fetched by the driver's
 *      verified catch-up (every certificate checked against the validator set of its height), has
 *      reached the manifest's floor with the manifest's registry hash, and stopped moving for
 *      SETTLE_MS. The fence keeps it from signing below what it may have signed before.
 *   3. the manifest is flushed, the node stopped, the fence lowered where that is provably safe.
 * Exit 0 when repaired; 5 when the cluster's history differs from the manifest; 1 when the floor
 * was not reached in --wait (nothing lost: rerun it); 2 on bad arguments.
 */
import { join } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagNumber } from '../command.js';
import { UsageError } from '../args.js';

/** A catch-up fetches 64 heights per exchange in milliseconds on a LAN; 5 min covers a long log on a slow link. */
const WAIT_MS_DEFAULT = 5 * 60_000;
/** Decided height unchanged this long (several 1 s status periods) = caught up with the peers heard. */
const SETTLE_MS = 3_000;
const POLL_MS = 200;

export const repairCommand: Command = {
  name: 'repair',
  flags: [
    { name: 'from-peers', type: 'boolean', description: 'rebuild from the live members by verified catch-up (the only source; required)' },
    { name: 'peer', type: 'string', repeatable: true, placeholder: '<multiaddr>', description: 'a member to dial, with /p2p/<id> (added to the config\'s bootstrap list for this run)' },
    { name: 'wait', type: 'duration', placeholder: '<duration>', description: 'how long to wait for the catch-up to reach the manifest\'s height', defaultText: '5m' },
  ],
  positionals: [],
  details: [
    'Run it when `fednode start` stops with exit 5 naming a damaged store, a missing CURRENT file, lost heights or a missing signer record.',
    'Damaged files are moved aside (store.damaged-<time>, consensus-signer.cbor.damaged-<time>), never deleted.',
    'A lost signer record is replaced by a fence: the node signs nothing at or below the highest height it may have signed, so it cannot double-sign.',
    'example: fednode repair --from-peers --peer /ip4/192.168.1.20/tcp/4701/p2p/12D3KooW... --data-dir ~/.fednode',
  ].join('\n'),
  async run(ctx) {
    if (flagBool(ctx.args, 'from-peers') !== true) throw new UsageError('repair needs its source: --from-peers (rebuild from the live members)', 'repair');
    const peers = flagList(ctx.args, 'peer');
    for (const p of peers) if (!p.startsWith('/') || !p.includes('/p2p/')) throw new UsageError(`--peer must be a multiaddr with /p2p/<peer id>, got '${p}'`, 'repair');
    const waitMs = flagNumber(ctx.args, 'wait') ?? WAIT_MS_DEFAULT;

    const { checkInitialised, readClusterFile } = await import('../../node/datadir.js');
    const { loadIdentity } = await import('../../crypto/keys.js');
    const { loadConfig } = await import('../../node/config.js');
    const { createJsonLogger } = await import('../../node/log.js');
    const { readManifest, manifestPath } = await import('../../node/store/manifest.js');
    const { prepareRepair, finishRepair, repairFailed } = await import('../../node/store/repair.js');
    const { openConsensus } = await import('../../node/consensus/driver.js');
    const { startNode, genesisOf } = await import('../../node/runtime/node.js');
    const { acquireLock } = await import('../../node/datadir.js');

    const paths = await checkInitialised(ctx.dataDir);
    const config = await loadConfig(paths.config);
    const identity = await loadIdentity(paths.identity);
    const cluster = await readClusterFile(paths.cluster);
    const logger = createJsonLogger({ node: config.name ?? identity.peerId.slice(-8), level: config.log.level, write: (l) => ctx.err(l + '\n') });
    const stateDir = join(paths.root, 'consensus');
    const manifest = await readManifest(manifestPath(paths.root));

    // The data directory's lock while files are moved: a running node must not see them go.
    const lock = await acquireLock(paths.root);
    let plan;
    try {
      plan = await prepareRepair({
        dataDir: paths.root,
        storePath: paths.store,
        stateDir,
        cluster: cluster.id,
        node: identity.peerId,
        logger,
        now: () => ctx.now(),
        onCorrupt: () => undefined, // the replay's own error reports it
        manifest,
        replay: async (store) => {
          const c = await openConsensus({ identity, cluster: cluster.id, store, stateDir, genesis: genesisOf(cluster), logger: logger.child('replay'), now: () => ctx.now() });
          await c.stop();
        },
      });
    } finally {
      await lock.release();
    }
    for (const r of plan.reasons) logger.info('repair', { step: r });

    const node = await startNode({ dataDir: paths.root, logger, integrity: 'repair', bootstrap: peers });
    const floor = manifest?.decided ?? { height: 0, registryHash: '' };
    let clusterDecided = 0;
    let allMembersReached = false;
    let st = node.status();
    try {
      const deadline = ctx.now() + waitMs;
      let last = -1;
      let since = ctx.now();
      for (;;) {
        const s = node.status();
        const h = s.consensus.decidedHeight;
        if (h !== last) {
          last = h;
          since = ctx.now();
        }
        const settled = ctx.now() - since >= SETTLE_MS;
        if (h >= floor.height && s.connectedPeers > 0 && settled) {
          clusterDecided = h;
          allMembersReached = s.connectedPeers >= s.members.filter((p) => p !== s.peerId).length;
          break;
        }
        if (ctx.now() > deadline) {
          throw repairFailed(
            s.connectedPeers === 0
              ? `no member reachable within ${waitMs} ms (pass one with --peer <multiaddr>).`
              : `the decided log reached height ${h} of ${floor.height} within ${waitMs} ms (the manifest's floor; are enough members up?).`,
            { decided: h, floor: floor.height, connectedPeers: s.connectedPeers },
          );
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      if (floor.height > 0) {
        const now = node.status();
        const entries = await (async () => {
          const { controlClient } = await import('../../node/control/client.js');
          const { readControlToken } = await import('../../node/datadir.js');
          const c = controlClient(now.controlUrl, await readControlToken(paths.controlToken));
          return c.get<{ entries: Array<{ height: number; registryHash: string }> }>(`/consensus/log?from=${floor.height}&limit=1`);
        })();
        const e = entries.entries[0];
        if (e?.height !== floor.height || e.registryHash !== floor.registryHash) {
          const { IntegrityError } = await import('../../node/store/integrity-errors.js');
          throw new IntegrityError(
            'ERR_STORE_INTEGRITY',
            `the cluster's registry hash at height ${floor.height} is ${e?.registryHash ?? '(none)'}, this node's manifest records ${floor.registryHash}: the cluster's history is not the one this node took part in. Nothing was changed beyond the moves listed; find out which history is right before going on.`,
            { file: manifestPath(paths.root), height: floor.height },
          );
        }
      }
      await node.manifest.flush();
    } finally {
      st = node.status();
      await node.stop();
    }
    const fence = await finishRepair({ stateDir, manifestPath: manifestPath(paths.root), clusterDecided, allMembersReached, now: () => ctx.now() });
    ctx.result(
      { repaired: true, decidedHeight: st.consensus.decidedHeight, registryHash: st.consensus.registryHash, floor: floor.height, caughtUpHeights: st.consensus.caughtUpHeights, fence, storeMovedTo: plan.storeMovedTo, signerMovedTo: plan.signerMovedTo, steps: plan.reasons },
      [
        `repaired ${paths.root}`,
        ...plan.reasons.map((r) => `  ${r}`),
        `  decided height ${st.consensus.decidedHeight} (manifest floor ${floor.height}), ${st.consensus.caughtUpHeights} heights fetched and verified`,
        `  registry hash  ${st.consensus.registryHash}`,
        ...(plan.storeMovedTo !== null ? [`  damaged store kept at ${plan.storeMovedTo}`] : []),
        ...(plan.signerMovedTo !== null ? [`  damaged signer record kept at ${plan.signerMovedTo}`] : []),
        ...(fence !== null ? [`  signer fenced: signs nothing at or below height ${fence}${allMembersReached ? '' : ' (not every member was reachable: fence kept at the manifest ceiling)'}`] : []),
        `next: fednode start --data-dir ${paths.root}`,
      ].join('\n') + '\n',
    );
    return 0;
  },
};
