import { defineConfig } from 'vitest/config';

// Tests load the compiled package from dist/ (npm test builds first): worker threads must start
// from compiled JS, and vitest does not transform files passed to `new Worker`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
