import type { Redis } from 'ioredis';
import { describe, expect, test, vi } from 'vitest';
import { WriteBehindCache, type Json } from '@impl/write-behind/write-behind.ts';
import {
  controlled,
  createLabRedis,
  patience,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  randomWord,
  settle,
  shuffle,
  useFakeClock,
  waitFor,
} from '../kit/index.ts';

type Entry = { key: string; value: Json };

/**
 * The database behind the cache: rows in a Map, written by an idempotent upsert whose calls the
 * test can hold, release in any order, or fail. It also watches for what no correct flusher
 * does: two batches carrying the same key in flight at once, oversized or empty batches, and a
 * key twice in one batch.
 */
function database() {
  const data = new Map<string, Json>();
  const batches: Entry[][] = [];
  /** Every entry the database applied, in the order the writes completed. */
  const applied: Entry[] = [];
  const problems: string[] = [];
  const inFlight = new Map<string, number>();
  const state = { down: false };

  const upsert = controlled(async (entries: Entry[]) => {
    for (const entry of entries) {
      data.set(entry.key, structuredClone(entry.value));
      applied.push(structuredClone(entry));
    }
  });

  const writeBatch = async (entries: Array<{ key: string; value: Json }>): Promise<void> => {
    const copy = structuredClone(entries);
    batches.push(copy);
    const keys = copy.map((entry) => entry.key);
    if (new Set(keys).size !== keys.length) {
      problems.push(
        `one batch carried the same key more than once (${keys.join(', ')}): an upsert that touches a row twice is ambiguous, and PostgreSQL rejects it ("ON CONFLICT DO UPDATE command cannot affect row a second time"). Send each key once, with its latest value`,
      );
    }
    for (const key of keys) {
      if (inFlight.get(key)) {
        problems.push(
          `"${key}" was sent to the database while an earlier batch carrying it had not finished. Two writes of one row in flight can complete in either order, so an older value can land last and stay there`,
        );
      }
    }
    for (const key of keys) inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
    try {
      if (state.down) throw new Error('database unavailable (injected by the test)');
      await upsert(copy);
    } finally {
      for (const key of keys) inFlight.set(key, inFlight.get(key)! - 1);
    }
  };

  return { data, batches, applied, problems, control: upsert, writeBatch, state };
}
type Database = ReturnType<typeof database>;

interface Extra {
  maxBatchSize?: number;
  maxPending?: number;
  maxAttempts?: number;
  flushTimeoutMs?: number;
}

/** A cache over a fresh Redis and database with a random prefix and batch size. */
async function setup(extra: Extra = {}) {
  const lab = await createLabRedis();
  const db = database();
  const keyPrefix = randomId('wb');
  const maxBatchSize = extra.maxBatchSize ?? randomInteger(3, 6);
  const make = (redis: Redis = lab.redis, writeBatch = db.writeBatch) =>
    new WriteBehindCache({ ...extra, redis, writeBatch, keyPrefix, maxBatchSize });
  return { lab, db, keyPrefix, maxBatchSize, cache: make(), make };
}

/** A random JSON value, different every time. */
function randomValue(): Json {
  switch (randomInteger(0, 3)) {
    case 0:
      return `${randomText(3)} ${randomId('s')}`;
    case 1:
      return {
        id: randomId('row'),
        name: randomText(2),
        score: randomInteger(1, 1_000_000),
        tags: [randomWord(), randomWord()],
        active: randomInteger(0, 1) === 1,
        note: null,
      };
    case 2:
      return [randomId('item'), randomInteger(0, 1000), false, null, { nested: randomText(1) }];
    default:
      return randomInteger(1, 2 ** 40);
  }
}

const randomKeys = (n: number, prefix = 'k') => Array.from({ length: n }, () => randomId(prefix));

/**
 * Lets `promises` finish, releasing the database writes they start, newest first: the order
 * in which a late write of an older value does the most harm.
 */
async function finish<T>(db: Database, what: string, ...promises: Promise<T>[]): Promise<T[]> {
  let pending = promises.length;
  for (const promise of promises)
    promise.then(
      () => pending--,
      () => pending--,
    );
  const more = patience();
  while (pending > 0 && more()) {
    const held = db.control.held;
    if (held.length > 0) await held[held.length - 1]!.release();
    else await settle(1);
  }
  expect(
    pending,
    `${what} never finished, although every database write it started was allowed to complete. A flush must not wait for a timer or for another instance's flush: it writes what it can and returns`,
  ).toBe(0);
  return Promise.all(promises);
}

/** Keys whose database writes went backwards: a value written after a newer one of the same key. */
function backwards(db: Database, history: Map<string, Json[]>): string[] {
  const wrong: string[] = [];
  for (const [key, values] of history) {
    const order = values.map((value) => JSON.stringify(value));
    let last = -1;
    for (const entry of db.applied.filter((e) => e.key === key)) {
      const index = order.indexOf(JSON.stringify(entry.value));
      if (index < last)
        wrong.push(`"${key}": ${JSON.stringify(entry.value)} was written after the newer ${order[last]}`);
      last = Math.max(last, index);
    }
  }
  return wrong;
}

const isDone = (promise: Promise<unknown>) => {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};

describe('core', () => {
  test('set() returns without waiting for the database, and get() reads the write at once from any instance', async () => {
    const { cache, db, lab, make } = await setup();
    const values = new Map(randomKeys(randomInteger(2, 4)).map((key) => [key, randomValue()]));
    db.control.hold();

    for (const [key, value] of values) {
      const writing = cache.set(key, value);
      const state = isDone(writing);
      expect(
        await waitFor(() => state.done),
        'set() did not return while the database was busy: it waits for the database, which is write-through. Write-behind stores the value in Redis, returns, and leaves the database to a later flush',
      ).toBe(true);
      await writing;
    }

    const other = make(lab.connect());
    for (const [key, value] of values) {
      expect(
        await cache.get(key),
        `get("${key}") right after set() did not return the value just written: a caller must read its own write at once, before any flush`,
      ).toEqual(value);
      expect(
        await other.get(key),
        `another instance over the same Redis could not read "${key}": the value must live in Redis, not in this process`,
      ).toEqual(value);
    }
    expect(await cache.get(randomId('missing')), 'get() of a key never written must return null').toBeNull();
  });

  test('flush() writes every pending key once, with its latest value, in batches of at most maxBatchSize', async () => {
    const { cache, db, maxBatchSize } = await setup({ maxBatchSize: randomInteger(2, 3) });
    const keys = randomKeys(randomInteger(2 * maxBatchSize + 1, 3 * maxBatchSize));
    const latest = new Map<string, Json>();
    const writes = shuffle(keys.flatMap((key) => Array.from({ length: randomInteger(1, 3) }, () => key)));
    for (const key of writes) {
      const value = randomValue();
      latest.set(key, value);
      await cache.set(key, value);
    }
    expect(
      await cache.pending(),
      `${keys.length} keys were written (${writes.length} writes): pending() counts keys not yet in the database, not writes`,
    ).toBe(keys.length);

    const result = await cache.flush();

    const sizes = db.batches.map((batch) => batch.length);
    expect(
      Math.max(...sizes),
      `a batch of ${Math.max(...sizes)} entries was sent with maxBatchSize ${maxBatchSize} (batch sizes: ${sizes.join(', ')}). The limit protects the database from statements too large to run or to retry`,
    ).toBeLessThanOrEqual(maxBatchSize);
    expect(Math.min(...sizes), 'an empty batch was sent: a database round trip for nothing').toBeGreaterThan(0);
    const sent = db.batches.flat();
    expect(
      sent.length,
      `${sent.length} entries were sent for ${keys.length} distinct keys. Every intermediate value was written: coalesce, so each flush writes only the latest value of each key`,
    ).toBe(keys.length);
    expect(db.problems, 'the database saw a batch no flusher should send').toEqual([]);
    for (const key of keys) {
      expect(
        db.data.get(key),
        `the database holds the wrong value for "${key}": it must get the latest value written`,
      ).toEqual(latest.get(key));
    }
    expect(
      result,
      `flush() must report { written: ${keys.length}, failed: 0 }: written counts keys the database accepted`,
    ).toEqual({ written: keys.length, failed: 0 });
    expect(await cache.pending(), 'after a successful flush, no key is pending').toBe(0);
    for (const key of keys) {
      expect(
        await cache.get(key),
        `after the flush get("${key}") no longer returns the value: flushing must not remove values from the cache, which is still where reads are served from`,
      ).toEqual(latest.get(key));
    }
  });

  test('a flush with nothing pending does not call the database, and a flushed key is not written again', async () => {
    const { cache, db } = await setup();

    const empty = await cache.flush();
    await cache.set(randomId('k'), randomValue());
    await cache.flush();
    const again = await cache.flush();

    expect(empty, 'flush() with nothing pending must return { written: 0, failed: 0 }').toEqual({
      written: 0,
      failed: 0,
    });
    expect(
      db.batches.length,
      `the database was called ${db.batches.length} times for one write: an empty flush must not call writeBatch, and a key the database has accepted is no longer pending`,
    ).toBe(1);
    expect(again, 'the second flush found something to write: the first flush did not mark its key as written').toEqual(
      { written: 0, failed: 0 },
    );
  });

  test('a write that arrives while a flush is in flight is not lost when the flush completes', async () => {
    const { cache, db } = await setup();
    const [key, counter] = [randomId('k'), randomId('count')];
    const [before, after] = [randomValue(), randomValue()];
    const [first, second] = [randomInteger(1, 50), randomInteger(1, 50)];
    await cache.set(key, before);
    await cache.increment(counter, first);
    db.control.hold();

    const flushing = cache.flush();
    expect(await waitFor(() => db.control.held.length > 0), 'flush() did not call writeBatch').toBe(true);
    await cache.set(key, after);
    expect(await cache.increment(counter, second), 'increment() during a flush must return the new total').toBe(
      first + second,
    );
    expect(await cache.get(key), 'get() during a flush must return the newest value').toEqual(after);
    db.control.unhold();
    await finish(db, 'flush()', flushing);

    expect(
      await cache.get(key),
      `when the flush that wrote the older value completed, the cache went back to it: completing a flush must not overwrite the value in Redis`,
    ).toEqual(after);
    await cache.flush();
    const lost =
      'arrived while a flush was in flight, after the flush had read the key; when that flush completed it marked the key as written, so no later flush writes the new value. Mark a key as written only if it was not written again since the flush read it (compare a version in one atomic step)';
    expect(db.data.get(key), `a set() ${lost}`).toEqual(after);
    expect(db.data.get(counter), `an increment() ${lost}`).toBe(first + second);
    expect(await cache.pending(), 'after the second flush nothing should be pending').toBe(0);
  });

  test('a write racing a flush at any round trip reaches the database', async () => {
    // The same shape for every trip (drawn once), and the rival rewrites every key, so whichever
    // batch a trip falls in, a key of it changes under the flush.
    const count = randomInteger(2, 5);
    const maxBatchSize = randomInteger(2, 3);
    await raceAtEveryTrip({
      async arrange() {
        const world = await setup({ maxBatchSize });
        const keys = randomKeys(count);
        for (const key of keys) await world.cache.set(key, randomValue());
        return {
          ...world,
          latest: new Map(keys.map((key) => [key, randomValue()])),
          other: world.make(world.lab.connect()),
        };
      },
      act: ({ cache }) => cache.flush(),
      race: async ({ other, latest }) => {
        for (const [key, value] of latest) await other.set(key, value);
      },
      async check({ lab, db, cache, latest }, at) {
        await cache.flush();
        await cache.flush();

        if (!at.finishedFirst) {
          for (const [key, value] of latest) {
            expect(
              db.data.get(key),
              `another instance rewrote "${key}" right before round trip ${at.trip + 1} of a flush, and after two more flushes the database still holds ${JSON.stringify(db.data.get(key))} with ${await cache.pending()} key(s) pending: the new write was marked flushed when the database only got the old value, and it is lost for good. Read a batch's values with their versions in one step, and clear a key only if its version is still the one you wrote`,
            ).toEqual(value);
          }
        }
        await lab.close();
      },
    });
  });

  test('two flushes of one instance that overlap never write a key out of order', async () => {
    const { cache, db } = await setup();
    const key = randomId('k');
    const history = new Map([[key, [randomValue(), randomValue()]]]);
    await cache.set(key, history.get(key)![0]!);
    db.control.hold();

    // A timer tick's flush is in flight when the caller's flush() comes in.
    const tick = cache.flush();
    expect(await waitFor(() => db.control.held.length > 0), 'flush() did not call writeBatch').toBe(true);
    await cache.set(key, history.get(key)![1]!);
    const caller = cache.flush();
    await settle();
    db.control.unhold();
    await finish(db, 'two overlapping flush() calls', tick, caller);

    expect(db.problems, 'the second flush sent the key while the first flush was still writing it').toEqual([]);
    expect(backwards(db, history), 'a write went backwards in the database').toEqual([]);
    expect(
      db.data.get(key),
      'when a flush() called during another one resolves, every write made before the call must be in the database: wait for the running flush, then flush again',
    ).toEqual(history.get(key)![1]);
    expect(await cache.pending(), 'nothing should be pending once both flushes finished').toBe(0);
  });

  test('a failed batch stays pending, and the retry writes the latest value, never the older one', async () => {
    const { cache, db } = await setup();
    const keys = randomKeys(randomInteger(2, 8));
    const history = new Map(keys.map((key) => [key, [randomValue()]]));
    for (const key of keys) await cache.set(key, history.get(key)![0]!);
    const changed = keys[0]!;
    db.state.down = true;

    const failing = await cache.flush().catch((error: unknown) => error);
    db.state.down = false;
    history.get(changed)!.push(randomValue());
    await cache.set(changed, history.get(changed)![1]!);
    const pendingAfterFailure = await cache.pending();
    const retry = await cache.flush();

    expect(
      failing instanceof Error,
      `flush() rejected (${String(failing)}) when writeBatch failed. It must resolve and report the failure in "failed", or the timer that calls it has to guess what was written`,
    ).toBe(false);
    expect(
      failing,
      `every key was in a batch the database refused: flush() must report { written: 0, failed: ${keys.length} }`,
    ).toEqual({ written: 0, failed: keys.length });
    expect(
      pendingAfterFailure,
      'after the database refused the batch, its keys were no longer pending: a failed batch was dropped, and those writes will never reach the database',
    ).toBe(keys.length);
    expect(
      backwards(db, history),
      `the retry wrote the value that failed after the newer value of "${changed}": retry by reading the latest value from Redis, not by replaying the failed batch`,
    ).toEqual([]);
    for (const key of keys) {
      expect(db.data.get(key), `after the retry the database holds the wrong value for "${key}"`).toEqual(
        history.get(key)!.at(-1),
      );
    }
    expect(retry, `the retry must write all ${keys.length} keys`).toEqual({ written: keys.length, failed: 0 });
    expect(await cache.pending(), 'nothing should be pending after the retry succeeded').toBe(0);
  });

  test('a new instance over the same Redis flushes what a crashed instance left, however long ago', async () => {
    const { cache, lab, db, make } = await setup();
    const clock = useFakeClock(lab);
    const values = new Map(randomKeys(randomInteger(3, 10)).map((key) => [key, randomValue()]));
    for (const [key, value] of values) await cache.set(key, value);
    const counter = randomId('count');
    const total = randomInteger(1, 40) + randomInteger(1, 40);
    await cache.increment(counter, total - 1);
    await cache.increment(counter);

    // The instance dies without flushing; its replacement starts a week later.
    await clock.advance(7 * 24 * 3600 * 1000);
    const restarted = make(lab.connect());
    const pending = await restarted.pending();
    const result = await restarted.flush();

    expect(
      pending,
      `a new instance over the same Redis sees ${pending} pending keys instead of ${values.size + 1}: unflushed writes must be tracked in Redis (not in the memory of the process that took them, which a crash or deploy wipes) and must not expire (no TTL) until the database has them`,
    ).toBe(values.size + 1);
    for (const [key, value] of values) {
      expect(
        db.data.get(key),
        `"${key}" never reached the database after the restart: unflushed values must stay in Redis without a TTL until they are written`,
      ).toEqual(value);
    }
    expect(db.data.get(counter), 'the counter total did not reach the database after the restart').toBe(total);
    expect(result, 'the new instance must report every key it wrote').toEqual({ written: values.size + 1, failed: 0 });
  });

  test('a flush that dies halfway loses nothing: after flushTimeoutMs another instance writes its keys', async () => {
    for (const crash of ['database hangs', 1, 2, 4] as const) {
      const flushTimeoutMs = randomInteger(5_000, 20_000);
      const { lab, db, make } = await setup({ flushTimeoutMs });
      const clock = useFakeClock(lab);
      const hung = controlled(async (_entries: Entry[]) => {});
      hung.hangNext(1000);
      const dying = make(lab.redis, crash === 'database hangs' ? hung : db.writeBatch);
      const values = new Map(randomKeys(randomInteger(2, 6)).map((key) => [key, randomValue()]));
      for (const [key, value] of values) await dying.set(key, value);

      // The process dies during its flush: its database call never returns, or its Redis
      // connection drops after a few round trips.
      if (typeof crash === 'number') lab.roundTrips.breakAfter(crash);
      const died = isDone(dying.flush().catch(() => undefined));
      if (crash === 'database hangs')
        expect(await waitFor(() => hung.callCount > 0), 'flush() did not call writeBatch').toBe(true);
      else await waitFor(() => died.done);
      lab.roundTrips.repair();
      const survivor = make(lab.connect());
      await finish(db, "another instance's flush() while the first instance's flush hangs", survivor.flush());
      await clock.advance(flushTimeoutMs + 1);
      await survivor.flush();

      const when =
        crash === 'database hangs'
          ? 'its database call never returned'
          : `its Redis connection dropped after ${crash} round trip(s)`;
      for (const [key, value] of values) {
        expect(
          db.data.get(key),
          `an instance died during a flush (${when}), and flushTimeoutMs later another instance still did not write "${key}". Keep a key pending until the database confirmed it; never take it out of Redis before the write, and let a dead flusher's claim or lock expire`,
        ).toEqual(value);
      }
      expect(await survivor.pending(), `after the survivor's flush nothing should be pending (${when})`).toBe(0);
      await lab.close();
      vi.useRealTimers();
    }
  });

  test('increment() adds atomically across instances, returns each new total, and the database gets the total', async () => {
    const { cache, lab, db, make } = await setup();
    const other = make(lab.connect());
    const counter = randomId('count');
    const start = randomInteger(0, 1000);
    await cache.set(counter, start);
    const steps = Array.from({ length: randomInteger(20, 40) }, () => randomInteger(1, 9));

    const totals = await Promise.all(steps.map((by, i) => (i % 2 ? other : cache).increment(counter, by)));

    const sum = steps.reduce((a, b) => a + b, 0);
    expect(
      await cache.get(counter),
      `${steps.length} concurrent increments from two instances added up to ${String(await cache.get(counter))} instead of ${start + sum}: reading the value and writing it back loses updates. Add inside Redis (INCRBY/HINCRBY, or a script)`,
    ).toBe(start + sum);
    expect(
      new Set(totals).size,
      'two increments returned the same total: each call must return the total right after its own addition',
    ).toBe(steps.length);
    expect(Math.max(...totals), 'the last increment must return the final total').toBe(start + sum);
    await cache.flush();
    expect(db.data.get(counter), 'the database must receive the counter total as a number').toBe(start + sum);
    const more = randomInteger(2, 9);
    expect(await cache.increment(counter, more), 'increment() after a flush must keep counting from the total').toBe(
      start + sum + more,
    );
    await cache.flush();
    expect(
      db.data.get(counter),
      `the database got ${String(db.data.get(counter))} after one more increment of ${more}: it must get the total (${start + sum + more}), not the change since the last flush, because the upsert replaces the row`,
    ).toBe(start + sum + more);
    const fresh = randomId('count');
    expect(await cache.increment(fresh), 'increment() of a new key with no "by" must return 1').toBe(1);
  });

  test('past maxPending keys, a write to a new key rejects with a clear error and stores nothing', async () => {
    const maxPending = randomInteger(3, 5);
    const { cache, lab, make } = await setup({ maxPending });
    const other = make(lab.connect());
    const keys = randomKeys(maxPending + randomInteger(2, 3));

    const results = await Promise.allSettled(keys.map((key, i) => (i % 2 ? other : cache).set(key, randomValue())));

    const accepted = keys.filter((_, i) => results[i]!.status === 'fulfilled');
    const rejected = keys.filter((_, i) => results[i]!.status === 'rejected');
    expect(
      accepted.length,
      `${keys.length} new keys were written at once from two instances with maxPending ${maxPending}, and ${accepted.length} were accepted. Check the backlog and add the key in one atomic step, or concurrent writers all see room and overfill it`,
    ).toBe(maxPending);
    const error = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error;
    expect(
      error.message,
      `the error was "${error.message}". Say what happened and why: the word "pending" and the limit (${maxPending}), so whoever reads the log knows the database is behind, not that Redis failed`,
    ).toMatch(/pending/i);
    expect(error.message, `the error "${error.message}" does not name the limit ${maxPending}`).toContain(
      String(maxPending),
    );
    for (const key of rejected) {
      expect(
        await cache.get(key),
        `"${key}" was rejected, yet get() returns a value: a write the caller was told failed must leave nothing behind`,
      ).toBeNull();
    }
    expect(await cache.pending(), `pending() must stay at maxPending (${maxPending})`).toBe(maxPending);
    await expect(
      cache.set(accepted[0]!, randomValue()),
      'a write to a key that is already pending adds no backlog, so it must be accepted at the limit',
    ).resolves.toBeUndefined();
    await expect(
      cache.increment(randomId('count')),
      'increment() of a new key at the limit must reject too',
    ).rejects.toThrow(/pending/i);
    await cache.flush();
    await expect(
      cache.set(rejected[0]!, randomValue()),
      'after a flush emptied the backlog, a new key must be accepted again',
    ).resolves.toBeUndefined();
  });

  test("an increment() or a new key's set() that another instance races at any round trip loses no update and never overfills the backlog", async () => {
    const maxPending = randomInteger(3, 5);
    await raceAtEveryTrip({
      async arrange() {
        const world = await setup({ maxPending });
        const counter = randomId('count');
        const start = randomInteger(0, 1000);
        await world.cache.set(counter, start);
        for (const key of randomKeys(maxPending - 2)) await world.cache.set(key, randomValue());
        return {
          ...world,
          maxPending,
          counter,
          start,
          by: [randomInteger(1, 9), randomInteger(1, 9)] as const,
          other: world.make(world.lab.connect()),
          fresh: randomKeys(2),
          rivalFailed: false,
        };
      },
      // One pending slot is left: the counter's increment fits, and of two new keys only one may.
      act: async ({ cache, counter, by, fresh }) => {
        await cache.increment(counter, by[0]);
        await cache.set(fresh[0]!, randomValue()).catch(() => undefined);
      },
      async race(state) {
        await state.other.increment(state.counter, state.by[1]);
        await state.other.set(state.fresh[1]!, randomValue()).catch(() => (state.rivalFailed = true));
      },
      async check({ lab, cache, counter, start, by, maxPending }, at) {
        if (at.finishedFirst) return lab.close();
        const total = await cache.get(counter);
        const pending = await cache.pending();

        expect(
          total,
          `another instance incremented the counter by ${by[1]} right before round trip ${at.trip + 1} of an increment by ${by[0]}, and the total is ${String(total)} instead of ${start + by[0] + by[1]}: reading the value and writing it back loses the other update. Add inside Redis (HINCRBY/INCRBY, or a script)`,
        ).toBe(start + by[0] + by[1]);
        expect(
          pending,
          `with one pending slot left, another instance wrote a new key right before round trip ${at.trip + 1} of this instance's sets, and ${pending} keys are now pending with maxPending ${maxPending}. Check the backlog and add the key in one atomic step`,
        ).toBeLessThanOrEqual(maxPending);
        await lab.close();
      },
    });
  });

  test('a key that fails maxAttempts flushes is parked: still pending and readable, no longer retried, until written again', async () => {
    const maxAttempts = randomInteger(2, 4);
    const { cache, db } = await setup({ maxAttempts, maxBatchSize: 5 });
    const poison = randomKeys(2, 'poison');
    for (const key of poison) await cache.set(key, randomValue());
    db.state.down = true;

    const attempts = [];
    for (let i = 0; i < maxAttempts; i++) attempts.push(await cache.flush());
    const afterParking = await cache.flush();
    const calls = db.batches.length;
    db.state.down = false;
    const healthy = randomKeys(randomInteger(1, 3), 'ok');
    for (const key of healthy) await cache.set(key, randomValue());
    const next = await cache.flush();

    expect(
      attempts,
      `each of the first ${maxAttempts} flushes must try both keys and report { written: 0, failed: 2 }: "failed" counts keys, not batches`,
    ).toEqual(Array(maxAttempts).fill({ written: 0, failed: 2 }));
    expect(
      afterParking,
      `after ${maxAttempts} failed attempts the keys must be parked: the next flush does not try them`,
    ).toEqual({ written: 0, failed: 0 });
    expect(
      db.batches
        .slice(calls)
        .flat()
        .map((e) => e.key)
        .sort(),
      `with maxAttempts ${maxAttempts}, parked keys were sent to the database again: a write the database keeps refusing is retried forever, and in a real system every flush pays for it`,
    ).toEqual([...healthy].sort());
    expect(next, 'healthy keys must still be written while others are parked').toEqual({
      written: healthy.length,
      failed: 0,
    });
    expect(
      await cache.pending(),
      'parked keys were dropped: pending() must still count them, since they are not in the database, and dropping a write silently is the worst outcome',
    ).toBe(2);
    for (const key of poison)
      expect(await cache.get(key), `the parked key "${key}" must still be readable from the cache`).not.toBeNull();

    const fixed = randomValue();
    await cache.set(poison[0]!, fixed);
    const unparked = await cache.flush();
    expect(unparked, 'a new write to a parked key gives it a fresh start: the next flush must write it').toEqual({
      written: 1,
      failed: 0,
    });
    expect(db.data.get(poison[0]!), 'the new value of the parked key did not reach the database').toEqual(fixed);
  });

  test('start() flushes every intervalMs; stop() flushes what is left and stops the timer', async () => {
    const { cache, lab, db } = await setup();
    const clock = useFakeClock(lab);
    const intervalMs = randomInteger(200, 2000);
    const key = randomId('k');
    const values = [randomValue(), randomValue(), randomValue(), randomValue()];

    cache.start(intervalMs);
    await cache.set(key, values[0]!);
    await clock.advance(intervalMs - 1);
    await settle();
    const early = db.batches.length;
    await clock.advance(1);
    const first = await waitFor(() => db.data.has(key));
    await cache.set(key, values[1]!);
    await clock.advance(intervalMs);
    const second = await waitFor(() => JSON.stringify(db.data.get(key)) === JSON.stringify(values[1]));
    await cache.set(key, values[2]!);
    await cache.stop();
    const stopped = db.data.get(key);
    await cache.set(key, values[3]!);
    const calls = db.batches.length;
    await clock.advance(intervalMs * 5);
    await settle();

    expect(early, `a flush ran before intervalMs (${intervalMs} ms) had passed`).toBe(0);
    expect(first, `nothing was written ${intervalMs} ms after start(${intervalMs})`).toBe(true);
    expect(second, 'the timer flushed once and then stopped: start() must flush every intervalMs').toBe(true);
    expect(
      stopped,
      'stop() resolved before the pending value was in the database: stop() must flush what is pending, or a deploy loses the last writes',
    ).toEqual(values[2]);
    expect(
      db.batches.length,
      'the timer kept flushing after stop(): clear it, or a stopped instance keeps writing and keeps the process alive',
    ).toBe(calls);
  });

  test('stop() waits for a flush in flight, then writes what arrived during it', async () => {
    const { cache, lab, db } = await setup();
    const clock = useFakeClock(lab);
    const intervalMs = randomInteger(200, 2000);
    const key = randomId('k');
    const [before, after] = [randomValue(), randomValue()];
    cache.start(intervalMs);
    await cache.set(key, before);
    db.control.hold();

    await clock.advance(intervalMs);
    expect(await waitFor(() => db.control.held.length > 0), `the timer did not flush after ${intervalMs} ms`).toBe(
      true,
    );
    await cache.set(key, after);
    const stopping = cache.stop();
    db.control.unhold();
    await finish(db, 'stop()', stopping);
    const calls = db.batches.length;
    await clock.advance(intervalMs * 3);
    await settle();

    expect(db.problems, 'stop() wrote the key while the timer flush was still writing it').toEqual([]);
    expect(
      db.data.get(key),
      'stop() resolved without the value written during the last flush: it must wait for that flush, then flush again',
    ).toEqual(after);
    expect(await cache.pending(), 'after stop() nothing should be pending').toBe(0);
    expect(db.batches.length, 'the timer kept flushing after stop()').toBe(calls);
  });

  test('keys that look like internal names work, every Redis key starts with keyPrefix, and another prefix sees nothing', async () => {
    const { cache, lab, db, keyPrefix } = await setup({ maxBatchSize: 4 });
    const names = [
      'pending',
      'dirty',
      'queue',
      'values',
      'data',
      'version',
      'versions',
      'seq',
      'attempts',
      'failures',
      'lock',
      'flush',
      'parked',
      'inflight',
      'processing',
      'batch',
      'meta',
      'counter',
      'dead',
    ];
    const values = new Map(names.map((name) => [name, randomValue()]));
    for (const [key, value] of values) await cache.set(key, value);
    await cache.increment('total', 3);

    const result = await cache.flush();

    expect(
      result,
      `writes to keys named ${names.join(', ')} broke the cache: keep user keys and your own bookkeeping apart (for example ${keyPrefix}:v:<key>, or fields of one hash)`,
    ).toEqual({ written: names.length + 1, failed: 0 });
    for (const [key, value] of values)
      expect(db.data.get(key), `the database got the wrong value for the key "${key}"`).toEqual(value);
    for (const key of await lab.keys()) {
      expect(
        key.startsWith(keyPrefix),
        `Redis holds "${key}", outside keyPrefix "${keyPrefix}": every key must start with it, so two caches on one Redis never collide`,
      ).toBe(true);
    }
    const stranger = new WriteBehindCache({
      redis: lab.connect(),
      writeBatch: db.writeBatch,
      keyPrefix: randomId('other'),
      maxBatchSize: 4,
    });
    expect(await stranger.get(names[0]!), "a cache with another keyPrefix read this cache's value").toBeNull();
    expect(await stranger.pending(), "a cache with another keyPrefix sees this cache's pending keys").toBe(0);
  });
});

describe('staff', () => {
  test('two instances flushing at the same moment never write a key twice at once or backwards, and lose nothing', async () => {
    const { lab, db, make, maxBatchSize } = await setup();
    const [a, b] = [make(lab.redis), make(lab.connect())];
    const keys = randomKeys(randomInteger(2 * maxBatchSize, 3 * maxBatchSize));
    const history = new Map(keys.map((key) => [key, [randomValue()]]));
    for (const key of keys) await a.set(key, history.get(key)![0]!);
    db.control.hold();

    // Both flushers start in the same tick, then new values arrive while their batches are held.
    const flushes = [a.flush(), b.flush()];
    await waitFor(() => db.control.held.length > 0);
    for (const key of shuffle(keys).slice(0, maxBatchSize)) {
      const value = randomValue();
      history.get(key)!.push(value);
      await (randomInteger(0, 1) ? a : b).set(key, value);
    }
    db.control.unhold();
    await finish(db, 'two concurrent flush() calls', ...flushes);
    await finish(db, 'the follow-up flushes', a.flush(), b.flush());

    expect(
      db.problems,
      'two flushers sent the same key at the same time. Claim keys atomically (one script, a transaction, or a flush lock) so only one flusher writes a key at a time',
    ).toEqual([]);
    expect(backwards(db, history), 'a write went backwards in the database').toEqual([]);
    for (const key of keys) {
      expect(db.data.get(key), `after both flushers finished, the database holds an older value of "${key}"`).toEqual(
        history.get(key)!.at(-1),
      );
    }
    expect(await a.pending(), 'nothing should be pending after the follow-up flushes').toBe(0);
  });

  test('a slow flush on one instance cannot land an older value over a newer one flushed by another', async () => {
    const { lab, db, make } = await setup();
    const [a, b] = [make(lab.redis), make(lab.connect())];
    const key = randomId('k');
    const history = new Map([[key, [randomValue(), randomValue()]]]);
    await a.set(key, history.get(key)![0]!);
    db.control.hold();

    const slow = a.flush();
    expect(await waitFor(() => db.control.held.length > 0), 'flush() did not call writeBatch').toBe(true);
    await b.set(key, history.get(key)![1]!);
    const fast = b.flush();
    let fastReturned = false;
    fast.then(
      () => (fastReturned = true),
      () => (fastReturned = true),
    );
    // A flush never waits for another instance's: B either reaches the database (its write is
    // held) or returns without the key A holds. Wait for that, not a fixed number of rounds.
    await waitFor(() => db.control.held.length > 1 || fastReturned);
    db.control.unhold();
    // B's write (if it sent one) completes first; A's older write completes last.
    while (db.control.held.length > 1) await db.control.held[db.control.held.length - 1]!.release();
    await finish(db, 'both flushes', slow, fast);
    await finish(db, 'the follow-up flushes', b.flush(), a.flush());

    expect(db.problems, 'the second instance wrote the key while the first one was still writing it').toEqual([]);
    expect(backwards(db, history), 'a write went backwards in the database').toEqual([]);
    expect(
      db.data.get(key),
      "the database ended with the older value: the slow flusher's write landed after the newer one, and the newer one is no longer pending",
    ).toEqual(history.get(key)![1]);
  });

  test('failure counts live in Redis: a restarted instance does not retry a parked key', async () => {
    const maxAttempts = randomInteger(2, 3);
    const { cache, lab, db, make } = await setup({ maxAttempts });
    const key = randomId('poison');
    await cache.set(key, randomValue());
    db.state.down = true;
    for (let i = 0; i < maxAttempts; i++) await cache.flush();
    const calls = db.batches.length;

    const restarted = make(lab.connect());
    const result = await restarted.flush();

    expect(
      result,
      'a restarted instance retried a parked key: the count of failed attempts was kept in memory, so every deploy or crash retries poison writes from zero',
    ).toEqual({ written: 0, failed: 0 });
    expect(db.batches.length, 'the restarted instance sent the parked key to the database again').toBe(calls);
    expect(await restarted.pending(), 'the parked key must still count as pending').toBe(1);
  });
});
