/**
 * @mutant reads the bucket (HMGET), decides in the process and writes it back (MULTI HSET PEXPIRE) in a second round trip, so two servers that read at the same moment both spend the same tokens and a burst of concurrent requests overshoots the limit.
 * @caught-by spent the same tokens
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
    const { redis } = this.options;
    const now = this.now();
    const keys = this.limits.map((_, i) => `${this.keyPrefix}{${key}}:${i}`);
    // MUTANT: reads the buckets, decides in the process, then writes: another server can read the
    // same tokens in between.
    const states = await Promise.all(keys.map((k) => redis.hmget(k, 'tokens', 'ts')));
    const levels = this.limits.map(({ ratePerSecond, burst }, i) => {
      const [tokens, ts] = states[i]!;
      if (tokens === null || ts === null) return burst;
      return Math.min(burst, Number(tokens) + (Math.max(Number(ts), now) - Number(ts)) * (ratePerSecond / 1000));
    });
    const allowed = levels.every((level) => level >= cost);
    if (!allowed) {
      const waits = this.limits.map(({ ratePerSecond }, i) =>
        levels[i]! >= cost ? 0 : Math.ceil((cost - levels[i]!) / (ratePerSecond / 1000)),
      );
      return { allowed, remaining: Math.min(...levels.map(Math.floor)), retryAfterMs: Math.max(...waits) };
    }
    const multi = redis.multi();
    this.limits.forEach(({ ratePerSecond, burst }, i) => {
      const level = levels[i]! - cost;
      multi.hset(keys[i]!, 'tokens', level, 'ts', now);
      multi.pexpire(keys[i]!, Math.ceil((burst - level) / (ratePerSecond / 1000)));
    });
    await multi.exec();
    return { allowed, remaining: Math.min(...levels.map((level) => Math.floor(level - cost))), retryAfterMs: 0 };
  }
}
