// A decided height the log cannot store (disk full, I/O error): the node holds at that height,
// says so in its status, retries every status period and resumes by itself once the write
// succeeds; nothing acts on the decision before it is durable. A single node, so there is no
// peer to catch the height up from: the retry alone must bring it back.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openConsensus, type DriverConsensus } from '../../../node/consensus/driver.js';
import { nullLogger } from '../../../node/log.js';
import { createHost, type Host } from '../../../node/p2p/host.js';
import { generateSwarmKey } from '../../../node/p2p/psk.js';
import { openStore, type Store, type StoreSectionDb } from '../../../node/store/index.js';
import { CLUSTER, genesisOf, ident, pattern, TEST_TIMEOUTS, waitFor } from '../../helpers/consensus-driver.js';

/** The real LevelDB store, whose `consensus` section refuses writes while `failing` is set (as a full disk does). */
function failingStore(real: Store, state: { failing: boolean; refused: number }): Store {
  const refuse = (): Promise<never> => {
    state.refused++;
    return Promise.reject(new Error('IO error: No space left on device'));
  };
  const wrap = (db: StoreSectionDb): StoreSectionDb => ({
    get: (k) => db.get(k),
    put: (k, v, o) => (state.failing ? refuse() : db.put(k, v, o)),
    del: (k, o) => db.del(k, o),
    batch: (ops, o) => (state.failing ? refuse() : db.batch(ops, o)),
    entries: (o) => db.entries(o),
  });
  return new Proxy(real, { get: (t, p, r) => (p === 'section' ? (name: Parameters<Store['section']>[0]) => (name === 'consensus' ? wrap(t.section(name)) : t.section(name)) : (Reflect.get(t, p, r) as unknown)) });
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  cleanup = [];
});

describe('a decided height that cannot be stored', () => {
  it('holds, reports storeError, retries each status period and resumes with nothing lost', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fednode-store-fail-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    const id = ident(1);
    const state = { failing: false, refused: 0 };
    const real = await openStore(join(root, 'store'));
    cleanup.push(() => real.close());
    const consensus: DriverConsensus = await openConsensus({
      identity: id, cluster: CLUSTER, store: failingStore(real, state), stateDir: join(root, 'state'), genesis: genesisOf([id]),
      logger: nullLogger, now: Date.now, timeouts: TEST_TIMEOUTS, auditLogPath: null, statusIntervalMs: 100, submitTimeoutMs: 30_000,
    });
    const host: Host = await createHost({ identity: id, cluster: CLUSTER, swarmKey: generateSwarmKey(), members: consensus.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await host.start();
    cleanup.push(() => host.stop());
    await consensus.start(host);
    cleanup.push(() => consensus.stop());

    const first = await consensus.submit([pattern('before')]);
    expect(first.height).toBe(1);

    // the disk fills up: the next decision cannot be stored
    state.failing = true;
    let settled = false;
    const pending = consensus.submit([pattern('during')]).finally(() => {
      settled = true;
    });
    await waitFor(() => consensus.status().storeError !== null, 10_000, 'storeError reported');
    const held = consensus.status();
    expect(held.storeError).toMatchObject({ height: 2, error: expect.stringContaining('No space left') });
    expect(held.decidedHeight).toBe(1); // nothing acted on the unstored decision
    await waitFor(() => (consensus.status().storeError?.attempts ?? 0) >= 3, 10_000, 'retries');
    expect(settled).toBe(false); // the submit is not answered before the height is durable
    expect(consensus.registry().patterns.map((p) => p.name)).toEqual(['before']);
    expect(consensus.counters().storeFailures).toBeGreaterThanOrEqual(3);

    // space again: the retry stores it and the node carries on by itself
    state.failing = false;
    const r = await pending;
    expect(r.height).toBe(2);
    expect(consensus.status().storeError).toBeNull();
    const next = await consensus.submit([pattern('after')]);
    expect(next.height).toBe(3);
    const log = await consensus.entries(1, 10);
    expect(log.map((e) => [e.height, e.ops.map((o) => (o.kind === 'pattern' ? o.name : o.kind))])).toEqual([
      [1, ['before']],
      [2, ['during']],
      [3, ['after']],
    ]);
    expect(state.refused).toBeGreaterThanOrEqual(3);
  });
});
