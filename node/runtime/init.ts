/**
 * `fednode init [--new-cluster]` and `fednode join <token>`: create a data directory.
 * The order of writes makes a half-done init detectable: the config file, whose
 * presence marks the directory initialised, is written last.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Identity } from '../../crypto/keys.js';
import { generateIdentity, loadIdentity, saveIdentity } from '../../crypto/keys.js';
import type { FednodeConfig, FednodeConfigInput } from '../config.js';
import { loadConfig, renderConfig, validateConfig } from '../config.js';
import type { ClusterFile, DataDirPaths } from '../datadir.js';
import { dataDirPaths, encodeSwarmKey, ensureEmptyForInit, pathExists, newClusterId, newControlToken, PSK_BYTES, writeClusterFile, writeFileAtomic } from '../datadir.js';
import { openStore } from '../store/index.js';
import { parseInviteToken } from './invite.js';

export interface InitOptions {
  dir: string;
  /** Create a new cluster with this node as its first member. */
  newCluster: boolean;
  /** Config fields to set (validated like the file). */
  config?: FednodeConfigInput;
  nowMs: number;
  /** For tests/simnet: a fixed identity. */
  identity?: Identity;
}

export interface InitResult {
  paths: DataDirPaths;
  peerId: string;
  cluster: string | null;
  config: FednodeConfig;
}

async function writeCommon(paths: DataDirPaths, identity: Identity, config: FednodeConfig): Promise<void> {
  await saveIdentity(paths.identity, identity);
  await writeFileAtomic(paths.controlToken, newControlToken() + '\n');
  const store = await openStore(paths.store);
  await store.close();
  await writeFileAtomic(paths.config, renderConfig(config)); // last: marks the directory initialised
}

export async function initDataDir(o: InitOptions): Promise<InitResult> {
  const config = validateConfig(o.config ?? {}, '(init options)');
  const paths = await ensureEmptyForInit(o.dir);
  const identity = o.identity ?? generateIdentity();
  let cluster: string | null = null;
  if (o.newCluster) {
    cluster = newClusterId();
    const file: ClusterFile = {
      version: 1,
      id: cluster,
      createdAt: o.nowMs,
      genesis: [{ peerId: identity.peerId, publicKey: Buffer.from(identity.publicKey).toString('hex') }],
      joinedWith: null,
    };
    await writeFileAtomic(paths.swarmKey, encodeSwarmKey(new Uint8Array(randomBytes(PSK_BYTES))));
    await writeClusterFile(paths.cluster, file);
  }
  await writeCommon(paths, identity, config);
  return { paths, peerId: identity.peerId, cluster, config };
}

export interface JoinOptions {
  dir: string;
  token: string;
  config?: FednodeConfigInput;
  nowMs: number;
  identity?: Identity;
}

/** Check the token (before touching the disk), then init with the cluster's settings and bootstrap addresses. */
export async function joinDataDir(o: JoinOptions): Promise<InitResult & { issuer: string; bootstrap: readonly string[] }> {
  const token = parseInviteToken(o.token, o.nowMs);
  const existing = dataDirPaths(o.dir);
  // A node made by plain `init` (identity, no cluster) keeps its identity and config.
  const reuse = (await pathExists(existing.identity)) && (await pathExists(existing.config)) && !(await pathExists(existing.cluster));
  const prior: FednodeConfigInput = reuse ? await loadConfig(existing.config) : {};
  const base = validateConfig({ ...prior, ...(o.config ?? {}) }, '(join options)');
  const bootstrap = [...new Set([...base.bootstrap, ...token.bootstrap])];
  const config = validateConfig({ ...base, bootstrap }, '(join options)');
  const paths = reuse ? existing : await ensureEmptyForInit(o.dir);
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  const identity = reuse ? await loadIdentity(paths.identity) : (o.identity ?? generateIdentity());
  await writeFileAtomic(paths.swarmKey, encodeSwarmKey(token.psk));
  await writeClusterFile(paths.cluster, {
    version: 1,
    id: token.cluster,
    createdAt: token.issuedMs,
    genesis: [...token.genesis],
    joinedWith: o.token.trim(),
  });
  if (reuse) await writeFileAtomic(paths.config, renderConfig(config));
  else await writeCommon(paths, identity, config);
  return { paths, peerId: identity.peerId, cluster: token.cluster, config, issuer: token.issuer, bootstrap: token.bootstrap };
}
