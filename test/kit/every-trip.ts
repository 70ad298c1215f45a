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
  /** A crash inside a plain pipeline: this many of its commands reached Redis (0: none). */
  inside: number;
  /** The operation finished before reaching `trip`: the fault never fired. This is the last run. */
  finishedFirst: boolean;
  /** Round trips the operation made. */
  used: number;
  /** What the operation returned, or the error it threw. */
  outcome: { value: T } | { error: unknown };
}

export interface TripScenario<S extends { lab: LabRedis }, T> {
  /**
   * Fresh state for one run: a new lab, or new names in the same one. It must build the same
   * shape every time (draw sizes, counts and choices once, outside): trip k of one shape is not
   * trip k of another, and a point between two requests would go untried.
   */
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

/** One kind of fault, set at a trip of the operation. */
interface Fault<S> {
  /** For the message when the operation never finishes: "with the connection cut". */
  what: string;
  arm(state: S, trip: number, inside: number): void;
  /** Whether the fault reached the operation (it did not when the operation finished first). */
  fired(state: S, refusedBefore: number): boolean;
  /** Also try every point inside a plain pipeline of the trip (only a cut can fall there). */
  insidePipelines: boolean;
}

async function everyTrip<S extends { lab: LabRedis }, T>(scenario: TripScenario<S, T>, fault: Fault<S>) {
  const upTo = scenario.upTo ?? 40;
  const once = async (trip: number, inside: number) => {
    const state = await scenario.arrange(trip);
    const log = state.lab.roundTrips;
    const before = log.count;
    const refusedBefore = log.refused;
    fault.arm(state, trip, inside);
    const outcome = await outcomeOf(() => scenario.act(state));
    const used = log.count - before;
    const finishedFirst = !fault.fired(state, refusedBefore);
    const cut = log.lastRefused;
    log.repair();
    log.clearInterleavings();
    await scenario.check(state, { trip, inside, finishedFirst, used, outcome });
    return { finishedFirst, cut };
  };
  for (let trip = scenario.from ?? 0; trip <= upTo; trip++) {
    const { finishedFirst, cut } = await once(trip, 0);
    if (finishedFirst) return;
    // A plain pipeline is not atomic: the connection can drop after some of its commands.
    if (fault.insidePipelines && cut?.kind === 'pipeline')
      for (let inside = 1; inside < cut.size; inside++) await once(trip, inside);
  }
  throw new Error(
    `The operation under test still had not finished after ${upTo} Redis round trips with ${fault.what}: it retries forever, or makes a round trip per item where one batch would do.`,
  );
}

/**
 * Cuts the connection after k round trips of `act`, for every k, until it finishes first; when
 * trip k is a plain pipeline of n commands, also after 1, 2… n - 1 of them, since a pipeline is
 * sent in one go but is not atomic (MULTI is).
 */
export function crashAtEveryTrip<S extends { lab: LabRedis }, T>(scenario: TripScenario<S, T>): Promise<void> {
  return everyTrip(scenario, {
    what: 'the connection cut',
    arm: (state, trip, inside) => state.lab.roundTrips.breakAfter(trip, { inside }),
    fired: (state, refusedBefore) => state.lab.roundTrips.refused > refusedBefore,
    insidePipelines: true,
  });
}

/**
 * Runs `race` (another client's write, a second worker's call) right before round trip k of
 * `act`, for every k, until `act` finishes before trip k.
 */
export function raceAtEveryTrip<S extends { lab: LabRedis }, T>(
  scenario: TripScenario<S, T> & { race(state: S): Promise<unknown> },
): Promise<void> {
  return everyTrip(scenario, {
    what: 'a race before each',
    arm: (state, trip) => state.lab.roundTrips.beforeTrip(trip, () => scenario.race(state)),
    fired: (state) => state.lab.roundTrips.pendingInterleavings === 0,
    insidePipelines: false,
  });
}

/** Where a crash fell, for failure messages: "after 2 round trips", or inside a pipeline. */
export function describeCut(at: Pick<AtTrip<unknown>, 'trip' | 'inside'>): string {
  const trips = `after ${at.trip} round trip${at.trip === 1 ? '' : 's'}`;
  return at.inside
    ? `${trips} and ${at.inside} command${at.inside === 1 ? '' : 's'} of the next pipeline (a pipeline is sent at once but is not atomic; MULTI is)`
    : trips;
}

/** The keys of the test's keyspace that never expire: what a crash between two commands leaves. */
export async function keysWithoutTtl(lab: LabRedis): Promise<string[]> {
  const keys = await lab.keys();
  const ttls = await Promise.all(keys.map((key) => lab.ttlMs(key)));
  return keys.filter((_, i) => ttls[i] === -1);
}
