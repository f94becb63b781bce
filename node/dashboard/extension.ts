/**
 * The dashboard NodeExtension (plugged into startNode by cli/commands/start.ts): keeps the
 * traffic book (request observations) and the plot history (sampled every HISTORY_INTERVAL_MS),
 * mounts the routes (http.ts) on the inference API's port and pushes a snapshot to the event
 * streams every `pushMs` while any is open.
 */
import type { NodeContext, NodeExtension } from '../runtime/node.js';
import { FEDNODE_VERSION } from '../runtime/version.js';
import { History, HISTORY_INTERVAL_MS } from './history.js';
import type { HistoryPoint } from './history.js';
import { dashboardHandler, DASHBOARD_PATH, loadDashboardAssets } from './http.js';
import { buildSnapshot, loadOf, maxTemp } from './snapshot.js';
import type { DashboardSnapshot } from './snapshot.js';
import { createSseHub } from './sse.js';
import type { SseHub, SseOptions } from './sse.js';
import { TrafficBook } from './traffic.js';

export interface DashboardExtensionOptions {
  /** Snapshot push period to open event streams. @default 1000 (a live page without flooding a slow link) */
  pushMs?: number;
  sse?: SseOptions;
}

export interface DashboardExtension extends NodeExtension {
  status(): { url: string | null; clients: number; dropped: number };
  /** The current snapshot (null before start). */
  snapshot(): DashboardSnapshot | null;
}

export function dashboardExtension(o: DashboardExtensionOptions = {}): DashboardExtension {
  let build: (() => DashboardSnapshot) | null = null;
  let url: string | null = null;
  let sse: SseHub | null = null;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe: () => void = () => undefined;
  return {
    name: 'dashboard',
    async start(ctx: NodeContext) {
      const assets = await loadDashboardAssets();
      const traffic = new TrafficBook();
      unsubscribe = ctx.inference.requests.add((r) => traffic.add(r));
      const history = new History();
      const self = { peerId: ctx.identity.peerId, name: ctx.config.name ?? ctx.identity.peerId.slice(-8), cluster: ctx.cluster.id, version: FEDNODE_VERSION };
      const snap = (): DashboardSnapshot => {
        const nowMs = ctx.now();
        return buildSnapshot({
          self,
          nowMs,
          members: ctx.members.members(),
          registry: ctx.consensus.registry(),
          consensus: ctx.consensus.status(),
          peers: ctx.adverts.peers(),
          selfBody: ctx.adverts.selfBody(),
          connections: ctx.host.peers(),
          inference: ctx.inference.status(),
          decisions: ctx.inference.router.recentDecisions(),
          traffic: traffic.summary(nowMs),
          history: { intervalMs: HISTORY_INTERVAL_MS, series: history.toJSON() },
          batteryEcoBelowPct: ctx.config.power.batteryFloorPercent,
        });
      };
      build = snap;
      // `fednode top` reads the same snapshot with the control token (works with the API off too).
      ctx.control.route('GET', '/dashboard', () => ({ body: snap() }));
      const sample = (): void => {
        const t = ctx.now();
        const points = new Map<string, HistoryPoint>();
        const self = ctx.adverts.selfBody();
        const load = ctx.inference.status().load;
        if (self !== null) points.set(ctx.identity.peerId, { t, load: loadOf({ ...load, capacity: ctx.inference.status().backends.length > 0 ? load.capacity : 0 }), tempC: maxTemp(self.gpus), tokensPerS: self.tokensPerS });
        for (const p of ctx.adverts.peers()) if (p.peerId !== ctx.identity.peerId) points.set(p.peerId, { t, load: loadOf(p.advert), tempC: maxTemp(p.advert.gpus), tokensPerS: p.advert.tokensPerS });
        history.record(points);
        history.retain(new Set([ctx.identity.peerId, ...ctx.members.members()]));
      };
      sample();
      timers.push(setInterval(sample, HISTORY_INTERVAL_MS));
      const hub = createSseHub(o.sse);
      sse = hub;
      timers.push(
        setInterval(() => {
          if (hub.clients > 0) hub.broadcast('snapshot', JSON.stringify(snap()));
        }, o.pushMs ?? 1000),
      );
      for (const t of timers) t.unref();
      if (ctx.inference.mountHttp(dashboardHandler({ assets, snapshot: snap, sse: hub })) && ctx.inference.apiUrl !== null) {
        url = ctx.inference.apiUrl + DASHBOARD_PATH;
        ctx.logger.info('dashboard', { url });
      } else {
        ctx.logger.info('dashboard off: the inference API is disabled (api.enabled false), and the dashboard is served on its port');
      }
    },
    stop() {
      for (const t of timers) clearInterval(t);
      timers.length = 0;
      unsubscribe();
      sse?.close();
      return Promise.resolve();
    },
    status: () => ({ url, clients: sse?.clients ?? 0, dropped: sse?.dropped ?? 0 }),
    snapshot: () => build?.() ?? null,
  };
}
