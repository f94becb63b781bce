/** Public surface of the simulator (see simnet/README.md). */
export { runSimnet, formatSummaryTable, parseSimnetArgs, replayCommand, MAX_REPORTED_VIOLATIONS } from './run.js';
export type { SimnetOptions, SimnetSummary, SeedViolation } from './run.js';
export { runSeed, FAULT_KINDS, BYZ_BEHAVIOURS, DEFAULT_NETWORK } from './world.js';
export type { WorldOptions, SeedResult, Counters, FaultKind, ByzBehaviour, NetworkParams, FaultPlan } from './world.js';
export * from './checkers.js';
export { runRoutingComparison, runRoutingPolicy, ROUTING_POLICIES } from './routing.js';
export type { RoutingSimOptions, RoutingComparison, RoutingPolicyResult, RoutingPolicyName, SimNodeSpec } from './routing.js';
export { Engine, EventHeap, TraceHash } from './engine.js';
export { Prng } from '../base/prng.js';
export { SimnetError } from './errors.js';
export type { SimnetErrorCode } from './errors.js';
