import type { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { FencedLock, FencedStorage, StaleTokenError, type Lease } from '@impl/fencing-lock/fencing-lock.ts';
import {
  crashAtEveryTrip,
  createLabRedis,
  describeCut,
  type KeyDump,
  type LabRedis,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  randomWord,
  settle,
  track,
  type Outcome,
  useFakeClock,
  waitFor,
} from '../kit/index.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const MONTH_MS = 30 * DAY_MS;

// A busy-polling waiter never yields to timers on the mock (its replies are microtasks), so it
// would freeze the test. After this many round trips every command fails instead, and the test
// reports busy polling.
const ROUND_TRIP_CAP = 20_000;

/** A failure message from named parts: what happened, what was expected, what it costs. */
const say = (...parts: string[]) => parts.join(' ');

/** Fails when a waiter used up ROUND_TRIP_CAP round trips: it polls Redis in a loop with no pause. */
function expectNoBusyPolling(lab: LabRedis) {
  expect(
    lab.roundTrips.refused,
    say(
      `the code under test made ${ROUND_TRIP_CAP} round trips without fake time moving, so the test cut it off:`,
      'the waiter is busy polling Redis in a loop with no pause.',
      'Sleep (setTimeout) retryDelayMs × 0.5..1.5 between two tries, or a crowd of waiters hammers Redis as hard as it can while the holder works.',
    ),
  ).toBe(0);
}

const describeError = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

function isStaleTokenError(error: unknown) {
  return error instanceof StaleTokenError || (error instanceof Error && error.name === 'StaleTokenError');
}

/** Lets every reply arrive, however many round trips it takes, without moving the clock. */
async function atOnce<T>(promise: Promise<T>): Promise<Outcome<T>> {
  const outcome = track(promise);
  await waitFor(() => outcome.settled);
  return outcome;
}

/** What an outcome was, for a message: "a lease with token 7", "null", "an error (…)". */
function told(outcome: Outcome<Lease | null | boolean | true>): string {
  if (!outcome.settled) return 'nothing yet (it was still waiting with no time passing)';
  if (outcome.error !== undefined) return `an error (${describeError(outcome.error)})`;
  const value = outcome.value;
  if (value === null) return 'null';
  if (typeof value === 'object' && value !== undefined) return `a lease with token ${JSON.stringify(value.token)}`;
  return JSON.stringify(value);
}

/** The two fields read() promises: a design may return more. */
const readOf = (found: { data: string; token: number } | null | undefined) =>
  found ? { data: found.data, token: found.token } : found;

const leaseOf = (outcome: Outcome<Lease | null>) => (outcome.settled && outcome.value ? outcome.value : null);

interface Setup {
  ttlMs?: number;
  lockPrefix?: string;
  storePrefix?: string;
}

/** A fresh Redis, a fake clock, and a lock and a storage for the first "process". */
async function setup(options: Setup = {}) {
  const lab = await createLabRedis();
  const clock = useFakeClock(lab);
  const ttlMs = options.ttlMs ?? randomInteger(2_000, 8_000);
  /** The lock in a process of its own: another client over the same Redis. */
  const lockOn = (redis: Redis = lab.connect()) =>
    new FencedLock({ redis, ttlMs, ...(options.lockPrefix !== undefined && { keyPrefix: options.lockPrefix }) });
  const storageOn = (redis: Redis = lab.connect()) =>
    new FencedStorage({ redis, ...(options.storePrefix !== undefined && { keyPrefix: options.storePrefix }) });

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
  async function wait(totalMs: number, stepMs = 50) {
    for (let elapsed = 0; elapsed < totalMs; ) {
      const step = Math.max(1, Math.min(stepMs, totalMs - elapsed));
      await clock.advance(step);
      elapsed += step;
      await flush();
    }
  }

  return { lab, clock, ttlMs, locks: lockOn(lab.redis), storage: storageOn(lab.redis), lockOn, storageOn, flush, wait };
}

/**
 * A connected client for a process that is about to crash: on a real server a client still
 * connecting would send its ready check through the broken connection too.
 */
async function connected(lab: LabRedis): Promise<Redis> {
  const client = lab.connect();
  await client.ping();
  return client;
}

/** A counter is a string holding an integer, or a hash of integers (one field per resource). */
function looksLikeCounter(key: KeyDump) {
  const integer = (text: string | undefined) => text !== undefined && /^-?\d+$/.test(text);
  if (key.type === 'string') return integer(key.items[0]);
  if (key.type === 'hash') return key.items.filter((_, i) => i % 2 === 1).every(integer);
  return false;
}

describe('core', () => {
  test('acquire grants a lease with a positive integer token, and another process gets null at once while it is valid', async () => {
    const { locks, lockOn } = await setup();
    const resource = randomId('invoice');
    const elsewhere = randomId('invoice');
    const other = lockOn();

    const first = await atOnce(locks.acquire(resource));
    const second = await atOnce(other.acquire(resource));
    const unrelated = await atOnce(other.acquire(elsewhere));

    const lease = leaseOf(first);
    expect(lease, say(`acquire() of a free resource must grant a lease; it gave ${told(first)}.`)).not.toBeNull();
    expect(lease!.resource, 'lease.resource must be the resource that was locked').toBe(resource);
    expect(
      Number.isSafeInteger(lease!.token) && lease!.token > 0,
      say(
        `lease.token must be a positive integer number; it is ${typeof lease!.token} ${JSON.stringify(lease!.token)}.`,
        'Convert what Redis replies (INCR answers an integer) into a number: a token kept as a string is compared as a string, and "10" < "9".',
      ),
    ).toBe(true);
    expect(
      second.error,
      say(
        `acquire() of a resource another process holds threw (${describeError(second.error)}).`,
        'It must not throw but resolve null: a busy lock is the ordinary outcome, and a caller that has to catch it cannot tell it from Redis being down.',
      ),
    ).toBeUndefined();
    expect(
      second.settled,
      'acquire() of a held resource did not resolve until the clock moved: without waitMs it must resolve null at once, not wait.',
    ).toBe(true);
    expect(
      second.value,
      say(
        `another process's acquire() gave ${told(second)} while the first lease was still valid: two holders at once.`,
        'Take the lock with one atomic step that fails when the key exists (SET … NX PX).',
      ),
    ).toBeNull();
    expect(
      leaseOf(unrelated),
      `a lock on "${resource}" must not block "${elsewhere}": acquire() of another resource gave ${told(unrelated)}. One lock key per resource.`,
    ).not.toBeNull();
  });

  test('300 concurrent acquires of one resource from three processes grant exactly one lease', async () => {
    const { lab, lockOn } = await setup();
    const resource = randomId('account');
    const processes = [lockOn(lab.redis), lockOn(), lockOn()];

    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) => atOnce(processes[i % 3]!.acquire(resource))),
    );

    const failed = outcomes.filter((outcome) => outcome.error !== undefined || !outcome.settled);
    expect(
      failed.length,
      `${failed.length} of 300 acquire() calls rejected or never resolved (first: ${failed[0] ? told(failed[0]) : ''}); each must resolve a lease or null.`,
    ).toBe(0);
    const granted = outcomes.filter((outcome) => outcome.value).length;
    expect(
      granted,
      say(
        `300 concurrent acquire() calls from three processes granted ${granted} leases at once;`,
        'exactly one may hold the lock. A GET then SET, or EXISTS then SET, lets every caller that checked before the first SET in.',
        'Take the lock with one atomic command (SET key owner NX PX ttlMs) or inside one script.',
      ),
    ).toBe(1);
  });

  test('another process acquiring right before any round trip of an acquire leaves exactly one holder', async () => {
    const { lab, lockOn } = await setup();

    // B's acquire() runs right before round trip 1, 2, 3… of A's, until A's finishes first.
    await raceAtEveryTrip({
      arrange: async () => ({
        lab,
        resource: randomId('ledger'),
        a: lockOn(),
        b: lockOn(),
        other: undefined as Outcome<Lease | null> | undefined,
      }),
      act: ({ a, resource }) => a.acquire(resource),
      async race(state) {
        state.other = await atOnce(state.b.acquire(state.resource));
      },
      check({ other }, at) {
        const mine = 'value' in at.outcome ? at.outcome.value : null;
        expect(
          'error' in at.outcome ? describeError(at.outcome.error) : 'resolved',
          'acquire() must resolve a lease or null, not throw',
        ).toBe('resolved');
        if (!other) {
          expect(mine, 'acquire() of a free resource must grant a lease').not.toBeNull();
          return; // A finished before the race could run
        }
        const leases = [mine, leaseOf(other)].filter(Boolean).length;
        expect(
          leases,
          say(
            `another process's acquire() ran right before round trip ${at.trip + 1} of an acquire(): ${leases === 2 ? 'both got a lease' : 'neither got a lease'}.`,
            'Exactly one must: whoever reaches Redis first takes the lock in one atomic step, and the other sees it taken.',
          ),
        ).toBe(1);
      },
    });
  });

  test('the lock expires ttlMs after the grant: another process gets it then, not before', async () => {
    const { locks, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const other = lockOn();
    const lease = await locks.acquire(resource);
    const earlyMs = Math.floor(ttlMs * 0.9);

    await clock.advance(earlyMs);
    const early = await atOnce(other.acquire(resource));
    await clock.advance(ttlMs - earlyMs + 1);
    const late = await atOnce(other.acquire(resource));

    expect(lease, 'acquire() of a free resource must grant a lease').not.toBeNull();
    expect(
      leaseOf(early),
      `another process got the lock ${earlyMs} ms after the grant, before ttlMs (${ttlMs} ms) had passed: two holders. The lock must last ttlMs: check the unit (PX takes milliseconds).`,
    ).toBeNull();
    expect(
      leaseOf(late),
      say(
        `the lock was still held ${ttlMs + 1} ms after the grant with ttlMs = ${ttlMs} (acquire gave ${told(late)}).`,
        'The lock must expire on its own after ttlMs, or a holder that dies blocks the resource: check the unit (PX takes milliseconds, EX seconds) and set the expiry in the same command as the lock.',
      ),
    ).not.toBeNull();
    expect(
      leaseOf(late)!.token > lease!.token,
      `the grant after the expiry got token ${leaseOf(late)!.token}, not greater than the expired lease's ${lease!.token}: tokens must only grow.`,
    ).toBe(true);
  });

  test('a crash at any point of acquire leaves no lock without an expiry: ttlMs later another process gets it', async () => {
    const { lab, lockOn, clock, ttlMs } = await setup();

    // Cut the connection after 0, 1, 2… round trips of an acquire(), until it finishes first:
    // wherever the process dies, the lock it may have taken must free itself.
    await crashAtEveryTrip({
      arrange: async () => ({ lab, resource: randomId('invoice'), a: lockOn(await connected(lab)) }),
      act: ({ a, resource }) => a.acquire(resource),
      async check({ resource }, at) {
        await clock.advance(ttlMs + 1);
        const after = await atOnce(lockOn().acquire(resource));

        const where = at.finishedFirst
          ? 'an acquire() that ran to the end'
          : `an acquire() whose connection broke ${describeCut(at)}`;
        expect(
          leaseOf(after),
          say(
            `${where} left the lock without an expiry: ${ttlMs + 1} ms later another process's acquire() gave ${told(after)}.`,
            'A lock without a TTL blocks the resource forever once its holder dies. Take the lock and its expiry in one command (SET key owner NX PX ttlMs) or one script, never SETNX then PEXPIRE.',
          ),
        ).not.toBeNull();
        const first = 'value' in at.outcome ? at.outcome.value : null;
        if (first)
          expect(
            leaseOf(after)!.token > first.token,
            `the grant after ${where} got token ${leaseOf(after)!.token}, not greater than the earlier lease's ${first.token}`,
          ).toBe(true);
      },
    });
  });

  test('tokens strictly increase across release, expiry and processes, even within one millisecond', async () => {
    const { lab, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const processes = [lockOn(lab.redis), lockOn(), lockOn()];
    const grants: Array<{ token: number; after: string }> = [];

    let after = 'nothing: the first grant';
    for (let i = 0; i < 24; i++) {
      const outcome = await atOnce(processes[randomInteger(0, 2)]!.acquire(resource));
      const lease = leaseOf(outcome);
      expect(lease, `grant ${i + 1} of a free resource (after ${after}) gave ${told(outcome)}`).not.toBeNull();
      grants.push({ token: lease!.token, after });
      if (i % 4 === 3) {
        await clock.advance(ttlMs + 1);
        after = 'the previous lease expired';
      } else {
        await lease!.release();
        after = 'the previous lease was released, in the same millisecond';
      }
    }

    for (let i = 1; i < grants.length; i++) {
      const { token, after: cause } = grants[i]!;
      const previous = grants[i - 1]!.token;
      const likely = cause.includes('expired')
        ? 'A counter that expires with the lock starts again at 1.'
        : 'A token from Date.now() repeats within a millisecond, a random one goes down half the time, and a counter reset on release starts again at 1.';
      expect(
        token > previous,
        say(
          `grant ${i + 1} got token ${token}, which is not greater than the token ${previous} of the grant before it (${cause}).`,
          likely,
          'Draw each token with INCR on a counter that never expires and is never reset: a storage that has seen the higher token refuses every holder after it.',
        ),
      ).toBe(true);
    }
  });

  test('the token counter never expires: a grant a month later gets a larger token, and its write is accepted', async () => {
    const { locks, lockOn, storage, storageOn, clock } = await setup();
    const resource = randomId('invoice');
    const lease = await locks.acquire(resource);
    await storage.write(resource, randomText(3), lease!.token);
    await lease!.release();

    await clock.advance(MONTH_MS);
    const later = leaseOf(await atOnce(lockOn().acquire(resource)));
    const write = later && (await atOnce(storageOn().write(resource, randomText(3), later.token)));

    expect(later, 'a month after the last lease was released, acquire() must grant a lease').not.toBeNull();
    expect(
      later!.token > lease!.token,
      say(
        `a month after the last grant, acquire() handed out token ${later!.token} after ${lease!.token}: the token counter expired, so numbering restarted.`,
        'The counter must have no TTL: it is the only lock key that lives forever.',
      ),
    ).toBe(true);
    expect(
      write?.error === undefined ? 'accepted' : describeError(write.error),
      `the storage refused the new holder's write a month later: with a restarted counter, a storage that has seen ${lease!.token} refuses every new holder forever`,
    ).toBe('accepted');
  });

  test('a grant that came right after any round trip of acquire, once the earlier lease ran out, carries the larger token', async () => {
    const { lab, lockOn, clock, ttlMs } = await setup();

    // Right before round trip 1, 2, 3… of A's acquire(): whatever A holds runs out, and B takes
    // the lock. If A got a lease too, its grant came first, so B's token must be the larger.
    await raceAtEveryTrip({
      arrange: async () => ({
        lab,
        resource: randomId('report'),
        a: lockOn(),
        b: lockOn(),
        later: undefined as Outcome<Lease | null> | undefined,
      }),
      act: ({ a, resource }) => a.acquire(resource),
      async race(state) {
        await clock.advance(ttlMs + 1);
        state.later = await atOnce(state.b.acquire(state.resource));
      },
      check({ later }, at) {
        expect(
          'error' in at.outcome ? describeError(at.outcome.error) : 'resolved',
          'acquire() must resolve a lease or null, not throw',
        ).toBe('resolved');
        if (!later) return; // A finished before the race could run
        expect(
          leaseOf(later),
          `right before round trip ${at.trip + 1} of A's acquire(), with any lease A held already run out, B's acquire() gave ${told(later)}: the lock was still held`,
        ).not.toBeNull();
        const first = 'value' in at.outcome ? at.outcome.value : null;
        if (!first) return;
        expect(
          leaseOf(later)!.token > first.token,
          say(
            `right before round trip ${at.trip + 1} of A's acquire(), A's lease (taken in an earlier round trip) ran out and B acquired the lock, yet A got token ${first.token} and B ${leaseOf(later)!.token}.`,
            'The later grant must carry the larger token. Draw the token with INCR in the same atomic step as the grant (one script, or one MULTI after WATCH): as two round trips the stale holder can end up with the larger token, and the storage refuses the legitimate one.',
          ),
        ).toBe(true);
      },
    });
  });

  test('a grant that came and went right before any round trip of acquire carries the smaller token', async () => {
    const { lab, lockOn } = await setup();

    // Right before round trip 1, 2, 3… of A's acquire(), B acquires and releases. If both got a
    // lease, B's grant came first (A's lock would have stopped B), so A's token must be the larger.
    await raceAtEveryTrip({
      arrange: async () => ({
        lab,
        resource: randomId('report'),
        a: lockOn(),
        b: lockOn(),
        earlier: undefined as Lease | null | undefined,
      }),
      act: ({ a, resource }) => a.acquire(resource),
      async race(state) {
        state.earlier = leaseOf(await atOnce(state.b.acquire(state.resource)));
        await state.earlier?.release();
      },
      check({ earlier }, at) {
        expect(
          'error' in at.outcome ? describeError(at.outcome.error) : 'resolved',
          'acquire() must resolve a lease or null, not throw',
        ).toBe('resolved');
        const mine = 'value' in at.outcome ? at.outcome.value : null;
        if (!earlier || !mine) return;
        expect(
          mine.token > earlier.token,
          say(
            `right before round trip ${at.trip + 1} of A's acquire(), B acquired (token ${earlier.token}) and released; A's grant came after, yet A got token ${mine.token}.`,
            'The later grant must carry the larger token: draw the token in the same atomic step as the grant, not before it in a round trip of its own.',
          ),
        ).toBe(true);
      },
    });
  });

  test('release() frees its own lock at once, and a lease that ran out releases nothing', async () => {
    const { locks, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const [b, c] = [lockOn(), lockOn()];

    const own = await locks.acquire(resource);
    const ownRelease = await atOnce(own!.release());
    const next = leaseOf(await atOnce(b.acquire(resource)));
    await clock.advance(ttlMs + 1);
    const successor = leaseOf(await atOnce(c.acquire(resource)));
    const staleRelease = await atOnce(next!.release());
    const third = await atOnce(lockOn().acquire(resource));
    const successorRelease = await atOnce(successor!.release());

    expect(ownRelease.value, `release() of a valid lease must resolve true; it gave ${told(ownRelease)}`).toBe(true);
    expect(
      next,
      'after a release, another process must get the lock at once, without waiting for ttlMs',
    ).not.toBeNull();
    expect(successor, 'once a lease ran out, another process must get the lock').not.toBeNull();
    expect(
      staleRelease.value,
      `release() of a lease that had run out, with the lock now held by another process, must resolve false; it gave ${told(staleRelease)}`,
    ).toBe(false);
    expect(
      leaseOf(third),
      say(
        `after a lease that had run out called release(), a third process got the lock (${told(third)}) while B's lease was still valid: the stale release() deleted the lock B holds.`,
        'Store an owner id per grant and release with a compare-and-delete (delete only if the lock still holds your id), in one atomic step.',
      ),
    ).toBeNull();
    expect(successorRelease.value, "B's own release() must resolve true").toBe(true);
  });

  test('a lease that ran out cannot release or extend a later lease of the same process', async () => {
    const { locks, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const other = lockOn();

    const first = await locks.acquire(resource);
    await clock.advance(ttlMs + 1);
    const second = leaseOf(await atOnce(locks.acquire(resource)));
    const staleExtend = await atOnce(first!.extend(ttlMs * 5));
    const staleRelease = await atOnce(first!.release());
    const intruder = await atOnce(other.acquire(resource));

    expect(second, 'once the first lease ran out, the same process must get a new lease').not.toBeNull();
    expect(
      [staleExtend.value, staleRelease.value],
      say(
        `the first lease, which had run out, still acted on the lock the same process took after it: extend() gave ${told(staleExtend)} and release() ${told(staleRelease)}.`,
        'The owner id must belong to one grant, not to the process or the FencedLock instance (a random id per acquire, or the token itself): two leases of one process are two owners.',
      ),
    ).toEqual([false, false]);
    expect(
      leaseOf(intruder),
      `another process got the lock (${told(intruder)}) while the second lease was valid: the first lease's release() deleted the lock of the second`,
    ).toBeNull();
  });

  test("a lease that runs out and passes to another process right before any round trip of release() leaves that holder's lock in place", async () => {
    const { lab, lockOn, clock, ttlMs } = await setup();

    // Right before round trip 1, 2, 3… of A's release(), A's lease runs out and B takes the lock.
    await raceAtEveryTrip({
      async arrange() {
        const resource = randomId('invoice');
        const lease = await lockOn().acquire(resource);
        return { lab, resource, lease, b: lockOn(), c: lockOn(), taken: null as Lease | null };
      },
      act: ({ lease }) => lease!.release(),
      async race(state) {
        await clock.advance(ttlMs + 1);
        state.taken = leaseOf(await atOnce(state.b.acquire(state.resource)));
      },
      async check({ resource, c, taken }, at) {
        if (!taken) return; // the race never ran
        const third = await atOnce(c.acquire(resource));

        expect(
          leaseOf(third),
          say(
            `right before round trip ${at.trip + 1} of A's release(), A's lease ran out and B took the lock; then a third process got it too (${told(third)}): A's release() deleted the lock that B took.`,
            'Compare and delete in one atomic step (a Lua script, or WATCH/MULTI): a GET then DEL lets the lock change hands between the two.',
          ),
        ).toBeNull();
      },
    });
  });

  test('extend() makes its own lock expire ttlMs from now, and extend(ttlMs) uses the time asked for', async () => {
    const { locks, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const other = lockOn();
    const margin = Math.floor(ttlMs / 10);
    const askedMs = ttlMs * randomInteger(3, 5);

    const lease = await locks.acquire(resource);
    await clock.advance(Math.floor(ttlMs / 2));
    const extended = await atOnce(lease!.extend());
    await clock.advance(ttlMs - margin);
    const pastOriginal = await atOnce(other.acquire(resource));
    const extendedAgain = await atOnce(lease!.extend(askedMs));
    await clock.advance(askedMs - margin);
    const beforeAsked = await atOnce(other.acquire(resource));
    await clock.advance(margin + 1);
    const afterAsked = await atOnce(other.acquire(resource));

    expect(extended.value, `extend() of a valid lease must resolve true; it gave ${told(extended)}`).toBe(true);
    expect(
      leaseOf(pastOriginal),
      say(
        `extend() did not reset the TTL: another process got the lock once the original ttlMs (${ttlMs} ms) had passed,`,
        `although extend() had asked for ${ttlMs} ms more halfway through.`,
        'A long job would lose its lock mid-work.',
      ),
    ).toBeNull();
    expect(extendedAgain.value, `extend(${askedMs}) of a valid lease must resolve true`).toBe(true);
    expect(
      leaseOf(beforeAsked),
      `extend(${askedMs}) did not give the lock ${askedMs} ms: another process got it ${askedMs - margin} ms later. Use the ttlMs passed to extend(), in milliseconds (PEXPIRE).`,
    ).toBeNull();
    expect(
      leaseOf(afterAsked),
      `the lock was still held ${askedMs + 1} ms after extend(${askedMs}): it must expire when the time asked for runs out (check the unit: PEXPIRE takes milliseconds, EXPIRE seconds).`,
    ).not.toBeNull();
  });

  test("extend() of a lease that ran out resolves false, revives nothing, and leaves another holder's TTL alone", async () => {
    const { locks, lockOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const [b, c] = [lockOn(), lockOn()];

    const a = await locks.acquire(resource);
    await clock.advance(ttlMs + 1);
    const revived = await atOnce(a!.extend());
    const bLease = leaseOf(await atOnce(b.acquire(resource)));
    await clock.advance(Math.floor(ttlMs / 2));
    const stretched = await atOnce(a!.extend(ttlMs * 5));
    await clock.advance(ttlMs - Math.floor(ttlMs / 2) + 1);
    const cLease = await atOnce(c.acquire(resource));

    expect(
      revived.value,
      `extend() of a lease that had run out, with nobody holding the lock, must resolve false and leave the lock gone (extending it would have revived it); it gave ${told(revived)}`,
    ).toBe(false);
    expect(
      bLease,
      say(
        'extend() of a lease that had run out revived the lock: another process could not acquire the free resource.',
        'A lock that expired must stay free; recreating it is a grant without a new token, and the storage can no longer tell this holder from the one before.',
      ),
    ).not.toBeNull();
    expect(stretched.value, `extend() of a lease now held by B must resolve false; it gave ${told(stretched)}`).toBe(
      false,
    );
    expect(
      leaseOf(cLease),
      say(
        `ttlMs after B's grant, a third process could not acquire (${told(cLease)}): A's extend() extended B's lock.`,
        'Extend only if the lock still holds your owner id, compared and extended in one atomic step: a plain PEXPIRE keeps the lock for a holder that is not the one working.',
      ),
    ).not.toBeNull();
  });

  test("a lease that runs out and passes to another process right before any round trip of extend() leaves that holder's TTL alone", async () => {
    const { lab, lockOn, clock, ttlMs } = await setup();

    // Right before round trip 1, 2, 3… of A's extend(), A's lease runs out and B takes the lock.
    await raceAtEveryTrip({
      async arrange() {
        const resource = randomId('invoice');
        const lease = await lockOn().acquire(resource);
        return { lab, resource, lease, b: lockOn(), c: lockOn(), taken: null as Lease | null, takenAt: 0 };
      },
      act: ({ lease }) => lease!.extend(ttlMs * 4),
      async race(state) {
        await clock.advance(ttlMs + 1);
        state.taken = leaseOf(await atOnce(state.b.acquire(state.resource)));
        state.takenAt = clock.now();
      },
      async check({ resource, c, taken, takenAt }, at) {
        if (!taken) return; // the race never ran
        await clock.advance(takenAt + ttlMs + 1 - clock.now());
        const third = await atOnce(c.acquire(resource));

        expect(
          leaseOf(third),
          say(
            `right before round trip ${at.trip + 1} of A's extend(), A's lease ran out and B took the lock; ttlMs after B's grant a third process still could not acquire (${told(third)}): A's extend() extended B's lock.`,
            'Compare and extend in one atomic step (a Lua script, or WATCH/MULTI): a GET then PEXPIRE lets the lock change hands between the two.',
          ),
        ).not.toBeNull();
      },
    });
  });

  test('the storage accepts the first write and equal or higher tokens, and refuses a lower token with StaleTokenError, changing nothing', async () => {
    const { lab, storage } = await setup();
    const resource = randomId('invoice');
    const token = randomInteger(20, 500);
    const higher = token + randomInteger(1, 50);
    const [first, again, newer, stale] = [randomText(3), randomText(3), randomText(3), randomText(3)];

    const never = await atOnce(storage.read(resource));
    const firstWrite = await atOnce(storage.write(resource, first, token));
    const afterFirst = readOf(await storage.read(resource));
    const secondWrite = await atOnce(storage.write(resource, again, token));
    const newerWrite = await atOnce(storage.write(resource, newer, higher));
    const before = await lab.dump();
    const staleWrite = await atOnce(storage.write(resource, stale, token));
    const after = await lab.dump();
    const final = readOf(await storage.read(resource));

    expect(
      never.value,
      `read() of a resource never written must resolve null; it gave ${JSON.stringify(never.value)}`,
    ).toBeNull();
    expect(
      firstWrite.value,
      `the first write of a resource must be accepted (true), whatever its token; it gave ${told(firstWrite)}`,
    ).toBe(true);
    expect(afterFirst, 'read() must return the data and the token last accepted').toEqual({ data: first, token });
    expect(
      secondWrite.value,
      say(
        `the same holder's second write with its token ${token} was refused (${told(secondWrite)}).`,
        'Accept a token equal to the highest accepted (>=, not >): a holder writes several times with its one token.',
      ),
    ).toBe(true);
    expect(newerWrite.value, `a write with a higher token (${higher} after ${token}) must be accepted`).toBe(true);
    expect(
      isStaleTokenError(staleWrite.error),
      say(
        `after accepting token ${higher}, the storage accepted a write with token ${token} (it gave ${told(staleWrite)}).`,
        'A lower token must be refused with StaleTokenError: it comes from a holder whose lease has run out.',
      ),
    ).toBe(true);
    expect(
      after,
      'a rejected write changed Redis: a refused write must change nothing, neither the data nor the highest token',
    ).toEqual(before);
    expect(final, 'after the refused write, read() must still return the newer data and its token').toEqual({
      data: newer,
      token: higher,
    });
  });

  test('the storage compares tokens as numbers: 10 comes after 9', async () => {
    const { storage } = await setup();
    const [rising, falling] = [randomId('doc'), randomId('doc')];
    // Ordered one way as numbers and the other way as strings: "23" < "7".
    const low = randomInteger(5, 9);
    const high = randomInteger(10, 49);

    await storage.write(rising, randomText(2), low);
    const up = await atOnce(storage.write(rising, randomText(2), high));
    await storage.write(falling, randomText(2), high);
    const down = await atOnce(storage.write(falling, randomText(2), low));

    expect(
      up.value,
      `token ${high} was refused after token ${low} (${told(up)}): the tokens were compared as strings, and "${high}" < "${low}". Compare numbers (tonumber in Lua, Number in JavaScript).`,
    ).toBe(true);
    expect(
      isStaleTokenError(down.error),
      `token ${low} was accepted after token ${high} (${told(down)}): the tokens were compared as strings, and "${low}" > "${high}". Compare numbers.`,
    ).toBe(true);
  });

  test("a newer token's write that lands right before any round trip of a stale write wins", async () => {
    const { lab, storageOn } = await setup();

    // Right before round trip 1, 2, 3… of a write with a stale token, a newer holder writes.
    await raceAtEveryTrip({
      async arrange() {
        const resource = randomId('doc');
        const base = randomInteger(5, 500);
        await storageOn().write(resource, randomText(2), base);
        return {
          lab,
          resource,
          staleToken: base + 1,
          newerToken: base + randomInteger(2, 50),
          staleData: randomText(3),
          newerData: randomText(3),
          stale: storageOn(),
          newer: storageOn(),
          raced: undefined as Outcome<true> | undefined,
        };
      },
      act: (state) => state.stale.write(state.resource, state.staleData, state.staleToken),
      async race(state) {
        state.raced = await atOnce(state.newer.write(state.resource, state.newerData, state.newerToken));
      },
      async check(state, at) {
        const final = readOf(await storageOn().read(state.resource));
        if (!state.raced) {
          expect(final, 'a write with a higher token than any before must be accepted').toEqual({
            data: state.staleData,
            token: state.staleToken,
          });
          return;
        }

        expect(
          state.raced.value,
          `the newer write (token ${state.newerToken}) was refused (${told(state.raced)}): the highest token must always be accepted`,
        ).toBe(true);
        expect(
          final,
          say(
            `right before round trip ${at.trip + 1} of a write with token ${state.staleToken}, a write with the newer token ${state.newerToken} landed, and in the end the storage holds ${JSON.stringify(final)}: the stale write overwrote the newer one.`,
            'Check the token and write in one atomic step (a Lua script, or WATCH/MULTI that retries): a read then a write in a second round trip lets a newer write land in between.',
          ),
        ).toEqual({ data: state.newerData, token: state.newerToken });
        expect(
          'error' in at.outcome && isStaleTokenError(at.outcome.error),
          `the write with token ${state.staleToken}, which reached Redis after token ${state.newerToken} was accepted, must be refused with StaleTokenError`,
        ).toBe(true);
      },
    });
  });

  test("a holder paused past its TTL is fenced off: its late write is refused and the next holder's data stays", async () => {
    const { lab, locks, lockOn, storage, storageOn, clock, ttlMs } = await setup();
    const resource = randomId('invoice');
    const bClient = lab.connect();
    const [aData, bData, aLate] = [randomText(3), randomText(3), randomText(3)];

    const a = await locks.acquire(resource);
    await storage.write(resource, aData, a!.token);
    await clock.advance(ttlMs + randomInteger(1, ttlMs)); // A stalls: a GC pause, a VM migration
    const b = leaseOf(await atOnce(lockOn(bClient).acquire(resource)));
    const bWrite = b && (await atOnce(storageOn(bClient).write(resource, bData, b.token)));
    const late = await atOnce(storage.write(resource, aLate, a!.token)); // A wakes up and writes
    const final = readOf(await storage.read(resource));
    const aRelease = await atOnce(a!.release());
    const third = await atOnce(lockOn().acquire(resource));

    expect(b, "once A's lease ran out, B must get the lock").not.toBeNull();
    expect(b!.token > a!.token, `B's token ${b!.token} must be greater than A's ${a!.token}`).toBe(true);
    expect(bWrite?.value, `B's write with its token ${b!.token} must be accepted; it gave ${told(bWrite!)}`).toBe(true);
    expect(
      isStaleTokenError(late.error),
      say(
        `A's late write with token ${a!.token} was accepted after B had written with token ${b!.token} (it gave ${told(late)}): the paused holder overwrote the new holder's work.`,
        'This is the one failure a fencing token exists to stop: the storage must refuse a token lower than the highest it has accepted, with StaleTokenError.',
      ),
    ).toBe(true);
    expect(
      final,
      "after A's refused write the storage must still hold B's data and token: a rejected write changed the data",
    ).toEqual({ data: bData, token: b!.token });
    expect(aRelease.value, `A's release() after its lease ran out must resolve false; it gave ${told(aRelease)}`).toBe(
      false,
    );
    expect(leaseOf(third), "A's release() must leave B's lock in place").toBeNull();
  });

  test('the storage never forgets: a month later its data is still there and a stale token is still refused', async () => {
    const { lab, storage, clock } = await setup();
    const resource = randomId('invoice');
    const token = randomInteger(10, 500);
    const data = randomText(4);
    await storage.write(resource, data, token);

    await clock.advance(MONTH_MS);
    const kept = await atOnce(storage.read(resource));
    const stale = await atOnce(storage.write(resource, randomText(2), token - randomInteger(1, 9)));

    expect(
      readOf(kept.value),
      say(
        `a month after the write, read() gave ${JSON.stringify(kept.value)}: the storage forgot the resource.`,
        'Storage keys are the resource itself and have no TTL; a storage that forgets its highest token accepts a stale holder’s write as the first.',
      ),
    ).toEqual({ data, token });
    expect(
      isStaleTokenError(stale.error),
      `a month after token ${token} was accepted, the storage accepted a lower token (${told(stale)}): the storage forgot its highest token. Storage keys must not expire.`,
    ).toBe(true);
    for (const key of await lab.keys())
      expect(await lab.ttlMs(key), `the storage key "${key}" has a TTL: storage keys must never expire`).toBe(-1);
  });

  test('every key starts with its prefix, storage keys never expire, and only token counters stay on the lock side without a TTL', async () => {
    const lockPrefix = `${randomWord()}-locks:`;
    const storePrefix = `${randomWord()}-docs:`;
    const { lab, lockOn, storageOn, clock, ttlMs } = await setup({ lockPrefix, storePrefix });
    const [released, expired, held] = [randomId('doc'), randomId('doc'), randomId('doc')];
    const [locks, storage] = [lockOn(), storageOn()];

    const one = await locks.acquire(released);
    await storage.write(released, randomText(2), one!.token);
    await one!.release();
    const two = await locks.acquire(expired);
    await storage.write(expired, randomText(2), two!.token);
    await clock.advance(ttlMs + 1);
    const three = await locks.acquire(held);
    await three!.extend();
    await lockOn().acquire(held);
    await storage.write(held, randomText(2), three!.token);
    const keys = await lab.dump();

    for (const key of keys)
      expect(
        key.key.startsWith(lockPrefix) || key.key.startsWith(storePrefix),
        say(
          `the key "${key.key}" starts with neither the lock's keyPrefix ("${lockPrefix}") nor the storage's ("${storePrefix}"):`,
          'every key must start with the keyPrefix of its side, so the two never collide with each other or with the application.',
        ),
      ).toBe(true);
    for (const key of keys.filter((k) => k.key.startsWith(storePrefix)))
      expect(
        key.ttlMs,
        `the storage key "${key.key}" has a TTL of ${key.ttlMs} ms: storage keys are the resource and must never expire`,
      ).toBe(-1);
    const lockSide = keys.filter((k) => k.key.startsWith(lockPrefix));
    const forever = lockSide.filter((k) => k.ttlMs === -1);
    for (const key of forever)
      expect(
        looksLikeCounter(key),
        say(
          `the lock-side key "${key.key}" (${key.type}: ${JSON.stringify(key.items)}) is left without a TTL.`,
          'Only the token counter may live forever; the lock and anything kept about a lease must expire, or every resource ever locked leaves a key behind (and a lock without a TTL never frees).',
        ),
      ).toBe(true);
    const resources = [released, expired, held];
    expect(
      forever.length,
      say(
        `${forever.length} lock-side keys have no TTL after leases on ${resources.length} resources (${forever.map((k) => `"${k.key}"`).join(', ')}):`,
        `at most ${resources.length} may, one token counter per resource (or a single counter for all of them).`,
        'Only a counter may outlive the leases, because the next grant must draw a larger token after the lease that drew the last one is gone;',
        'anything else kept about a lease (its holder, its last token) must expire with the lock, or every resource ever locked leaves a key behind for good.',
      ),
    ).toBeLessThanOrEqual(resources.length);
    expect(
      lockSide.some((k) => k.ttlMs > 0 && k.ttlMs <= ttlMs),
      `while "${held}" is locked, no lock-side key has a TTL of at most ttlMs (${ttlMs} ms): the lock must expire on its own`,
    ).toBe(true);
  });

  test("with the default prefixes, the lock's keys start with lock: and the storage's with store:", async () => {
    const { lab, locks, storage } = await setup();
    const resource = randomId('invoice');

    const lease = await locks.acquire(resource);
    await storage.write(resource, randomText(2), lease!.token);
    await lease!.release();
    const keys = await lab.keys();

    expect(
      keys.filter((key) => !key.startsWith('lock:') && !key.startsWith('store:')),
      "every key must start with the lock's default keyPrefix 'lock:' or the storage's default 'store:'",
    ).toEqual([]);
    expect(
      keys.some((key) => key.startsWith('store:')),
      "the storage's keys must start with 'store:' by default",
    ).toBe(true);
  });

  test('read() returns any string as written, the empty string included, with its token as a number', async () => {
    const { storage } = await setup();
    const texts = ['', `${randomText(2)}|${randomText(1)}`, `  ${randomText(3)}\n${randomWord()} ünï  `];

    const results = [];
    for (const [i, data] of texts.entries()) {
      const resource = randomId('doc');
      await storage.write(resource, data, i + 1);
      results.push(readOf(await storage.read(resource)));
    }

    expect(
      results,
      'read() must return exactly the string written (empty, with separators, spaces and non-ASCII alike) and the token as a number',
    ).toEqual(texts.map((data, i) => ({ data, token: i + 1 })));
  });
});

describe('staff', () => {
  test.each([
    ['retryDelayMs', randomInteger(20, 60)],
    ['50 ms when retryDelayMs is not set', null],
  ] as const)(
    'a waiter polls every %s without busy polling, and gets the lock soon after the holder releases it',
    async (_label, retryDelayMs) => {
      const delayMs = retryDelayMs ?? 50;
      const { lab, locks, lockOn, flush, wait } = await setup({ ttlMs: delayMs * 400 });
      lab.roundTrips.breakAfter(ROUND_TRIP_CAP);
      const resource = randomId('invoice');
      const waitMs = delayMs * 200;
      const holder = await locks.acquire(resource);
      const waiter = track(lockOn().acquire(resource, { waitMs, ...(retryDelayMs !== null && { retryDelayMs }) }));
      await wait(delayMs * 2, Math.max(1, Math.floor(delayMs / 4)));

      lab.roundTrips.reset();
      await flush(40); // a polite waiter sends nothing more however long this lasts; a busy one does
      const timeless = { trips: lab.roundTrips.count, summary: lab.roundTrips.summary() };
      lab.roundTrips.reset();
      await wait(delayMs * 20, Math.max(1, Math.floor(delayMs / 4)));
      const trips = { count: lab.roundTrips.count, summary: lab.roundTrips.summary() };
      const beforeRelease = { ...waiter };
      await holder!.release();
      const releasedAt = Date.now();
      await wait(delayMs * 2, Math.max(1, Math.floor(delayMs / 5)));

      expectNoBusyPolling(lab);
      expect(
        timeless.trips,
        say(
          `the waiter made ${timeless.trips} round trips (${timeless.summary}) while no time passed: it is busy polling Redis.`,
          'Sleep (setTimeout) retryDelayMs × 0.5..1.5 between two tries, or a crowd of waiters hammers Redis while the holder works.',
        ),
      ).toBeLessThanOrEqual(3);
      expect(
        trips.count,
        say(
          `the waiter made ${trips.count} round trips (${trips.summary}) in ${delayMs * 20} ms of waiting with retryDelayMs = ${delayMs}:`,
          `at most a few per try and one try per 0.5 × retryDelayMs or more, so no more than ${3 * 42}; anything more is busy polling.`,
        ),
      ).toBeLessThanOrEqual(3 * 42);
      expect(
        beforeRelease.settled,
        say(
          `the waiter had not got the lock: it resolved ${told(beforeRelease)} while the holder still held it, ${delayMs * 22} ms into a wait of waitMs = ${waitMs}.`,
          'With waitMs it must keep trying until waitMs has passed, or a caller willing to wait gives up just before the lock is free.',
        ),
      ).toBe(false);
      const got = leaseOf(waiter);
      expect(
        got !== null && waiter.atMs! - releasedAt <= 2 * delayMs,
        say(
          `the waiter had not got the lock ${2 * delayMs} ms after the holder released it (it gave ${told(waiter)}${waiter.settled ? ` after ${waiter.atMs! - releasedAt} ms` : ''}).`,
          `With retryDelayMs = ${delayMs}${retryDelayMs === null ? ' (the default)' : ''}, its next try comes within 1.5 × retryDelayMs: check the unit (setTimeout takes milliseconds).`,
        ),
      ).toBe(true);
      expect(
        got!.token > holder!.token,
        `the waiter's token ${got!.token} must be greater than the holder's ${holder!.token}`,
      ).toBe(true);
    },
  );

  test('a waiter resolves null once waitMs has passed since the call, and never gets a lease the holder still has', async () => {
    const waitMs = randomInteger(1_000, 2_000);
    const retryDelayMs = randomInteger(20, 60);
    const { lab, locks, lockOn, wait } = await setup({ ttlMs: waitMs * 4 });
    lab.roundTrips.breakAfter(ROUND_TRIP_CAP);
    const resource = randomId('invoice');
    await locks.acquire(resource);
    const started = Date.now();
    const waiter = track(lockOn().acquire(resource, { waitMs, retryDelayMs }));

    const earlyMs = Math.floor(waitMs - 1.5 * retryDelayMs) - 1;
    await wait(earlyMs, Math.max(1, Math.floor(retryDelayMs / 4)));
    const early = { ...waiter };
    const trips = { count: lab.roundTrips.count, summary: lab.roundTrips.summary() };
    await wait(started + waitMs + 2 * retryDelayMs - Date.now(), Math.max(1, Math.floor(retryDelayMs / 4)));

    expectNoBusyPolling(lab);
    expect(
      early.settled,
      `the waiter gave ${told(early)} ${earlyMs} ms into its wait, before waitMs (${waitMs} ms) had passed: it must keep trying until waitMs has passed since the call`,
    ).toBe(false);
    const allowed = 3 * Math.ceil(earlyMs / (0.5 * retryDelayMs) + 2);
    expect(
      trips.count,
      say(
        `the waiter made ${trips.count} round trips (${trips.summary}) in ${earlyMs} ms with retryDelayMs = ${retryDelayMs}:`,
        `more than ${allowed} is busy polling. Sleep retryDelayMs × 0.5..1.5 between two tries.`,
      ),
    ).toBeLessThanOrEqual(allowed);
    expect(
      waiter.settled,
      say(
        `the waiter was still waiting ${waitMs + 2 * retryDelayMs} ms after its call with waitMs = ${waitMs}:`,
        'it must resolve null once waitMs has passed since the call (fix the deadline when acquire() starts, not at each try),',
        'or requests pile up behind a busy lock without bound.',
      ),
    ).toBe(true);
    expect(
      waiter.error,
      `the waiter threw when waitMs ran out (${describeError(waiter.error)}); it must resolve null`,
    ).toBeUndefined();
    expect(
      waiter.value,
      `the waiter got ${told(waiter)} while the holder's lease was still valid: two holders`,
    ).toBeNull();
  });

  test('keepAlive keeps the lock past ttlMs until release, and renews nothing after release', async () => {
    const ttlMs = randomInteger(900, 1_500);
    const { lab, locks, lockOn, wait } = await setup({ ttlMs });
    const resource = randomId('report');
    const other = lockOn();
    const step = Math.floor(ttlMs / 10);

    const lease = await locks.acquire(resource);
    lease!.keepAlive({ maxHoldMs: ttlMs * 20 });
    const grabs: Array<{ atMs: number; got: Outcome<Lease | null> }> = [];
    for (let i = 1; i <= 40; i++) {
      await wait(step, step);
      if (i % 5 === 0) grabs.push({ atMs: i * step, got: await atOnce(other.acquire(resource)) });
    }
    const stolen = grabs.find((grab) => grab.got.error !== undefined || grab.got.value !== null);
    const abortedWhileKept = lease!.signal.aborted;
    const released = await atOnce(lease!.release());
    lab.roundTrips.reset();
    await wait(ttlMs * 2, step);
    const after = { count: lab.roundTrips.count, summary: lab.roundTrips.summary() };

    expect(
      stolen ? `${told(stolen.got)} at ${stolen.atMs} ms` : 'null every time',
      say(
        `another process's acquire() tried every ${5 * step} ms while keepAlive should have kept the lock (ttlMs = ${ttlMs}, default everyMs = ttlMs / 3):`,
        'a renewal must come well before the lease runs out, every ttlMs / 3 by default, with the same compare-and-extend as extend()',
      ),
    ).toBe('null every time');
    expect(abortedWhileKept, 'lease.signal was aborted although keepAlive kept the lease').toBe(false);
    expect(released.value, 'release() of a kept-alive lease must resolve true').toBe(true);
    expect(
      after.count,
      `after release the lease made ${after.count} round trips (${after.summary}) in ${ttlMs * 2} ms: keepAlive must stop on release() (clear its timer)`,
    ).toBeLessThanOrEqual(1);
  });

  test('keepAlive stops maxHoldMs after the grant, so the lock then runs out within ttlMs', async () => {
    const ttlMs = randomInteger(900, 1_500);
    const { locks, lockOn, clock, wait } = await setup({ ttlMs });
    const resource = randomId('report');
    const step = Math.floor(ttlMs / 10);
    const maxHoldMs = Math.round(ttlMs * 2.5);
    // The holder works a while before it starts keepAlive: maxHoldMs counts from the grant.
    const lateByMs = Math.floor(ttlMs * 0.6);

    const lease = await locks.acquire(resource);
    const grantedAt = clock.now();
    await wait(lateByMs, step);
    lease!.keepAlive({ everyMs: Math.floor(ttlMs / 4), maxHoldMs });
    await wait(grantedAt + maxHoldMs - step - clock.now(), step);
    const duringHold = await atOnce(lockOn().acquire(resource));
    await wait(grantedAt + maxHoldMs + ttlMs + step - clock.now(), step);
    const afterHold = await atOnce(lockOn().acquire(resource));
    // Still held: find out whether keepAlive counted maxHoldMs from its own call instead.
    let fromCall: Outcome<Lease | null> | null = null;
    if (!leaseOf(afterHold)) {
      await wait(grantedAt + lateByMs + maxHoldMs + ttlMs + step - clock.now(), step);
      fromCall = await atOnce(lockOn().acquire(resource));
    }

    expect(
      leaseOf(duringHold),
      `another process got the lock ${maxHoldMs - step} ms after the grant, within maxHoldMs (${maxHoldMs} ms), although keepAlive was renewing it every ${Math.floor(ttlMs / 4)} ms`,
    ).toBeNull();
    const cause =
      fromCall && leaseOf(fromCall)
        ? `keepAlive() was called ${lateByMs} ms after the grant, and the lock ran out only once maxHoldMs + ttlMs had passed since that call: it counted maxHoldMs from the keepAlive() call, not from the grant. Take the time of the grant when the lease is made and count from it.`
        : 'keepAlive must stop renewing maxHoldMs after the grant: a holder that is stuck but still has a live timer must not hold the lock forever.';
    expect(
      leaseOf(afterHold),
      say(
        `the lock was still held ${maxHoldMs + ttlMs + step} ms after the grant, past maxHoldMs (${maxHoldMs}) + ttlMs (${ttlMs}).`,
        cause,
      ),
    ).not.toBeNull();
  });

  test("a keepAlive cut off from Redis past ttlMs aborts lease.signal and leaves the new holder's lock alone", async () => {
    const ttlMs = randomInteger(900, 1_500);
    const { lab, locks, lockOn, clock, wait } = await setup({ ttlMs });
    const resource = randomId('report');
    const step = Math.floor(ttlMs / 10);

    const lease = await locks.acquire(resource);
    lease!.keepAlive({ everyMs: Math.floor(ttlMs / 3), maxHoldMs: ttlMs * 50 });
    await wait(ttlMs, step);
    // A partition: the holder's connection stops reaching Redis for longer than its lease.
    lab.roundTrips.breakAfter(0);
    await wait(ttlMs * 2, step);
    const failedRenewals = lab.roundTrips.refused;
    // B's process is on the other side, on a connection the partition does not touch.
    const b = leaseOf(await atOnce(lockOn(lab.raw).acquire(resource)));
    const bGrantedAt = clock.now();
    lab.roundTrips.repair();
    lab.roundTrips.reset();
    await wait(Math.floor(ttlMs * 0.8), step);
    const tripsAfterRepair = lab.roundTrips.count;
    const aborted = lease!.signal.aborted;
    await wait(bGrantedAt + ttlMs + 1 - clock.now(), step);
    const third = await atOnce(lockOn().acquire(resource));

    expect(b, "once the holder's lease ran out without renewals, another process must get the lock").not.toBeNull();
    const gaveUp = failedRenewals > 0 && tripsAfterRepair === 0;
    expect(
      aborted,
      gaveUp
        ? say(
            `renewals stopped for good after a failed one: the first renewal of the partition failed with a connection error (a transient one) while the lease was still ours,`,
            `and in the ${Math.floor(ttlMs * 0.8)} ms after the connection came back keepAlive sent nothing, so lease.signal was not aborted either.`,
            'The holder goes on working with a lease that ran out and nobody tells it. On an error, try again at the next tick (the next renewal then finds the lock gone and aborts the signal), or give up and abort the signal at once.',
          )
        : say(
            "the holder's keepAlive reconnected and renewed against a lock B now holds, yet lease.signal was not aborted:",
            'when a renewal finds the lock gone or someone else’s, abort the signal so the work stops; the holder otherwise goes on as if it held the lock.',
          ),
    ).toBe(true);
    expect(
      leaseOf(third),
      say(
        `ttlMs after B's grant the lock was still held (${told(third)}): the holder's keepAlive extended the new holder's lock.`,
        'Renew with the same compare-and-extend as extend(), never a plain PEXPIRE, and stop at the first renewal that answers false.',
      ),
    ).not.toBeNull();
  });
});
