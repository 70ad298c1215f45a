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

export class FencedLock {
  constructor(private readonly options: FencedLockOptions) {}

  /** A lease on `resource`, or null when someone else holds it (staff: after waiting up to waitMs). */
  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease | null> {
    throw new Error('TODO: implement FencedLock.acquire and the Lease it returns (see README.md)');
  }
}

export class FencedStorage {
  constructor(private readonly options: FencedStorageOptions) {}

  /** Stores `data` for `resource` if `token` is not lower than any token accepted before; else throws StaleTokenError. */
  async write(resource: string, data: string, token: number): Promise<true> {
    throw new Error('TODO: implement FencedStorage.write (see README.md)');
  }

  /** The data last accepted for `resource` and the token it was written with, or null. */
  async read(resource: string): Promise<{ data: string; token: number } | null> {
    throw new Error('TODO: implement FencedStorage.read (see README.md)');
  }
}
