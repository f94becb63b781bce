/**
 * Wires the inference side (node/backends, node/forward, node/api) into the running
 * node: backends from config, the router fed by the adverts peer table, the
 * forwarding protocol server, and the OpenAI-compatible HTTP API. The node's own
 * advert gets its models and load from here.
 */
import type { ApiServer } from '../api/server.js';
import { createApiServer } from '../api/server.js';
import type { Backend, BackendConfig } from '../backends/index.js';
import { BackendSet, createBackend } from '../backends/index.js';
import type { FednodeConfig } from '../config.js';
import type { ForwardServer } from '../forward/index.js';
import { ForwardClient, InferenceRouter, startForwardServer } from '../forward/index.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import type { Candidate } from '../../routing/policy.js';
import type { Identity } from '../../crypto/keys.js';
import type { AdvertsService } from './adverts.js';
import { RuntimeError } from './errors.js';

/** Model lists are re-read this often (a model pulled into Ollama shows up within this). */
const MODEL_REFRESH_MS = 30_000;

export interface InferenceService {
  readonly apiUrl: string | null;
  readonly router: InferenceRouter;
  status(): { apiUrl: string | null; backends: string[]; models: string[]; backendErrors: Record<string, string>; load: { inFlight: number; queued: number; capacity: number } };
  stop(): Promise<void>;
}

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
  logger: Logger;
  now: () => number;
}): Promise<InferenceService> {
  const log = o.logger.child('inference');
  const backends = new BackendSet(backendsFromConfig(o.config.backends, o.configFile));
  await backends.refresh(AbortSignal.timeout(5000)).catch(() => []);
  const forward = new ForwardClient({ host: o.host, identity: o.identity, cluster: o.cluster, now: o.now });
  const router = new InferenceRouter({
    localPeerId: o.identity.peerId,
    backends: backends.backends.length > 0 ? backends : null,
    forward,
    now: o.now,
    logger: log,
    peers: (): Candidate[] =>
      o.adverts
        .peers()
        .filter((p) => p.state === 'live' && p.peerId !== o.identity.peerId)
        .map((p) => {
          const temps = p.advert.gpus.map((g) => g.temperatureC).filter((t): t is number => t !== null);
          const utils = p.advert.gpus.map((g) => g.utilizationPct).filter((t): t is number => t !== null);
          return {
            peerId: p.peerId,
            isLocal: false,
            models: p.advert.models,
            advert: {
              inFlight: p.advert.inFlight,
              queued: p.advert.queued,
              capacity: Math.max(1, p.advert.capacity),
              gpuTempC: temps.length > 0 ? Math.max(...temps) : null,
              gpuUtilPct: utils.length > 0 ? Math.max(...utils) : null,
              powerSource: p.advert.power.source ?? 'unknown',
              batteryPct: p.advert.power.batteryPct,
              profile: p.advert.profile,
              ageMs: p.ageMs,
            },
          };
        }),
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
  try {
    if (o.config.api.enabled) {
      api = createApiServer({ router, host: o.config.api.host, port: o.config.api.port, apiKey: o.config.api.apiKey, logger: log.child('api'), now: o.now });
      apiUrl = (await api.listen()).url;
    }
  } catch (e) {
    unsubscribe();
    await fwd.stop();
    throw new RuntimeError('ERR_CONTROL_HTTP', `inference API cannot listen on ${o.config.api.host}:${o.config.api.port}: ${e instanceof Error ? e.message : String(e)} (change api.port in ${o.configFile})`, { port: o.config.api.port }, { cause: e });
  }
  o.adverts.setLoadSource({
    models: () => backends.modelIds(),
    inFlight: () => router.localLoad().inFlight,
    queued: () => router.localLoad().queued,
    capacity: () => (backends.backends.length > 0 ? router.localLoad().capacity : 0),
  });
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
    status: () => ({ apiUrl, backends: backends.backends.map((b) => b.id), models: backends.modelIds(), backendErrors: backends.lastErrors, load: router.localLoad() }),
    async stop() {
      clearInterval(timer);
      unsubscribe();
      await api?.close();
      await fwd.stop();
    },
  };
}
