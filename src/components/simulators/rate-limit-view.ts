/**
 * The words and numbers the rate-limit simulator shows, shared by its build-time render and its
 * script, so the page without JavaScript reads exactly as the first frame with it.
 */
import type { RateLimitInputs, RateLimitResult, SlidingVariant } from '../../site/simulators/rate-limit.ts';

export type CellState = 'empty' | 'all' | 'some';

/** One timeline cell: "5" when all 5 were admitted, "3/5" when 2 of 5 were rejected. */
export function cellView(arrived: number, admitted: number): { text: string; spoken: string; state: CellState } {
  if (arrived === 0) return { text: '', spoken: 'no requests', state: 'empty' };
  if (admitted === arrived) return { text: String(arrived), spoken: `all ${arrived} admitted`, state: 'all' };
  return { text: `${admitted}/${arrived}`, spoken: `${admitted} of ${arrived} admitted`, state: 'some' };
}

export const requestLabel = (second: number, arrived: number) =>
  `Second ${second}: ${arrived} request${arrived === 1 ? '' : 's'}`;

export const slidingLabel = (variant: SlidingVariant) => (variant === 'log' ? 'Sliding log' : 'Sliding counter');

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
// Rates come from a 0.1 step range, so one decimal is exact; drop it when it is zero.
const decimal = (n: number) => String(Math.round(n * 10) / 10);

export const controlText = {
  limitPerWindow: (n: number) => plural(n, 'request', 'requests'),
  windowSeconds: (n: number) => `${n} s`,
  bucketCapacity: (n: number) => plural(n, 'token', 'tokens'),
  refillPerSecond: (n: number) => `${decimal(n)} token${n === 1 ? '' : 's'} a second`,
};

/** "10 (2× the limit)" when a limiter let more through in one window than the limit allows. */
export function busiestText(busiest: number, limitPerWindow: number): string {
  if (busiest <= limitPerWindow) return String(busiest);
  return `${busiest} (${decimal(busiest / limitPerWindow)}× the limit)`;
}

/** The token bucket's guarantee over W consecutive seconds, whose arrivals span W − 1 seconds. */
export const bucketBound = (inputs: Omit<RateLimitInputs, 'requestsPerSlot'>) =>
  Math.floor(inputs.bucketCapacity + inputs.refillPerSecond * (inputs.windowSeconds - 1) + 1e-9);

export function summaryText(inputs: Omit<RateLimitInputs, 'requestsPerSlot'>, result: RateLimitResult): string {
  const { limitPerWindow: limit, windowSeconds: w } = inputs;
  return (
    `${plural(result.requests, 'request', 'requests')} arrived. Limit ${limit} per ${w} s: an exact window ` +
    `limiter admits at most ${limit} in any ${w} consecutive seconds, the token bucket at most ` +
    `b + r × ${w - 1} s = ${bucketBound(inputs)}.`
  );
}

export const busiestHeading = (windowSeconds: number) => `Most in any ${windowSeconds} s`;
