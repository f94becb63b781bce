/**
 * Wires the inference side (node/backends, node/forward, node/api) into the running
 * node: backends from config, the router fed by the adverts peer table, the
 * forwarding protocol server, and the OpenAI-compatible HTTP API. The node's own
 * advert gets its models and load from here.
 */
import type { ApiServer, MountedHandler } from '../api/server.js';
import { createApiServer } from '../api/server.js';
import { dirname } from 'node:path';
import type { BackendConfig, BackendEntry, BackendStatus } from '../backends/index.js';
import { BackendSet, backendFromConfig } from '../backends/index.js';
import type { FednodeConfig } from '../config.js';
import type { ForwardServer } from '../forward/index.js';
import { ForwardClient, InferenceRouter, startForwardServer } from '../forward/index.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import type { Candidate } from '../../routing/policy.js';
import { describeSource, policyInForce } from '../../routing/in-force.js';
import type { DecidedRouting, PolicyInForce, PolicySource, RoutingDefaults } from '../../routing/in-force.js';
import { RttTable } from '../../routing/rtt.js';
import type { PatternOp } from '../../consensus/patterns.js';
import type { Consensus } from '../consensus/api.js';
import { advertLoadOf } from '../forward/candidate.js';
import { aliasShadowProblem } from './consensus-ops.js';
import type { ProposeProblem } from './consensus-ops.js';
import type { Identity } from '../../crypto/keys.js';
import type { AdvertsService } from './adverts.js';
import { RuntimeError } from './errors.js';
import { advertisedApiUrl } from '../api/advertised.js';
import { FEDNODE_VERSION } from './version.js';
import { observedRouter, RequestObservers } from '../metrics/requests.js';

/** Model lists are re-read this often (a model pulled into Ollama shows up within this). */
const MODEL_REFRESH_MS = 30_000;

export interface RoutingStatus {
  /** 'registry' (a decided route.policy) or 'config' (none decided yet: config defaults). */
  source: PolicySource;
  /** "route policy from height H" or "config defaults". */
  sourceText: string;
  /** The registry height the policy in force was computed from. */
  registryHeight: number;
  weights: Record<string, number>;
  batteryFloorPct: number;
  tempCeilingC: number;
  aliases: Array<{ alias: string; model: string | null; problem: string | null }>;
  /** What of the decided state could not be applied (named). */
  problems: readonly string[];
}

export interface InferenceService {
  readonly apiUrl: string | null;
  readonly router: InferenceRouter;
  status(): {
    apiUrl: string | null;
    /** The OpenAI SDK base URL (apiUrl + /v1). */
    openaiBaseUrl: string | null;
    /** The Ollama client host (apiUrl: the client adds /api). */
    ollamaBaseUrl: string | null;
    backends: string[];
    models: string[];
    backendErrors: Record<string, string>;
    /** Per backend: healthy or why not, its load report and where the numbers came from. */
    backendHealth: BackendStatus[];
    load: { inFlight: number; queued: number; capacity: number };
    routing: RoutingStatus;
  };
  /** Rate-limited warnings (API 429/5xx answers, failovers) by kind: counters for metrics. */
  warnings(): Record<string, { total: number; suppressed: number }>;
  /** One observation per routed request when it ends (metrics, dashboard: node/metrics/requests.ts). */
  readonly requests: RequestObservers;
  /** Serve extra routes on the inference API's port under its access rules (the dashboard); false when the API is off. */
  mountHttp(handler: MountedHandler): boolean;
  /** Propose-time check of ops against what is served now (not consensus state): null when fine. */
  proposeCheck(ops: readonly PatternOp[]): ProposeProblem | null;
  stop(): Promise<void>;
}

/** RTT readings are taken this often from the connections (libp2p pings each one every 10 s; a new reading is a new sample). */
const RTT_POLL_MS = 2_000;

/** Backends' health checks run when due (each at its own interval); this is how often "due" is looked at. */
const HEALTH_TICK_MS = 1_000;
/** Backends' own load reports are read this often: the advert period's default (config adverts.periodMs). */
const LOAD_POLL_MS = 2_000;

/** Build backends from config entries; a bad entry is a config error naming `backends[i]`. Relative model paths start at the config file's folder. */
export function backendsFromConfig(entries: FednodeConfig['backends'], file: string, logger?: Logger): BackendEntry[] {
  return entries.map((e, i) => {
    try {
      return backendFromConfig(e as unknown as BackendConfig, { baseDir: dirname(file), ...(logger !== undefined ? { logger } : {}) });
    } catch (err) {
      throw new RuntimeError('ERR_CONFIG_INVALID', `${file}: backends[${i}]: ${err instanceof Error ? err.message : String(err)}`, { file, index: i }, { cause: err });
    }
  });
}

export async function startInference(o: {
  identity: Identity;
  cluster: string;
  host: Host;
  adverts: AdvertsService;
  config: FednodeConfig;
  configFile: string;
  /** The decided registry (policy in force, aliases) and its decided heights. */
  consensus: Pick<Consensus, 'registry' | 'onDecided'>;
  logger: Logger;
  now: () => number;
}): Promise<InferenceService> {
  const log = o.logger.child('inference');
  const decided = decidedPolicy(o.consensus, { batteryFloorPct: o.config.power.batteryFloorPercent, tempCeilingC: o.config.power.gpuTempCeilingC }, log);
  const rtt = new RttTable();
  const backends = await openBackends(o.config.backends, o.configFile, log);
  const forward = new ForwardClient({ host: o.host, identity: o.identity, cluster: o.cluster, now: o.now });
  const router = new InferenceRouter({
    localPeerId: o.identity.peerId,
    backends: backends.backends.length > 0 ? backends : null,
    forward,
    now: o.now,
    logger: log,
    localCapacity: () => backends.load().capacity, // what the healthy backends can run at once, from their own reports or config (node/backends/capacity.ts)
    policy: () => decided.current(),
    selfReadings: () => o.adverts.selfBody(),
    onLocalLoadChange: () => o.adverts.poke(), // the publisher collects on pokes, not on a timer
    peers: (): Candidate[] =>
      o.adverts
        .peers()
        .filter((p) => p.state === 'live' && p.peerId !== o.identity.peerId)
        .map((p) => ({ peerId: p.peerId, isLocal: false, models: p.advert.models, advert: advertLoadOf(p.advert, p.ageMs), rttMs: rtt.get(p.peerId) })),
  });
  const unsubscribe = o.adverts.onAdvert((peerId, seq) => router.accounting.onAdvert(peerId, seq));
  const fwd: ForwardServer = await startForwardServer({
    host: o.host,
    cluster: o.cluster,
    isMember: (p) => o.host.members.isMember(p),
    execute: router.localExecutor(),
    localPeerId: o.identity.peerId,
    now: o.now,
    logger: log,
  });
  let api: ApiServer | null = null;
  let apiUrl: string | null = null;
  const requests = new RequestObservers();
  try {
    if (o.config.api.enabled) {
      const a = o.config.api;
      api = createApiServer({
        router: observedRouter(router, requests, o.now),
        host: a.host,
        port: a.port,
        apiKey: a.apiKey,
        corsOrigins: a.cors.origins,
        limits: { maxConnections: a.maxConnections, maxPerIp: a.maxConnectionsPerIp, headersTimeoutMs: a.headersTimeoutMs, bodyTimeoutMs: a.bodyTimeoutMs },
        version: FEDNODE_VERSION,
        logger: log.child('api'),
        now: o.now,
      });
      apiUrl = advertisedApiUrl((await api.listen()).port, a.host);
    }
  } catch (e) {
    unsubscribe();
    decided.stop();
    await fwd.stop();
    throw new RuntimeError('ERR_CONTROL_HTTP', `inference API cannot listen on ${o.config.api.host}:${o.config.api.port}: ${e instanceof Error ? e.message : String(e)} (change api.port in ${o.configFile})`, { port: o.config.api.port }, { cause: e });
  }
  o.adverts.setLoadSource({
    models: () => backends.modelIds(),
    // The larger of what this node sent its backends and what they report (others may use them too).
    inFlight: () => Math.max(router.localLoad().inFlight, backends.load().inFlight),
    queued: () => Math.max(router.localLoad().queued, backends.load().queued),
    capacity: () => (backends.modelIds().length > 0 ? backends.load().capacity : 0),
    tokensGenerated: () => router.tokensGenerated,
  });
  const stopTimers = startPolling(backends, o.host, rtt, () => o.adverts.trigger(), () => o.adverts.poke(), log);
  return {
    apiUrl,
    router,
    status: () => ({ apiUrl, openaiBaseUrl: apiUrl === null ? null : `${apiUrl}/v1`, ollamaBaseUrl: apiUrl, backends: backends.backends.map((b) => b.id), models: backends.modelIds(), backendErrors: backends.lastErrors, backendHealth: backends.status(), load: router.localLoad(), routing: routingStatus(decided.current()) }),
    requests,
    mountHttp: (handler) => {
      if (api === null) return false;
      api.mount(handler);
      return true;
    },
    proposeCheck: (ops) => aliasShadowProblem(ops, router.models()),
    warnings: () => ({ ...router.warningCounts(), ...(api?.warnings() ?? {}) }),
    async stop() {
      stopTimers();
      unsubscribe();
      decided.stop();
      await api?.close();
      await fwd.stop();
      // Engines in this process (llama-cpp) free their models; remote servers have nothing to close.
      await Promise.all(backends.backends.map(async (b) => (b as { close?: () => Promise<void> }).close?.().catch(() => undefined)));
    },
  };
}

/** The configured backends, after a first model listing, handshake, health check and load poll (each bounded; failures are reported, not fatal). */
async function openBackends(entries: FednodeConfig['backends'], file: string, log: Logger): Promise<BackendSet> {
  const backends = new BackendSet(backendsFromConfig(entries, file, log));
  await backends.refresh(AbortSignal.timeout(5000)).catch(() => []);
  await backends.handshake().catch(() => undefined);
  await backends.checkHealth().catch(() => false);
  await backends.pollLoad(AbortSignal.timeout(2000)).catch(() => undefined);
  for (const b of backends.status()) if (!b.healthy || Object.keys(b.failedModels).length > 0) log.warn('backend not serving', { backend: b.id, reason: b.reason, failedModels: b.failedModels });
  return backends;
}

/**
 * The routing policy in force, recomputed when a height is decided and applied at once (the
 * router reads it per request); a decided state it cannot apply is logged once per change.
 */
function decidedPolicy(consensus: Pick<Consensus, 'registry' | 'onDecided'>, defaults: RoutingDefaults, log: Logger): { current(): PolicyInForce; stop(): void } {
  let loggedProblems = '';
  const policyOf = (reg: DecidedRouting): PolicyInForce => {
    const p = policyInForce(reg, defaults);
    const problems = p.problems.join('\n');
    if (problems !== loggedProblems) for (const problem of p.problems) log.warn('decided routing state not applied', { problem, height: reg.height });
    loggedProblems = problems;
    return p;
  };
  let inForce = policyOf(consensus.registry());
  const stop = consensus.onDecided(() => {
    const before = describeSource(inForce.source);
    inForce = policyOf(consensus.registry());
    if (describeSource(inForce.source) !== before) log.info('route policy in force changed', { policy: describeSource(inForce.source) });
  });
  return { current: () => inForce, stop };
}

/**
 * The node's periodic work for inference: RTT samples from libp2p's pings, backend health
 * (an unhealthy backend's models leave the advert at once), backend load, and the model lists
 * (a change re-handshakes and re-advertises). Never two rounds of one kind at once. Returns stop.
 */
function startPolling(backends: BackendSet, host: Host, rtt: RttTable, readvertise: () => void, loadRead: () => void, log: Logger): () => void {
  const lastRawRtt = new Map<string, number>();
  const pollRtt = (): void => {
    for (const p of host.peers()) {
      // The connection monitor overwrites connection.rtt at each ping; a changed value is a new sample.
      if (p.rttMs === null || lastRawRtt.get(p.peerId) === p.rttMs) continue;
      if (!lastRawRtt.has(p.peerId) && lastRawRtt.size >= rtt.maxPeers) lastRawRtt.clear(); // bounded like the table
      lastRawRtt.set(p.peerId, p.rttMs);
      rtt.onSample(p.peerId, p.rttMs);
    }
  };
  let healthBusy = false;
  const health = (): void => {
    if (healthBusy) return; // a slow check is bounded by its timeout; never two rounds at once
    healthBusy = true;
    void backends
      .checkHealth()
      .then((changed) => {
        if (changed) {
          for (const b of backends.status()) if (!b.healthy) log.warn('backend unhealthy: its models leave the advert', { backend: b.id, reason: b.reason });
          readvertise();
        }
      })
      .catch(() => undefined)
      .finally(() => (healthBusy = false));
  };
  let loadBusy = false;
  const load = (): void => {
    if (loadBusy) return;
    loadBusy = true;
    void backends
      .pollLoad(AbortSignal.timeout(LOAD_POLL_MS))
      .then(loadRead) // a backend's own report may have moved the advertised load
      .catch(() => undefined)
      .finally(() => (loadBusy = false));
  };
  const models = (): void => {
    const before = backends.modelIds().join('\n');
    void backends
      .refresh(AbortSignal.timeout(5000))
      .then(async () => {
        if (backends.modelIds().join('\n') !== before) await backends.handshake().catch(() => undefined);
        if (backends.modelIds().join('\n') !== before) readvertise();
      })
      .catch(() => undefined);
  };
  const timers = ([[pollRtt, RTT_POLL_MS], [health, HEALTH_TICK_MS], [load, LOAD_POLL_MS], [models, MODEL_REFRESH_MS]] as const).map(([fn, ms]) => setInterval(fn, ms));
  for (const t of timers) t.unref();
  return () => {
    for (const t of timers) clearInterval(t);
  };
}

function routingStatus(p: PolicyInForce): RoutingStatus {
  return {
    source: p.source,
    sourceText: describeSource(p.source),
    registryHeight: p.registryHeight,
    weights: { ...p.params.weights },
    batteryFloorPct: p.params.batteryFloorPct,
    tempCeilingC: p.params.tempCeilingC,
    aliases: [...p.aliases].map(([alias, t]) => ({ alias, model: t.ok ? t.model : null, problem: t.ok ? null : t.reason })),
    problems: p.problems,
  };
}
