/**
 * @mutant GCRA with the TAT in milliseconds and no tolerance: every allowed take adds a fractional interval to a timestamp near 1.8e12 ms, each sum is rounded, and the error piles up, so an instant burst finds TAT - tau a hair after now and admits burst - 1, and remaining comes out one low (the lesson's old sketch, with the clock passed in).
 * @caught-by under-admission|precision
 */
import type { Redis } from 'ioredis';

/** One token bucket: it holds at most `burst` tokens and refills at `ratePerSecond`. */
export interface RateLimit {
  /** Tokens added per second; > 0 and may be fractional (1000 / 86400 is 1,000 a day). */
  ratePerSecond: number;
  /** The bucket's size, a whole number >= 1: the most a subject can spend at once. */
  burst: number;
}

export interface RateLimiterOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** Tokens added per second (> 0, may be fractional). Required unless `limits` is given. */
  ratePerSecond?: number;
  /** The bucket's size (a whole number >= 1). Required unless `limits` is given. */
  burst?: number;
  /** Every key the limiter writes starts with this. Default 'ratelimit:'. */
  keyPrefix?: string;
  /** This server's clock, in ms since the epoch. Default () => Date.now(). */
  now?: () => number;
  /** Staff: several buckets per subject; a take must pass all of them. Replaces ratePerSecond/burst. */
  limits?: RateLimit[];
}

export interface TakeResult {
  /** Whether the request may go ahead. */
  allowed: boolean;
  /** Whole tokens left after this take (floor); with several limits, the fewest of any bucket. */
  remaining: number;
  /** 0 when allowed; otherwise how long to wait, in whole ms rounded up, before the same take succeeds. */
  retryAfterMs: number;
}

function validate(options: RateLimiterOptions): RateLimit[] {
  const limits = options.limits ?? [{ ratePerSecond: options.ratePerSecond!, burst: options.burst! }];
  if (limits.length === 0) throw new RangeError('limits must hold at least one limit');
  for (const { ratePerSecond, burst } of limits) {
    if (!(typeof ratePerSecond === 'number' && ratePerSecond > 0 && Number.isFinite(ratePerSecond)))
      throw new RangeError(`ratePerSecond must be > 0, got ${ratePerSecond}`);
    if (!(Number.isInteger(burst) && burst >= 1)) throw new RangeError(`burst must be a whole number >= 1, got ${burst}`);
  }
  return limits;
}

function checkCost(cost: number, limits: RateLimit[]) {
  if (!(Number.isInteger(cost) && cost >= 1)) throw new RangeError(`cost must be a whole number >= 1, got ${cost}`);
  if (cost > Math.min(...limits.map((l) => l.burst))) throw new RangeError(`cost ${cost} is larger than the burst`);
}

// GCRA (the lesson's "GCRA in one key"): each bucket is one string, its theoretical arrival
// time (TAT): the moment the bucket would be full again. With T = 1000 / rate ms per token,
// the bucket holds burst - (TAT - now) / T tokens. KEYS = buckets; ARGV = now, cost, then
// T and burst per bucket.
const GCRA = `
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local EPS = 0 -- MUTANT: no room for the rounding of TAT + cost * interval
local tats = {}
local wait = 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[1 + 2 * i])
  local burst = tonumber(ARGV[2 + 2 * i])
  -- A TAT in the past, or none, means full; max() also keeps a slow clock from moving it back.
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
  local allowAt = tat + (cost - burst) * interval
  if allowAt > now + EPS then
    local w = math.ceil(allowAt - now - EPS)
    if w > wait then wait = w end
  end
  tats[i] = tat
end
local allowed = wait == 0
local remaining = nil
for i = 1, #KEYS do
  local interval = tonumber(ARGV[1 + 2 * i])
  local burst = tonumber(ARGV[2 + 2 * i])
  local tat = tats[i]
  if allowed then
    tat = tat + cost * interval
    redis.call('SET', KEYS[i], tat, 'PX', math.max(1, math.ceil(tat - now)))
  end
  local left = math.floor(burst - (tat - now - EPS) / interval)
  if remaining == nil or left < remaining then remaining = left end
end
if allowed then return { 1, remaining, 0 } end
return { 0, remaining, wait }`;

export class RateLimiter {
  private readonly limits: RateLimit[];
  private readonly keyPrefix: string;
  private readonly now: () => number;

  constructor(private readonly options: RateLimiterOptions) {
    this.limits = validate(options);
    this.keyPrefix = options.keyPrefix ?? 'ratelimit:';
    this.now = options.now ?? (() => Date.now());
  }

  async take(key: string, { cost = 1 }: { cost?: number } = {}): Promise<TakeResult> {
    checkCost(cost, this.limits);
    const keys = this.limits.map((_, i) => `${this.keyPrefix}{${key}}:gcra:${i}`);
    const args = this.limits.flatMap(({ ratePerSecond, burst }) => [1000 / ratePerSecond, burst]);
    const [allowed, remaining, retryAfterMs] = (await this.options.redis.eval(
      GCRA,
      keys.length,
      ...keys,
      this.now(),
      cost,
      ...args,
    )) as [number, number, number];
    return { allowed: allowed === 1, remaining, retryAfterMs };
  }
}
