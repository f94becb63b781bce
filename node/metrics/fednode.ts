/**
 * fednode's own metrics, on the same prom-client registry as the host's libp2p metrics
 * (node/p2p/host.ts). Every value is read from its owner at scrape time (prom-client
 * `collect`), so nothing here keeps a second count that could drift from the source:
 * the gossip counters ARE host.stats(), the load gauges ARE inference.status().
 *
 * Names follow Prometheus conventions: `fednode_` prefix, `_total` for counters, base
 * units in the name. Label values come from closed sets (topic, verdict, error code,
 * peer state), never from peer ids or model names, so the series count is bounded by
 * the code: 2 topics x 14 codes at most for the verdict counter.
 */
import { collectDefaultMetrics, Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { DirectStats } from '../p2p/direct.js';
import type { GossipErrorCode, GossipStats } from '../p2p/gossip.js';
import { TOPIC_NAMES, verdictFor } from '../p2p/gossip.js';

/** Where the numbers come from; each is optional except gossip and peers (the host). */
export interface FednodeMetricSources {
  /** host.stats() */
  readonly gossip: () => GossipStats;
  /** host.peers() */
  readonly peers: () => readonly { member: boolean; connections: number }[];
  /** Current member list (members.members()). */
  readonly members?: () => readonly string[];
  /** Own advert publisher: last seq and when it was published (adverts.selfSummary()). */
  readonly advertSelf?: () => { seq: number; lastPublishedMs: number | null };
  /** Peer table (adverts.peers()). */
  readonly advertPeers?: () => readonly { state: 'live' | 'stale' }[];
  /** Inference load (inference.status().load) and requests this node is routing now. */
  readonly inference?: () => { inFlight: number; queued: number; capacity: number; routing: number };
  /** The consensus driver's state (consensus.status()): decided height, round at the next height, mempool, validators. */
  readonly consensus?: () => { decidedHeight: number; round: number; mempoolOps: number; validators: number };
  /** Direct channels (host.directStats()). */
  readonly direct?: () => DirectStats;
  /** Rate-limited warnings by kind (inference.warnings()): written and summarised counts. */
  readonly warnings?: () => Readonly<Record<string, { total: number; suppressed: number }>>;
  /** Connections that failed the cluster key (pnet) check (host.pnetFailures()). */
  readonly pnet?: () => { failures: number };
  /** Wall clock for the advert age gauge. @default Date.now */
  readonly now?: () => number;
}

export interface FednodeMetricsOptions {
  /**
   * Also collect prom-client's process metrics (CPU, RSS, heap spaces, event-loop lag,
   * GC) on this registry. Once per PROCESS: each call starts its own event-loop and GC
   * monitors that prom-client never stops. @default false
   */
  processMetrics?: boolean;
}

/**
 * Resolution of the event-loop lag histogram (nodejs_eventloop_lag_*). prom-client's default,
 * 10 ms, wakes the loop 100 times a second: measured alone, ~0.7 % of a core on this 2-core
 * machine, most of an idle node's budget (issue 15: < 1 %). At 100 ms it costs ~0.1 %, and every
 * stall of 100 ms or more still delays a sample, so the lag an operator needs to see is kept.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** Register fednode's metrics on `registry` (the host's). Throws if called twice on one registry. */
export function registerFednodeMetrics(registry: Registry, src: FednodeMetricSources, o: FednodeMetricsOptions = {}): void {
  const registers = [registry];
  if (o.processMetrics === true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  registerGossipMetrics(registers, src);
  registerLinkMetrics(registers, src);
  registerStateMetrics(registers, src);
}

/** Gossip validation verdicts and the per-topic queues. */
function registerGossipMetrics(registers: Registry[], src: FednodeMetricSources): void {
  new Counter({
    name: 'fednode_gossip_verdicts_total',
    help: 'Gossip messages validated, by topic, verdict (accept/ignore/reject) and reason code (ok for accept)',
    labelNames: ['topic', 'verdict', 'code'] as const,
    registers,
    collect() {
      this.reset();
      const stats = src.gossip();
      for (const topic of TOPIC_NAMES) {
        const t = stats[topic];
        this.inc({ topic, verdict: 'accept', code: 'ok' }, t.accept);
        for (const [code, n] of Object.entries(t.byCode) as [GossipErrorCode, number][]) this.inc({ topic, verdict: verdictFor(code), code }, n);
      }
    },
  });
  const perTopic = (name: string, help: string, pick: (t: GossipStats[keyof GossipStats]) => number, kind: 'counter' | 'gauge'): void => {
    const collect = function (this: Counter<'topic'> | Gauge<'topic'>): void {
      this.reset();
      const stats = src.gossip();
      for (const topic of TOPIC_NAMES) {
        if (this instanceof Counter) this.inc({ topic }, pick(stats[topic]));
        else this.set({ topic }, pick(stats[topic]));
      }
    };
    if (kind === 'counter') new Counter({ name, help, labelNames: ['topic'] as const, registers, collect });
    else new Gauge({ name, help, labelNames: ['topic'] as const, registers, collect });
  };
  perTopic('fednode_gossip_queue_depth', 'Accepted gossip messages waiting in the topic queue for the application', (t) => t.queued, 'gauge');
  perTopic('fednode_gossip_queue_dropped_total', 'Accepted gossip messages dropped by the topic queue drop policy (queue full)', (t) => t.queueDropped, 'counter');
  perTopic('fednode_gossip_delivered_total', 'Gossip messages handed to the application', (t) => t.delivered, 'counter');
  perTopic('fednode_gossip_handler_errors_total', 'Application handlers that threw on a delivered gossip message', (t) => t.handlerErrors, 'counter');

}

/** Peers, warnings, the cluster-key handshake and the direct channels. */
function registerLinkMetrics(registers: Registry[], src: FednodeMetricSources): void {
  new Gauge({
    name: 'fednode_peers_connected',
    help: 'Peers with at least one open connection, by whether they are cluster members',
    labelNames: ['member'] as const,
    registers,
    collect() {
      let members = 0;
      let others = 0;
      for (const p of src.peers()) {
        if (p.connections === 0) continue;
        if (p.member) members++;
        else others++;
      }
      this.set({ member: 'true' }, members);
      this.set({ member: 'false' }, others);
    },
  });

  const { direct, warnings, pnet } = src;
  if (warnings !== undefined) {
    // kinds are fixed strings in the code (e.g. 'failover', 'chat request failed'), a closed set
    new Counter({ name: 'fednode_warnings_total', help: 'Warnings by kind: logged = written as a line, suppressed = summarised ("N more in the last 10 s")', labelNames: ['kind', 'outcome'] as const, registers, collect() {
      this.reset();
      for (const [kind, c] of Object.entries(warnings())) {
        this.inc({ kind, outcome: 'logged' }, c.total - c.suppressed);
        this.inc({ kind, outcome: 'suppressed' }, c.suppressed);
      }
    } });
  }
  if (pnet !== undefined) {
    new Counter({ name: 'fednode_pnet_handshake_failures_total', help: 'Connections aborted in the handshake after the cluster key (pnet) layer: this node or that peer has a different swarm.key', registers, collect() {
      this.reset();
      this.inc(pnet().failures);
    } });
  }
  if (direct !== undefined) {
    new Counter({ name: 'fednode_direct_frames_total', help: 'Direct-channel frames: sent (queued on an open channel), missing (no channel: the sender falls back to gossip), received (before validation)', labelNames: ['event'] as const, registers, collect() {
      const d = direct();
      this.reset();
      this.inc({ event: 'sent' }, d.sent);
      this.inc({ event: 'missing' }, d.missing);
      this.inc({ event: 'received' }, d.received);
    } });
    new Counter({ name: 'fednode_direct_channel_events_total', help: 'Direct-channel events: opened, open_failed, overflow_closed (queue bound), inbound_refused (non-member or graylisted), rejected (stream reset for a rejected frame)', labelNames: ['event'] as const, registers, collect() {
      const d = direct();
      this.reset();
      this.inc({ event: 'opened' }, d.opened);
      this.inc({ event: 'open_failed' }, d.openFailures);
      this.inc({ event: 'overflow_closed' }, d.overflowClosed);
      this.inc({ event: 'inbound_refused' }, d.inboundRefused);
      this.inc({ event: 'rejected' }, d.rejectedStreams);
    } });
    new Gauge({ name: 'fednode_direct_channels', help: 'Open outbound direct channels', registers, collect() {
      this.set(direct().channels);
    } });
  }
}

/** Members, this node's adverts and peer table, inference load and consensus progress. */
function registerStateMetrics(registers: Registry[], src: FednodeMetricSources): void {
  const { members, advertSelf, advertPeers, inference, consensus } = src;
  const now = src.now ?? Date.now;
  if (members !== undefined) {
    new Gauge({ name: 'fednode_members', help: 'Cluster members in this node\'s view (itself included)', registers, collect() {
      this.set(members().length);
    } });
  }
  if (advertSelf !== undefined) {
    new Gauge({ name: 'fednode_advert_seq', help: 'Sequence number of the last advert this node published (grows by one per publish)', registers, collect() {
      this.set(advertSelf().seq);
    } });
    new Gauge({ name: 'fednode_advert_age_seconds', help: 'Seconds since this node last published its advert (NaN before the first)', registers, collect() {
      const last = advertSelf().lastPublishedMs;
      this.set(last === null ? Number.NaN : Math.max(0, now() - last) / 1000);
    } });
  }
  if (advertPeers !== undefined) {
    new Gauge({ name: 'fednode_peer_table_entries', help: 'Members in the advert peer table, by state (live, stale)', labelNames: ['state'] as const, registers, collect() {
      const n = { live: 0, stale: 0 };
      for (const p of advertPeers()) n[p.state]++;
      this.set({ state: 'live' }, n.live);
      this.set({ state: 'stale' }, n.stale);
    } });
  }
  if (inference !== undefined) {
    new Gauge({ name: 'fednode_inference_requests', help: 'Inference requests on this node: in_flight and queued on its backends, routing = being routed by this node (local or forwarded)', labelNames: ['state'] as const, registers, collect() {
      const l = inference();
      this.set({ state: 'in_flight' }, l.inFlight);
      this.set({ state: 'queued' }, l.queued);
      this.set({ state: 'routing' }, l.routing);
    } });
    new Gauge({ name: 'fednode_inference_capacity', help: 'Concurrent requests this node\'s backends accept', registers, collect() {
      this.set(inference().capacity);
    } });
  }
  if (consensus !== undefined) {
    new Gauge({ name: 'fednode_consensus_decided_height', help: 'Last decided consensus height (0 at genesis)', registers, collect() {
      this.set(consensus().decidedHeight);
    } });
    new Gauge({ name: 'fednode_consensus_round', help: 'Round of the height being decided (above 0: rounds failed to commit)', registers, collect() {
      this.set(consensus().round);
    } });
    new Gauge({ name: 'fednode_consensus_mempool_ops', help: 'Pattern operations waiting to be proposed', registers, collect() {
      this.set(consensus().mempoolOps);
    } });
    new Gauge({ name: 'fednode_consensus_validators', help: 'Validators at the height being decided', registers, collect() {
      this.set(consensus().validators);
    } });
  }
}
