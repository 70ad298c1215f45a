/**
 * @correct Implements serve-stale-while-revalidate instead of XFetch (the value carries its load time, a stale hit is returned at once while the lock winner refreshes in the background), keeps the lock under `lock:<key>`, fills with a millisecond PX TTL, releases with EVAL rather than defineCommand, and waiters poll with a slightly jittered delay.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface StampedeProtectedCacheOptions<T> {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** The expensive recomputation. Its value must survive JSON (any JSON value, null included). */
  load: (key: string) => Promise<T>;
  /** How long a filled value lives in Redis (and, with staleWhileRevalidateSeconds, how long it is fresh). */
  ttlSeconds: number;
  /** Each fill lives ttlSeconds plus a random 0..jitterSeconds, so keys filled together expire apart. */
  jitterSeconds?: number;
  /** The lock's own expiry: a crashed holder's lock frees itself after this. */
  lockTtlMs: number;
  /** How long a waiter waits for another caller's fill before it rejects with WaitTimeoutError. */
  waitTimeoutMs: number;
  /** Pause between two checks of a waiter. Default 50 ms. */
  retryDelayMs?: number;
  /** Staff, the alternative design; this one implements staleWhileRevalidateSeconds and ignores it. */
  earlyRefresh?: { beta: number };
  /** Staff: serve a value this long past ttlSeconds while one caller refreshes it. */
  staleWhileRevalidateSeconds?: number;
}

/** A waiter gave up: no value appeared within waitTimeoutMs and another caller still holds the lock. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
  constructor(
    readonly key: string,
    readonly waitTimeoutMs: number,
  ) {
    super(`Timed out after ${waitTimeoutMs} ms waiting for another caller to fill "${key}"`);
  }
}

export const DEFAULT_RETRY_DELAY_MS = 50;

// What the key holds: the value and when it was loaded (Date.now()), from which any process
// tells fresh from stale from too old.
interface Entry<T> {
  v: T;
  at: number;
}

// A compare-and-delete of our own lock. It touches the lock only: on a Redis Cluster the
// value and `lock:<key>` hash to different slots. KEYS: lock. ARGV: token.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type State = 'fresh' | 'stale' | 'expired';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class StampedeProtectedCache<T> {
  private readonly redis: Redis;
  private readonly retryDelayMs: number;

  constructor(private readonly options: StampedeProtectedCacheOptions<T>) {
    this.redis = options.redis;
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  }

  async get(key: string): Promise<T> {
    const { lockTtlMs, waitTimeoutMs } = this.options;
    const lockKey = `lock:${key}`;
    const deadline = Date.now() + waitTimeoutMs;

    for (;;) {
      const hit = await this.read(key);
      if (hit) {
        // Stale: answer now, and let whoever wins the lock refresh in the background.
        if (hit.state === 'stale') void this.revalidate(key, lockKey).catch(() => undefined);
        return hit.entry.v;
      }
      const token = randomUUID();
      if ((await this.redis.set(lockKey, token, 'PX', lockTtlMs, 'NX')) === 'OK') {
        // The previous holder may have filled and released between our miss and our lock.
        const again = await this.read(key);
        if (again) {
          await this.release(lockKey, token);
          return again.entry.v;
        }
        return this.loadAndFill(key, lockKey, token);
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new WaitTimeoutError(key, waitTimeoutMs);
      // A little randomness keeps hundreds of waiters from polling in lockstep.
      await sleep(Math.min(this.retryDelayMs * (0.9 + 0.1 * Math.random()), remainingMs));
    }
  }

  /** The entry, unless missing or older than ttlSeconds + staleWhileRevalidateSeconds. */
  private async read(key: string): Promise<{ entry: Entry<T>; state: State } | null> {
    const raw = await this.redis.get(key);
    if (raw === null) return null;
    const entry = JSON.parse(raw) as Entry<T>;
    const state = this.state(entry);
    return state === 'expired' ? null : { entry, state };
  }

  private state(entry: Entry<T>): State {
    const swr = this.options.staleWhileRevalidateSeconds;
    if (swr === undefined) return 'fresh'; // core behaviour: the Redis TTL alone decides
    const ageMs = Date.now() - entry.at;
    if (ageMs < this.options.ttlSeconds * 1000) return 'fresh';
    if (ageMs < (this.options.ttlSeconds + swr) * 1000) return 'stale';
    // Jitter can keep the key a little past the stale window; never serve it that old.
    return 'expired';
  }

  private async loadAndFill(key: string, lockKey: string, token: string): Promise<T> {
    const at = Date.now();
    let value: T;
    try {
      value = await this.options.load(key);
    } catch (error) {
      await this.release(lockKey, token).catch(() => undefined);
      throw error;
    }
    const entry: Entry<T> = { v: value, at };
    // Value with its TTL in one command, then the release, one after the other.
    await this.redis.set(key, JSON.stringify(entry), 'PX', this.ttlMs());
    await this.release(lockKey, token);
    return value;
  }

  private async revalidate(key: string, lockKey: string) {
    const token = randomUUID();
    if ((await this.redis.set(lockKey, token, 'PX', this.options.lockTtlMs, 'NX')) !== 'OK') return;
    // A failed refresh releases the lock (in loadAndFill) and leaves the stale value serving.
    await this.loadAndFill(key, lockKey, token);
  }

  private release(lockKey: string, token: string) {
    return this.redis.eval(RELEASE, 1, lockKey, token);
  }

  /** ttlSeconds + 0..jitterSeconds (+ the stale window), in ms for PX. */
  private ttlMs() {
    const { ttlSeconds, jitterSeconds = 0, staleWhileRevalidateSeconds = 0 } = this.options;
    return Math.round((ttlSeconds + Math.random() * jitterSeconds + staleWhileRevalidateSeconds) * 1000);
  }
}
