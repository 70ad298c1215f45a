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

export const DEFAULT_KEY_PREFIX = 'ratelimit:';

// One bucket per limit, each a hash { tokens, ts }: the tokens it held at time ts (ms, on the
// bucket's own clock). KEYS = the buckets. ARGV = now (ms), cost, then per bucket its rate in
// tokens per ms and its burst. Returns { allowed (1/0), remaining, retryAfterMs }.
//
// Everything happens here, in one script, because Redis runs a script to the end before it
// serves anyone else: two servers can never both read "one token left". Refilling on read needs
// no timer: the tokens a bucket holds now are what it held at ts plus (now - ts) × rate.
const TAKE = `
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local levels, stamps, rates, bursts = {}, {}, {}, {}
local allowed = 1
local retryAfterMs = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[1 + 2 * i])
  local burst = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or ts == nil then
    -- No key: never written, or expired once it was full again. Both mean a full bucket.
    tokens, ts = burst, now
  end
  -- A server whose clock is behind sees no time pass (elapsed is never negative) and keeps the
  -- bucket's clock where it is: moving it back would let the next server count the same
  -- interval again and refill tokens that were already refilled once.
  local clock = math.max(ts, now)
  -- Keep the fraction: rounding here and still moving the clock would lose it on every take.
  local level = math.min(burst, tokens + (clock - ts) * rate)
  if level < cost then
    allowed = 0
    -- The moment this bucket holds cost tokens, measured on the caller's clock (the bucket's clock
    -- may be ahead of it). The slowest bucket decides when the take can succeed.
    local wait = math.ceil((clock - now) + (cost - level) / rate)
    if wait > retryAfterMs then retryAfterMs = wait end
  end
  levels[i], stamps[i], rates[i], bursts[i] = level, clock, rate, burst
end
local remaining = nil
for i = 1, #KEYS do
  local level = levels[i]
  if allowed == 1 then
    level = level - cost
    -- Numbers, not tostring(): Redis formats them with 17 significant digits, so no drift.
    redis.call('HSET', KEYS[i], 'tokens', level, 'ts', stamps[i])
    -- Gone once the bucket is full again (on its own schedule): a missing key means full.
    redis.call('PEXPIRE', KEYS[i], math.ceil((stamps[i] - now) + (bursts[i] - level) / rates[i]))
  end
  -- A denial writes nothing: it consumes no tokens and does not touch the clock.
  local whole = math.floor(level)
  if remaining == nil or whole < remaining then remaining = whole end
end
return { allowed, remaining, retryAfterMs }`;

type ScriptedRedis = Redis & {
  rateLimitTake(...keysThenArgs: Array<string | number>): Promise<[number, number, number]>;
};

export class RateLimiter {
  private readonly redis: ScriptedRedis;
  private readonly limits: RateLimit[];
  private readonly keyPrefix: string;
  private readonly now: () => number;

  constructor(options: RateLimiterOptions) {
    this.limits = options.limits ?? [{ ratePerSecond: options.ratePerSecond!, burst: options.burst! }];
    if (this.limits.length === 0) throw new RangeError('limits must hold at least one limit');
    for (const { ratePerSecond, burst } of this.limits) {
      if (!(typeof ratePerSecond === 'number' && ratePerSecond > 0 && Number.isFinite(ratePerSecond))) {
        throw new RangeError(`ratePerSecond must be a number > 0, got ${ratePerSecond}`);
      }
      if (!(Number.isInteger(burst) && burst >= 1)) {
        throw new RangeError(`burst must be a whole number >= 1, got ${burst}`);
      }
    }
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.now = options.now ?? (() => Date.now());
    // defineCommand sends the script by its SHA (EVALSHA) once Redis knows it: one round trip.
    const redis = options.redis as ScriptedRedis;
    redis.defineCommand('rateLimitTake', { lua: TAKE });
    this.redis = redis;
  }

  async take(key: string, { cost = 1 }: { cost?: number } = {}): Promise<TakeResult> {
    if (!(Number.isInteger(cost) && cost >= 1)) throw new RangeError(`cost must be a whole number >= 1, got ${cost}`);
    const smallest = Math.min(...this.limits.map((limit) => limit.burst));
    if (cost > smallest) {
      // It could never be admitted: waiting would not help, so say so instead of a retryAfterMs.
      throw new RangeError(`cost ${cost} is larger than the bucket (burst ${smallest}): it can never be admitted`);
    }
    // One hash tag per subject: on Redis Cluster a script may touch only keys of one slot.
    const keys = this.limits.map((_, i) => `${this.keyPrefix}{${key}}:${i}`);
    const args = this.limits.flatMap(({ ratePerSecond, burst }) => [ratePerSecond / 1000, burst]);
    const [allowed, remaining, retryAfterMs] = await this.redis.rateLimitTake(
      keys.length,
      ...keys,
      this.now(),
      cost,
      ...args,
    );
    return { allowed: allowed === 1, remaining, retryAfterMs };
  }
}
