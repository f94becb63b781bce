/**
 * The simulator's seeded PRNG is the project's one PRNG, xoshiro128** in
 * node/routing/prng.ts (pure, shared with the routing simulation and seeded tests).
 */
export { Prng, PrngError } from '../node/routing/prng.js';
