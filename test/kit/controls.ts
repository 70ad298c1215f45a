/** Promises and functions whose timing and failures a test decides. */
import { REDIS_MODE } from './redis.ts';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Marks a promise the test awaits later as handled now, so a rejection (a stub's TODO error,
 * say) fails the test where it is awaited instead of being reported as an unhandled rejection.
 * `settled` tells a waitFor() to stop waiting for a call that already finished or failed.
 */
export function inFlight<T>(promise: Promise<T>): Promise<T> & { readonly settled: boolean } {
  const tracked = Object.assign(promise, { settled: false });
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

/** How a tracked promise settled, and when on the (possibly fake) clock. */
export type Outcome<T> = { settled: boolean; value?: T; error?: unknown; atMs?: number };

/**
 * Records when and how a promise settled, without awaiting it: for a test that moves the clock
 * and then asks whether a waiter gave up, got its result, or is still waiting, and at what time.
 */
export function track<T>(promise: Promise<T>): Outcome<T> {
  const outcome: Outcome<T> = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value, atMs: Date.now() }),
    (error: unknown) => Object.assign(outcome, { settled: true, error, atMs: Date.now() }),
  );
  return outcome;
}

/**
 * Lets every promise chain that can progress do so, including mock Redis replies, without
 * moving fake time. setImmediate is never faked by the kit's clock, so this works under it.
 */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * How long to keep waiting for something the code under test should do without fake time
 * moving: mock replies are microtasks, so a quarter second of event-loop turns is plenty and a
 * failing test fails fast; a real server's replies need real time, up to two seconds.
 * Returns "keep waiting?".
 */
export function patience(timeoutMs = REDIS_MODE === 'real' ? 2_000 : 250): () => boolean {
  const deadline = performance.now() + timeoutMs;
  return () => performance.now() <= deadline;
}

/**
 * Lets promise chains and Redis replies move until `condition` holds, or patience runs out
 * (fake time does not move). Returns whether it held. Use it instead of a fixed number of
 * settle() rounds wherever a real server's reply must arrive first.
 */
export async function waitFor(condition: () => boolean, timeoutMs?: number): Promise<boolean> {
  const more = patience(timeoutMs);
  while (!condition()) {
    if (!more()) return false;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return true;
}

/**
 * waitFor for a condition that needs Redis to check (keys left, a TTL): reads until
 * `done(reading)` holds or patience runs out, and returns the last reading for the message.
 */
export async function readUntil<T>(
  read: () => Promise<T>,
  done: (reading: T) => boolean,
  timeoutMs?: number,
): Promise<T> {
  const more = patience(timeoutMs);
  for (;;) {
    const reading = await read();
    if (done(reading) || !more()) return reading;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** A call that was held (see ControlledFn.hold) and waits for the test to let it finish. */
export interface HeldCall<A extends unknown[], R> {
  args: A;
  /** Runs the real implementation now and settles the call with its result. */
  release(): Promise<void>;
  /** Settles the call with this value instead of running the implementation. */
  resolveWith(value: R): void;
  fail(error: unknown): void;
}

export interface ControlledFn<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /** Arguments of every call, in order. */
  readonly calls: A[];
  readonly callCount: number;
  /** From now on, calls wait in `held` until the test releases them. */
  hold(): void;
  /** Calls run at once again (already held calls stay held). */
  unhold(): void;
  readonly held: HeldCall<A, R>[];
  releaseAll(): Promise<void>;
  /** The next `times` calls reject with `error` (fault injection). */
  failNext(error: unknown, times?: number): void;
  /** The next `times` calls never settle: a hung dependency. */
  hangNext(times?: number): void;
}

/** Wraps an async implementation so a test can count, hold, fail or hang its calls. */
export function controlled<A extends unknown[], R>(implementation: (...args: A) => Promise<R>): ControlledFn<A, R> {
  const calls: A[] = [];
  const held: HeldCall<A, R>[] = [];
  const faults: Array<{ kind: 'fail'; error: unknown } | { kind: 'hang' }> = [];
  let holding = false;

  const fn = ((...args: A): Promise<R> => {
    calls.push(args);
    const fault = faults.shift();
    if (fault?.kind === 'fail') return Promise.reject(fault.error);
    if (fault?.kind === 'hang') return new Promise<R>(() => {});
    if (!holding) return implementation(...args);
    const result = deferred<R>();
    const call: HeldCall<A, R> = {
      args,
      async release() {
        held.splice(held.indexOf(call), 1);
        try {
          result.resolve(await implementation(...args));
        } catch (error) {
          result.reject(error);
        }
        await settle(2);
      },
      resolveWith(value) {
        held.splice(held.indexOf(call), 1);
        result.resolve(value);
      },
      fail(error) {
        held.splice(held.indexOf(call), 1);
        result.reject(error);
      },
    };
    held.push(call);
    return result.promise;
  }) as ControlledFn<A, R>;

  Object.defineProperties(fn, {
    calls: { get: () => calls },
    callCount: { get: () => calls.length },
    held: { get: () => held },
  });
  fn.hold = () => {
    holding = true;
  };
  fn.unhold = () => {
    holding = false;
  };
  fn.releaseAll = async () => {
    while (held.length) await held[0]!.release();
  };
  fn.failNext = (error, times = 1) => {
    for (let i = 0; i < times; i++) faults.push({ kind: 'fail', error });
  };
  fn.hangNext = (times = 1) => {
    for (let i = 0; i < times; i++) faults.push({ kind: 'hang' });
  };
  return fn;
}

/**
 * A fake database table: rows in a Map, `load` and `save` controllable like any ControlledFn.
 * `load` returns a deep copy so the code under test cannot mutate the "database" by accident.
 */
export function fakeTable<T>(rows: Iterable<[string, T]> = []) {
  const data = new Map<string, T>(rows);
  const load = controlled(async (id: string): Promise<T | null> => {
    const row = data.get(id);
    return row === undefined ? null : structuredClone(row);
  });
  const save = controlled(async (id: string, value: T): Promise<void> => {
    data.set(id, structuredClone(value));
  });
  return { data, load, save };
}
