import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration suites start real llama-server processes; a 2-core machine needs room. This is
    // a hang detector, not a speed check: a loaded CI machine took over 60 s for the 64-entry
    // determinism corpus.
    testTimeout: 180_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Fails the run when a process a test started is still alive after the suite.
    globalSetup: ['test/support/global-teardown.ts'],
    poolOptions: { forks: { singleFork: false, maxForks: 2 } },
  },
});
