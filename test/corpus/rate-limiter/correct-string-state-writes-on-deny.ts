/**
 * @correct the bucket is one string "tokens:updatedMs" per limit (GET/SET, not a hash), formatted with %.17g in Lua, rate in tokens per second; every take writes the bucket back, denied ones too (refill folded in, nothing consumed), with a flat TTL of ceil(burst / rate) seconds by SET EX; a single limit uses the plain key <prefix><key> without a hash tag.
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

// A token bucket stored as one string "tokens:updatedMs" per limit, written back on every take,
// denied or not (with the refill folded in, so nothing is lost), each with a flat TTL of
// ceil(burst / rate) seconds: the longest a bucket can take to fill up again.
const TAKE = `
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = #KEYS
local level, at = {}, {}
local ok = true
local waitMs = 0
for i = 1, n do
  local perSecond = tonumber(ARGV[2 + 3 * (i - 1) + 1])
  local burst = tonumber(ARGV[2 + 3 * (i - 1) + 2])
  local raw = redis.call('GET', KEYS[i])
  local tokens, updated = burst, now
  if raw then
    local sep = string.find(raw, ':', 1, true)
    tokens = tonumber(string.sub(raw, 1, sep - 1))
    updated = tonumber(string.sub(raw, sep + 1))
  end
  local t = now
  if updated > t then t = updated end
  tokens = tokens + (t - updated) / 1000 * perSecond
  if tokens > burst then tokens = burst end
  level[i], at[i] = tokens, t
  if tokens < cost then
    ok = false
    waitMs = math.max(waitMs, math.ceil(t - now + (cost - tokens) * 1000 / perSecond))
  end
end
local fewest = nil
for i = 1, n do
  if ok then level[i] = level[i] - cost end
  -- %.17g keeps every bit of the double: the fraction survives the round trip.
  redis.call('SET', KEYS[i], string.format('%.17g', level[i]) .. ':' .. string.format('%.17g', at[i]), 'EX', tonumber(ARGV[2 + 3 * (i - 1) + 3]))
  local whole = math.floor(level[i])
  if fewest == nil or whole < fewest then fewest = whole end
end
if ok then return { 1, fewest, 0 } end
return { 0, fewest, waitMs }`;

type WithTake = Redis & {
  bucketTake(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<[number, number, number]>;
};

export class RateLimiter {
  private readonly limits: RateLimit[];
  private readonly prefix: string;
  private readonly clock: () => number;
  private readonly redis: WithTake;

  constructor(options: RateLimiterOptions) {
    this.limits = validate(options);
    this.prefix = options.keyPrefix ?? 'ratelimit:';
    this.clock = options.now ?? Date.now;
    this.redis = options.redis as WithTake;
    this.redis.defineCommand('bucketTake', { lua: TAKE });
  }

  async take(key: string, options: { cost?: number } = {}): Promise<TakeResult> {
    const cost = options.cost ?? 1;
    checkCost(cost, this.limits);
    // One limit: a plain key; several: one hash tag for the subject, one key per limit.
    const keys =
      this.limits.length === 1
        ? [`${this.prefix}${key}`]
        : this.limits.map((_, i) => `${this.prefix}{${key}}:${i}`);
    const args = this.limits.flatMap(({ ratePerSecond, burst }) => [
      ratePerSecond,
      burst,
      Math.ceil(burst / ratePerSecond),
    ]);
    const [allowed, remaining, retryAfterMs] = await this.redis.bucketTake(keys.length, ...keys, this.clock(), cost, ...args);
    return { allowed: allowed === 1, remaining, retryAfterMs };
  }
}
