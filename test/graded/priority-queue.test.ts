import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { Redis } from 'ioredis';
import { PriorityQueue, type Job, type Priority } from '@impl/priority-queue/priority-queue.ts';
import {
  crashAtEveryTrip,
  createLabRedis,
  describeCut,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  randomWord,
  settle,
  shuffle,
  useFakeClock,
  type LabRedis,
} from '../kit/index.ts';

interface Task {
  ref: string;
  text: string;
  size: number;
  tags: string[];
  meta: { retries: boolean; note: string | null };
}

const PRIORITIES: Priority[] = ['critical', 'high', 'normal', 'low'];
const rank = (priority: Priority) => PRIORITIES.indexOf(priority);

const task = (): Task => ({
  ref: randomId('task'),
  text: randomText(3),
  size: randomInteger(1, 1_000_000),
  tags: [randomWord(), randomWord()],
  meta: { retries: randomInteger(0, 1) === 1, note: randomInteger(0, 1) ? randomText(2) : null },
});

interface Extra {
  visibilityTimeoutMs?: number;
  maxAttempts?: number;
  backoffMs?: (attempt: number) => number;
  maxWaitMs?: number;
  schema?: z.ZodType<any>;
}

/**
 * A queue with a random name, visibility timeout, attempt limit and per-attempt backoff, under a
 * fake clock. `make()` builds another instance over the same Redis: another process, or the one
 * that restarts after a crash.
 */
async function setup(extra: Extra = {}) {
  const lab = await createLabRedis();
  const clock = useFakeClock(lab);
  const name = randomId('jobs');
  const visibilityTimeoutMs = extra.visibilityTimeoutMs ?? randomInteger(5_000, 30_000);
  const maxAttempts = extra.maxAttempts ?? randomInteger(3, 5);
  const delays = Array.from({ length: maxAttempts + 2 }, () => randomInteger(1_000, 9_000));
  const backoffCalls: number[] = [];
  const backoffMs =
    extra.backoffMs ??
    ((attempt: number) => {
      backoffCalls.push(attempt);
      return delays[attempt] ?? 1_000;
    });
  const make = (redis: Redis = lab.connect(), queueName = name) =>
    new PriorityQueue<Task>({
      redis,
      name: queueName,
      maxAttempts,
      visibilityTimeoutMs,
      backoffMs,
      ...(extra.maxWaitMs !== undefined && { maxWaitMs: extra.maxWaitMs }),
      ...(extra.schema && { schema: extra.schema }),
    });
  return { lab, clock, name, queue: make(lab.redis), make, visibilityTimeoutMs, maxAttempts, delays, backoffCalls };
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

/** Reserves until the queue answers null (bounded, so a queue that never empties still fails). */
async function drain(queue: PriorityQueue<Task>, ack = false): Promise<Job<Task>[]> {
  const jobs: Job<Task>[] = [];
  for (let i = 0; i < 200; i++) {
    const job = await queue.reserve();
    if (!job) break;
    jobs.push(job);
    if (ack) await queue.ack(job);
  }
  return jobs;
}

/**
 * Resolves the promise if it settles without the fake clock moving (a real Redis round trip is
 * given up to a second of real time); fails the test with `hint` if it is waiting for a timer.
 */
async function promptly<T>(promise: Promise<T>, what: string, hint: string): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  const start = performance.now();
  while (!done && performance.now() - start < 1_000) await settle(1);
  expect(done, `${what} did not return until the clock moved: ${hint}`).toBe(true);
  return promise;
}

const ZERO = { ready: 0, inflight: 0, delayed: 0, dead: 0 };

/**
 * The four fields the README promises. A design may add its own (a delivery token for ack, say),
 * so jobs are compared on these, not with every field they carry.
 */
const fields = (job: Job<Task> | null | undefined) =>
  job && { id: job.id, payload: job.payload, priority: job.priority, attempt: job.attempt };

/**
 * How far from a deadline the suite checks "not yet" and "now due". The fake clock stands still
 * while the test runs, but a real server's clock does not: a lease or retry kept as a key TTL
 * ages by the real milliseconds each round trip takes. A tenth of a second is far more than that,
 * and far less than any backoff or lease a mistake would produce.
 */
const MARGIN_MS = 100;

/** Delivers the job and fails it until it is dead-lettered; returns the number of deliveries. */
async function failUntilDead(
  queue: PriorityQueue<Task>,
  clock: { advance(ms: number): Promise<void> },
  reason: string,
) {
  for (let delivery = 1; delivery <= 20; delivery++) {
    const job = await queue.reserve();
    if (!job) throw new Error('the job was not delivered again after its backoff and recover()');
    if ((await queue.fail(job, reason)) === 'dead') return delivery;
    await clock.advance(10_000);
    await queue.recover();
  }
  throw new Error('the job was never dead-lettered');
}

describe('core', () => {
  test('a job enqueued by one process is reserved by another with its payload, priority and attempt 1', async () => {
    const { queue, make } = await setup();
    const consumer = make();
    const payload = task();
    const priority = PRIORITIES[randomInteger(0, 3)]!;

    const empty = await consumer.reserve();
    const id = await queue.enqueue(payload, { priority });
    const job = await consumer.reserve();
    const next = await consumer.reserve();

    expect(
      empty,
      'reserve() on an empty queue must return null at once (there are no blocking commands here)',
    ).toBeNull();
    expect(typeof id, 'enqueue() must resolve with the job id').toBe('string');
    expect(
      fields(job),
      'a second process could not reserve the job: everything about a job must live in Redis, not in the memory of the process that enqueued it',
    ).toEqual({ id, payload, priority, attempt: 1 });
    expect(
      next,
      'the queue held one job, but a second reserve() returned one too: a reserved job must not stay ready',
    ).toBeNull();
  });

  test('enqueue() uses the id it is given, and otherwise makes a new unique one', async () => {
    const { queue } = await setup();
    const given = randomId('order');

    const ids = await Promise.all(Array.from({ length: 8 }, () => queue.enqueue(task())));
    const chosen = await queue.enqueue(task(), { id: given });

    expect(
      new Set(ids).size,
      `8 enqueue() calls returned only ${new Set(ids).size} distinct ids: two jobs sharing an id overwrite or acknowledge each other`,
    ).toBe(8);
    expect(chosen, 'enqueue(payload, { id }) must resolve with that id, so producers can refer to the job').toBe(given);
    expect((await queue.counts()).ready, '9 jobs were enqueued').toBe(9);
  });

  test('the default priority is normal', async () => {
    const { queue } = await setup();
    await queue.enqueue(task(), { priority: 'low' });
    const id = await queue.enqueue(task());
    await queue.enqueue(task(), { priority: 'high' });

    const order = (await drain(queue)).map((job) => job.priority);

    expect(order, 'a job enqueued without a priority must be "normal": after high, before low').toEqual([
      'high',
      'normal',
      'low',
    ]);
    expect(
      id,
      'enqueue() must resolve with the job id, so producers can find, dedupe or redrive the job later',
    ).toBeTypeOf('string');
  });

  test('jobs of one priority come out in the order they were enqueued, even from several producers in the same millisecond', async () => {
    const { queue, make } = await setup();
    const producers = [queue, make(), make()];
    const priority = PRIORITIES[randomInteger(0, 3)]!;
    const enqueued: string[] = [];

    for (let i = 0; i < 8; i++) enqueued.push(await producers[randomInteger(0, 2)]!.enqueue(task(), { priority }));
    const reserved = (await drain(make())).map((job) => job.id);

    expect(
      reserved,
      'jobs of the same priority came out in a different order than they went in. The clock did not move and several processes enqueued, so neither a timestamp nor a per-process counter can order them: take the position from Redis (a list, or INCR for a sorted-set score), or users see later requests served first',
    ).toEqual(enqueued);
  });

  test('higher priorities are served first, and each priority in enqueue order', async () => {
    const { queue, clock } = await setup();
    const plan = shuffle(PRIORITIES.flatMap((priority) => Array.from({ length: randomInteger(1, 3) }, () => priority)));
    const enqueued: Array<{ id: string; priority: Priority }> = [];

    for (const priority of plan) {
      enqueued.push({ id: await queue.enqueue(task(), { priority }), priority });
      await clock.advance(randomInteger(0, 3));
    }
    const reserved = (await drain(queue)).map((job) => job.id);

    const expected = [...enqueued].sort((a, b) => rank(a.priority) - rank(b.priority)).map((job) => job.id);
    const got = reserved.map((id) => enqueued.find((job) => job.id === id)?.priority).join(', ');
    expect(
      reserved,
      `jobs came out as [${got}]: critical, then high, normal and low, each first-in first-out. A critical job stuck behind a backlog of low ones defeats the point of priorities`,
    ).toEqual(expected);
  });

  test('an unknown priority is rejected, and nothing is queued', async () => {
    const { queue } = await setup();
    const bad = `${randomWord()}-urgent` as Priority;

    const error = await queue.enqueue(task(), { priority: bad }).then(
      () => null,
      (e: Error) => e,
    );

    expect(
      error,
      `enqueue() accepted the priority "${bad}": a job with an unknown priority is scored as garbage and may never be served`,
    ).toBeInstanceOf(Error);
    expect(error!.message, 'the error must name the bad priority so the producer can fix it').toContain(bad);
    expect(await queue.counts(), 'a rejected job must not be queued').toEqual(ZERO);
  });

  test('a payload that does not match the schema is rejected with the reason, and nothing is queued', async () => {
    const field = `${randomWord()}Count`;
    const schema = z.object({ [field]: z.number().int().nonnegative(), label: z.string() });
    const { queue } = await setup({ schema });
    const good = { [field]: randomInteger(0, 99), label: randomText(2) };

    const error = await queue.enqueue({ [field]: randomText(1), label: 'x' } as any).then(
      () => null,
      (e: Error) => e,
    );
    const counts = await queue.counts();
    await queue.enqueue(good as any);
    const job = await queue.reserve();

    expect(
      error,
      'enqueue() accepted a payload that fails the schema: the consumer would crash on it later, far from the producer that sent it',
    ).toBeInstanceOf(Error);
    expect(
      error!.message,
      `the error must say what is wrong (the field "${field}"), as the schema's error does; "invalid payload" alone sends someone digging`,
    ).toContain(field);
    expect(counts, 'the rejected payload was queued anyway').toEqual(ZERO);
    expect(job?.payload, 'a payload that matches the schema must be queued and delivered unchanged').toEqual(good);
  });

  test('enqueueing the same id again keeps one job, with the first payload, wherever that job is', async () => {
    const { queue } = await setup();
    const id = randomId('order');
    const first = task();

    await queue.enqueue(first, { id });
    const again = await queue.enqueue(task(), { id });
    expect(again, 'a duplicate enqueue() must still resolve with the id').toBe(id);
    expect(
      await queue.counts(),
      'the same id enqueued twice made two jobs: a producer that retries after a timeout would run the work twice',
    ).toEqual({ ...ZERO, ready: 1 });

    const job = await queue.reserve();
    expect(job?.payload, 'the job must keep the payload it was first enqueued with').toEqual(first);

    await queue.enqueue(task(), { id, priority: 'critical' });
    expect(
      await queue.counts(),
      'enqueueing an id that is in flight made a second job, which another consumer would run at the same time',
    ).toEqual({ ...ZERO, inflight: 1 });

    expect(await queue.ack(job!), 'ack() of the only delivery must succeed').toBe(true);
    expect(
      await queue.reserve(),
      'a duplicate enqueued while the job was in flight was delivered again after the ack',
    ).toBeNull();
  });

  test('consumers reserving at the same moment never get the same job', async () => {
    const { queue, make } = await setup();
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await queue.enqueue(task()));
    const consumers = Array.from({ length: 6 }, () => make());

    const jobs = await Promise.all(consumers.map((consumer) => consumer.reserve()));

    const got = jobs.map((job) => job?.id);
    expect(
      new Set(got).size,
      `six consumers reserved at once and got [${got.join(', ')}]: two held a lease on the same job. Read-then-remove must be one atomic step (a script, or WATCH/MULTI), or check that your removal actually removed it`,
    ).toBe(6);
    expect([...got].sort(), 'each of the six jobs must go to exactly one consumer').toEqual([...ids].sort());
  });

  test('a reserve() that another consumer races at any round trip hands the job to exactly one of them', async () => {
    const { lab, make } = await setup();

    await raceAtEveryTrip({
      async arrange() {
        const name = randomId('race');
        const id = await make(lab.connect(), name).enqueue(task());
        return {
          lab,
          id,
          consumer: make(lab.redis, name),
          rival: make(lab.connect(), name),
          rivalGot: undefined as Job<Task> | null | undefined,
        };
      },
      act: ({ consumer }) => consumer.reserve(),
      race: async (state) => void (state.rivalGot = await state.rival.reserve()),
      check({ id, rivalGot }, at) {
        if (at.finishedFirst) return;
        const got = 'value' in at.outcome ? at.outcome.value : null;
        const holders = [got, rivalGot].filter((job) => job?.id === id).length;
        expect(
          holders,
          `another consumer reserved right before round trip ${at.trip + 1} of reserve(), and ${holders === 2 ? 'both consumers got the same job' : 'neither got the job'}. Taking the job and recording the lease must be one atomic step (a script, or WATCH/MULTI that retries), or two workers send the same email`,
        ).toBe(1);
      },
    });
  });

  test('a crash at any point of reserve() loses no job: it comes back after the visibility timeout', async () => {
    const { lab, clock, make, visibilityTimeoutMs } = await setup();

    // Wherever the consumer dies in reserve(), a restarted one must get the job once the lease is up.
    await crashAtEveryTrip({
      async arrange() {
        const name = randomId('crash');
        const payload = task();
        const id = await make(lab.connect(), name).enqueue(payload);
        return { lab, name, payload, id, consumer: make(await connected(lab), name) };
      },
      act: ({ consumer }) => consumer.reserve(),
      async check({ name, payload, id }, at) {
        await clock.advance(visibilityTimeoutMs + 1);
        const restarted = make(lab.connect(), name);
        await restarted.recover();
        const again = await restarted.reserve();

        const what = at.finishedFirst
          ? 'reserve() returned and the consumer died before ack()'
          : `the connection dropped ${describeCut(at)} of reserve()`;
        expect(
          again?.id,
          `${what}, and the job was never delivered again. Taking a job off the ready set and recording its lease must be one atomic step (a Lua script, or MULTI/EXEC); between two commands a crash loses the job for good`,
        ).toBe(id);
        expect(again?.payload, 'the job came back without its payload').toEqual(payload);
        if (at.finishedFirst)
          expect('value' in at.outcome && at.outcome.value, 'reserve() should have returned the job').toMatchObject({
            id,
          });
      },
    });
  });

  test('a crash at any point of enqueue() leaves a job that a retried enqueue() queues exactly once', async () => {
    const { lab, make } = await setup();

    await crashAtEveryTrip({
      async arrange() {
        const name = randomId('crash');
        return { lab, name, id: randomId('order'), payload: task(), producer: make(await connected(lab), name) };
      },
      act: ({ producer, payload, id }) => producer.enqueue(payload, { id }),
      async check({ name, payload, id }, at) {
        await make(lab.connect(), name).enqueue(payload, { id });
        const delivered = await drain(make(lab.connect(), name));

        expect(
          delivered.map((job) => job.id),
          `the connection dropped ${describeCut(at)} of enqueue() and the producer retried: the job must then be queued exactly once. Write the job and queue it in one atomic step, or a half-written job is lost (the retry thinks it exists) or doubled`,
        ).toEqual([id]);
        expect(delivered[0]?.payload, 'the job lost its payload').toEqual(payload);
      },
    });
  });

  test('a job not acked within visibilityTimeoutMs is delivered again by recover(), and not before', async () => {
    const { queue, clock, make, visibilityTimeoutMs } = await setup();
    const payload = task();
    const priority = PRIORITIES[randomInteger(0, 3)]!;
    const id = await queue.enqueue(payload, { priority });
    await queue.reserve();
    const other = make();

    await clock.advance(visibilityTimeoutMs - randomInteger(MARGIN_MS, 5 * MARGIN_MS));
    const early = await other.recover();
    const tooSoon = await other.reserve();
    await clock.advance(6 * MARGIN_MS);
    const moved = await other.recover();
    const again = await other.reserve();

    expect(
      tooSoon,
      'the job was delivered again while its first lease was still valid: two consumers now run it at once',
    ).toBeNull();
    expect(early, 'recover() moved a job whose lease had not expired').toBe(0);
    expect(moved, 'recover() must return how many jobs it moved back to ready: one lease had expired').toBe(1);
    expect(
      fields(again),
      'after the lease expired, the job must be delivered again, as attempt 2, with its payload and priority',
    ).toEqual({ id, payload, priority, attempt: 2 });
  });

  test('ack() ends the job: it returns true and the job never comes back', async () => {
    const { queue, clock, visibilityTimeoutMs } = await setup();
    await queue.enqueue(task());
    const job = (await queue.reserve())!;

    const acked = await queue.ack(job);
    await clock.advance(visibilityTimeoutMs * 2);
    const moved = await queue.recover();

    expect(acked, 'ack() of the current delivery must return true').toBe(true);
    expect(moved, 'recover() brought back a job that was acked').toBe(0);
    expect(await queue.reserve(), 'an acked job was delivered again').toBeNull();
    expect(await queue.counts(), 'an acked job must leave every count').toEqual(ZERO);
  });

  test('an acked job leaves nothing in Redis that never expires', async () => {
    const { queue, lab } = await setup();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await queue.enqueue(task(), { priority: PRIORITIES[i]! }));

    await drain(queue, true);

    for (const { key, items, ttlMs } of await lab.dump()) {
      const left = ids.filter((id) => items.some((item) => item.includes(id)));
      expect(
        left.length > 0 && ttlMs === -1,
        `after every job was acked, "${key}" still holds ${left.join(', ')} with no TTL: a queue that keeps finished jobs grows until Redis runs out of memory`,
      ).toBe(false);
    }
  });

  test.each(['ack', 'fail'] as const)(
    '%s() from a delivery whose lease ran out and went to another consumer, at any round trip, leaves the new delivery alone',
    async (call) => {
      const { lab, clock, make, visibilityTimeoutMs } = await setup();

      // The lease runs out, and another consumer recovers and reserves the job right before each
      // round trip of the late call in turn (before the first: the plain late call).
      await raceAtEveryTrip({
        async arrange() {
          const name = randomId('late');
          await make(lab.connect(), name).enqueue(task());
          const slow = make(lab.redis, name);
          const stale = (await slow.reserve())!;
          await clock.advance(visibilityTimeoutMs + 1);
          return { lab, slow, stale, rival: make(lab.connect(), name), fresh: null as Job<Task> | null };
        },
        act: ({ slow, stale }): Promise<unknown> =>
          call === 'ack' ? slow.ack(stale) : slow.fail(stale, randomText(2)),
        async race(state) {
          await state.rival.recover();
          state.fresh = await state.rival.reserve();
        },
        async check({ rival, fresh }, at) {
          if (at.finishedFirst || !fresh) return;
          const when = `the lease ran out and another consumer took the job right before round trip ${at.trip + 1} of the first consumer's late ${call}()`;
          const counts = await rival.counts();
          const current = await rival.ack(fresh);

          if (call === 'ack')
            expect(
              'value' in at.outcome && at.outcome.value,
              `${when}: that ack() must answer false, because its delivery no longer holds the lease. Tie the lease to the delivery (the attempt number or a token), not only to the job id`,
            ).toBe(false);
          expect(
            counts,
            `${when}, and it ${call === 'ack' ? 'removed' : 'moved (to delayed or dead)'} the job the other consumer is working on`,
          ).toEqual({ ...ZERO, inflight: 1 });
          expect(
            current,
            `${when}, and the new delivery's own ack() then failed: a stale delivery must not touch it. Check the lease and change the job in one atomic step (a script, or WATCH/MULTI)`,
          ).toBe(true);
        },
      });
    },
  );

  test('ack() of an unknown job, of a job that was never reserved, or a second time returns false and changes nothing', async () => {
    const { queue } = await setup();
    const id = await queue.enqueue(task());

    const unknown = await queue.ack({ id: randomId('nope'), payload: task(), priority: 'normal', attempt: 1 });
    const forged = await queue.ack({ id, payload: task(), priority: 'normal', attempt: 1 });
    const counts = await queue.counts();
    const job = (await queue.reserve())!;
    const first = await queue.ack(job);
    const second = await queue.ack(job);

    expect(unknown, 'ack() of a job the queue never had must return false').toBe(false);
    expect(
      forged,
      'ack() of a job that is ready, not reserved, returned true: only a delivery that holds the lease may ack',
    ).toBe(false);
    expect(counts, 'a rejected ack() changed the queue').toEqual({ ...ZERO, ready: 1 });
    expect(first, 'ack() of the current delivery must return true').toBe(true);
    expect(second, 'a second ack() of the same delivery must return false: the job is already gone').toBe(false);
  });

  test('fail() returns at once and schedules the retry after backoffMs(attempt): not reservable before, reservable after', async () => {
    const { queue, clock, delays, backoffCalls } = await setup({ maxAttempts: 4 });
    const priority = PRIORITIES[randomInteger(0, 3)]!;
    const payload = task();
    const id = await queue.enqueue(payload, { priority });

    let job = (await queue.reserve())!;
    for (const attempt of [1, 2]) {
      const outcome = await promptly(
        queue.fail(job, randomText(2)),
        'fail()',
        'it waits for the backoff (a sleep) instead of scheduling the retry in Redis. A sleeping consumer does no other work, and the retry is lost if it crashes',
      );
      const counts = await queue.counts();
      await clock.advance(delays[attempt]! - MARGIN_MS);
      await queue.recover();
      const early = await queue.reserve();
      await clock.advance(2 * MARGIN_MS);
      await queue.recover();
      const due = await queue.reserve();

      expect(outcome, `attempt ${attempt} of ${4} failed: the job must be retried`).toBe('retry');
      expect(
        backoffCalls.at(-1),
        `backoffMs must be called with the number of the delivery that failed (${attempt})`,
      ).toBe(attempt);
      expect(counts, 'a job waiting for its retry must count as delayed, nothing else').toEqual({
        ...ZERO,
        delayed: 1,
      });
      expect(
        early,
        `the retry was reservable before backoffMs(${attempt}) = ${delays[attempt]} ms had passed: a failing downstream gets hammered with no pause`,
      ).toBeNull();
      expect(
        fields(due),
        `the retry was not reservable once backoffMs(${attempt}) = ${delays[attempt]} ms had passed and recover() ran`,
      ).toEqual({ id, payload, priority, attempt: attempt + 1 });
      job = due!;
    }
  });

  test('a scheduled retry survives the crash of the consumer that failed the job', async () => {
    const { lab, clock, make, delays } = await setup();
    await make().enqueue(task());
    const consumer = make();
    const job = (await consumer.reserve())!;
    await promptly(
      consumer.fail(job, randomText(2)),
      'fail()',
      'it waits for the backoff instead of scheduling the retry in Redis',
    );

    lab.roundTrips.breakAfter(0); // the consumer's process is gone: nothing it still holds in memory reaches Redis
    await clock.advance(delays[1]! + 1);
    lab.roundTrips.repair();
    const restarted = make();
    await restarted.recover();
    const again = await restarted.reserve();

    expect(
      again?.id,
      'the consumer that called fail() died before the backoff ended, and the job never came back: a retry kept in process memory (a timer) dies with the process. Record it in Redis with the time it is due',
    ).toBe(job.id);
  });

  test('a crash at any point of fail() loses no job', async () => {
    const { lab, clock, make, visibilityTimeoutMs, delays } = await setup({ maxAttempts: 3 });

    await crashAtEveryTrip({
      async arrange() {
        const name = randomId('crash');
        const id = await make(lab.connect(), name).enqueue(task());
        const consumer = make(await connected(lab), name);
        return { lab, name, id, consumer, job: (await consumer.reserve())! };
      },
      act: ({ consumer, job }) => consumer.fail(job, randomText(2)),
      async check({ name, id }, at) {
        await clock.advance(Math.max(visibilityTimeoutMs, delays[1]!) + 1);
        const restarted = make(lab.connect(), name);
        await restarted.recover();
        const again = await restarted.reserve();

        expect(
          again?.id,
          `the connection dropped ${describeCut(at)} of fail() and the job was lost: moving it from in flight to delayed must be one atomic step`,
        ).toBe(id);
      },
    });
  });

  test('a job is dead-lettered on its maxAttempts-th failed delivery, not one sooner or later', async () => {
    const { queue, clock, maxAttempts, visibilityTimeoutMs } = await setup();
    const payload = task();
    const priority = PRIORITIES[randomInteger(0, 3)]!;
    const id = await queue.enqueue(payload, { priority });
    const outcomes: string[] = [];
    let reason = '';

    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const job = await queue.reserve();
      expect(
        job?.attempt,
        `delivery ${attempt} of a job with maxAttempts = ${maxAttempts} was ${job ? `numbered ${job.attempt}` : `never made: the job was dead-lettered or lost after ${attempt - 1} deliveries`}`,
      ).toBe(attempt);
      reason = `${randomText(3)} (${attempt})`;
      outcomes.push(await queue.fail(job!, reason));
      await clock.advance(Math.max(10_000, visibilityTimeoutMs) + 1);
      await queue.recover();
    }
    const after = await queue.reserve();

    const expected = [...Array.from({ length: maxAttempts - 1 }, () => 'retry'), 'dead'];
    expect(
      outcomes,
      `with maxAttempts = ${maxAttempts}, fail() must answer "retry" for deliveries 1 to ${maxAttempts - 1} and "dead" for delivery ${maxAttempts}: maxAttempts counts deliveries, so an off-by-one either gives up on a job that had a try left or runs a poison job once more`,
    ).toEqual(expected);
    expect(after, 'a dead-lettered job was delivered again').toBeNull();
    expect(await queue.counts(), 'the dead job must count as dead, nothing else').toEqual({ ...ZERO, dead: 1 });
    expect(
      (await queue.deadLetters()).map(({ job, reason }) => ({ job: fields(job), reason })),
      'deadLetters() must return the job, as of its last delivery, with the reason of the last fail()',
    ).toEqual([{ job: { id, payload, priority, attempt: maxAttempts }, reason }]);
  });

  test('a job whose lease keeps running out is dead-lettered after maxAttempts deliveries', async () => {
    const { queue, clock, maxAttempts, visibilityTimeoutMs } = await setup();
    const id = await queue.enqueue(task());
    let deliveries = 0;

    // A poison job that kills its worker every time: neither ack() nor fail() is ever called.
    for (let i = 0; i < maxAttempts + 3; i++) {
      await queue.recover();
      const job = await queue.reserve();
      if (!job) break;
      deliveries++;
      await clock.advance(visibilityTimeoutMs + 1);
    }
    await queue.recover();
    await queue.reserve();
    const dead = await queue.deadLetters();

    expect(
      deliveries,
      `with maxAttempts = ${maxAttempts}, a job whose lease expired every time was delivered ${deliveries} times. An expired lease is a delivery too: count it, or one poison message crashes workers forever`,
    ).toBe(maxAttempts);
    expect(
      dead.map((entry) => entry.job.id),
      'the job that used up its deliveries by timing out must be in deadLetters()',
    ).toEqual([id]);
    expect(dead[0]?.reason, 'a job dead-lettered by lease expiry must still carry a reason').toMatch(/\S/);
  });

  test('deadLetters() keeps each reason; redrive() puts a dead job back with fresh attempts', async () => {
    const { queue, clock, maxAttempts } = await setup();
    const a = await queue.enqueue(task(), { priority: 'high' });
    const reasonA = randomText(4);
    await failUntilDead(queue, clock, reasonA);
    const b = await queue.enqueue(task(), { priority: 'low' });
    const reasonB = randomText(4);
    await failUntilDead(queue, clock, reasonB);

    const dead = await queue.deadLetters();
    const redriven = await queue.redrive(a);
    const counts = await queue.counts();
    const job = (await queue.reserve())!;
    const outcome = await queue.fail(job, randomText(2));
    const stillDead = await queue.deadLetters();

    expect(
      dead.map(({ job, reason }) => [job.id, reason]).sort(),
      'deadLetters() must list every dead job with the reason it failed: without the reason nobody can decide whether to redrive or discard',
    ).toEqual(
      [
        [a, reasonA],
        [b, reasonB],
      ].sort(),
    );
    expect(redriven, 'redrive() of a dead job must return true').toBe(true);
    expect(counts, 'after redrive() the job is ready again and leaves the dead letters').toEqual({
      ...ZERO,
      ready: 1,
      dead: 1,
    });
    expect(
      [job.id, job.priority, job.attempt],
      'the redriven job must come back with its priority, starting again at attempt 1',
    ).toEqual([a, 'high', 1]);
    expect(
      outcome,
      `a redriven job must get a fresh set of ${maxAttempts} attempts; it was dead-lettered on its first failure`,
    ).toBe('retry');
    expect(
      stillDead.map((entry) => entry.job.id),
      'the other dead job must stay dead',
    ).toEqual([b]);
  });

  test('redrive() of an unknown id or of a job that is not dead returns false and duplicates nothing', async () => {
    const { queue } = await setup();
    const inFlight = await queue.enqueue(task());
    const ready = await queue.enqueue(task());
    await queue.reserve();
    const before = await queue.counts();

    const unknown = await queue.redrive(randomId('nope'));
    const notDead = await queue.redrive(ready);
    const busy = await queue.redrive(inFlight);
    expect(
      [unknown, notDead, busy],
      'redrive() of an unknown id, a ready job and an in-flight job must each return false',
    ).toEqual([false, false, false]);
    expect(await queue.counts(), 'redrive() of a job that was not dead changed the counts').toEqual(before);

    const delivered = await drain(queue);
    expect(
      delivered.map((job) => job.id),
      'redrive() of a job that was not dead queued a second copy',
    ).toEqual([ready]);
  });

  test('recover() returns how many jobs it moved back to ready, and counts() reports every state', async () => {
    const visibilityTimeoutMs = randomInteger(5_000, 30_000);
    const { queue, clock } = await setup({ visibilityTimeoutMs, backoffMs: () => visibilityTimeoutMs });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await queue.enqueue(task()));

    // t0: A and B are reserved and abandoned; C fails (retry due at t0 + timeout).
    await queue.reserve();
    await queue.reserve();
    await queue.fail((await queue.reserve())!, randomText(2));
    // Half a timeout later: D fails (due later), E is reserved (lease still valid at the end).
    await clock.advance(Math.floor(visibilityTimeoutMs / 2));
    await queue.fail((await queue.reserve())!, randomText(2));
    await queue.reserve();
    const midway = await queue.counts();
    await clock.advance(Math.ceil(visibilityTimeoutMs / 2) + 1);
    const moved = await queue.recover();
    const after = await queue.counts();

    expect(midway, 'with 1 job ready, 3 reserved (A, B, E) and 2 failed (C, D) counts() was wrong').toEqual({
      ready: 1,
      inflight: 3,
      delayed: 2,
      dead: 0,
    });
    expect(
      moved,
      'two leases had expired (A, B) and one retry was due (C); D is not due yet and E still holds its lease: recover() must return 3',
    ).toBe(3);
    expect(
      after,
      'after recover(): A, B, C and the job never reserved are ready, E is in flight, D is delayed',
    ).toEqual({ ready: 4, inflight: 1, delayed: 1, dead: 0 });
  });

  test('queues with different names never share jobs', async () => {
    const { queue, make } = await setup();
    const other = make(undefined, randomId('other'));
    await queue.enqueue(task());

    const stolen = await other.reserve();

    expect(
      stolen,
      'a queue with another name reserved this queue’s job: keep every key under the queue name',
    ).toBeNull();
    expect(await other.counts(), 'another queue’s counts included this queue’s job').toEqual(ZERO);
  });
});

describe('staff', () => {
  test('extend() keeps a long job leased: while the heartbeat runs the job is not delivered again', async () => {
    const { queue, clock, make, visibilityTimeoutMs } = await setup();
    await queue.enqueue(task());
    const job = (await queue.reserve())!;
    const other = make();
    const beats: boolean[] = [];

    for (let beat = 0; beat < 3; beat++) {
      await clock.advance(Math.floor(visibilityTimeoutMs * 0.8));
      beats.push(await queue.extend(job));
    }
    const long = randomInteger(3, 5) * visibilityTimeoutMs;
    beats.push(await queue.extend(job, long));
    await clock.advance(long - 1_000);
    const moved = await other.recover();
    const stolen = await other.reserve();
    const acked = await queue.ack(job);

    expect(beats, 'extend(job) and extend(job, ms) of a delivery that holds its lease must return true').toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      stolen,
      `a job whose worker kept calling extend() was delivered to another consumer: a job longer than visibilityTimeoutMs would run twice, or forever`,
    ).toBeNull();
    expect(moved, 'recover() took back a lease that extend() had renewed').toBe(0);
    expect(acked, 'after the heartbeats, ack() must succeed').toBe(true);
  });

  test('extend() from a delivery whose lease was lost returns false and does not keep the new delivery alive', async () => {
    const { queue, clock, make, visibilityTimeoutMs } = await setup({ maxAttempts: 5 });
    await queue.enqueue(task());
    const slow = (await queue.reserve())!;
    await clock.advance(visibilityTimeoutMs + 1);
    await queue.recover();
    const other = make();
    const fresh = (await other.reserve())!;
    await clock.advance(Math.floor(visibilityTimeoutMs / 2));

    const renewed = await queue.extend(slow);
    await clock.advance(Math.ceil(visibilityTimeoutMs / 2) + 1);
    const moved = await other.recover();

    expect(
      renewed,
      'extend() after the lease was lost must return false, so the worker knows to stop: someone else owns the job',
    ).toBe(false);
    expect(
      moved,
      "the stale extend() renewed the new delivery's lease: if that consumer dies, its job is held hostage by a worker that no longer owns it",
    ).toBe(1);
    expect(fresh.attempt, 'the redelivery is attempt 2').toBe(2);
  });

  test('with maxWaitMs set, a low job is served within maxWaitMs even while critical jobs keep arriving', async () => {
    const maxWaitMs = randomInteger(10_000, 60_000);
    const { queue, clock, make } = await setup({ maxWaitMs });
    const consumer = make();
    const intervalMs = Math.floor(maxWaitMs / randomInteger(6, 10));
    const start = clock.now();
    const low = await queue.enqueue(task(), { priority: 'low' });
    await queue.enqueue(task(), { priority: 'critical' });
    await queue.enqueue(task(), { priority: 'critical' });
    let servedAfterMs: number | null = null;

    // One critical job arrives per interval and the consumer finishes one per interval: strict
    // priority never gets to the low job.
    for (let tick = 0; tick < 40 && servedAfterMs === null; tick++) {
      await clock.advance(intervalMs);
      await queue.enqueue(task(), { priority: 'critical' });
      const job = (await consumer.reserve())!;
      await consumer.ack(job);
      if (job.id === low) servedAfterMs = clock.now() - start;
    }

    expect(
      servedAfterMs,
      `the low-priority job was still waiting after ${40 * intervalMs} ms (maxWaitMs = ${maxWaitMs}) while critical jobs kept arriving: starvation. Age jobs, so one that has waited maxWaitMs goes ahead of newer work`,
    ).not.toBeNull();
    expect(
      servedAfterMs!,
      `the low-priority job waited ${servedAfterMs} ms, with maxWaitMs = ${maxWaitMs} and a job served every ${intervalMs} ms`,
    ).toBeLessThanOrEqual(maxWaitMs + 4 * intervalMs);
  });

  test('with maxWaitMs set, jobs that arrived close together still come out by priority', async () => {
    const { queue, clock } = await setup({ maxWaitMs: randomInteger(10_000, 60_000) });
    const plan = shuffle(PRIORITIES.flatMap((priority) => [priority, priority]));
    for (const priority of plan) {
      await queue.enqueue(task(), { priority });
      await clock.advance(randomInteger(1, 50));
    }

    const order = (await drain(queue)).map((job) => job.priority);

    expect(
      order,
      'with aging on, jobs that had waited far less than maxWaitMs came out out of priority order: aging must only lift jobs that have waited, not replace priorities with FIFO',
    ).toEqual([...plan].sort((a, b) => rank(a) - rank(b)));
  });

  test('two processes running recover() at the same time move each job back once', async () => {
    const { queue, clock, make, visibilityTimeoutMs, delays } = await setup();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await queue.enqueue(task()));
    await queue.reserve();
    await queue.reserve();
    await queue.fail((await queue.reserve())!, randomText(2));
    await clock.advance(Math.max(visibilityTimeoutMs, delays[1]!) + 1);

    await Promise.all([make().recover(), make().recover(), make().recover()]);
    const delivered = (await drain(make())).map((job) => job.id);

    expect(
      [...delivered].sort(),
      `after three concurrent recover() calls the queue delivered [${delivered.join(', ')}]: a job moved back twice is run twice at once. Move each job with a step that only succeeds once (a script, or check that ZREM removed it)`,
    ).toEqual([...ids].sort());
  });
});
