import { defineConfig } from 'vitest/config';

/**
 * Test tiers (docs/ARCHITECTURE.md, "Tests"): each is a vitest project named after its folder.
 *   unit         pure code and in-process parts (real fs, no network beyond an in-process HTTP stub, no child processes of ours)
 *   integration  real libp2p over TCP on loopback, real LevelDB, real HTTP servers, in one process
 *   e2e          real `fednode` processes (the compiled binary), network namespaces, a real browser
 *   sim          seeded deterministic simulation (simnet and the routing simulator)
 * `npm test` runs them all; `npm run test:unit` (etc.) runs one. test/unit/meta/tiers.test.ts
 * fails when a test file sits outside every tier (it would silently never run).
 */
export const TIERS = ['unit', 'integration', 'e2e', 'sim'] as const;

export default defineConfig({
  test: {
    // Loaded before any test module: libp2p on Node 20 needs Promise.withResolvers.
    setupFiles: ['./node/polyfill.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: network tests in parallel forks starve each other's timers.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // The unit tier shares each worker's module cache between its files (isolate: false): its
    // files import the same crypto, consensus and node modules, and re-importing them per file
    // was over half of the tier's time (issue 12: `npm run test:unit` under 30 s). The tests
    // hold no module-level state between files (the tier passes both ways).
    // The other tiers start real hosts and processes and keep per-file isolation.
    projects: TIERS.map((name) => ({ extends: true, test: { name, include: [`test/${name}/**/*.test.ts`], ...(name === 'unit' ? { isolate: false } : {}) } })),
  },
});
