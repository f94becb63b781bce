/**
 * The data directory: where a node keeps its identity, config, cluster settings,
 * pre-shared key, control token, store and lock. Layout and modes are listed in
 * node/runtime/README.md. Every failure is a RuntimeError naming the file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink, readdir } from 'node:fs/promises';
import { writeFileDurable } from '../base/durable-write.js';
import { z } from 'zod';
import { parseJsonFile } from './config.js';
import { RuntimeError } from './runtime/errors.js';
import { acquireLock as acquireLockFile, type DataDirLock } from './datadir-lock.js';
import { errnoCode } from '../base/errors.js';
import { checkPrivateFile, dataDirPaths, type DataDirPaths, type RuntimeFile } from './datadir-files.js';

export { DATA_DIR_ENV, dataDirPaths, resolveDataDir, checkPrivateFile, checkInitialised, readControlToken, readRuntimeFile, parseRuntimeFile, pathExists } from './datadir-files.js';
export type { DataDirPaths, RuntimeFile } from './datadir-files.js';

// ---------------------------------------------------------------- small files

/**
 * Write atomically and durably: base/durable-write.ts (temp file, fsync, rename, fsync the
 * directory; a failed directory fsync is an error, DurableWriteError ERR_DURABLE_WRITE).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await writeFileDurable(path, data, { mode });
}


// ---------------------------------------------------------------- cluster.json

const hex = (len: number) => z.string().regex(new RegExp(`^[0-9a-f]{${len}}$`), `expected ${len} lowercase hex characters`);

export const memberSchema = z.strictObject({
  peerId: z.string().min(1).max(128),
  publicKey: hex(64),
});
export type GenesisMember = z.output<typeof memberSchema>;

export const clusterIdPattern = /^fc[0-9a-f]{24}$/;

export const clusterFileSchema = z.strictObject({
  version: z.literal(1),
  id: z.string().regex(clusterIdPattern, 'expected a cluster id such as fc0123456789abcdef01234567'),
  createdAt: z.number().int().nonnegative(),
  /** The genesis member list (bounded: a home lab, not a public network). */
  genesis: z.array(memberSchema).min(1).max(1024),
  /** The invite token this node joined with (base64url), null for the founder. */
  joinedWith: z.string().max(16_384).nullable(),
});
export type ClusterFile = z.output<typeof clusterFileSchema>;

export function newClusterId(): string {
  return 'fc' + randomBytes(12).toString('hex');
}

export async function readClusterFile(path: string): Promise<ClusterFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new RuntimeError('ERR_CLUSTER_MISSING', `${path}: this node belongs to no cluster (run \`fednode init --new-cluster\` or \`fednode join <token>\`)`, { file: path });
    }
    throw e;
  }
  let json: unknown;
  try {
    json = parseJsonFile(text, path);
  } catch (e) {
    throw new RuntimeError('ERR_CLUSTER_CORRUPT', e instanceof Error ? e.message : String(e), { file: path }, { cause: e });
  }
  const r = clusterFileSchema.safeParse(json);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`);
    throw new RuntimeError('ERR_CLUSTER_CORRUPT', `${path}: corrupt cluster file: ${problems.join('; ')}`, { file: path, problems });
  }
  return r.data;
}

export async function writeClusterFile(path: string, c: ClusterFile): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(clusterFileSchema.parse(c), null, 2) + '\n');
}

// ---------------------------------------------------------------- swarm.key (libp2p pnet)

export const PSK_BYTES = 32;
const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';

export function encodeSwarmKey(psk: Uint8Array): string {
  if (psk.length !== PSK_BYTES) throw new RuntimeError('ERR_SWARM_KEY_CORRUPT', `pre-shared key must be ${PSK_BYTES} bytes, got ${psk.length}`);
  return SWARM_KEY_HEADER + Buffer.from(psk).toString('hex');
}

/** The 32 raw PSK bytes plus the file form @libp2p/pnet's preSharedKey({ psk }) expects. */
export interface SwarmKey {
  readonly raw: Uint8Array;
  readonly file: Uint8Array;
}

export function decodeSwarmKey(text: string, path: string): SwarmKey {
  const m = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n([0-9a-f]{64})\s*$/.exec(text);
  if (m?.[1] === undefined) {
    throw new RuntimeError('ERR_SWARM_KEY_CORRUPT', `${path}: not a libp2p swarm key (expected "/key/swarm/psk/1.0.0/", "/base16/", 64 hex characters)`, { file: path });
  }
  const raw = new Uint8Array(Buffer.from(m[1], 'hex'));
  return { raw, file: new TextEncoder().encode(SWARM_KEY_HEADER + m[1]) };
}

export async function readSwarmKey(path: string): Promise<SwarmKey> {
  await checkPrivateFile(path, 'ERR_CLUSTER_MISSING');
  return decodeSwarmKey(await readFile(path, 'utf8'), path);
}

// ---------------------------------------------------------------- control token

export function newControlToken(): string {
  return randomBytes(32).toString('base64url');
}

// ---------------------------------------------------------------- existence checks


/** `init` refuses a directory that already holds a node (it would replace its identity). */
export async function ensureEmptyForInit(root: string): Promise<DataDirPaths> {
  const p = dataDirPaths(root);
  await mkdir(p.root, { recursive: true, mode: 0o700 });
  const entries = await readdir(p.root);
  const taken = entries.filter((e) => ['identity.key', 'config.json', 'cluster.json', 'swarm.key', 'store'].includes(e));
  if (taken.length > 0) {
    throw new RuntimeError('ERR_DATADIR_EXISTS', `data directory ${p.root} is already initialised (found ${taken.join(', ')}); use another --data-dir or remove it`, { dir: p.root, found: taken });
  }
  return p;
}

// ---------------------------------------------------------------- lock

export type { DataDirLock } from './datadir-lock.js';

/** One node per data directory (node/datadir-lock.ts says when a lock is stale and taken over). */
export function acquireLock(root: string): Promise<DataDirLock> {
  return acquireLockFile(dataDirPaths(root).root, dataDirPaths(root).lock);
}

// ---------------------------------------------------------------- runtime.json

export async function writeRuntimeFile(path: string, r: RuntimeFile): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(r) + '\n');
}

export async function removeRuntimeFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

