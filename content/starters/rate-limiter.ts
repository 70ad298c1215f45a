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

export class RateLimiter {
  constructor(private readonly options: RateLimiterOptions) {}

  /**
   * Takes `cost` tokens (a whole number >= 1, default 1) from `key`'s bucket if it holds that
   * many, in one atomic step shared by every server. See README.md.
   */
  async take(key: string, options: { cost?: number } = {}): Promise<TakeResult> {
    throw new Error('TODO: implement RateLimiter.take (see README.md)');
  }
}
