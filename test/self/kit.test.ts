// The graded test kit's own contract, on the mock and (with REDIS_URL) on a real server too:
// every Redis-facing test runs once per mode, so CI checks the kit on both.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { closeAllLabs, createLabRedis, type LabRedis } from '../kit/redis.ts';
import {
  controlled,
  crashAtEveryTrip,
  deferred,
  fakeTable,
  keysWithoutTtl,
  raceAtEveryTrip,
  readUntil,
  settle,
  track,
  useFakeClock,
  waitFor,
} from '../kit/index.ts';

afterEach(async () => {
  vi.useRealTimers();
  await closeAllLabs();
});

const MODES: Array<[string, string | null]> = [
  ['the mock', null],
  ...(process.env.REDIS_URL ? [['a real Redis', process.env.REDIS_URL] as [string, string]] : []),
];

describe.each(MODES)('on %s', (_mode, url) => {
  describe('round trips', () => {
    test('a command counts once, a pipeline or transaction counts once', async () => {
      const lab = await createLabRedis({ url });

      await lab.redis.set('a', '1');
      await lab.redis.get('a');
      await lab.redis.pipeline().get('a').get('b').get('c').exec();
      await lab.redis.multi().set('a', '2').incr('n').exec();

      expect(lab.roundTrips.count).toBe(4);
      expect(lab.roundTrips.summary()).toBe('SET ×1, GET ×1, pipeline of 3 ×1, transaction of 2 ×1');
    });

    test('a busy loop of round trips keeps one shared record per shape, not one per trip', async () => {
      const lab = await createLabRedis({ url });

      for (let i = 0; i < 1000; i++) await lab.redis.get('a');
      await lab.redis.set('a', '1');

      const { trips } = lab.roundTrips;
      expect(lab.roundTrips.count).toBe(1001);
      expect(new Set(trips.slice(0, 1000)).size, 'a closed GET trip is the one shared GET trip').toBe(1);
      expect(lab.roundTrips.summary()).toBe('GET ×1000, SET ×1');
    });

    test('commands sent before any reply is awaited are one latency-bound round trip', async () => {
      const lab = await createLabRedis({ url });

      await Promise.all(Array.from({ length: 8 }, (_, i) => lab.redis.zrange(`timeline:${i}`, 0, 9)));
      await Promise.all([lab.redis.get('a'), lab.redis.pipeline().get('b').exec()]);
      const chained = await Promise.all(
        [1, 2].map(async (n) => {
          await lab.redis.get(`first:${n}`);
          return lab.redis.get(`then:${n}`);
        }),
      );

      expect(chained).toEqual([null, null]);
      expect(lab.roundTrips.count, lab.roundTrips.summary()).toBe(4);
      expect(lab.roundTrips.summary()).toBe(
        '[ZRANGE ×8 sent together] ×1, [GET ×1 + pipeline of 1 ×1 sent together] ×1, [GET ×2 sent together] ×2',
      );
    });

    test('two connections sending at once make a round trip each', async () => {
      const lab = await createLabRedis({ url });
      const other = lab.connect();

      await Promise.all([lab.redis.get('a'), other.get('a')]);

      expect(lab.roundTrips.count).toBe(2);
    });

    test('elements read count the reply items Redis sent back', async () => {
      const lab = await createLabRedis({ url });
      await lab.raw.rpush('history', ...Array.from({ length: 50 }, (_, i) => `post-${i}`));

      const page = await lab.roundTrips.during(() => lab.redis.lrange('history', 0, 9));
      const whole = await lab.roundTrips.during(() => lab.redis.lrange('history', 0, -1));
      const batch = await lab.roundTrips.during(() =>
        lab.redis.pipeline().get('missing').llen('history').lrange('history', 0, 2).exec(),
      );

      expect(page.elementsRead).toBe(10);
      expect(whole.elementsRead).toBe(50);
      expect(batch.elementsRead).toBe(4);
    });

    test("beforeTrip(k) runs another client's action right before round trip k leaves", async () => {
      const lab = await createLabRedis({ url });
      await lab.raw.set('n', '1');
      lab.roundTrips.beforeTrip(1, () => lab.raw.set('n', '10'));

      const first = await lab.redis.get('n');
      const [second, third] = await Promise.all([lab.redis.get('n'), lab.redis.incr('n')]);

      expect([first, second, third]).toEqual(['1', '10', 11]);
      expect(lab.roundTrips.count).toBe(2);
      expect(lab.roundTrips.pendingInterleavings).toBe(0);
    });

    test('the raw client is not recorded; connect() clients are', async () => {
      const lab = await createLabRedis({ url });

      await lab.raw.set('a', '1');
      await lab.connect().get('a');

      expect(lab.roundTrips.count).toBe(1);
    });

    test('a duplicated connection is recorded and faulted like the original', async () => {
      const lab = await createLabRedis({ url });
      const duplicate = lab.redis.duplicate();

      await duplicate.set('a', '1');
      lab.roundTrips.breakAfter(0);
      const broken = await duplicate.get('a').catch((error: Error) => error.message);

      expect(lab.roundTrips.count).toBe(1);
      expect(broken).toMatch(/Connection lost/);
    });

    test('breakAfter(n) lets n round trips through, then every command rejects until repair()', async () => {
      const lab = await createLabRedis({ url });
      const other = lab.connect();
      await other.ping();
      lab.roundTrips.breakAfter(1);

      const first = await lab.redis.set('a', '1');
      const second = await lab.redis.get('a').catch((error: Error) => error.message);
      const third = await other.get('a').catch((error: Error) => error.message);
      lab.roundTrips.repair();

      expect(first).toBe('OK');
      expect(second).toMatch(/Connection lost \(injected by the test\) before GET/);
      expect(third).toMatch(/Connection lost/);
      expect(await lab.redis.get('a')).toBe('1');
    });
  });

  describe('faults at every round trip', () => {
    // Two ways to add to a counter: GET then SET (a lost update when another client writes in
    // between), and INCR (atomic). Two ways to cache with a TTL: SET then EXPIRE, and SET … EX.
    const lostUpdate = async (lab: LabRedis) => {
      const n = Number((await lab.redis.get('n')) ?? 0);
      await lab.redis.set('n', String(n + 1));
    };
    const atomic = async (lab: LabRedis) => void (await lab.redis.incr('n'));

    test('raceAtEveryTrip slips the other client in before each trip: it catches a lost update, and passes INCR', async () => {
      const totals = async (add: (lab: LabRedis) => Promise<void>) => {
        const seen: Array<{ trip: number; total: string | null }> = [];
        await raceAtEveryTrip({
          arrange: async () => ({ lab: await createLabRedis({ url }) }),
          act: ({ lab }) => add(lab),
          race: ({ lab }) => lab.raw.incr('n'),
          check: async ({ lab }, at) => void seen.push({ trip: at.trip, total: await lab.raw.get('n') }),
        });
        return seen;
      };

      expect(await totals(lostUpdate)).toEqual([
        { trip: 0, total: '2' },
        { trip: 1, total: '1' },
        { trip: 2, total: '1' },
      ]);
      expect(await totals(atomic)).toEqual([
        { trip: 0, total: '2' },
        { trip: 1, total: '1' },
      ]);
    });

    test('crashAtEveryTrip cuts the connection after each trip: it finds the key a crash leaves without a TTL', async () => {
      const leftForever = async (cache: (lab: LabRedis) => Promise<unknown>) => {
        const found: string[][] = [];
        await crashAtEveryTrip({
          arrange: async () => ({ lab: await createLabRedis({ url }) }),
          act: ({ lab }) => cache(lab),
          check: async ({ lab }) => void found.push(await keysWithoutTtl(lab)),
        });
        return found;
      };

      expect(await leftForever(async (lab) => (await lab.redis.set('k', 'v'), lab.redis.expire('k', 60)))).toEqual([
        [],
        ['k'],
        [],
      ]);
      expect(await leftForever((lab) => lab.redis.set('k', 'v', 'EX', 60))).toEqual([[], []]);
    });

    test('crashAtEveryTrip also cuts inside a plain pipeline, which is not atomic, and never inside MULTI', async () => {
      const leftForever = async (batch: (lab: LabRedis) => { set(...args: any[]): any }) => {
        const found: Array<{ trip: number; inside: number; keys: string[] }> = [];
        await crashAtEveryTrip({
          arrange: async () => ({ lab: await createLabRedis({ url }) }),
          act: ({ lab }) => batch(lab).set('k', 'v').expire('k', 60).exec(),
          check: async ({ lab }, at) =>
            void found.push({ trip: at.trip, inside: at.inside, keys: await keysWithoutTtl(lab) }),
        });
        return found;
      };

      expect(await leftForever((lab) => lab.redis.pipeline())).toEqual([
        { trip: 0, inside: 0, keys: [] },
        { trip: 0, inside: 1, keys: ['k'] },
        { trip: 1, inside: 0, keys: [] },
      ]);
      expect(await leftForever((lab) => lab.redis.multi())).toEqual([
        { trip: 0, inside: 0, keys: [] },
        { trip: 1, inside: 0, keys: [] },
      ]);
    });

    test('an operation that never stops making round trips is named, not looped on forever', async () => {
      const run = crashAtEveryTrip({
        arrange: async () => ({ lab: await createLabRedis({ url }) }),
        act: async ({ lab }) => {
          for (let i = 0; i < 10; i++) await lab.redis.get('n').catch(() => undefined);
        },
        check: () => {},
        upTo: 3,
      });

      await expect(run).rejects.toThrow(/still had not finished after 3 Redis round trips/);
    });
  });

  describe('what a design left in Redis', () => {
    test('dump() lists every key with its TTL and the strings it holds, whatever its type', async () => {
      const lab = await createLabRedis({ url });
      await lab.raw.set('s', 'job-1', 'EX', 60);
      await lab.raw.rpush('l', 'job-2', 'job-3');
      await lab.raw.zadd('z', 1, 'job-4');
      await lab.raw.hset('h', 'job-5', '{"id":"job-6"}');

      const dump = await lab.dump();

      expect(dump.map(({ key, type, items }) => ({ key, type, items }))).toEqual([
        { key: 'h', type: 'hash', items: ['job-5', '{"id":"job-6"}'] },
        { key: 'l', type: 'list', items: ['job-2', 'job-3'] },
        { key: 's', type: 'string', items: ['job-1'] },
        { key: 'z', type: 'zset', items: ['job-4'] },
      ]);
      expect(dump.find((entry) => entry.key === 's')!.ttlMs).toBeGreaterThan(50_000);
      expect(dump.find((entry) => entry.key === 'l')!.ttlMs).toBe(-1);
    });

    test('readUntil reads until the condition holds, and gives the last reading when it never does', async () => {
      const lab = await createLabRedis({ url });
      setTimeout(() => void lab.raw.set('flag', 'up'), 5);

      const seen = await readUntil(
        () => lab.raw.get('flag'),
        (value) => value === 'up',
      );
      const never = await readUntil(
        () => lab.raw.get('nothing'),
        (value) => value !== null,
        50,
      );

      expect(seen).toBe('up');
      expect(never).toBeNull();
    });
  });

  describe('isolation and cleanup', () => {
    test('a lab in another logical database keeps its keys there (a second node on one server)', async () => {
      const first = await createLabRedis({ url });
      const second = await createLabRedis({ url, database: 3 });

      await first.redis.set('k', 'first');
      await second.redis.set('k', 'second');

      expect(await first.redis.get('k')).toBe('first');
      expect(await second.redis.get('k')).toBe('second');
      if (url) {
        const db3 = new Redis(url, { db: 3 });
        expect(await db3.exists(`${second.prefix}k`), 'the second lab writes to database 3').toBe(1);
        expect(await db3.exists(`${first.prefix}k`), 'the first lab stays in database 0').toBe(0);
        db3.disconnect();
      }
    });

    test("two labs do not see each other's keys, and close() leaves nothing behind", async () => {
      const a = await createLabRedis({ url });
      const b = await createLabRedis({ url });

      await a.redis.set('shared-name', 'a');

      expect(await b.redis.get('shared-name')).toBeNull();
      expect(await a.keys()).toEqual(['shared-name']);
      await a.close();
      const again = await createLabRedis({ url });
      expect(await again.keys()).toEqual([]);
    });
  });

  describe('time', () => {
    test('advancing the clock fires timers and expires keys in Redis', async () => {
      const lab = await createLabRedis({ url });
      const clock = useFakeClock(lab);
      await lab.raw.set('short', '1', 'PX', 5_000);
      await lab.raw.set('long', '1', 'EX', 60);
      let fired = false;
      setTimeout(() => (fired = true), 4_000);

      await clock.advance(6_000);

      expect(fired).toBe(true);
      expect(await lab.raw.exists('short')).toBe(0);
      expect(await lab.ttlMs('long')).toBeLessThanOrEqual(54_000);
      expect(await lab.ttlMs('long')).toBeGreaterThan(50_000);
    });

    test('advance() ages pending stream entries, keeping their owner and delivery count', async () => {
      const lab = await createLabRedis({ url });
      const clock = useFakeClock(lab);
      await lab.raw.xgroup('CREATE', 's', 'g', '0', 'MKSTREAM');
      const id = (await lab.raw.xadd('s', '*', 'f', 'v'))!;
      await lab.raw.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', 's', '>');

      await clock.advance(30_000);
      const pending = (await lab.raw.xpending('s', 'g', '-', '+', 10)) as [string, string, number, number][];
      const [pendingId, owner, idleMs, deliveries] = pending[0]!;
      const claimed = (await lab.raw.xautoclaim('s', 'g', 'c2', 29_000, '0-0', 'JUSTID')) as [string, string[]];

      expect([pendingId, owner, deliveries]).toEqual([id, 'c1', 1]);
      expect(idleMs).toBeGreaterThanOrEqual(30_000);
      expect(idleMs).toBeLessThan(31_000);
      expect(claimed[1]).toEqual([id]);
    });
  });
});

describe('controllable fakes', () => {
  test('held calls wait until released, resolved or failed, in any order', async () => {
    const fn = controlled(async (n: number) => n * 2);
    fn.hold();

    const a = fn(1);
    const b = fn(2);
    const c = fn(3);
    await settle();
    await fn.held[1]!.release();
    fn.held[1]!.resolveWith(-1);
    fn.held[0]!.fail(new Error('no'));

    expect(await b).toBe(4);
    expect(await c).toBe(-1);
    await expect(a).rejects.toThrow('no');
    expect(fn.callCount).toBe(3);
  });

  test('failNext and hangNext inject faults for the next calls only', async () => {
    const fn = controlled(async () => 'ok');
    fn.failNext(new Error('boom'));
    fn.hangNext();

    await expect(fn()).rejects.toThrow('boom');
    let settled = false;
    void fn().then(() => (settled = true));
    await settle();

    expect(settled).toBe(false);
    expect(await fn()).toBe('ok');
  });

  test('a fake table hands out copies, so callers cannot change the database by accident', async () => {
    const table = fakeTable([['1', { n: 1 }]]);

    const row = await table.load('1');
    row!.n = 99;

    expect(table.data.get('1')).toEqual({ n: 1 });
  });

  test('track records how and when a promise settled, without awaiting it', async () => {
    vi.useFakeTimers({ now: 1_000, toFake: ['Date'] });
    const later = deferred<string>();
    const failing = deferred<string>();

    const ok = track(later.promise);
    const bad = track(failing.promise);
    vi.setSystemTime(1_500);
    later.resolve('done');
    failing.reject(new Error('boom'));
    await settle();

    expect(ok).toEqual({ settled: true, value: 'done', atMs: 1_500 });
    expect(bad).toMatchObject({ settled: true, atMs: 1_500 });
    expect((bad.error as Error).message).toBe('boom');
    expect(track(new Promise(() => {})).settled).toBe(false);
  });

  test('waitFor gives up after its time limit', async () => {
    expect(await waitFor(() => false, 50)).toBe(false);
  });
});

describe('mock servers', () => {
  test('a closed lab frees its mock server: no data kept, and no script known to the next server', async () => {
    const first = await createLabRedis({ url: null });
    await first.redis.set('k', 'v');
    const sha = await first.redis.script('LOAD', 'return 1');
    const data = (first.redis as unknown as { context: { data: { keys(): string[] } } }).context.data;

    await first.close();
    const next = await createLabRedis({ url: null });

    expect(data.keys()).toEqual([]);
    expect(await next.redis.script('EXISTS', sha as string)).toEqual([0]);
    expect(await next.redis.eval('return 2', 0)).toBe(2);
  });
});
