/**
 * Wires node/adverts (publisher, peer table, profile policy) and node/probes into the
 * running node: hardware is sampled on its own loop (nvidia-smi can take a second)
 * and cached; the publisher's collect() combines the cache with the inference load
 * source; received adverts (already validated by the gossip validator: member,
 * fresh seq, signature) go into the peer table; stale/gone follow the config.
 */
import type { Identity } from '../../crypto/keys.js';
import type { AdvertBody } from '../adverts/advert.js';
import { parseAdvertBody } from '../adverts/advert.js';
import { buildAdvertBody, decideForReadings } from '../adverts/collect.js';
import type { ServingState } from '../adverts/collect.js';
import type { HardwareSnapshot } from '../probes/index.js';
import { PeerTable } from '../adverts/peer-table.js';
import type { PeerSnapshot } from '../adverts/peer-table.js';
import type { PowerProfile, ProfileState } from '../adverts/profile.js';
import { DEFAULT_PROFILE_POLICY } from '../adverts/profile.js';
import { AdvertPublisher, realScheduler } from '../adverts/publisher.js';
import type { FednodeConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import { execFileRunner } from '../probes/command.js';
import type { GpuProbe } from '../probes/gpu.js';
import { GpuProbeCadence, probeGpus } from '../probes/gpu.js';
import { probeGpuPower } from '../probes/gpu-power.js';
import { GpuPowerActuator } from '../probes/power-actuator.js';
import type { PowerSupplyReading } from '../probes/power-supply.js';
import { POWER_SUPPLY_ROOT, probePowerSupply } from '../probes/power-supply.js';
import { EnergyMeter, gpuPowerDrawW } from '../adverts/energy.js';
import { RaplMeter } from '../probes/rapl.js';
import { nodeSysfsReader } from '../probes/sysfs.js';
import type { SystemReading } from '../probes/system.js';
import { nodeSystemSource, readSystem } from '../probes/system.js';
import type { Store } from '../store/index.js';

/** What the inference side reports for the advert (defaults: serves nothing). */
export interface LoadSource {
  models(): readonly string[];
  inFlight(): number;
  queued(): number;
  capacity(): number;
  /** Tokens the local backends have generated since start (monotonic): the energy meter's tokens/s. */
  tokensGenerated(): number;
}

export interface PeerView {
  peerId: string;
  state: 'live' | 'stale';
  ageMs: number;
  seq: number;
  advert: AdvertBody;
}

export interface SelfAdvertSummary {
  seq: number;
  lastPublishedMs: number | null;
  profile: PowerProfile | null;
  body: AdvertBody | null;
  gpuReason: string | null;
  /** power.actuate: whether limits are applied ('active'), refused (no root) or impossible (no GPU), and the limits set; null when off. */
  power?: { state: string; detail: string | null; limitsW: Record<string, number> } | null;
}

export interface AdvertsService {
  start(): Promise<void>;
  stop(): Promise<void>;
  peers(): PeerView[];
  selfSummary(): SelfAdvertSummary;
  setLoadSource(src: LoadSource): void;
  /**
   * The body this node's latest collect built from its own readings (refreshed on every poke: a
   * local load change, each hardware sample), null before the first: the router ranks the node
   * itself from it, through the same conversion as a remote member's advert.
   */
  selfBody(): AdvertBody | null;
  /** Publish at the next tick (e.g. models changed). */
  trigger(): void;
  /** A reading the advert is built from may have changed (local load, a backend's load report): look for a material change (at most every 250 ms). The publisher does not poll on its own (issue 15: an idle node wakes for nothing). */
  poke(): void;
  /** Called for each NEW advert accepted into the peer table (routing accounting, the mesh's addresses). Returns unsubscribe. */
  onAdvert(listener: (peerId: string, seq: number, body: AdvertBody) => void): () => void;
}

export interface AdvertsServiceOptions {
  identity: Identity;
  cluster: string;
  host: Host;
  store: Store;
  config: FednodeConfig;
  logger: Logger;
  now: () => number;
  apiUrl: () => string | null;
  /** This node's dialable addresses for the advert's `addrs` (node/p2p/addrs.ts ownDialAddrs). @default none (field absent) */
  dialAddrs?: () => readonly string[];
  /** nvidia-smi binary (tests point it at a recorded-output script). @default env FEDNODE_NVIDIA_SMI or 'nvidia-smi' */
  nvidiaSmi?: string;
  /** power_supply class directory (tests point it at a fixture tree). @default env FEDNODE_POWER_SUPPLY_ROOT or /sys/class/power_supply */
  powerSupplyRoot?: string;
}

/** Seq numbers reserved per store write (see node/store SEQ_BLOCK for the reasoning). */
const ADVERT_SEQ_BLOCK = 1000;
/** The peer table holds one entry per member; members are bounded at 1024 (node/p2p/members.ts). */
const PEER_TABLE_MAX = 1024;

const noLoad: LoadSource = { models: () => [], inFlight: () => 0, queued: () => 0, capacity: () => 0, tokensGenerated: () => 0 };

/** The advert sequence: resumed above what was reserved, reserved in blocks of ADVERT_SEQ_BLOCK (one synced write per block). */
async function advertSeq(store: Store): Promise<{ start: number; persist: (seq: number) => Promise<void> }> {
  const seqDb = store.section('seq');
  const raw = await seqDb.get('advert');
  const reservedStart = raw === undefined ? 0 : Number(new TextDecoder().decode(raw));
  let reservedUpTo = Number.isSafeInteger(reservedStart) && reservedStart >= 0 ? reservedStart : 0;
  return {
    start: reservedUpTo,
    persist: async (seq) => {
      if (seq <= reservedUpTo) return;
      const upTo = seq + ADVERT_SEQ_BLOCK - 1;
      await seqDb.put('advert', new TextEncoder().encode(String(upTo)), { sync: true });
      reservedUpTo = upTo;
    },
  };
}

/**
 * This node's own readings, refreshed by sample(): GPUs (nvidia-smi; once a minute while it
 * finds none, GPU_ABSENT_REPROBE_MS), thermal throttling, the power supply, system load and
 * memory, CPU package watts (RAPL) and the energy meter.
 */
class HardwareSampler {
  gpu: GpuProbe = { gpus: null, reason: 'not probed yet', skipped: [] };
  private power: PowerSupplyReading | null = null;
  private system: SystemReading = { cpuLoad: null, memUsedBytes: null, memTotalBytes: null };
  private cpuPackageW: number | null = null;
  private thermalThrottle: boolean | null = null;
  private readonly rapl = new RaplMeter(nodeSysfsReader);
  private readonly cadence = new GpuProbeCadence();
  readonly energy = new EnergyMeter();

  constructor(
    private readonly nvidiaSmi: string,
    private readonly powerSupplyRoot: string,
    private readonly now: () => number,
  ) {}

  async sample(tokensGenerated: number): Promise<void> {
    if (this.cadence.due(this.now())) {
      try {
        this.gpu = await probeGpus(execFileRunner, { binary: this.nvidiaSmi });
      } catch (e) {
        this.gpu = { gpus: null, reason: e instanceof Error ? e.message : String(e), skipped: [] };
      }
      this.cadence.record(this.gpu, this.now());
    }
    // Throttle reasons (and limits) only where a GPU answered: one more nvidia-smi call per sample.
    if (this.gpu.gpus !== null && this.gpu.gpus.length > 0) {
      const p = await probeGpuPower(execFileRunner, this.nvidiaSmi).catch(() => null);
      this.thermalThrottle = p?.ok === true ? (p.gpus.some((g) => g.thermalThrottle === true) ? true : p.gpus.some((g) => g.thermalThrottle === false) ? false : null) : null;
    } else this.thermalThrottle = null;
    this.power = await probePowerSupply(nodeSysfsReader, this.powerSupplyRoot).catch(() => null);
    this.system = readSystem(nodeSystemSource);
    this.cpuPackageW = (await this.rapl.sample(this.now()).catch(() => ({ watts: null }))).watts;
    this.energy.sample(this.now(), tokensGenerated, gpuPowerDrawW(this.gpu.gpus));
  }

  snapshot(): HardwareSnapshot {
    const g = this.gpu;
    return { atMs: this.now(), gpus: g.gpus, gpuReason: g.reason, gpuSkipped: g.skipped, power: this.power, cpuPackageW: this.cpuPackageW, cpuPackageReason: null, system: this.system, thermalThrottle: this.thermalThrottle };
  }
}

type AdvertListener = (peerId: string, seq: number, body: AdvertBody) => void;

/** Peers' adverts into the peer table (a body that does not parse is refused; our own is skipped); listeners hear each accepted one. */
function acceptAdverts(host: Host, table: PeerTable, selfId: string, listeners: ReadonlySet<AdvertListener>, log: Logger): () => void {
  return host.onMessage('adverts', (d) => {
    const b = parseAdvertBody(d.envelope.body);
    if (!b.ok) {
      log.debug('advert body refused', { from: d.from, field: b.field, detail: b.detail });
      return;
    }
    if (d.envelope.signerId === selfId) return;
    const r = table.offer({ peerId: d.envelope.signerId, seq: d.envelope.seq, timeMs: d.envelope.time, body: b.body }, d.receivedMs);
    if (r !== 'accepted') return;
    for (const l of listeners) {
      try {
        l(d.envelope.signerId, d.envelope.seq, b.body);
      } catch (e) {
        log.warn('advert listener failed', { err: e });
      }
    }
  });
}

/**
 * Hardware sampling period: a material hardware change (GPU memory, temperature, load) reaches the
 * advert within this, whatever the keep-alive period (adverts.periodMs, 15 s by default); not
 * shorter: nvidia-smi costs ~50-500 ms where a GPU answers (once a minute where none does).
 */
const HARDWARE_SAMPLE_MS = 2000;

/**
 * A member that subscribes to adverts (it started, restarted or reconnected) gets this node's
 * advert this long after, not at the next keep-alive (adverts.periodMs, 15 s): until then it
 * could not route here. Not at once: its subscription arrives on the stream it opened, and
 * gossipsub can send to it only once our own stream to it is open (a few ms on a LAN). One
 * pending re-publish at a time covers a burst of subscribers, and the publisher's rate bound
 * (200 ms) holds whatever the peers do.
 */
const NEW_SUBSCRIBER_DELAY_MS = 500;

/** Re-publish (publish(): forced) NEW_SUBSCRIBER_DELAY_MS after a member subscribes to adverts. Returns stop. */
function republishToSubscribers(host: Host, publish: () => void): () => void {
  let pending: ReturnType<typeof setTimeout> | null = null;
  const off = host.onSubscribe('adverts', (peer) => {
    if (pending !== null || peer === host.peerId || !host.members.isMember(peer)) return;
    pending = setTimeout(() => {
      pending = null;
      publish();
    }, NEW_SUBSCRIBER_DELAY_MS);
  });
  return () => {
    off();
    if (pending !== null) clearTimeout(pending);
    pending = null;
  };
}

/** Hardware sampling (every HARDWARE_SAMPLE_MS; never two at once) and the peer table's pruning. Returns stop (which also calls `alsoStop`). */
function startTimers(sampleHardware: () => Promise<void>, prune: () => void, periodMs: number, alsoStop: () => void): () => void {
  let hwRunning = false;
  const hwTimer = setInterval(() => {
    if (hwRunning) return;
    hwRunning = true;
    void sampleHardware().finally(() => {
      hwRunning = false;
    });
  }, HARDWARE_SAMPLE_MS);
  hwTimer.unref();
  const pruneTimer = setInterval(prune, periodMs);
  pruneTimer.unref();
  return () => {
    clearInterval(hwTimer);
    clearInterval(pruneTimer);
    alsoStop();
  };
}

export async function createAdvertsService(o: AdvertsServiceOptions): Promise<AdvertsService> {
  const log = o.logger.child('adverts');
  const periodMs = o.config.adverts.periodMs;
  const seq = await advertSeq(o.store);

  const table = new PeerTable({ periodMs, staleAfterPeriods: o.config.adverts.staleAfterPeriods, goneAfterPeriods: o.config.adverts.goneAfterPeriods, maxPeers: PEER_TABLE_MAX });

  let load: LoadSource = noLoad;
  let profileState: ProfileState | null = null;
  let lastProfile: PowerProfile | null = null;
  const nvidiaSmi = o.nvidiaSmi ?? process.env['FEDNODE_NVIDIA_SMI'] ?? 'nvidia-smi';
  const powerSupplyRoot = o.powerSupplyRoot ?? process.env['FEDNODE_POWER_SUPPLY_ROOT'] ?? POWER_SUPPLY_ROOT;
  const hardware = new HardwareSampler(nvidiaSmi, powerSupplyRoot, o.now);
  const actuator = o.config.power.actuate ? new GpuPowerActuator(execFileRunner, o.config.power.limitsW, log.child('power'), nvidiaSmi) : null;
  let lastBody: AdvertBody | null = null;
  const policy = { ...DEFAULT_PROFILE_POLICY, pin: o.config.power.profile === 'auto' ? null : o.config.power.profile, batteryEcoBelowPct: o.config.power.batteryFloorPercent, gpuHotAboveC: o.config.power.gpuTempCeilingC };

  // each finished sample pokes the publisher (declared below; a poke before start() is ignored)
  const sampleHardware = (): Promise<void> => hardware.sample(load.tokensGenerated()).then(() => publisher.poke());

  // The body is built by the pure functions of node/adverts (bounds, clamping and
  // the profile decision live there once); the runtime only supplies readings.
  const collect = (): Promise<AdvertBody> => {
    const hw = hardware.snapshot();
    const serving: ServingState = { models: load.models(), inFlight: load.inFlight(), queued: load.queued(), capacity: load.capacity(), energy: hardware.energy.reading };
    const decision = decideForReadings(hw, serving, policy, profileState);
    profileState = decision.state;
    // power.actuate: the profile's GPU power limit follows each change (serialised inside the actuator).
    if (actuator !== null && decision.profile !== lastProfile) void actuator.apply(decision.profile);
    lastProfile = decision.profile;
    const built = buildAdvertBody(hw, serving, decision, o.apiUrl());
    lastBody = o.dialAddrs === undefined ? built : { ...built, addrs: o.dialAddrs() };
    return Promise.resolve(lastBody);
  };

  const publisher = new AdvertPublisher({
    identity: o.identity,
    cluster: o.cluster,
    scheduler: realScheduler,
    collect,
    publish: async (bytes) => {
      await o.host.publish('adverts', bytes);
    },
    startSeq: seq.start,
    persistSeq: seq.persist,
    periodMs,
    pollMs: Math.min(250, periodMs),
    // collected only when poked: each hardware sample (2 s), each local load change (router,
    // backends' load reports), trigger() (models, health, profile pin, load source); what else
    // collect() reads (API URL, dial addresses) is caught by the next hardware sample
    eventDriven: true,
    minIntervalMs: Math.min(200, periodMs),
    logger: log,
  });

  let unsubscribe: (() => void) | null = null;
  let stopTimers = (): void => undefined;
  const advertListeners = new Set<AdvertListener>();

  return {
    async start() {
      await sampleHardware();
      unsubscribe = acceptAdverts(o.host, table, o.identity.peerId, advertListeners, log);
      stopTimers = startTimers(sampleHardware, () => {
        for (const id of table.prune(o.now())) log.info('peer gone (no advert)', { peerId: id });
      }, periodMs, republishToSubscribers(o.host, () => publisher.trigger()));
      publisher.start();
    },
    async stop() {
      unsubscribe?.();
      stopTimers();
      await publisher.stop();
      await actuator?.restore();
    },
    peers() {
      return table.snapshot(o.now()).map((s: PeerSnapshot) => ({ peerId: s.peerId, state: s.state, ageMs: s.ageMs, seq: s.seq, advert: s.advert }));
    },
    selfSummary() {
      const last = publisher.lastPublished;
      return { seq: publisher.lastSeq, lastPublishedMs: last?.timeMs ?? null, profile: lastProfile, body: last?.body ?? null, gpuReason: hardware.gpu.gpus === null ? hardware.gpu.reason : null, power: actuator === null ? null : { state: actuator.state, detail: actuator.detail, limitsW: Object.fromEntries(actuator.appliedLimits) } };
    },
    setLoadSource(src) {
      load = src;
      publisher.trigger();
    },
    selfBody: () => lastBody,
    poke() {
      publisher.poke();
    },
    trigger() {
      publisher.trigger();
    },
    onAdvert(listener) {
      advertListeners.add(listener);
      return () => {
        advertListeners.delete(listener);
      };
    },
  };
}
