/**
 * The data directory's layout and the small files a CLI command reads to reach a running
 * node (runtime.json, control.token). Kept apart from node/datadir.ts, and free of zod,
 * libp2p and LevelDB, so that `fednode status` and friends start in a few tens of ms
 * (issue #15: the control client must not pull in the node). node/datadir.ts re-exports it.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
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

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

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
    if (!(await pathExists(f))) {
      throw new RuntimeError('ERR_DATADIR_NOT_INITIALISED', `data directory ${p.root} is not initialised: ${f} is missing (run \`fednode init\`)`, { dir: p.root, file: f });
    }
  }
  return p;
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

// ---------------------------------------------------------------- control token

export async function readControlToken(path: string): Promise<string> {
  await checkPrivateFile(path, 'ERR_DATADIR_NOT_INITIALISED');
  const t = (await readFile(path, 'utf8')).trim();
  if (!/^[A-Za-z0-9_-]{32,128}$/.test(t)) throw new RuntimeError('ERR_DATADIR_PERMISSIONS', `${path}: corrupt control token (delete it and run \`fednode init\` again)`, { file: path });
  return t;
}

// ---------------------------------------------------------------- runtime.json

/** What a running node writes beside its data so CLI commands can find its control API. */
export interface RuntimeFile {
  readonly pid: number;
  readonly peerId: string;
  readonly cluster: string | null;
  readonly addrs: readonly string[];
  readonly controlUrl: string;
  readonly apiUrl: string | null;
  readonly startedAt: number;
}

const RUNTIME_KEYS = ['pid', 'peerId', 'cluster', 'addrs', 'controlUrl', 'apiUrl', 'startedAt'] as const;

/** Strict shape check (no unknown keys), written by hand to keep zod off the CLI's start-up path. */
export function parseRuntimeFile(v: unknown): RuntimeFile | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => !(RUNTIME_KEYS as readonly string[]).includes(k))) return null;
  const { pid, peerId, cluster, addrs, controlUrl, apiUrl, startedAt } = o;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return null;
  if (typeof peerId !== 'string' || typeof controlUrl !== 'string') return null;
  if (cluster !== null && typeof cluster !== 'string') return null;
  if (apiUrl !== null && typeof apiUrl !== 'string') return null;
  if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === 'string')) return null;
  if (typeof startedAt !== 'number' || !Number.isInteger(startedAt)) return null;
  return { pid, peerId, cluster, addrs, controlUrl, apiUrl, startedAt };
}

/** What a running node wrote; null when no node has written one (or it is unreadable). */
export async function readRuntimeFile(path: string): Promise<RuntimeFile | null> {
  try {
    return parseRuntimeFile(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return null;
  }
}
