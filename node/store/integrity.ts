/**
 * Start-up integrity of the store and the signer record against the store manifest (manifest.ts).
 * Two steps around the consensus replay (node/runtime/node.ts):
 *   1. openStoreChecked   read the manifest, open LevelDB WITHOUT creating it when a manifest
 *                         exists (a missing directory or CURRENT file is an error, not a new store),
 *                         check the store id, guard the store against corruption while running.
 *   2. verifyOpened       after the decided log has been replayed (and verified height by height by
 *                         the driver): the store reaches the manifest's floor with the same registry
 *                         hash, and the signer record is at least the manifest's signer height.
 * Every failure is an IntegrityError (exit 5) naming the file and `fednode repair --from-peers`.
 * Mode `repair` (the repair command) accepts a store below the floor or freshly created (it is
 * being rebuilt by catch-up) and the fenced signer record it wrote.
 * A data directory without a manifest and a store without a store id is one from before the
 * manifest (or a fresh one): the manifest is created from what the store holds, with a log line.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists } from '../datadir.js';
import type { Logger } from '../log.js';
import { SignerFile } from '../consensus/signer-file.js';
import type { Consensus } from '../consensus/api.js';
import { guardStore, isLevelCorruption } from './guard.js';
import { IntegrityError } from './integrity-errors.js';
import { openStore } from './index.js';
import type { Store } from './index.js';
import { ManifestKeeper } from './manifest-keeper.js';
import { manifestPath, MANIFEST_VERSION, readManifest, SIGNER_CEILING_BLOCK, writeManifest } from './manifest.js';
import type { StoreManifest } from './manifest.js';
import { RuntimeError } from '../runtime/errors.js';

export const RECOVERY = 'fednode repair --from-peers';
const STORE_ID_KEY = 'storeId';
const enc = new TextEncoder();
const dec = new TextDecoder();

export type IntegrityMode = 'verify' | 'repair';

export interface IntegrityOptions {
  readonly dataDir: string;
  readonly storePath: string;
  /** Directory of the signer record (consensus/). */
  readonly stateDir: string;
  readonly cluster: string;
  readonly node: string;
  readonly mode: IntegrityMode;
  readonly logger: Logger;
  readonly now: () => number;
  /** LevelDB reported corruption while running (the node stops). */
  readonly onCorrupt: (err: IntegrityError) => void;
}

export interface OpenedStore {
  readonly store: Store;
  readonly manifest: StoreManifest | null;
  readonly storeId: string;
  /** The store's write-ahead logs BEFORE LevelDB opened it (opening replays and replaces them). */
  readonly logsBefore: readonly string[];
}

function storeError(o: IntegrityOptions, file: string, what: string, data: Record<string, unknown> = {}, cause?: unknown): IntegrityError {
  return new IntegrityError(
    'ERR_STORE_INTEGRITY',
    `store ${file}: ${what}. The store is never reset silently. To fix: \`${RECOVERY} --data-dir ${o.dataDir}\` (rebuilds the decided log by verified catch-up from live members; the damaged store is kept aside), or restore the data directory from a backup.`,
    { file, recovery: RECOVERY, ...data },
    cause !== undefined ? { cause } : undefined,
  );
}

/** The LevelDB write-ahead logs of a store directory (named in errors about lost heights). */
async function logFiles(storePath: string): Promise<string[]> {
  try {
    return (await readdir(storePath)).filter((f) => f.endsWith('.log') && f !== 'LOG').sort().map((f) => join(storePath, f));
  } catch {
    return [];
  }
}

export async function openStoreChecked(o: IntegrityOptions): Promise<OpenedStore> {
  const mPath = manifestPath(o.dataDir);
  const manifest = await readManifest(mPath);
  if (manifest !== null && (manifest.cluster !== o.cluster || manifest.node !== o.node)) {
    throw new IntegrityError(
      'ERR_MANIFEST_CORRUPT',
      `store manifest ${mPath} belongs to node ${manifest.node} of cluster ${manifest.cluster}, this data directory is node ${o.node} of cluster ${o.cluster} (copied from another node?). To fix: restore this node's own data directory, or \`${RECOVERY}\`.`,
      { file: mPath, recovery: RECOVERY },
    );
  }
  const exists = await pathExists(o.storePath);
  if (manifest !== null && !exists && o.mode === 'verify') {
    throw storeError(o, o.storePath, `the store directory is missing, but the manifest ${mPath} records decided height ${manifest.decided.height}`, { decidedFloor: manifest.decided.height });
  }
  const logsBefore = await logFiles(o.storePath);
  let raw: Store;
  try {
    raw = await openStore(o.storePath, { createIfMissing: manifest === null || o.mode === 'repair' });
  } catch (e) {
    if (manifest === null || (e instanceof RuntimeError && e.code === 'ERR_STORE_LOCKED')) throw e;
    const current = join(o.storePath, 'CURRENT');
    const file = (await pathExists(current)) ? o.storePath : current;
    throw storeError(o, file, `LevelDB cannot open it (${(e as Error).message})`, {}, e);
  }
  const store = guardStore(raw, (err, where) => {
    o.onCorrupt(
      new IntegrityError(
        'ERR_STORE_CORRUPT_RUNNING',
        `store ${o.storePath}: LevelDB reports corruption while running (${where}: ${(err as Error).message}); the node stops rather than go on from a partial state. To fix: \`${RECOVERY} --data-dir ${o.dataDir}\`.`,
        { file: o.storePath, where, recovery: RECOVERY },
        { cause: err },
      ),
    );
  });
  try {
    const meta = store.section('meta');
    const idBytes = await meta.get(STORE_ID_KEY);
    const have = idBytes === undefined ? null : dec.decode(idBytes);
    let storeId: string;
    if (manifest !== null) {
      if (have !== manifest.storeId) {
        if (o.mode !== 'repair' || have !== null) {
          throw storeError(o, o.storePath, have === null ? `it carries no store id: it was recreated (after a missing CURRENT or MANIFEST file?) and is not the store ${mPath} describes` : `its store id ${have} is not the manifest's ${manifest.storeId}: another store`, { storeId: have, manifestStoreId: manifest.storeId });
        }
        await meta.put(STORE_ID_KEY, enc.encode(manifest.storeId), { sync: true }); // repair: the rebuilt store takes the manifest's id
      }
      storeId = manifest.storeId;
    } else {
      if (have !== null) {
        throw new IntegrityError(
          'ERR_MANIFEST_CORRUPT',
          `store manifest ${mPath} is missing, but the store ${o.storePath} was written with one (store id ${have}): without it the store cannot be checked. To fix: restore ${mPath} from a backup, or \`${RECOVERY}\` (which needs the manifest to know what this node signed: without it, re-create the node).`,
          { file: mPath, recovery: RECOVERY },
        );
      }
      storeId = randomBytes(16).toString('hex');
      await meta.put(STORE_ID_KEY, enc.encode(storeId), { sync: true });
    }
    return { store, manifest, storeId, logsBefore };
  } catch (e) {
    await raw.close();
    throw e;
  }
}

/** Turn a replay failure of the decided log or the signer file into an error naming the recovery. */
export function replayError(o: IntegrityOptions, e: unknown): unknown {
  if (isLevelCorruption(e)) return storeError(o, o.storePath, `LevelDB reports corruption while replaying the decided log (${(e as Error).message})`, {}, e);
  if (!(e instanceof Error) || !('code' in e) || e.code !== 'ERR_CONSENSUS_STATE_CORRUPT') return e;
  const path = (e as { data?: { path?: unknown } }).data?.path;
  const file = typeof path === 'string' ? path.replace(/ \(section consensus\)$/, '') : o.storePath;
  const signer = typeof path === 'string' && path.endsWith('.cbor');
  return new IntegrityError(
    signer ? 'ERR_SIGNER_INTEGRITY' : 'ERR_STORE_INTEGRITY',
    `${e.message} Or: \`${RECOVERY} --data-dir ${o.dataDir}\` (keeps the damaged file aside${signer ? ', fences the signer at the highest height it may have signed' : ''}).`,
    { file, recovery: RECOVERY },
    { cause: e },
  );
}

export interface VerifiedStore {
  readonly keeper: ManifestKeeper;
  /** Heights the store is below the manifest's floor (repair mode; 0 when level). */
  readonly missingHeights: number;
}

/** Step 2: the replayed store and the signer record against the manifest; starts the keeper. */
export async function verifyOpened(o: IntegrityOptions, opened: OpenedStore, consensus: Consensus): Promise<VerifiedStore> {
  const m = opened.manifest;
  const mPath = manifestPath(o.dataDir);
  const decided = consensus.status().decidedHeight;
  if (m !== null && m.decided.height > 0) {
    if (decided < m.decided.height) {
      if (o.mode === 'verify') {
        const logs = opened.logsBefore;
        throw storeError(o, logs.at(-1) ?? o.storePath, `it ends at decided height ${decided}, but the manifest ${mPath} records height ${m.decided.height}: heights were lost (a truncated or damaged write-ahead log: ${logs.length > 0 ? logs.join(', ') : 'none found'}; LevelDB dropped what it could not read when it opened the store)`, { decided, decidedFloor: m.decided.height, logFiles: logs });
      }
    } else {
      const [e] = await consensus.entries(m.decided.height, 1);
      if (e?.height !== m.decided.height || e.registryHash !== m.decided.registryHash) {
        throw storeError(o, o.storePath, `its registry hash at height ${m.decided.height} is ${e?.registryHash ?? '(none)'}, the manifest ${mPath} records ${m.decided.registryHash}: the store holds another history`, { height: m.decided.height });
      }
    }
  }
  const signerFile = new SignerFile(o.stateDir);
  const signer = await signerFile.load();
  if (m !== null && m.signerHeight > 0 && (signer === null || signer.record.height < m.signerHeight)) {
    throw new IntegrityError(
      'ERR_SIGNER_INTEGRITY',
      `signer record ${signerFile.path} is ${signer === null ? 'missing' : `at height ${signer.record.height}`}, but the manifest ${mPath} records that this node signed at height ${m.signerHeight}: a validator that forgets what it signed could double-sign. ` +
        `To fix: restore the file from a backup, or \`${RECOVERY} --data-dir ${o.dataDir}\` (fences the signer so it signs nothing at or below height ${m.signerCeiling}).`,
      { file: signerFile.path, recovery: RECOVERY, signerHeight: m.signerHeight, signerCeiling: m.signerCeiling },
    );
  }
  const status = consensus.status();
  const onDisk = async (): Promise<number> => (await signerFile.load().catch(() => null))?.record.height ?? 0;
  const initial: StoreManifest =
    m ??
    ({
      v: MANIFEST_VERSION,
      cluster: o.cluster,
      node: o.node,
      storeId: opened.storeId,
      decided: { height: status.decidedHeight, registryHash: status.decidedHeight > 0 ? status.registryHash : '' },
      signerHeight: signer?.record.height ?? 0,
      // A node from before the manifest may have signed one height past its log: reserve from there.
      signerCeiling: Math.max(signer?.record.height ?? 0, status.decidedHeight + 1) + SIGNER_CEILING_BLOCK,
      writtenMs: Math.max(0, Math.floor(o.now())),
    } satisfies StoreManifest);
  if (m === null) {
    await writeManifest(mPath, initial);
    o.logger.info('store manifest created from the store', { file: mPath, decidedHeight: initial.decided.height, signerHeight: initial.signerHeight });
  }
  const keeper = new ManifestKeeper({ path: mPath, initial, signerHeightOnDisk: onDisk, logger: o.logger, now: o.now });
  consensus.onDecided((e) => keeper.decided(e.height, e.registryHash));
  keeper.decided(status.decidedHeight, status.registryHash);
  return { keeper, missingHeights: m !== null ? Math.max(0, m.decided.height - decided) : 0 };
}
