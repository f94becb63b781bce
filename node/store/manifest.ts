/**
 * The store manifest: a small JSON file BESIDE the LevelDB directory (`<data dir>/store-manifest.json`,
 * so `rm -rf store` cannot take it along) that says what the store and the signer record must at
 * least hold. Written with the durable write (tmp, fsync, rename, fsync dir: node/datadir.ts
 * writeFileAtomic), so a crash leaves the old or the new file, never a torn one.
 *
 *   v              format version (MANIFEST_VERSION)
 *   cluster, node  the cluster id and this node's peer id (a data directory copied from another
 *                  node, or a store from another cluster, is refused)
 *   storeId        random id also kept in the store's `meta` section: a different or recreated
 *                  store (LevelDB rebuilt after `rm store/CURRENT`) does not carry it
 *   decided        {height, registryHash}: a FLOOR. The store must hold every height up to it, and
 *                  its entry at that height must carry that registry hash.
 *   signerHeight   a FLOOR: the signer record (consensus/consensus-signer.cbor) must be at least here.
 *   signerCeiling  a CEILING: this node has signed at no height above it. The signer reserves heights
 *                  in blocks (SIGNER_CEILING_BLOCK) and never signs above the ceiling before the
 *                  manifest saying so is durable, so after the signer record is lost, a fence at the
 *                  ceiling is known to cover everything the node ever signed.
 *
 * Crash semantics (why a floor and not the exact height): the decided log and the signer record
 * are made durable first, by their own writers, on the critical path; the manifest follows them,
 * batched (at most once per MANIFEST_FLUSH_MS, off the critical path) and only with values that
 * are already durable. So at every instant manifest.decided <= store and manifest.signerHeight <=
 * signer record: a kill -9 at any point, manifest write included, leaves a store that passes.
 * What the floor cannot see is damage confined to the heights decided in the last flush window
 * before the damage (at most MANIFEST_FLUSH_MS of decisions); those are refetched by catch-up
 * like any height decided while the node was down. The ceiling is the opposite bound and is
 * written BEFORE the signature it allows, which costs one extra fsync per SIGNER_CEILING_BLOCK
 * heights, and usually none on the critical path (it is advanced ahead of need).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../datadir.js';
import { IntegrityError } from './integrity-errors.js';

export const MANIFEST_FILE_NAME = 'store-manifest.json';
export const MANIFEST_VERSION = 1;
/** A manifest is ~400 bytes; anything past 64 KiB is not one (bounded read). */
const MANIFEST_MAX_BYTES = 64 * 1024;
/**
 * Batching of floor advances: at most one manifest write per second (one fsync of a small file
 * plus one of the directory), against one LevelDB fsync per decided height.
 */
export const MANIFEST_FLUSH_MS = 1_000;
/**
 * Heights reserved per ceiling advance: 64 heights (a minute of busy consensus) per extra
 * fsync; the advance starts when half of the block is used, so it is rarely awaited.
 */
export const SIGNER_CEILING_BLOCK = 64;

export interface StoreManifest {
  readonly v: typeof MANIFEST_VERSION;
  readonly cluster: string;
  readonly node: string;
  readonly storeId: string;
  readonly decided: { readonly height: number; readonly registryHash: string };
  readonly signerHeight: number;
  readonly signerCeiling: number;
  readonly writtenMs: number;
}

export function manifestPath(dataDir: string): string {
  return join(dataDir, MANIFEST_FILE_NAME);
}

const isHeight = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const HEX64 = /^[0-9a-f]{64}$/;
const STORE_ID = /^[0-9a-f]{32}$/;

function damaged(path: string, reason: string): IntegrityError {
  return new IntegrityError(
    'ERR_MANIFEST_CORRUPT',
    `store manifest ${path} is damaged (${reason}). It records what the store and the signer record must hold, so it is never recreated silently. ` +
      `To fix: restore it from a backup of this data directory, or run \`fednode repair --from-peers\` (rebuilds the store from the cluster and fences the signer).`,
    { file: path, reason, recovery: 'fednode repair --from-peers' },
  );
}

/** Strict parse; every field checked. */
export function parseManifest(path: string, text: string): StoreManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw damaged(path, `not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw damaged(path, 'not a JSON object');
  const r = raw as Record<string, unknown>;
  const keys = ['v', 'cluster', 'node', 'storeId', 'decided', 'signerHeight', 'signerCeiling', 'writtenMs'];
  for (const k of Object.keys(r)) if (!keys.includes(k)) throw damaged(path, `unknown field '${k}'`);
  if (r['v'] !== MANIFEST_VERSION) throw damaged(path, `version ${JSON.stringify(r['v'])}, this fednode reads ${MANIFEST_VERSION}`);
  for (const k of ['cluster', 'node'] as const) if (typeof r[k] !== 'string' || r[k] === '' || r[k].length > 256) throw damaged(path, `'${k}' is not a non-empty string`);
  if (typeof r['storeId'] !== 'string' || !STORE_ID.test(r['storeId'])) throw damaged(path, "'storeId' is not 32 hex characters");
  const d = r['decided'];
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw damaged(path, "'decided' is not an object");
  const dh = (d as Record<string, unknown>)['height'];
  const hash = (d as Record<string, unknown>)['registryHash'];
  if (!isHeight(dh)) throw damaged(path, "'decided.height' is not a height");
  if (typeof hash !== 'string' || !(HEX64.test(hash) || (dh === 0 && hash === ''))) throw damaged(path, "'decided.registryHash' is not 64 hex characters");
  if (!isHeight(r['signerHeight'])) throw damaged(path, "'signerHeight' is not a height");
  if (!isHeight(r['signerCeiling']) || r['signerCeiling'] < r['signerHeight']) throw damaged(path, "'signerCeiling' is not a height at or above signerHeight");
  if (!isHeight(r['writtenMs'])) throw damaged(path, "'writtenMs' is not a time");
  return {
    v: MANIFEST_VERSION,
    cluster: r['cluster'] as string,
    node: r['node'] as string,
    storeId: r['storeId'],
    decided: { height: dh, registryHash: hash },
    signerHeight: r['signerHeight'],
    signerCeiling: r['signerCeiling'],
    writtenMs: r['writtenMs'],
  };
}

/** The manifest, or null when the file does not exist. A damaged file throws ERR_MANIFEST_CORRUPT. */
export async function readManifest(path: string): Promise<StoreManifest | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw damaged(path, `cannot be read: ${(e as Error).message}`);
  }
  if (bytes.length > MANIFEST_MAX_BYTES) throw damaged(path, `${bytes.length} bytes, more than ${MANIFEST_MAX_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw damaged(path, 'not UTF-8');
  }
  return parseManifest(path, text);
}

/** Durable write (tmp, fsync, rename, fsync dir), mode 0600. */
export async function writeManifest(path: string, m: StoreManifest): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(m, null, 2) + '\n');
}
