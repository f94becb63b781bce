// Unit tests of the driver's pure-ish parts: the pending-op pool, the sync codec, the signer file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCanonical } from '../../../crypto/cbor.js';
import { decodeMessage, encodeCertificate } from '../../../consensus/codec.js';
import { EMPTY_SIGNER_RECORD } from '../../../consensus/core.js';
import { decodeBatch, encodeBatch, MAX_BATCH_OPS, type PatternOp } from '../../../consensus/patterns.js';
import { applyBatch, genesisRegistry, validateBatch } from '../../../consensus/registry.js';
import { ConsensusDriverError } from '../../../node/consensus/api.js';
import { Mempool, opId } from '../../../node/consensus/mempool.js';
import { SignerFile } from '../../../node/consensus/signer-file.js';
import { decodeSyncRequest, decodeSyncResponse, encodeSyncRequest, encodeSyncResponse, MAX_SYNC_HEIGHTS } from '../../../node/consensus/sync.js';
import { heightKey } from '../../../node/consensus/decided-log.js';
import { openConsensus } from '../../../node/consensus/driver.js';
import { RegistryMembers } from '../../../node/consensus/members.js';
import { nullLogger } from '../../../node/log.js';
import { openStore } from '../../../node/store/index.js';
import { CLUSTER, genesisOf, ident, pattern } from '../../helpers/consensus-driver.js';

const ids = Array.from({ length: 4 }, (_, i) => ident(i + 1));
const add = (n: number, name = `m${n}`): PatternOp => ({ kind: 'member.add', publicKey: ident(n).publicKey, power: 1, name });

describe('Mempool', () => {
  it('keys ops by content, bounds ops and bytes, and builds batches valid together', () => {
    const reg = genesisRegistry(genesisOf(ids));
    const pool = new Mempool(5, 1 << 20);
    const put = (op: PatternOp): string => {
      const { id, bytes } = opId(op);
      return pool.add(id, op, bytes);
    };
    expect(put(pattern('a'))).toBe('added');
    expect(put(pattern('a'))).toBe('duplicate');
    expect(put(add(10))).toBe('added');
    expect(put(add(10, 'other name'))).toBe('added'); // conflicts with the first add of the same key
    expect(put({ kind: 'member.remove', publicKey: ident(50).publicKey })).toBe('added'); // invalid alone
    expect(put(pattern('b'))).toBe('added');
    expect(put(pattern('c'))).toBe('full');
    const batch = pool.build(reg, 1)!;
    expect(validateBatch(reg, 1, batch).ok).toBe(true);
    const ops = decodeBatch(batch);
    expect(ops.map((o) => o.kind)).toEqual(['pattern', 'member.add', 'pattern']);
    expect(pool.size).toBe(4); // the invalid remove was evicted; the conflicting add waits
    // Once the first add is decided, its twin is invalid alone and is pruned.
    const next = applyBatch(reg, 1, batch);
    for (const op of ops) pool.remove(opId(op).id);
    expect(pool.pruneInvalid(next, 2)).toBe(1);
    expect(pool.size).toBe(0);
    expect(pool.build(next, 2)).toBeNull();
  });

  it('caps a batch at MAX_BATCH_OPS', () => {
    const reg = genesisRegistry(genesisOf(ids));
    const pool = new Mempool();
    for (let i = 0; i < MAX_BATCH_OPS + 10; i++) {
      const op = pattern(`p${i}`);
      const { id, bytes } = opId(op);
      pool.add(id, op, bytes);
    }
    expect(decodeBatch(pool.build(reg, 1)!)).toHaveLength(MAX_BATCH_OPS);
  });
});

describe('sync codec', () => {
  it('round-trips, clamps the height count, and returns null on garbage', () => {
    expect(decodeSyncRequest(encodeSyncRequest({ from: 5, limit: 10 }))).toEqual({ from: 5, limit: 10 });
    expect(decodeSyncRequest(encodeSyncRequest({ from: 5, limit: 10_000 }))!.limit).toBe(MAX_SYNC_HEIGHTS);
    expect(decodeSyncRequest(encodeCanonical({ from: 0, limit: 1 }))).toBeNull();
    expect(decodeSyncRequest(encodeCanonical({ from: 1, limit: 1, extra: 1 }))).toBeNull();
    expect(decodeSyncRequest(new Uint8Array([0xff]))).toBeNull();
    const cert = { height: 1, round: 0, valueId: 'ab'.repeat(32), precommits: [] };
    const r = encodeSyncResponse({ decided: 1, height: 2, entries: [{ height: 1, round: 0, value: new Uint8Array([1]), certificate: encodeCertificate(cert) }], messages: [] });
    expect(decodeSyncResponse(r)!.entries[0]!.certificate).toEqual(cert);
    expect(decodeSyncResponse(encodeCanonical({ decided: 1, height: 2, entries: [{ height: 1, round: 0, value: new Uint8Array([1]), certificate: new Uint8Array([9]) }], messages: [] }))).toBeNull();
    expect(decodeSyncResponse(encodeCanonical({ decided: 1, height: 2, entries: [], messages: [new Uint8Array([1, 2])] }))).toBeNull();
    expect(decodeSyncResponse(new Uint8Array(100).fill(0x9f))).toBeNull();
    expect(decodeMessage(new Uint8Array([1, 2, 3]))).toBeNull();
  });
});

describe('decided log on open', () => {
  it('refuses a damaged or gapped log with ERR_CONSENSUS_STATE_CORRUPT, never a silent reset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-log-'));
    try {
      for (const [key, value] of [
        [heightKey(1), new Uint8Array([1, 2, 3])], // not an entry
        [heightKey(2), new Uint8Array([0xa0])], // height 1 missing
      ] as const) {
        const store = await openStore(join(dir, `store-${key}`));
        try {
          await store.section('consensus').put(key, value, { sync: true });
          const err = await openConsensus({ identity: ids[0]!, cluster: CLUSTER, store, stateDir: join(dir, 'state'), genesis: genesisOf(ids), logger: nullLogger, now: Date.now }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ConsensusDriverError);
          expect((err as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STATE_CORRUPT');
          expect((err as ConsensusDriverError).message).toContain('To fix');
        } finally {
          await store.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SignerFile', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it('writes durably and reads back; refuses damage with a typed error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fednode-signer-'));
    const f = new SignerFile(dir);
    expect(await f.load()).toBeNull();
    const record = { ...EMPTY_SIGNER_RECORD, height: 7, round: 2, step: 2 as const, signedDigest: new Uint8Array(32).fill(1), signature: new Uint8Array(64).fill(2), lockedRound: 1, lockedValue: new Uint8Array([5]) };
    await f.write({ record, own: [] });
    expect(await f.load()).toEqual({ record, own: [] });
    await writeFile(f.path, encodeCanonical({ v: 1, record: new Uint8Array([1]), own: [] }));
    const err = await f.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsensusDriverError);
    expect((err as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STATE_CORRUPT');
    expect((err as ConsensusDriverError).data['path']).toBe(f.path);
  });
});

describe('RegistryMembers', () => {
  it('counts a decided member.add at once, drops a member.remove when in force, and emits each difference once', () => {
    const ids = [1, 2, 3, 4].map(ident);
    const reg0 = genesisRegistry(genesisOf(ids));
    const m = new RegistryMembers(reg0);
    const events: Array<{ added: readonly string[]; removed: readonly string[] }> = [];
    m.onChange((ev) => events.push(ev));
    expect([...m.members()].sort()).toEqual(ids.map((i) => i.peerId).sort());
    const joiner = ident(9);
    const reg1 = applyBatch(reg0, 1, encodeBatch([{ kind: 'member.add', publicKey: joiner.publicKey, power: 1, name: 'joiner' }]));
    m.update(reg1);
    expect(m.isMember(joiner.peerId)).toBe(true); // heard before it votes at H+2
    expect(events).toEqual([{ added: [joiner.peerId], removed: [] }]);
    m.update(reg1); // no difference, no event
    expect(events).toHaveLength(1);
    const reg2 = applyBatch(reg1, 2, encodeBatch([{ kind: 'member.remove', publicKey: ids[0]!.publicKey }]));
    m.update(reg2);
    expect(m.isMember(ids[0]!.peerId)).toBe(true); // still votes at 3
    const reg3 = applyBatch(reg2, 3, encodeBatch([]));
    m.update(reg3);
    const reg4 = applyBatch(reg3, 4, encodeBatch([]));
    m.update(reg4);
    expect(m.isMember(ids[0]!.peerId)).toBe(false);
    expect(events.at(-1)).toEqual({ added: [], removed: [ids[0]!.peerId] });
  });
});
