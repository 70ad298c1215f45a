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
        // dedupe: a graded folder outside the repo still gets the project's ioredis and zod.
        resolve: {
          alias: [{ find: /^@impl\//, replacement: `${implRoot}/` }],
          dedupe: ['ioredis', 'ioredis-mock', 'zod'],
        },
        test: {
          name: 'graded',
          include: ['test/graded/**/*.test.ts'],
          // Threads sharing one module graph: grading all five suites takes about half the time
          // and memory of isolated forks. Suites share no state (each test builds its own), and
          // the runner re-grades suites one by one when an error escapes a test.
          pool: 'threads',
          isolate: false,
          setupFiles: ['test/kit/setup.ts'],
          // Failure messages show the values that differ in full, never `[ …(3) ]`; the runner
          // caps huge ones itself (src/lab/report.ts).
          chaiConfig: { truncateThreshold: 0 },
          diff: { printBasicPrototype: false },
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
      {
        test: {
          name: 'site',
          include: ['test/site/**/*.test.ts'],
          // Builds dist/ once; every site test reads that build.
          globalSetup: ['test/site/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
