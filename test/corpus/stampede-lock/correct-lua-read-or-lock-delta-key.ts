/**
 * @correct Reads and takes the lock in one Lua script (GET, else SET NX PX) so no second look is needed, stores the bare JSON value with XFetch's delta in its own key `<key>:delta` written in the same MULTI with the same fractional PX TTL, and releases inside that MULTI.
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

// One round trip per check, atomic by construction: either the value (with its remaining TTL
// and the delta of its load), or the lock for this caller, or "someone else holds the lock".
// KEYS: value, delta, lock. ARGV: token, lockTtlMs.
const READ_OR_LOCK = `
local value = redis.call('GET', KEYS[1])
if value then
  return { 'hit', value, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2]) or '0' }
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return { 'locked' } end
return { 'busy' }`;

// Compare-and-delete. KEYS: lock. ARGV: token.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type Reply = ['hit', string, number, string] | ['locked'] | ['busy'];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class StampedeProtectedCache<T> {
  private readonly redis: Redis;
  private readonly retryDelayMs: number;

  constructor(private readonly options: StampedeProtectedCacheOptions<T>) {
    this.redis = options.redis;
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  }

  async get(key: string): Promise<T> {
    const { waitTimeoutMs } = this.options;
    const deadline = Date.now() + waitTimeoutMs;
    for (;;) {
      const token = randomBytes(16).toString('hex');
      const reply = await this.readOrLock(key, token);
      if (reply[0] === 'hit') {
        const [, raw, pttlMs, delta] = reply;
        this.maybeRefreshEarly(key, Number(pttlMs), Number(delta));
        return JSON.parse(raw) as T;
      }
      // The script took the lock only if the value was missing at that same instant, so the
      // previous holder cannot have filled in between: load.
      if (reply[0] === 'locked') return this.loadAndFill(key, token);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new WaitTimeoutError(key, waitTimeoutMs);
      await sleep(Math.min(this.retryDelayMs, remainingMs));
    }
  }

  private async readOrLock(key: string, token: string): Promise<Reply> {
    return (await this.redis.eval(READ_OR_LOCK, 3, key, this.deltaKey(key), this.lockKey(key), token, this.options.lockTtlMs)) as Reply;
  }

  private async loadAndFill(key: string, token: string): Promise<T> {
    const started = Date.now();
    let value: T;
    try {
      value = await this.options.load(key);
    } catch (error) {
      await this.redis.eval(RELEASE, 1, this.lockKey(key), token).catch(() => undefined);
      throw error;
    }
    const deltaMs = Date.now() - started;
    const ttl = this.ttlMs();
    // Value, delta and release in one transaction: the delta never outlives the value (same
    // TTL, same EXEC), and no crash can leave one written without the other.
    const replies = await this.redis
      .multi()
      .set(key, JSON.stringify(value), 'PX', ttl)
      .set(this.deltaKey(key), String(deltaMs), 'PX', ttl)
      .eval(RELEASE, 1, this.lockKey(key), token)
      .exec();
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error(`fill of "${key}" was aborted`);
    return value;
  }

  private maybeRefreshEarly(key: string, pttlMs: number, deltaMs: number) {
    const beta = this.options.earlyRefresh?.beta;
    if (beta === undefined || pttlMs < 0) return;
    const headStartMs = -deltaMs * beta * Math.log(1 - Math.random());
    if (headStartMs < pttlMs) return;
    void this.refresh(key).catch(() => undefined);
  }

  private async refresh(key: string) {
    const token = randomBytes(16).toString('hex');
    const taken = await this.redis.set(this.lockKey(key), token, 'PX', this.options.lockTtlMs, 'NX');
    if (taken !== 'OK') return;
    await this.loadAndFill(key, token);
  }

  private lockKey(key: string) {
    return `${key}:lock`;
  }

  private deltaKey(key: string) {
    return `${key}:delta`;
  }

  /** ttlSeconds plus a fractional 0..jitterSeconds, in milliseconds (hence PX below). */
  private ttlMs() {
    const { ttlSeconds, jitterSeconds = 0 } = this.options;
    return Math.round((ttlSeconds + Math.random() * jitterSeconds) * 1000);
  }
}
