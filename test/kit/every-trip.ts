/**
 * Faults at every point of an operation: run it once per round trip k = 0, 1, 2…, with the
 * connection cut after k trips (a crash) or another client's action slipped in right before
 * trip k (a race lost by a hair), until the operation finishes before trip k. Whatever design the
 * learner chose, and however many trips it takes, every point between two of its requests is
 * tried, on the mock and on a real server alike.
 */
import type { LabRedis } from './redis.ts';

export interface AtTrip<T> {
  /** The trip the fault was set at: the connection was cut after `trip` trips, or the race ran before trip `trip`. */
  trip: number;
  /** The operation finished before reaching `trip`: the fault never fired. This is the last run. */
  finishedFirst: boolean;
  /** Round trips the operation made. */
  used: number;
  /** What the operation returned, or the error it threw. */
  outcome: { value: T } | { error: unknown };
}

export interface TripScenario<S extends { lab: LabRedis }, T> {
  /** Fresh state for one run: a new lab, or new names in the same one. */
  arrange(trip: number): Promise<S>;
  /** The operation under test, through `state.lab.redis` (or a client from `lab.connect()`). */
  act(state: S): Promise<T>;
  /** Assertions, once the fault is lifted. */
  check(state: S, at: AtTrip<T>): Promise<void> | void;
  /** First trip to try (default 0). */
  from?: number;
  /** Give up past this many trips (default 40): an operation should not need more. */
  upTo?: number;
}

async function outcomeOf<T>(run: () => Promise<T>): Promise<AtTrip<T>['outcome']> {
  try {
    return { value: await run() };
  } catch (error) {
    return { error };
  }
}

async function everyTrip<S extends { lab: LabRedis }, T>(
  scenario: TripScenario<S, T>,
  what: string,
  arm: (state: S, trip: number) => void,
  fired: (state: S, refusedBefore: number) => boolean,
) {
  const upTo = scenario.upTo ?? 40;
  for (let trip = scenario.from ?? 0; trip <= upTo; trip++) {
    const state = await scenario.arrange(trip);
    const log = state.lab.roundTrips;
    const before = log.count;
    const refusedBefore = log.refused;
    arm(state, trip);
    const outcome = await outcomeOf(() => scenario.act(state));
    const used = log.count - before;
    const finishedFirst = !fired(state, refusedBefore);
    log.repair();
    log.clearInterleavings();
    await scenario.check(state, { trip, finishedFirst, used, outcome });
    if (finishedFirst) return;
  }
  throw new Error(`The operation under test still had not finished after ${upTo} Redis round trips with ${what}: it retries forever, or makes a round trip per item where one batch would do.`);
}

/** Cuts the connection after k round trips of `act`, for every k, until it finishes first. */
export function crashAtEveryTrip<S extends { lab: LabRedis }, T>(scenario: TripScenario<S, T>): Promise<void> {
  return everyTrip(
    scenario,
    'the connection cut',
    (state, trip) => state.lab.roundTrips.breakAfter(trip),
    (state, refusedBefore) => state.lab.roundTrips.refused > refusedBefore,
  );
}

/**
 * Runs `race` (another client's write, a second worker's call) right before round trip k of
 * `act`, for every k, until `act` finishes before trip k.
 */
export function raceAtEveryTrip<S extends { lab: LabRedis }, T>(scenario: TripScenario<S, T> & { race(state: S): Promise<unknown> }): Promise<void> {
  return everyTrip(
    scenario,
    'a race before each',
    (state, trip) => state.lab.roundTrips.beforeTrip(trip, () => scenario.race(state)),
    (state) => state.lab.roundTrips.pendingInterleavings === 0,
  );
}

/** The keys of the test's keyspace that never expire: what a crash between two commands leaves. */
export async function keysWithoutTtl(lab: LabRedis): Promise<string[]> {
  const keys = await lab.keys();
  const ttls = await Promise.all(keys.map((key) => lab.ttlMs(key)));
  return keys.filter((_, i) => ttls[i] === -1);
}
