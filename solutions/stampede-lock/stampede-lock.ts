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
  /**
   * Staff, the alternative to earlyRefresh: serve a value this long past ttlSeconds while one
   * caller refreshes it. This reference implements earlyRefresh and ignores this option; see
   * the walkthrough for the serve-stale design.
   */
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

// What the value key holds: the value, and how long its load took (XFetch's delta) so that any
// process can decide when to refresh it early.
interface Entry<T> {
  v: T;
  deltaMs: number;
}

// Give up the lock only if it is still ours: if our load outlived lockTtlMs, another caller
// holds the lock now and is loading, and deleting its lock would let a third caller start a
// third load. Used after a fill and after a failed load (nothing is cached, and a waiter can
// take the lock at its next check instead of waiting out lockTtlMs).
// The script touches the lock key only. The value lives under the caller's key and the lock
// under `${key}:lock`; on a Redis Cluster those hash to different slots (no hash tag, and the
// caller's key is not ours to tag), so one script over both would fail with CROSSSLOT.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type ScriptedRedis = Redis & {
  releaseLock(lockKey: string, token: string): Promise<number>;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class StampedeProtectedCache<T> {
  private readonly redis: ScriptedRedis;
  private readonly retryDelayMs: number;

  constructor(private readonly options: StampedeProtectedCacheOptions<T>) {
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    // defineCommand sends the script by its SHA (EVALSHA) after the first call.
    const redis = options.redis as ScriptedRedis;
    redis.defineCommand('releaseLock', { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis;
  }

  async get(key: string): Promise<T> {
    const { redis } = this;
    const { lockTtlMs, waitTimeoutMs } = this.options;
    const lockKey = `${key}:lock`;
    const deadline = Date.now() + waitTimeoutMs;

    for (;;) {
      const hit = await this.read(key);
      if (hit) {
        this.maybeRefreshEarly(key, lockKey, hit.entry, hit.pttlMs);
        return hit.entry.v;
      }
      // A random token per attempt: the lock's value proves which acquisition it belongs to.
      // NX and PX in one command: no crash can leave a lock that never expires.
      const token = randomBytes(16).toString('hex');
      if ((await redis.set(lockKey, token, 'PX', lockTtlMs, 'NX')) === 'OK') {
        // Between our miss and our lock, the previous holder may have filled the key and
        // released: look again before loading, or the key is loaded twice.
        const filled = await redis.get(key);
        if (filled !== null) {
          await redis.releaseLock(lockKey, token);
          return (JSON.parse(filled) as Entry<T>).v;
        }
        return this.loadAndFill(key, lockKey, token);
      }
      // Someone else is loading. Wait and look again; when the lock is gone without a value
      // (the holder failed or died), the SET NX above lets exactly one of us take over. Never
      // load because the wait ran out: that turns a slow database back into a stampede.
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new WaitTimeoutError(key, waitTimeoutMs);
      await sleep(Math.min(this.retryDelayMs, remainingMs));
    }
  }

  /** The cached entry and its remaining TTL (needed only for the early refresh), or null. */
  private async read(key: string): Promise<{ entry: Entry<T>; pttlMs: number } | null> {
    // Plain commands on the hot path: every read and every waiter's check runs this.
    const [raw, pttlMs] = await Promise.all([
      this.redis.get(key),
      this.options.earlyRefresh ? this.redis.pttl(key) : -1,
    ]);
    return raw === null ? null : { entry: JSON.parse(raw) as Entry<T>, pttlMs };
  }

  private async loadAndFill(key: string, lockKey: string, token: string): Promise<T> {
    const started = Date.now();
    let value: T;
    try {
      value = await this.options.load(key);
    } catch (error) {
      // The caller gets the real error; the waiters find the lock gone and one of them retries.
      await this.redis.releaseLock(lockKey, token).catch(() => undefined);
      throw error;
    }
    const entry: Entry<T> = { v: value, deltaMs: Date.now() - started };
    // The value with its TTL in one command, then the release, in this order and one after the
    // other: a waiter that checks in between finds the lock or the value, never neither (and a
    // crash in between leaves a lock that expires on its own). Sent together, they could go to
    // two cluster nodes, where nothing orders them and the release could land first.
    await this.redis.set(key, JSON.stringify(entry), 'EX', this.ttlSeconds());
    await this.redis.releaseLock(lockKey, token);
    return value;
  }

  /**
   * XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh when
   * now - delta * beta * ln(rand) >= expiry, i.e. when a random head start, scaled by how long
   * the load takes, reaches past the remaining TTL. The chance per read is exp(-t / (beta * delta))
   * with t the time left, so a busy key is refreshed shortly before it expires and a quiet key
   * almost never early. The refresher still takes the lock, so concurrent triggers cost one load.
   */
  private maybeRefreshEarly(key: string, lockKey: string, entry: Entry<T>, pttlMs: number) {
    const beta = this.options.earlyRefresh?.beta;
    if (beta === undefined || pttlMs < 0) return;
    // 1 - Math.random() is in (0, 1], so the log is finite.
    const headStartMs = -entry.deltaMs * beta * Math.log(1 - Math.random());
    if (headStartMs < pttlMs) return;
    // In the background: this caller already has a valid value and must not wait for the load.
    void this.refresh(key, lockKey).catch(() => undefined);
  }

  private async refresh(key: string, lockKey: string) {
    const token = randomBytes(16).toString('hex');
    const taken = await this.redis.set(lockKey, token, 'PX', this.options.lockTtlMs, 'NX');
    if (taken !== 'OK') return; // someone is already refreshing (or filling)
    // A failed refresh leaves the current value serving until it expires; loadAndFill releases
    // the lock so the next trigger can try again.
    await this.loadAndFill(key, lockKey, token);
  }

  private ttlSeconds() {
    const { ttlSeconds, jitterSeconds = 0 } = this.options;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}
