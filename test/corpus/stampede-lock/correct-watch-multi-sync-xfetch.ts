/**
 * @correct No Lua at all: the fill and the release are one WATCH lock / GET lock / MULTI SET value EX + DEL lock / EXEC transaction (serialised per client so WATCHes never interleave on a shared connection), hits read GET and PTTL in one pipeline, and XFetch runs synchronously in the reader that wins the lock.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface StampedeProtectedCacheOptions<T> {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** The expensive recomputation. Its value must survive JSON (any JSON value, null included). */
  load: (key: string) => Promise<T>;
  /** How long a filled value lives in Redis. */
  ttlSeconds: number;
  /** Each fill lives ttlSeconds plus a random 0..jitterSeconds, so keys filled together expire apart. */
  jitterSeconds?: number;
  /** The lock's own expiry: a crashed holder's lock frees itself after this. */
  lockTtlMs: number;
  /** How long a waiter waits for another caller's fill before it rejects with WaitTimeoutError. */
  waitTimeoutMs: number;
  /** Pause between two checks of a waiter. Default 50 ms. */
  retryDelayMs?: number;
  /** Staff: probabilistic early refresh (XFetch). beta > 1 refreshes earlier, < 1 later. */
  earlyRefresh?: { beta: number };
  /** Staff, the alternative to earlyRefresh; this design implements earlyRefresh and ignores it. */
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

interface Entry<T> {
  v: T;
  /** How long the load took, in ms (XFetch's delta). */
  d: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// WATCH state belongs to the connection: an EXEC or UNWATCH of one transaction clears the
// WATCH of any other on the same client. Transactions on one client therefore run one at a time.
const txQueue = new WeakMap<Redis, Promise<unknown>>();
function serialised<R>(redis: Redis, work: () => Promise<R>): Promise<R> {
  const previous = txQueue.get(redis) ?? Promise.resolve();
  const next = previous.then(work, work);
  txQueue.set(
    redis,
    next.catch(() => undefined),
  );
  return next;
}

export class StampedeProtectedCache<T> {
  private readonly redis: Redis;
  private readonly retryDelayMs: number;

  constructor(private readonly options: StampedeProtectedCacheOptions<T>) {
    this.redis = options.redis;
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  }

  async get(key: string): Promise<T> {
    const { waitTimeoutMs } = this.options;
    const lockKey = `${key}.lock`;
    const deadline = Date.now() + waitTimeoutMs;

    for (;;) {
      const hit = await this.read(key);
      if (hit) return this.maybeRefreshEarly(key, lockKey, hit.entry, hit.pttlMs);
      const token = await this.tryLock(lockKey);
      if (token) {
        const filled = await this.redis.get(key);
        if (filled !== null) {
          await this.release(lockKey, token);
          return (JSON.parse(filled) as Entry<T>).v;
        }
        return this.loadAndFill(key, lockKey, token);
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new WaitTimeoutError(key, waitTimeoutMs);
      await sleep(Math.min(this.retryDelayMs, remainingMs));
    }
  }

  /** SET NX PX: the lock and its expiry in one command. Resolves with our token, or null. */
  private async tryLock(lockKey: string): Promise<string | null> {
    const token = randomBytes(16).toString('hex');
    return (await this.redis.set(lockKey, token, 'PX', this.options.lockTtlMs, 'NX')) === 'OK' ? token : null;
  }

  private async read(key: string): Promise<{ entry: Entry<T>; pttlMs: number } | null> {
    if (!this.options.earlyRefresh) {
      const raw = await this.redis.get(key);
      return raw === null ? null : { entry: JSON.parse(raw) as Entry<T>, pttlMs: -1 };
    }
    // The value and its remaining TTL in one pipeline. Not MULTI: an EXEC here would clear the
    // WATCH of a fill running on the same connection.
    const replies = await this.redis.pipeline().get(key).pttl(key).exec();
    const raw = replies?.[0]?.[1] as string | null | undefined;
    const pttlMs = Number(replies?.[1]?.[1] ?? -1);
    return raw == null ? null : { entry: JSON.parse(raw) as Entry<T>, pttlMs };
  }

  private async loadAndFill(key: string, lockKey: string, token: string): Promise<T> {
    const started = Date.now();
    let value: T;
    try {
      value = await this.options.load(key);
    } catch (error) {
      await this.release(lockKey, token).catch(() => undefined);
      throw error;
    }
    await this.fillAndRelease(key, lockKey, token, JSON.stringify({ v: value, d: Date.now() - started } satisfies Entry<T>));
    return value;
  }

  /**
   * Stores the value (with its TTL, one SET … EX) and deletes the lock if it still holds our
   * token, in one transaction: EXEC is refused if the lock changed after our GET, and we look
   * again.
   */
  private fillAndRelease(key: string, lockKey: string, token: string, entry: string): Promise<void> {
    return serialised(this.redis, async () => {
      for (;;) {
        await this.redis.watch(lockKey);
        const ours = (await this.redis.get(lockKey)) === token;
        const tx = this.redis.multi().set(key, entry, 'EX', this.ttlSeconds());
        if (ours) tx.del(lockKey);
        if ((await tx.exec()) !== null) return;
      }
    });
  }

  /** Compare-and-delete with WATCH: the DEL runs only if the lock still held our token. */
  private release(lockKey: string, token: string): Promise<void> {
    return serialised(this.redis, async () => {
      for (;;) {
        await this.redis.watch(lockKey);
        if ((await this.redis.get(lockKey)) !== token) {
          await this.redis.unwatch();
          return;
        }
        if ((await this.redis.multi().del(lockKey).exec()) !== null) return;
      }
    });
  }

  /**
   * XFetch, synchronous form: a reader whose random head start reaches past the remaining TTL
   * tries the lock; the winner reloads and waits for its own load, everyone else (and a winner
   * whose refresh fails) gets the cached value.
   */
  private async maybeRefreshEarly(key: string, lockKey: string, entry: Entry<T>, pttlMs: number): Promise<T> {
    const beta = this.options.earlyRefresh?.beta;
    if (beta === undefined || pttlMs < 0) return entry.v;
    const headStartMs = -entry.d * beta * Math.log(1 - Math.random());
    if (headStartMs < pttlMs) return entry.v;
    const token = await this.tryLock(lockKey);
    if (!token) return entry.v;
    try {
      return await this.loadAndFill(key, lockKey, token);
    } catch {
      return entry.v;
    }
  }

  private ttlSeconds() {
    const { ttlSeconds, jitterSeconds = 0 } = this.options;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}
