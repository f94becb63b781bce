/**
 * The running node: composes store, identity, the consensus driver (whose decided log is
 * the cluster membership), the libp2p host, member sync and admission by consensus, adverts
 * (publisher + peer table), the inference API (when present) and the local control API.
 * `startNode` brings them up in dependency order and `stop()` takes them down in reverse:
 * consensus stops before the host (no vote half-sent), peers are told (libp2p stop closes
 * the connections) and the store is closed last with nothing pending.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Genesis } from '../../consensus/registry.js';
import { loadIdentity } from '../../crypto/keys.js';
import type { Identity } from '../../crypto/keys.js';
import type { FednodeConfig } from '../config.js';
import { loadConfig } from '../config.js';
import type { ClusterFile, DataDirLock, DataDirPaths, SwarmKey } from '../datadir.js';
import { acquireLock, checkInitialised, readClusterFile, readControlToken, readSwarmKey, removeRuntimeFile, writeRuntimeFile } from '../datadir.js';
import type { Logger } from '../log.js';
import type { ControlServer } from '../control/server.js';
import { startControlServer } from '../control/server.js';
import type { Host } from '../p2p/host.js';
import { parseAdvertBody } from '../adverts/advert.js';
import { createHost } from '../p2p/host.js';
import { AddressBook } from '../p2p/addr-book.js';
import { ownDialAddrs } from '../p2p/addrs.js';
import type { MeshStatus } from '../p2p/mesh.js';
import { createJoinClaim } from '../p2p/members.js';
import type { MemberSource } from '../p2p/members.js';
import type { Consensus } from '../consensus/api.js';
import { openConsensus } from '../consensus/driver.js';
import type { Store } from '../store/index.js';
import type { IntegrityMode } from '../store/integrity.js';
import { openStoreChecked, replayError, verifyOpened } from '../store/integrity.js';
import type { ManifestKeeper } from '../store/manifest-keeper.js';
import type { AdvertsService } from './adverts.js';
import { createAdvertsService } from './adverts.js';
import { startInference } from './inference.js';
import type { InferenceService } from './inference.js';
import { RuntimeError } from './errors.js';
import { createInviteToken, INVITE_TTL_DEFAULT_MS, INVITE_TTL_MAX_MS } from './invite.js';
import type { MemberSync } from './member-sync.js';
import { createMemberSync } from './member-sync.js';
import { parseInviteToken } from './invite.js';
import type { Admission } from './admission.js';
import { createAdmission } from './admission.js';
import type { ConsensusStatusJson } from './consensus-routes.js';
import { registerConsensusRoutes } from './consensus-routes.js';
import { registerRoutingRoutes } from './routing-routes.js';

import { FEDNODE_VERSION } from './version.js';

export { FEDNODE_VERSION };

/** A piece others plug into the runtime (inference API, consensus driver): started after p2p, stopped before it. */
export interface NodeExtension {
  readonly name: string;
  start(ctx: NodeContext): Promise<void>;
  stop(): Promise<void>;
  /** Extra fields merged into `status` under the extension's name. */
  status?(): unknown;
}

/** What extensions and control routes may use. */
export interface NodeContext {
  readonly paths: DataDirPaths;
  readonly config: FednodeConfig;
  readonly identity: Identity;
  readonly cluster: ClusterFile;
  readonly store: Store;
  readonly host: Host;
  readonly members: MemberSource;
  readonly consensus: Consensus;
  readonly admission: Admission;
  readonly adverts: AdvertsService;
  readonly inference: InferenceService;
  readonly control: ControlServer;
  readonly logger: Logger;
  now(): number;
}

export interface StartNodeOptions {
  dataDir: string;
  logger: Logger;
  now?: () => number;
  extensions?: readonly NodeExtension[];
  /**
   * `verify` (default): the store and the signer record must match the store manifest
   * (node/store/integrity.ts). `repair`: the store is being rebuilt by `fednode repair`.
   */
  integrity?: IntegrityMode;
  /** Peers dialled in addition to the config's bootstrap list (`fednode repair --peer`). */
  bootstrap?: readonly string[];
}

export interface RunningNode {
  readonly peerId: string;
  readonly cluster: string;
  readonly controlUrl: string;
  readonly apiUrl: string | null;
  addresses(): string[];
  status(): NodeStatus;
  stop(): Promise<void>;
  /** Resolves when stop() has finished. */
  readonly stopped: Promise<void>;
  /** The error that made the node stop by itself (LevelDB corruption while running); null otherwise. */
  failure(): Error | null;
  /** The store manifest's keeper (the repair command flushes it and reads the floor). */
  readonly manifest: ManifestKeeper;
}

export interface NodeStatus {
  version: string;
  peerId: string;
  name: string;
  pid: number;
  cluster: string;
  dataDir: string;
  addrs: string[];
  controlUrl: string;
  apiUrl: string | null;
  /** Paste as the OpenAI SDK's baseURL (apiUrl + /v1). */
  openaiBaseUrl: string | null;
  /** Paste as the Ollama client's host. */
  ollamaBaseUrl: string | null;
  inference: ReturnType<InferenceService['status']>;
  uptimeMs: number;
  members: string[];
  connectedPeers: number;
  /** The connection mesh (node/p2p/mesh.ts): targets, connected, missing members with why. */
  mesh: MeshStatus;
  adverts: ReturnType<AdvertsService['selfSummary']>;
  consensus: ConsensusStatusJson;
  extensions: Record<string, unknown>;
}

/** Undo what was started, in reverse, never throwing (shutdown must finish). */
async function unwind(steps: Array<() => Promise<void>>, log: Logger): Promise<void> {
  for (const s of steps.reverse()) {
    try {
      await s();
    } catch (e) {
      log.warn('shutdown step failed', { err: e });
    }
  }
}

/** Start-up's shared state: the undo steps (in start order), the error the store's watchdog reported, and how it stops the node. */
interface Boot {
  readonly undo: Array<() => Promise<void>>;
  failure: Error | null;
  stopNow: () => void;
}

/** What every start-up step reads: the data directory's files, the logger, the clock, the undo list. */
interface NodeBase {
  readonly o: StartNodeOptions;
  readonly boot: Boot;
  readonly paths: DataDirPaths;
  readonly config: FednodeConfig;
  readonly identity: Identity;
  readonly cluster: ClusterFile;
  readonly swarm: SwarmKey;
  readonly log: Logger;
  readonly now: () => number;
}

export async function startNode(o: StartNodeOptions): Promise<RunningNode> {
  const now = o.now ?? Date.now;
  const startedAt = now();
  const paths = await checkInitialised(o.dataDir);
  const config = await loadConfig(paths.config);
  const lock: DataDirLock = await acquireLock(paths.root);
  // failure: set by the store's corruption watchdog; during start-up it is the error start fails with.
  const boot: Boot = { undo: [() => lock.release()], failure: null, stopNow: () => undefined };
  const bootLog = o.logger;
  if (lock.tookOver !== null) bootLog.warn('took over a stale data-directory lock', { file: lock.path, pid: lock.tookOver.pid, reason: lock.tookOver.reason });
  try {
    return await bringUp(o, boot, paths, config, now, startedAt);
  } catch (e) {
    await unwind(boot.undo, bootLog);
    throw boot.failure ?? e;
  }
}

/** Everything after the lock, in dependency order; each step pushes its undo. */
async function bringUp(o: StartNodeOptions, boot: Boot, paths: DataDirPaths, config: FednodeConfig, now: () => number, startedAt: number): Promise<RunningNode> {
  const identity = await loadIdentity(paths.identity);
  const cluster = await readClusterFile(paths.cluster);
  const swarm = await readSwarmKey(paths.swarmKey);
  const controlToken = await readControlToken(paths.controlToken);
  const name = config.name ?? identity.peerId.slice(-8);
  const log = o.logger;
  const base: NodeBase = { o, boot, paths, config, identity, cluster, swarm, log, now };
  const { undo } = boot;
  const { store, consensus, manifest } = await openStoreAndConsensus(base);
  const members = consensus.members;
  const host = await startHost(base, consensus);
  const { admission, sync } = await startMembership(base, store, consensus, host);
  const { adverts, inference, control, apiUrl } = await startServices(base, store, consensus, admission, host, controlToken);

  const ctx: NodeContext = { paths, config, identity, cluster, store, host, members, consensus, admission, adverts, inference, control, logger: log, now };
  const extensions: NodeExtension[] = [];
  for (const ext of o.extensions ?? []) {
    await ext.start(ctx);
    extensions.push(ext);
    undo.push(() => ext.stop());
  }

  const addresses = (): string[] => host.addresses();
  const status = statusOf(ctx, { name, startedAt, apiUrl, extensions });
  registerNodeRoutes(ctx, status, sync, swarm);

  const { stop, stopped } = stopper(paths, undo, log);
  boot.stopNow = () => void stop();

  await writeRuntimeFile(paths.runtime, {
    pid: process.pid,
    peerId: identity.peerId,
    cluster: cluster.id,
    addrs: addresses(),
    controlUrl: control.url,
    apiUrl,
    startedAt,
  });
  undo.push(() => removeRuntimeFile(paths.runtime));
  log.info('ready', { peerId: identity.peerId, cluster: cluster.id, addrs: addresses(), control: control.url });

  if (boot.failure !== null) void stop(); // corruption found while starting up
  return { peerId: identity.peerId, cluster: cluster.id, controlUrl: control.url, apiUrl, addresses, status, stop, stopped, failure: () => boot.failure, manifest };
}

/** The store (checked against its manifest) and the consensus driver on it: its decided log is the membership the host admits gossip from. */
async function openStoreAndConsensus(b: NodeBase): Promise<{ store: Store; consensus: Consensus; manifest: ManifestKeeper }> {
  const { o, boot, paths, config, identity, cluster, log, now } = b;
  const stateDir = join(paths.root, 'consensus');
  const integrity = {
    dataDir: paths.root,
    storePath: paths.store,
    stateDir,
    cluster: cluster.id,
    node: identity.peerId,
    mode: o.integrity ?? 'verify',
    logger: log.child('store'),
    now,
    onCorrupt: (err: Error) => {
      log.error('stopping: the store is corrupt', { err });
      boot.failure ??= err;
      boot.stopNow();
    },
  };
  const opened = await openStoreChecked(integrity);
  const store = opened.store;
  boot.undo.push(() => store.close());

  // Consensus first: its decided log is the membership the host admits gossip from.
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  let keeper: ManifestKeeper | null = null;
  const consensus = await openConsensus({
    identity,
    cluster: cluster.id,
    store,
    stateDir,
    genesis: genesisOf(cluster),
    logger: log.child('consensus'),
    now,
    auditLogPath: consensusAuditPath(config, process.env),
    // Set before the driver starts (no signature happens before consensus.start).
    beforeSignerWrite: (h) => keeper?.signGate(h) ?? Promise.reject(new RuntimeError('ERR_NOT_AVAILABLE', 'store manifest not open yet')),
  }).catch((e: unknown) => {
    throw replayError(integrity, e);
  });
  const verified = await verifyOpened(integrity, opened, consensus);
  keeper = verified.keeper;
  const manifest = verified.keeper;
  boot.undo.push(() => manifest.close());
  return { store, consensus, manifest };
}

/** The libp2p host (started), then the consensus driver on it; decided heights re-evaluate the mesh. */
async function startHost(b: NodeBase, consensus: Consensus): Promise<Host> {
  const { o, paths, config, identity, cluster, swarm, log, now } = b;
  const { undo } = b.boot;
  // Peers' addresses across restarts (a damaged file stops the start with ERR_ADDRBOOK_CORRUPT).
  const addressBook = await AddressBook.open(join(paths.root, ADDRESS_BOOK_FILE));
  const host = await createHost({
    identity,
    cluster: cluster.id,
    swarmKey: swarm.file,
    members: consensus.members,
    listen: config.listen,
    bootstrap: [...config.bootstrap, ...(o.bootstrap ?? [])],
    mdns: config.mdns.enabled ? { intervalMs: config.mdns.intervalMs } : null,
    // A member's malformed advert is rejected at the gossip edge (and scored
    // down) instead of being relayed and dropped later by the peer table.
    bodyCheck: { adverts: (body) => advertBodyProblem(body) },
    addressBook,
    validators: () => consensus.status().validators,
    logger: log,
    now,
  });
  await host.start();
  undo.push(() => host.stop());
  await consensus.start(host);
  undo.push(() => consensus.stop());
  // A decided height may change the validators (mesh targets beyond the full-mesh bound).
  const offDecided = consensus.onDecided(() => host.meshChanged());
  undo.push(() => Promise.resolve(offDecided()));
  return host;
}

/** Admission by consensus and member sync (claims exchanged with peers), plus this node's own join claim while it is not admitted. */
async function startMembership(b: NodeBase, store: Store, consensus: Consensus, host: Host): Promise<{ admission: Admission; sync: MemberSync }> {
  const { config, identity, cluster, log, now } = b;
  const { undo } = b.boot;
  const members = consensus.members;
  const admission = createAdmission({
    cluster: cluster.id,
    selfId: identity.peerId,
    selfKey: identity.publicKey,
    mode: config.consensus.admission,
    consensus,
    store,
    logger: log,
    now,
    genesisMember: cluster.genesis.some((g) => g.peerId === identity.peerId),
  });
  await admission.start();
  undo.push(() => Promise.resolve(admission.stop()));
  const sync: MemberSync = createMemberSync({
    host,
    store,
    cluster: cluster.id,
    selfId: identity.peerId,
    logger: log,
    // 2 s at most: a joiner's claim is retried that often (an idle cluster exchanges nothing: member-sync.ts)
    intervalMs: Math.max(200, Math.min(config.adverts.periodMs, 2000)),
    isMember: (p) => members.isMember(p),
    onClaim: (claim, from) => admission.onClaim(claim, from),
    refusalFor: (peer) => admission.refusalFor(peer),
    onRefused: (by, r) => admission.noteRefusedBy(by, r),
  });
  await sync.start();
  undo.push(() => sync.stop());
  if (cluster.joinedWith !== null && !admission.status().admitted) {
    // Our own claim to membership, from the invite we joined with (re-shared until a member.add is decided).
    try {
      const t = parseInviteToken(cluster.joinedWith, 0);
      await sync.addOwn(createJoinClaim(identity, { cluster: cluster.id, nowMs: now(), invite: t.invite, secret: t.secret, ...(config.name !== null ? { name: config.name } : {}) }));
    } catch (e) {
      log.warn('cannot build join claim from the stored invite', { err: e });
    }
  }
  return { admission, sync };
}

/** Adverts, the inference API and the control server with the consensus and routing routes. */
async function startServices(
  b: NodeBase,
  store: Store,
  consensus: Consensus,
  admission: Admission,
  host: Host,
  controlToken: string,
): Promise<{ adverts: AdvertsService; inference: InferenceService; control: ControlServer; apiUrl: string | null }> {
  const { paths, config, identity, cluster, log, now } = b;
  const { undo } = b.boot;
  let apiUrl: string | null = null;
  const adverts = await createAdvertsService({ identity, cluster: cluster.id, host, store, config, logger: log, now, apiUrl: () => apiUrl, dialAddrs: () => ownDialAddrs(host.addresses(), config.announce) });
  // A member's signed advert says where it listens: members not connected to it learn it here.
  const offAdvertAddrs = adverts.onAdvert((peerId, _seq, body) => {
    if (body.addrs !== undefined && body.addrs.length > 0) host.learnAddrs(peerId, body.addrs, 'advert');
  });
  undo.push(() => Promise.resolve(offAdvertAddrs()));
  const inference = await startInference({ identity, cluster: cluster.id, host, adverts, config, configFile: paths.config, consensus, logger: log, now });
  undo.push(() => inference.stop());
  apiUrl = inference.apiUrl;
  await adverts.start();
  undo.push(() => adverts.stop());

  const control = await startControlServer({ host: config.control.host, port: config.control.port, token: controlToken, logger: log.child('control') });
  undo.push(() => control.close());

  registerConsensusRoutes(control, consensus, admission, (ops) => inference.proposeCheck(ops));
  registerRoutingRoutes(control, inference.router);
  return { adverts, inference, control, apiUrl };
}

/** The node's status (GET /status, `fednode status`). */
function statusOf(ctx: NodeContext, s: { name: string; startedAt: number; apiUrl: string | null; extensions: readonly NodeExtension[] }): () => NodeStatus {
  const { identity, cluster, paths, control, inference, members, host, adverts, consensus, admission } = ctx;
  const { apiUrl } = s;
  return () => ({
    version: FEDNODE_VERSION,
    peerId: identity.peerId,
    name: s.name,
    pid: process.pid,
    cluster: cluster.id,
    dataDir: paths.root,
    addrs: host.addresses(),
    controlUrl: control.url,
    apiUrl,
    openaiBaseUrl: apiUrl === null ? null : `${apiUrl}/v1`,
    ollamaBaseUrl: apiUrl,
    inference: inference.status(),
    uptimeMs: ctx.now() - s.startedAt,
    members: [...members.members()],
    connectedPeers: host.peers().filter((p) => p.connections > 0).length,
    mesh: host.mesh(),
    adverts: adverts.selfSummary(),
    consensus: { ...consensus.status(), admission: admission.status() },
    extensions: Object.fromEntries(s.extensions.filter((e) => e.status !== undefined).map((e) => [e.name, e.status?.()])),
  });
}

/** The control routes of the node itself: status, peers, members, invite. */
function registerNodeRoutes(ctx: NodeContext, status: () => NodeStatus, sync: MemberSync, swarm: SwarmKey): void {
  const { control, adverts, members, host, admission, identity, config, cluster } = ctx;
  control.route('GET', '/status', () => ({ body: status() }));
  control.route('GET', '/peers', () => ({ body: { peers: adverts.peers(), members: members.members(), connections: host.peers() } }));
  control.route('GET', '/members', () => ({ body: { members: members.members(), claims: sync.count() } }));
  control.route('POST', '/invite', (req) => {
    if (!admission.status().admitted) {
      // An invite from a non-member is refused by every member ("inviter is not a member"): say so now.
      throw new RuntimeError('ERR_NOT_MEMBER', 'this node is not a member of the cluster (yet): its invites would be refused by every member. Wait until `fednode status` says admitted (or run `fednode invite` on a member)', { peerId: identity.peerId });
    }
    const b = (req.body ?? {}) as { ttlMs?: unknown };
    const ttlMs = b.ttlMs === undefined ? INVITE_TTL_DEFAULT_MS : b.ttlMs;
    if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > INVITE_TTL_MAX_MS) {
      throw new RuntimeError('ERR_TOKEN_INVALID', `ttlMs must be an integer in (0, ${INVITE_TTL_MAX_MS}]`, { ttlMs });
    }
    const bootstrap = invitableAddresses(host.addresses(), config.announce);
    const token = createInviteToken(identity, { cluster: cluster.id, psk: swarm.raw, bootstrap, genesis: cluster.genesis, nowMs: ctx.now(), ttlMs });
    return { body: { token, cluster: cluster.id, bootstrap, expiresMs: ctx.now() + ttlMs } };
  });
}

/** stop(): once, however often called: the runtime file goes, then every undo step in reverse. */
function stopper(paths: DataDirPaths, undo: Array<() => Promise<void>>, log: Logger): { stop: () => Promise<void>; stopped: Promise<void> } {
  let stopping: Promise<void> | null = null;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping');
      await removeRuntimeFile(paths.runtime);
      await unwind(undo, log);
      log.info('stopped');
      resolveStopped();
    })();
    return stopping;
  };
  return { stop, stopped };
}

/**
 * Addresses worth putting in an invite: announce ones if configured, else the
 * listen addresses without wildcard binds (0.0.0.0 is not dialable).
 */
export function invitableAddresses(addrs: readonly string[], announce: readonly string[]): string[] {
  const withId = (a: string): boolean => a.includes('/p2p/');
  const list = announce.length > 0 ? announce : addrs;
  const out = list.filter((a) => !a.includes('/ip4/0.0.0.0/') && !a.includes('/ip6/::/'));
  if (announce.length > 0) {
    const id = /\/p2p\/([^/]+)$/.exec(addrs.find(withId) ?? '')?.[1];
    return out.map((a) => (withId(a) || id === undefined ? a : `${a}/p2p/${id}`));
  }
  // loopback last: another machine cannot dial it, but a same-host join can
  return [...out.filter((a) => !a.includes('/127.') && !a.includes('/::1/')), ...out.filter((a) => a.includes('/127.') || a.includes('/::1/'))].slice(0, 16);
}

/** null when `body` is a valid advert body, else a short reason (gossip body check). */
export function advertBodyProblem(body: unknown): string | null {
  const r = parseAdvertBody(body);
  return r.ok ? null : `${r.code} at ${r.field}: ${r.detail}`;
}

/** Genesis registry from the cluster file: every genesis member with power 1, named by its peer id's tail (same on every node). */
export function genesisOf(cluster: ClusterFile): Genesis {
  return { members: cluster.genesis.map((m) => ({ publicKey: new Uint8Array(Buffer.from(m.publicKey, 'hex')), power: 1, name: m.peerId.slice(-8) })) };
}

/** The address book in the data directory (node/p2p/addr-book.ts). */
export const ADDRESS_BOOK_FILE = 'addresses.json';

/** Environment variable naming the consensus audit log (overrides config consensus.auditLogPath). */
export const CONSENSUS_AUDIT_ENV = 'FEDNODE_CONSENSUS_AUDIT';

export function consensusAuditPath(config: FednodeConfig, env: NodeJS.ProcessEnv): string | null {
  const e = env[CONSENSUS_AUDIT_ENV];
  return e !== undefined && e !== '' ? e : config.consensus.auditLogPath;
}
