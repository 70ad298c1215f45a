/** The contract every graded suite builds on. See test/kit/README.md. */
export { createLabRedis, REDIS_MODE, type KeyDump, type LabRedis } from './redis.ts';
export { useFakeClock, type LabClock } from './clock.ts';
export {
  controlled,
  deferred,
  fakeTable,
  inFlight,
  patience,
  readUntil,
  settle,
  track,
  waitFor,
  type ControlledFn,
  type Deferred,
  type HeldCall,
  type Outcome,
} from './controls.ts';
export { RoundTripLog, type Cost, type RoundTrip } from './round-trips.ts';
export {
  crashAtEveryTrip,
  describeCut,
  keysWithoutTtl,
  raceAtEveryTrip,
  type AtTrip,
  type TripScenario,
} from './every-trip.ts';
export { randomId, randomInteger, randomText, randomWord, shuffle } from './random.ts';
export { MockLimitError } from './mock-redis.ts';
