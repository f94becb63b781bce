/**
 * The data directory: where a node keeps its identity, config, cluster settings,
 * pre-shared key, control token, store and lock. Layout and modes are listed in
 * node/runtime/README.md. Every failure is a RuntimeError naming the file.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, stat, unlink, readdir } from 'node:fs/promises';
import { writeFileDurable } from '../base/durable-write.js';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { parseJsonFile } from './config.js';
import { RuntimeError } from './runtime/errors.js';
import { errnoCode } from '../base/errors.js';

export const DATA_DIR_ENV = 'FEDNODE_DATA_DIR';

export interface DataDirPaths {
  readonly root: string;
  readonly identity: string;
  readonly config: string;
  readonly cluster: string;
  readonly swarmKey: string;
  readonly controlToken: string;
  readonly store: string;
  readonly lock: string;
  readonly runtime: string;
}

export function dataDirPaths(root: string): DataDirPaths {
  const r = resolve(root);
  return {
    root: r,
    identity: join(r, 'identity.key'),
    config: join(r, 'config.json'),
    cluster: join(r, 'cluster.json'),
    swarmKey: join(r, 'swarm.key'),
    controlToken: join(r, 'control.token'),
    store: join(r, 'store'),
    lock: join(r, 'node.lock'),
    runtime: join(r, 'runtime.json'),
  };
}

/** `--data-dir` beats `FEDNODE_DATA_DIR` beats `~/.fednode`. */
export function resolveDataDir(opts: { flag?: string | undefined; env?: NodeJS.ProcessEnv; home?: string } = {}): string {
  if (opts.flag !== undefined && opts.flag !== '') return resolve(opts.flag);
  const env = (opts.env ?? process.env)[DATA_DIR_ENV];
  if (env !== undefined && env !== '') return resolve(env);
  return join(opts.home ?? homedir(), '.fednode');
}

// ---------------------------------------------------------------- small files

/**
 * Write atomically and durably: base/durable-write.ts (temp file, fsync, rename, fsync the
 * directory; a failed directory fsync is an error, DurableWriteError ERR_DURABLE_WRITE).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await writeFileDurable(path, data, { mode });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
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

export async function readControlToken(path: string): Promise<string> {
  await checkPrivateFile(path, 'ERR_DATADIR_NOT_INITIALISED');
  const t = (await readFile(path, 'utf8')).trim();
  if (!/^[A-Za-z0-9_-]{32,128}$/.test(t)) throw new RuntimeError('ERR_DATADIR_PERMISSIONS', `${path}: corrupt control token (delete it and run \`fednode init\` again)`, { file: path });
  return t;
}

/** Secrets must not be readable by group or others. */
export async function checkPrivateFile(path: string, missingCode: 'ERR_CLUSTER_MISSING' | 'ERR_DATADIR_NOT_INITIALISED'): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new RuntimeError(missingCode, `${path}: missing`, { file: path });
    throw e;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new RuntimeError('ERR_DATADIR_PERMISSIONS', `${path}: readable by other users (mode ${(st.mode & 0o777).toString(8)}); fix with: chmod 600 ${path}`, { file: path, mode: st.mode & 0o777 });
  }
}

// ---------------------------------------------------------------- existence checks

/** Checks the directory exists and has what `start` needs; says what to run otherwise. */
export async function checkInitialised(root: string): Promise<DataDirPaths> {
  const p = dataDirPaths(root);
  let st;
  try {
    st = await stat(p.root);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new RuntimeError('ERR_DATADIR_MISSING', `data directory ${p.root} does not exist (run \`fednode init --new-cluster\` or \`fednode join <token>\`)`, { dir: p.root });
    throw e;
  }
  if (!st.isDirectory()) throw new RuntimeError('ERR_DATADIR_MISSING', `${p.root} is not a directory`, { dir: p.root });
  for (const f of [p.identity, p.config, p.controlToken]) {
    if (!(await exists(f))) {
      throw new RuntimeError('ERR_DATADIR_NOT_INITIALISED', `data directory ${p.root} is not initialised: ${f} is missing (run \`fednode init\`)`, { dir: p.root, file: f });
    }
  }
  return p;
}

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

export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * One node per data directory: `node.lock` is created with O_EXCL and holds the
 * owner's pid. A lock whose pid is dead (kill -9) is taken over. LevelDB's own
 * LOCK is a second guard in node/store.
 */
export async function acquireLock(root: string): Promise<DataDirLock> {
  const path = dataDirPaths(root).lock;
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(mine);
        await fh.sync();
      } finally {
        await fh.close();
      }
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          try {
            if ((await readFile(path, 'utf8')) === mine) await unlink(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue; // released meanwhile: try again
      throw e;
    }
    const pid = Number.parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new RuntimeError('ERR_DATADIR_LOCKED', `data directory ${dirname(path)} is in use by another fednode (pid ${pid}); stop it first, or if no node runs, remove ${path}`, { dir: dirname(path), pid, file: path });
    }
    await unlink(path).catch(() => undefined); // stale (dead pid or garbage): take over
  }
  throw new RuntimeError('ERR_DATADIR_LOCKED', `could not take the lock ${path} (contended)`, { file: path });
}

// ---------------------------------------------------------------- runtime.json

export const runtimeFileSchema = z.strictObject({
  pid: z.number().int().positive(),
  peerId: z.string(),
  cluster: z.string().nullable(),
  addrs: z.array(z.string()),
  controlUrl: z.string(),
  apiUrl: z.string().nullable(),
  startedAt: z.number().int(),
});
export type RuntimeFile = z.output<typeof runtimeFileSchema>;

export async function writeRuntimeFile(path: string, r: RuntimeFile): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(r) + '\n');
}

/** What a running node wrote; null when no node has written one (or it is unreadable). */
export async function readRuntimeFile(path: string): Promise<RuntimeFile | null> {
  try {
    const r = runtimeFileSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export async function removeRuntimeFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

export { exists as pathExists };
