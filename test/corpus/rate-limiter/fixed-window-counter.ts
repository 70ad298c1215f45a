/**
 * @mutant a fixed-window counter (INCRBY per window of burst / ratePerSecond seconds) instead of a token bucket, so a client that sends a full burst at the end of one window and another at the start of the next gets twice the burst through in a moment.
 * @caught-by more than burst|refilled faster
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

// MUTANT: a fixed-window counter. Each window of burst / ratePerSecond seconds admits burst
// tokens, counted with INCRBY: a full window's worth at the end of one window and another at the
// start of the next is twice the burst in a moment.
const FIXED_WINDOW = `
local cost = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + cost > tonumber(ARGV[1 + 2 * i]) then
    return { 0, tonumber(ARGV[1 + 2 * i]) - count, tonumber(ARGV[2 + 2 * i]) }
  end
end
local remaining = nil
for i = 1, n do
  local count = redis.call('INCRBY', KEYS[i], cost)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 + 2 * i]) + 1)
  local left = tonumber(ARGV[1 + 2 * i]) - count
  if remaining == nil or left < remaining then remaining = left end
end
return { 1, remaining, 0 }`;

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
    const now = this.now();
    const windows = this.limits.map(({ ratePerSecond, burst }) => Math.ceil((burst / ratePerSecond) * 1000));
    const keys = this.limits.map((_, i) => `${this.keyPrefix}{${key}}:${i}:${Math.floor(now / windows[i]!)}`);
    const args = this.limits.flatMap(({ burst }, i) => [burst, windows[i]! - (now % windows[i]!)]);
    const [allowed, remaining, retryAfterMs] = (await this.options.redis.eval(
      FIXED_WINDOW,
      keys.length,
      ...keys,
      cost,
      ...args,
    )) as [number, number, number];
    return { allowed: allowed === 1, remaining, retryAfterMs };
  }
}
