/** libp2p's metrics bound to one host's prom-client registry (see hostMetrics). */
import { prometheusMetrics } from '@libp2p/prometheus-metrics';
import { Registry } from 'prom-client';

type Libp2pMetrics = ReturnType<ReturnType<typeof prometheusMetrics>>;
type MetricsComponents = Parameters<ReturnType<typeof prometheusMetrics>>[0];
const REGISTER_METHODS = [
  'registerMetric',
  'registerMetricGroup',
  'registerCounter',
  'registerCounterGroup',
  'registerHistogram',
  'registerHistogramGroup',
  'registerSummary',
  'registerSummaryGroup',
] as const;

/**
 * @libp2p/prometheus-metrics bound to ONE host's registry.
 *
 * The package keeps a process-wide map from metric name to metric object and reuses
 * an existing entry instead of registering a new one; constructing an instance clears
 * that map. With several hosts in one process (tests, the bench) a component of host A
 * that registers at start() (tcp listener, connection manager) after host B was
 * created would get B's object (A's numbers in B's registry, A's /metrics missing
 * them), and a restarted host could register a name twice in its own registry, which
 * prom-client refuses with a throw. So each register* call here goes through a map
 * private to the host, and before delegating, a throwaway instance (on a scratch
 * registry, no default metrics) clears the shared map so the package registers a
 * fresh metric in this host's registry. Process metrics (CPU, heap, event loop) are
 * left to node/metrics, once per process.
 */
export function hostMetrics(registry: Registry): (components: MetricsComponents) => Libp2pMetrics {
  return (components) => {
    const inner = prometheusMetrics({ registry, collectDefaultMetrics: false })(components);
    const clearShared = (): void => void prometheusMetrics({ registry: new Registry(), collectDefaultMetrics: false })(components);
    // One entry per metric name libp2p registers (tens); bounded by the code, not by traffic.
    const own = new Map<string, unknown>();
    const m = inner as unknown as Record<(typeof REGISTER_METHODS)[number], (name: string, opts?: unknown) => unknown>;
    for (const method of REGISTER_METHODS) {
      const original = m[method].bind(inner);
      m[method] = (name, opts) => {
        if (own.has(name)) return own.get(name);
        clearShared();
        const metric = original(name, opts);
        own.set(name, metric);
        return metric;
      };
    }
    return inner;
  };
}
