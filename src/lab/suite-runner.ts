/**
 * The one way grade and watch run suites: a warm test process (suite-host.ts) driven over IPC,
 * and the time limits enforced here, outside it. Mock Redis replies are microtasks, so a
 * learner's loop can starve every timer inside the test process; only a parent can stop it.
 *
 * The watchdog reads the test threads' heartbeat: when it stops, the event loop is starved (a
 * busy loop) and the process is killed at once; when it goes on past the time limit, something
 * awaited never settles. Either way the verdict names the test that was running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { exercisePaths, ROOT } from '../course/paths.ts';
import { hostEntry } from './host-entry.ts';
import { TEST_HEAP_MB } from './heartbeat.ts';
import type { ReportedModule, ReportedTest } from './report.ts';
import type { HostCommand, HostMessage } from './suite-host.ts';

/** No heartbeat for this long while a test runs: its thread's event loop is starved. */
export const STALL_MS = 3_000;

export interface Hang {
  /**
   * loop: the event loop stopped turning; promise: timers ran, the suite never finished;
   * memory: a test thread reached TEST_HEAP_MB.
   */
  kind: 'loop' | 'promise' | 'memory';
  afterMs: number;
  slug?: string;
  /** The test that was running, as "core > …". */
  test?: string;
}

export interface SuiteRun {
  modules: Map<string, ReportedModule>;
  /** Tests that finished, per suite, for suites whose module report never came (a hang). */
  finished: Map<string, ReportedTest[]>;
  unhandled: string[];
  hang?: Hang;
  /** The test process died or Vitest failed to run: what it said. */
  crash?: string;
}

/** Where the suites' Redis is: the mock (nothing set), one real server, or a Redis Cluster. */
export interface RedisOptions {
  /** A real server, or with `cluster` a seed node of a Redis Cluster. */
  redisUrl?: string;
  cluster?: boolean;
  /** On the mock: refuse what a cluster would refuse (multi-key commands across slots). */
  clusterRules?: boolean;
}

/** Just the Redis options of a larger options object (no undefined fields). */
export function redisOptionsOf(options: RedisOptions): RedisOptions {
  return {
    ...(options.redisUrl && { redisUrl: options.redisUrl }),
    ...(options.redisUrl && options.cluster && { cluster: true }),
    ...(options.clusterRules && { clusterRules: true }),
  };
}

export interface HostOptions extends RedisOptions {
  implRoot: string;
}

const hosts = new Set<SuiteHost>();
// Whatever ends the runner ends its test processes: no child outlives grade or watch.
process.on('exit', () => {
  for (const host of hosts) host.stop();
});

/** One test process. run() starts it when needed; after a kill the next run() starts another. */
export class SuiteHost {
  /** Keys of a real-Redis run live under lab:<runId>:, removed here after every run. */
  readonly runId = randomBytes(4).toString('hex');
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private stderr = '';
  private listener: ((message: HostMessage) => void) | null = null;
  private exitListener: (() => void) | null = null;

  private readonly options: HostOptions;

  constructor(options: HostOptions) {
    this.options = options;
  }

  /** Starts the test process (and Vitest in it) unless it is running; resolves when ready. */
  start(): Promise<void> {
    if (this.ready) return this.ready;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LAB_IMPL_ROOT: this.options.implRoot,
      LAB_RUN_ID: this.runId,
      FORCE_COLOR: '0',
      LAB_VITEST_CONFIG: path.join(ROOT, 'vitest.config.ts'),
    };
    delete env.REDIS_URL;
    delete env.REDIS_CLUSTER;
    delete env.LAB_CLUSTER_RULES;
    if (this.options.redisUrl) env[this.options.cluster ? 'REDIS_CLUSTER' : 'REDIS_URL'] = this.options.redisUrl;
    if (this.options.clusterRules) env.LAB_CLUSTER_RULES = '1';
    // A small young generation (V8 flags hold for the test threads too): the suites make heaps of
    // short-lived garbage, and with the default semi-space the process grew by ~70 MB for no gain
    // in speed (measured by npm run bench).
    const child = spawn(
      process.execPath,
      ['--max-semi-space-size=4', `--max-old-space-size=${TEST_HEAP_MB}`, hostEntry()],
      {
        cwd: ROOT,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    this.child = child;
    this.stderr = '';
    hosts.add(this);
    child.stdout!.resume();
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    child.on('message', (message: HostMessage) => this.listener?.(message));
    this.ready = new Promise<void>((resolve, reject) => {
      const onReady = (message: HostMessage) => message.type === 'ready' && resolve();
      child.on('message', onReady);
      child.on('exit', () => {
        reject(new Error(this.stderrTail() || 'The test process exited before it was ready.'));
        if (this.child === child) this.forget();
        this.exitListener?.();
      });
    });
    this.ready.catch(() => {}); // a caller that never awaits it must not see an unhandled rejection
    return this.ready;
  }

  private stderrTail() {
    return this.stderr.trim().split('\n').slice(-15).join('\n');
  }

  private forget() {
    this.child = null;
    this.ready = null;
    hosts.delete(this);
  }

  /** Kills the test process with its whole group, at once. */
  stop() {
    const child = this.child;
    if (!child?.pid) return;
    this.forget();
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }

  /**
   * Runs the suites of `slugs` and collects what they reported. `changed` are files saved since
   * the last run (watch mode). Resolves when the run ends, or when the watchdog stopped it.
   */
  async run(
    slugs: string[],
    { changed = [], limitMs, seed }: { changed?: string[]; limitMs: number; seed: number },
  ): Promise<SuiteRun> {
    const result: SuiteRun = { modules: new Map(), finished: new Map(), unhandled: [] };
    try {
      await this.start();
    } catch (error) {
      result.crash = (error as Error).message;
      return result;
    }
    const child = this.child!;
    const started = performance.now();
    let lastBeat = 0;
    let current: { test?: string; slug?: string } = {};
    try {
      await new Promise<void>((resolve) => {
        const finish = () => {
          clearInterval(watchdog);
          this.listener = null;
          this.exitListener = null;
          resolve();
        };
        const halt = (kind: Hang['kind']) => {
          result.hang = { kind, afterMs: Math.round(performance.now() - started), ...current };
          this.stop();
          finish();
        };
        // A thread that stopped beating a while ago was starved before memory ran out: a busy loop
        // (or garbage collection without end) is the diagnosis, whichever detector fires first.
        const starved = () => lastBeat > 0 && performance.now() - lastBeat > STALL_MS / 3;
        const watchdog = setInterval(() => {
          const now = performance.now();
          if (lastBeat && now - lastBeat > STALL_MS) halt('loop');
          else if (now - started > limitMs) halt(lastBeat && now - lastBeat < STALL_MS ? 'promise' : 'loop');
        }, 100);
        this.listener = (message) => {
          lastBeat = performance.now();
          if (message.type === 'beat') {
            if (message.test) current = { test: message.test, ...(message.slug && { slug: message.slug }) };
          } else if (message.type === 'test' || message.type === 'finished') {
            // Both the reporter and the thread's own announcement tell of a finished test; the
            // reporter's entry (with the learner's output) wins, whichever comes first.
            const list = result.finished.get(message.slug) ?? [];
            const known = list.findIndex((test) => test.name === message.test.name);
            if (known < 0) list.push(message.test);
            else if (message.type === 'test') list[known] = message.test;
            result.finished.set(message.slug, list);
          } else if (message.type === 'module') {
            result.modules.set(message.slug, message.module);
            current = {};
          } else if (message.type === 'run-end') {
            result.unhandled = message.unhandled;
            finish();
          } else if (message.type === 'out-of-memory') {
            // The test thread is gone and Vitest takes the process down with it: stop it first.
            halt(starved() ? 'loop' : 'memory');
          } else if (message.type === 'host-error') {
            result.crash = message.message;
            finish();
          }
        };
        this.exitListener = () => {
          // One allocation past the limit aborts the whole process before any message leaves.
          if (/heap out of memory|OOMErrorHandler/.test(this.stderr) && !result.crash && !result.hang)
            halt(starved() ? 'loop' : 'memory');
          else result.crash ??= `The test process exited:\n${this.stderrTail()}`;
          finish();
        };
        const suites = slugs.map((slug) => exercisePaths(slug).suite);
        child.send({ type: 'run', suites, changed, seed } satisfies HostCommand);
      });
    } finally {
      if (this.options.redisUrl) await removeRunKeys(this.options.redisUrl, this.runId, this.options.cluster);
    }
    return result;
  }
}

/**
 * Removes every key of a run from a real Redis, by SCAN and UNLINK (never FLUSH: the server
 * may hold real data). Tests clean up after themselves; this catches a suite that was killed.
 */
export async function removeRunKeys(url: string, runId: string, cluster = false): Promise<void> {
  const { Cluster, Redis } = await import('ioredis');
  if (cluster) {
    const admin = new Cluster([url], { lazyConnect: true, clusterRetryStrategy: () => null });
    try {
      await admin.connect();
      for (const node of admin.nodes('master')) {
        let cursor = '0';
        do {
          const [next, keys]: [string, string[]] = await node.scan(cursor, 'MATCH', `lab:${runId}:*`, 'COUNT', 1000);
          // One slot per command on a cluster; each key is on this node, so send it straight there.
          await Promise.all(keys.map((key: string) => node.unlink(key)));
          cursor = next;
        } while (cursor !== '0');
      }
    } catch {
      // Unreachable: the suite's verdict already says so.
    } finally {
      admin.disconnect();
    }
    return;
  }
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await admin.connect();
    // Suites with several nodes put each in its own logical database: look in every one.
    const reply = (await admin.config('GET', 'databases').catch(() => [])) as string[];
    const databases = Number(reply[1] ?? 1) || 1;
    for (let db = 0; db < databases; db++) {
      if (databases > 1) await admin.select(db);
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `lab:${runId}:*`, 'COUNT', 1000);
        if (keys.length) await admin.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } catch {
    // The server is unreachable: the suite's verdict already says so.
  } finally {
    admin.disconnect();
  }
}
