// Catch-up (issue 5 point 4): a node that missed 1,000 heights fetches them over the sync
// protocol, verifies every certificate against the validator set of its height and applies
// it; a forged certificate or garbage in a sync response is rejected and nothing is applied.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ed25519 } from '../../../crypto/ed25519.js';
import type { Identity } from '../../../crypto/keys.js';
import { toHex } from '../../../base/hex.js';
import { valueIdOf, voteDigest } from '../../../consensus/core.js';
import { encodeCertificate } from '../../../consensus/codec.js';
import { encodeBatch } from '../../../consensus/patterns.js';
import { applyBatch, genesisRegistry, registryHash, type Registry } from '../../../consensus/registry.js';
import type { CommitCertificate, SignedVote } from '../../../consensus/types.js';
import { DecidedLog } from '../../../node/consensus/decided-log.js';
import { openConsensus } from '../../../node/consensus/driver.js';
import { encodeSyncResponse, serveSync, SYNC_PROTOCOL } from '../../../node/consensus/sync.js';
import { nullLogger } from '../../../node/log.js';
import { createHost, type Host } from '../../../node/p2p/host.js';
import { generateSwarmKey } from '../../../node/p2p/psk.js';
import { openStore, type Store } from '../../../node/store/index.js';
import { CLUSTER, TEST_TIMEOUTS, genesisOf, ident, pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

const HEIGHTS = 1000;

function certify(signers: readonly Identity[], height: number, value: Uint8Array, round = 0): CommitCertificate {
  const valueId = valueIdOf(value);
  const precommits: SignedVote[] = signers.map((id) => {
    const vote = { type: 'precommit' as const, height, round, valueId };
    return { vote, signer: id.publicKey, signature: ed25519.sign(id.secretKey, voteDigest(CLUSTER, vote)) };
  });
  return { height, round, valueId, precommits };
}

interface Built {
  readonly entries: { height: number; value: Uint8Array; certificate: CommitCertificate; hash: Uint8Array }[];
  readonly final: Registry;
}

/** A valid decided log of `heights` one-pattern heights, certified by 3 of the 4 validators. */
function buildLog(ids: readonly Identity[], heights: number): Built {
  let reg = genesisRegistry(genesisOf(ids));
  const entries: Built['entries'] = [];
  for (let h = 1; h <= heights; h++) {
    const value = encodeBatch([pattern(`c${h % 20}`, `content ${h}`)]);
    reg = applyBatch(reg, h, value);
    entries.push({ height: h, value, certificate: certify(ids.slice(0, 3), h, value), hash: registryHash(reg) });
  }
  return { entries, final: reg };
}

async function writeLog(store: Store, b: Built): Promise<void> {
  await new DecidedLog(store.section('consensus')).putMany(b.entries.map((e) => ({ height: e.height, round: 0, value: e.value, certificate: e.certificate, registryHash: e.hash, decidedMs: 0 })));
}

let cluster: DriverCluster | null = null;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await cluster?.close();
  cluster = null;
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

describe('catch-up', () => {
  it('a node down for 1,000 heights fetches, verifies and applies every one, then decides with the others', async () => {
    const ids = Array.from({ length: 4 }, (_, i) => ident(i + 1));
    const built = buildLog(ids, HEIGHTS);
    cluster = await startDriverCluster(4, { prepare: async (idx, store) => (idx < 3 ? writeLog(store, built) : undefined) });
    const lagging = cluster.nodes[3]!;
    expect(cluster.nodes[0]!.consensus.status().decidedHeight).toBe(HEIGHTS);
    await waitFor(() => lagging.consensus.status().decidedHeight >= HEIGHTS, 60_000, 'lagging node caught up');
    expect(lagging.consensus.status().caughtUpHeights).toBe(HEIGHTS);
    expect(lagging.consensus.status().registryHash).toBe(toHex(registryHash(built.final)));
    expect(lagging.consensus.counters().certificatesRejected).toBe(0);
    const got = await lagging.consensus.entries(1, HEIGHTS);
    expect(got.map((e) => e.valueId)).toEqual(built.entries.map((e) => valueIdOf(e.value)));
    // And it takes part in new heights.
    const r = await lagging.consensus.submit([pattern('after-catch-up')]);
    expect(r.height).toBeGreaterThan(HEIGHTS);
    await waitFor(() => cluster!.nodes.every((x) => x.consensus.status().decidedHeight >= r.height), 10_000, 'all at the new height');
    expect(new Set(cluster.nodes.map((x) => x.consensus.status().registryHash)).size).toBe(1);
  });

  it('rejects forged certificates and garbage in sync responses; applies nothing', async () => {
    const ids = Array.from({ length: 4 }, (_, i) => ident(i + 1));
    const built = buildLog(ids, 3);
    const good = built.entries[0]!;
    const outsider = ident(9);
    const forgedCerts: CommitCertificate[] = [
      certify([outsider, ids[0]!, ids[1]!], 1, good.value), // a non-validator signed
      certify(ids.slice(0, 2), 1, good.value), // 2 of 4: not > 2/3
      { ...good.certificate, precommits: good.certificate.precommits.map((p, i) => (i === 0 ? { ...p, signature: new Uint8Array(64).fill(7) } : p)) }, // bad signature
      certify(ids.slice(0, 3), 1, encodeBatch([pattern('other')])), // valid signatures, another value
    ];
    const responses: Uint8Array[] = [
      ...forgedCerts.map((c) => encodeSyncResponse({ decided: 3, height: 4, entries: [{ height: 1, round: 0, value: good.value, certificate: encodeCertificate(c) }], messages: [] })),
      new Uint8Array([0xff, 0x00, 0x13, 0x37]), // garbage
    ];
    let served = 0;
    const swarmKey = generateSwarmKey();
    const root = await mkdtemp(join(tmpdir(), 'fednode-cdrv-forge-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    // The victim: a member with an empty log.
    const store = await openStore(join(root, 'victim'));
    cleanup.push(() => store.close());
    const victim = await openConsensus({
      identity: ids[3]!,
      cluster: CLUSTER,
      store,
      stateDir: join(root, 'victim-state'),
      genesis: genesisOf(ids),
      logger: nullLogger,
      now: Date.now,
      timeouts: TEST_TIMEOUTS,
      statusIntervalMs: 100,
      syncTimeoutMs: 2_000,
    });
    cleanup.push(() => victim.stop());
    const vhost = await createHost({ identity: ids[3]!, cluster: CLUSTER, swarmKey, members: victim.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await vhost.start();
    cleanup.push(() => vhost.stop());
    // The forger: a member's key, answering every sync request with the next forged response.
    const fhost: Host = await createHost({ identity: ids[0]!, cluster: CLUSTER, swarmKey, members: victim.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await fhost.start();
    cleanup.push(() => fhost.stop());
    await fhost.handle(SYNC_PROTOCOL, (stream) => void serveSync(stream, 2_000, () => Promise.resolve(responses[served++ % responses.length]!)));
    await victim.start(vhost);
    await vhost.dial(fhost.addresses()[0]!);
    await waitFor(() => served >= responses.length + 1, 20_000, 'every forged response served');
    const c = victim.counters();
    expect(c.certificatesRejected).toBeGreaterThanOrEqual(forgedCerts.length);
    expect(c.syncBadResponses).toBeGreaterThanOrEqual(1);
    expect(victim.status().decidedHeight).toBe(0);
    expect(victim.status().caughtUpHeights).toBe(0);
    expect(await victim.entries(1, 10)).toEqual([]);
  });
});
