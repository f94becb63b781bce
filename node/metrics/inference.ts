/**
 * Inference, hardware and consensus-timing series (issue 17), on the host's registry next to
 * fednode.ts's. Request series are counted from the request observations
 * (node/metrics/requests.ts) as requests end; hardware series are read from this node's own
 * latest readings (the advert body) at scrape time, and a reading the node could not make is
 * left out, never reported as 0.
 *
 * Labels: `model` (as asked) and `peer` (the serving member's peer id, `none` when no member
 * produced output). Both sets are bounded by the cluster (members, models they serve), and the
 * label pairs are capped at MAX_LABEL_PAIRS so a client inventing model names cannot grow the
 * series without end: beyond the cap, new pairs are counted under model="_other".
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AdvertBody } from '../adverts/advert.js';
import { POWER_PROFILES } from '../adverts/profile.js';
import type { RequestObservation, RequestObservers } from './requests.js';

/** Distinct (model, peer) pairs labelled; 64 models x 16 members with room. */
export const MAX_LABEL_PAIRS = 1_024;
/** TTFT buckets (s): a loopback simulated token at ~1 ms up to a cold 70B model load. */
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Duration buckets (s): a short completion to a long generation. */
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Rounds a height took: 1 is the good case; beyond 8 the cluster is in trouble. */
const ROUND_BUCKETS = [1, 2, 3, 4, 6, 8, 16];
/** Decide latency (s): LAN commits take milliseconds; seconds mean failed rounds. */
const DECIDE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface InferenceMetricSources {
  readonly requests: RequestObservers;
  /** This node's latest readings (adverts.selfBody()). */
  readonly selfBody: () => AdvertBody | null;
  /** Backend ids and the last error of each that failed (inference.status()). */
  readonly backends: () => { backends: readonly string[]; backendErrors: Readonly<Record<string, string>> };
}

export interface InferenceMetrics {
  /** Count one decided height (round it decided in, seconds from the height's start to its decision). */
  onHeightDecided(round: number, latencyS: number | null): void;
  /** Stop observing requests. */
  close(): void;
}

export function registerInferenceMetrics(registry: Registry, src: InferenceMetricSources): InferenceMetrics {
  const registers = [registry];
  const pairs = new Set<string>();
  const labels = (o: RequestObservation): { model: string; peer: string } => {
    const peer = o.servedBy ?? 'none';
    const key = `${o.model}\u0000${peer}`;
    if (!pairs.has(key)) {
      if (pairs.size >= MAX_LABEL_PAIRS) return { model: '_other', peer };
      pairs.add(key);
    }
    return { model: o.model, peer };
  };
  const requests = new Counter({ name: 'fednode_requests_total', help: 'Inference requests this node routed, by model and serving peer, counted when they end', labelNames: ['model', 'peer'] as const, registers });
  const errors = new Counter({ name: 'fednode_request_errors_total', help: 'Routed requests that failed, by model, serving peer (none: no candidate produced output) and error code', labelNames: ['model', 'peer', 'code'] as const, registers });
  const failovers = new Counter({ name: 'fednode_failovers_total', help: 'Candidates that failed before the first token and were replaced by the next one, by model and the peer that finally served', labelNames: ['model', 'peer'] as const, registers });
  const busy = new Counter({ name: 'fednode_requests_busy_total', help: 'Requests answered 429 (every candidate busy, or this node routing its maximum), by model and peer', labelNames: ['model', 'peer'] as const, registers });
  const ttft = new Histogram({ name: 'fednode_ttft_seconds', help: 'Time from the request reaching the router to its first token, by model and serving peer', labelNames: ['model', 'peer'] as const, buckets: TTFT_BUCKETS, registers });
  const duration = new Histogram({ name: 'fednode_request_duration_seconds', help: 'Time from the request reaching the router to its end (any outcome), by model and serving peer', labelNames: ['model', 'peer'] as const, buckets: DURATION_BUCKETS, registers });
  const tokens = new Counter({ name: 'fednode_tokens_total', help: 'Tokens of completed requests by model, serving peer and direction (in: prompt, out: completion)', labelNames: ['model', 'peer', 'direction'] as const, registers });
  const unsubscribe = src.requests.add((o) => {
    const l = labels(o);
    requests.inc(l);
    if (o.outcome === 'error') errors.inc({ ...l, code: o.errorCode ?? 'internal' });
    if (o.outcome === 'busy') busy.inc(l);
    if (o.attempts > 1) failovers.inc(l, o.attempts - 1);
    if (o.ttftMs !== null) ttft.observe(l, o.ttftMs / 1000);
    duration.observe(l, o.durationMs / 1000);
    if (o.outcome === 'ok') {
      tokens.inc({ ...l, direction: 'in' }, o.promptTokens);
      tokens.inc({ ...l, direction: 'out' }, o.completionTokens);
    }
  });

  const gpuGauge = (name: string, help: string, pick: (g: AdvertBody['gpus'][number]) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: ['gpu', 'name'] as const,
      registers,
      collect() {
        this.reset();
        for (const g of src.selfBody()?.gpus ?? []) {
          const v = pick(g);
          if (v !== null) this.set({ gpu: String(g.index), name: g.name }, v);
        }
      },
    });
  };
  gpuGauge('fednode_gpu_memory_used_bytes', 'GPU memory in use (nvidia-smi memory.used)', (g) => (g.memoryUsedMiB === null ? null : g.memoryUsedMiB * 2 ** 20));
  gpuGauge('fednode_gpu_memory_total_bytes', 'GPU memory (nvidia-smi memory.total)', (g) => (g.memoryTotalMiB === null ? null : g.memoryTotalMiB * 2 ** 20));
  gpuGauge('fednode_gpu_utilization_ratio', 'GPU utilisation, 0-1 (nvidia-smi utilization.gpu)', (g) => (g.utilizationPct === null ? null : g.utilizationPct / 100));
  gpuGauge('fednode_gpu_temperature_celsius', 'GPU temperature (nvidia-smi temperature.gpu)', (g) => g.temperatureC);
  gpuGauge('fednode_gpu_power_draw_watts', 'GPU power draw (nvidia-smi power.draw)', (g) => g.powerDrawW);
  gpuGauge('fednode_gpu_power_limit_watts', 'GPU power limit (nvidia-smi power.limit)', (g) => g.powerLimitW);

  new Gauge({ name: 'fednode_power_source', help: '1 for the power source this node runs on (ac, battery, unknown), 0 for the others', labelNames: ['source'] as const, registers, collect() {
    const s = src.selfBody()?.power.source ?? null;
    for (const x of ['ac', 'battery', 'unknown'] as const) this.set({ source: x }, (s ?? 'unknown') === x ? 1 : 0);
  } });
  new Gauge({ name: 'fednode_battery_ratio', help: 'Battery charge 0-1 (absent without a battery reading)', registers, collect() {
    this.reset();
    const b = src.selfBody()?.power.batteryPct ?? null;
    if (b !== null) this.set(b / 100);
  } });
  new Gauge({ name: 'fednode_power_profile', help: '1 for the power profile in force (eco, balanced, boost, turbo), 0 for the others; pinned=true when an operator pinned it', labelNames: ['profile', 'pinned'] as const, registers, collect() {
    this.reset();
    const b = src.selfBody();
    if (b === null) return;
    for (const p of POWER_PROFILES) this.set({ profile: p, pinned: String(b.profilePinned) }, b.profile === p ? 1 : 0);
  } });
  new Gauge({ name: 'fednode_backend_up', help: '1 when the backend answered its last model listing, 0 when it failed (see fednode status for the error)', labelNames: ['backend'] as const, registers, collect() {
    this.reset();
    const s = src.backends();
    for (const id of s.backends) this.set({ backend: id }, id in s.backendErrors ? 0 : 1);
  } });

  const rounds = new Histogram({ name: 'fednode_consensus_rounds_per_height', help: 'Rounds each decided height took (1 = decided in its first round)', buckets: ROUND_BUCKETS, registers });
  const decide = new Histogram({ name: 'fednode_consensus_decide_seconds', help: 'Seconds from this node starting a height (ops pending, membership to bring into force, a resume, or a validator message for it) to its decision; heights learnt by catch-up are not counted', buckets: DECIDE_BUCKETS, registers });
  return {
    onHeightDecided(round, latencyS) {
      rounds.observe(round + 1);
      if (latencyS !== null) decide.observe(latencyS);
    },
    close: unsubscribe,
  };
}
