import type { Redis } from 'ioredis';
import type { ZodType } from 'zod';

export interface CacheAsideOptions<T> {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** Reads one row from the database; null when there is no such row. */
  load: (id: string) => Promise<T | null>;
  /** Writes one row to the database. */
  save: (id: string, value: T) => Promise<void>;
  /** Keys look like `${keyPrefix}:${id}`. */
  keyPrefix: string;
  ttlSeconds: number;
  /** Spread expiry: each entry lives ttlSeconds plus a random 0..jitterSeconds. */
  jitterSeconds?: number;
  /** How long "not found" is remembered; when absent, "not found" is not cached. */
  negativeTtlSeconds?: number;
  /** Cached values are hints, not truth: a cached value that fails this schema is a miss. */
  schema?: ZodType<T>;
}

export class CacheAside<T> {
  constructor(private readonly options: CacheAsideOptions<T>) {}

  /** The row for `id`, from Redis when cached, otherwise from the database (then cached). */
  async get(id: string): Promise<T | null> {
    throw new Error('TODO: implement CacheAside.get (see README.md)');
  }

  /** The rows for `ids`, in the same order, with one round trip to Redis for the lookups. */
  async getMany(ids: string[]): Promise<Array<T | null>> {
    throw new Error('TODO: implement CacheAside.getMany (see README.md)');
  }

  /** Writes the database, then invalidates the cached entry. */
  async set(id: string, value: T): Promise<void> {
    throw new Error('TODO: implement CacheAside.set (see README.md)');
  }

  /** Removes the cached entry so the next read goes to the database. */
  async invalidate(id: string): Promise<void> {
    throw new Error('TODO: implement CacheAside.invalidate (see README.md)');
  }
}
