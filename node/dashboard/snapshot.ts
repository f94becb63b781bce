/**
 * The dashboard's one JSON snapshot (issue 17), built only from what the node already knows:
 * the decided membership and registry, the advert peer table, the host's connections, the
 * inference service, the router's decisions ring and this node's traffic book. Pure given its
 * sources (tests feed plain objects).
 *
 * Member state: `live` / `stale` as the peer table ages adverts (receive time, not the sender's
 * clock); `gone` = a member whose advert the table dropped (older than goneAfterPeriods) or never
 * had: it is still a member (membership is decided by consensus), but nothing is heard from it.
 */
import type { AdvertBody, AdvertGpu, AdvertPower } from '../adverts/advert.js';
import type { Registry } from '../../consensus/registry.js';
import type { ConsensusStatus } from '../consensus/api.js';
import type { RoutingDecision } from '../forward/router.js';
import type { PeerSummary } from '../p2p/host.js';
import type { PeerView } from '../runtime/adverts.js';
import type { InferenceService, RoutingStatus } from '../runtime/inference.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { nodeLoad } from '../adverts/profile.js';
import type { HistoryPoint } from './history.js';
import type { TrafficSummary } from './traffic.js';

export const SNAPSHOT_VERSION = 1;
/** Decisions shown: the router keeps 64; a screen shows 20. */
export const SNAPSHOT_DECISIONS_MAX = 20;

export type MemberState = 'live' | 'stale' | 'gone';

export interface NodeRow {
  readonly peerId: string;
  readonly name: string;
  readonly self: boolean;
  readonly state: MemberState;
  /** Age of the latest advert, ms (null: none held). */
  readonly advertAgeMs: number | null;
  readonly connected: boolean;
  readonly rttMs: number | null;
  readonly votingPower: number;
  readonly gpus: readonly AdvertGpu[];
  readonly power: AdvertPower | null;
  readonly profile: string | null;
  readonly profilePinned: boolean;
  /** Why the member runs this profile, read from its advert (the policy's rules: pinned, battery, heat, load). */
  readonly profileWhy: readonly string[];
  readonly inFlight: number | null;
  readonly queued: number | null;
  readonly capacity: number | null;
  readonly cpuLoad: number | null;
  readonly models: readonly string[];
  /** Generated tokens/s as the member measured it (its advert). */
  readonly tokensPerS: number | null;
  /** Requests/s this node routed to the member and their median TTFT. */
  readonly reqPerS: number;
  readonly ttftMsP50: number | null;
  /** This node's backends (self row only): ids and the last error of each that failed; null for other members. */
  readonly backends: { readonly ids: readonly string[]; readonly errors: Readonly<Record<string, string>> } | null;
}

export interface DashboardSnapshot {
  readonly v: number;
  readonly atMs: number;
  readonly self: { readonly peerId: string; readonly name: string; readonly cluster: string; readonly version: string };
  readonly nodes: readonly NodeRow[];
  readonly consensus: {
    readonly height: number;
    readonly round: number;
    readonly step: string;
    readonly decidedHeight: number;
    readonly lastDecidedMs: number | null;
    readonly registryHash: string;
    readonly validators: ReadonlyArray<{ readonly peerId: string; readonly name: string; readonly power: number }>;
    readonly pending: ReadonlyArray<{ readonly effectiveHeight: number; readonly kind: string; readonly peerId: string; readonly name: string | null }>;
    readonly routing: RoutingStatus;
  };
  readonly traffic: TrafficSummary & { readonly decisions: readonly RoutingDecision[] };
  readonly history: { readonly intervalMs: number; readonly series: Readonly<Record<string, readonly HistoryPoint[]>> };
}

export interface SnapshotSources {
  readonly self: DashboardSnapshot['self'];
  readonly nowMs: number;
  readonly members: readonly string[];
  readonly registry: Registry;
  readonly consensus: ConsensusStatus;
  readonly peers: readonly PeerView[];
  readonly selfBody: AdvertBody | null;
  readonly connections: readonly PeerSummary[];
  readonly inference: ReturnType<InferenceService['status']>;
  readonly decisions: readonly RoutingDecision[];
  readonly traffic: TrafficSummary;
  readonly history: { readonly intervalMs: number; readonly series: Readonly<Record<string, readonly HistoryPoint[]>> };
  /** Battery level under which a discharging member is forced to eco (the profile policy's rule). @default 20 */
  readonly batteryEcoBelowPct?: number;
}

/** The profile policy's rules, as far as an advert shows them (node/adverts/profile.ts). */
export function profileWhy(b: AdvertBody, batteryEcoBelowPct = 20): string[] {
  const why: string[] = [];
  if (b.power.source === 'battery' && b.power.charging !== true && b.power.batteryPct !== null && b.power.batteryPct < batteryEcoBelowPct) why.push(`battery ${b.power.batteryPct}% discharging: eco`);
  if (b.profilePinned) why.push('pinned by the operator');
  const hot = maxTemp(b.gpus);
  if (hot !== null) why.push(`hottest GPU ${hot} C`);
  // The policy's load: the busiest of request slots, GPU utilisation and CPU load (nodeLoad).
  const load = nodeLoad({ inFlight: b.inFlight, queued: b.queued, capacity: b.capacity, gpuUtilizationPct: b.gpus.map((g) => g.utilizationPct), cpuLoad: b.cpuLoad });
  why.push(load === null ? 'load unknown' : `load ${(load * 100).toFixed(0)}%`);
  return why;
}

export function maxTemp(gpus: readonly AdvertGpu[]): number | null {
  const t = gpus.flatMap((g) => (g.temperatureC === null ? [] : [g.temperatureC]));
  return t.length === 0 ? null : Math.max(...t);
}

/** In-flight plus queued over capacity (null when the member serves nothing). */
export function loadOf(b: Pick<AdvertBody, 'inFlight' | 'queued' | 'capacity'>): number | null {
  return b.capacity > 0 ? (b.inFlight + b.queued) / b.capacity : null;
}

export function buildSnapshot(s: SnapshotSources): DashboardSnapshot {
  const names = new Map<string, string>([[s.self.peerId, s.self.name]]);
  const power = new Map<string, number>();
  for (const m of s.registry.members) {
    const id = peerIdFromPublicKey(m.publicKey);
    if (id !== s.self.peerId) names.set(id, m.name);
    power.set(id, m.power);
  }
  const pending = s.registry.pending.map((p) => {
    const id = peerIdFromPublicKey(p.op.publicKey);
    if (p.op.kind === 'member.add') {
      names.set(id, names.get(id) ?? p.op.name);
      power.set(id, power.get(id) ?? p.op.power); // validators of the height include adds coming into force at it
    }
    return { effectiveHeight: p.effectiveHeight, kind: p.op.kind, peerId: id, name: names.get(id) ?? null };
  });
  const adverts = new Map(s.peers.map((p) => [p.peerId, p]));
  const conns = new Map(s.connections.map((c) => [c.peerId, c]));
  const ids = [...new Set([s.self.peerId, ...s.members])].sort();
  const nodes: NodeRow[] = ids.map((peerId) => {
    const isSelf = peerId === s.self.peerId;
    const view = adverts.get(peerId);
    const body = isSelf ? s.selfBody : (view?.advert ?? null);
    const state: MemberState = isSelf ? 'live' : view === undefined ? 'gone' : view.state;
    const c = conns.get(peerId);
    const t = s.traffic.perPeer[peerId];
    return {
      peerId,
      name: isSelf ? s.self.name : (names.get(peerId) ?? peerId.slice(-8)),
      self: isSelf,
      state,
      advertAgeMs: isSelf ? 0 : (view?.ageMs ?? null),
      connected: isSelf || (c !== undefined && c.connections > 0),
      rttMs: isSelf ? 0 : (c?.rttMs ?? null),
      votingPower: power.get(peerId) ?? 0,
      gpus: body?.gpus ?? [],
      power: body?.power ?? null,
      profile: body?.profile ?? null,
      profilePinned: body?.profilePinned ?? false,
      profileWhy: body === null ? [] : profileWhy(body, s.batteryEcoBelowPct),
      inFlight: isSelf ? s.inference.load.inFlight : (body?.inFlight ?? null),
      queued: isSelf ? s.inference.load.queued : (body?.queued ?? null),
      capacity: isSelf ? (s.inference.backends.length > 0 ? s.inference.load.capacity : 0) : (body?.capacity ?? null),
      cpuLoad: body?.cpuLoad ?? null,
      models: isSelf ? s.inference.models : (body?.models ?? []),
      tokensPerS: body?.tokensPerS ?? null,
      reqPerS: t?.reqPerS ?? 0,
      ttftMsP50: t?.ttftMsP50 ?? null,
      backends: isSelf ? { ids: s.inference.backends, errors: s.inference.backendErrors } : null,
    };
  });
  const c = s.consensus;
  return {
    v: SNAPSHOT_VERSION,
    atMs: s.nowMs,
    self: s.self,
    nodes,
    consensus: {
      height: c.height,
      round: c.round,
      step: c.step,
      decidedHeight: c.decidedHeight,
      lastDecidedMs: c.lastDecidedMs,
      registryHash: c.registryHash,
      validators: c.validators.map((v) => ({ peerId: v, name: names.get(v) ?? v.slice(-8), power: power.get(v) ?? 0 })),
      pending,
      routing: s.inference.routing,
    },
    traffic: { ...s.traffic, decisions: s.decisions.slice(-SNAPSHOT_DECISIONS_MAX) },
    history: s.history,
  };
}
