/**
 * Wires the inference side (node/backends, node/forward, node/api) into the running
 * node: backends from config, the router fed by the adverts peer table, the
 * forwarding protocol server, and the OpenAI-compatible HTTP API. The node's own
 * advert gets its models and load from here.
 */
import type { ApiServer, MountedHandler } from '../api/server.js';
import { createApiServer } from '../api/server.js';
import type { Backend, BackendConfig } from '../backends/index.js';
import { BackendSet, createBackend } from '../backends/index.js';
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
    backends: string[];
    models: string[];
    backendErrors: Record<string, string>;
    load: { inFlight: number; queued: number; capacity: number };
    routing: RoutingStatus;
  };
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

/** Build backends from config entries; a bad entry is a config error naming `backends[i]`. */
export function backendsFromConfig(entries: FednodeConfig['backends'], file: string): Backend[] {
  return entries.map((e, i) => {
    try {
      return createBackend(e as unknown as BackendConfig);
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
  const defaults: RoutingDefaults = { batteryFloorPct: o.config.power.batteryFloorPercent, tempCeilingC: o.config.power.gpuTempCeilingC };
  let loggedProblems = '';
  const policyOf = (reg: DecidedRouting): PolicyInForce => {
    const p = policyInForce(reg, defaults);
    const problems = p.problems.join('\n');
    if (problems !== loggedProblems) for (const problem of p.problems) log.warn('decided routing state not applied', { problem, height: reg.height });
    loggedProblems = problems;
    return p;
  };
  // Recomputed when a height is decided and applied at once: the router reads it per request.
  let inForce = policyOf(o.consensus.registry());
  const unsubscribeDecided = o.consensus.onDecided(() => {
    const before = describeSource(inForce.source);
    inForce = policyOf(o.consensus.registry());
    if (describeSource(inForce.source) !== before) log.info('route policy in force changed', { policy: describeSource(inForce.source) });
  });
  const rtt = new RttTable();
  const lastRawRtt = new Map<string, number>();
  const pollRtt = (): void => {
    for (const p of o.host.peers()) {
      // The connection monitor overwrites connection.rtt at each ping; a changed value is a new sample.
      if (p.rttMs === null || lastRawRtt.get(p.peerId) === p.rttMs) continue;
      if (!lastRawRtt.has(p.peerId) && lastRawRtt.size >= rtt.maxPeers) lastRawRtt.clear(); // bounded like the table
      lastRawRtt.set(p.peerId, p.rttMs);
      rtt.onSample(p.peerId, p.rttMs);
    }
  };
  const backends = new BackendSet(backendsFromConfig(o.config.backends, o.configFile));
  await backends.refresh(AbortSignal.timeout(5000)).catch(() => []);
  const forward = new ForwardClient({ host: o.host, identity: o.identity, cluster: o.cluster, now: o.now });
  const router = new InferenceRouter({
    localPeerId: o.identity.peerId,
    backends: backends.backends.length > 0 ? backends : null,
    forward,
    now: o.now,
    logger: log,
    policy: () => inForce,
    selfReadings: () => o.adverts.selfBody(),
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
    execute: (r, s) => router.executeLocal(r, s),
    localPeerId: o.identity.peerId,
    now: o.now,
    logger: log,
  });
  let api: ApiServer | null = null;
  let apiUrl: string | null = null;
  const requests = new RequestObservers();
  try {
    if (o.config.api.enabled) {
      api = createApiServer({ router: observedRouter(router, requests, o.now), host: o.config.api.host, port: o.config.api.port, apiKey: o.config.api.apiKey, logger: log.child('api'), now: o.now });
      apiUrl = (await api.listen()).url;
    }
  } catch (e) {
    unsubscribe();
    unsubscribeDecided();
    await fwd.stop();
    throw new RuntimeError('ERR_CONTROL_HTTP', `inference API cannot listen on ${o.config.api.host}:${o.config.api.port}: ${e instanceof Error ? e.message : String(e)} (change api.port in ${o.configFile})`, { port: o.config.api.port }, { cause: e });
  }
  o.adverts.setLoadSource({
    models: () => backends.modelIds(),
    inFlight: () => router.localLoad().inFlight,
    queued: () => router.localLoad().queued,
    capacity: () => (backends.backends.length > 0 ? router.localLoad().capacity : 0),
    tokensGenerated: () => router.tokensGenerated,
  });
  const rttTimer = setInterval(pollRtt, RTT_POLL_MS);
  rttTimer.unref();
  const timer = setInterval(() => {
    const before = backends.modelIds().join('\n');
    void backends
      .refresh(AbortSignal.timeout(5000))
      .then(() => {
        if (backends.modelIds().join('\n') !== before) o.adverts.trigger();
      })
      .catch(() => undefined);
  }, MODEL_REFRESH_MS);
  timer.unref();
  return {
    apiUrl,
    router,
    status: () => ({ apiUrl, backends: backends.backends.map((b) => b.id), models: backends.modelIds(), backendErrors: backends.lastErrors, load: router.localLoad(), routing: routingStatus(inForce) }),
    requests,
    mountHttp: (handler) => {
      if (api === null) return false;
      api.mount(handler);
      return true;
    },
    proposeCheck: (ops) => aliasShadowProblem(ops, router.models()),
    async stop() {
      clearInterval(timer);
      clearInterval(rttTimer);
      unsubscribe();
      unsubscribeDecided();
      await api?.close();
      await fwd.stop();
    },
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
