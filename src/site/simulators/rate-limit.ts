/**
 * The rate-limit simulator's model: the four limiters of the lesson "Backpressure and rate
 * limiting", run over a pattern of requests drawn on a timeline of one-second slots.
 *
 * Conventions, stated next to the simulator in the lesson: every request of slot `i` arrives at
 * the same instant, `i` seconds, and the requests of one slot are decided one after the other.
 * Each limiter counts only the requests it admits.
 */

export type SlidingVariant = 'log' | 'counter';
export type PresetName = 'boundary' | 'steady' | 'bursts' | 'clear';

export interface RateLimitInputs {
  /** How many requests arrive in each one-second slot; slot i starts at i seconds. */
  requestsPerSlot: readonly number[];
  /** The window limiters' limit: requests per window. */
  limitPerWindow: number;
  windowSeconds: number;
  /** The token bucket's capacity b, in tokens (its burst). */
  bucketCapacity: number;
  /** The token bucket's refill rate r. */
  refillPerSecond: number;
  /** Which sliding window to run: the exact log or the two-counter estimate. */
  sliding: SlidingVariant;
}

export interface LimiterResult {
  /** Requests admitted in each slot (never more than arrived in it). */
  admittedPerSlot: number[];
  admitted: number;
  rejected: number;
  /** The most requests admitted in any `windowSeconds` consecutive slots. */
  busiestWindowAdmitted: number;
}

export interface RateLimitResult {
  requests: number;
  fixed: LimiterResult;
  sliding: LimiterResult;
  bucket: LimiterResult;
}

export const SLOT_COUNT = 20;
/** A slot holds one digit's worth of requests, so every timeline cell stays one column wide. */
export const MAX_REQUESTS_PER_SLOT = 9;

export const DEFAULT_INPUTS: Omit<RateLimitInputs, 'requestsPerSlot'> = {
  limitPerWindow: 5,
  windowSeconds: 5,
  bucketCapacity: 5,
  refillPerSecond: 1,
  sliding: 'log',
};

/** Clock-aligned windows [kW, (k+1)W): admit while the window's count is below the limit. */
export function fixedWindow(
  requestsPerSlot: readonly number[],
  limitPerWindow: number,
  windowSeconds: number,
): number[] {
  const counts = new Map<number, number>();
  return requestsPerSlot.map((arrived, second) => {
    const window = Math.floor(second / windowSeconds);
    const used = counts.get(window) ?? 0;
    const admitted = Math.min(arrived, Math.max(0, limitPerWindow - used));
    counts.set(window, used + admitted);
    return admitted;
  });
}

/**
 * The timestamps of admitted requests; entries at or before now − W are dropped (as
 * ZREMRANGEBYSCORE 0 now−W does), so the window at `now` is (now − W, now].
 */
export function slidingLog(
  requestsPerSlot: readonly number[],
  limitPerWindow: number,
  windowSeconds: number,
): number[] {
  const log: number[] = [];
  return requestsPerSlot.map((arrived, second) => {
    while (log.length > 0 && log[0]! <= second - windowSeconds) log.shift();
    const admitted = Math.min(arrived, Math.max(0, limitPerWindow - log.length));
    for (let i = 0; i < admitted; i++) log.push(second);
    return admitted;
  });
}

/**
 * estimate = previous × (1 − elapsed ⁄ W) + current; a request is admitted when the estimate
 * counting it stays within the limit: estimate + 1 ≤ limit. Multiplied through by W, so the
 * comparison is on integers and never rounds: previous × (W − elapsed) + (current + 1) × W ≤ limit × W.
 */
export function slidingCounter(
  requestsPerSlot: readonly number[],
  limitPerWindow: number,
  windowSeconds: number,
): number[] {
  const counts = new Map<number, number>();
  return requestsPerSlot.map((arrived, second) => {
    const window = Math.floor(second / windowSeconds);
    const elapsedSeconds = second - window * windowSeconds;
    const previous = counts.get(window - 1) ?? 0;
    let current = counts.get(window) ?? 0;
    let admitted = 0;
    while (
      admitted < arrived &&
      previous * (windowSeconds - elapsedSeconds) + (current + 1) * windowSeconds <= limitPerWindow * windowSeconds
    ) {
      admitted++;
      current++;
    }
    counts.set(window, current);
    return admitted;
  });
}

/**
 * Starts full; before each slot's requests, adds r × elapsed seconds (capped at b); each request
 * takes one token or is rejected. Tokens are counted in thousandths, so a rate such as 0.1 per
 * second adds exactly 100 each second instead of a binary fraction that drifts below a whole token.
 */
export function tokenBucket(
  requestsPerSlot: readonly number[],
  bucketCapacity: number,
  refillPerSecond: number,
): number[] {
  const capacityMilli = bucketCapacity * 1000;
  const refillMilliPerSecond = Math.round(refillPerSecond * 1000);
  let tokensMilli = capacityMilli;
  return requestsPerSlot.map((arrived, second) => {
    if (second > 0) tokensMilli = Math.min(capacityMilli, tokensMilli + refillMilliPerSecond);
    const admitted = Math.min(arrived, Math.floor(tokensMilli / 1000));
    tokensMilli -= admitted * 1000;
    return admitted;
  });
}

/** The most admitted in any run of `windowSeconds` consecutive slots (a shorter timeline: all of it). */
export function busiestWindow(admittedPerSlot: readonly number[], windowSeconds: number): number {
  let best = 0;
  const lastStart = Math.max(0, admittedPerSlot.length - windowSeconds);
  for (let start = 0; start <= lastStart; start++) {
    const sum = admittedPerSlot.slice(start, start + windowSeconds).reduce((total, n) => total + n, 0);
    best = Math.max(best, sum);
  }
  return best;
}

function summarise(requestsPerSlot: readonly number[], admittedPerSlot: number[], windowSeconds: number) {
  const admitted = admittedPerSlot.reduce((sum, n) => sum + n, 0);
  const requests = requestsPerSlot.reduce((sum, n) => sum + n, 0);
  return {
    admittedPerSlot,
    admitted,
    rejected: requests - admitted,
    busiestWindowAdmitted: busiestWindow(admittedPerSlot, windowSeconds),
  };
}

export function simulateRateLimits(inputs: RateLimitInputs): RateLimitResult {
  const { requestsPerSlot: slots, limitPerWindow: limit, windowSeconds: window } = inputs;
  const sliding = inputs.sliding === 'log' ? slidingLog(slots, limit, window) : slidingCounter(slots, limit, window);
  return {
    requests: slots.reduce((sum, n) => sum + n, 0),
    fixed: summarise(slots, fixedWindow(slots, limit, window), window),
    sliding: summarise(slots, sliding, window),
    bucket: summarise(slots, tokenBucket(slots, inputs.bucketCapacity, inputs.refillPerSecond), window),
  };
}

/**
 * Request patterns the simulator offers. `boundary` sends the full limit in the last second of the
 * first window and again in the first second of the next: the fixed window's double burst.
 */
export function presetPattern(
  name: PresetName,
  limitPerWindow: number,
  windowSeconds: number,
  slotCount = SLOT_COUNT,
): number[] {
  const slots = new Array<number>(slotCount).fill(0);
  if (name === 'boundary') {
    const perSlot = Math.min(limitPerWindow, MAX_REQUESTS_PER_SLOT);
    if (windowSeconds - 1 < slotCount) slots[windowSeconds - 1] = perSlot;
    if (windowSeconds < slotCount) slots[windowSeconds] = perSlot;
  } else if (name === 'steady') {
    slots.fill(1);
  } else if (name === 'bursts') {
    // A page load's burst of calls every 4 seconds, as real clients behave.
    for (let second = 0; second < slotCount; second += 4) slots[second] = 4;
  }
  return slots;
}
