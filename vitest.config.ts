import path from 'node:path';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;

/**
 * The one switch between a graded suite and the code it grades: `@impl/<slug>/<slug>.ts`
 * resolves into LAB_IMPL_ROOT (set by the runner: exercises/, solutions/ or a student's folder).
 */
const implRoot = path.resolve(root, process.env.LAB_IMPL_ROOT ?? 'exercises');

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias: [{ find: /^@impl\//, replacement: `${implRoot}/` }] },
        test: {
          name: 'graded',
          include: ['test/graded/**/*.test.ts'],
          setupFiles: ['test/kit/setup.ts'],
          // Long enough for a real Redis round trip; a learner's hung promise fails here.
          testTimeout: 5_000,
          hookTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'self',
          include: ['test/self/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
