import './node/polyfill.js';
import { runDriverSeed, DRIVER_FAULT_KINDS, DRIVER_BYZ_BEHAVIOURS } from './simnet/driver-world.js';
const n = Number(process.argv[2] ?? 16);
const t0 = performance.now();
const r = await runDriverSeed({ nodes: n, byzantine: Math.floor((n - 1) / 3), heights: 10, seed: 1, faults: DRIVER_FAULT_KINDS, behaviours: DRIVER_BYZ_BEHAVIOURS });
const ms = performance.now() - t0;
console.log('n', n, 'events', r.events, 'us/event', (ms * 1000 / r.events).toFixed(1), 'sim/real', (r.simTimeUs / 1000 / ms).toFixed(2), JSON.stringify(r.counters.deliveredByKind));
