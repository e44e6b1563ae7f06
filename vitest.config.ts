import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Examples and tests import the package by name, exactly as users do.
    alias: [
      { find: /^node-hookd\/verify$/, replacement: here('./verify/index.ts') },
      { find: /^node-hookd\/prometheus$/, replacement: here('./prometheus/index.ts') },
      { find: /^node-hookd$/, replacement: here('./src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Real sockets and a real database: keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
  },
});
