/**
 * The node process's young-generation (V8 new space) budget.
 *
 * Measured (bench/gossip.ts, 10 nodes, all bootstrapping to node 0): the hub relays
 * every advert and allocates ~3.6 MB/s of short-lived garbage in libp2p's stream
 * plumbing (pnet/noise/yamux iterators, pushables, per-frame buffers). At that rate V8
 * doubles new space after each scavenge that promotes enough, up to its default
 * ceiling of two 16 MiB semi-spaces: 32 MiB of the hub's 122 MiB RSS, against 1 MiB on
 * a leaf node whose lower allocation rate lets V8 shrink new space again. Nothing in
 * it is live data; it is heap sizing.
 *
 * The clean fix is `node --max-semi-space-size=N` at process start, but V8 fixes that
 * ceiling when the heap is created, so it cannot be set from inside a running process.
 * `--semi-space-growth-factor` however is read each time new space grows, so the cap
 * below sets the factor to 1 (no growth) while one more doubling would exceed the budget
 * and back to V8's default 2 otherwise (V8 shrinks new space by itself when allocation
 * slows). It must run before the bulk of the modules load: loading libp2p alone grows
 * new space to 16 MiB, and the cap can stop growth but not shrink the space. When the operator passed
 * --max-semi-space-size (command line or NODE_OPTIONS) their setting rules and this
 * does nothing.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/**
 * New-space budget (both semi-spaces): 8 MiB = 4 MiB semi-spaces. At the hub's
 * ~3.6 MB/s that is about one scavenge a second (each well under 1 ms), and it keeps
 * the hub's RSS ~24 MiB below the uncapped 32 MiB new space. 1 MiB semi-spaces (V8's
 * initial size) would scavenge several times a second and promote messages still in
 * flight into old space.
 */
export const YOUNG_GENERATION_BUDGET_MIB = 8;
/** V8's default --semi-space-growth-factor (see `node --v8-options`). */
const V8_DEFAULT_GROWTH_FACTOR = 2;

export interface YoungGenerationCap {
  /** Why the cap is or is not active. */
  readonly mode: 'runtime-cap' | 'operator-flag';
  readonly budgetMiB: number;
  /** Times the growth factor was switched (for tests and metrics). */
  switches(): number;
  /** Stop watching and restore V8's default growth factor. */
  stop(): void;
}

/** The new_space size (both semi-spaces) in bytes. */
export function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Did the operator size the young generation on the command line or in NODE_OPTIONS? */
export function operatorSetSemiSpace(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const has = (a: string): boolean => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(a);
  return execArgv.some(has) || (nodeOptions ?? '').split(/\s+/).some(has);
}

/** The process's active runtime cap (V8 flags are process-wide, so there is at most one). */
let active: YoungGenerationCap | null = null;

/**
 * Keep V8's new space at or below `budgetMiB` (see the file comment). Process-wide and
 * idempotent: a second call (a test that runs `fednode start` in-process twice) returns
 * the cap already running. Called from the node process's entry (fednode start, the
 * bench's node children).
 */
export function capYoungGeneration(budgetMiB: number = YOUNG_GENERATION_BUDGET_MIB, env: { execArgv: readonly string[]; nodeOptions: string | undefined } = { execArgv: process.execArgv, nodeOptions: process.env['NODE_OPTIONS'] }): YoungGenerationCap {
  if (!(Number.isInteger(budgetMiB) && budgetMiB >= 2 && budgetMiB <= 64)) throw new RangeError(`young generation budget must be an integer MiB in [2, 64], got ${budgetMiB}`);
  if (operatorSetSemiSpace(env.execArgv, env.nodeOptions)) {
    return { mode: 'operator-flag', budgetMiB, switches: () => 0, stop: () => undefined };
  }
  if (active !== null) return active;
  const budget = budgetMiB * 2 ** 20;
  let frozen = false;
  let count = 0;
  const setGrowth = (freeze: boolean): void => {
    frozen = freeze;
    count++;
    setFlagsFromString(`--semi-space-growth-factor=${freeze ? 1 : V8_DEFAULT_GROWTH_FACTOR}`);
  };
  // V8 resizes new space at the end of a scavenge; check after each GC. GC entries reach
  // the observer on the next event-loop turn, so growth within one long synchronous
  // stretch is seen only after it (a node's work comes in turns: messages, timers).
  // Growth is allowed exactly while the next doubling still fits the budget.
  const check = (): void => {
    const freeze = newSpaceBytes() * V8_DEFAULT_GROWTH_FACTOR > budget;
    if (freeze !== frozen) setGrowth(freeze);
  };
  check();
  const obs = new PerformanceObserver(() => check());
  obs.observe({ entryTypes: ['gc'] });
  const cap: YoungGenerationCap = {
    mode: 'runtime-cap',
    budgetMiB,
    switches: () => count,
    stop() {
      obs.disconnect();
      if (frozen) setGrowth(false);
      if (active === cap) active = null;
    },
  };
  active = cap;
  return cap;
}

/**
 * glibc malloc arenas for a node process. glibc gives each thread that mallocs (libuv's
 * pool, LevelDB's compaction thread, the native crypto and hashing addons) an arena of its
 * own, up to 8 per core, and freed memory in them stays resident. Measured here (10-node
 * `fednode cluster`, idle, new space capped): hub 119 MiB RSS with glibc's default, 111 MiB
 * with 2 arenas, the others 4 MiB lower too; a node's native allocations are small and
 * rarely concurrent, so 2 arenas cost no measurable lock contention. glibc reads the
 * variable when the process starts, so it is set for the node processes that fednode
 * spawns (`fednode cluster`); an operator running `fednode start` under a service manager
 * sets it in the unit's environment (README). An operator's own value always wins.
 */
export const MALLOC_ARENA_MAX_DEFAULT = '2';

/** `env` for a node child process: MALLOC_ARENA_MAX defaulted (see above), everything else as given. */
export function nodeProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env['MALLOC_ARENA_MAX'] === undefined ? { ...env, MALLOC_ARENA_MAX: MALLOC_ARENA_MAX_DEFAULT } : env;
}
