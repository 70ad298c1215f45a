import type { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import {
  RateLimiter,
  type RateLimit,
  type RateLimiterOptions,
  type TakeResult,
} from '@impl/rate-limiter/rate-limiter.ts';
import {
  crashAtEveryTrip,
  createLabRedis,
  keysWithoutTtl,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  shuffle,
  useFakeClock,
  type LabClock,
  type LabRedis,
} from '../kit/index.ts';

// Long simulated runs make thousands of takes (and, on a real server, age every key at each step).
const LONG_RUN_TIMEOUT_MS = 60_000;

/** Rates whose token interval (1000 / rate ms) is not a whole number, so floor and ceil differ. */
const AWKWARD_RATES = [7, 9, 7 / 3, 13 / 6];

const pick = <T>(items: readonly T[]): T => items[randomInteger(0, items.length - 1)]!;
const describeResult = (result: TakeResult) => JSON.stringify(result);
const describeError = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

interface Limits {
  ratePerSecond: number;
  burst: number;
}

/** A fresh Redis, a fake clock, and limiters: `server()` is another API server on its own client. */
async function setup(limits: Limits | { limits: RateLimit[] }, extra: Partial<RateLimiterOptions> = {}) {
  const lab = await createLabRedis();
  const clock = useFakeClock(lab);
  const base = { ...limits, ...extra };
  const limiter = new RateLimiter({ redis: lab.redis, ...base });
  const server = (overrides: Partial<RateLimiterOptions> = {}, redis: Redis = lab.connect()) =>
    new RateLimiter({ redis, ...base, ...overrides });
  return { lab, clock, limiter, server };
}

/** Takes until the first denial; returns how many were allowed and the denial. */
async function drain(limiter: RateLimiter, key: string, max = 100_000) {
  let allowed = 0;
  for (; allowed < max; allowed++) {
    const result = await limiter.take(key);
    if (!result.allowed) return { allowed, denial: result };
  }
  throw new Error(`the bucket for "${key}" admitted ${max} takes in a row without a denial and without time passing`);
}

/** The most tokens a take-by-take run may admit in a window of `ms`: burst + rate × T. */
const bound = (limits: Limits, ms: number) => Math.floor(limits.burst + (limits.ratePerSecond * ms) / 1000 + 1e-9);

interface Admitted {
  atMs: number;
  cost: number;
}

/**
 * The window [first, last] with the most tokens over its bound, or null when every window holds.
 * `slackMs`: on a real server keys also age in real time while the test runs, so a bucket may
 * come back full that much early; the mock ages them with the fake clock alone (slack 0).
 */
function worstWindow(admitted: Admitted[], limits: Limits, slackMs = 0) {
  const sorted = [...admitted].sort((a, b) => a.atMs - b.atMs);
  let worst: { fromMs: number; toMs: number; tokens: number; allowedTokens: number } | null = null;
  for (let i = 0; i < sorted.length; i++) {
    let tokens = 0;
    for (let j = i; j < sorted.length; j++) {
      tokens += sorted[j]!.cost;
      const allowedTokens = bound(limits, sorted[j]!.atMs - sorted[i]!.atMs + slackMs);
      if (tokens > allowedTokens && (!worst || tokens - allowedTokens > worst.tokens - worst.allowedTokens)) {
        worst = { fromMs: sorted[i]!.atMs, toMs: sorted[j]!.atMs, tokens, allowedTokens };
      }
    }
  }
  return worst;
}

function describeWindow(window: NonNullable<ReturnType<typeof worstWindow>>, limits: Limits, startMs: number) {
  const span = window.toMs - window.fromMs;
  return (
    `${window.tokens} tokens were admitted in the ${span} ms from ${window.fromMs - startMs} ms to ${window.toMs - startMs} ms ` +
    `into the run, more than burst + ratePerSecond × T = ${limits.burst} + ${round(limits.ratePerSecond)} × ${span / 1000} s ` +
    `(${window.allowedTokens})`
  );
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** A failure message from named parts: what happened, what was expected, what it costs. */
const say = (...parts: string[]) => parts.join(' ');

/**
 * Why a count of admitted takes is off. Too many and too few have different causes: a message that
 * blames a race for a token that went missing sends the learner after the wrong bug.
 */
function admissionsOff(got: number, expected: number, tooMany: string) {
  if (got > expected) return tooMany;
  return say(
    `${got} takes were admitted where the bucket held ${expected} tokens: that is under-admission, tokens went missing (a race between servers admits too many, not too few).`,
    'Look for precision lost in the arithmetic (a timestamp near 1.8e12 ms plus a fractional interval, as a TAT in ms, loses a few bits on every take: keep it in units of the interval, or in integer microseconds, or relative to a recent base),',
    'a rounding of the tokens or the refill, or a clock handled wrong (a negative elapsed time that subtracts tokens).',
    'Every token a limiter loses is a request refused that the limit promised to serve.',
  );
}

/** What a wrong remaining most likely comes from: one too low and one too high have different causes. */
function remainingOff(got: number, expected: number) {
  return got < expected
    ? `remaining ${got} is lower than the ${expected} whole tokens left: the floor of a number a hair below a whole one, so precision was lost in the arithmetic (a TAT in ms plus a fractional interval is rounded on every take; count it in intervals instead). The client is told it has fewer tokens than it has`
    : `remaining ${got} is more than the ${expected} whole tokens left: reported before the subtraction, or rounded up, so the client is told it can afford a request that will be refused`;
}

/** What a wrong retryAfterMs most likely comes from, given the exact (fractional) wait. */
function retryOff(saidMs: number, exactMs: number) {
  const expectedMs = Math.ceil(exactMs);
  if (saidMs > expectedMs) {
    return Number.isInteger(exactMs) && saidMs === exactMs + 1
      ? `one ms too long: the wait here is a whole number of ms, and Math.floor(x) + 1 is not Math.ceil(x) when x is whole. A client that honours it waits longer than the limit asks, and the "one ms earlier is denied" promise breaks`
      : 'too long: the client waits longer than the limit asks, and a take a millisecond earlier would already succeed';
  }
  const causes: string[] = [];
  if (saidMs === Math.floor(exactMs)) causes.push('rounded down (Math.floor instead of Math.ceil)');
  if ([Math.floor, Math.ceil, Math.round].some((f) => f(exactMs / 1000) === saidMs))
    causes.push('a wait in seconds, not milliseconds (the client then comes back at once and hammers the limiter)');
  if (saidMs < Math.floor(exactMs))
    causes.push(
      'a bucket that held more than it should: precision lost in the arithmetic (floating-point error on a timestamp near 1.8e12 ms) or a clock handled wrong',
    );
  return `too short, so the client comes back too early and is refused again: ${causes.join('; or ')}`;
}

/**
 * On a real server a key also ages in real time: the most real time that passed within any span of
 * fake time a key can live (`ttlMs`), which is how much earlier than the fake clock says it can expire.
 */
function realAging(marks: Array<{ fakeMs: number; realMs: number }>, ttlMs: number) {
  let most = 0;
  for (let i = 0, j = 0; j < marks.length; j++) {
    while (marks[j]!.fakeMs - marks[i]!.fakeMs > ttlMs) i++;
    // Each fake-clock step also rounds a real key's remaining TTL down to a whole ms (PTTL).
    most = Math.max(most, marks[j]!.realMs - marks[i]!.realMs + (j - i));
  }
  return Math.ceil(most) + 5;
}

/** Every key the test's Redis holds must have a TTL no longer than the slowest bucket takes to fill. */
async function expectKeysExpire(lab: LabRedis, longestFillMs: number, when: string) {
  const allowanceMs = 2_000;
  for (const key of await lab.keys()) {
    const ttl = await lab.ttlMs(key);
    const what = `${when}, "${key}" has ${ttl === -1 ? 'no TTL at all' : `a TTL of ${ttl} ms`}`;
    const expected = `every key the limiter writes must expire once its bucket would be full again, at most ceil(burst / ratePerSecond) s (${longestFillMs} ms) after the write`;
    const cost =
      'otherwise every subject that ever sent a request keeps a key, and memory grows with all users instead of the active ones';
    expect(ttl >= 0 && ttl <= longestFillMs + allowanceMs, `${what}: ${expected}; ${cost}`).toBe(true);
  }
}

describe('core', () => {
  test('a fresh bucket admits burst takes in a row, counting remaining down, then denies', async () => {
    const limits = { ratePerSecond: randomInteger(2, 9), burst: randomInteger(5, 30) };
    const { limiter } = await setup(limits);
    const key = randomId('user');

    const results: TakeResult[] = [];
    for (let i = 0; i <= limits.burst; i++) results.push(await limiter.take(key));

    const allowed = results.slice(0, limits.burst);
    const denial = results[limits.burst]!;
    const admitted = allowed.filter((r) => r.allowed).length;
    const wrongAt = allowed.findIndex((r, i) => r.remaining !== limits.burst - 1 - i);
    expect(
      allowed.map((r) => r.allowed),
      `a full bucket of burst = ${limits.burst} must admit ${limits.burst} takes in a row with no time passing; got ${admitted}. ${admissionsOff(admitted, limits.burst, '')}`,
    ).toEqual(allowed.map(() => true));
    expect(
      allowed.map((r) => r.remaining),
      say(
        'remaining after each allowed take must be the whole tokens left after that take (burst - 1, burst - 2, … 0);',
        wrongAt < 0
          ? ''
          : `after take ${wrongAt + 1}, ${remainingOff(allowed[wrongAt]!.remaining, limits.burst - 1 - wrongAt)}`,
      ),
    ).toEqual(allowed.map((_, i) => limits.burst - 1 - i));
    expect(
      allowed.map((r) => r.retryAfterMs),
      'an allowed take must have retryAfterMs = 0',
    ).toEqual(allowed.map(() => 0));
    expect(
      denial.allowed,
      `take number ${limits.burst + 1} on a bucket of ${limits.burst} found it empty and must be denied; got ${describeResult(denial)}`,
    ).toBe(false);
    expect(denial.remaining, 'a denied take on an empty bucket must report remaining = 0').toBe(0);
  });

  test('retryAfterMs is exact: a take at now + retryAfterMs succeeds, and one a millisecond earlier is denied', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(5, 20) };
    const { limiter, clock } = await setup(limits);
    // Below burst, so the wait ends before the drained key's TTL does (see the whole-ms test).
    const cost = randomInteger(2, Math.min(5, limits.burst - 1));
    const intervalMs = 1000 / limits.ratePerSecond;

    for (const [key, takeCost] of [
      [randomId('user'), 1],
      [randomId('user'), cost],
    ] as const) {
      const drained = await drain(limiter, key);
      const denied = await limiter.take(key, { cost: takeCost });
      const expectedMs = Math.ceil(takeCost * intervalMs);
      const what = `an empty bucket refilling at ${round(limits.ratePerSecond)} tokens/s holds ${takeCost} token(s) after ${round(takeCost * intervalMs)} ms`;
      expect(
        drained.allowed,
        admissionsOff(
          drained.allowed,
          limits.burst,
          `a full bucket of ${limits.burst} admitted ${drained.allowed} takes in a row with no time passing`,
        ),
      ).toBe(limits.burst);
      expect(
        denied.retryAfterMs,
        `${what}, so a denied take of cost ${takeCost} must say retryAfterMs = ${expectedMs} (rounded up to a whole ms); it said ${denied.retryAfterMs}, ${retryOff(denied.retryAfterMs, takeCost * intervalMs)}`,
      ).toBe(expectedMs);

      await clock.advance(denied.retryAfterMs - 1);
      const early = await limiter.take(key, { cost: takeCost });
      await clock.advance(1);
      const onTime = await limiter.take(key, { cost: takeCost });

      expect(
        early.allowed,
        `${what}: a take 1 ms before now + retryAfterMs (${denied.retryAfterMs - 1} ms) must still be denied; it was allowed, so retryAfterMs was longer than needed`,
      ).toBe(false);
      expect(
        onTime.allowed,
        `${what}: a take at exactly now + retryAfterMs (${denied.retryAfterMs} ms) must succeed; it was denied (${describeResult(onTime)}), so a client that honours Retry-After is refused again`,
      ).toBe(true);
    }
  });

  test('retryAfterMs is exact when the wait is a whole number of ms: not one ms more', async () => {
    const limits = { ratePerSecond: pick([4, 5, 8, 10, 20]), burst: randomInteger(2, 10) };
    const { limiter, clock } = await setup(limits);
    const intervalMs = 1000 / limits.ratePerSecond;

    // A cost below burst: a take of the whole burst waits exactly as long as the key lives, and on
    // a real server the key also ages in real time, so it may be gone (a full bucket) a ms early.
    for (const takeCost of [1, randomInteger(1, limits.burst - 1)]) {
      // Two buckets drained at one instant: the early take goes to one and the take on time to the
      // other, so the answer is graded on the bucket the denial saw, whatever a design writes back
      // on a denied take (a refill written back is rounded, and at a whole-ms boundary that shows).
      const [earlyKey, onTimeKey] = [randomId('user'), randomId('user')];
      await drain(limiter, earlyKey);
      await drain(limiter, onTimeKey);
      const denied = await limiter.take(onTimeKey, { cost: takeCost });
      await clock.advance(Math.max(denied.retryAfterMs, 1) - 1);
      const early = await limiter.take(earlyKey, { cost: takeCost });
      await clock.advance(1);
      const onTime = await limiter.take(onTimeKey, { cost: takeCost });

      const expectedMs = takeCost * intervalMs;
      const what = `an empty bucket refilling at ${limits.ratePerSecond} tokens/s holds ${takeCost} token(s) after exactly ${expectedMs} ms`;
      expect(
        denied.retryAfterMs,
        `${what}, so a denied take of cost ${takeCost} must say retryAfterMs = ${expectedMs}; it said ${denied.retryAfterMs}, ${retryOff(denied.retryAfterMs, expectedMs)}`,
      ).toBe(expectedMs);
      expect(early.allowed, `${what}: a take 1 ms before now + retryAfterMs must still be denied; it was allowed`).toBe(
        false,
      );
      expect(
        onTime.allowed,
        `${what}: a take at exactly now + retryAfterMs must succeed; it was denied (${describeResult(onTime)})`,
      ).toBe(true);
    }
  });

  test('retryAfterMs counts the wait until a bucket clock that another server moved ahead, plus the refill', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(8, 20) };
    const intervalMs = 1000 / limits.ratePerSecond;
    // The fast server sets the key's TTL by its own clock, so the key (and with it the debt) is
    // gone aheadMs early in true time, which README requirement 9 allows. Keeping the skew under
    // half the refill time keeps that expiry well after the wait this test measures.
    const aheadMs = randomInteger(200, Math.floor(((limits.burst - 1) * intervalMs) / 2));
    const { limiter, server, clock } = await setup(limits);
    const fast = server({ now: () => Date.now() + aheadMs });
    const key = randomId('user');

    const drained = await drain(fast, key);
    const denied = await limiter.take(key);
    await clock.advance(Math.max(denied.retryAfterMs, 1) - 1);
    const early = await limiter.take(key);
    await clock.advance(1);
    const onTime = await limiter.take(key);

    const expectedMs = Math.ceil(aheadMs + intervalMs);
    const scene = say(
      `a server whose clock is ${aheadMs} ms ahead drained the bucket, so the bucket's clock is ${aheadMs} ms ahead of a correctly clocked server;`,
      `that server must wait until its clock reaches the bucket's (${aheadMs} ms) and then for one token's refill (${round(intervalMs)} ms):`,
    );
    const leftOut =
      denied.retryAfterMs === Math.ceil(intervalMs)
        ? ` It left out the ${aheadMs} ms until the bucket's clock: add (bucket clock - now), which is positive when the bucket's clock is ahead, to the refill time.`
        : '';
    expect(
      drained.allowed,
      admissionsOff(
        drained.allowed,
        limits.burst,
        `a full bucket of ${limits.burst} admitted ${drained.allowed} takes in a row`,
      ),
    ).toBe(limits.burst);
    expect(
      denied.retryAfterMs,
      `${scene} retryAfterMs must be ${expectedMs}; it said ${denied.retryAfterMs}.${leftOut} A client told less comes back too early and is refused again`,
    ).toBe(expectedMs);
    expect(early.allowed, `${scene} a take 1 ms before now + retryAfterMs must still be denied; it was allowed`).toBe(
      false,
    );
    expect(
      onTime.allowed,
      `${scene} a take at exactly now + retryAfterMs (${denied.retryAfterMs} ms) must succeed; it was denied (${describeResult(onTime)}), so a client that honours Retry-After is refused again`,
    ).toBe(true);
  });

  test('denied takes consume nothing: after spamming an empty bucket, the refill still arrives on time', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(3, 10) };
    const { limiter, clock, server } = await setup(limits);
    const other = server();
    const key = randomId('user');
    await drain(limiter, key);
    const first = await limiter.take(key);

    let spammed = 0;
    let waited = 0;
    for (; waited + 10 < first.retryAfterMs; waited += 10) {
      for (let i = 0; i < 3; i++) await (i % 2 ? other : limiter).take(key);
      spammed += 3;
      await clock.advance(10);
    }
    await clock.advance(first.retryAfterMs - waited);
    const after = await limiter.take(key);

    expect(
      after.allowed,
      `after ${spammed} denied takes on an empty bucket, the take at the first denial's retryAfterMs (${first.retryAfterMs} ms) was denied (${describeResult(after)}): the denied takes consumed tokens (or threw the refill away). A denied take must write nothing; otherwise a client that retries while limited locks itself out far longer than the rate says`,
    ).toBe(true);
  });

  test('a take costs its cost: cost 5 on a bucket holding 4 tokens is denied and takes nothing', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(8, 20) };
    const { limiter, clock } = await setup(limits);
    const key = randomId('user');
    const intervalMs = 1000 / limits.ratePerSecond;
    const drained = await drain(limiter, key);
    // 4.5 tokens' worth of time, so the bucket holds 4 whole tokens and a half.
    await clock.advance(Math.ceil(4.5 * intervalMs));

    const five = await limiter.take(key, { cost: 5 });
    const four = await limiter.take(key, { cost: 4 });
    const one = await limiter.take(key);

    expect(
      drained.allowed,
      admissionsOff(
        drained.allowed,
        limits.burst,
        `a full bucket of ${limits.burst} admitted ${drained.allowed} takes in a row`,
      ),
    ).toBe(limits.burst);
    expect(
      five.allowed,
      `a take of cost 5 on a bucket holding 4.5 tokens must be denied; it was allowed (${describeResult(five)}): compare the tokens with the cost, not with 1`,
    ).toBe(false);
    expect(
      five.remaining,
      'a denied take must report remaining = the whole tokens the bucket holds now (4, the floor of 4.5): rounded up, the client is told it can afford a take that will be refused',
    ).toBe(4);
    expect(
      five.retryAfterMs,
      `the cost-5 take needs half a token more, ${round(intervalMs / 2)} ms of refill: retryAfterMs must be about that`,
    ).toBeLessThanOrEqual(Math.ceil(intervalMs / 2) + 1);
    expect(
      four.allowed,
      `after the denied cost-5 take, the 4 tokens must still be there and a cost-4 take must succeed; got ${describeResult(four)}: a denied take consumed tokens`,
    ).toBe(true);
    expect(four.remaining, 'after a cost-4 take on 4.5 tokens, remaining must be 0 (floor of 0.5)').toBe(0);
    expect(
      one.allowed,
      `a cost-4 take must remove 4 tokens, not 1: after it, half a token is left and a cost-1 take must be denied; got ${describeResult(one)}`,
    ).toBe(false);
  });

  test('a cost above burst, or a cost that is not a whole number >= 1, rejects with RangeError and writes nothing', async () => {
    const limits = { ratePerSecond: randomInteger(1, 9), burst: randomInteger(3, 20) };
    const { limiter, lab } = await setup(limits);
    const key = randomId('user');

    for (const cost of [limits.burst + 1, limits.burst * 10, 0, -1, 1.5]) {
      const outcome = await (async () => limiter.take(key, { cost }))().then(
        (result) => `resolved with ${describeResult(result)}`,
        (error: unknown) => (error instanceof RangeError ? 'RangeError' : describeError(error)),
      );
      expect(
        outcome,
        `take(key, { cost: ${cost} }) with burst = ${limits.burst} must reject with a RangeError: ${cost > limits.burst ? 'a cost above burst can never be admitted, and a retryAfterMs would send the client into an endless retry loop' : 'a cost must be a whole number >= 1'}`,
      ).toBe('RangeError');
    }
    const keys = await lab.keys();
    for (const [name, options] of [
      ['ratePerSecond: 0', { ratePerSecond: 0, burst: 5 }],
      ['ratePerSecond: -1', { ratePerSecond: -1, burst: 5 }],
      ['burst: 0', { ratePerSecond: 1, burst: 0 }],
      ['burst: 2.5', { ratePerSecond: 1, burst: 2.5 }],
      ['ratePerSecond: NaN', { ratePerSecond: Number.NaN, burst: 5 }],
      ['burst: NaN', { ratePerSecond: 1, burst: Number.NaN }],
    ] as const) {
      const why = name.includes('NaN')
        ? 'NaN is what Number() makes of a missing or misspelt setting, and it is not > 0; test that the value is > 0 (NaN > 0 is false), not that it is not <= 0 (NaN <= 0 is false too), or every take compares against NaN'
        : 'a limiter that cannot refill or holds no whole token would deny everyone';
      expect(
        () => new RateLimiter({ redis: lab.redis, ...options }),
        `new RateLimiter({ ${name} }) must throw a RangeError: ${why}`,
      ).toThrow(RangeError);
    }

    expect(keys, 'a refused cost must write nothing to Redis').toEqual([]);
  });

  test('each key is its own bucket: draining one user leaves another full', async () => {
    const limits = { ratePerSecond: randomInteger(1, 9), burst: randomInteger(5, 20) };
    const { limiter } = await setup(limits);
    const [noisy, quiet] = [randomId('user'), randomId('user')];

    await drain(limiter, noisy);
    const other = await limiter.take(quiet);

    expect(
      other.allowed && other.remaining === limits.burst - 1,
      `after "${noisy}" drained its bucket, the first take of "${quiet}" got ${describeResult(other)}; it must have a full bucket of its own (allowed, remaining ${limits.burst - 1}). ${
        other.allowed
          ? remainingOff(other.remaining, limits.burst - 1)
          : 'The two shared one bucket: put the key in the Redis key, or one noisy user locks out everyone'
      }`,
    ).toBe(true);
  });

  test('every key starts with keyPrefix (default "ratelimit:"), and two prefixes are two sets of buckets', async () => {
    const limits = { ratePerSecond: randomInteger(1, 9), burst: randomInteger(3, 10) };
    const { lab, limiter, server } = await setup(limits);
    const prefix = `${randomId('api')}:`;
    const prefixed = server({ keyPrefix: prefix });
    const key = randomId('user');

    await drain(limiter, key);
    const keysByDefault = await lab.keys();
    const other = await prefixed.take(key);
    const keysWithPrefix = (await lab.keys()).filter((k) => !keysByDefault.includes(k));

    expect(keysByDefault.length, 'a take must store its bucket in Redis').toBeGreaterThan(0);
    for (const k of keysByDefault) {
      expect(k.startsWith('ratelimit:'), `without keyPrefix every key must start with "ratelimit:"; found "${k}"`).toBe(
        true,
      );
    }
    expect(
      keysWithPrefix.length > 0 && keysWithPrefix.every((k) => k.startsWith(prefix)),
      `with keyPrefix "${prefix}" every key must start with it; found ${JSON.stringify(keysWithPrefix)}. Two services sharing one Redis tell their buckets apart by the prefix`,
    ).toBe(true);
    expect(
      other.allowed,
      `a limiter with keyPrefix "${prefix}" must not share buckets with one using the default prefix; its first take was denied (${describeResult(other)})`,
    ).toBe(true);
  });

  test('hundreds of concurrent takes from several servers at one instant admit exactly burst', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(20, 60) };
    const { limiter, server } = await setup(limits);
    const servers = [limiter, server(), server(), server()];
    const key = randomId('user');
    const calls = 300;

    const results = await Promise.all(Array.from({ length: calls }, (_, i) => servers[i % servers.length]!.take(key)));

    const allowed = results.filter((r) => r.allowed);
    expect(
      allowed.length,
      `${calls} concurrent takes from ${servers.length} servers on a bucket of ${limits.burst} admitted ${allowed.length}: ${admissionsOff(
        allowed.length,
        limits.burst,
        'more than the bucket held, so servers spent the same tokens (over-admission). Read, refill, decide and write in one Lua script; a read then a write from the client lets every server that read at the same moment spend the same tokens',
      )}`,
    ).toBe(limits.burst);
    expect(
      allowed.map((r) => r.remaining).sort((a, b) => a - b),
      'each allowed take must report the tokens left after it: 0, 1, … burst - 1, each once',
    ).toEqual(Array.from({ length: limits.burst }, (_, i) => i));
  });

  test('another server taking right before any round trip of a take never lets the two spend the same token', async () => {
    const limits = { ratePerSecond: randomInteger(1, 5), burst: randomInteger(3, 10) };
    const { lab, server } = await setup(limits);

    await raceAtEveryTrip({
      async arrange() {
        const key = randomId('user');
        const filler = server();
        for (let i = 1; i < limits.burst; i++) await filler.take(key); // one token left
        return { lab, key, mine: server(), rival: server(), raced: null as TakeResult | null };
      },
      act: ({ mine, key }) => mine.take(key),
      async race(state) {
        state.raced = await state.rival.take(state.key);
      },
      check({ raced }, at) {
        const mineAllowed = 'value' in at.outcome && at.outcome.value.allowed;
        const spent = Number(mineAllowed) + Number(raced?.allowed ?? false);
        const when = at.finishedFirst
          ? 'with no other server taking'
          : `with another server taking right before round trip ${at.trip + 1} of the take`;
        expect('error' in at.outcome ? describeError(at.outcome.error) : 'resolved', `${when}, the take failed`).toBe(
          'resolved',
        );
        expect(
          spent,
          `${when}, a bucket holding one token admitted ${spent} takes: ${admissionsOff(spent, 1, 'both servers spent the same tokens. The read and the write must be one atomic step (one Lua script)')}`,
        ).toBe(1);
      },
    });
  });

  test('a take is one round trip', async () => {
    const limits = { ratePerSecond: randomInteger(1, 9), burst: randomInteger(3, 10) };
    const { lab, limiter } = await setup(limits);
    await limiter.take(randomId('warm-up')); // loading a script may cost a trip once

    const allowed = await lab.roundTrips.during(() => limiter.take(randomId('user')));
    const key = randomId('user');
    await drain(limiter, key);
    const denied = await lab.roundTrips.during(() => limiter.take(key));

    for (const [what, cost] of [
      ['an allowed take', allowed],
      ['a denied take', denied],
    ] as const) {
      expect(
        cost.trips.length,
        `${what} made ${cost.trips.length} round trips (${lab.roundTrips.summary()}); a decision must be one script call, one round trip: the limiter sits in front of every request, so every extra trip is latency on every request`,
      ).toBe(1);
    }
  });

  test('a crash at any point of a take leaves no key without a TTL', async () => {
    const limits = { ratePerSecond: randomInteger(1, 9), burst: randomInteger(3, 10) };
    const { lab, server } = await setup(limits);
    await server().take(randomId('warm-up'));

    await crashAtEveryTrip({
      arrange: async () => ({ lab, key: randomId('user'), limiter: server() }),
      act: ({ limiter, key }) => limiter.take(key),
      async check(_state, at) {
        const left = await keysWithoutTtl(lab);

        const what = at.finishedFirst ? 'a take' : `a take whose connection broke after ${at.trip} round trip(s)`;
        expect(
          left,
          `${what} left ${left.map((k) => `"${k}"`).join(' and ')} without a TTL: such a key never expires. Set the expiry in the same script as the write`,
        ).toEqual([]);
      },
    });
  });

  test('every key expires once its bucket would be full again, and an expired bucket is a full one', async () => {
    const limits = { ratePerSecond: pick([...AWKWARD_RATES, 1000 / 86400]), burst: randomInteger(3, 12) };
    const { lab, limiter, clock } = await setup(limits);
    const key = randomId('user');
    const fillMs = Math.ceil(limits.burst / limits.ratePerSecond) * 1000;

    await drain(limiter, key);
    await expectKeysExpire(lab, fillMs, 'after a bucket was drained');
    await clock.advance(fillMs + 2_000);
    const keysLeft = await lab.keys();
    const after = await limiter.take(key);

    expect(
      keysLeft,
      `${fillMs + 2_000} ms after the last take the bucket is full again and its key must be gone; an idle subject must cost no memory`,
    ).toEqual([]);
    expect(
      after.allowed && after.remaining === limits.burst - 1,
      `once its key expired, the bucket must behave as a full one (allowed, remaining ${limits.burst - 1}); got ${describeResult(after)}${after.allowed ? `: ${remainingOff(after.remaining, limits.burst - 1)}` : ''}`,
    ).toBe(true);
  });

  test('a drained bucket does not expire, or reset, before it has refilled', async () => {
    const limits = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(10, 30) };
    const { limiter, clock } = await setup(limits);
    const key = randomId('user');
    const fillMs = (limits.burst / limits.ratePerSecond) * 1000;

    await drain(limiter, key);
    await clock.advance(Math.floor(fillMs * 0.6));
    const { allowed } = await drain(limiter, key);

    const expected = Math.floor(limits.burst * 0.6);
    expect(
      allowed,
      `a drained bucket of ${limits.burst} refilling at ${round(limits.ratePerSecond)}/s holds about ${expected} tokens ${Math.floor(fillMs * 0.6)} ms later, but ${allowed} were admitted: the key expired before its bucket had refilled, and a missing key reads as a full bucket. Its TTL must run until the bucket would be full again`,
    ).toBeLessThanOrEqual(expected + 1);
    expect(
      allowed,
      `the bucket should have refilled to about ${expected} tokens; only ${allowed} were admitted`,
    ).toBeGreaterThanOrEqual(expected - 1);
  });

  test('after a full burst the bucket refills at ratePerSecond, never faster and never slower', async () => {
    const limits = { ratePerSecond: randomInteger(2, 8), burst: randomInteger(8, 20) };
    const { limiter, clock } = await setup(limits);
    const key = randomId('user');
    const stepMs = Math.floor(1000 / (4 * limits.ratePerSecond)); // a quarter token per step
    const spanMs = Math.ceil((2 * limits.burst * 1000) / limits.ratePerSecond);

    await drain(limiter, key);
    let admitted = 0;
    let elapsed = 0;
    let problem: string | null = null;
    while (elapsed < spanMs && problem === null) {
      await clock.advance(stepMs);
      elapsed += stepMs;
      admitted += (await drain(limiter, key)).allowed;
      const refilled = Math.floor((limits.ratePerSecond * elapsed) / 1000 + 1e-9);
      if (admitted > refilled + 1) {
        problem = `${admitted} tokens were admitted in the ${elapsed} ms after a full burst was spent; at ${limits.ratePerSecond}/s only ${refilled} had refilled. The bucket refilled faster than ratePerSecond: a fixed window that resets to a full burst at its boundary, or a key that expired early, lets twice the burst through in a moment`;
      } else if (admitted < refilled - 1) {
        problem = `only ${admitted} tokens were admitted in the ${elapsed} ms after a full burst was spent, taking every ${stepMs} ms; at ${limits.ratePerSecond}/s, ${refilled} had refilled. Keep the fractional tokens of each refill`;
      }
    }

    expect(problem, 'the refill after a burst must follow ratePerSecond').toBeNull();
  });

  test(
    'seeded random traffic from several servers never admits more than burst + ratePerSecond × T in any window',
    async () => {
      const limits = { ratePerSecond: randomInteger(2, 10), burst: randomInteger(5, 25) };
      const { lab, limiter, server, clock } = await setup(limits);
      const servers = [limiter, server(), server()];
      const key = randomId('user');
      const startMs = Date.now();
      const marks: Array<{ fakeMs: number; realMs: number }> = [];
      const admitted: Admitted[] = [];

      while (Date.now() - startMs < 60_000) {
        // Bursts of concurrent takes from every server, with pauses from none to a few seconds.
        const calls = randomInteger(1, 2 * limits.burst);
        const costs = Array.from({ length: calls }, () => pick([1, 1, 1, 2, 3].filter((c) => c <= limits.burst)));
        marks.push({ fakeMs: Date.now(), realMs: performance.now() });
        const results = await Promise.all(costs.map((cost, i) => servers[i % servers.length]!.take(key, { cost })));
        results.forEach((result, i) => {
          if (result.allowed) admitted.push({ atMs: Date.now(), cost: costs[i]! });
        });
        await clock.advance(pick([0, 1, randomInteger(1, 200), randomInteger(200, 3_000)]) || 1);
      }

      const slackMs = lab.mode === 'real' ? realAging(marks, (limits.burst / limits.ratePerSecond) * 1000) : 0;
      const window = worstWindow(admitted, limits, slackMs);
      expect(
        window && describeWindow(window, limits, startMs),
        'a token bucket admits at most burst + ratePerSecond × T in any interval of length T: more than burst + rate × T means the limit promised to the downstream is not kept',
      ).toBeNull();
    },
    LONG_RUN_TIMEOUT_MS,
  );

  test(
    'no drift: at 3 tokens/s, a take every 100 ms for ten simulated minutes admits burst + 1800',
    async () => {
      const limits = { ratePerSecond: 3, burst: randomInteger(5, 20) };
      const { limiter, clock } = await setup(limits);
      const key = randomId('user');

      const admitted = await steady(limiter, clock, key, { everyMs: 100, forMs: 600_000 });

      const expected = limits.burst + 3 * 600;
      expect(
        Math.abs(admitted - expected),
        `a take every 100 ms at 3 tokens/s for 10 minutes admitted ${admitted}; expected burst + 3 × 600 = ${expected} (± 1). Each refill is 0.3 tokens: rounding the refill down while moving the bucket's clock to now loses it every time (that drift admits almost nothing); keep the fraction`,
      ).toBeLessThanOrEqual(1);
    },
    LONG_RUN_TIMEOUT_MS,
  );

  test(
    'no drift over an hour: at 17/9 tokens/s, a take every 500 ms for a simulated hour admits burst + 6800',
    async () => {
      const limits = { ratePerSecond: 17 / 9, burst: randomInteger(5, 20) };
      const { limiter, clock } = await setup(limits);
      const key = randomId('user');

      const admitted = await steady(limiter, clock, key, { everyMs: 500, forMs: 3_600_000 });

      const expected = limits.burst + 6800;
      expect(
        Math.abs(admitted - expected),
        `a take every 500 ms at 17/9 tokens/s for an hour admitted ${admitted}; expected burst + 17/9 × 3600 = ${expected} (± 1). Each refill is 0.9444… tokens: storing the tokens rounded to a few decimals loses a sliver per take, and that drift adds up over an hour. Store the full number (pass it to redis.call as a number, or format it with %.17g)`,
      ).toBeLessThanOrEqual(1);
    },
    LONG_RUN_TIMEOUT_MS,
  );

  test('take() reads the time from the now option', async () => {
    const limits = { ratePerSecond: randomInteger(2, 5), burst: randomInteger(5, 10) };
    const lab = await createLabRedis();
    useFakeClock(lab); // Date stands still: only the given clock moves
    let virtualMs = Date.now();
    const limiter = new RateLimiter({ redis: lab.redis, ...limits, now: () => virtualMs });
    const key = randomId('user');

    await drain(limiter, key);
    virtualMs += Math.ceil((2.5 * 1000) / limits.ratePerSecond);
    const { allowed } = await drain(limiter, key);

    expect(
      allowed,
      `the limiter's now option moved 2.5 tokens' worth of time forward (Date did not move) and ${allowed} takes were admitted, not 2: use the now option as the clock (pass now() into the script), not Date.now() or Redis TIME`,
    ).toBe(2);
  });

  test("a server whose clock is behind never moves the bucket's clock back, and takes nothing from the others", async () => {
    const ratePerSecond = randomInteger(4, 8);
    const limits = { ratePerSecond, burst: randomInteger(3 * ratePerSecond + 6, 3 * ratePerSecond + 12) };
    const behindMs = 3_000;
    const { limiter, server, clock } = await setup(limits);
    const slow = server({ now: () => Date.now() - behindMs });
    const key = randomId('user');
    const keep = 2 * ratePerSecond + 3; // enough that a server 2 s behind still sees a token
    const elapsedMs = 1_050;

    for (let i = 0; i < limits.burst - keep; i++) await limiter.take(key);
    await clock.advance(elapsedMs);
    const slowTake = await slow.take(key);
    const { allowed } = await drain(limiter, key);

    const total = limits.burst - keep + Number(slowTake.allowed) + allowed;
    const expected = bound(limits, elapsedMs);
    const scene = `A server spent ${limits.burst - keep} of ${limits.burst} tokens; ${elapsedMs} ms later a server whose clock is behind by ${behindMs} ms took ${slowTake.allowed ? 'one' : 'none'}, then the first server took ${allowed}`;
    expect(
      total,
      `${scene}: ${total} in ${elapsedMs} ms, more than burst + rate × T = ${expected}. The server whose clock is behind moved the bucket's clock back, and the next server counted the same interval again. Store max(stored time, now)`,
    ).toBeLessThanOrEqual(expected);
    expect(
      total,
      `${scene}: ${total} in all, fewer than the ${expected} the bucket held. The server whose clock is behind took tokens away from the bucket: treat a negative elapsed time as zero`,
    ).toBeGreaterThanOrEqual(expected - 1);
  });
});

/** One take every `everyMs` for `forMs` of fake time; returns how many were allowed. */
async function steady(
  limiter: RateLimiter,
  clock: LabClock,
  key: string,
  { everyMs, forMs }: { everyMs: number; forMs: number },
) {
  let admitted = 0;
  for (let elapsed = 0; elapsed < forMs; elapsed += everyMs) {
    if ((await limiter.take(key)).allowed) admitted++;
    await clock.advance(everyMs);
  }
  return admitted;
}

describe('staff', () => {
  const perSecond = () => ({ ratePerSecond: randomInteger(5, 10), burst: randomInteger(12, 20) });
  const perDay = (burst: number) => ({ ratePerSecond: 1000 / 86400, burst });

  test('with several limits a take is allowed only when every limit admits it, and remaining is the minimum', async () => {
    const fast = perSecond();
    const daily = perDay(fast.burst + randomInteger(3, fast.burst - 2));
    const { limiter, clock } = await setup({ limits: [fast, daily] });
    const key = randomId('user');
    const tooBig = await (async () => limiter.take(key, { cost: fast.burst + 1 }))().then(
      (result) => `resolved with ${describeResult(result)}`,
      (error: unknown) => (error instanceof RangeError ? 'RangeError' : describeError(error)),
    );

    const first = await limiter.take(key);
    const burst = await drain(limiter, key);
    await clock.advance(Math.ceil((fast.burst * 1000) / fast.ratePerSecond));
    const rest = await drain(limiter, key);
    const total = 1 + burst.allowed + rest.allowed;

    expect(
      tooBig,
      `a cost of ${fast.burst + 1} is above the per-second burst (${fast.burst}) and can never be admitted: take must reject with a RangeError`,
    ).toBe('RangeError');
    expect(
      first.remaining,
      `after one take, the per-second bucket holds ${fast.burst - 1} and the daily one ${daily.burst - 1}: remaining must be the minimum, ${Math.min(fast.burst, daily.burst) - 1}${first.remaining < fast.burst - 1 ? `; ${remainingOff(first.remaining, fast.burst - 1)}` : ''}`,
    ).toBe(fast.burst - 1);
    expect(
      1 + burst.allowed,
      `the per-second limit (burst ${fast.burst}) must stop the first burst: every limit must admit a take`,
    ).toBe(fast.burst);
    expect(
      total,
      `after the per-second bucket refilled, takes went on until the daily budget of ${daily.burst} ran out: every limit must admit a take, and the daily one allows ${daily.burst} in all; ${total} were admitted`,
    ).toBe(daily.burst);
    expect(
      rest.denial.remaining,
      `once the daily budget is spent, remaining must be 0 (the minimum over the limits), even though the per-second bucket still holds tokens; got ${rest.denial.remaining}`,
    ).toBe(0);
  });

  test('a denial by the daily limit takes nothing from the per-second bucket', async () => {
    const fast = { ratePerSecond: randomInteger(5, 10), burst: randomInteger(16, 22) };
    const firstCost = fast.burst - 13;
    const daily = perDay(firstCost + 2);
    const { limiter, server } = await setup({ limits: [fast, daily] });
    const other = server();
    const key = randomId('user');

    await limiter.take(key, { cost: firstCost }); // per-second: 13 left; daily: 2 left
    const spam = [
      await other.take(key, { cost: 4 }),
      await limiter.take(key, { cost: 4 }),
      await other.take(key, { cost: 4 }),
    ];
    const fits = await limiter.take(key, { cost: 2 });

    expect(
      spam.map((r) => r.allowed),
      'the daily bucket holds 2 tokens, so takes of cost 4 must be denied',
    ).toEqual([false, false, false]);
    expect(
      fits.allowed,
      `after three daily-limit denials of cost 4, a take of cost 2 (which both buckets hold: the per-second one 13, the daily one 2) was denied: the denials consumed from the per-second bucket, which had said yes. A denial must be all-or-nothing, consuming from none of the buckets`,
    ).toBe(true);
  });

  test('a denial by the per-second limit takes nothing from the daily budget', async () => {
    const fast = perSecond();
    const daily = perDay(fast.burst + randomInteger(5, 10));
    const { limiter, server, clock } = await setup({ limits: [fast, daily] });
    const other = server();
    const key = randomId('user');
    const left = daily.burst - fast.burst;

    const first = await drain(limiter, key);
    for (let i = 0; i < 2 * left; i++) await (i % 2 ? other : limiter).take(key);
    await clock.advance(Math.ceil((fast.burst * 1000) / fast.ratePerSecond) + 10);
    const { allowed } = await drain(limiter, key);

    expect(
      first.allowed,
      `a full per-second bucket of ${fast.burst}: ${admissionsOff(first.allowed, fast.burst, `${first.allowed} takes were admitted in a row`)}`,
    ).toBe(fast.burst);
    expect(
      allowed,
      `a spent per-second bucket denied ${2 * left} takes; once it refilled, the daily budget still held ${left} tokens but ${allowed} takes were admitted: the denials consumed from the daily bucket, which had said yes. A denial must be all-or-nothing, consuming from none of the buckets`,
    ).toBe(left);
  });

  test('retryAfterMs is the longest wait of any limit, whatever the order of the limits', async () => {
    const fast = { ratePerSecond: pick(AWKWARD_RATES), burst: randomInteger(5, 10) };
    // Both buckets run dry together; the slow one refills a token in 2333.3 or 3333.3 ms.
    const slow = { ratePerSecond: pick([3 / 7, 0.3]), burst: fast.burst };
    for (const limits of [
      [fast, slow],
      [slow, fast],
    ]) {
      const { limiter, clock } = await setup({ limits });
      const key = randomId('user');
      const drained = await drain(limiter, key);

      const denied = await limiter.take(key);
      const waitFast = Math.ceil(1000 / fast.ratePerSecond);
      const mustWait = Math.ceil(1000 / slow.ratePerSecond);
      await clock.advance(denied.retryAfterMs - 1);
      const early = await limiter.take(key);
      await clock.advance(1);
      const onTime = await limiter.take(key);

      const order = limits[0] === fast ? 'the per-second limit first' : 'the slow limit first';
      expect(
        drained.allowed,
        `with ${order}, two full buckets of ${fast.burst}: ${admissionsOff(drained.allowed, fast.burst, `${drained.allowed} takes were admitted in a row`)}`,
      ).toBe(fast.burst);
      expect(
        denied.retryAfterMs,
        `with ${order}, both buckets were empty or short: the per-second one refills a token in ${waitFast} ms, the slow one in ${mustWait} ms. retryAfterMs must be the longest wait of any limit, ${mustWait}; it was ${denied.retryAfterMs}. A shorter one sends the client back to be refused by the other limit`,
      ).toBe(mustWait);
      expect(early.allowed, `with ${order}, a take 1 ms before retryAfterMs must still be denied`).toBe(false);
      expect(
        onTime.allowed,
        `with ${order}, a take at exactly retryAfterMs must succeed; got ${describeResult(onTime)}`,
      ).toBe(true);
    }
  });

  test('hundreds of concurrent multi-limit takes from several servers admit exactly what the tightest limit holds', async () => {
    const fast = perSecond();
    const daily = perDay(randomInteger(5, fast.burst - 2));
    const limits = shuffle([fast, daily]);
    const { limiter, server } = await setup({ limits });
    const servers = [limiter, server(), server()];
    const key = randomId('user');

    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => servers[i % servers.length]!.take(key)));

    const allowed = results.filter((r) => r.allowed).length;
    expect(
      allowed,
      `200 concurrent takes with a daily budget of ${daily.burst} and a per-second burst of ${fast.burst} admitted ${allowed}: ${admissionsOff(allowed, daily.burst, 'the servers spent the same tokens. Check and take every limit in one script')}`,
    ).toBe(daily.burst);
  });

  test('a take over several limits is one round trip, and a race before it cannot split it', async () => {
    const fast = perSecond();
    const daily = perDay(fast.burst + 5);
    const { lab, limiter, server } = await setup({ limits: [fast, daily] });
    await limiter.take(randomId('warm-up'));

    const cost = await lab.roundTrips.during(() => limiter.take(randomId('user')));

    expect(
      cost.trips.length,
      `a take over ${2} limits made ${cost.trips.length} round trips (${lab.roundTrips.summary()}); all the limits must be checked and taken in one script call, one round trip`,
    ).toBe(1);
    await raceAtEveryTrip({
      async arrange() {
        const key = randomId('user');
        const filler = server();
        for (let i = 1; i < fast.burst; i++) await filler.take(key); // one per-second token left
        return { lab, key, mine: server(), rival: server(), raced: null as TakeResult | null };
      },
      act: ({ mine, key }) => mine.take(key),
      async race(state) {
        state.raced = await state.rival.take(state.key);
      },
      check({ raced }, at) {
        const mineAllowed = 'value' in at.outcome && at.outcome.value.allowed;
        const spent = Number(mineAllowed) + Number(raced?.allowed ?? false);
        expect(
          spent,
          `with another server taking right before round trip ${at.trip + 1}, a per-second bucket holding one token admitted ${spent} takes: ${admissionsOff(spent, 1, 'both spent it. The limits must be checked and taken in one atomic script')}`,
        ).toBe(1);
      },
    });
  });

  test("each bucket's key expires on its own schedule, and one subject's keys share one hash tag", async () => {
    const fast = perSecond();
    const daily = perDay(randomInteger(50, 1000));
    const { lab, limiter, clock } = await setup({ limits: [fast, daily] });
    const key = randomId('user');
    const fastFillMs = Math.ceil(fast.burst / fast.ratePerSecond) * 1000;

    await limiter.take(key, { cost: randomInteger(1, fast.burst) });
    const keys = await lab.keys();
    await expectKeysExpire(lab, Math.ceil(daily.burst / daily.ratePerSecond) * 1000, 'after a take');
    await clock.advance(fastFillMs + 2_000);
    const later = await lab.keys();

    const tags = keys.map((k) => /\{([^}]+)\}/.exec(k)?.[1] ?? k);
    expect(
      keys.length >= 2 && new Set(tags).size === 1,
      `one subject's bucket keys are ${JSON.stringify(keys)}: on Redis Cluster a script may only touch keys of one slot, so every bucket key of a subject must share one hash tag, like ratelimit:{user:42}:0 and ratelimit:{user:42}:1`,
    ).toBe(true);
    expect(
      later.length,
      `${fastFillMs + 2_000} ms after a take the per-second bucket is full again and its key must be gone, while the daily one stays; ${later.length} of ${keys.length} keys were left (${JSON.stringify(later)}). Each bucket key must expire on its own schedule`,
    ).toBe(keys.length - 1);
  });
});
