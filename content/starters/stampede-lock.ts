import type { Redis } from 'ioredis';

export interface StampedeProtectedCacheOptions<T> {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** The expensive recomputation. Its value must survive JSON (any JSON value, null included). */
  load: (key: string) => Promise<T>;
  /** How long a filled value lives in Redis, in seconds. */
  ttlSeconds: number;
  /** Each fill lives ttlSeconds plus a random 0..jitterSeconds. Default 0. */
  jitterSeconds?: number;
  /** The lock's own expiry, in ms: a crashed holder's lock frees itself after this. */
  lockTtlMs: number;
  /** How long a waiter waits for another caller's fill before it rejects with WaitTimeoutError. */
  waitTimeoutMs: number;
  /** Pause between two checks of a waiter, in ms. Default 50. */
  retryDelayMs?: number;
  /** Staff: probabilistic early refresh (XFetch) with this beta. See README.md. */
  earlyRefresh?: { beta: number };
  /** Staff, the alternative: serve a value this many seconds past ttlSeconds while one caller refreshes it. */
  staleWhileRevalidateSeconds?: number;
}

/** What a waiter rejects with when waitTimeoutMs passes. Given: use it as it is. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
  constructor(
    readonly key: string,
    readonly waitTimeoutMs: number,
  ) {
    super(`Timed out after ${waitTimeoutMs} ms waiting for another caller to fill "${key}"`);
  }
}

export class StampedeProtectedCache<T> {
  constructor(private readonly options: StampedeProtectedCacheOptions<T>) {}

  /**
   * The value of `key`: from Redis when cached; otherwise exactly one caller (across every
   * process) loads it under a lock while the others wait for its fill.
   */
  async get(key: string): Promise<T> {
    throw new Error('TODO: implement StampedeProtectedCache.get (see README.md)');
  }
}
