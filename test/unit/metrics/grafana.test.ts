/**
 * The shipped Grafana dashboard (contrib/grafana/fednode-dashboard.json) queries only series that
 * fednode registers, and every series issue 17 names has a panel.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerFednodeMetrics } from '../../../node/metrics/fednode.js';
import { registerInferenceMetrics } from '../../../node/metrics/inference.js';
import { RequestObservers } from '../../../node/metrics/requests.js';
import { ROOT } from '../../helpers/e2e.js';

describe('Grafana dashboard', () => {
  it('every fednode_* series it queries is registered; every issue-17 series is on a panel', async () => {
    const reg = new Registry();
    const zero = { accept: 0, byCode: {}, queued: 0, queueDropped: 0, delivered: 0, handlerErrors: 0 };
    registerFednodeMetrics(reg, {
      gossip: () => ({ adverts: zero, consensus: zero }) as never,
      peers: () => [],
      members: () => [],
      advertSelf: () => ({ seq: 0, lastPublishedMs: null }),
      advertPeers: () => [],
      inference: () => ({ inFlight: 0, queued: 0, capacity: 0, routing: 0 }),
      consensus: () => ({ decidedHeight: 0, round: 0, mempoolOps: 0, validators: 0 }),
      pnet: () => ({ failures: 0 }),
    });
    registerInferenceMetrics(reg, { requests: new RequestObservers(), selfBody: () => null, backends: () => ({ backends: [], backendErrors: {} }) });
    const registered = new Set((await reg.getMetricsAsJSON()).map((m) => m.name));
    const dash = JSON.parse(await readFile(join(ROOT, 'contrib', 'grafana', 'fednode-dashboard.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const queried = new Set(dash.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/fednode_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))));
    expect([...queried].filter((n) => !registered.has(n))).toEqual([]);
    const issue17 = ['fednode_requests_total', 'fednode_request_errors_total', 'fednode_failovers_total', 'fednode_requests_busy_total', 'fednode_ttft_seconds', 'fednode_request_duration_seconds', 'fednode_tokens_total', 'fednode_inference_requests', 'fednode_gpu_memory_used_bytes', 'fednode_gpu_memory_total_bytes', 'fednode_gpu_utilization_ratio', 'fednode_gpu_temperature_celsius', 'fednode_gpu_power_draw_watts', 'fednode_gpu_power_limit_watts', 'fednode_power_source', 'fednode_battery_ratio', 'fednode_power_profile', 'fednode_backend_up', 'fednode_consensus_decided_height', 'fednode_consensus_rounds_per_height', 'fednode_consensus_decide_seconds', 'fednode_pnet_handshake_failures_total'];
    expect(issue17.filter((n) => !queried.has(n))).toEqual([]);
    expect(issue17.filter((n) => !registered.has(n))).toEqual([]);
  });
});
