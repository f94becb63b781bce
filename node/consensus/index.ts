// The consensus driver: see api.ts for the seam, driver.ts for how effects are carried out.
export * from './api.js';
export { openConsensus, type DriverConsensus, type DriverCounters, type DriverOptions, type TestOnlyHooks } from './driver.js';
export { SYNC_PROTOCOL } from './sync.js';
