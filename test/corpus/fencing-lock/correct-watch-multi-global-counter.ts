/**
 * @correct No Lua at all: every conditional step is a WATCH / read / MULTI…EXEC conversation retried when EXEC is refused (serialised per client, since WATCH belongs to the connection), one global token counter for every resource, the lock holding its own token as the owner id, the storage in two string keys (data and token) written in one MULTI, a narrower jitter, and a keep-alive that stops on the first failed renewal.
 */
import type { Redis } from 'ioredis';

export interface FencedLockOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** How long a lease lasts unless it is extended, in ms: a crashed holder's lock frees itself after this. */
  ttlMs: number;
  /** Every key the lock side writes starts with this. Default 'lock:'. */
  keyPrefix?: string;
}

export interface AcquireOptions {
  /** Staff: wait up to this long for the lock, in ms, instead of returning null at once. Default 0. */
  waitMs?: number;
  /** Staff: the mean pause between two tries while waiting, in ms. Default 50. */
  retryDelayMs?: number;
}

export interface KeepAliveOptions {
  /** Staff: renew the lease this often, in ms. Default ttlMs / 3. */
  everyMs?: number;
  /** Staff: stop renewing this long after the lease was granted, in ms, so a stalled holder cannot hold the lock forever. */
  maxHoldMs: number;
}

/** One grant of the lock. */
export interface Lease {
  readonly resource: string;
  /** The fencing token: strictly greater than every earlier token for this resource. */
  readonly token: number;
  /** Staff: aborted once the lease is known to be lost (a renewal found the lock gone or someone else's). */
  readonly signal: AbortSignal;
  /** Deletes the lock if it is still this lease's. Resolves true if it did, false otherwise. */
  release(): Promise<boolean>;
  /** Resets the lock's TTL to ttlMs (default: the lock's ttlMs) if it is still this lease's. */
  extend(ttlMs?: number): Promise<boolean>;
  /** Staff: renews the lease in the background until release() or maxHoldMs. */
  keepAlive(options: KeepAliveOptions): void;
}

export interface FencedStorageOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** Every key the storage writes starts with this. Default 'store:'. */
  keyPrefix?: string;
}

/** What write() rejects with when its token is lower than one the storage has accepted. Given: use it as it is. */
export class StaleTokenError extends Error {
  override name = 'StaleTokenError';
  constructor(
    readonly resource: string,
    readonly token: number,
    /** The highest token the storage has accepted for this resource, when the design knows it. */
    readonly highestToken?: number,
  ) {
    super(
      `Write to "${resource}" with fencing token ${token} rejected: the storage has already accepted ${highestToken ?? 'a higher token'}`,
    );
  }
}

export const DEFAULT_RETRY_DELAY_MS = 50;

/**
 * WATCH state belongs to the connection: two WATCH conversations at once on one client would
 * clear or trip each other's watches. Every conversation on a client runs alone, in turn.
 */
const queues = new WeakMap<Redis, Promise<unknown>>();
function exclusive<T>(redis: Redis, run: () => Promise<T>): Promise<T> {
  const before = queues.get(redis) ?? Promise.resolve();
  const mine = before.then(run, run);
  queues.set(
    redis,
    mine.catch(() => undefined),
  );
  return mine;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FencedLock {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(private readonly options: FencedLockOptions) {
    this.redis = options.redis;
    this.prefix = options.keyPrefix ?? 'lock:';
  }

  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease | null> {
    const startedAt = Date.now();
    const waitMs = options.waitMs ?? 0;
    const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    let lease = await this.tryAcquire(resource);
    while (!lease) {
      const leftMs = startedAt + waitMs - Date.now();
      if (leftMs <= 0) return null;
      await sleep(Math.min(leftMs, retryDelayMs * (0.75 + Math.random() / 2)));
      lease = await this.tryAcquire(resource);
    }
    return lease;
  }

  private tryAcquire(resource: string): Promise<Lease | null> {
    const { redis } = this;
    const lockKey = `${this.prefix}${resource}`;
    // One counter for every resource: tokens only have to grow per resource, and a global
    // sequence grows for each of them.
    const counterKey = `${this.prefix}fencing-counter`;
    return exclusive(redis, async () => {
      for (;;) {
        // Optimistic: watch the lock and the counter, read, and commit only if neither changed.
        await redis.watch(lockKey, counterKey);
        const [held, last] = await Promise.all([redis.exists(lockKey), redis.get(counterKey)]);
        if (held === 1) {
          await redis.unwatch();
          return null;
        }
        const token = Number(last ?? 0) + 1;
        // The lock holds its own token: tokens are unique per resource, so it doubles as the
        // owner id that release() and extend() compare.
        const done = await redis.multi().set(lockKey, String(token), 'PX', this.options.ttlMs).incr(counterKey).exec();
        if (done !== null) return new WatchedLease(redis, resource, lockKey, token, this.options.ttlMs);
        // EXEC refused: someone took the lock or drew a token in between. Look again.
      }
    });
  }
}

class WatchedLease implements Lease {
  private readonly lost = new AbortController();
  private readonly grantedAt = Date.now();
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly redis: Redis,
    readonly resource: string,
    private readonly lockKey: string,
    readonly token: number,
    private readonly ttlMs: number,
  ) {}

  get signal() {
    return this.lost.signal;
  }

  /** Runs `change` in a MULTI only if the lock still holds this lease's token. */
  private ifStillMine(change: (multi: ReturnType<Redis['multi']>) => void): Promise<boolean> {
    const { redis, lockKey } = this;
    return exclusive(redis, async () => {
      for (;;) {
        await redis.watch(lockKey);
        if ((await redis.get(lockKey)) !== String(this.token)) {
          await redis.unwatch();
          return false;
        }
        const multi = redis.multi();
        change(multi);
        if ((await multi.exec()) !== null) return true;
      }
    });
  }

  release() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    return this.ifStillMine((multi) => multi.del(this.lockKey));
  }

  extend(ttlMs = this.ttlMs) {
    return this.ifStillMine((multi) => multi.pexpire(this.lockKey, ttlMs));
  }

  keepAlive(options: KeepAliveOptions) {
    const everyMs = options.everyMs ?? this.ttlMs / 3;
    const until = this.grantedAt + options.maxHoldMs;
    const next = () => {
      if (this.stopped || Date.now() >= until) return;
      this.timer = setTimeout(() => void beat(), Math.min(everyMs, until - Date.now()));
      this.timer.unref?.();
    };
    const beat = async () => {
      this.timer = null;
      if (this.stopped || Date.now() >= until) return;
      const kept = await this.extend().catch(() => null); // null: Redis unreachable, try again
      if (kept === false) {
        this.stopped = true;
        this.lost.abort();
        return;
      }
      next();
    };
    next();
  }
}

export class FencedStorage {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: FencedStorageOptions) {
    this.redis = options.redis;
    this.prefix = options.keyPrefix ?? 'store:';
  }

  write(resource: string, data: string, token: number): Promise<true> {
    const { redis } = this;
    const [dataKey, tokenKey] = this.keys(resource);
    return exclusive(redis, async (): Promise<true> => {
      for (;;) {
        await redis.watch(tokenKey);
        const highest = await redis.get(tokenKey);
        if (highest !== null && token < Number(highest)) {
          await redis.unwatch();
          throw new StaleTokenError(resource, token, Number(highest));
        }
        // Data and token land together, or not at all if a newer write moved the token.
        if ((await redis.multi().set(dataKey, data).set(tokenKey, String(token)).exec()) !== null) return true;
      }
    });
  }

  async read(resource: string) {
    const [data, token] = await this.redis.mget(...this.keys(resource));
    return data === null || data === undefined || token === null || token === undefined
      ? null
      : { data, token: Number(token) };
  }

  private keys(resource: string): [string, string] {
    return [`${this.prefix}${resource}:data`, `${this.prefix}${resource}:token`];
  }
}
