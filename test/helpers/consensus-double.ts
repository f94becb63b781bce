/**
 * A one-node, commit-at-once stand-in for the consensus driver, over the REAL registry
 * (consensus/registry.ts validateBatch/applyBatch), for testing the control routes' HTTP
 * mapping and admission without a network. The real driver is exercised by test/e2e/.
 */
import { toHex } from '../../base/hex.js';
import { valueIdOf } from '../../consensus/core.js';
import { encodeBatch } from '../../consensus/patterns.js';
import type { PatternOp } from '../../consensus/patterns.js';
import { applyBatch, genesisRegistry, registryHash, validateBatch } from '../../consensus/registry.js';
import type { Genesis, Registry } from '../../consensus/registry.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import type { Identity } from '../../crypto/keys.js';
import type { CommitReceipt, Consensus, DecidedEntry } from '../../node/consensus/api.js';
import { ConsensusDriverError } from '../../node/consensus/api.js';
import type { MemberChange } from '../../node/p2p/members.js';

export interface Double extends Consensus {
  submitted: PatternOp[][];
  /** 'commit' (default), or make every submit fail with this driver error code. */
  mode: 'commit' | 'timeout' | 'full';
}

export function consensusDouble(self: Identity, genesis: Genesis): Double {
  let reg: Registry = genesisRegistry(genesis);
  const log: DecidedEntry[] = [];
  const listeners = new Set<(e: DecidedEntry) => void>();
  const isMember = (p: string): boolean => reg.members.some((m) => peerIdFromPublicKey(m.publicKey) === p);
  const d: Double = {
    submitted: [],
    mode: 'commit',
    members: { isMember, members: () => reg.members.map((m) => peerIdFromPublicKey(m.publicKey)), onChange: (_l: (ev: MemberChange) => void) => () => undefined },
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    check(ops) {
      const v = validateBatch(reg, reg.height + 1, encodeBatch(ops));
      return v.ok ? { ok: true } : { ok: false, reason: v.reason, index: v.index };
    },
    submit(ops): Promise<CommitReceipt> {
      d.submitted.push([...ops]);
      if (d.mode === 'timeout') return Promise.reject(new ConsensusDriverError('ERR_SUBMIT_TIMEOUT', 'not committed within the timeout'));
      if (d.mode === 'full') return Promise.reject(new ConsensusDriverError('ERR_MEMPOOL_FULL', 'pending-op pool is full'));
      const bytes = encodeBatch(ops);
      const height = reg.height + 1;
      const v = validateBatch(reg, height, bytes);
      if (!v.ok) return Promise.reject(new ConsensusDriverError('ERR_PATTERN_REJECTED', v.reason, { reason: v.reason, index: v.index }));
      reg = applyBatch(reg, height, bytes);
      const valueId = valueIdOf(bytes);
      const e: DecidedEntry = { height, round: 0, valueId, ops: v.ops, certificate: { height, round: 0, valueId, precommits: [] }, registryHash: toHex(registryHash(reg)), decidedMs: height, startedMs: height };
      log.push(e);
      for (const l of listeners) l(e);
      return Promise.resolve({ height, round: 0, valueId, registryHash: e.registryHash, signers: [self.peerId], power: 1, totalPower: 1 });
    },
    registry: () => reg,
    entries: (from, limit) => Promise.resolve(log.filter((e) => e.height >= from).slice(0, limit)),
    evidence: () => [],
    onDecided(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    status: () => ({
      height: reg.height + 1,
      round: 0,
      step: 'propose',
      decidedHeight: reg.height,
      registryHash: toHex(registryHash(reg)),
      validators: reg.members.map((m) => peerIdFromPublicKey(m.publicKey)),
      isValidator: isMember(self.peerId),
      mempoolOps: 0,
      evidence: [],
      caughtUpHeights: 0,
      lastDecidedMs: null,
      wire: { direct: 0, withoutChannel: [], gossipFallbacks: 0 },
      storeError: null,
      work: { running: false, cause: null, pendingMembership: [] },
    }),
  };
  return d;
}
