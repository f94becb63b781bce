/** Public surface of the simulator (see simnet/README.md). */
export { runSimnet, formatSummaryTable, parseSimnetArgs, replayCommand, MAX_REPORTED_VIOLATIONS } from './run.js';
export type { SimnetOptions, SimnetSummary, SeedViolation, NetworkParams } from './run.js';
export { runDriverSeed, DRIVER_FAULT_KINDS, DRIVER_BYZ_BEHAVIOURS, WORK_INTERVAL_MS_DEFAULT } from './driver-world.js';
export type { DriverWorldOptions, DriverSeedResult, DriverCountersSim } from './driver-world.js';
export { FAULT_KINDS, BYZ_BEHAVIOURS } from './faults.js';
export type { FaultKind, ByzBehaviour, FaultPlan } from './faults.js';
export * from './checkers.js';
export { runRoutingComparison, runRoutingPolicy, ROUTING_POLICIES } from './routing.js';
export type { RoutingSimOptions, RoutingComparison, RoutingPolicyResult, RoutingPolicyName, SimNodeSpec } from './routing.js';
export { Engine, EventHeap, TraceHash } from './engine.js';
export { Prng } from '../base/prng.js';
export { SimnetError } from './errors.js';
export type { SimnetErrorCode } from './errors.js';
