import type { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { StampedeProtectedCache, WaitTimeoutError } from '@impl/stampede-lock/stampede-lock.ts';
import {
  controlled,
  type ControlledFn,
  crashAtEveryTrip,
  createLabRedis,
  keysWithoutTtl,
  type LabRedis,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  readUntil,
  settle,
  track,
  type Outcome,
  useFakeClock,
  waitFor,
} from '../kit/index.ts';

interface Report {
  id: string;
  title: string;
  total: number;
}

const report = (): Report => ({ id: randomId('r'), title: randomText(3), total: randomInteger(1, 1_000_000) });
/** A load of its own for one caller, so the test can tell whose load ran. */
const newLoad = () => controlled(async (_key: string) => report());

// A busy-polling waiter never yields to timers on the mock (its replies are microtasks), so it
// would freeze the test. After this many round trips every command fails instead, and the test
// reports busy polling.
const ROUND_TRIP_CAP = 20_000;

interface Options<T> {
  load?: ControlledFn<[string], T>;
  ttlSeconds?: number;
  jitterSeconds?: number;
  lockTtlMs?: number;
  waitTimeoutMs?: number;
  retryDelayMs?: number | null;
  earlyRefresh?: { beta: number };
  staleWhileRevalidateSeconds?: number;
}

const describeError = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/** A fresh Redis, a fake clock, a controlled load and a cache (the first "process"). */
async function setup<T = Report>(options: Options<T> = {}, produce: () => T = report as unknown as () => T) {
  const lab = await createLabRedis();
  const clock = useFakeClock(lab);
  /** (Re)arms the busy-polling guard: a sweep of faults at every trip lifts it when it is done. */
  const capRoundTrips = () => lab.roundTrips.breakAfter(ROUND_TRIP_CAP);
  capRoundTrips();
  const value = produce();
  const load = options.load ?? controlled(async (_key: string) => structuredClone(value));
  const config = {
    load,
    ttlSeconds: options.ttlSeconds ?? randomInteger(120, 900),
    lockTtlMs: options.lockTtlMs ?? randomInteger(2_000, 4_000),
    waitTimeoutMs: options.waitTimeoutMs ?? randomInteger(5_000, 8_000),
    ...(options.retryDelayMs !== null && { retryDelayMs: options.retryDelayMs ?? randomInteger(20, 50) }),
    ...(options.jitterSeconds !== undefined && { jitterSeconds: options.jitterSeconds }),
    ...(options.earlyRefresh && { earlyRefresh: options.earlyRefresh }),
    ...(options.staleWhileRevalidateSeconds !== undefined && {
      staleWhileRevalidateSeconds: options.staleWhileRevalidateSeconds,
    }),
  };
  const cache = new StampedeProtectedCache<T>({ redis: lab.redis, ...config });
  /** Another process: its own client over the same Redis, and by default the same database. */
  const process = (redis: Redis = lab.connect(), processLoad = load) =>
    new StampedeProtectedCache<T>({ ...config, redis, load: processLoad });

  /** Lets replies arrive: microtasks on the mock, real I/O (`pings` round trips of it) on a server. */
  async function flush(pings = 4) {
    await settle();
    if (lab.mode === 'real') {
      for (let i = 0; i < pings; i++) {
        await lab.raw.ping();
        await settle(3);
      }
    }
  }

  /** Moves fake time forward in steps, letting replies arrive after each step. */
  async function wait(totalMs: number, stepMs = config.retryDelayMs ?? 10) {
    for (let elapsed = 0; elapsed < totalMs; ) {
      const step = Math.min(stepMs, totalMs - elapsed);
      await clock.advance(step);
      elapsed += step;
      await flush();
    }
    expectNoBusyPolling();
  }

  function expectNoBusyPolling() {
    expect(
      lab.roundTrips.count,
      `the code under test made ${ROUND_TRIP_CAP} round trips (${lab.roundTrips.summary()}) without fake time moving: ` +
        'waiters are polling Redis in a loop with no pause. Sleep retryDelayMs (setTimeout) between two checks, or every ' +
        'waiter hammers Redis as hard as the stampede would have hammered the database',
    ).toBeLessThan(ROUND_TRIP_CAP);
  }

  return { lab, clock, load, value, cache, config, process, flush, wait, capRoundTrips, expectNoBusyPolling };
}

/**
 * A client for a process that is about to die: after crash(), nothing it sends reaches Redis
 * and nothing it awaits ever settles (a killed process, or one frozen for good).
 */
function crashable(client: Redis) {
  let crashed = false;
  const dead: any = new Proxy(() => {}, {
    get: (_target, property) => (property === 'then' ? () => {} : dead),
    apply: () => dead,
  });
  const proxy = new Proxy(client, {
    get(target, property) {
      if (crashed) return dead;
      const member = Reflect.get(target, property, target);
      return typeof member === 'function' ? member.bind(target) : member;
    },
  });
  return { redis: proxy as Redis, crash: () => (crashed = true) };
}

/**
 * What a fill may leave: the value under `key`, and any key the learner keeps beside it (XFetch's
 * delta, a version) as long as it expires no later than the value. A lock left behind is caught
 * by behaviour instead (the next get() after a delete must load at once), so a design's own key
 * names are its business.
 */
async function expectOnlyValueAndCompanions(lab: LabRedis, key: string, when: string) {
  const keys = await lab.keys();
  expect(keys, `${when}, the value key "${key}" is missing from Redis`).toContain(key);
  const valueTtl = await lab.ttlMs(key);
  for (const other of keys.filter((k) => k !== key)) {
    const ttl = await lab.ttlMs(other);
    expect(
      ttl >= 0 && ttl <= valueTtl + 1_000,
      `${when}, "${other}" is left beside the value with a TTL of ${ttl} ms (the value's: ${valueTtl} ms). A key you keep about a value must expire with it (write it in the same MULTI or script, with the same TTL); one that outlives it, or never expires, piles up for every key ever cached`,
    ).toBe(true);
  }
}

function isWaitTimeout(error: unknown) {
  return error instanceof WaitTimeoutError || (error instanceof Error && error.name === 'WaitTimeoutError');
}

describe('core', () => {
  test('a miss loads once and returns the value; the next get() is served from Redis', async () => {
    const { cache, load, value, flush } = await setup();
    const key = randomId('report');

    const first = await cache.get(key);
    await flush();
    const second = await cache.get(key);

    expect(first, 'get() on a miss must return what load() returned').toEqual(value);
    expect(second, 'the second get() must return the same value, from Redis').toEqual(value);
    expect(
      load.calls.map(([k]) => k),
      `load() must be called once, with the key ("${key}"); after the first fill the value comes from Redis, or the cache protects nothing`,
    ).toEqual([key]);
  });

  test('any JSON value round-trips, including 0, "", false and null', async () => {
    const values = new Map<string, unknown>([
      [randomId('zero'), 0],
      [randomId('empty'), ''],
      [randomId('no'), false],
      [randomId('null'), null],
      [randomId('list'), [randomText(1)]],
    ]);
    const load = controlled(async (key: string) => values.get(key));
    const { cache } = await setup<unknown>({ load });

    for (const [key, expected] of values) {
      expect(
        await cache.get(key),
        `get() of a key whose value is ${JSON.stringify(expected)} returned something else`,
      ).toEqual(expected);
      expect(await cache.get(key), `a cached ${JSON.stringify(expected)} came back changed`).toEqual(expected);
    }

    expect(
      load.callCount,
      `${values.size} keys read twice each loaded ${load.callCount} times: a cached 0, "", false or null was treated as a miss. Decide a hit by whether Redis had the key, never by the truthiness of the value`,
    ).toBe(values.size);
  });

  test('the value is stored under the key itself with a TTL of ttlSeconds, in seconds', async () => {
    const { cache, lab, config } = await setup();
    const key = randomId('report');

    await cache.get(key);
    const ttlMs = await lab.ttlMs(key);

    expect(
      ttlMs,
      `nothing was stored under "${key}": the value must live in Redis under the key passed to get()`,
    ).not.toBe(-2);
    expect(
      ttlMs,
      'the cached value has no TTL: it would never be recomputed, and the cache would grow without bound',
    ).not.toBe(-1);
    expect(
      ttlMs,
      `the TTL is ${ttlMs} ms but ttlSeconds is ${config.ttlSeconds}: check the unit (EX takes seconds, PX milliseconds)`,
    ).toBeGreaterThan((config.ttlSeconds - 2) * 1000);
    expect(ttlMs, `the TTL is ${ttlMs} ms, longer than ttlSeconds = ${config.ttlSeconds} s`).toBeLessThanOrEqual(
      config.ttlSeconds * 1000,
    );
  });

  test('jitter spreads the TTLs of keys filled together within ttlSeconds + jitterSeconds', async () => {
    const jitterSeconds = randomInteger(60, 120);
    const { cache, lab, config } = await setup({ jitterSeconds });
    const keys = Array.from({ length: 20 }, () => randomId('tile'));

    await Promise.all(keys.map((key) => cache.get(key)));
    const ttls = await Promise.all(keys.map((key) => lab.ttlMs(key)));

    const low = config.ttlSeconds;
    const high = config.ttlSeconds + jitterSeconds;
    for (const ttl of ttls) {
      expect(
        ttl,
        `each TTL must be between ttlSeconds (${low} s) and ttlSeconds + jitterSeconds (${high} s); got ${ttl} ms`,
      ).toBeGreaterThan((low - 2) * 1000);
      expect(
        ttl,
        `each TTL must be between ttlSeconds (${low} s) and ttlSeconds + jitterSeconds (${high} s); got ${ttl} ms`,
      ).toBeLessThanOrEqual(high * 1000);
    }
    const distinctSeconds = new Set(ttls.map((ttl) => Math.round(ttl / 1000))).size;
    expect(
      distinctSeconds,
      `20 keys filled together got only ${distinctSeconds} distinct TTL(s): they expire in the same second and stampede together. Add a random 0..jitterSeconds to each TTL`,
    ).toBeGreaterThan(5);
  });

  test('when get() returns, the lock is gone, and every other key expires with the value', async () => {
    const { cache, lab, load } = await setup();
    const key = randomId('report');

    await cache.get(key);
    await expectOnlyValueAndCompanions(lab, key, 'after a fill');
    await lab.raw.del(key); // a writer invalidates the value; a lock left behind would still be there
    const next = track(cache.get(key));
    // At once: every reply may arrive, however many round trips it takes, but no time passes.
    await waitFor(() => next.settled);

    expect(
      next.settled && load.callCount === 2,
      `after the value was deleted, the next get() did not load at once (${load.callCount} loads, ${next.settled ? 'settled' : 'still waiting with no time passing'}): the previous holder's lock was still there. Release the lock when the fill is done, before get() returns`,
    ).toBe(true);
  });

  test('250 concurrent misses on a cold key, from three processes, cause one load and all get the value', async () => {
    const { cache, process, load, value, wait, config, lab } = await setup();
    const key = randomId('homepage');
    const caches = [cache, process(), process()];
    load.hold();

    const callers = Array.from({ length: 250 }, (_, i) => track(caches[i % 3]!.get(key)));
    await waitFor(() => load.callCount > 0);
    await wait(config.retryDelayMs! * 3);
    const loadsWhileHeld = load.callCount;
    load.unhold();
    await load.releaseAll();
    await wait(config.retryDelayMs! * 3);
    await waitFor(() => callers.every((caller) => caller.settled));

    expect(
      loadsWhileHeld,
      `250 concurrent get() calls on a cold key started ${loadsWhileHeld} loads; exactly one must run while the others wait. Take the lock with one atomic command (SET key token NX PX lockTtlMs); a lock held only in this process does not stop the other processes`,
    ).toBe(1);
    const failed = callers.filter((caller) => !caller.settled || caller.error !== undefined);
    expect(
      failed.length,
      `${failed.length} of 250 callers did not get the value within 3 × retryDelayMs of the fill${failed[0]?.error ? ` (first error: ${describeError(failed[0].error)})` : ''}`,
    ).toBe(0);
    expect(
      callers.every((caller) => JSON.stringify(caller.value) === JSON.stringify(value)),
      'every caller must get the loaded value',
    ).toBe(true);
    expect(load.callCount, 'after the fill, nobody should load again').toBe(1);
    await expectOnlyValueAndCompanions(lab, key, 'after every caller returned');
  });

  test('a caller that misses just as another caller finishes the fill does not load again', async () => {
    const { lab, process, load, value, flush, wait, config, capRoundTrips } = await setup();
    /** The holder's load returns, and the holder fills and releases (the replies arrive; no time passes). */
    async function finish(key: string, holder: Outcome<Report>) {
      load.held.find((call) => call.args[0] === key)?.resolveWith(structuredClone(value));
      await waitFor(() => holder.settled);
    }

    // The holder finishes right before round trip 1, 2, 3… of a late caller's get(), until the
    // late caller has found the lock and gone to sleep first. Whatever it saw before, the key
    // must be loaded once.
    await raceAtEveryTrip({
      async arrange() {
        capRoundTrips();
        const key = randomId('race');
        load.hold();
        const holder = track(process().get(key));
        await waitFor(() => load.held.some((call) => call.args[0] === key));
        load.unhold();
        return { lab, key, holder, caller: process(), late: undefined as Outcome<Report> | undefined };
      },
      async act(state) {
        state.late = track(state.caller.get(state.key));
        await flush();
      },
      race: ({ key, holder }) => finish(key, holder),
      async check({ key, holder, late }, at) {
        capRoundTrips();
        await finish(key, holder);
        await wait(config.retryDelayMs! * 3);
        await waitFor(() => late!.settled);

        const loads = load.calls.filter(([k]) => k === key).length;
        const when = at.finishedFirst
          ? 'A caller that found the lock'
          : `The holder filled the key and released its lock right before round trip ${at.trip + 1} of a late caller's get(), and the late caller`;
        expect(
          loads,
          `${when} loaded the key again (${loads} loads). Between your "miss" and your "lock acquired" the holder filled the key and released the lock. Check for the value again once you hold the lock, or read and lock in one atomic step (a Lua script)`,
        ).toBe(1);
        expect(
          holder.value !== undefined && late!.value !== undefined,
          `both callers must get the value${late!.error ? ` (the late caller rejected: ${describeError(late!.error)})` : ''}`,
        ).toBe(true);
      },
    });
  });

  test('a crash at any point of a miss leaves no key without a TTL', async () => {
    const { lab, process, wait, config } = await setup();

    // Cut the connection after 0, 1, 2… round trips of a cold get(), until get() finishes
    // first: wherever the process dies, what it left in Redis must expire on its own.
    await crashAtEveryTrip({
      arrange: async () => ({ lab, key: randomId('report'), cache: process() }),
      async act({ key, cache }) {
        track(cache.get(key));
        await wait(config.retryDelayMs! * 2);
      },
      async check(_state, at) {
        const left = await keysWithoutTtl(lab);

        const what = at.finishedFirst
          ? 'a miss that ran to the end'
          : `the connection broke after ${at.trip} round trip(s) of a miss and`;
        expect(
          left,
          `${what} left ${left.map((k) => `"${k}"`).join(' and ')} with no TTL. A lock without a TTL blocks this key forever: every later caller waits for a fill that never comes. Take the lock and set its expiry in one command (SET … NX PX), and store the value with SET … EX, never SETNX or SET followed by EXPIRE`,
        ).toEqual([]);
      },
    });
  });

  test.each(['fails', 'succeeds'] as const)(
    "a holder whose lock expired mid-load does not release the next holder's lock (its load %s)",
    async (outcome) => {
      const lockTtlMs = randomInteger(1_000, 2_000);
      const { cache, process, load, flush, wait, lab, config } = await setup({
        lockTtlMs,
        waitTimeoutMs: lockTtlMs * 4,
      });
      const key = randomId('report');
      const b = process();
      const c = process();
      load.hold();

      // A takes the lock; its load outlives lockTtlMs, so the lock expires and B takes it.
      const holderA = track(cache.get(key));
      await waitFor(() => load.callCount === 1);
      await wait(lockTtlMs + 1, 250);
      const holderB = track(b.get(key));
      await waitFor(() => load.callCount === 2);
      const loadsAfterB = load.callCount;
      const [loadA, loadB] = load.held;
      // A finishes while B is still loading.
      if (outcome === 'fails') loadA?.fail(new Error('query timeout'));
      else loadA?.resolveWith(report());
      await waitFor(() => holderA.settled);
      if (outcome === 'succeeds') await lab.raw.del(key); // and a writer invalidates A's value
      load.unhold();
      const callerC = track(c.get(key));
      await flush();
      await wait(config.retryDelayMs! * 3);
      const loadsWhileBHolds = load.callCount;
      await loadB?.release();
      await wait(config.retryDelayMs! * 3);
      await waitFor(() => holderB.settled && callerC.settled);

      expect(
        loadsAfterB,
        `A's lock should expire after lockTtlMs (${lockTtlMs} ms) and B should then take it and load; ${loadsAfterB} load(s) were started`,
      ).toBe(2);
      expect(
        loadsWhileBHolds,
        `C started a load while B still held the lock: when A's load ${outcome === 'fails' ? 'failed' : 'finished'}, A deleted the lock that B held by then. Store a random token in the lock and release with a compare-and-delete script (delete only if the lock still holds your token); a plain DEL lets a third caller in, and a GET then DEL has the same race in a smaller window`,
      ).toBe(2);
      expect(
        holderA.settled && holderB.settled && callerC.settled,
        'A, B and C must all finish once the loads are done',
      ).toBe(true);
      expect(callerC.value, 'C must get the value B loaded').toEqual(holderB.value);
    },
  );

  test("a holder whose lock expires and passes to another caller just before any round trip after its load leaves that caller's lock in place", async () => {
    const { lab, clock, process, flush, wait, config, capRoundTrips } = await setup();
    const { lockTtlMs, retryDelayMs } = config;

    // Right before round trip 1, 2, 3… of a holder's get(), once its load has returned: the
    // holder's lock expires (its load outlived lockTtlMs), a writer deletes the value, and B
    // takes the lock and starts loading. Whatever the holder still sends must leave B's lock.
    await raceAtEveryTrip({
      async arrange() {
        capRoundTrips();
        const [loadA, loadB, loadC] = [newLoad(), newLoad(), newLoad()];
        loadB.hold();
        const [holder, b, c] = [
          process(lab.connect(), loadA),
          process(lab.connect(), loadB),
          process(lab.connect(), loadC),
        ];
        return {
          lab,
          key: randomId('report'),
          loadA,
          loadB,
          loadC,
          holder,
          b,
          c,
          callerB: undefined as Outcome<Report> | undefined,
          raced: undefined as Promise<void> | undefined,
        };
      },
      act: ({ holder, key }) => holder.get(key),
      race(state) {
        if (state.loadA.callCount === 0) return Promise.resolve(); // the holder has not loaded yet
        state.raced = (async () => {
          await clock.advance(lockTtlMs + 1);
          await lab.raw.del(state.key);
          state.callerB = track(state.b.get(state.key));
          await waitFor(() => state.loadB.callCount > 0);
        })();
        return state.raced;
      },
      async check({ key, loadB, loadC, c, callerB, raced }, at) {
        capRoundTrips();
        await raced;
        if (!callerB) return; // the race came before the holder's load, or never

        expect(
          loadB.callCount,
          `once the holder's lock had been held lockTtlMs (${lockTtlMs} ms), another caller could not take it and load: the lock must expire on its own after lockTtlMs (SET … NX PX), or a holder whose load is slow blocks the key for everyone`,
        ).toBe(1);

        await lab.raw.del(key); // a writer invalidates whatever the holder wrote
        const callerC = track(c.get(key));
        await flush();
        await wait(retryDelayMs! * 3);
        const loadsByC = loadC.callCount;
        loadB.unhold();
        await loadB.releaseAll();
        await wait(retryDelayMs! * 3);
        await waitFor(() => callerB.settled && callerC.settled);

        expect(
          loadsByC,
          `right before round trip ${at.trip + 1} of a holder's get(), after its load, the holder's lock expired and B took it and began loading; then a third caller C found no lock and loaded too, while B was still loading: the holder deleted the lock that B held by then. Release with one atomic compare-and-delete (a Lua script, or WATCH/MULTI): a GET then DEL has the same race, with the lock changing hands between your GET and your DEL, and every such slip adds a load the lock was there to prevent`,
        ).toBe(0);
        expect(callerC.value, 'C must get the value B loaded').toEqual(callerB.value);
      },
    });
  });

  test("a waiter that checks between any two round trips of the holder's fill finds the lock or the value and does not load again", async () => {
    const { lab, process, flush, wait, config, capRoundTrips } = await setup();

    // Right before round trip 1, 2, 3… of a holder's get(), once its load has returned, a
    // waiter in another process looks for the key (its first check, whatever it finds).
    await raceAtEveryTrip({
      async arrange() {
        capRoundTrips();
        const [holderLoad, waiterLoad] = [newLoad(), newLoad()];
        const [holder, waiter] = [process(lab.connect(), holderLoad), process(lab.connect(), waiterLoad)];
        return {
          lab,
          key: randomId('report'),
          holderLoad,
          waiterLoad,
          holder,
          waiter,
          waiting: undefined as Outcome<Report> | undefined,
        };
      },
      act: ({ holder, key }) => holder.get(key),
      async race(state) {
        if (state.holderLoad.callCount === 0) return; // the holder has not loaded yet
        state.waiting = track(state.waiter.get(state.key));
        await flush();
      },
      async check({ holderLoad, waiterLoad, waiting }, at) {
        capRoundTrips();
        if (!waiting) return; // the race came before the holder's load, or never
        await wait(config.retryDelayMs! * 3);
        await waitFor(() => waiting.settled);

        const loads = holderLoad.callCount + waiterLoad.callCount;
        expect(
          loads,
          `right before round trip ${at.trip + 1} of the holder's get(), after its load, a waiter in another process looked for the key, found neither the value nor the lock, and loaded it again (${loads} loads): the holder released its lock before the value was written. Write the value first and release after (or both in one MULTI or script); under load every waiter that checks in that gap is another load on the database`,
        ).toBe(1);
        const holderValue = 'value' in at.outcome ? at.outcome.value : `an error (${describeError(at.outcome.error)})`;
        expect(waiting.value, 'the waiter must get the value the holder loaded').toEqual(holderValue);
      },
    });
  });

  test('a load that throws rejects its caller with that error; nothing is cached and no lock is left', async () => {
    const { cache, load, value, lab } = await setup();
    const key = randomId('report');
    const error = new Error(`database timeout ${randomId('e')}`);
    load.failNext(error);

    const outcome = await cache.get(key).then(
      (returned) => ({ returned }),
      (thrown: unknown) => ({ thrown: describeError(thrown) }),
    );
    const keys = await readUntil(
      () => lab.keys(),
      (left) => left.length === 0,
    );
    const next = track(cache.get(key));
    await waitFor(() => next.settled);

    expect(
      outcome,
      'when load() throws, get() must reject with that same error: the caller must know the value is unavailable',
    ).toEqual({ thrown: describeError(error) });
    expect(
      keys,
      'after a failed load Redis must hold nothing for the key: no cached error, and no lock (release it in a finally), or the next caller waits lockTtlMs for nothing',
    ).toEqual([]);
    expect(
      next.settled,
      'after a failed load, the next get() must load again at once; it was still waiting with no time passing, probably behind a lock the failed holder did not release',
    ).toBe(true);
    expect(next.value, 'after a failed load, the next get() must load and return the value').toEqual(value);
  });

  test("when the holder's load throws, a waiter takes over at its next check and every waiter gets the value", async () => {
    const waitTimeoutMs = randomInteger(3_000, 5_000);
    const { cache, process, load, value, flush, wait, config, lab } = await setup({
      waitTimeoutMs,
      lockTtlMs: waitTimeoutMs * 3,
    });
    const key = randomId('report');
    const other = process();
    load.hold();
    const holder = track(cache.get(key));
    await waitFor(() => load.callCount > 0);
    const waiters = Array.from({ length: 6 }, (_, i) => track((i % 2 ? other : cache).get(key)));
    await wait(config.retryDelayMs! * 4);
    load.unhold();
    const error = new Error(`replica lag ${randomId('e')}`);

    load.held[0]?.fail(error);
    await flush();
    await wait(config.retryDelayMs! * 3);
    await waitFor(() => holder.settled && waiters.every((waiter) => waiter.settled));

    expect(
      holder.error === undefined ? 'resolved' : describeError(holder.error),
      "the holder's caller must get its load's error",
    ).toBe(describeError(error));
    const stuck = waiters.filter((waiter) => !waiter.settled).length;
    expect(
      stuck,
      `${stuck} of 6 waiters were still waiting 3 × retryDelayMs after the holder's load failed. The failed holder must release its lock at once, and a waiter that finds no value and no lock must take the lock (atomically, so still only one) and load; otherwise every waiter sits out lockTtlMs (${config.lockTtlMs} ms) or its timeout`,
    ).toBe(0);
    const failed = waiters.filter((waiter) => waiter.error !== undefined);
    expect(
      failed.length,
      `${failed.length} waiter(s) rejected (${failed[0] ? describeError(failed[0].error) : ''}); a waiter must not inherit another caller's load error: one of them loads again and all get the value`,
    ).toBe(0);
    expect(
      waiters.map((waiter) => waiter.value),
      'every waiter must get the value loaded after the failure',
    ).toEqual(waiters.map(() => value));
    expect(
      load.callCount,
      `the failure must be followed by exactly one more load, by one waiter; there were ${load.callCount - 1}`,
    ).toBe(2);
    await expectOnlyValueAndCompanions(lab, key, 'in the end');
  });

  test("when the holder's process dies, its lock expires after lockTtlMs and one waiter loads in its place", async () => {
    const lockTtlMs = randomInteger(800, 1_200);
    const { lab, process, load, value, wait, config } = await setup({ lockTtlMs, waitTimeoutMs: lockTtlMs * 3 });
    const key = randomId('report');
    const doomed = crashable(lab.connect());
    const deadLoad = controlled(async (_key: string) => report());
    deadLoad.hangNext();
    const dying = process(doomed.redis, deadLoad);
    const started = Date.now();

    track(dying.get(key));
    await waitFor(() => deadLoad.callCount > 0);
    expect(deadLoad.callCount, 'get() on a cold key must call load()').toBe(1);
    doomed.crash();
    const survivors = [process(), process()];
    const waiters = Array.from({ length: 6 }, (_, i) => track(survivors[i % 2]!.get(key)));
    // Half of lockTtlMs: on a real server the lock also ages in real time while the test runs.
    await wait(Math.floor(lockTtlMs / 2));
    const loadsBeforeExpiry = load.callCount;
    await wait(started + lockTtlMs + 3 * config.retryDelayMs! - Date.now());
    await waitFor(() => waiters.every((waiter) => waiter.settled));

    expect(
      loadsBeforeExpiry,
      "a waiter loaded while the dead holder's lock had not yet expired: only the lock's TTL says the holder is gone",
    ).toBe(0);
    const stuck = waiters.filter((waiter) => !waiter.settled).length;
    expect(
      stuck,
      `${stuck} of 6 waiters were still waiting ${3 * config.retryDelayMs!} ms after the dead holder's lock expired (lockTtlMs = ${lockTtlMs}). A waiter that finds no value and no lock must take the lock and load; otherwise one crashed process blocks the key until every waiter times out`,
    ).toBe(0);
    expect(
      waiters.map((waiter) => (waiter.error === undefined ? waiter.value : describeError(waiter.error))),
      'every waiter must get the value loaded in place of the dead holder',
    ).toEqual(waiters.map(() => value));
    expect(load.callCount, `exactly one waiter must load in place of the dead holder; ${load.callCount} did`).toBe(1);
  });

  test('a waiter that gets no value within waitTimeoutMs rejects with WaitTimeoutError and never loads', async () => {
    const waitTimeoutMs = randomInteger(1_000, 2_000);
    const retryDelayMs = randomInteger(20, 50);
    const { cache, process, load, value, wait } = await setup({
      waitTimeoutMs,
      retryDelayMs,
      lockTtlMs: waitTimeoutMs * 4,
    });
    const key = randomId('report');
    const other = process();
    load.hold();
    const holder = track(cache.get(key));
    await waitFor(() => load.callCount > 0);
    const started = Date.now();
    const waiters = Array.from({ length: 4 }, (_, i) => track((i % 2 ? other : cache).get(key)));

    await wait(waitTimeoutMs - retryDelayMs - 1);
    const earlyQuitters = waiters.filter((waiter) => waiter.settled).length;
    await wait(started + waitTimeoutMs + 2 * retryDelayMs - Date.now());
    await waitFor(() => waiters.every((waiter) => waiter.settled) || load.callCount > 1);
    const loadsAtTimeout = load.callCount;
    load.unhold();
    await load.releaseAll();
    await waitFor(() => holder.settled && waiters.every((waiter) => waiter.settled));

    expect(
      earlyQuitters,
      `${earlyQuitters} waiter(s) stopped waiting before waitTimeoutMs (${waitTimeoutMs} ms) had passed`,
    ).toBe(0);
    for (const waiter of waiters) {
      expect(
        waiter.settled,
        `a waiter was still waiting ${waitTimeoutMs + 2 * retryDelayMs} ms after it called get(), with waitTimeoutMs = ${waitTimeoutMs}: a request must not wait longer than its latency budget`,
      ).toBe(true);
      expect(
        isWaitTimeout(waiter.error),
        `when waitTimeoutMs passes, a waiter must reject with WaitTimeoutError (as the README says); it ${waiter.error === undefined ? `resolved with ${JSON.stringify(waiter.value)}` : `rejected with ${describeError(waiter.error)}`}`,
      ).toBe(true);
      expect(
        String((waiter.error as Error | undefined)?.message),
        'the WaitTimeoutError message must name the key, so the log line says which key stalled',
      ).toContain(key);
    }
    expect(
      loadsAtTimeout,
      `${loadsAtTimeout - 1} waiter(s) called load() when their wait timed out. Timing out must not start a load: at that moment the database is already slow, and hundreds of waiters loading at once is the stampede the lock exists to stop`,
    ).toBe(1);
    expect(holder.value, 'the holder must still return its value once its load finishes').toEqual(value);
  });

  test.each([
    ['retryDelayMs', randomInteger(20, 50)],
    ['50 ms when retryDelayMs is not set', null],
  ] as const)(
    'waiters check every %s: a few round trips per check, and they return soon after the fill',
    async (_label, retryDelayMs) => {
      const delayMs = retryDelayMs ?? 50;
      const { cache, process, load, value, lab, flush, wait } = await setup({
        retryDelayMs,
        waitTimeoutMs: delayMs * 200,
        lockTtlMs: delayMs * 400,
      });
      const key = randomId('report');
      const other = process();
      load.hold();
      track(cache.get(key));
      await waitFor(() => load.callCount > 0);
      const waiters = Array.from({ length: 8 }, (_, i) => track((i % 2 ? other : cache).get(key)));
      await wait(delayMs * 2, delayMs);
      lab.roundTrips.reset();

      await flush(40); // a polite waiter sends nothing more however long this lasts; a busy one does
      const timeless = { trips: lab.roundTrips.count, summary: lab.roundTrips.summary() };
      lab.roundTrips.reset();
      await wait(delayMs * 20, delayMs);
      const trips = lab.roundTrips.count;
      const summary = lab.roundTrips.summary();
      load.unhold();
      await load.releaseAll();
      const filledAt = Date.now();
      await wait(delayMs * 2, Math.max(1, Math.floor(delayMs / 4)));
      await waitFor(() => waiters.every((waiter) => waiter.settled));

      expect(
        timeless.trips,
        `the 8 waiters made ${timeless.trips} round trips (${timeless.summary}) while no time passed: they are polling Redis in a loop with no pause. Sleep retryDelayMs (setTimeout) between two checks, or the waiters hammer Redis as hard as the stampede would have hammered the database`,
      ).toBeLessThanOrEqual(3 * 8);
      const perWaiter = trips / 8;
      expect(
        perWaiter,
        `each waiter made ${perWaiter} round trips (${summary}) in ${delayMs * 20} ms of waiting, with retryDelayMs = ${delayMs}: at most about 3 per check and one check per retryDelayMs are expected. Sleep retryDelayMs between checks${retryDelayMs === null ? ' (and default it to 50 ms when the option is absent)' : ''}`,
      ).toBeLessThanOrEqual(3 * 22);
      const late = waiters.filter((waiter) => !waiter.settled || waiter.atMs! - filledAt > 2 * delayMs);
      expect(
        late.length,
        `${late.length} of 8 waiters had not returned ${2 * delayMs} ms after the fill: a waiter should notice the value at its next check, within about retryDelayMs (${delayMs} ms)`,
      ).toBe(0);
      expect(
        waiters.map((waiter) => waiter.value),
        'every waiter must get the value',
      ).toEqual(waiters.map(() => value));
    },
  );
});

describe('staff', () => {
  /**
   * Steady traffic on one key across more than two TTLs. A load takes loadMs of fake time and
   * returns a new version each time; each read is timed in fake time.
   *
   * Why a correct probabilistic design passes with overwhelming probability: with XFetch at
   * beta = 1, a read t ms before expiry triggers a refresh with probability exp(-t / loadMs).
   * The value goes cold only if no read at t >= loadMs triggers one; with READS_PER_LOAD_TIME
   * reads per loadMs that probability is exp(-READS_PER_LOAD_TIME * e^-1) = exp(-22) ≈ 3e-10
   * per expiry, about 1e-9 for the expiries of one run. Serve-stale designs are deterministic.
   */
  const READS_PER_LOAD_TIME = 60;
  // Hundreds of fake-time steps, each with real round trips when graded against a server.
  const REAL_SERVER_TIMEOUT_MS = 30_000;
  const STEPS_PER_LOAD_TIME = 10;

  async function steadyTraffic(options: { failFirstRefresh: boolean }) {
    const loadMs = 1_000;
    const ttlSeconds = randomInteger(9, 11);
    const staleWhileRevalidateSeconds = 3;
    const loadedAt = new Map<number, number>();
    let version = 0;
    const token = randomId('v');
    const load = controlled(async (_key: string) => {
      await new Promise((resolve) => setTimeout(resolve, loadMs));
      version += 1;
      loadedAt.set(version, Date.now());
      return { version, token };
    });
    const lab0 = await setup({
      load,
      ttlSeconds,
      earlyRefresh: { beta: 1 },
      staleWhileRevalidateSeconds,
      lockTtlMs: loadMs * 5,
      waitTimeoutMs: loadMs * 5,
      retryDelayMs: 50,
    });
    const { cache, lab, clock } = lab0;
    const key = randomId('leaderboard');

    const warm = track(cache.get(key));
    await waitFor(() => load.callCount > 0);
    await lab0.wait(loadMs, 100);
    await waitFor(() => warm.settled);
    expect(warm.value, 'the first get() of a cold key must load and return the value').toBeDefined();
    const loadsAtStart = load.callCount;
    if (options.failFirstRefresh) load.failNext(new Error(`refresh failed ${randomId('e')}`));

    const stepMs = loadMs / STEPS_PER_LOAD_TIME;
    const readsPerStep = READS_PER_LOAD_TIME / STEPS_PER_LOAD_TIME;
    // Long enough that a value kept past ttlSeconds + staleWhileRevalidateSeconds is seen.
    const durationMs = (ttlSeconds + staleWhileRevalidateSeconds) * 1000 + 3 * loadMs;
    const reads: Array<Outcome<{ version: number; token: string }> & { startedMs: number }> = [];
    let missingAt: number | null = null;
    for (let elapsed = 0; elapsed < durationMs; elapsed += stepMs) {
      const startedMs = Date.now();
      const batch = Array.from({ length: readsPerStep }, () => Object.assign(track(cache.get(key)), { startedMs }));
      reads.push(...batch);
      await settle();
      if (lab.mode === 'real') {
        const deadline = performance.now() + 20;
        while (batch.some((read) => !read.settled) && performance.now() < deadline) await settle(1);
      }
      if (missingAt === null && (await lab.raw.exists(key)) === 0) missingAt = elapsed;
      await clock.advance(stepMs);
    }
    await lab0.wait(loadMs * 2, 100);
    lab0.expectNoBusyPolling();
    return {
      reads,
      loadedAt,
      loads: load.callCount - loadsAtStart,
      missingAt,
      ttlSeconds,
      staleWhileRevalidateSeconds,
      durationMs,
      loadMs,
    };
  }

  function expectNoColdMisses(run: Awaited<ReturnType<typeof steadyTraffic>>) {
    const { reads, loadedAt, loads, missingAt, ttlSeconds, staleWhileRevalidateSeconds, durationMs } = run;
    const rejected = reads.filter((read) => read.error !== undefined);
    expect(
      rejected.length,
      `${rejected.length} of ${reads.length} reads rejected (first: ${rejected[0] ? describeError(rejected[0].error) : ''}); while a usable value is cached, a read must return it, even when a refresh fails`,
    ).toBe(0);
    expect(
      missingAt,
      `under steady traffic the key went missing from Redis ${missingAt} ms into the run: nobody refreshed it before it expired, so the next readers hit a cold miss and waited on the lock. Refresh early (XFetch) or serve the stale value while one caller revalidates`,
    ).toBeNull();
    const waited = reads.filter((read) => !read.settled || read.atMs !== read.startedMs).length;
    expect(
      waited,
      `${waited} of ${reads.length} reads waited for fake time to pass, with ${loads} load(s) in the run: besides a caller running a refresh itself, no read should wait while the key is warm`,
    ).toBeLessThanOrEqual(loads);
    const maxLoads = Math.ceil((durationMs / (ttlSeconds * 1000)) * 10);
    expect(
      loads,
      `${loads} loads in ${durationMs / 1000} s of traffic with ttlSeconds = ${ttlSeconds}: the early refresh must be done by one caller (or a few), not by every reader that sees the key close to expiry`,
    ).toBeLessThanOrEqual(maxLoads);
    const maxAgeMs = (ttlSeconds + staleWhileRevalidateSeconds) * 1000;
    const tooOld = reads.filter((read) => read.value && read.atMs! - loadedAt.get(read.value.version)! > maxAgeMs);
    expect(
      tooOld.length,
      `${tooOld.length} reads returned a value older than ttlSeconds + staleWhileRevalidateSeconds (${maxAgeMs / 1000} s): the value must still be refreshed, not kept forever`,
    ).toBe(0);
  }

  test(
    'under steady traffic a hot key is refreshed before it expires: no read waits on a cold miss, and few loads run',
    async () => {
      const run = await steadyTraffic({ failFirstRefresh: false });

      expectNoColdMisses(run);
    },
    REAL_SERVER_TIMEOUT_MS,
  );

  test(
    'a failed early refresh does not fail readers, and a later refresh succeeds',
    async () => {
      const run = await steadyTraffic({ failFirstRefresh: true });

      expectNoColdMisses(run);
      expect(run.loads, 'after the failed refresh another refresh must run and succeed').toBeGreaterThanOrEqual(2);
    },
    REAL_SERVER_TIMEOUT_MS,
  );
});
