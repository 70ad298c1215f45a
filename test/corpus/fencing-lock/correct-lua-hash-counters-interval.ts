/**
 * @correct Plain EVAL scripts with other layouts: the token is drawn first and the lock set after inside one script (EXISTS, HINCRBY, SET PX), per-resource counters are fields of one hash, extend re-sets the lock with SET XX PX after comparing, the storage is a single string "<token>|<data>" checked in Lua, and keepAlive runs on an unref'd setInterval.
 */
import { randomBytes } from 'node:crypto';
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

// The lock's counters live in one hash, a field per resource, with no TTL. The token is drawn
// first and the lock set after, both inside one script, so nothing can run between them.
// KEYS[1] = lock, KEYS[2] = counters hash; ARGV[1] = owner, ARGV[2] = ttl ms, ARGV[3] = resource.
const GRANT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return token`;

// 0 = not ours; 1 = done. ARGV[2] = 'del' or a ttl in ms.
const IF_OWNER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'XX') end
return 1`;

// The resource is one string: "<token>|<data>". A stale token changes nothing.
const FENCED_SET = `
local current = redis.call('GET', KEYS[1])
if current then
  local highest = tonumber(string.match(current, '^(%d+)|'))
  if tonumber(ARGV[2]) < highest then return highest end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1])
return -1`;

export class FencedLock {
  private readonly prefix: string;

  constructor(private readonly options: FencedLockOptions) {
    this.prefix = options.keyPrefix ?? 'lock:';
  }

  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease | null> {
    const giveUpAt = Date.now() + (options.waitMs ?? 0);
    const delayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    for (let attempt = 0; ; attempt++) {
      const owner = `${process.pid}-${randomBytes(8).toString('hex')}`;
      const token = (await this.options.redis.eval(
        GRANT,
        2,
        `${this.prefix}${resource}`,
        `${this.prefix}tokens`,
        owner,
        this.options.ttlMs,
        resource,
      )) as number | null;
      if (token !== null) return new ScriptLease(this.options, `${this.prefix}${resource}`, resource, owner, token);
      const left = giveUpAt - Date.now();
      if (left <= 0) return null;
      const pause = Math.min(left, delayMs * (0.5 + Math.random()));
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

class ScriptLease implements Lease {
  readonly signal: AbortSignal;
  private readonly abort: () => void;
  private readonly since = Date.now();
  private interval: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly options: FencedLockOptions,
    private readonly lockKey: string,
    readonly resource: string,
    private readonly owner: string,
    readonly token: number,
  ) {
    const controller = new AbortController();
    this.signal = controller.signal;
    this.abort = () => controller.abort();
  }

  private async ifOwner(action: string | number) {
    return (await this.options.redis.eval(IF_OWNER, 1, this.lockKey, this.owner, action)) === 1;
  }

  release() {
    this.stop();
    return this.ifOwner('del');
  }

  extend(ttlMs?: number) {
    return this.ifOwner(ttlMs ?? this.options.ttlMs);
  }

  keepAlive({ everyMs, maxHoldMs }: KeepAliveOptions) {
    this.stop();
    let renewing = false;
    this.interval = setInterval(async () => {
      if (Date.now() - this.since >= maxHoldMs) return this.stop();
      if (renewing) return; // the previous renewal is still on its way
      renewing = true;
      try {
        if (!(await this.extend())) {
          this.stop();
          this.abort();
        }
      } catch {
        // unreachable: the next tick tries again
      } finally {
        renewing = false;
      }
    }, everyMs ?? Math.floor(this.options.ttlMs / 3));
    this.interval.unref?.();
  }

  private stop() {
    clearInterval(this.interval);
    this.interval = undefined;
  }
}

export class FencedStorage {
  constructor(private readonly options: FencedStorageOptions) {}

  private key(resource: string) {
    return `${this.options.keyPrefix ?? 'store:'}${resource}`;
  }

  async write(resource: string, data: string, token: number): Promise<true> {
    const highest = (await this.options.redis.eval(FENCED_SET, 1, this.key(resource), data, token)) as number;
    if (highest >= 0) throw new StaleTokenError(resource, token, highest);
    return true;
  }

  async read(resource: string) {
    const stored = await this.options.redis.get(this.key(resource));
    if (stored === null) return null;
    const bar = stored.indexOf('|');
    return { token: Number(stored.slice(0, bar)), data: stored.slice(bar + 1) };
  }
}
