import type { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import {
  partitionOf,
  publish,
  StreamWorker,
  type RunResult,
  type StreamEntry,
  type StreamWorkerOptions,
} from '@impl/stream-consumer/stream-consumer.ts';
import {
  controlled,
  crashAtEveryTrip,
  createLabRedis,
  describeCut,
  inFlight,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  shuffle,
  useFakeClock,
  waitFor,
  type LabRedis,
} from '../kit/index.ts';

type Handler = StreamWorkerOptions['handler'];

interface Pending {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
}

interface DeadLetter {
  id: string;
  deliveries: string | undefined;
  reason: string | undefined;
  fields: string | undefined;
}

interface Options {
  maxDeliveries?: number;
  batchSize?: number;
  idempotent?: boolean;
}

/** A failure message from its parts: what happened, what was expected, what it costs. */
const say = (...parts: string[]) => parts.join(' ');

const describeError = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

const toObject = (flat: string[]) => {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
};

/** A handler that records every entry it is given and resolves. */
const okHandler = () => controlled(async (_entry: StreamEntry): Promise<unknown> => undefined);

/** The ids a recording handler was given, in order. */
const seen = (handler: { calls: [StreamEntry][] }) => handler.calls.map(([entry]) => entry.id);

/**
 * A fresh Redis, a fake clock and a stream with random names, claim threshold and delivery cap.
 * `worker(handler)` builds a worker on a client of its own: another process of the same group.
 * On a Redis Cluster (or the mock under its rules) the stream's name is a hash tag, and the
 * dead-letter stream and every effect key (`near(key)`) carry it: the README's contract, since a
 * MULTI or a script spans one slot.
 */
async function setup(options: Options = {}) {
  const lab = await createLabRedis();
  const clock = useFakeClock(lab);
  const name = randomId('orders');
  const stream = lab.slots ? `{${name}}` : name;
  const near = (key: string) => (lab.slots ? `${stream}:${key}` : key);
  const config = {
    stream,
    group: randomId('billing'),
    deadLetterStream: `${stream}:dead`,
    claimIdleMs: randomInteger(20, 40) * 1_000,
    maxDeliveries: options.maxDeliveries ?? randomInteger(2, 4),
    ...(options.batchSize !== undefined && { batchSize: options.batchSize }),
    ...(options.idempotent && { idempotent: true }),
  };
  const fieldsOf = new Map<string, Record<string, string>>();

  const worker = (handler: Handler, redis: Redis = lab.connect(), consumer = randomId('w')) =>
    new StreamWorker({ redis, consumer, handler, ...config });

  /** Appends `count` entries with random fields; returns their ids. */
  async function add(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const fields = { order: randomId('o'), amount: String(randomInteger(1, 100_000)), note: randomText(2) };
      const id = (await lab.raw.xadd(stream, '*', ...Object.entries(fields).flat()))!;
      fieldsOf.set(id, fields);
      ids.push(id);
    }
    return ids;
  }

  /** The group's pending entries (none when the group does not exist). */
  async function pending(): Promise<Pending[]> {
    try {
      const rows = (await lab.raw.xpending(stream, config.group, '-', '+', 100_000)) as [
        string,
        string,
        number,
        number,
      ][];
      return rows.map(([id, consumer, idleMs, deliveries]) => ({ id, consumer, idleMs, deliveries }));
    } catch {
      return [];
    }
  }

  async function deadLetters(): Promise<DeadLetter[]> {
    const rows = (await lab.raw.xrange(config.deadLetterStream, '-', '+')) as [string, string[]][];
    return rows.map(([, flat]) => {
      const f = toObject(flat);
      return { id: f.id ?? '', deliveries: f.deliveries, reason: f.reason, fields: f.fields };
    });
  }

  async function streamIds(): Promise<string[]> {
    return ((await lab.raw.xrange(stream, '-', '+')) as [string, string[]][]).map(([id]) => id);
  }

  return { lab, clock, config, near, fieldsOf, worker, add, pending, deadLetters, streamIds };
}

/** runOnce(), with a failure that says which call rejected and what it means. */
async function run(worker: StreamWorker, when: string): Promise<RunResult> {
  try {
    return await worker.runOnce();
  } catch (error) {
    expect.fail(`runOnce() rejected ${when} (${describeError(error)})`);
  }
}

describe('core', () => {
  test('entries added before the first run are handled in order, with their fields, and acked', async () => {
    const { worker, add, pending, fieldsOf } = await setup();
    const ids = await add(randomInteger(3, 6));
    const handler = okHandler();
    const w = worker(handler);

    const first = await run(
      w,
      'on a stream whose group does not exist yet: runOnce() must create the group (XGROUP CREATE … 0 MKSTREAM) before reading',
    );
    const left = await pending();
    const second = await run(w, 'on its second call');

    const skipped = ids.filter((id) => !seen(handler).includes(id));
    expect(
      skipped,
      say(
        `${skipped.length} of ${ids.length} entries added before the first run were never handled:`,
        'the group was created at "$" (the end of the stream) instead of 0,',
        'so everything already in the stream when the first worker starts is skipped',
      ),
    ).toEqual([]);
    expect(seen(handler), 'each entry must be handled once, in stream order').toEqual(ids);
    expect(
      handler.calls.map(([entry]) => entry),
      'the handler gets { id, fields } with the fields as an object of strings',
    ).toEqual(ids.map((id) => ({ id, fields: fieldsOf.get(id) })));
    expect(first, 'runOnce() must report every entry it handled and acked').toEqual({
      processed: ids.length,
      retried: 0,
      deadLettered: 0,
    });
    expect(
      left.map((p) => p.id),
      'entries whose handler resolved must be acked (XACK): left pending, they are claimed and handled again',
    ).toEqual([]);
    expect(second, 'a second run with nothing new must handle nothing').toEqual({
      processed: 0,
      retried: 0,
      deadLettered: 0,
    });
  });

  test('runOnce() works on a stream that does not exist yet and handles entries added later', async () => {
    const { worker, add } = await setup();
    const handler = okHandler();
    const w = worker(handler);

    const empty = await run(
      w,
      'on a stream that does not exist yet: create the group with MKSTREAM so the stream is made with it',
    );
    const ids = await add(2);
    const later = await run(w, 'after entries were added');

    expect(empty, 'nothing to handle on an empty stream').toEqual({ processed: 0, retried: 0, deadLettered: 0 });
    expect(seen(handler), 'entries added after the group was created must be handled').toEqual(ids);
    expect(later.processed, 'both entries were handled').toBe(2);
  });

  test('runOnce() rejects with the Redis error when the key is not a stream (only BUSYGROUP is not an error)', async () => {
    const { lab, worker, config } = await setup();
    await lab.raw.set(config.stream, 'not a stream');

    const outcome = await worker(okHandler())
      .runOnce()
      .then(
        () => 'resolved',
        (error: unknown) => describeError(error),
      );

    expect(
      outcome,
      say(
        `runOnce() on a key that holds a string ${outcome === 'resolved' ? 'resolved' : `rejected with ${outcome}`}`,
        'instead of rejecting with Redis\' WRONGTYPE error. Only BUSYGROUP means "the group exists"; any other error',
        'must propagate as it is, or a misconfigured worker looks healthy while consuming nothing',
      ),
    ).toMatch(/WRONGTYPE/);
  });

  test('three workers on three clients share the group: each entry is handled by exactly one of them', async () => {
    const batchSize = randomInteger(3, 5);
    const { worker, add, pending } = await setup({ batchSize });
    const ids = await add(batchSize * 6);
    const handlers = [okHandler(), okHandler(), okHandler()];
    const workers = handlers.map((handler) => worker(handler));

    for (let round = 0; round < 12; round++) {
      const outcomes = await Promise.allSettled(workers.map((w) => w.runOnce()));
      const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
      if (failed >= 0) {
        const error = (outcomes[failed] as PromiseRejectedResult).reason;
        expect.fail(
          say(
            `worker ${failed + 1} of 3, started at the same time as the others, rejected with ${describeError(error)}.`,
            'A BUSYGROUP reply to XGROUP CREATE means another worker created the group first: it is not an error,',
            'and treating it as one crashes every worker but the first',
          ),
        );
      }
    }

    const all = handlers.flatMap(seen);
    const twice = ids.filter((id) => all.filter((x) => x === id).length > 1);
    const never = ids.filter((id) => !all.includes(id));
    expect(never, `${never.length} entries were never handled by any of the three workers`).toEqual([]);
    expect(
      twice,
      say(
        `${twice.length} entries were handled by two workers although none crashed and no time passed:`,
        'a worker stole entries another live worker had just read, so both did the same work.',
        'Claim only entries idle for claimIdleMs or more',
      ),
    ).toEqual([]);
    expect(await pending(), 'every entry was acked').toEqual([]);
  });

  test('runOnce() handles at most batchSize new entries per call', async () => {
    const batchSize = randomInteger(3, 6);
    const { worker, add } = await setup({ batchSize });
    const ids = await add(batchSize * 2 + 1);
    const handler = okHandler();
    const w = worker(handler);

    const first = await run(w, 'on the first batch');
    const handledFirst = handler.callCount;
    await run(w, 'on the second batch');
    await run(w, 'on the third batch');

    expect(
      handledFirst,
      say(
        `one runOnce() handled ${handledFirst} entries with batchSize ${batchSize}: read new entries with COUNT batchSize.`,
        'A worker that takes more than its batch holds more in-flight work than configured,',
        'and a crash strands all of it until claimIdleMs',
      ),
    ).toBe(batchSize);
    expect(first.processed, 'processed counts the entries handled in this call').toBe(batchSize);
    expect(seen(handler), 'three calls handle every entry once, in order').toEqual(ids);
  });

  test('an entry is pending while its handler runs; when that process dies, another consumer gets it after claimIdleMs', async () => {
    const { worker, add, pending, clock, config, fieldsOf } = await setup();
    const [id] = await add(1);
    const dying = okHandler();
    dying.hold();
    inFlight(worker(dying).runOnce());
    await waitFor(() => dying.callCount === 1);

    const whileRunning = await pending();
    // The process dies: its handler never finishes and nothing more is sent.
    await clock.advance(config.claimIdleMs);
    const rescuer = okHandler();
    const result = await run(worker(rescuer), 'when claiming the entry of a dead consumer');

    expect(
      whileRunning.map((p) => p.id),
      'the entry was acked before its handler finished: if the process dies mid-handler, the entry is lost. XACK only after the handler resolved',
    ).toEqual([id]);
    expect(
      seen(rescuer),
      say(
        `the entry of a consumer that died mid-handler was never claimed by another consumer after claimIdleMs (${config.claimIdleMs} ms).`,
        'Claim idle entries (XAUTOCLAIM … claimIdleMs) before reading new ones,',
        "or a crashed consumer's entries stay pending forever",
      ),
    ).toEqual([id]);
    expect(
      rescuer.calls[0]?.[0],
      'a claimed entry must reach the handler with its fields, like a new one (XAUTOCLAIM without JUSTID returns them)',
    ).toEqual({ id, fields: fieldsOf.get(id!) });
    expect(result, 'a claimed entry handed to the handler counts as retried, and as processed once acked').toEqual({
      processed: 1,
      retried: 1,
      deadLettered: 0,
    });
    expect(await pending(), 'the claimed entry was acked once handled').toEqual([]);
  });

  test("a live consumer's entry is not taken by another consumer before claimIdleMs", async () => {
    const { worker, add, pending, clock, config } = await setup();
    const [id] = await add(1);
    const slow = okHandler();
    slow.hold();
    const owner = randomId('slow');
    inFlight(worker(slow, undefined, owner).runOnce());
    await waitFor(() => slow.callCount === 1);
    const other = okHandler();
    const w2 = worker(other);

    await clock.advance(Math.floor(config.claimIdleMs / 2));
    await run(w2, 'while another consumer is working on its entry');
    const early = seen(other);
    const owners = (await pending()).map((p) => p.consumer);
    await clock.advance(Math.ceil(config.claimIdleMs / 2) + 1);
    await run(w2, 'once the entry has been idle for claimIdleMs');

    const stole = [
      `another consumer stole an entry a live consumer had been working on for only ${Math.floor(config.claimIdleMs / 2)} ms`,
      `(claimIdleMs is ${config.claimIdleMs}): both now process it at once.`,
      'Claim with a min-idle of claimIdleMs, never 0',
    ].join(' ');
    expect(early, stole).toEqual([]);
    expect(owners, 'the entry must stay with its consumer until it has been idle for claimIdleMs').toEqual([owner]);
    expect(
      seen(other),
      'after claimIdleMs the entry is presumed lost and must be claimed: the entry was never claimed',
    ).toEqual([id]);
  });

  test('a handler that throws leaves its entry pending: it comes back after claimIdleMs, not at once', async () => {
    const { worker, add, pending, clock, config } = await setup();
    const [bad, ...good] = await add(3);
    const handler = okHandler();
    handler.failNext(new Error(`payment API timeout ${randomId('t')}`));
    const w = worker(handler);

    const first = await run(w, 'when a handler threw: a handler error must not reject runOnce()');
    const afterFailure = await pending();
    const again = await run(w, 'on the next call');
    const callsAtOnce = seen(handler).filter((id) => id === bad).length;
    await clock.advance(config.claimIdleMs);
    const retry = await run(w, 'after claimIdleMs');

    expect(
      afterFailure.map((p) => p.id),
      'the entry was acked although its handler threw: a transient failure then drops the entry instead of retrying it. Leave it pending',
    ).toEqual([bad]);
    expect(first, 'the two other entries were processed; the failed one counts nowhere').toEqual({
      processed: 2,
      retried: 0,
      deadLettered: 0,
    });
    expect(
      callsAtOnce,
      say(
        'the failed entry was handed to the handler again at once, on the next runOnce() with no time passing.',
        "Reading this consumer's own pending entries (id 0) every run retries with no pause and re-handles work in flight.",
        'Read new entries with `>`; failures come back through the claim after claimIdleMs',
      ),
    ).toBe(1);
    expect(again, 'nothing new, nothing idle: nothing handled').toEqual({ processed: 0, retried: 0, deadLettered: 0 });
    expect(
      seen(handler).slice(3),
      `after claimIdleMs the failed entry must come back to the handler: it was never claimed`,
    ).toEqual([bad]);
    expect(retry, 'the retried entry counts as retried and, once it succeeded, processed').toEqual({
      processed: 1,
      retried: 1,
      deadLettered: 0,
    });
    expect(
      good.every((id) => seen(handler).filter((x) => x === id).length === 1),
      'the entries that succeeded were handled once each',
    ).toBe(true);
    expect(await pending(), 'the retried entry was acked').toEqual([]);
  });

  test('an entry that fails every time is handled maxDeliveries times, then dead-lettered with its id, fields, deliveries and last error', async () => {
    const { worker, add, pending, deadLetters, clock, config, fieldsOf } = await setup();
    const [id] = await add(1);
    const errors = Array.from({ length: config.maxDeliveries + 4 }, (_, i) => `attempt ${i + 1}: ${randomText(3)}`);
    const handler = controlled(async (_entry: StreamEntry): Promise<unknown> => {
      throw new Error(errors[handler.callCount - 1]);
    });
    const w = worker(handler);

    let deadLettered = 0;
    for (let round = 0; round < config.maxDeliveries + 3; round++) {
      deadLettered += (await run(w, `on round ${round + 1} of a failing entry`)).deadLettered;
      await clock.advance(config.claimIdleMs);
    }
    const letters = await deadLetters();

    const rounds = config.maxDeliveries + 3;
    expect(
      letters.length,
      letters.length === 0
        ? say(
            `the entry failed on every delivery for ${rounds} rounds of claimIdleMs and was never dead-lettered`,
            `(the handler ran ${handler.callCount} times): a poison entry is retried forever.`,
            'Read its delivery count (XPENDING) and move it to deadLetterStream once it exceeds maxDeliveries',
          )
        : `the entry was dead-lettered ${letters.length} times: ack it in the same MULTI as the copy, so it is not claimed and copied again`,
    ).toBe(1);
    expect(
      handler.callCount,
      say(
        `the handler ran ${handler.callCount} times for an entry that always fails, with maxDeliveries ${config.maxDeliveries}:`,
        'it must get exactly maxDeliveries attempts',
        '(dead-letter when the delivery count exceeds maxDeliveries, not when it reaches it)',
      ),
    ).toBe(config.maxDeliveries);
    const letter = letters[0]!;
    expect(letter.id, 'the dead letter carries the original entry id in its field "id"').toBe(id);
    expect(
      letter.reason,
      'the dead letter\'s "reason" must be the error message of the last failed attempt: without it, whoever reads the dead letters cannot tell why it failed',
    ).toBe(errors[config.maxDeliveries - 1]);
    expect(
      [String(config.maxDeliveries), String(config.maxDeliveries + 1)],
      `the dead letter's "deliveries" must be the entry's delivery count (${config.maxDeliveries} or ${config.maxDeliveries + 1}); got ${letter.deliveries}`,
    ).toContain(letter.deliveries);
    expect(
      JSON.parse(letter.fields ?? 'null'),
      'the dead letter\'s "fields" must be the original fields as a JSON object',
    ).toEqual(fieldsOf.get(id!));
    expect(deadLettered, 'runOnce() reports the dead letter in deadLettered, once').toBe(1);
    expect(
      (await pending()).map((p) => p.id),
      'the dead-lettered entry was left pending: ack it with the copy, in one MULTI',
    ).toEqual([]);
  });

  test('an entry that kills every worker that takes it reaches the dead-letter stream by its delivery count', async () => {
    const { worker, add, pending, deadLetters, clock, config } = await setup();
    const [id] = await add(1);

    // Each delivery kills its process: the handler never returns, nothing is caught or reported.
    for (let i = 0; i < config.maxDeliveries; i++) {
      const dying = controlled((_entry: StreamEntry) => new Promise<unknown>(() => {}));
      inFlight(worker(dying).runOnce());
      await waitFor(() => dying.callCount === 1);
      await clock.advance(config.claimIdleMs);
    }
    const last = okHandler();
    const result = await run(worker(last), 'after maxDeliveries crashed deliveries');
    const letters = await deadLetters();

    expect(
      seen(last),
      say(
        `after ${config.maxDeliveries} deliveries that each killed their worker, the entry was handed to a handler again.`,
        "Count deliveries (XPENDING's delivery count), not failures you caught,",
        'or a poison entry kills a worker every claimIdleMs forever',
      ),
    ).toEqual([]);
    expect(
      letters.map((l) => l.id),
      'the entry was never dead-lettered after exceeding maxDeliveries',
    ).toEqual([id]);
    expect(letters[0]?.reason, 'a worker that never saw the entry fail gives the reason "exceeded maxDeliveries"').toBe(
      'exceeded maxDeliveries',
    );
    expect(result.deadLettered, 'deadLettered counts it').toBe(1);
    expect(await pending(), 'the dead-lettered entry was left pending').toEqual([]);
  });

  test('a crash after any round trip of runOnce() loses no entry, dead-letters once, and never re-handles an acked entry', async () => {
    // Enough deliveries that the crash and the recovery's claim do not use up the other entries'.
    const maxDeliveries = randomInteger(4, 5);
    const fresh = randomInteger(2, 4);

    await crashAtEveryTrip({
      async arrange() {
        const scene = await setup({ maxDeliveries });
        const { worker, add, clock, config } = scene;
        // A poison entry that has used up its deliveries at another worker.
        const [poison] = await add(1);
        const failing = controlled(async (_entry: StreamEntry): Promise<unknown> => {
          throw new Error('poison');
        });
        const veteran = worker(failing);
        for (let i = 0; i < maxDeliveries; i++) {
          if (i > 0) await clock.advance(config.claimIdleMs);
          await veteran.runOnce();
        }
        // An entry whose consumer died mid-handler (it took it before the poison was idle again),
        // both idle for claimIdleMs, and new entries.
        const [stranded] = await add(1);
        inFlight(worker(controlled((_entry: StreamEntry) => new Promise<unknown>(() => {}))).runOnce());
        await clock.advance(config.claimIdleMs);
        const news = await add(fresh);
        const handler = okHandler();
        return { ...scene, poison: poison!, work: [stranded!, ...news], handler, crashing: worker(handler) };
      },
      act: ({ crashing }) => crashing.runOnce(),
      async check(scene, at) {
        const { poison, work, handler, pending, deadLetters, clock, config, worker } = scene;
        const where = at.finishedFirst
          ? 'a runOnce() that ran to the end'
          : `a crash ${describeCut(at)} of a runOnce() that had a poison entry to dead-letter`;
        const copies = () => deadLetters().then((letters) => letters.filter((l) => l.id === poison).length);
        const isPending = async (id: string) => (await pending()).some((p) => p.id === id);
        const copied = await copies();
        const stillPending = await isPending(poison);
        const done = new Set(seen(handler));
        const acked = [];
        for (const id of work) if (done.has(id) && !(await isPending(id))) acked.push(id);

        expect(
          copied > 0 && stillPending,
          `${where} left the poison entry both pending and dead-lettered: the copy and the ack were not atomic, and the next claim copies it again. Put XADD and XACK in one MULTI`,
        ).toBe(false);
        expect(
          copied > 0 || stillPending,
          `${where} lost the poison entry: it is neither pending nor in the dead-letter stream (acked before it was copied). Put XADD and XACK in one MULTI`,
        ).toBe(true);

        // Recovery: another process takes over once the crashed one's entries are idle.
        const recovery = okHandler();
        const rescuer = worker(recovery);
        for (let round = 0; round < 3; round++) {
          await clock.advance(config.claimIdleMs);
          await run(rescuer, `while recovering from ${where}`);
        }
        const handled = new Set([...done, ...seen(recovery)]);

        const lost = work.filter((id) => !handled.has(id));
        expect(lost, `after ${where} and a recovery, ${lost.length} entries were lost: never handled`).toEqual([]);
        const again = acked.filter((id) => seen(recovery).includes(id));
        expect(
          again,
          `after ${where}, entries already handled and acked were handled again: an acked entry must never come back`,
        ).toEqual([]);
        expect(
          await copies(),
          `after ${where} and a recovery, the poison entry was dead-lettered ${await copies()} times`,
        ).toBe(1);
        expect(
          await pending(),
          `after ${where} and a recovery, entries were left pending (a dead-lettered entry must be acked with its copy)`,
        ).toEqual([]);
        expect(
          [...seen(handler), ...seen(recovery)].includes(poison),
          'the poison entry, past maxDeliveries, was handed to the handler again',
        ).toBe(false);
        await scene.lab.close();
      },
    });
  });

  test('an idle entry behind many busy pending entries is still claimed', async () => {
    const batchSize = 2;
    const { lab, worker, add, pending, clock, config } = await setup({ batchSize });
    const ids = await add(26);
    const busy = randomId('busy');
    await lab.raw.xgroup('CREATE', config.stream, config.group, '0');
    await lab.raw.xreadgroup('GROUP', config.group, busy, 'COUNT', 100, 'STREAMS', config.stream, '>');
    await clock.advance(config.claimIdleMs);
    // The busy consumer is alive and touches its first 25 entries again; only the last is idle.
    await lab.raw.xclaim(config.stream, config.group, busy, 0, ...ids.slice(0, 25), 'JUSTID');
    const idle = ids[25]!;
    const handler = okHandler();
    const w = worker(handler);

    for (let i = 0; i < 3; i++) await run(w, 'with an idle entry behind busy ones');

    const why = [
      `an entry idle for claimIdleMs, behind 25 pending entries of a live consumer, was never claimed in 3 runs (batchSize ${batchSize}).`,
      'XAUTOCLAIM looks at only COUNT × 10 pending entries per call: follow the cursor it returns instead of restarting at 0-0,',
      "or an idle entry behind a busy consumer's work is stranded",
    ].join(' ');
    expect(seen(handler), why).toEqual([idle]);
    expect(
      (await pending()).filter((p) => p.consumer !== busy).map((p) => p.id),
      'the claimed entry was acked',
    ).toEqual([]);
  });

  test('a claimed entry that was deleted from the stream is never handed to the handler', async () => {
    const { lab, worker, add, pending, clock, config } = await setup();
    const [gone, kept] = await add(2);
    const dying = controlled((_entry: StreamEntry) => new Promise<unknown>(() => {}));
    inFlight(worker(dying).runOnce());
    await waitFor(() => dying.callCount >= 1);
    await clock.advance(config.claimIdleMs);
    await lab.raw.xdel(config.stream, gone!);
    const handler = okHandler();

    await run(worker(handler), 'when a pending entry had been deleted from the stream');
    const left = await pending();

    expect(
      seen(handler).includes(gone!),
      'an entry deleted from the stream (XAUTOCLAIM reports its id as deleted) was handed to the handler, which then processes an entry that no longer exists. Forget deleted ids; never pass them on',
    ).toBe(false);
    expect(seen(handler), 'the other claimed entry must still be handled').toEqual([kept]);
    expect(
      left.map((p) => p.id),
      'nothing may stay pending: neither the deleted entry nor the handled one',
    ).toEqual([]);
  });

  test('trim() keeps every entry some group has not acked: in progress, failed, or not read yet', async () => {
    const { lab, worker, streamIds, config } = await setup({ batchSize: 5 });
    // Explicit ids: the two groups' safe points (…-9 and …-11) differ in digit count, which a
    // comparison of ids as strings gets wrong.
    const ms = randomInteger(1_000_000, 9_000_000);
    const ids: string[] = [];
    for (let seq = 0; seq < 15; seq++) ids.push((await lab.raw.xadd(config.stream, `${ms}-${seq}`, 'n', String(seq)))!);
    const failOn = ids[9]!;
    const billing = controlled(async (entry: StreamEntry): Promise<unknown> => {
      if (entry.id === failOn) throw new Error('card declined');
      return undefined;
    });
    const wa = worker(billing);
    for (let i = 0; i < 3; i++) await run(wa, 'in group one');
    // A second group that has read and acked only the first twelve entries.
    const other = new StreamWorker({
      redis: lab.connect(),
      consumer: randomId('w'),
      handler: okHandler(),
      ...config,
      group: randomId('shipping'),
      batchSize: 12,
    });
    await run(other, 'in group two');

    const removed = await wa.trim();
    const left = await streamIds();

    const needed = [failOn, ...ids.slice(12)];
    const dropped = needed.filter((id) => !left.includes(id));
    const why = [
      `trim() dropped ${dropped.join(', ')}, which a group still needs (${failOn} failed in group one and is pending there;`,
      `group two has read only up to ${ids[11]}). Trim with MINID to the minimum, over every group, of its oldest pending id`,
      '(or its last-delivered-id when nothing is pending), comparing ids as numbers (ms, then seq),',
      'never by length (MAXLEN) nor past a pending entry',
    ].join(' ');
    expect(dropped, why).toEqual([]);
    expect(
      left.slice(0, 1),
      `trim() must remove the entries every group has acked (the nine before ${failOn}): ${ids.length - left.length} removed`,
    ).toEqual([failOn]);
    expect(removed, `trim() returned ${removed} but removed ${ids.length - left.length} entries`).toBe(
      ids.length - left.length,
    );
  });

  test('once every group acked everything, trim() removes the processed entries and returns the count', async () => {
    const { worker, add, streamIds } = await setup();
    const ids = await add(randomInteger(4, 8));
    const w = worker(okHandler());
    await run(w, 'before trimming');

    const removed = await w.trim();
    const left = await streamIds();
    const more = await add(2);
    const handler = okHandler();
    const w2 = worker(handler);
    await run(w2, 'after a trim');

    expect(
      left.length <= 1,
      `trim() left ${left.length} of ${ids.length} entries that the only group had acked: they must go (only the last-delivered one may stay)`,
    ).toBe(true);
    expect(removed, `trim() returned ${removed} but removed ${ids.length - left.length} entries`).toBe(
      ids.length - left.length,
    );
    expect(seen(handler), 'entries added after a trim are consumed as usual').toEqual(more);
  });

  test('trim() with no group, or no stream, removes nothing and returns 0', async () => {
    const { lab, add, streamIds, config } = await setup();
    const worker = new StreamWorker({
      redis: lab.connect(),
      consumer: randomId('w'),
      handler: okHandler(),
      ...config,
      stream: randomId('empty'),
    });
    const missing = await worker.trim();
    const ids = await add(3);
    const noGroup = new StreamWorker({
      redis: lab.connect(),
      consumer: randomId('w'),
      handler: okHandler(),
      ...config,
    });

    const removed = await noGroup.trim();

    expect(missing, 'trim() of a stream that does not exist returns 0').toBe(0);
    expect(removed, 'trim() of a stream with no group returns 0').toBe(0);
    expect(
      await streamIds(),
      'trim() of a stream no group has read yet dropped entries: nobody has processed them',
    ).toEqual(ids);
  });
});

/** Keys a design keeps besides the streams and the effect keys (its idempotency records). */
async function recordKeys(lab: LabRedis, streams: string[], effects: string[]) {
  return (await lab.keys()).filter((key) => !streams.includes(key) && !effects.includes(key));
}

/**
 * A partitioned stream: `partitions` streams `<stream>:<p>`, filled through publish(), and
 * exclusive workers, each on a client of its own, with a lease shorter than claimIdleMs (a
 * takeover must not wait for claimIdleMs). `handled` logs every entry a handler started and
 * `overlaps` every start of an entry while an earlier one of its key had not finished.
 */
async function partitionedSetup(options: Options = {}) {
  const scene = await setup(options);
  const { lab, config } = scene;
  const partitions = randomInteger(3, 5);
  const leaseMs = randomInteger(2, 8) * 1_000;
  const streamOf = (key: string) => `${config.stream}:${partitionOf(key, partitions)}`;
  const handled: { key: string; seq: number; worker: string }[] = [];
  const running = new Map<string, number>();
  const overlaps: string[] = [];

  /** An exclusive worker of the stream `partition` (a stream name), with a handler that logs. */
  function exclusive(partition: string, handler = okHandler(), consumer = randomId('w'), batchSize?: number) {
    const logged = (async (entry: StreamEntry) => {
      const key = entry.fields.key ?? '?';
      const seq = Number(entry.fields.seq);
      const earlier = running.get(key);
      if (earlier !== undefined) overlaps.push(`${key}:${seq} started while ${key}:${earlier} was still in flight`);
      running.set(key, seq);
      handled.push({ key, seq, worker: consumer });
      try {
        return await handler(entry);
      } finally {
        if (running.get(key) === seq) running.delete(key);
      }
    }) as Handler;
    return new StreamWorker({
      ...config,
      redis: lab.connect(),
      consumer,
      handler: logged,
      stream: partition,
      exclusive: { leaseMs },
      ...(batchSize !== undefined && { batchSize }),
    });
  }

  /** Publishes entry `seq` of `key` (fields key, seq and a note) through publish(). */
  const send = (key: string, seq: number) =>
    publish(lab.raw, { stream: config.stream, partitions, key, fields: { seq: String(seq), note: randomText(2) } });

  /** The seqs handled for `key`, in the order their handlers started. */
  const order = (key: string) => handled.filter((h) => h.key === key).map((h) => h.seq);

  return { ...scene, partitions, leaseMs, streamOf, exclusive, send, order, handled, overlaps };
}

describe('staff', () => {
  test('with idempotent: true the effects land with the ack, and every other key expires after the last redelivery', async () => {
    const { lab, worker, add, pending, config, near } = await setup({ idempotent: true });
    const ids = await add(3);
    const effectKey = (id: string) => near(`balance:${id}`);
    const receiptKey = (id: string) => near(`receipt:${id}`);
    // One entry's handler returns a list of effects; the others return one.
    const handler = controlled(async (entry: StreamEntry): Promise<unknown> => {
      const balance = { key: effectKey(entry.id), value: `charged ${entry.fields.amount}` };
      return entry.id === ids[0] ? [balance, { key: receiptKey(entry.id), value: entry.fields.order }] : balance;
    });

    const result = await run(worker(handler), 'with idempotent: true');
    const values = await Promise.all(ids.map((id) => lab.raw.get(effectKey(id))));
    const receipt = await lab.raw.get(receiptKey(ids[0]!));
    const others = await recordKeys(
      lab,
      [config.stream, config.deadLetterStream],
      [...ids.map(effectKey), receiptKey(ids[0]!)],
    );
    const ttls = await Promise.all(others.map((key) => lab.ttlMs(key)));

    expect(values, 'each effect the handler returned ({ key, value }) must be written with SET key value').toEqual(
      handler.calls.map(([entry]) => `charged ${entry.fields.amount}`),
    );
    expect(receipt, 'a handler may return an array of effects: every one of them must be written').toBe(
      handler.calls[0]?.[0].fields.order,
    );
    expect(result.processed, 'processed counts the committed entries').toBe(3);
    expect(await pending(), 'each committed entry must be acked').toEqual([]);
    const floor = config.claimIdleMs * (config.maxDeliveries + 1);
    others.forEach((key, i) => {
      const ttl = ttls[i]!;
      const what =
        ttl === -1
          ? 'no TTL: one record per entry ever processed piles up forever'
          : `a TTL of ${ttl} ms: it expires while the entry can still come back (up to claimIdleMs × (maxDeliveries + 1) = ${floor} ms), and a late redelivery writes its effects again`;
      expect(
        ttl,
        `the key "${key}" (an idempotency record?) has ${what}. Give it a TTL well above that`,
      ).toBeGreaterThanOrEqual(floor);
    });
  });

  test('a consumer presumed dead that commits late never writes an effect that already landed', async () => {
    await raceAtEveryTrip({
      async arrange() {
        const scene = await setup({ idempotent: true });
        const { worker, add, clock, config, near } = scene;
        const [id] = await add(1);
        const key = near(`ledger:${id}`);
        const slow = controlled(
          async (_entry: StreamEntry): Promise<unknown> => ({ key, value: 'by the slow consumer' }),
        );
        slow.hold();
        const late = inFlight(worker(slow).runOnce());
        await waitFor(() => slow.callCount === 1);
        await clock.advance(config.claimIdleMs);
        const fast = controlled(
          async (_entry: StreamEntry): Promise<unknown> => ({ key, value: 'by the claiming consumer' }),
        );
        return { ...scene, key, slow, late, claimer: worker(fast), observed: [] as (string | null)[] };
      },
      act: ({ claimer }) => claimer.runOnce(),
      async race(scene) {
        scene.observed.push(await scene.lab.raw.get(scene.key));
        await scene.slow.held[0]?.release();
        await waitFor(() => scene.late.settled);
        scene.observed.push(await scene.lab.raw.get(scene.key));
      },
      async check(scene, at) {
        const { lab, key, slow, late, pending, observed } = scene;
        if (slow.held.length) {
          observed.push(await lab.raw.get(key));
          await slow.held[0]!.release();
        }
        await waitFor(() => late.settled);
        observed.push(await lab.raw.get(key));

        const values = observed.filter((value) => value !== null);
        const when = at.finishedFirst
          ? 'The slow consumer committed after the claiming consumer had finished, and'
          : `The slow consumer committed right before round trip ${at.trip + 1} of the claiming consumer's runOnce(), and`;
        const why = [
          `${when} the effect was written again (values seen in order: ${values.join(' → ')}).`,
          'Check the idempotency record and write effects, record and ack in one atomic step',
          '(a Lua script, or WATCH the record and MULTI): a check in one round trip and a write in the next,',
          'or a record written after the ack, lets the other consumer commit in between',
        ].join(' ');
        expect(new Set(values).size, why).toBe(1);
        expect(await pending(), 'the entry must end acked').toEqual([]);
        await lab.close();
      },
    });
  });

  test('a crash after any round trip of an idempotent run never writes a landed effect twice', async () => {
    const count = randomInteger(2, 3);

    await crashAtEveryTrip({
      async arrange() {
        const scene = await setup({ idempotent: true });
        const ids = await scene.add(count);
        const effectKey = (id: string) => scene.near(`effect:${id}`);
        const handler = controlled(
          async (entry: StreamEntry): Promise<unknown> => ({
            key: effectKey(entry.id),
            value: 'first delivery',
          }),
        );
        return { ...scene, ids, effectKey, crashing: scene.worker(handler) };
      },
      act: ({ crashing }) => crashing.runOnce(),
      async check(scene, at) {
        const { lab, ids, clock, config, worker, pending, effectKey } = scene;
        const where = at.finishedFirst
          ? 'an idempotent runOnce() that ran to the end'
          : `a crash ${describeCut(at)} of an idempotent runOnce()`;
        const landed = await Promise.all(ids.map((id) => lab.raw.get(effectKey(id))));

        const second = controlled(
          async (entry: StreamEntry): Promise<unknown> => ({
            key: effectKey(entry.id),
            value: 'redelivery',
          }),
        );
        const rescuer = worker(second);
        for (let round = 0; round < 2; round++) {
          await clock.advance(config.claimIdleMs);
          await run(rescuer, `while recovering from ${where}`);
        }
        const final = await Promise.all(ids.map((id) => lab.raw.get(effectKey(id))));

        ids.forEach((id, i) => {
          if (landed[i] !== null)
            expect(
              final[i],
              say(
                `after ${where}, the effect of ${id} had landed but was written again by its redelivery.`,
                'Write the effect, the idempotency record and the ack in one MULTI or script,',
                'so a crash leaves all or none of them',
              ),
            ).toBe(landed[i]);
          else expect(final[i], `after ${where} and a recovery, the effect of ${id} was never written`).not.toBeNull();
        });
        expect(await pending(), `after ${where} and a recovery, entries were left pending`).toEqual([]);
        await lab.close();
      },
    });
  });

  test("with exclusive leases, each key's entries are handled in publish order, even with two workers per partition running at once", async () => {
    const scene = await partitionedSetup({ batchSize: 2 });
    const { exclusive, send, order, overlaps, streamOf } = scene;
    const keys = Array.from({ length: randomInteger(5, 7) }, () => randomId('order'));
    // Each key publishes bursts of three: without a lease, the second worker of a partition
    // reads k:3 while the first still runs k:1.
    const bursts = 2;
    for (let burst = 0; burst < bursts; burst++) {
      for (const key of shuffle(keys)) for (let i = 1; i <= 3; i++) await send(key, burst * 3 + i);
    }
    const partitionsUsed = [...new Set(keys.map(streamOf))];
    const handlers = partitionsUsed.flatMap(() => [okHandler(), okHandler()]);
    for (const handler of handlers) handler.hold();
    const workers = handlers.map((handler, i) => exclusive(partitionsUsed[Math.floor(i / 2)]!, handler));
    const total = keys.length * bursts * 3;

    // Every round starts all workers at once; while a handler is held, the others go on.
    for (let round = 0; round < 60 && scene.handled.length < total; round++) {
      const runs = workers.map((w) => inFlight(w.runOnce()));
      while (!runs.every((r) => r.settled)) {
        const moved = await waitFor(() => runs.every((r, i) => r.settled || handlers[i]!.held.length > 0));
        if (!moved) expect.fail('an exclusive runOnce() neither finished nor reached its handler');
        for (const handler of handlers) await handler.releaseAll();
      }
      for (const outcome of await Promise.allSettled(runs)) {
        if (outcome.status === 'rejected')
          expect.fail(`runOnce() of an exclusive worker rejected (${describeError(outcome.reason)})`);
      }
    }

    expect(
      overlaps,
      say(
        `entries of one key ran at once: ${overlaps.slice(0, 3).join('; ')}.`,
        'Two workers of one partition both read it: with exclusive, read only while holding the lease',
        '(SET NX PX with a random token, renewed on each runOnce), and handle a batch one entry after another.',
        "Otherwise a key's later effect can land before its earlier one",
      ),
    ).toEqual([]);
    for (const key of keys) {
      const expected = Array.from({ length: bursts * 3 }, (_, i) => i + 1);
      expect(order(key), `the entries of ${key} must be handled once each, in the order they were published`).toEqual(
        expected,
      );
    }
  });

  test('within one runOnce an exclusive worker handles its batch one entry after another, in id order', async () => {
    const scene = await partitionedSetup();
    const { exclusive, send, streamOf, overlaps, order } = scene;
    const key = randomId('order');
    const count = randomInteger(3, 5);
    for (let seq = 1; seq <= count; seq++) await send(key, seq);
    const handler = okHandler();
    handler.hold();
    const w = exclusive(streamOf(key), handler);

    const run1 = inFlight(w.runOnce());
    await waitFor(() => handler.held.length > 0);
    const atOnce = handler.held.length;
    while (!run1.settled) {
      await handler.releaseAll();
      await waitFor(() => run1.settled || handler.held.length > 0);
    }

    expect(
      atOnce,
      say(
        `${atOnce} handlers of the same batch were running at once (${overlaps.slice(0, 2).join('; ')}):`,
        "in exclusive mode, handle a batch's entries one after another, or k:2 starts while k:1 is still in flight",
      ),
    ).toBe(1);
    expect(order(key), 'the batch must be handled in id order').toEqual(Array.from({ length: count }, (_, i) => i + 1));
  });

  test('while its lease is valid, only the holder handles its partition; the others return zero counts and touch nothing', async () => {
    const scene = await partitionedSetup();
    const { lab, clock, config, exclusive, send, streamOf, leaseMs } = scene;
    const key = randomId('order');
    const partition = streamOf(key);
    const names = [randomId('w'), randomId('w'), randomId('w')];
    const handlers = names.map(() => okHandler());
    const workers = names.map((name, i) => exclusive(partition, handlers[i], name));
    const results: RunResult[][] = [[], [], []];

    for (let round = 1; round <= 4; round++) {
      await send(key, round);
      for (const [i, w] of workers.entries()) results[i]!.push(await run(w, 'with exclusive: { leaseMs }'));
      await clock.advance(Math.floor(leaseMs / 2));
    }
    const consumers = ((await lab.raw.xinfo('CONSUMERS', partition, config.group)) as unknown[][]).map((info) =>
      String(info[info.indexOf('name') + 1]),
    );
    const others = await recordKeys(lab, [partition], []);
    const ttls = await Promise.all(others.map((key) => lab.ttlMs(key)));

    expect(
      handlers.map((h) => h.callCount),
      say(
        'the first worker took the lease and renewed it on every run (each within leaseMs of the last);',
        `the entries handled by each of the three workers were ${handlers.map((h) => h.callCount).join(', ')}.`,
        'Only the lease holder may read the partition, or one key runs on two workers',
      ),
    ).toEqual([4, 0, 0]);
    expect(
      results.slice(1).flat(),
      'a worker without the lease must return { processed: 0, retried: 0, deadLettered: 0 }',
    ).toEqual(Array(8).fill({ processed: 0, retried: 0, deadLettered: 0 }));
    expect(
      consumers,
      'a worker without the lease must not read the stream at all (its XREADGROUP made it a consumer of the group)',
    ).toEqual([names[0]]);
    others.forEach((key, i) => {
      expect(
        ttls[i]! > 0 && ttls[i]! <= leaseMs,
        `the key "${key}" (the lease?) has a TTL of ${ttls[i]} ms, not within leaseMs (${leaseMs} ms): a lease without a TTL is never freed when its holder crashes`,
      ).toBe(true);
    });
  });

  test("after the holder crashes and leaseMs passes, another worker took over and handles the crashed holder's pending k:1 before k:2", async () => {
    const scene = await partitionedSetup();
    const { clock, leaseMs, exclusive, send, streamOf, order, config } = scene;
    const key = randomId('order');
    const count = randomInteger(2, 4);
    for (let seq = 1; seq <= count; seq++) await send(key, seq);
    const dying = okHandler();
    dying.hangNext();
    const holder = exclusive(streamOf(key), dying, randomId('w'), 1);
    const rescuerHandler = okHandler();
    const rescuer = exclusive(streamOf(key), rescuerHandler);

    // The holder takes k:1 and dies in its handler: it never finishes nor calls runOnce again.
    inFlight(holder.runOnce());
    await waitFor(() => dying.callCount === 1);
    const early = await run(rescuer, 'while the holder still held its lease');
    await clock.advance(leaseMs);
    const result = await run(rescuer, 'after the lease of a crashed holder expired');

    expect(early, 'before leaseMs another worker must not touch the partition').toEqual({
      processed: 0,
      retried: 0,
      deadLettered: 0,
    });
    expect(
      rescuerHandler.callCount > 0,
      say(
        `no worker took over the partition after its holder crashed and leaseMs (${leaseMs} ms) passed.`,
        'Take the lease with SET NX PX leaseMs (renewed on each runOnce), so it expires when its holder dies',
      ),
    ).toBe(true);
    const seqs = order(key).slice(1);
    expect(
      seqs,
      say(
        `after the takeover the new holder handled ${seqs.map((s) => `${key}:${s}`).join(', ')}:`,
        `${key}:2 ran before the crashed holder's pending ${key}:1.`,
        `A takeover first claims every entry the previous holder left pending, whatever its idle time (claimIdleMs is ${config.claimIdleMs} ms), in id order, then reads new ones`,
      ),
    ).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(result.retried, 'the pending entry handed over counts as retried').toBe(1);
  });

  test("a worker whose lease expired cannot renew or release the new holder's lease", async () => {
    const scene = await partitionedSetup();
    const { clock, leaseMs, exclusive, send, streamOf, overlaps } = scene;
    const key = randomId('order');
    const partition = streamOf(key);
    const staleHandler = okHandler();
    const stale = exclusive(partition, staleHandler);
    const holderHandler = okHandler();
    const holder = exclusive(partition, holderHandler);
    const thirdHandler = okHandler();
    const third = exclusive(partition, thirdHandler);
    await send(key, 1);
    await run(stale, 'as the first holder');
    // The first holder stalls (a long GC pause) past leaseMs; another takes over.
    await clock.advance(leaseMs);
    await send(key, 2);
    await send(key, 3);
    holderHandler.hold();
    const running = inFlight(holder.runOnce());
    await waitFor(() => holderHandler.held.length > 0);

    // Back from its pause, the stale worker releases its lease and runs again.
    await stale.release();
    const staleRun = await run(stale, 'after its lease had passed to another worker');
    const thirdRun = await run(third, 'while another worker held the lease');
    await holderHandler.releaseAll();
    while (!running.settled) {
      await waitFor(() => running.settled || holderHandler.held.length > 0);
      await holderHandler.releaseAll();
    }
    await holder.release();
    await send(key, 4);
    const afterRelease = await run(third, 'after the holder released its lease');

    const stolen = staleHandler.callCount - 1 + thirdHandler.callCount;
    expect(
      [staleRun, thirdRun],
      say(
        `a worker whose lease expired called release() and runOnce() while another held the lease, and ${stolen} entries were handled beside the holder`,
        `(${overlaps.slice(0, 2).join('; ') || 'by the stale or a third worker'}).`,
        "Renew and release the lease only while its value is still your token (one script: GET, compare, PEXPIRE or DEL); after it expired it is another worker's",
      ),
    ).toEqual([
      { processed: 0, retried: 0, deadLettered: 0 },
      { processed: 0, retried: 0, deadLettered: 0 },
    ]);
    expect(scene.order(key).slice(0, 3), 'the entries are handled in order').toEqual([1, 2, 3]);
    expect(
      afterRelease.processed,
      'release() by the holder must free the lease at once: another worker takes the partition without waiting for leaseMs',
    ).toBe(1);
  });

  test('partitionOf is stable, the same in another process, and spreads keys evenly', async () => {
    const keys = Array.from({ length: 10_000 }, () => randomId('key'));
    const partitions = 8;
    // A fresh copy of the module stands in for another process (a producer, a consumer).
    const elsewhere = `@impl/stream-consumer/stream-consumer.ts?process=${randomId('p')}`;
    const other = (await import(/* @vite-ignore */ elsewhere)) as { partitionOf: typeof partitionOf };

    const first = keys.map((key) => partitionOf(key, partitions));
    const again = keys.map((key) => partitionOf(key, partitions));
    const shuffled = shuffle(keys.map((key, i) => [key, i] as const));
    const there: number[] = [];
    for (const [key, i] of shuffled) there[i] = other.partitionOf(key, partitions);

    const changed = keys.filter((_, i) => first[i] !== again[i]).length;
    expect(
      changed,
      `${changed} of ${keys.length} keys got another partition on a second call: partitionOf must be stable (a hash of the key, never Math.random), or a key's entries scatter over partitions and lose their order`,
    ).toBe(0);
    const outOfRange = first.filter((p) => !Number.isInteger(p) || p < 0 || p >= partitions);
    expect(outOfRange, `partitionOf(key, ${partitions}) must be an integer from 0 to ${partitions - 1}`).toEqual([]);
    const differ = keys.filter((_, i) => first[i] !== there[i]).length;
    expect(
      differ,
      say(
        `${differ} of ${keys.length} keys got another partition in another process (a fresh copy of the module, asked in another order):`,
        'partitionOf must depend on the key and the count alone, not on state built in the process,',
        'or a producer writes a key where its consumer never reads',
      ),
    ).toBe(0);
    const counts = Array.from({ length: partitions }, (_, p) => first.filter((x) => x === p).length);
    const mean = keys.length / partitions;
    expect(
      counts.every((c) => Math.abs(c - mean) <= mean * 0.25),
      `10,000 random keys over ${partitions} partitions gave ${counts.join(', ')}: not spread within ±25% of ${mean}. Hash every character of the key (FNV-1a, for example), or one partition and its one consumer take most of the load`,
    ).toBe(true);
  });

  test("publish puts every entry of a key into the key's partition, with the key in its fields", async () => {
    const { lab, config } = await setup();
    const partitions = randomInteger(3, 6);
    const keys = Array.from({ length: randomInteger(4, 6) }, () => randomId('order'));
    const sent: { key: string; n: string }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const key of shuffle(keys)) {
        const n = randomId('n');
        await publish(lab.raw, { stream: config.stream, partitions, key, fields: { n } });
        sent.push({ key, n });
      }
    }

    const where = new Map<string, string>();
    const foundIn: Record<string, { key: string | undefined; n: string | undefined }[]> = {};
    for (let p = 0; p < partitions; p++) {
      const rows = (await lab.raw.xrange(`${config.stream}:${p}`, '-', '+')) as [string, string[]][];
      foundIn[p] = rows.map(([, flat]) => toObject(flat)).map((f) => ({ key: f.key, n: f.n }));
      for (const row of foundIn[p]!) where.set(row.n ?? '', String(p));
    }

    for (const key of keys) {
      const homes = new Set(sent.filter((s) => s.key === key).map((s) => where.get(s.n)));
      expect(
        [...homes],
        `the entries of ${key} went to partitions ${[...homes].join(', ')}: publish must append every entry of a key to the same partition, ${config.stream}:${partitionOf(key, partitions)}`,
      ).toEqual([String(partitionOf(key, partitions))]);
      const p = partitionOf(key, partitions);
      expect(
        foundIn[p]!.filter((row) => row.key === key).map((row) => row.n),
        `the entries of ${key} in its partition must carry the field key = "${key}" and keep the publish order`,
      ).toEqual(sent.filter((s) => s.key === key).map((s) => s.n));
    }
  });
});
