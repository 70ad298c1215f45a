import { randomUUID } from 'node:crypto';
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

// Take the lock and, only if that worked, draw the next token, in one atomic step. Two steps
// would let two grants draw their tokens in the opposite order of the grants: A takes the lock
// and stalls before its INCR, its lease runs out, B takes the lock and draws 34, then A draws
// 35, and the storage now refuses the legitimate holder. NX and PX in one SET: no crash can
// leave a lock without an expiry. The counter never gets a TTL and is never reset: numbering
// that restarted at 1 would be refused by a storage that has seen 57.
// KEYS[1] = lock, KEYS[2] = counter; ARGV[1] = owner id, ARGV[2] = ttl in ms.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false`;

// Compare-and-delete: a lease that ran out may belong to someone else now, and a plain DEL (or a
// GET then a DEL, with the hand-over in between) would free that holder's lock under it.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// Compare-and-extend. A lock that has expired is not recreated: that would be a grant without a
// new token, and the storage could no longer tell this holder from the one before.
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// The storage's conditional write: the check and the write in one step, comparing numbers (as
// strings, "10" < "9"). Equal is accepted so that one holder may write several times.
// KEYS[1] = the resource's hash; ARGV[1] = data, ARGV[2] = token.
// Returns {1} when written, {0, highest} when refused.
const WRITE = `
local highest = redis.call('HGET', KEYS[1], 'token')
if highest and tonumber(ARGV[2]) < tonumber(highest) then return {0, highest} end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'token', ARGV[2])
return {1}`;

type ScriptedRedis = Redis & {
  fencedAcquire(lockKey: string, counterKey: string, owner: string, ttlMs: number): Promise<number | null>;
  fencedRelease(lockKey: string, owner: string): Promise<number>;
  fencedExtend(lockKey: string, owner: string, ttlMs: number): Promise<number>;
  fencedWrite(storeKey: string, data: string, token: number): Promise<[0 | 1, string?]>;
};

function scripted(redis: Redis): ScriptedRedis {
  // defineCommand sends each script by its SHA (EVALSHA) after the first call, and the source
  // again when the server answers NOSCRIPT (after a restart or a failover).
  const r = redis as ScriptedRedis;
  if (typeof r.fencedAcquire !== 'function') {
    redis.defineCommand('fencedAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('fencedRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('fencedExtend', { numberOfKeys: 1, lua: EXTEND });
    redis.defineCommand('fencedWrite', { numberOfKeys: 1, lua: WRITE });
  }
  return r;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FencedLock {
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;

  constructor(private readonly options: FencedLockOptions) {
    this.redis = scripted(options.redis);
    this.prefix = options.keyPrefix ?? 'lock:';
  }

  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease | null> {
    const { waitMs = 0, retryDelayMs = DEFAULT_RETRY_DELAY_MS } = options;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lease = await this.tryAcquire(resource);
      if (lease || Date.now() >= deadline) return lease;
      // Jitter: waiters that all started at the same moment spread out instead of retrying in
      // lockstep, and the pause bounds how hard a crowd of waiters can hit Redis.
      const pauseMs = retryDelayMs * (0.5 + Math.random());
      await sleep(Math.min(pauseMs, deadline - Date.now()));
    }
  }

  private async tryAcquire(resource: string): Promise<Lease | null> {
    // One hash tag for both keys: in Redis Cluster they share a slot, so one script may touch both.
    const lockKey = `${this.prefix}{${resource}}`;
    const counterKey = `${this.prefix}{${resource}}:token`;
    // A random owner id per grant: it is what release() and extend() compare, so that a lease
    // that ran out can never act on the next holder's lock.
    const owner = randomUUID();
    const token = await this.redis.fencedAcquire(lockKey, counterKey, owner, this.options.ttlMs);
    return token === null ? null : new RedisLease(this.redis, resource, lockKey, owner, token, this.options.ttlMs);
  }
}

class RedisLease implements Lease {
  private readonly controller = new AbortController();
  private readonly grantedAt = Date.now();
  private released = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly redis: ScriptedRedis,
    readonly resource: string,
    private readonly lockKey: string,
    private readonly owner: string,
    readonly token: number,
    private readonly ttlMs: number,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async release(): Promise<boolean> {
    this.released = true;
    clearTimeout(this.timer);
    return (await this.redis.fencedRelease(this.lockKey, this.owner)) === 1;
  }

  async extend(ttlMs = this.ttlMs): Promise<boolean> {
    return (await this.redis.fencedExtend(this.lockKey, this.owner, ttlMs)) === 1;
  }

  keepAlive({ everyMs = this.ttlMs / 3, maxHoldMs }: KeepAliveOptions): void {
    const stopAt = this.grantedAt + maxHoldMs;
    const schedule = () => {
      const delayMs = Math.min(everyMs, stopAt - Date.now());
      if (this.released || this.signal.aborted || delayMs <= 0) return;
      this.timer = setTimeout(renew, delayMs);
      // Never the reason a process stays alive.
      this.timer.unref?.();
    };
    const renew = async () => {
      // maxHoldMs bounds a holder that is stuck but still renewing: the lease then runs out at
      // most ttlMs later and someone else can take over.
      if (this.released || Date.now() >= stopAt) return;
      try {
        if (!(await this.extend())) {
          // Gone or someone else's: stop, and tell the holder to stop working.
          this.controller.abort(new Error(`the lease on "${this.resource}" (token ${this.token}) was lost`));
          return;
        }
      } catch {
        // Redis unreachable: try again at the next tick. If the lease runs out meanwhile, the
        // next renewal finds it gone, and the token still fences any late write.
      }
      schedule();
    };
    schedule();
  }
}

export class FencedStorage {
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;

  constructor(options: FencedStorageOptions) {
    this.redis = scripted(options.redis);
    this.prefix = options.keyPrefix ?? 'store:';
  }

  async write(resource: string, data: string, token: number): Promise<true> {
    // The data and its token in one hash, with no TTL: this is the resource itself, and a
    // storage that forgot its highest token would let a stale holder's write win.
    const [accepted, highest] = await this.redis.fencedWrite(this.key(resource), data, token);
    if (accepted !== 1) throw new StaleTokenError(resource, token, Number(highest));
    return true;
  }

  async read(resource: string): Promise<{ data: string; token: number } | null> {
    const [data, token] = await this.redis.hmget(this.key(resource), 'data', 'token');
    if (data === null || data === undefined || token === null || token === undefined) return null;
    return { data, token: Number(token) };
  }

  private key(resource: string) {
    return `${this.prefix}${resource}`;
  }
}
