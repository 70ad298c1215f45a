import type { Redis } from 'ioredis';

/** Any value JSON can carry: what the cache stores and the database receives. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface WriteBehindOptions {
  /** ioredis client, mock or real. Every instance over the same Redis and keyPrefix shares the data. */
  redis: Redis;
  /** Upserts the entries into the database. Idempotent: writing the same value twice is harmless. */
  writeBatch: (entries: Array<{ key: string; value: Json }>) => Promise<void>;
  /** Every Redis key the cache creates starts with this. */
  keyPrefix: string;
  /** Most entries one writeBatch call may carry. */
  maxBatchSize: number;
  /** Backpressure: with this many keys pending, a write to a new key rejects. */
  maxPending?: number;
  /** Flushes in which a key's write may fail before the key is parked (not tried again). */
  maxAttempts?: number;
  /** A flush that has not finished after this long is presumed dead; its keys may be flushed by another instance. */
  flushTimeoutMs?: number;
}

export interface FlushResult {
  /** Keys the database accepted in this flush. */
  written: number;
  /** Keys whose batch the database refused in this flush. */
  failed: number;
}

export class WriteBehindCache {
  constructor(private readonly options: WriteBehindOptions) {}

  /** Stores the value in Redis and marks the key pending; resolves without waiting for the database. */
  async set(key: string, value: Json): Promise<void> {
    throw new Error('TODO: implement WriteBehindCache.set (see README.md)');
  }

  /** The latest value written for `key`, from Redis; null when none was written. */
  async get(key: string): Promise<Json | null> {
    throw new Error('TODO: implement WriteBehindCache.get (see README.md)');
  }

  /** Adds `by` (an integer, default 1) to a counter and returns the new total. */
  async increment(key: string, by = 1): Promise<number> {
    throw new Error('TODO: implement WriteBehindCache.increment (see README.md)');
  }

  /** How many keys hold a value the database does not have yet (parked keys included). */
  async pending(): Promise<number> {
    throw new Error('TODO: implement WriteBehindCache.pending (see README.md)');
  }

  /** Writes every pending key once, with its latest value, in batches of at most maxBatchSize. */
  async flush(): Promise<FlushResult> {
    throw new Error('TODO: implement WriteBehindCache.flush (see README.md)');
  }

  /** Flushes every intervalMs until stop(). */
  start(intervalMs: number): void {
    throw new Error('TODO: implement WriteBehindCache.start (see README.md)');
  }

  /** Stops the timer, waits for a flush in flight, then flushes what is pending. */
  async stop(): Promise<void> {
    throw new Error('TODO: implement WriteBehindCache.stop (see README.md)');
  }
}
