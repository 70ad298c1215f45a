/**
 * How a test thread tells the runner it is alive. A loop that never yields to the event loop
 * (mock Redis replies are microtasks) stops the beat; a promise that never settles does not,
 * because timers still fire. The runner tells the two apart by that, and names the test that
 * was running from the announcement made as each test starts.
 */
declare module 'vitest' {
  interface ProvidedContext {
    /** The run's seed for test data (test/kit/random.ts), provided by the runner per run. */
    labSeed: number;
  }
}

export const HEARTBEAT_CHANNEL = 'system-design-lab:heartbeat';
export const BEAT_EVERY_MS = 100;

/**
 * The JavaScript heap a test thread may use, in MB (the test process's --max-old-space-size).
 * Grading every exercise needs well under half of it; the cap makes V8 size its heaps to what is
 * live (~20 MB lighter, npm run bench), and code that grows without bound fails in seconds with a
 * verdict that says so.
 */
export const TEST_HEAP_MB = 192;

export interface Heartbeat {
  /** Set once as a test starts: its full name ("core > …") and its suite file. */
  test?: string;
  file?: string;
  /**
   * Set once as a test ends. Vitest batches its own test reports from the thread, so when the
   * next test starves the event loop the last reports never leave; this one always does, so
   * grade and watch know the same finished tests before a hang.
   */
  finished?: { name: string; status: 'pass' | 'fail'; message?: string };
}
