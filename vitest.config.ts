import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Loaded before any test module: libp2p on Node 20 needs Promise.withResolvers.
    setupFiles: ['./node/polyfill.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: network tests in parallel forks starve each other's timers.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
