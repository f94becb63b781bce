/**
 * The metrics NodeExtension (plugged into startNode by cli/commands/start.ts): fednode's
 * metrics on the host's registry (next to libp2p's), served by the Prometheus endpoint
 * (server.ts) and, for token holders, as JSON on the control API (`GET /metrics`).
 */
import { Registry } from 'prom-client';
import type { NodeContext, NodeExtension } from '../runtime/node.js';
import { registerFednodeMetrics } from './fednode.js';
import { registerInferenceMetrics } from './inference.js';
import type { InferenceMetrics } from './inference.js';
import type { MetricsListen, MetricsServer } from './server.js';
import { startMetricsServer } from './server.js';

export interface MetricsExtensionOptions {
  /** Prometheus listener; null = none (the control route still answers). */
  listen: MetricsListen | null;
  /** prom-client's process metrics (CPU, memory, event loop, GC); once per process. @default true */
  processMetrics?: boolean;
}

export interface MetricsExtension extends NodeExtension {
  /** The registry being served (null before start). */
  registry(): Registry | null;
  status(): { url: string | null };
}

export function metricsExtension(o: MetricsExtensionOptions): MetricsExtension {
  let registry: Registry | null = null;
  let server: MetricsServer | null = null;
  let inferenceMetrics: InferenceMetrics | null = null;
  let stopHeights: () => void = () => undefined;
  return {
    name: 'metrics',
    async start(ctx: NodeContext) {
      // The host's registry already holds libp2p's metrics; without one (metrics off in the host), fednode's alone.
      const reg = ctx.host.metricsRegistry ?? new Registry();
      registerFednodeMetrics(
        reg,
        {
          gossip: () => ctx.host.stats(),
          peers: () => ctx.host.peers(),
          direct: () => ctx.host.directStats(),
          pnet: () => ctx.host.pnetFailures(),
          members: () => ctx.members.members(),
          advertSelf: () => ctx.adverts.selfSummary(),
          advertPeers: () => ctx.adverts.peers(),
          inference: () => ({ ...ctx.inference.status().load, routing: ctx.inference.router.routing }),
          warnings: () => ctx.inference.warnings(),
          consensus: () => {
            const c = ctx.consensus.status();
            return { decidedHeight: c.decidedHeight, round: c.round, mempoolOps: c.mempoolOps, validators: c.validators.length };
          },
          now: () => ctx.now(),
        },
        { processMetrics: o.processMetrics ?? true },
      );
      const im = registerInferenceMetrics(reg, {
        requests: ctx.inference.requests,
        selfBody: () => ctx.adverts.selfBody(),
        backends: () => ctx.inference.status(),
      });
      inferenceMetrics = im;
      stopHeights = trackHeights(ctx, im);
      registry = reg;
      // What `doctor` reads: connections that failed the cluster key check.
      ctx.control.route('GET', '/diagnostics', () => ({ body: { pnet: ctx.host.pnetFailures() } }));
      ctx.control.route('GET', '/metrics', async () => ({ body: { contentType: reg.contentType, text: await reg.metrics() } }));
      if (o.listen !== null) server = await startMetricsServer({ ...o.listen, registry: reg, logger: ctx.logger.child('metrics') });
      if (server !== null) ctx.logger.info('metrics endpoint', { url: server.url });
    },
    async stop() {
      stopHeights();
      inferenceMetrics?.close();
      await server?.close();
      server = null;
    },
    registry: () => registry,
    status: () => ({ url: server?.url ?? null }),
  };
}

/**
 * Each decided height counts its rounds and, when this node's core started it (ops pending,
 * membership to bring in, a resume, a validator's message), its decide latency: the driver's
 * own start and decision times (DecidedEntry.startedMs / decidedMs). Heights learnt by
 * catch-up without being started here count their rounds but no latency.
 */
function trackHeights(ctx: NodeContext, m: InferenceMetrics): () => void {
  return ctx.consensus.onDecided((e) => {
    m.onHeightDecided(e.round, e.startedMs === null ? null : Math.max(0, e.decidedMs - e.startedMs) / 1000);
  });
}
