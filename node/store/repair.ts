/**
 * The file side of `fednode repair --from-peers` (cli/commands/repair.ts runs the node between
 * `prepareRepair` and `finishRepair`):
 *   prepareRepair  the signer record: missing, unreadable, or older than the manifest's signer
 *                  floor -> moved aside and replaced by a FENCE (signs nothing at or below the
 *                  manifest's signer ceiling, the highest height this node can have signed at).
 *                  The store: missing, unopenable, recreated, foreign, or failing the replay of its
 *                  decided log -> moved aside (never deleted) and rebuilt from empty; a store that
 *                  replays but stops short of the manifest's floor is kept and catch-up goes on from it.
 *   finishRepair   once the rebuilt log has reached the floor with the manifest's registry hash: a
 *                  fence still in place is lowered to one past the cluster's decided height when
 *                  every other member was reachable (this node can have signed only at heights up to
 *                  the cluster's decided height + 1 at the time it crashed), else kept at the ceiling.
 * A fence is an ordinary signer record {height: F + 1, round 0, step 0, nothing signed}: the core
 * refuses any signature at or below its height-round-step (consensus/core.ts signAt), and never
 * moves the record down (persistLocks), so the node follows the cluster without voting until the
 * cluster is past F.
 */
import { rename } from 'node:fs/promises';
import type { SignerRecord } from '../../consensus/types.js';
import { SignerFile } from '../consensus/signer-file.js';
import { pathExists } from '../datadir.js';
import { IntegrityError } from './integrity-errors.js';
import type { IntegrityOptions } from './integrity.js';
import { openStoreChecked, RECOVERY } from './integrity.js';
import type { Store } from './index.js';
import type { StoreManifest } from './manifest.js';
import { readManifest, writeManifest } from './manifest.js';

export interface RepairPlan {
  /** Where the damaged store was moved (null: kept, or there was none). */
  readonly storeMovedTo: string | null;
  /** Where the damaged signer record was moved (null: kept, or there was none). */
  readonly signerMovedTo: string | null;
  /** The fence height F (signs nothing at or below F), null when the signer record was kept. */
  readonly fence: number | null;
  /** Why each part was replaced, one line each. */
  readonly reasons: readonly string[];
}

export function fenceRecord(height: number): SignerRecord {
  return { height: height + 1, round: 0, step: 0, signedDigest: null, signature: null, lockedRound: -1, lockedValue: null, validRound: -1, validValue: null };
}

/** Is `r` a fence record as fenceRecord writes it (not moved since)? Its F, else null. */
export function fenceOf(r: SignerRecord): number | null {
  return r.round === 0 && r.step === 0 && r.signedDigest === null && r.lockedRound === -1 && r.validRound === -1 && r.height > 0 ? r.height - 1 : null;
}

function aside(path: string, nowMs: number): string {
  return `${path}.damaged-${new Date(nowMs).toISOString().replace(/[:.]/g, '-')}`;
}

export interface PrepareRepairOptions extends Omit<IntegrityOptions, 'mode'> {
  readonly manifest: StoreManifest | null;
  /** Replay the decided log of `store` (the driver's open, without starting it); throws on damage. */
  readonly replay: (store: Store) => Promise<void>;
}

export async function prepareRepair(o: PrepareRepairOptions): Promise<RepairPlan> {
  const m = o.manifest;
  const reasons: string[] = [];
  // 1. The signer record first: the replay below loads it too.
  const signerFile = new SignerFile(o.stateDir);
  let problem: string | null = null;
  try {
    const s = await signerFile.load();
    if (s === null && m !== null && m.signerHeight > 0) problem = 'missing';
    else if (s !== null && m !== null && s.record.height < m.signerHeight) problem = `at height ${s.record.height}, below the manifest's ${m.signerHeight}`;
  } catch (e) {
    problem = `unreadable: ${(e as Error).message.split('. ')[0] ?? ''}`;
  }
  let signerMovedTo: string | null = null;
  let fence: number | null = null;
  if (problem !== null) {
    if (m === null) {
      throw new IntegrityError('ERR_REPAIR_FAILED', `signer record ${signerFile.path} is ${problem} and there is no store manifest to say what this node signed: it cannot be fenced safely. Restore the file from a backup, or create a new node (new identity) and remove this one from the cluster.`, { file: signerFile.path });
    }
    if (await pathExists(signerFile.path)) {
      signerMovedTo = aside(signerFile.path, o.now());
      await rename(signerFile.path, signerMovedTo);
    }
    fence = m.signerCeiling;
    await signerFile.write({ record: fenceRecord(fence), own: [] });
    await signerFile.close();
    reasons.push(`signer record ${problem}: fenced, signs nothing at or below height ${fence}`);
  }
  // 2. The store.
  let storeMovedTo: string | null = null;
  if (await pathExists(o.storePath)) {
    let damage: string | null = null;
    let opened: Store | null = null;
    try {
      opened = (await openStoreChecked({ ...o, mode: 'verify' })).store;
      await o.replay(opened);
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ERR_STORE_LOCKED' || (e as { code?: unknown }).code === 'ERR_MANIFEST_CORRUPT') throw e;
      damage = (e as Error).message.split('. ')[0] ?? String(e);
    } finally {
      await opened?.close();
    }
    if (damage !== null) {
      storeMovedTo = aside(o.storePath, o.now());
      await rename(o.storePath, storeMovedTo);
      reasons.push(`store damaged (${damage}): moved aside, rebuilt from the cluster`);
    } else {
      reasons.push('store opens and replays: kept, catch-up continues from it');
    }
  } else {
    reasons.push('store missing: rebuilt from the cluster');
  }
  return { storeMovedTo, signerMovedTo, fence, reasons };
}

/**
 * After the node stopped: lower a fence still in place to min(ceiling, clusterDecided + 1) when
 * every other member was reachable at the end. Returns the fence in force (null: none).
 */
export async function finishRepair(o: { stateDir: string; manifestPath: string; clusterDecided: number; allMembersReached: boolean; now: () => number }): Promise<number | null> {
  const f = new SignerFile(o.stateDir);
  const s = await f.load();
  const current = s === null ? null : fenceOf(s.record);
  if (current === null) return null;
  const lowered = o.allMembersReached ? Math.min(current, o.clusterDecided + 1) : current;
  if (lowered < current) {
    // The manifest's signer floor followed the fence record up while the repair ran; it comes
    // down with it first (a crash between the two writes leaves a floor below the record: valid).
    const m = await readManifest(o.manifestPath);
    const record = fenceRecord(lowered);
    if (m !== null && m.signerHeight > record.height) await writeManifest(o.manifestPath, { ...m, signerHeight: record.height, writtenMs: Math.max(0, Math.floor(o.now())) });
    await f.write({ record, own: [] });
    await f.close();
  }
  return lowered;
}

export function repairFailed(message: string, data: Record<string, unknown> = {}): IntegrityError {
  return new IntegrityError('ERR_REPAIR_FAILED', `${message} Nothing was deleted; rerun \`${RECOVERY}\` when the cluster is reachable.`, { recovery: RECOVERY, ...data });
}
