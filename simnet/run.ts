/**
 * Many seeds of the PRODUCTION consensus driver over the simulator (simnet/driver-world.ts):
 * `runSimnet` (what `fednode simnet`, scripts/simnet-long.sh and bench/simnet.ts call),
 * `formatSummaryTable`, and `parseSimnetArgs` (the CLI argument spec). Nothing here prints:
 * lines go to an optional `write(line)` and the summary is returned.
 */
import { SimnetError } from './errors.js';
import { TraceHash } from './engine.js';
import { BYZ_BEHAVIOURS, FAULT_KINDS, type ByzBehaviour, type FaultKind } from './faults.js';
import { runDriverSeed, type DriverCountersSim, type DriverSeedResult, type DriverWorldOptions } from './driver-world.js';
import { isSafetyViolation } from './checkers.js';
import type { ViolationKind } from './checkers.js';

export interface SimnetOptions {
  nodes: number;
  /** @default floor((nodes - 1) / 3) */
  byzantine?: number;
  seeds: number;
  heights: number;
  /** @default 'all' */
  faults?: readonly FaultKind[] | 'all' | 'none';
  /** @default 'all' */
  behaviours?: readonly ByzBehaviour[] | 'all';
  /** First seed; seed i of the run is (seed + i) mod 2^32. @default 1 */
  seed?: number;
  network?: NetworkParams;
  /** Negative control (see DriverWorldOptions.splitBrain). @default false */
  splitBrain?: boolean;
  /** Wall clock for the speed figure only (ms). @default performance.now */
  now?: () => number;
}

/** The simulated network's knobs (each has the driver world's default). */
export interface NetworkParams {
  /** Per-link median one-way latency (ms). @default 5 */
  readonly latencyMedianMs?: number;
  /** Fault phase length (ms); the network is stable afterwards. @default 3000 */
  readonly faultPhaseMs?: number;
  /** The seeded client submits one op this often (ms). @default 1000 */
  readonly workIntervalMs?: number;
}

export interface SeedViolation {
  seed: number;
  kind: ViolationKind;
  safety: boolean;
  height: number;
  nodes: number[];
  detail: string;
  /** The command that replays exactly this run. */
  replay: string;
  /** Last events about the violating height (from a deterministic re-run of the seed). */
  trace: string[];
}

export interface SimnetSummary {
  nodes: number;
  byzantine: number;
  f: number;
  heights: number;
  firstSeed: number;
  seedsRun: number;
  faults: FaultKind[];
  behaviours: ByzBehaviour[];
  seedsWithViolations: number;
  safetyViolations: number;
  livenessViolations: number;
  /** First violations with their replay (at most MAX_REPORTED_VIOLATIONS). */
  violations: SeedViolation[];
  /** Sum over seeds of the heights every honest node decided. */
  commits: number;
  roundsPerHeight: number;
  maxRound: number;
  events: number;
  simSeconds: number;
  realSeconds: number;
  simSecondsPerRealSecond: number;
  /** Hash over every seed's trace hash: one number that changes if any run changes. */
  combinedTraceHash: string;
  counters: DriverCountersSim;
}

/** Violations reported in full (each costs a re-run for its trace): the first few tell the story. */
export const MAX_REPORTED_VIOLATIONS = 10;
/** Trace lines per reported violation. */
export const MAX_TRACE_LINES = 60;

function resolveFaults(f: SimnetOptions['faults']): FaultKind[] {
  if (f === undefined || f === 'all') return [...FAULT_KINDS];
  if (f === 'none') return [];
  return [...f];
}

function resolveBehaviours(b: SimnetOptions['behaviours']): ByzBehaviour[] {
  if (b === undefined || b === 'all') return [...BYZ_BEHAVIOURS];
  return [...b];
}

export function replayCommand(o: { nodes: number; byzantine: number; heights: number; faults: readonly FaultKind[]; behaviours: readonly ByzBehaviour[]; splitBrain?: boolean }, seed: number): string {
  const faults = o.faults.length === 0 ? 'none' : o.faults.length === FAULT_KINDS.length ? 'all' : o.faults.join(',');
  const byz = o.behaviours.length === BYZ_BEHAVIOURS.length ? 'all' : o.behaviours.join(',');
  return `fednode simnet --nodes ${o.nodes} --byzantine ${o.byzantine} --heights ${o.heights} --faults ${faults} --byz-behaviours ${byz} --seed ${seed} --seeds 1${o.splitBrain === true ? ' --split-brain' : ''}`;
}

/** Adds one seed's counters into the run's (numbers add; per-kind maps add per key). */
function addCounters(sum: DriverCountersSim, c: DriverCountersSim): void {
  const s = sum as unknown as Record<string, number | Record<string, number>>;
  for (const [k, v] of Object.entries(c) as [string, number | Record<string, number>][]) {
    if (typeof v === 'number') s[k] = ((s[k] as number | undefined) ?? 0) + v;
    else {
      const into = (s[k] as Record<string, number> | undefined) ?? {};
      for (const [kk, vv] of Object.entries(v)) into[kk] = (into[kk] ?? 0) + vv;
      s[k] = into;
    }
  }
}

export async function runSimnet(opts: SimnetOptions, write?: (line: string) => void): Promise<SimnetSummary> {
  const nodes = opts.nodes;
  const f = Math.floor((nodes - 1) / 3);
  const byzantine = opts.byzantine ?? f;
  const faults = resolveFaults(opts.faults);
  const behaviours = resolveBehaviours(opts.behaviours);
  const firstSeed = opts.seed ?? 1;
  if (!Number.isInteger(opts.seeds) || opts.seeds < 1 || opts.seeds > 1_000_000) throw new SimnetError('ERR_SIMNET_OPTIONS', `seeds must be an integer in 1..1000000: ${opts.seeds}`);
  if (!Number.isInteger(firstSeed) || firstSeed < 0 || firstSeed > 0xffffffff) throw new SimnetError('ERR_SIMNET_OPTIONS', `seed must be an integer in 0..2^32-1: ${firstSeed}`);
  const now = opts.now ?? (() => performance.now());
  const combined = new TraceHash();
  const summary: SimnetSummary = {
    nodes,
    byzantine,
    f,
    heights: opts.heights,
    firstSeed,
    seedsRun: 0,
    faults,
    behaviours,
    seedsWithViolations: 0,
    safetyViolations: 0,
    livenessViolations: 0,
    violations: [],
    commits: 0,
    roundsPerHeight: 0,
    maxRound: 0,
    events: 0,
    simSeconds: 0,
    realSeconds: 0,
    simSecondsPerRealSecond: 0,
    combinedTraceHash: '',
    counters: {} as DriverCountersSim,
  };
  let roundWeighted = 0;
  let simUs = 0;
  const t0 = now();
  for (let i = 0; i < opts.seeds; i++) {
    const seed = (firstSeed + i) >>> 0;
    const base: DriverWorldOptions = { nodes, byzantine, heights: opts.heights, seed, faults, behaviours, ...opts.network, ...(opts.splitBrain === true ? { splitBrain: true } : {}) };
    const r: DriverSeedResult = await runDriverSeed(base);
    summary.seedsRun++;
    combined.str(r.traceHash);
    summary.commits += r.commits;
    roundWeighted += r.roundsPerHeight * r.commits;
    summary.maxRound = Math.max(summary.maxRound, r.maxRound);
    summary.events += r.events;
    simUs += r.simTimeUs;
    addCounters(summary.counters, r.counters);
    if (r.violations.length > 0) {
      summary.seedsWithViolations++;
      for (const v of r.violations) {
        const safety = isSafetyViolation(v);
        if (safety) summary.safetyViolations++;
        else summary.livenessViolations++;
      }
      const worst = r.violations.find(isSafetyViolation) ?? r.violations[0];
      if (worst === undefined) continue;
      const replay = replayCommand({ nodes, byzantine, heights: opts.heights, faults, behaviours, splitBrain: opts.splitBrain === true }, seed);
      write?.(`seed ${seed}: ${worst.kind} at height ${worst.height}: ${worst.detail} (replay: ${replay})`);
      if (summary.violations.length < MAX_REPORTED_VIOLATIONS) {
        // Deterministic re-run with tracing of the violating height (costs one more run).
        const again = await runDriverSeed({ ...base, traceHeight: worst.height });
        summary.violations.push({ seed, kind: worst.kind, safety: isSafetyViolation(worst), height: worst.height, nodes: worst.nodes, detail: worst.detail, replay, trace: again.trace.slice(-MAX_TRACE_LINES) });
      }
    }
  }
  summary.realSeconds = (now() - t0) / 1000;
  summary.simSeconds = simUs / 1e6;
  summary.simSecondsPerRealSecond = summary.realSeconds > 0 ? summary.simSeconds / summary.realSeconds : 0;
  summary.roundsPerHeight = summary.commits > 0 ? roundWeighted / summary.commits : 0;
  summary.combinedTraceHash = combined.hex();
  return summary;
}

export function formatSummaryTable(s: SimnetSummary): string[] {
  const rows: [string, string][] = [
    ['nodes / byzantine (f)', `${s.nodes} / ${s.byzantine} (${s.f})`],
    ['seeds run', `${s.seedsRun} (from ${s.firstSeed})`],
    ['heights per seed', String(s.heights)],
    ['faults', s.faults.length === 0 ? 'none' : s.faults.join(',')],
    ['byzantine behaviours', s.byzantine === 0 ? '-' : s.behaviours.join(',')],
    ['safety violations', String(s.safetyViolations)],
    ['liveness violations', String(s.livenessViolations)],
    ['seeds with violations', String(s.seedsWithViolations)],
    ['commits (all seeds)', String(s.commits)],
    ['rounds per height', s.roundsPerHeight.toFixed(3)],
    ['max decision round', String(s.maxRound)],
    ['events', String(s.events)],
    ['simulated seconds', s.simSeconds.toFixed(1)],
    ['real seconds', s.realSeconds.toFixed(2)],
    ['sim s per real s', s.simSecondsPerRealSecond.toFixed(1)],
    ['combined trace hash', s.combinedTraceHash],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  for (const v of s.violations) {
    lines.push('');
    lines.push(`VIOLATION seed ${v.seed}: ${v.kind} at height ${v.height} (nodes ${v.nodes.join(',')}): ${v.detail}`);
    lines.push(`  replay: ${v.replay}`);
    for (const t of v.trace) lines.push(`  | ${t}`);
  }
  return lines;
}

function intArg(name: string, v: string | undefined, lo: number, hi: number): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new SimnetError('ERR_SIMNET_OPTIONS', `${name} needs an integer value, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  const x = Number(v);
  if (x < lo || x > hi) throw new SimnetError('ERR_SIMNET_OPTIONS', `${name} must be in ${lo}..${hi}, got ${x}`);
  return x;
}

/**
 * The `fednode simnet` argument spec (README): --nodes N --byzantine B --seeds K
 * --heights H --faults LIST --byz-behaviours LIST --seed S [--split-brain] [--json]. `--json` is
 * left to the caller (returned as `json`).
 */
export function parseSimnetArgs(argv: readonly string[]): SimnetOptions & { json: boolean } {
  let nodes = 4;
  let byzantine: number | undefined;
  let seeds = 100;
  let heights = 20;
  let faults: FaultKind[] | 'all' | 'none' = 'all';
  let behaviours: ByzBehaviour[] | 'all' = 'all';
  let seed = 1;
  let json = false;
  let splitBrain = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--nodes':
        nodes = intArg('--nodes', value(), 1, 100);
        break;
      case '--byzantine':
        byzantine = intArg('--byzantine', value(), 0, 99);
        break;
      case '--seeds':
        seeds = intArg('--seeds', value(), 1, 1_000_000);
        break;
      case '--heights':
        heights = intArg('--heights', value(), 1, 100_000);
        break;
      case '--seed':
        seed = intArg('--seed', value(), 0, 0xffffffff);
        break;
      case '--faults': {
        const v = value();
        if (v === undefined) throw new SimnetError('ERR_SIMNET_OPTIONS', '--faults needs a value: all, none, or a comma list');
        if (v === 'all' || v === 'none') faults = v;
        else {
          faults = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0) as FaultKind[];
          for (const x of faults) if (!FAULT_KINDS.includes(x)) throw new SimnetError('ERR_SIMNET_OPTIONS', `unknown fault '${x}' (known: ${FAULT_KINDS.join(', ')}, all, none)`);
        }
        break;
      }
      case '--byz-behaviours': {
        const v = value();
        if (v === undefined) throw new SimnetError('ERR_SIMNET_OPTIONS', '--byz-behaviours needs a value: all or a comma list');
        if (v === 'all') behaviours = v;
        else {
          behaviours = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0) as ByzBehaviour[];
          for (const x of behaviours) if (!BYZ_BEHAVIOURS.includes(x)) throw new SimnetError('ERR_SIMNET_OPTIONS', `unknown Byzantine behaviour '${x}' (known: ${BYZ_BEHAVIOURS.join(', ')}, all)`);
        }
        break;
      }
      case '--json':
        json = true;
        break;
      case '--split-brain':
        splitBrain = true;
        break;
      default:
        throw new SimnetError('ERR_SIMNET_OPTIONS', `unknown simnet option '${a}'`);
    }
  }
  if (byzantine !== undefined && byzantine >= nodes) throw new SimnetError('ERR_SIMNET_OPTIONS', `--byzantine (${byzantine}) must be less than --nodes (${nodes})`);
  return { nodes, ...(byzantine !== undefined ? { byzantine } : {}), seeds, heights, faults, behaviours, seed, json, ...(splitBrain ? { splitBrain } : {}) };
}
